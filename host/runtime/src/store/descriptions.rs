//! The description records, one small JSON file each under `<data dir>/descriptions`: what a plugin version described (or why it was refused), a plugin file's content hash by its identity, and the tool lists remote tool sources gave. Listing tools on a warm cache reads these and never opens the database.
//!
//! Every record is a pure function of its key (a version's description) or
//! a cache whose loss costs one recomputation, so a file needs no sync: it
//! is written whole to a temporary name and renamed into place, and a
//! reader finds the old record, the new one, or none. A file that cannot be
//! read, parsed, or that holds another key is treated as missing. Several
//! processes may read and write the records at once (one writer of a key
//! wins), unlike the database, which belongs to one process at a time.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::StoreError;

/// The records' directory under the data dir.
const DIR: &str = "descriptions";
/// Largest record read back: the describe limits bound what is written far
/// below this, so a bigger file is not one of ours.
const MAX_RECORD_BYTES: u64 = 64 << 20;

/// Tells apart the temporary files of one process's concurrent writes.
static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

#[derive(Serialize)]
struct RecordOut<'a, T: ?Sized> {
    key: &'a str,
    value: &'a T,
}

#[derive(serde::Deserialize)]
struct RecordIn<T> {
    key: String,
    value: T,
}

/// The description records of one data dir.
#[derive(Debug, Clone)]
pub(super) struct DescriptionFiles {
    dir: PathBuf,
}

impl DescriptionFiles {
    pub(super) fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join(DIR),
        }
    }

    /// A key's file: named by its hash, so no key can reach outside the
    /// directory or collide with a name the file system treats specially.
    fn path(&self, key: &str) -> PathBuf {
        self.dir
            .join(format!("{}.json", blake3::hash(key.as_bytes()).to_hex()))
    }

    /// The record under `key`, if there is a readable one.
    pub(super) fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let path = self.path(key);
        let file = std::fs::File::open(&path).ok()?;
        let mut bytes = Vec::new();
        file.take(MAX_RECORD_BYTES + 1)
            .read_to_end(&mut bytes)
            .ok()?;
        if bytes.len() as u64 > MAX_RECORD_BYTES {
            tracing::debug!("{} is too big to be a description record", path.display());
            return None;
        }
        match serde_json::from_slice::<RecordIn<T>>(&bytes) {
            Ok(record) if record.key == key => Some(record.value),
            Ok(_) => None,
            Err(err) => {
                tracing::debug!("ignoring unreadable record {}: {err}", path.display());
                None
            }
        }
    }

    /// Writes (or replaces) the record under `key`.
    pub(super) fn put<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        let failed = |path: &Path| {
            let path = path.to_owned();
            move |source| StoreError::RecordFile { path, source }
        };
        super::db::create_private_dir(&self.dir)?;
        let bytes = serde_json::to_vec(&RecordOut { key, value })
            .map_err(|err| failed(&self.dir)(std::io::Error::other(err)))?;
        let path = self.path(key);
        let temp = self.dir.join(format!(
            ".{}.{}.tmp",
            std::process::id(),
            NEXT_TEMP.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&temp, &bytes).map_err(failed(&temp))?;
        std::fs::rename(&temp, &path).map_err(|source| {
            let _ = std::fs::remove_file(&temp);
            StoreError::RecordFile { path, source }
        })
    }

    /// Forgets every record.
    pub(super) fn clear(&self) -> Result<(), StoreError> {
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StoreError::RecordFile {
                path: self.dir.clone(),
                source,
            }),
        }
    }
}

#[cfg(test)]
#[path = "descriptions_tests.rs"]
mod tests;
