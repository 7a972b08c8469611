# The WIT world this plugin is built for: a tool plugin exports `tool`
# (describe + invoke), implemented in src/plugin.c.
WORLD = tool-plugin
