//! Test harness: paths of the built plugins, temp plugin and data dirs, and a loopback HTTP server.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;

use agent_host_runtime::config::Grant;
use agent_host_runtime::{Runtime, RuntimeConfig};

/// `fn <plugin>() -> (wasm, manifest)` for one plugin built by tests/artifacts.
macro_rules! plugin_files {
    ($name:ident, $plugin:expr) => {
        pub fn $name() -> (std::path::PathBuf, std::path::PathBuf) {
            $plugin.files()
        }
    };
}

/// A test-only plugin (tests/plugins/<name>): `test_plugin::echo()`.
///
/// A test plugin that no test uses fails to compile here ("function `<name>`
/// is never used"): write the test that needs it, or delete the plugin.
#[deny(dead_code)] // a test plugin no test uses: test it or delete tests/plugins/<name>
pub mod test_plugin {
    use std::path::PathBuf;

    agent_host_test_artifacts::foreach_test_plugin!(plugin_files);

    /// The second build of `versioned` (it answers "v2"), for reload tests.
    pub fn versioned_v2() -> PathBuf {
        PathBuf::from(agent_host_test_artifacts::VERSIONED_V2_WASM)
    }
}

/// An example plugin (plugins/<name>): `example_plugin::calc()`. Unused
/// ones fail to compile, as test plugins do.
#[deny(dead_code)] // an example plugin no test uses: test it in tests/it
pub mod example_plugin {
    agent_host_test_artifacts::foreach_example_plugin!(plugin_files);
}

/// A temp plugin dir and data dir, and a config to run a runtime over them.
pub struct Harness {
    pub tmp: tempfile::TempDir,
    pub config: RuntimeConfig,
}

impl Harness {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let plugins = tmp.path().join("plugins");
        std::fs::create_dir(&plugins).unwrap();
        let mut config = RuntimeConfig::new(vec![plugins], tmp.path().join("data"));
        // Keep runaway-plugin tests short.
        config.sandbox.max_timeout_ms = 1000;
        config.sandbox.default_timeout_ms = 1000;
        config.sandbox.max_instances = 16;
        // One compiler, so cache counts and timings stay deterministic;
        // tests/it/tiers.rs (and the hostile tests) choose tiers themselves.
        config.cache.tiering = agent_host_runtime::config::Tiering::Optimized;
        Self { tmp, config }
    }

    pub fn plugins_dir(&self) -> PathBuf {
        self.config.plugin_dirs[0].clone()
    }

    /// Copies a built plugin (wasm + manifest) into the plugin dir.
    pub fn install(&self, (wasm, manifest): (PathBuf, PathBuf)) -> &Self {
        let stem = wasm.file_stem().unwrap().to_owned();
        let dir = self.plugins_dir();
        std::fs::copy(&wasm, dir.join(&stem).with_extension("wasm")).unwrap();
        std::fs::copy(&manifest, dir.join(&stem).with_extension("toml")).unwrap();
        self
    }

    /// Writes a file into the plugin dir.
    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.plugins_dir().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    pub fn grant(&mut self, plugin: &str, grant: Grant) -> &mut Self {
        self.config.grants.insert(plugin.to_owned(), grant);
        self
    }

    /// The `agent-host` binary over this harness's plugin and data dirs,
    /// with no user config file.
    pub fn command(&self) -> std::process::Command {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_agent-host"));
        command
            .arg("--plugins")
            .arg(self.plugins_dir())
            .arg("--data-dir")
            .arg(&self.config.data_dir)
            .env_remove("AGENT_HOST_CONFIG")
            .env("XDG_CONFIG_HOME", self.tmp.path().join("no-config"));
        command
    }

    /// A runtime with every plugin in the plugin dir loaded.
    pub async fn runtime(&self) -> Runtime {
        let runtime = Runtime::new(self.config.clone()).unwrap();
        runtime.load_plugin_dirs().await;
        runtime
    }
}

/// A one-thread HTTP/1.1 server on 127.0.0.1 that answers every request with
/// 200 and a fixed body, and stops after `max_requests`.
pub fn http_server(body: &'static str, max_requests: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(max_requests) {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    port
}

/// Asserts that a call ended in a tool error of `kind` (`invalid_arguments`,
/// `failed` or `denied`): data for the model, not a failed call.
pub fn assert_tool_error(err: &agent_host_runtime::CallError, kind: &str) {
    use agent_host_runtime::{CallError, ToolError};
    let actual = match err {
        CallError::Tool {
            error: ToolError::InvalidArguments(_),
            ..
        } => "invalid_arguments",
        CallError::Tool {
            error: ToolError::Failed(_),
            ..
        } => "failed",
        CallError::Tool {
            error: ToolError::Denied(_),
            ..
        } => "denied",
        _ => "not a tool error",
    };
    assert_eq!(actual, kind, "{err}");
}

/// A TCP listener on 127.0.0.1 that accepts and drops connections.
pub fn tcp_listener() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || for _stream in listener.incoming().take(16) {});
    port
}

/// Runs a command: exit code, stdout, stderr.
pub fn run_command(command: &mut std::process::Command) -> (i32, String, String) {
    let output = command.output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The first line of a `--json` event stream, parsed.
pub fn first_json_line(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout.lines().next().expect("a first line")).unwrap()
}

/// The workspace root: this crate's manifest is host/cli/Cargo.toml.
pub fn workspace_root() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The python with the interop clients installed (the MCP SDK, `openai`):
/// `AGENT_HOST_PYTHON`, else the venv `make py-deps` makes.
pub fn python() -> PathBuf {
    let python = std::env::var_os("AGENT_HOST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("build/venv/bin/python"));
    assert!(
        python.exists(),
        "no python with the interop clients at {}: run `make py-deps` (or set AGENT_HOST_PYTHON)",
        python.display()
    );
    python
}
