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
# The host's crates (host/*): runtime, llm, agent, auth, mcp, server and the binary.
HOST_CRATES   := -p agent-host-runtime -p agent-host-llm -p agent-host-agent -p agent-host-auth -p agent-host-mcp -p agent-host-server -p agent-host
TARGET_DIR    := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
# Where tests/artifacts/build.rs builds the guests and lays them out (its own
# target dir, so the nested cargo never waits on the outer build's lock).
GUEST_DIR     := $(TARGET_DIR)/guests

.PHONY: demo test wasm-target plugins rust-plugins lang-plugins host lint clean py-deps npm-deps

wasm-target:
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)

# Builds every guest crate for wasm32-wasip2 through the build script of
# tests/artifacts, the crate the integration tests get the plugins from: it
# lays each out as <name>.wasm next to its <name>.toml manifest (and the
# second build of test-plugin-versioned as versioned-v2.wasm.bin) in
# $(GUEST_DIR). This copies that layout to build/ for the demo and the
# benchmarks; `cargo test` afterwards finds the same build and compiles
# nothing again.
plugins: rust-plugins lang-plugins

rust-plugins: wasm-target
	$(CARGO) build -p agent-host-test-artifacts
	@test -d $(GUEST_DIR)/plugins || { echo "$(GUEST_DIR) is missing: set CARGO_TARGET_DIR to the cargo target dir, or run \`cargo clean -p agent-host-test-artifacts\` to rebuild it" >&2; exit 1; }
	@rm -rf $(DIST)/plugins $(DIST)/test-plugins
	@mkdir -p $(DIST)
	@cp -R $(GUEST_DIR)/plugins $(GUEST_DIR)/test-plugins $(DIST)/
	@echo "plugins ready in $(DIST)/plugins (test plugins in $(DIST)/test-plugins)"

# The plugins in Python, JavaScript and C (plugins/{python,js,c}/*, and
# tests/plugins-lang/* for the tests) with their pinned tool chains, which
# this installs into build/toolchains from PyPI, npm and crates.io (once):
# examples into build/plugins-lang, test plugins into build/test-plugins-lang.
# Each is rebuilt only when its sources change. The demo stays Rust-only.
lang-plugins:
	plugins/toolchains/build-lang-plugins.sh $(DIST)

host:
	$(CARGO) build --release -p agent-host

demo: plugins host
	./examples/demo.sh $(TARGET_DIR)/release/agent-host $(DIST)/plugins

# The official MCP Python SDK for the interop tests (tests/it/mcp_python.rs):
# pinned, wheels only, from PyPI, into build/venv; a no-op once installed.
py-deps:
	tests/interop/setup-python.sh $(DIST)/venv

# The MCP reference server (@modelcontextprotocol/server-everything) the MCP
# client's interop tests connect to: the npm lock file in tests/interop,
# installed with `npm ci` into build/npm; a no-op once installed.
npm-deps:
	tests/interop/setup-npm.sh $(DIST)/npm

test: plugins py-deps npm-deps
	$(CARGO) test $(HOST_CRATES)
	$(CARGO) test -p agent-plugin-sdk -p plugin-calc -p plugin-text -p plugin-fs -p plugin-http \
		-p plugin-redactor -p plugin-policy-guard -p plugin-loop-breaker -p plugin-audit-logger

lint: wasm-target
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy $(HOST_CRATES) --all-targets --all-features -- -D warnings
	$(CARGO) clippy -p agent-host-test-artifacts -- -D warnings
	$(CARGO) clippy --target $(WASM_TARGET) -p agent-plugin-sdk \
		$(addprefix -p plugin-,$(PLUGINS)) $(addprefix -p test-plugin-,$(TEST_PLUGINS)) -p plugin-template -- -D warnings

clean:
	rm -rf $(DIST)
	$(CARGO) clean
