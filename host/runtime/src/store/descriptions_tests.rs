//! Unit tests of the description record files: round trips, what counts as missing, clearing, and that the database stays closed.

use super::super::DataStore;
use super::*;

#[test]
fn a_record_reads_back_and_is_replaced_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let files = DescriptionFiles::new(tmp.path());
    assert_eq!(files.get::<Vec<u32>>("specs:a"), None);
    files.put("specs:a", &vec![1u32, 2, 3]).unwrap();
    assert_eq!(files.get::<Vec<u32>>("specs:a"), Some(vec![1, 2, 3]));
    files.put("specs:a", &vec![4u32]).unwrap();
    assert_eq!(files.get::<Vec<u32>>("specs:a"), Some(vec![4]));
    // Nothing but the records themselves is left behind.
    let names: Vec<String> = std::fs::read_dir(tmp.path().join(DIR))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].ends_with(".json"), "{names:?}");
}

#[test]
fn a_torn_foreign_or_oversized_file_is_a_miss() {
    let tmp = tempfile::tempdir().unwrap();
    let files = DescriptionFiles::new(tmp.path());
    files.put("failed:x", "too many tools").unwrap();
    let path = files.path("failed:x");

    std::fs::write(&path, b"{\"key\": \"failed:x\", \"val").unwrap();
    assert_eq!(files.get::<String>("failed:x"), None);

    // Another key's record under this key's name (copied by hand).
    files.put("failed:y", "other").unwrap();
    std::fs::copy(files.path("failed:y"), &path).unwrap();
    assert_eq!(files.get::<String>("failed:x"), None);
    assert_eq!(files.get::<String>("failed:y"), Some("other".to_owned()));

    // The wrong shape for the type asked.
    files.put("failed:x", &42u8).unwrap();
    assert_eq!(files.get::<String>("failed:x"), None);

    let file = std::fs::File::create(&path).unwrap();
    file.set_len(MAX_RECORD_BYTES + 1).unwrap();
    assert_eq!(files.get::<String>("failed:x"), None);
}

#[test]
fn clearing_forgets_every_record_and_a_missing_dir_is_fine() {
    let tmp = tempfile::tempdir().unwrap();
    let files = DescriptionFiles::new(tmp.path());
    files.clear().unwrap();
    files
        .put("remote:a", &serde_json::json!({"tools": []}))
        .unwrap();
    files.clear().unwrap();
    assert_eq!(files.get::<serde_json::Value>("remote:a"), None);
    files.put("remote:a", &1u8).unwrap();
    assert_eq!(files.get::<u8>("remote:a"), Some(1));
}

#[test]
fn description_records_need_no_database_and_state_opens_it() {
    let tmp = tempfile::tempdir().unwrap();
    let store = DataStore::open_on_first_use(tmp.path()).unwrap();
    let identity = "1:2:3:4:5";
    store
        .put_plugin_file_hash(std::path::Path::new("/p/a.wasm"), identity, "abc")
        .unwrap();
    assert_eq!(
        store.plugin_file_hash(std::path::Path::new("/p/a.wasm"), identity),
        Some("abc".to_owned())
    );
    assert_eq!(
        store.plugin_file_hash(std::path::Path::new("/p/a.wasm"), "1:2:3:4:6"),
        None
    );
    store.put_describe_failure("k", "refused").unwrap();
    assert_eq!(store.describe_failure("k"), Some("refused".to_owned()));
    store.flush().unwrap();
    assert!(!store.is_open());
    assert!(!tmp.path().join("db").exists());

    let kv = store.plugin_kv("notes");
    assert!(!store.is_open(), "making a handle opens nothing");
    kv.set("k", b"v").unwrap();
    assert!(store.is_open());
    assert_eq!(kv.get("k").unwrap(), Some(b"v".to_vec()));
}

#[test]
fn records_are_shared_while_another_handle_holds_the_database() {
    let tmp = tempfile::tempdir().unwrap();
    let holder = DataStore::open(tmp.path()).unwrap();
    let waiting = DataStore::open_on_first_use(tmp.path()).unwrap();
    // Records beside the database are readable while another handle holds it.
    holder.put_describe_failure("k", "refused").unwrap();
    assert_eq!(waiting.describe_failure("k"), Some("refused".to_owned()));
    drop(holder);
    // The same process let go: the first use now opens it.
    waiting.plugin_kv("p").set("k", b"v").unwrap();
    assert!(waiting.is_open());
}
