//! Terminal safety of the binary: what plugins and models say is shown escaped in human output, exact in `--json`; plugin log lines stay off the terminal by default.
//!
//! The painter plugin (tests/plugins/painter) and the scripted model put
//! [`PAYLOAD`] (an OSC that retitles the terminal, a CSI that clears it, the
//! 8-bit CSI U+009B) behind a label into every string they control; each
//! test checks that no raw control character reaches stdout or stderr, that
//! the label is shown with the payload escaped, and that `--json` carries the
//! original string.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::support::{Harness, run_command as run, test_plugin};

/// What the painter and the script put into every string.
const PAYLOAD: &str = "\x1b]0;pwned\x07\x1b[2J\u{9b}2J";
/// How the payload looks once escaped.
const ESCAPED: &str = "\\x1b]0;pwned\\x07\\x1b[2J\\u{9b}2J";

fn painted(label: &str) -> String {
    format!("{label}:{PAYLOAD}")
}

fn shown(label: &str) -> String {
    format!("{label}:{ESCAPED}")
}

/// Panics if `output` has a raw ESC, BEL, DEL, C1 control or any other C0
/// control besides line breaks and tabs.
fn assert_clean(what: &str, output: &str) {
    if let Some(bad) = output.chars().find(|&c| {
        (c.is_control() && c != '\n' && c != '\t') || ('\u{202a}'..='\u{202e}').contains(&c)
    }) {
        panic!(
            "{what}: raw control character U+{:04X} reached the terminal:\n{output:?}",
            bad as u32
        );
    }
}

fn assert_shows(what: &str, output: &str, label: &str) {
    assert_clean(what, output);
    assert!(
        output.contains(&shown(label)),
        "{what} should show `{}`:\n{output}",
        shown(label)
    );
}

/// Every string anywhere in a JSON value.
fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        Value::Object(map) => map.values().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

fn assert_json_has(what: &str, value: &Value, label: &str) {
    let wanted = painted(label);
    assert!(
        strings(value).iter().any(|s| s.contains(&wanted)),
        "{what}: no string holds {wanted:?} exactly: {value}"
    );
}

fn painter_harness() -> Harness {
    let harness = Harness::new();
    harness.install(test_plugin::painter());
    harness
}

/// Installs the painter's wasm under `name` with `manifest` text. A custom
/// section naming the copy gives it its own content hash, so the host's
/// cache of described tool specs (keyed by content) does not answer for it
/// with the painter's.
fn install_painter_as(harness: &Harness, name: &str, manifest: &str) {
    let (wasm, _) = test_plugin::painter();
    let mut bytes = std::fs::read(&wasm).unwrap();
    let section_name = b"painter-copy";
    let payload = name.as_bytes();
    let size = 1 + section_name.len() + payload.len();
    assert!(size < 128, "one-byte LEB128 sizes only");
    bytes.extend_from_slice(&[0, size as u8, section_name.len() as u8]);
    bytes.extend_from_slice(section_name);
    bytes.extend_from_slice(payload);
    let dir = harness.plugins_dir();
    std::fs::write(dir.join(format!("{name}.wasm")), bytes).unwrap();
    std::fs::write(dir.join(format!("{name}.toml")), manifest).unwrap();
}

