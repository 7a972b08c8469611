//! Persistent sessions: batched writes, flush on close, deletes, resume, export, crash loss, live sessions, per-session plugin state.

use agent_host_agent::sessions::{ExportFormat, Sessions, WriterConfig};
use agent_host_llm::{Message, Usage};
use agent_host_runtime::store::DataStore;

use crate::support::{Harness, example_plugin, first_json_line, run_command};

#[tokio::test]
async fn appends_are_batched_and_survive_a_clean_close() {
    let tmp = tempfile::tempdir().unwrap();
    let id = {
        let store = DataStore::open(tmp.path()).unwrap();
        let sessions = Sessions::open(&store, WriterConfig::default());
        let mut record = sessions.create("batching", "test", "model");
        for i in 0..1000 {
            sessions.append(
                &mut record,
                &[Message::user(format!("message {i}"))],
                Usage::default(),
                None,
            );
        }
        sessions.close().await;
        let stats = sessions.stats();
        // 1000 messages plus 1001 record updates, in far fewer batches.
        assert_eq!(stats.operations, 2001, "{stats:?}");
        assert!(stats.batches <= 2001 / 64 + 4, "{stats:?}");
        record.id
    };
    let store = DataStore::open(tmp.path()).unwrap();
    let sessions = Sessions::open(&store, WriterConfig::default());
    let messages = sessions.messages(&id);
    assert_eq!(messages.len(), 1000);
    assert_eq!(messages[999].content, "message 999");
    assert_eq!(sessions.get(&id).unwrap().message_count, 1000);
}

#[tokio::test]
async fn delete_and_export_formats() {
    let tmp = tempfile::tempdir().unwrap();
    let store = DataStore::open(tmp.path()).unwrap();
    let sessions = Sessions::open(&store, WriterConfig::default());
    let mut record = sessions.create("export me", "test", "model");
    let call = agent_host_llm::ToolCall {
        id: "c1".into(),
        name: "calc".into(),
        arguments: "{\"expression\":\"1+1\"}".into(),
    };
    sessions.append(
        &mut record,
        &[
            Message::user("what is 1+1?"),
            Message::assistant("", vec![call]),
            Message::tool_result("c1", "2", false),
            Message::assistant("2", vec![]),
        ],
        Usage::default(),
        Some("finished"),
    );
    sessions.flush().await;
    let jsonl = sessions.export(&record.id, ExportFormat::Jsonl).unwrap();
    let lines: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0]["session"]["id"], record.id.as_str());
    assert_eq!(lines[2]["tool_calls"][0]["name"], "calc");
    let sharegpt: serde_json::Value =
        serde_json::from_str(&sessions.export(&record.id, ExportFormat::ShareGpt).unwrap())
            .unwrap();
    let froms: Vec<&str> = sharegpt["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["from"].as_str().unwrap())
        .collect();
    assert_eq!(froms, vec!["human", "function_call", "observation", "gpt"]);
    assert!(sessions.delete(&record.id));
    sessions.flush().await;
    assert!(sessions.get(&record.id).is_none());
    assert!(sessions.messages(&record.id).is_empty());
    assert!(!sessions.delete(&record.id));
}

#[tokio::test]
async fn a_session_deleted_before_its_writes_landed_is_gone() {
    let tmp = tempfile::tempdir().unwrap();
    let store = DataStore::open(tmp.path()).unwrap();
    let sessions = Sessions::open(&store, WriterConfig::default());
    let kept = sessions.create("kept", "test", "model");
    let mut record = sessions.create("short-lived", "test", "model");
    sessions.append(
        &mut record,
        &[Message::user("never mind")],
        Usage::default(),
        None,
    );
    // Nothing has reached the store yet: the delete is queued behind the
    // writes it undoes, in the same batch.
    assert!(sessions.delete(&record.id));
    sessions.close().await;
    assert!(sessions.get(&record.id).is_none());
    assert!(sessions.messages(&record.id).is_empty());
    let listed: Vec<String> = sessions.list().into_iter().map(|r| r.id).collect();
    assert_eq!(listed, vec![kept.id]);
}

