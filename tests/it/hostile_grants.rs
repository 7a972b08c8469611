//! Hostile grants (issue 11, findings 1 and 8): swapped grant paths, guest-made links, overlapping grants, open-file exhaustion.

use std::path::{Path, PathBuf};

use agent_host_runtime::config::{DirGrant, Grant};
use agent_host_runtime::manifest::Access;
use agent_host_runtime::{CallError, CallOptions, Runtime, ToolError};
use serde_json::{Value, json};

use crate::support::{Harness, example_plugin, run_command, test_plugin};

const SECRET: &str = "root:top secret";

/// A workspace `ws` with `ws/docs/readme.txt`, and a `secret/passwd`
/// outside every grant: what an escape would read.
fn workspace(harness: &Harness) -> PathBuf {
    let ws = harness.tmp.path().join("ws");
    std::fs::create_dir_all(ws.join("docs")).unwrap();
    std::fs::write(ws.join("docs/readme.txt"), "public docs").unwrap();
    let secret = harness.tmp.path().join("secret");
    std::fs::create_dir(&secret).unwrap();
    std::fs::write(secret.join("passwd"), SECRET).unwrap();
    ws
}

fn dir(host: impl Into<PathBuf>, guest: &str, access: Access) -> DirGrant {
    DirGrant {
        host: host.into(),
        guest: guest.into(),
        access,
        follow_symlinks: false,
    }
}

fn dirs(dirs: Vec<DirGrant>) -> Grant {
    Grant {
        dirs,
        ..Default::default()
    }
}

async fn call(runtime: &Runtime, tool: &str, args: Value) -> Result<String, CallError> {
    runtime
        .call_tool(tool, &args, CallOptions::default())
        .await
        .map(|output| output.to_text())
}

fn tool_failure(result: Result<String, CallError>, what: &str) -> String {
    match result {
        Err(CallError::Tool {
            error: ToolError::Failed(message) | ToolError::Denied(message),
            ..
        }) => message,
        other => panic!("{what}: expected a tool error, got {other:?}"),
    }
}

async fn assert_still_serving(runtime: &Runtime) {
    assert_eq!(call(runtime, "ok", json!({})).await.unwrap(), "ok");
}

/// The load problem recorded for `plugin`.
fn problem(runtime: &Runtime, plugin: &str) -> String {
    runtime
        .problems()
        .into_iter()
        .find(|p| p.plugin.as_deref() == Some(plugin))
        .map(|p| p.error)
        .unwrap_or_else(|| panic!("no load problem for {plugin}: {:?}", runtime.problems()))
}

#[tokio::test]
async fn a_grant_swapped_for_a_link_by_another_plugin_is_refused_at_restart_and_cannot_redirect_a_running_host()
 {
    let mut harness = Harness::new();
    harness.install(test_plugin::hostile());
    harness.install(example_plugin::fs());
    let ws = workspace(&harness);
    // The setup across plugins: hostile may write the workspace,
    // fs reads a directory inside it. Guest links are allowed here so the
    // attacker can plant one itself.
    harness.config.sandbox.allow_guest_symlinks = true;
    harness.grant("hostile", dirs(vec![dir(&ws, "/w", Access::ReadWrite)]));
    harness.grant(
        "fs",
        dirs(vec![dir(ws.join("docs"), "/workspace", Access::Read)]),
    );
    let running = harness.runtime().await;
    assert!(running.problems().is_empty(), "{:?}", running.problems());
    let fs = running
        .plugins()
        .into_iter()
        .find(|p| p.name() == "fs")
        .unwrap();
    assert!(
        fs.capabilities
            .warnings
            .iter()
            .any(|w| w.contains("writable grant /w") && w.contains("plugin 'hostile'")),
        "{:?}",
        fs.capabilities.warnings
    );

    // The attack: move docs away and put a link to the secret in its place.
    let renamed = call(
        &running,
        "rename",
        json!({"from": "/w/docs", "to": "/w/old-docs"}),
    )
    .await;
    assert_eq!(renamed.unwrap(), "renamed");
    let linked = call(
        &running,
        "symlink",
        json!({"target": "../secret", "link": "/w/docs"}),
    )
    .await;
    assert_eq!(linked.unwrap(), "linked");
    assert!(
        std::fs::symlink_metadata(ws.join("docs"))
            .unwrap()
            .is_symlink()
    );

    // The running host still serves the directory it opened at load.
    let read = call(
        &running,
        "fs_read",
        json!({"path": "/workspace/readme.txt"}),
    )
    .await;
    assert!(read.unwrap().contains("public docs"));
    let leaked = call(&running, "fs_read", json!({"path": "/workspace/passwd"})).await;
    assert!(
        !leaked.as_ref().is_ok_and(|text| text.contains(SECRET)),
        "{leaked:?}"
    );
    assert!(leaked.is_err(), "{leaked:?}");

    // At the next start the grant passes through the planted link: refused.
    drop(running);
    let restarted = harness.runtime().await;
    let error = problem(&restarted, "fs");
    assert!(
        error.contains("symbolic link")
            && error.contains(&ws.join("docs").display().to_string())
            && error.contains("(-> ../secret)")
            && error.contains("follow_symlinks = true"),
        "{error}"
    );
    assert!(restarted.tool("fs_read").is_none());
    assert_still_serving(&restarted).await;
}

