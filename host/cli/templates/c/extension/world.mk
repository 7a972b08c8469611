# The WIT world this plugin is built for: an extension exports `extension`
# (describe-extension + on-event), implemented in src/plugin.c.
WORLD = extension-plugin
