# This plugin is an extension: it exports the `extension` interface of the
# contract (world extension-plugin in wit/plugin.wit) and hooks into the
# agent loop instead of offering tools.
WORLD := extension-plugin

# `make try` shows what the extension subscribes to (it calls
# describe-extension). To see it at work, install it and run the agent.
try: check
