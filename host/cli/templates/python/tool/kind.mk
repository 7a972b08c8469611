# This plugin is a tool plugin: it exports the `tool` interface of the
# contract (world tool-plugin in wit/plugin.wit).
WORLD := tool-plugin

# `make try` calls the tool once; pass other arguments with ARGS='{...}'.
ARGS ?= {"name": "world", "times": 2}

try: all
	$(AGENT_HOST) --plugins $(BUILD) tools call {{snake}} --args '$(ARGS)'
