# The WIT world this plugin is built for: an extension exports `extension`
# (describeExtension + onEvent) from src/app.js.
WORLD = extension-plugin
