//! The `agent-host` binary: output formats, exit codes, environment grants, and the data-dir lock.

use std::process::Command;

use serde_json::Value;

use crate::support::{Harness, example_plugin, run_command as run, test_plugin};

fn agent_host(harness: &Harness) -> Command {
    harness.command()
}

#[test]
fn tools_list_and_call_with_json_output() {
    let harness = Harness::new();
    harness.install(example_plugin::calc());
    harness.install(test_plugin::echo());
    let (code, stdout, stderr) = run(agent_host(&harness).args(["tools", "list", "--json"]));
    assert_eq!(code, 0, "{stderr}");
    let tools: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["calc", "echo"]);

    let (code, stdout, _) =
        run(agent_host(&harness).args(["tools", "call", "echo", "--args", r#"{"text":"hey"}"#]));
    assert_eq!((code, stdout.trim()), (0, "hey"));

    let (code, stdout, _) = run(agent_host(&harness).args([
        "tools",
        "call",
        "calc",
        "--args",
        r#"{"expression":"6*7"}"#,
        "--json",
    ]));
    assert_eq!(code, 0);
    let result: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(result["ok"], true);
    assert_eq!(result["output"]["structured"]["value"], 42.0);

    let (code, stdout, _) = run(agent_host(&harness).args(["tools", "describe", "echo", "--json"]));
    assert_eq!(code, 0);
    let described: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(described["input_schema"]["required"][0], "text");
}

#[test]
fn exit_codes_separate_tool_errors_from_usage_errors() {
    let harness = Harness::new();
    harness.install(example_plugin::calc());
    // Tool error: 1.
    let (code, _, stderr) = run(agent_host(&harness).args([
        "tools",
        "call",
        "calc",
        "--args",
        r#"{"expression":"1/0"}"#,
    ]));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("calc"), "{stderr}");
    // Unknown tool, bad JSON, schema violation: 2, each saying what to do.
    let (code, _, stderr) = run(agent_host(&harness).args(["tools", "call", "nope"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("tools list"), "{stderr}");
    let (code, _, stderr) =
        run(agent_host(&harness).args(["tools", "call", "calc", "--args", "{not json"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("--args is not valid JSON"), "{stderr}");
    let (code, _, stderr) =
        run(agent_host(&harness).args(["tools", "call", "calc", "--args", r#"{"expression": 5}"#]));
    assert_eq!(code, 2);
    assert!(stderr.contains("/expression"), "{stderr}");
    // --json reports the error as data and keeps the exit code.
    let (code, stdout, _) = run(agent_host(&harness).args([
        "tools",
        "call",
        "calc",
        "--args",
        r#"{"expression":"1/0"}"#,
        "--json",
    ]));
    assert_eq!(code, 1);
    let result: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(result["error"]["kind"], "tool_error");
    // Bad config file: 2.
    let bad = harness.tmp.path().join("bad.toml");
    std::fs::write(&bad, "[sandbox]\nmax_memory_mb = -1\n").unwrap();
    let (code, _, stderr) = run(agent_host(&harness)
        .arg("--config")
        .arg(&bad)
        .args(["tools", "list"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("bad.toml"), "{stderr}");
}

#[test]
fn plugins_check_and_list_show_status_and_requests() {
    let harness = Harness::new();
    harness.install(test_plugin::hostile());
    harness.install(test_plugin::wrong_version());
    let (code, stdout, stderr) = run(agent_host(&harness)
        .arg("plugins")
        .arg("check")
        .arg(harness.plugins_dir().join("hostile.wasm")));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("dir /sandbox (read)"), "{stdout}");
    assert!(stdout.contains("NOT granted: env SECRET_VAR"), "{stdout}");
    assert!(stdout.contains("memory 32 MiB"), "{stdout}");

    let (code, _, stderr) = run(agent_host(&harness)
        .arg("plugins")
        .arg("check")
        .arg(harness.plugins_dir().join("wrong-version.wasm")));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("9.0.0") && stderr.contains("0.1.0"),
        "{stderr}"
    );

    let (code, stdout, _) = run(agent_host(&harness).args(["plugins", "list", "--json"]));
    assert_eq!(code, 0);
    let rows: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    let status = |name: &str| {
        rows.iter()
            .find(|r| r["name"] == name)
            .map(|r| r["status"].as_str().unwrap().to_owned())
    };
    assert_eq!(status("hostile").as_deref(), Some("ok"));
    assert_eq!(status("wrong-version").as_deref(), Some("error"));
}

#[test]
fn only_granted_environment_variables_are_visible() {
    let harness = Harness::new();
    harness.install(test_plugin::hostile());
    let config = harness.tmp.path().join("config.toml");
    std::fs::write(&config, "[grants.hostile]\nenv = [\"GRANTED_VAR\"]\n").unwrap();
    let get = |name: &str| {
        run(agent_host(&harness)
            .arg("--config")
            .arg(&config)
            .env("GRANTED_VAR", "visible-value")
            .env("SECRET_VAR", "hidden-value")
            .args([
                "tools",
                "call",
                "get_env",
                "--args",
                &format!(r#"{{"name":"{name}"}}"#),
            ]))
    };
    let (code, stdout, stderr) = get("GRANTED_VAR");
    assert_eq!((code, stdout.trim()), (0, "visible-value"), "{stderr}");
    let (code, stdout, _) = get("SECRET_VAR");
    assert_eq!((code, stdout.trim()), (0, "unset"));
    let (_, stdout, _) = get("HOME");
    assert_eq!(stdout.trim(), "unset");
}

#[test]
fn a_data_dir_in_use_names_the_holder() {
    let harness = Harness::new();
    harness.install(test_plugin::echo());
    let _held = agent_host_runtime::store::DataStore::open(&harness.config.data_dir).unwrap();
    // A call needs the plugin's state and keeps its own: refused at start.
    let (code, _, stderr) = run(agent_host(&harness).args(["tools", "call", "echo"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("in use by another agent-host process"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("pid {}", std::process::id())),
        "{stderr}"
    );
}

#[test]
fn tools_can_be_listed_while_another_process_holds_the_data_dir() {
    let harness = Harness::new();
    harness.install(test_plugin::echo());
    let list = || run(agent_host(&harness).args(["tools", "list", "--json"]));
    let names = |stdout: &str| -> Vec<String> {
        let rows: Vec<serde_json::Value> = serde_json::from_str(stdout).unwrap();
        rows.iter()
            .map(|row| row["name"].as_str().unwrap().to_owned())
            .collect()
    };
    {
        // A cold cache while held: compiled and described, only the
        // artifact goes unrecorded.
        let _held = agent_host_runtime::store::DataStore::open(&harness.config.data_dir).unwrap();
        let (code, stdout, stderr) = list();
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(names(&stdout), ["echo"]);
    }
    // Warm now (a run of its own records everything), then held again: the
    // description records beside the database answer alone.
    let (code, _, stderr) = list();
    assert_eq!(code, 0, "{stderr}");
    let _held = agent_host_runtime::store::DataStore::open(&harness.config.data_dir).unwrap();
    let (code, stdout, stderr) = list();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(names(&stdout), ["echo"]);
    assert!(!stderr.contains("unavailable"), "{stderr}");
}

#[test]
fn guest_output_never_reaches_the_terminal() {
    let harness = Harness::new();
    harness.install(test_plugin::hostile());
    let (code, stdout, stderr) =
        run(agent_host(&harness).args(["tools", "call", "flood_stdout", "--args", r#"{"mb":1}"#]));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.len() < 1024,
        "guest stdout leaked: {} bytes",
        stdout.len()
    );
    assert!(
        stderr.len() < 64 * 1024,
        "guest output leaked to stderr: {} bytes",
        stderr.len()
    );
}

#[test]
fn run_streams_an_agent_session_as_json_events() {
    let harness = Harness::new();
    for plugin in [
        example_plugin::calc(),
        example_plugin::text(),
        example_plugin::notes(),
    ] {
        harness.install(plugin);
    }
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo-script.json");
    let (code, stdout, stderr) = run(agent_host(&harness)
        .args(["run", "what is the order total?", "--json", "--script"])
        .arg(&script));
    assert_eq!(code, 0, "{stderr}");
    let events: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(events[0]["type"], "session");
    assert_eq!(events[0]["scripted"], true);
    let mut finished_tools: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "tool_call_finished" && e["ok"] == true)
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    // The first two run in parallel and may finish in either order.
    finished_tools[..2].sort();
    assert_eq!(finished_tools, vec!["calc", "word_count", "note_add"]);
    let last = events.last().unwrap();
    assert_eq!(last["type"], "finished");
    assert!(last["text"].as_str().unwrap().contains("5,140"), "{last}");
}

#[test]
fn run_reports_an_unreachable_provider_clearly() {
    let harness = Harness::new();
    harness.install(test_plugin::echo());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = harness.tmp.path().join("config.toml");
    std::fs::write(&config, "[provider]\nmax_retries = 0\n").unwrap();
    let (code, _, stderr) = run(agent_host(&harness)
        .arg("--config")
        .arg(&config)
        .args(["run", "hi", "--provider", "openai", "--base-url"])
        .arg(format!("http://127.0.0.1:{port}/v1")));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
}

/// `run` checks the provider before it loads any plugin: a missing API key
/// fails at once, without compiling (or warning about) the plugin dir.
#[test]
fn run_refuses_a_bad_provider_before_loading_plugins() {
    let harness = Harness::new();
    harness.write("broken.wasm", b"not a component");
    harness.write(
        "broken.toml",
        b"[plugin]\nname = \"broken\"\nversion = \"0.1.0\"\n",
    );
    let warning = "could not be loaded";

    let (code, _, stderr) = run(agent_host(&harness)
        .args(["run", "hello", "--provider", "openai"])
        .env_remove("OPENAI_API_KEY"));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("OPENAI_API_KEY"), "{stderr}");
    assert!(!stderr.contains(warning), "plugins were loaded: {stderr}");

    // The same plugin dir with a usable provider: now the plugins load.
    let (code, _, stderr) = run(agent_host(&harness).args(["run", "hello"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains(warning), "{stderr}");
}

#[test]
fn a_closed_stdout_pipe_ends_the_output_quietly() {
    let harness = Harness::new();
    harness.install(example_plugin::calc());
    harness.install(test_plugin::echo());
    for args in [
        vec!["tools", "list"],
        vec!["plugins", "list", "--json"],
        vec!["tools", "call", "echo", "--args", r#"{"text":"hey"}"#],
    ] {
        let mut child = agent_host(&harness)
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before the command has printed anything.
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("Broken pipe"), "{args:?}: {stderr}");
    }
}

#[test]
fn cache_totals_count_tools_call_disk_hits_and_plugins_check_compiles() {
    let harness = Harness::new();
    harness.install(example_plugin::calc());
    let totals = |harness: &Harness| -> Value {
        let (code, stdout, stderr) = run(agent_host(harness).args(["cache", "stats", "--json"]));
        assert_eq!(code, 0, "{stderr}");
        serde_json::from_str::<Value>(&stdout).unwrap()["all_runs"].clone()
    };
    let wasm = harness.plugins_dir().join("calc.wasm");
    let (code, _, stderr) = run(agent_host(&harness).args(["plugins", "check"]).arg(&wasm));
    assert_eq!(code, 0, "{stderr}");
    assert!(totals(&harness)["compiles"].as_u64().unwrap() >= 1);
    // `tools list` answers from the kept descriptions; the call loads the
    // artifact the check wrote.
    for _ in 0..2 {
        let (code, _, stderr) = run(agent_host(&harness).args([
            "tools",
            "call",
            "calc",
            "--args",
            r#"{"expression":"1+1"}"#,
        ]));
        assert_eq!(code, 0, "{stderr}");
    }
    assert!(
        totals(&harness)["disk_hits"].as_u64().unwrap() >= 2,
        "{}",
        totals(&harness)
    );
}

#[test]
fn log_lines_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    let harness = Harness::new();
    harness.install(example_plugin::calc());
    let (code, _, stderr) = run(agent_host(&harness).args([
        "-vv",
        "tools",
        "call",
        "calc",
        "--args",
        r#"{"expression":"1+1"}"#,
    ]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("DEBUG"), "-vv shows debug lines: {stderr}");
    assert!(!stderr.contains('\x1b'), "{stderr:?}");
}

#[test]
fn bench_measures_a_plugin_that_imports_wasi_http() {
    let harness = Harness::new();
    harness.install(example_plugin::http());
    let port = crate::support::http_server("pong", 100_000);
    let config = harness.tmp.path().join("config.toml");
    std::fs::write(
        &config,
        format!("[grants.http]\nnetwork = [\"127.0.0.1:{port}\"]\n"),
    )
    .unwrap();
    let args = format!(r#"{{"url": "http://127.0.0.1:{port}/"}}"#);
    let (code, stdout, stderr) = run(agent_host(&harness).arg("--config").arg(&config).args([
        "bench",
        "--only",
        "call",
        "--tool",
        "http_get",
        "--args",
        &args,
        "--iterations",
        "5",
        "--json",
    ]));
    // The bare path links WASI HTTP as the host does, so both paths run.
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["call"]["tool"], "http_get");
    assert!(
        report["call"]["bare"]["median"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    assert!(
        report["call"]["host"]["median"].as_f64().unwrap() > 0.0,
        "{report}"
    );
}

#[test]
fn tools_call_reads_arguments_from_a_file_or_stdin() {
    let harness = Harness::new();
    harness.install(test_plugin::echo());
    harness.install(example_plugin::text());
    // Past the 128 KiB a single command-line argument can hold on Linux.
    let text = "word ".repeat(30_000);
    let args = serde_json::json!({ "text": text }).to_string();
    let file = harness.tmp.path().join("args.json");
    std::fs::write(&file, &args).unwrap();
    let (code, stdout, stderr) = run(agent_host(&harness)
        .args(["tools", "call", "word_count", "--json", "--args"])
        .arg(format!("@{}", file.display())));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("30000"), "{stdout}");

    let mut child = agent_host(&harness)
        .args(["tools", "call", "echo", "--args", "@-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        br#"{"text": "from stdin"}"#,
    )
    .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "from stdin");

    let (code, _, stderr) =
        run(agent_host(&harness).args(["tools", "call", "echo", "--args", "@/no/such/file"]));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("cannot read --args from /no/such/file"),
        "{stderr}"
    );
}
