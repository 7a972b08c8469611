# agent-host: two commands on a fresh machine.
#   make demo   build host and plugins, then run the main job
#   make test   build everything and run all tests
WASM_TARGET   := wasm32-wasip2
CARGO         ?= cargo
DIST          := $(CURDIR)/build
# Example plugins (plugins/<name>, crate plugin-<name>) and test-only plugins
# (tests/plugins/<name>, crate test-plugin-<name>).
PLUGINS       := calc text fs http notes redactor policy-guard loop-breaker audit-logger
TEST_PLUGINS  := $(notdir $(patsubst %/,%,$(dir $(wildcard tests/plugins/*/Cargo.toml))))
# The host's crates (host/*): runtime, llm, agent and the binary.
HOST_CRATES   := -p agent-host-runtime -p agent-host-llm -p agent-host-agent -p agent-host
TARGET_DIR    := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
WASM_OUT      := $(TARGET_DIR)/$(WASM_TARGET)/release

.PHONY: demo test wasm-target plugins host lint clean

wasm-target:
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)

# Builds every guest crate for wasm32-wasip2 and lays each out as a plugin
# directory entry: <name>.wasm next to its <name>.toml manifest.
plugins: wasm-target
	$(CARGO) build --release --target $(WASM_TARGET) \
		$(addprefix -p plugin-,$(PLUGINS)) $(addprefix -p test-plugin-,$(TEST_PLUGINS)) -p plugin-template
	@mkdir -p $(DIST)/plugins $(DIST)/test-plugins
	@for p in $(PLUGINS); do \
		cp $(WASM_OUT)/plugin_$$(echo $$p | tr - _).wasm $(DIST)/plugins/$$p.wasm; \
		cp plugins/$$p/manifest.toml $(DIST)/plugins/$$p.toml; \
	done
	@cp $(WASM_OUT)/plugin_template.wasm $(DIST)/plugins/template.wasm
	@cp examples/plugin-template/manifest.toml $(DIST)/plugins/template.toml
	@for p in $(TEST_PLUGINS); do \
		cp $(WASM_OUT)/test_plugin_$$(echo $$p | tr - _).wasm $(DIST)/test-plugins/$$p.wasm; \
		cp tests/plugins/$$p/manifest.toml $(DIST)/test-plugins/$$p.toml; \
	done
	@# A second build of the versioned test plugin, for hot-reload tests.
	TEST_PLUGIN_VERSION=v2 $(CARGO) build --release --target $(WASM_TARGET) -p test-plugin-versioned
	cp $(WASM_OUT)/test_plugin_versioned.wasm $(DIST)/test-plugins/versioned-v2.wasm.bin
	@echo "plugins ready in $(DIST)/plugins (test plugins in $(DIST)/test-plugins)"

host:
	$(CARGO) build --release -p agent-host

demo: plugins host
	./examples/demo.sh $(TARGET_DIR)/release/agent-host $(DIST)/plugins

test: plugins
	$(CARGO) test $(HOST_CRATES)
	$(CARGO) test -p agent-plugin-sdk -p plugin-calc -p plugin-text -p plugin-fs -p plugin-http \
		-p plugin-redactor -p plugin-policy-guard -p plugin-loop-breaker -p plugin-audit-logger

lint: wasm-target
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy $(HOST_CRATES) --all-targets --all-features -- -D warnings
	$(CARGO) clippy --target $(WASM_TARGET) -p agent-plugin-sdk \
		$(addprefix -p plugin-,$(PLUGINS)) $(addprefix -p test-plugin-,$(TEST_PLUGINS)) -p plugin-template -- -D warnings

clean:
	rm -rf $(DIST)
	$(CARGO) clean
