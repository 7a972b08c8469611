//! `agent-host mcp serve` against the official MCP Python SDK (mcp 2.3.0) as the client, over stdio and Streamable HTTP.
//!
//! tests/interop/mcp_client.py runs one fixed scenario with the SDK's
//! `ClientSession` and prints what it observed as one JSON object; these
//! tests assert on that object. The venv comes from `make py-deps`
//! (tests/interop/setup-python.sh), or `AGENT_HOST_PYTHON` names a python
//! that has the pinned SDK.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};

use serde_json::{Value, json};

use crate::support::{Harness, python, test_plugin, workspace_root};

/// A harness with the two plugins the scenario calls.
fn harness() -> Harness {
    let harness = Harness::new();
    harness.install(test_plugin::echo());
    harness.install(test_plugin::shapes());
    harness
}

/// The client script under `python`, with `agent-host`'s environment from
/// the harness so a stdio server spawned by the SDK sees the same config
/// isolation as `h.command()` (the script hands its environment on).
fn client(harness: &Harness, protocol: &str) -> Command {
    let mut command = Command::new(python());
    command
        .arg(workspace_root().join("tests/interop/mcp_client.py"))
        .args(["--protocol", protocol]);
    for (key, value) in harness.command().get_envs() {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    command
}

/// Runs the client to the end: exit code, the observation, its stderr.
fn observe(command: &mut Command) -> (i32, Value, String) {
    let output = command.stdin(Stdio::null()).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let observed = serde_json::from_str(stdout.trim()).unwrap_or_else(|err| {
        panic!("the client printed no JSON object ({err}):\n{stdout}\nstderr:\n{stderr}")
    });
    (output.status.code().unwrap_or(-1), observed, stderr)
}

fn stdio_scenario(protocol: &str) -> Value {
    let harness = harness();
    let server = harness.command();
    let (code, observed, stderr) = observe(
        client(&harness, protocol)
            .arg("--stdio")
            .arg("--")
            .arg(server.get_program())
            .args(server.get_args())
            .args(["mcp", "serve"]),
    );
    assert_eq!(code, 0, "{observed:#}\nstderr:\n{stderr}");
    observed
}

/// An `mcp serve --http` child; killed when dropped, so a failed assert
/// never leaves a server behind.
struct HttpServer {
    child: Child,
    url: String,
    stderr: Arc<Mutex<String>>,
}

impl HttpServer {
    fn start(harness: &Harness, extra: &[&str]) -> Self {
        let mut child = harness
            .command()
            .args(["mcp", "serve", "--http", "127.0.0.1:0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Drain stderr for the server's whole life (a full pipe would block
        // its logging) and hand over the URL from the one listening line.
        let stderr = Arc::new(Mutex::new(String::new()));
        let (url_tx, url_rx) = mpsc::channel();
        let reader = BufReader::new(child.stderr.take().unwrap());
        let log = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in reader.lines() {
                let Ok(line) = line else { break };
                if let Some(at) = line.find("listening on http://") {
                    // The URL ends where URL characters do ("...:PORT/mcp; Ctrl-C ...").
                    let url: String = line[at + "listening on ".len()..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || ":/.[]-_".contains(*c))
                        .collect();
                    let _ = url_tx.send(url);
                }
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut server = Self {
            child,
            url: String::new(),
            stderr,
        };
        // The reader ends at EOF, dropping the sender: a server that exits
        // before listening fails here with its stderr, not with a hang.
        server.url = url_rx
            .recv()
            .unwrap_or_else(|_| panic!("the server exited before listening:\n{}", server.log()));
        assert!(
            server.url.starts_with("http://127.0.0.1:") && server.url.ends_with("/mcp"),
            "{}",
            server.url
        );
        server
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_scenario(protocol: &str) -> Value {
    let harness = harness();
    let server = HttpServer::start(&harness, &[]);
    let (code, observed, stderr) =
        observe(client(&harness, protocol).args(["--http", &server.url]));
    assert_eq!(
        code,
        0,
        "{observed:#}\nclient stderr:\n{stderr}\nserver stderr:\n{}",
        server.log()
    );
    assert_eq!(
        server.log().matches("listening on http://").count(),
        1,
        "{}",
        server.log()
    );
    observed
}

/// What every run of the scenario must have seen, at `protocol`.
fn assert_scenario(observed: &Value, protocol: &str) {
    let o = observed;
    assert_eq!(o["errors"], json!({}), "{o:#}");
    assert_eq!(o["sdk"]["mcp"], "2.3.0", "the pinned SDK: {o:#}");
    assert_eq!(o["protocol_version"], protocol, "{o:#}");
    let era = if protocol == "2026-07-28" {
        "stateless"
    } else {
        "handshake"
    };
    assert_eq!(o["era"], era, "{o:#}");
    assert_eq!(
        o["tools"],
        json!(["echo", "shapes_fail", "shapes_mixed", "shapes_wait"]),
        "{o:#}"
    );

    let annotations = &o["echo_tool"]["annotations"];
    assert_eq!(annotations["readOnlyHint"], true, "{o:#}");
    assert_eq!(annotations["idempotentHint"], true, "{o:#}");
    let schema = &o["echo_tool"]["inputSchema"];
    assert_eq!(schema["required"], json!(["text"]), "{o:#}");
    assert_eq!(schema["additionalProperties"], false, "{o:#}");
    assert_eq!(o["echo"]["raised"], Value::Null, "{o:#}");
    assert_eq!(o["echo"]["isError"], false, "{o:#}");
    assert_eq!(o["echo"]["text"], "ababab", "{o:#}");

    assert_eq!(o["shapes_mixed_tool"]["title"], "Mixed shapes", "{o:#}");
    assert_eq!(o["shapes_mixed_tool"]["hasOutputSchema"], true, "{o:#}");
    let mixed = &o["shapes_mixed"];
    assert_eq!(mixed["isError"], false, "{o:#}");
    let content = mixed["content"].as_array().expect("content parts");
    let kinds: Vec<&str> = content
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["text", "text", "image", "audio", "resource"],
        "{o:#}"
    );
    assert_eq!(content[0]["text"], "hello", "{o:#}");
    let json_part: Value = serde_json::from_str(content[1]["text"].as_str().unwrap()).unwrap();
    assert_eq!(json_part, json!({"a": 1}), "{o:#}");
    assert_eq!(content[2]["mimeType"], "image/png", "{o:#}");
    assert_eq!(content[3]["mimeType"], "audio/wav", "{o:#}");
    assert_eq!(content[4]["mimeType"], "application/pdf", "{o:#}");
    assert_eq!(content[4]["blob"], true, "{o:#}");
    assert_eq!(mixed["structuredContent"], json!({"count": 3}), "{o:#}");

    for (kind, message) in [
        ("failed", "the disk is full"),
        ("denied", "not allowed to touch /etc"),
        ("invalid", "made no sense here"),
    ] {
        let failed = &o["shapes_fail"][kind];
        assert_eq!(failed["raised"], Value::Null, "{kind}: {o:#}");
        assert_eq!(failed["isError"], true, "{kind}: {o:#}");
        let text = failed["text"].as_str().unwrap();
        assert!(text.contains(message), "{kind}: {o:#}");
    }

    // A schema violation is a tool error the model can read, naming the field.
    let violation = &o["schema_violation"];
    assert_eq!(violation["raised"], Value::Null, "{o:#}");
    assert_eq!(violation["isError"], true, "{o:#}");
    assert!(
        violation["text"].as_str().unwrap().contains("/text"),
        "{o:#}"
    );
    // An unknown tool is a protocol error: the SDK raises MCPError.
    let unknown = &o["unknown_tool"];
    assert_eq!(unknown["raised"], "MCPError", "{o:#}");
    let code = unknown["code"].as_i64().unwrap();
    assert!(code == -32602 || code == -32601, "{o:#}");

    // The progress reached the SDK's callback while the call was running,
    // the SDK then cancelled it, and the session went on working.
    let wait = &o["shapes_wait"];
    assert_eq!(wait["progress"][0]["progress"], 1.0, "{o:#}");
    assert_eq!(wait["progress"][0]["message"], "started", "{o:#}");
    assert_eq!(wait["cancelled"], true, "{o:#}");
    assert_eq!(wait["ended"], Value::Null, "{o:#}");
    assert_eq!(o["echo_after_cancel"]["text"], "still here", "{o:#}");
}

/// The HTTP exchanges the SDK made, as the script logged them.
fn exchanges(observed: &Value) -> &Vec<Value> {
    observed["http"].as_array().expect("an HTTP exchange log")
}

#[test]
fn python_sdk_over_stdio_at_its_default_handshake_version() {
    // ClientSession.initialize() offers 2025-11-25.
    assert_scenario(&stdio_scenario("2025-11-25"), "2025-11-25");
}

#[test]
fn python_sdk_over_stdio_at_2025_06_18() {
    assert_scenario(&stdio_scenario("2025-06-18"), "2025-06-18");
}

#[test]
fn python_sdk_over_stdio_stateless_2026_07_28() {
    assert_scenario(&stdio_scenario("2026-07-28"), "2026-07-28");
}

#[test]
fn python_sdk_over_http_with_a_session() {
    let observed = http_scenario("2025-11-25");
    assert_scenario(&observed, "2025-11-25");
    // initialize gets a session id; every later POST carries it back.
    let http = exchanges(&observed);
    let session = http[0]["responseSessionId"]
        .as_str()
        .expect("an Mcp-Session-Id");
    assert!(!session.is_empty(), "{observed:#}");
    for exchange in &http[1..] {
        assert_eq!(exchange["requestSessionId"], session, "{observed:#}");
        if exchange["method"] == "POST" {
            assert!(exchange["status"].as_u64().unwrap() < 300, "{observed:#}");
        }
    }
}

#[test]
fn python_sdk_over_http_at_2025_06_18() {
    assert_scenario(&http_scenario("2025-06-18"), "2025-06-18");
}

#[test]
fn python_sdk_over_http_picks_stateless_2026_07_28_by_itself() {
    // "auto" is mcp.Client's default: server/discover first, then initialize
    // only if that fails; this server should be found modern.
    let observed = http_scenario("auto");
    assert_scenario(&observed, "2026-07-28");
    let http = exchanges(&observed);
    assert_eq!(http[0]["mcpMethod"], "server/discover", "{observed:#}");
    for exchange in http {
        assert_eq!(
            exchange["method"], "POST",
            "no GET stream, no DELETE: {observed:#}"
        );
        assert_eq!(exchange["responseSessionId"], Value::Null, "{observed:#}");
        assert_eq!(
            exchange["requestProtocolVersion"], "2026-07-28",
            "{observed:#}"
        );
        assert!(exchange["status"].as_u64().unwrap() < 300, "{observed:#}");
    }
}

#[test]
fn python_sdk_over_http_needs_the_token_when_one_is_set() {
    let harness = harness();
    let token = "interop-token-0123456789abcdef";
    let token_file = harness.tmp.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let server = HttpServer::start(&harness, &["--token-file", token_file.to_str().unwrap()]);

    let (code, observed, stderr) =
        observe(client(&harness, "2025-11-25").args(["--http", &server.url, "--token", token]));
    assert_eq!(code, 0, "{observed:#}\n{stderr}\nserver:\n{}", server.log());
    assert_scenario(&observed, "2025-11-25");

    let (code, observed, _) = observe(client(&harness, "2025-11-25").args(["--http", &server.url]));
    assert_eq!(code, 1, "{observed:#}");
    assert!(observed["errors"]["scenario"].is_string(), "{observed:#}");
    assert_eq!(observed["protocol_version"], Value::Null, "{observed:#}");
    assert_eq!(exchanges(&observed)[0]["status"], 401, "{observed:#}");
}