#[tokio::test]
async fn a_grant_path_swapped_from_outside_is_refused_at_restart_and_a_loaded_runtime_keeps_its_directory()
 {
    let mut harness = Harness::new();
    harness.install(test_plugin::hostile());
    let ws = workspace(&harness);
    harness.grant(
        "hostile",
        dirs(vec![dir(ws.join("docs"), "/docs", Access::Read)]),
    );
    let running = harness.runtime().await;
    assert!(running.problems().is_empty(), "{:?}", running.problems());

    // Another process (here: the test) swaps the directory for a link.
    std::fs::rename(ws.join("docs"), ws.join("old-docs")).unwrap();
    std::os::unix::fs::symlink("../secret", ws.join("docs")).unwrap();

    let read = call(&running, "read_file", json!({"path": "/docs/readme.txt"})).await;
    assert_eq!(read.unwrap(), "public docs");
    let leaked = call(&running, "read_file", json!({"path": "/docs/passwd"})).await;
    let message = tool_failure(leaked, "reading the secret through a swapped grant");
    assert!(!message.contains(SECRET), "{message}");
    assert_still_serving(&running).await;

    drop(running);
    let restarted = harness.runtime().await;
    let error = problem(&restarted, "hostile");
    assert!(
        error.contains("grant for plugin 'hostile'")
            && error.contains("symbolic link")
            && error.contains("follow_symlinks"),
        "{error}"
    );

    drop(restarted);
    // The host owner can opt in for a link they own.
    let mut grant = dir(ws.join("docs"), "/docs", Access::Read);
    grant.follow_symlinks = true;
    harness.grant("hostile", dirs(vec![grant]));
    let opted_in = harness.runtime().await;
    assert!(opted_in.problems().is_empty(), "{:?}", opted_in.problems());
    let read = call(&opted_in, "read_file", json!({"path": "/docs/passwd"})).await;
    assert_eq!(read.unwrap(), SECRET);
    assert_still_serving(&opted_in).await;
}

#[tokio::test]
async fn guests_cannot_create_symlinks_unless_the_host_allows_it() {
    let mut harness = Harness::new();
    harness.install(test_plugin::hostile());
    let ws = workspace(&harness);
    harness.grant("hostile", dirs(vec![dir(&ws, "/w", Access::ReadWrite)]));
    let runtime = harness.runtime().await;
    let result = call(
        &runtime,
        "symlink",
        json!({"target": "../secret", "link": "/w/escape"}),
    )
    .await;
    let message = tool_failure(result, "guest symlink");
    assert!(message.contains("not-permitted"), "{message}");
    assert!(std::fs::symlink_metadata(ws.join("escape")).is_err());
    // Writing plain files still works.
    let written = call(
        &runtime,
        "write_file",
        json!({"path": "/w/note.txt", "content": "x"}),
    )
    .await;
    assert_eq!(written.unwrap(), "written");
    assert_still_serving(&runtime).await;

    drop(runtime);
    harness.config.sandbox.allow_guest_symlinks = true;
    let allowing = harness.runtime().await;
    let result = call(
        &allowing,
        "symlink",
        json!({"target": "note.txt", "link": "/w/link"}),
    )
    .await;
    assert_eq!(result.unwrap(), "linked");
    assert!(
        std::fs::symlink_metadata(ws.join("link"))
            .unwrap()
            .is_symlink()
    );
    // A link inside a grant still cannot lead out of it.
    let result = call(
        &allowing,
        "symlink",
        json!({"target": "../secret", "link": "/w/escape"}),
    )
    .await;
    assert_eq!(result.unwrap(), "linked");
    let leaked = call(&allowing, "read_file", json!({"path": "/w/escape/passwd"})).await;
    tool_failure(leaked, "reading through a guest link out of the grant");
    assert_still_serving(&allowing).await;
}

