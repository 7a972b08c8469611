# The WIT world this plugin is built for: a tool plugin exports `tool`
# (describe + invoke) from src/app.js.
WORLD = tool-plugin