/// The ext-probe extension installed as `name`, its manifest [config]
/// saying what it does at each hook point.
fn install_probe(harness: &Harness, name: &str, actions: Value) {
    let (wasm, _) = test_plugin::ext_probe();
    let dir = harness.plugins_dir();
    std::fs::copy(&wasm, dir.join(format!("{name}.wasm"))).unwrap();
    let config = json!({ "tag": name, "actions": actions });
    // JSON strings are valid TOML basic strings for what is used here;
    // TOML inline tables are written out by hand.
    let actions = config["actions"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(point, action)| {
            format!(
                "\"{point}\" = {{ kind = {}, value = {} }}",
                toml_string(&action["kind"]),
                toml_value(&action["value"])
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    std::fs::write(
        dir.join(format!("{name}.toml")),
        format!(
            "[plugin]\nname = \"{name}\"\nversion = \"0.1.0\"\n\n[limits]\nmemory_mb = 16\ntimeout_ms = 2000\n\n[config]\ntag = \"{name}\"\nactions = {{ {actions} }}\n"
        ),
    )
    .unwrap();
}

fn toml_string(value: &Value) -> String {
    // serde_json escapes every C0 control as \uXXXX or a short escape TOML
    // also knows; DEL and C1 stay raw, which TOML rejects, so escape them.
    let text = serde_json::to_string(value.as_str().unwrap()).unwrap();
    text.chars()
        .map(|c| {
            if ('\u{7f}'..='\u{9f}').contains(&c) {
                format!("\\u{:04X}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn toml_value(value: &Value) -> String {
    match value {
        Value::String(_) => toml_string(value),
        Value::Object(map) => {
            let fields: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{} = {}", toml_string(&json!(k)), v))
                .collect();
            format!("{{ {} }}", fields.join(", "))
        }
        other => other.to_string(),
    }
}

fn write_file(harness: &Harness, name: &str, text: &str) -> PathBuf {
    let path = harness.tmp.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn tools_list_and_describe_escape_descriptions_titles_and_schemas() {
    let harness = painter_harness();
    let (code, stdout, stderr) = run(harness.command().args(["tools", "list"]));
    assert_eq!(code, 0, "{stderr}");
    assert_shows("tools list", &stdout, "desc");
    assert_clean("tools list stderr", &stderr);

    let (code, stdout, _) = run(harness.command().args(["tools", "list", "--json"]));
    assert_eq!(code, 0);
    let tools: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        tools[0]["description"],
        format!("Paints. {}", painted("desc"))
    );

    let (code, stdout, stderr) = run(harness.command().args(["tools", "describe", "paint"]));
    assert_eq!(code, 0, "{stderr}");
    assert_shows("tools describe", &stdout, "title");
    assert_shows("tools describe", &stdout, "desc");
    // JSON text leaves DEL and C1 raw; the schema is escaped too.
    assert!(stdout.contains("schema-paint:\\x7f\\u{9b}2J"), "{stdout}");

    let (code, stdout, _) = run(harness
        .command()
        .args(["tools", "describe", "paint", "--json"]));
    assert_eq!(code, 0);
    let tool: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(tool["title"], painted("title"));
    assert_eq!(
        tool["input_schema"]["properties"]["x"]["description"],
        "schema-paint:\u{7f}\u{9b}2J"
    );
}

#[test]
fn tools_call_escapes_output_errors_and_panics() {
    let harness = painter_harness();
    let call = |tool: &str, json: bool| {
        let mut command = harness.command();
        command.args(["tools", "call", tool]);
        if json {
            command.arg("--json");
        }
        run(&mut command)
    };

    // Output text and a JSON part that is not JSON (kept as text).
    let (code, stdout, stderr) = call("paint", false);
    assert_eq!(code, 0, "{stderr}");
    assert_shows("tools call paint", &stdout, "out");
    assert_shows("tools call paint", &stdout, "badjson");
    let (_, stdout, _) = call("paint", true);
    let result: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(result["output"]["content"][0]["text"], painted("out"));
    assert_eq!(result["output"]["content"][1]["text"], painted("badjson"));

    // A tool error: exit 1, the message escaped on stderr.
    let (code, stdout, stderr) = call("paint_error", false);
    assert_eq!(code, 1, "{stderr}");
    assert_clean("tools call paint_error stdout", &stdout);
    assert_shows("tools call paint_error", &stderr, "err");
    let (code, stdout, _) = call("paint_error", true);
    assert_eq!(code, 1);
    assert_json_has(
        "tools call paint_error --json",
        &serde_json::from_str(&stdout).unwrap(),
        "err",
    );

    // A panic: its message is the failure's detail.
    let (code, _, stderr) = call("paint_panic", false);
    assert_eq!(code, 1, "{stderr}");
    assert_shows("tools call paint_panic", &stderr, "panic");
    let (_, stdout, _) = call("paint_panic", true);
    assert_json_has(
        "tools call paint_panic --json",
        &serde_json::from_str(&stdout).unwrap(),
        "panic",
    );

    // A normal call right after works.
    let (code, stdout, stderr) = call("paint_progress", false);
    assert_eq!(code, 0, "{stderr}");
    assert_shows("tools call paint_progress", &stdout, "progressed");
}

#[test]
fn plugin_log_lines_stay_off_stderr_unless_asked_for_and_are_escaped() {
    let harness = painter_harness();
    let (code, stdout, stderr) =
        run(harness
            .command()
            .env_remove("RUST_LOG")
            .args(["tools", "call", "paint_log"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !stderr.contains("logwarn") && !stderr.contains("logerror"),
        "plugin log lines reached stderr at the default level:\n{stderr}"
    );
    assert_shows("tools call paint_log", &stdout, "logged");

    // -v shows them, escaped, one line each.
    let (code, _, stderr) =
        run(harness
            .command()
            .env_remove("RUST_LOG")
            .args(["-v", "tools", "call", "paint_log"]));
    assert_eq!(code, 0, "{stderr}");
    assert_shows("tools call paint_log -v", &stderr, "logwarn");
    assert_shows("tools call paint_log -v", &stderr, "logerror");
    let line = stderr.lines().find(|l| l.contains("logwarn")).unwrap();
    assert!(
        line.contains("WARN") && line.contains("plugin=painter"),
        "{line}"
    );

    // RUST_LOG still decides when it is set.
    let (_, _, stderr) =
        run(harness
            .command()
            .env("RUST_LOG", "plugin=error")
            .args(["tools", "call", "paint_log"]));
    assert_shows("RUST_LOG=plugin=error", &stderr, "logerror");
    assert!(!stderr.contains("logwarn"), "{stderr}");
}

#[test]
fn plugins_check_escapes_capability_strings_and_refuses_a_painted_version() {
    let harness = painter_harness();
    let wasm = harness.plugins_dir().join("painter.wasm");
    let (code, stdout, stderr) = run(harness.command().arg("plugins").arg("check").arg(&wasm));
    assert_eq!(code, 0, "{stderr}");
    for label in ["dir", "env", "desc"] {
        assert_shows("plugins check", &stdout, label);
    }
    // A network entry has no ':' label (it would read as a port).
    assert!(
        stdout.contains(&format!("network net{ESCAPED}")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("NOT granted: env {}", shown("env"))),
        "{stdout}"
    );

    let (code, stdout, _) = run(harness
        .command()
        .arg("plugins")
        .arg("check")
        .arg(&wasm)
        .arg("--json"));
    assert_eq!(code, 0);
    let checked: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(checked["requested"]["env"][0], painted("env"));
    assert_eq!(checked["requested"]["network"][0], format!("net{PAYLOAD}"));
    assert_eq!(checked["tools"][0]["title"], painted("title"));

    // A version that is semver only up to its suffix is refused, and the
    // refusal shows it escaped.
    let manifest =
        "[plugin]\nname = \"badver\"\nversion = \"0.1.0-\\u001B]0;pwned\\u0007\\u001B[2J\"\n";
    install_painter_as(&harness, "badver", manifest);
    let bad = harness.plugins_dir().join("badver.wasm");
    let (code, stdout, stderr) = run(harness.command().arg("plugins").arg("check").arg(&bad));
    assert_eq!(code, 2, "a painted version was accepted:\n{stdout}");
    assert_clean("plugins check badver", &stderr);
    assert!(
        stderr.contains("plugin.version")
            && stderr.contains("full semantic version")
            && stderr.contains("0.1.0-\\x1b]0;pwned\\x07\\x1b[2J"),
        "{stderr}"
    );
    // The painter next to it still loads.
    let (code, stdout, _) = run(harness.command().args(["tools", "list", "--json"]));
    assert_eq!(code, 0);
    let tools: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    assert!(tools.iter().any(|t| t["name"] == "paint"), "{stdout}");
}

#[test]
fn plugins_list_escapes_describe_failures() {
    let harness = painter_harness();
    install_painter_as(
        &harness,
        "broken",
        "[plugin]\nname = \"broken\"\nversion = \"0.1.0\"\n\n[config]\nfail_describe = true\n",
    );
    let (code, stdout, stderr) = run(harness.command().args(["plugins", "list"]));
    assert_eq!(code, 0, "{stderr}");
    assert_shows("plugins list", &stdout, "describe");
    assert_clean("plugins list stderr", &stderr);
    // The painter itself is listed as ok.
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("painter") && l.contains(" ok ")),
        "{stdout}"
    );

    let (_, stdout, _) = run(harness.command().args(["plugins", "list", "--json"]));
    let rows: Value = serde_json::from_str(&stdout).unwrap();
    let broken = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "broken")
        .unwrap();
    assert_eq!(broken["status"], "error");
    assert_json_has("plugins list --json", broken, "describe");

    // Load warnings of other commands are clean too.
    let (_, _, stderr) = run(harness.command().args(["tools", "list"]));
    assert_clean("tools list warnings", &stderr);
}

/// A script where the model says the payload, calls every painter tool and
/// a tool whose name is painted.
fn painting_script(harness: &Harness) -> PathBuf {
    let script = json!({ "turns": [
        {
            "say": painted("say"),
            "tool_calls": [
                { "name": "paint" },
                { "name": "paint_error" },
                { "name": "paint_panic" },
                { "name": "paint_log" },
                { "name": format!("nosuch{PAYLOAD}") },
            ]
        },
        { "say": painted("done") }
    ] });
    write_file(harness, "script.json", &script.to_string())
}

fn run_agent(
    harness: &Harness,
    config: &PathBuf,
    script: &PathBuf,
    json: bool,
) -> (i32, String, String) {
    let mut command = harness.command();
    command
        .env_remove("RUST_LOG")
        .arg("--config")
        .arg(config)
        .arg("run")
        .arg(painted("prompt"))
        .arg("--script")
        .arg(script);
    if json {
        command.arg("--json");
    }
    run(&mut command)
}

fn session_id(stdout: &str) -> String {
    let line = stdout.lines().next().unwrap();
    line.rsplit("session ").next().unwrap().trim().to_owned()
}

#[test]
fn run_and_sessions_escape_model_text_tool_results_injections_and_switch_offs() {
    let harness = painter_harness();
    // session-start injects painted text; before-llm-call answers a patch
    // of a painted field, which is refused and (max_failures = 1) switches
    // the hook off with a painted reason.
    install_probe(
        &harness,
        "inkpot",
        json!({
            "session-start": { "kind": "inject", "value": painted("inject") },
            "before-llm-call": { "kind": "patch", "value": { painted("field"): 1 } },
        }),
    );
    let config = write_file(&harness, "config.toml", "[hooks]\nmax_failures = 1\n");
    let script = painting_script(&harness);

    let (code, stdout, stderr) = run_agent(&harness, &config, &script, false);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    for label in ["say", "out", "badjson", "err", "inject", "done"] {
        assert_shows("run", &stdout, label);
    }
    // A tool name is the model's to choose, too.
    assert!(stdout.contains(&format!("nosuch{ESCAPED}")), "{stdout}");
    assert_clean("run stderr", &stderr);
    assert!(stderr.contains("switched off"), "{stderr}");
    assert_shows("run stderr", &stderr, "field");
    assert!(!stderr.contains("logwarn"), "{stderr}");

    // The stored session, shown in full.
    let id = session_id(&stdout);
    let (code, shown_session, stderr) = run(harness.command().args(["sessions", "show", &id]));
    assert_eq!(code, 0, "{stderr}");
    for label in ["prompt", "say", "out", "err", "panic", "done"] {
        assert_shows("sessions show", &shown_session, label);
    }
    let (code, listed, _) = run(harness.command().args(["sessions", "list"]));
    assert_eq!(code, 0);
    assert_shows("sessions list", &listed, "prompt");
    let (_, listed, _) = run(harness.command().args(["sessions", "list", "--json"]));
    assert_json_has(
        "sessions list --json",
        &serde_json::from_str(&listed).unwrap(),
        "prompt",
    );
    // Exports are JSON: exact.
    let (_, exported, _) = run(harness.command().args(["sessions", "export", &id]));
    let lines: Vec<Value> = exported
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_json_has("sessions export", &Value::Array(lines), "panic");

    // --json keeps every string exact.
    let (code, stdout, stderr) = run_agent(&harness, &config, &script, true);
    assert_eq!(code, 0, "{stderr}");
    assert_clean("run --json stderr", &stderr);
    let events: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let said: String = events
        .iter()
        .filter(|e| e["type"] == "text_delta")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert!(said.contains(&painted("say")), "{said:?}");
    let events = Value::Array(events);
    for label in ["out", "err", "panic", "inject", "field"] {
        assert_json_has("run --json", &events, label);
    }
}

#[test]
fn run_escapes_block_reasons() {
    let harness = painter_harness();
    install_probe(
        &harness,
        "gate",
        json!({ "before-tool-call": { "kind": "block", "value": painted("block") } }),
    );
    let config = write_file(&harness, "config.toml", "");
    let script = painting_script(&harness);
    let (_, stdout, stderr) = run_agent(&harness, &config, &script, false);
    assert_shows("run (blocked)", &stdout, "block");
    assert_clean("run (blocked) stderr", &stderr);
    let (_, stdout, _) = run_agent(&harness, &config, &script, true);
    let events: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_json_has("run --json (blocked)", &Value::Array(events), "block");
    let (_, listed, _) = run(harness.command().args(["sessions", "list"]));
    assert_clean("sessions list (blocked)", &listed);
}

#[test]
fn chat_escapes_tool_descriptions_and_model_text() {
    let harness = painter_harness();
    let script = painting_script(&harness);
    let mut child = harness
        .command()
        .env_remove("RUST_LOG")
        .arg("chat")
        .arg("--script")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"/tools\nhello\n/exit\n").unwrap();
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_shows("chat /tools", &stdout, "desc");
    assert_shows("chat", &stdout, "say");
    assert_shows("chat", &stdout, "out");
    assert_clean("chat stderr", &stderr);
}

/// The progress line is only drawn when stderr is a terminal: run the call
/// under `script(1)`, which gives it a pseudo-terminal. The host's own
/// line-clearing sequence is allowed; the plugin's payload is not.
#[test]
fn the_progress_line_on_a_terminal_escapes_the_message() {
    let harness = painter_harness();
    let command = harness.command();
    let mut words = vec![command.get_program().to_string_lossy().into_owned()];
    words.extend(command.get_args().map(|a| a.to_string_lossy().into_owned()));
    words.extend(["tools", "call", "paint_progress"].map(str::to_owned));
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let available = Command::new("script").arg("--version").output().is_ok();
    assert!(
        available,
        "script(1) from util-linux is needed for this test"
    );
    let output = Command::new("script")
        .args(["-qec", &quoted.join(" "), "/dev/null"])
        .env("XDG_CONFIG_HOME", harness.tmp.path().join("no-config"))
        .env_remove("AGENT_HOST_CONFIG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let terminal = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{terminal}");
    assert!(terminal.contains(&shown("progress")), "{terminal:?}");
    for raw in ["\x1b]0;", "\x1b[2J", "\u{9b}", "\x07"] {
        assert!(
            !terminal.contains(raw),
            "{raw:?} reached the terminal: {terminal:?}"
        );
    }
}
