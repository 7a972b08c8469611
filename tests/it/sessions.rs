//! Persistent sessions: batched writes, flush on close, resume, export, schema versions.

use agent_host::provider::{Message, Usage};
use agent_host::sessions::{ExportFormat, Sessions, WriterConfig};
use agent_host::store::Store;

use crate::support::{Harness, example_plugin};

#[tokio::test]
async fn appends_are_batched_and_survive_a_clean_close() {
    let tmp = tempfile::tempdir().unwrap();
    let id = {
        let store = Store::open(tmp.path()).unwrap();
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
    let store = Store::open(tmp.path()).unwrap();
    let sessions = Sessions::open(&store, WriterConfig::default());
    let messages = sessions.messages(&id);
    assert_eq!(messages.len(), 1000);
    assert_eq!(messages[999].content, "message 999");
    assert_eq!(sessions.get(&id).unwrap().message_count, 1000);
}

#[tokio::test]
async fn delete_and_export_formats() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let sessions = Sessions::open(&store, WriterConfig::default());
    let mut record = sessions.create("export me", "test", "model");
    let call = agent_host::provider::ToolCall {
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

#[test]
fn a_database_from_a_newer_schema_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    drop(Store::open(tmp.path()).unwrap());
    // Wait for sled to let go of its lock, then bump the version by hand.
    std::thread::sleep(std::time::Duration::from_millis(200));
    {
        let db = sled::open(tmp.path().join("db")).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("schema-version", &99u32.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let err = Store::open(tmp.path()).unwrap_err().to_string();
    assert!(
        err.contains("newer agent-host") && err.contains("99"),
        "{err}"
    );
}

#[test]
fn run_resumes_a_session_with_its_full_history() {
    let harness = Harness::new();
    for name in ["calc", "text", "notes"] {
        harness.install(example_plugin(name));
    }
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo-script.json");
    let agent_host = || {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_agent-host"));
        command
            .arg("--plugins")
            .arg(harness.plugins_dir())
            .arg("--data-dir")
            .arg(&harness.config.data_dir)
            .env("XDG_CONFIG_HOME", harness.tmp.path().join("no-config"));
        command
    };
    let first = agent_host()
        .args(["run", "the total?", "--json", "--script"])
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let header: serde_json::Value = serde_json::from_str(
        String::from_utf8_lossy(&first.stdout)
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let id = header["session_id"].as_str().unwrap().to_owned();

    let second = agent_host()
        .args(["run", "again", "--json", "--session", &id, "--script"])
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let header: serde_json::Value = serde_json::from_str(
        String::from_utf8_lossy(&second.stdout)
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["resumed_messages"], 7);

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