#[tokio::test]
async fn overlapping_grants_of_one_plugin_are_refused_when_one_is_writable() {
    let mut harness = Harness::new();
    harness.install(test_plugin::hostile());
    harness.install(test_plugin::echo());
    let ws = workspace(&harness);
    // Exactly the configuration.
    harness.grant(
        "hostile",
        dirs(vec![
            dir(&ws, "/w", Access::ReadWrite),
            dir(ws.join("docs"), "/docs", Access::Read),
        ]),
    );
    let runtime = harness.runtime().await;
    let error = problem(&runtime, "hostile");
    assert!(
        error.contains("overlap")
            && error.contains("/w is writable")
            && error.contains("Grant only the outer directory"),
        "{error}"
    );
    assert!(runtime.tool("read_file").is_none());
    let echoed = call(&runtime, "echo", json!({"text": "still here"})).await;
    assert!(echoed.unwrap().contains("still here"));

    // Read-only overlapping grants cannot be rearranged: allowed.
    drop(runtime);
    harness.grant(
        "hostile",
        dirs(vec![
            dir(&ws, "/w", Access::Read),
            dir(ws.join("docs"), "/docs", Access::Read),
        ]),
    );
    let runtime = harness.runtime().await;
    assert!(runtime.problems().is_empty(), "{:?}", runtime.problems());
    let read = call(&runtime, "read_file", json!({"path": "/docs/readme.txt"})).await;
    assert_eq!(read.unwrap(), "public docs");
}

#[test]
fn plugins_check_shows_an_overlap_with_another_plugins_writable_grant() {
    let harness = Harness::new();
    let ws = workspace(&harness);
    let config = harness.tmp.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[[grants.fs.dirs]]\nhost = {:?}\nguest = \"/w\"\naccess = \"read-write\"\n\n\
             [[grants.hostile.dirs]]\nhost = {:?}\nguest = \"/docs\"\naccess = \"read\"\n",
            ws.display().to_string(),
            ws.join("docs").display().to_string()
        ),
    )
    .unwrap();
    let (wasm, _) = test_plugin::hostile();
    harness.install(test_plugin::hostile());
    let (code, stdout, stderr) = run_command(
        harness
            .command()
            .arg("--config")
            .arg(&config)
            .args(["plugins", "check"])
            .arg(harness.plugins_dir().join(wasm.file_name().unwrap())),
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("WARNING: grant /docs") && stdout.contains("plugin 'fs'"),
        "{stdout}"
    );
}

/// How many of this process's descriptors are open on files inside `dir`.
fn open_fds_inside(dir: &Path) -> usize {
    let dir = dir.canonicalize().unwrap();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|entry| std::fs::read_link(entry.path()).ok())
        .filter(|target| target.starts_with(&dir) && target != &dir)
        .count()
}

async fn hold_files(runtime: &Runtime, streams: bool) -> Value {
    let text = call(
        runtime,
        "hold_files",
        json!({"path": "/sandbox/file.txt", "count": 2000, "streams": streams}),
    )
    .await
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn a_call_holds_at_most_max_open_files_and_gets_an_error_past_it() {
    let mut harness = Harness::new();
    harness.install(test_plugin::hostile());
    let sandbox = harness.tmp.path().join("sandbox");
    std::fs::create_dir(&sandbox).unwrap();
    std::fs::write(sandbox.join("file.txt"), "x").unwrap();
    harness.grant(
        "hostile",
        dirs(vec![dir(&sandbox, "/sandbox", Access::Read)]),
    );
    assert_eq!(harness.config.sandbox.max_open_files, 128);
    let runtime = harness.runtime().await;
    // 128 unless this machine's descriptor limit is too small for
    // 128 x sandbox.max_instances, then lowered (and said so).
    let hostile = runtime.plugins().into_iter().next().unwrap();
    let default_cap = hostile.capabilities.limits.max_open_files;
    assert!(default_cap > 0 && default_cap <= 128, "{default_cap}");
    assert_eq!(
        default_cap < 128,
        hostile
            .capabilities
            .warnings
            .iter()
            .any(|w| w.contains("sandbox.max_open_files (128) is lowered")),
    );
    assert_eq!(open_fds_inside(&sandbox), 0);

    let report = hold_files(&runtime, false).await;
    assert_eq!(report["opened"], json!(default_cap), "{report}");
    let error = report["error"].as_str().unwrap_or_default();
    assert!(!error.is_empty(), "{report}");
    assert_eq!(report["reopened"], json!(true), "{report}");
    // Everything the call held is closed once it returns.
    assert_eq!(open_fds_inside(&sandbox), 0);
    assert_still_serving(&runtime).await;

    // A smaller cap, and handles held as streams whose descriptors are
    // dropped count as well.
    drop(runtime);
    harness.config.sandbox.max_open_files = 16;
    let runtime = harness.runtime().await;
    for streams in [false, true] {
        let report = hold_files(&runtime, streams).await;
        assert_eq!(report["opened"], json!(16), "streams {streams}: {report}");
        assert!(report["error"].is_string(), "{report}");
        assert_eq!(report["reopened"], json!(true), "{report}");
        assert_eq!(open_fds_inside(&sandbox), 0);
        assert_still_serving(&runtime).await;
    }
}
