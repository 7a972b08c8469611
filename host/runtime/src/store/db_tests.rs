//! Unit tests of opening the database: schema versions and how sled's errors are carried.

use super::super::DataStore;
use super::*;

#[test]
fn a_database_from_a_newer_schema_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    {
        // Bump the version by hand, as a newer build would have written it.
        let store = DataStore::open(tmp.path()).unwrap();
        store
            .db
            .get()
            .unwrap()
            .meta
            .insert(SCHEMA_KEY, &99u32.to_be_bytes())
            .unwrap();
        store.flush().unwrap();
    }
    let err = DataStore::open(tmp.path()).unwrap_err().to_string();
    assert!(
        err.contains("newer agent-host") && err.contains("99"),
        "{err}"
    );
}

#[test]
fn a_database_error_keeps_sleds_error_as_its_source() {
    let err = backend(sled::Error::Unsupported("a test operation".into()));
    assert!(matches!(err, StoreError::Db(_)));
    assert!(err.to_string().contains("a test operation"), "{err}");
    let source = std::error::Error::source(&err).expect("a source");
    assert!(source.to_string().contains("a test operation"));
}
