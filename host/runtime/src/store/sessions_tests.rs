//! Unit tests of the sled session backend against the [`SessionStore`] contract: ordering, deletes within a batch, exact session keys, durability.

use super::super::DataStore;
use super::*;

fn record(session: &str, body: &str) -> SessionWrite {
    SessionWrite::PutRecord {
        session: session.to_owned(),
        record: body.as_bytes().to_vec(),
    }
}

fn message(session: &str, seq: u64, body: &str) -> SessionWrite {
    SessionWrite::PutMessage {
        session: session.to_owned(),
        seq,
        message: body.as_bytes().to_vec(),
    }
}

fn delete(session: &str) -> SessionWrite {
    SessionWrite::Delete {
        session: session.to_owned(),
    }
}

fn texts(bodies: Vec<Vec<u8>>) -> Vec<String> {
    bodies
        .into_iter()
        .map(|body| String::from_utf8(body).unwrap())
        .collect()
}

#[test]
fn messages_read_back_by_seq_whatever_the_write_order() {
    let tmp = tempfile::tempdir().unwrap();
    let sessions = DataStore::open(tmp.path()).unwrap().session_store();
    // Past 255 a little-endian or textual key would sort 256 before 2.
    let writes: Vec<SessionWrite> = (0..300u64)
        .rev()
        .map(|seq| message("s", seq, &format!("m{seq}")))
        .collect();
    sessions.apply(&writes).unwrap();
    let expected: Vec<String> = (0..300).map(|seq| format!("m{seq}")).collect();
    assert_eq!(texts(sessions.messages("s").unwrap()), expected);
    assert!(sessions.messages("other").unwrap().is_empty());
}

#[test]
fn a_delete_removes_what_is_stored_and_what_its_batch_put_before_it() {
    let tmp = tempfile::tempdir().unwrap();
    let sessions = DataStore::open(tmp.path()).unwrap().session_store();
    sessions
        .apply(&[record("a", "r0"), message("a", 0, "stored")])
        .unwrap();
    sessions
        .apply(&[message("a", 1, "queued"), record("a", "r1"), delete("a")])
        .unwrap();
    assert_eq!(sessions.record("a").unwrap(), None);
    assert!(sessions.messages("a").unwrap().is_empty());
    // A write after the delete in the same batch stands.
    sessions
        .apply(&[message("a", 0, "old"), delete("a"), record("a", "new")])
        .unwrap();
    assert_eq!(sessions.record("a").unwrap().as_deref(), Some(&b"new"[..]));
    assert!(sessions.messages("a").unwrap().is_empty());
}

#[test]
fn deleting_a_session_keeps_the_sessions_whose_id_extends_its_id() {
    let tmp = tempfile::tempdir().unwrap();
    let sessions = DataStore::open(tmp.path()).unwrap().session_store();
    sessions
        .apply(&[
            record("x-1", "one"),
            message("x-1", 0, "of one"),
            record("x-10", "ten"),
            message("x-10", 0, "of ten"),
        ])
        .unwrap();
    sessions.apply(&[delete("x-1")]).unwrap();
    assert_eq!(sessions.record("x-1").unwrap(), None);
    assert_eq!(
        sessions.record("x-10").unwrap().as_deref(),
        Some(&b"ten"[..])
    );
    assert_eq!(texts(sessions.messages("x-10").unwrap()), vec!["of ten"]);
    assert_eq!(texts(sessions.records().unwrap()), vec!["ten"]);
}

#[test]
fn flushed_sessions_survive_a_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let sessions = DataStore::open(tmp.path()).unwrap().session_store();
        sessions
            .apply(&[
                record("a", "ra"),
                message("a", 0, "hello"),
                record("b", "rb"),
            ])
            .unwrap();
        sessions.flush().unwrap();
    }
    let sessions = DataStore::open(tmp.path()).unwrap().session_store();
    let mut records = texts(sessions.records().unwrap());
    records.sort();
    assert_eq!(records, vec!["ra", "rb"]);
    assert_eq!(texts(sessions.messages("a").unwrap()), vec!["hello"]);
}