#[test]
fn run_resumes_a_session_with_its_full_history() {
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
    let agent_host = || harness.command();
    let (code, stdout, stderr) = run_command(
        agent_host()
            .args(["run", "the total?", "--json", "--script"])
            .arg(&script),
    );
    assert_eq!(code, 0, "{stderr}");
    let id = first_json_line(&stdout)["session_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (code, stdout, stderr) = run_command(
        agent_host()
            .args(["run", "again", "--json", "--session", &id, "--script"])
            .arg(&script),
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(first_json_line(&stdout)["resumed_messages"], 7);

    let listed = agent_host()
        .args(["sessions", "list", "--json"])
        .output()
        .unwrap();
    let sessions: Vec<serde_json::Value> = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["message_count"], 14);
    assert_eq!(sessions[0]["last_outcome"], "finished");

    let missing = agent_host()
        .args(["run", "x", "--session", "nope"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("sessions list"));
}

#[test]
fn sigterm_cancels_the_turn_and_the_session_is_saved() {
    let harness = Harness::new();
    harness.install(example_plugin::calc());
    // A "model" that accepts the connection and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut child = harness
        .command()
        .args(["run", "hello?", "--provider", "openai", "--base-url"])
        .arg(format!("http://127.0.0.1:{port}/v1"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (_connection, _) = listener.accept().unwrap();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert_eq!(exit.code(), Some(130), "{exit:?}");

    let store = DataStore::open(&harness.config.data_dir).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let sessions = Sessions::open(&store, WriterConfig::default());
        let listed = sessions.list();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].last_outcome.as_deref(), Some("cancelled"));
        let messages = sessions.messages(&listed[0].id);
        assert_eq!(messages[0].content, "hello?");
        assert!(
            messages
                .last()
                .unwrap()
                .content
                .ends_with(agent_host_agent::CANCELLED_NOTE)
        );
        sessions.close().await;
    });
}

/// Runs as a child process (see the kill -9 test): appends messages forever,
/// reporting on stdout how many are known durable after each flush.
#[tokio::test]
#[ignore = "helper process for kill_9_mid_writes_loses_at_most_what_was_not_flushed"]
async fn child_session_writer() {
    let Ok(dir) = std::env::var("AGENT_HOST_CHILD_DATA_DIR") else {
        return;
    };
    let store = DataStore::open(std::path::Path::new(&dir)).unwrap();
    let sessions = Sessions::open(&store, WriterConfig::default());
    let mut record = sessions.create("kill -9", "test", "model");
    // libtest has already printed "test name ... " without a newline.
    println!("\nsession {}", record.id);
    let mut appended = 0u64;
    loop {
        for _ in 0..50 {
            sessions.append(
                &mut record,
                &[Message::user(format!("m{appended}"))],
                Usage::default(),
                None,
            );
            appended += 1;
        }
        sessions.flush().await;
        println!("durable {appended}");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[test]
fn kill_9_mid_writes_loses_at_most_what_was_not_flushed() {
    use std::io::BufRead;
    let tmp = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sessions::child_session_writer",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("AGENT_HOST_CHILD_DATA_DIR", tmp.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut session = String::new();
    let mut durable = 0u64;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(id) = line.strip_prefix("session ") {
            session = id.to_owned();
        } else if let Some(count) = line.strip_prefix("durable ") {
            durable = count.parse().unwrap();
            if durable >= 2000 {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(!session.is_empty() && durable >= 2000);

    let store = DataStore::open(tmp.path()).expect("the database reopens after kill -9");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let sessions = Sessions::open(&store, WriterConfig::default());
        let messages = sessions.messages(&session);
        assert!(
            messages.len() as u64 >= durable,
            "{} messages survived, {durable} were flushed",
            messages.len()
        );
        // They survive in order, with no holes.
        for (i, message) in messages.iter().enumerate() {
            assert_eq!(message.content, format!("m{i}"));
        }
        sessions.close().await;
    });
}

#[tokio::test]
async fn live_sessions_are_bounded_and_reload_after_eviction_or_expiry() {
    use agent_host_agent::sessions::LiveSessions;
    use std::sync::Arc;
    use std::time::Duration;

    let tmp = tempfile::tempdir().unwrap();
    let store = DataStore::open(tmp.path()).unwrap();
    let sessions = Arc::new(Sessions::open(&store, WriterConfig::default()));
    let live = LiveSessions::new(sessions.clone(), 2, Duration::from_secs(3600));
    let mut ids = Vec::new();
    for name in ["a", "b", "c"] {
        let session = live.create(name, "test", "model");
        let mut session = session.lock().await;
        live.append(
            &mut session,
            &[Message::user(format!("hello from {name}"))],
            Usage::default(),
            None,
        );
        ids.push(session.record.id.clone());
    }
    assert_eq!(live.len(), 2, "bounded by capacity");
    assert_eq!(live.stats().evictions, 1);
    // The evicted session comes back from the store with its history.
    let a = live.get(&ids[0]).await.unwrap();
    assert_eq!(a.lock().await.history[0].content, "hello from a");
    assert_eq!(live.stats().loads, 1);
    // A session in memory is a hit.
    live.get(&ids[0]).await.unwrap();
    assert_eq!(live.stats().hits, 1);
    assert!(live.get("no-such-session").await.is_none());

    // An idle session past its TTL is dropped and reloaded on next use.
    let short = LiveSessions::new(sessions.clone(), 8, Duration::from_millis(20));
    short.get(&ids[1]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    let b = short.get(&ids[1]).await.unwrap();
    assert_eq!(b.lock().await.history[0].content, "hello from b");
    assert_eq!(short.stats().expirations, 1);
    assert_eq!(short.stats().loads, 2);
    sessions.close().await;
}

#[tokio::test]
async fn plugin_state_is_per_session_and_loaded_once() {
    use agent_host_runtime::{CallError, CallOptions};
    use serde_json::json;

    let harness = Harness::new();
    harness.install(crate::support::test_plugin::memo());
    let runtime = harness.runtime().await;
    let in_session = |id: &str| CallOptions {
        session_id: Some(id.to_owned()),
        ..CallOptions::default()
    };
    let call = |tool: &'static str, args: serde_json::Value, options: CallOptions| {
        let runtime = runtime.clone();
        async move {
            runtime
                .call_tool(tool, &args, options)
                .await
                .map(|o| o.to_text())
        }
    };
    call("remember", json!({"text": "alpha"}), in_session("s1"))
        .await
        .unwrap();
    call("remember", json!({"text": "beta"}), in_session("s2"))
        .await
        .unwrap();
    for _ in 0..5 {
        assert_eq!(
            call("recall", json!({}), in_session("s1")).await.unwrap(),
            "alpha"
        );
    }
    assert_eq!(
        call("recall", json!({}), in_session("s2")).await.unwrap(),
        "beta"
    );
    assert_eq!(
        call("recall", json!({}), in_session("s3")).await.unwrap(),
        "nothing"
    );
    // Outside a session there is no session state.
    assert_eq!(
        call("recall", json!({}), CallOptions::default())
            .await
            .unwrap(),
        "nothing"
    );
    let err = call("remember", json!({"text": "x"}), CallOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, CallError::Tool { .. })
            && err.to_string().contains("not part of an agent session"),
        "{err}"
    );
    // Each (plugin, session) was read from the store once, not per call.
    assert_eq!(runtime.session_state_loads(), 3);
    runtime.store().flush().unwrap();
    drop(runtime);

    // It persists: a new runtime reads it back.
    let runtime = harness.runtime().await;
    let recalled = runtime
        .call_tool("recall", &json!({}), in_session("s1"))
        .await
        .unwrap()
        .to_text();
    assert_eq!(recalled, "alpha");
}

#[tokio::test]
async fn session_ids_are_unique_even_in_a_burst() {
    let tmp = tempfile::tempdir().unwrap();
    let store = DataStore::open(tmp.path()).unwrap();
    let sessions = Sessions::open(&store, WriterConfig::default());
    let ids: std::collections::HashSet<String> = (0..2000)
        .map(|_| sessions.create("burst", "t", "m").id)
        .collect();
    assert_eq!(ids.len(), 2000);
    sessions.close().await;
    assert_eq!(sessions.list().len(), 2000);
}

#[test]
fn a_corrupted_database_gives_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let store = DataStore::open(tmp.path()).unwrap();
        store.plugin_kv("p").set("k", b"v").unwrap();
        store.flush().unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    // Overwrite every file of the database with garbage.
    for entry in std::fs::read_dir(tmp.path().join("db")).unwrap().flatten() {
        if entry.path().is_file() {
            std::fs::write(entry.path(), vec![0xA5; 4096]).unwrap();
        }
    }
    match DataStore::open(tmp.path()) {
        Err(err) => {
            let message = err.to_string();
            assert!(
                message.contains(&tmp.path().display().to_string()),
                "{message}"
            );
            assert!(
                message.contains("corrupt") || message.contains("database"),
                "{message}"
            );
        }
        // sled may also recover to an empty database from torn files; what
        // matters is that it neither panics nor serves garbage.
        Ok(store) => assert_ne!(
            store.plugin_kv("p").get("k").unwrap().as_deref(),
            Some(&[0xA5u8][..])
        ),
    }
}
