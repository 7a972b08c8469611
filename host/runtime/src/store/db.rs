//! Opening the sled database of a data dir: the private dir, the process lock and its pid file, the schema version, and turning sled's errors into [`StoreError`]s.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::StoreError;

/// Version of the data layout this build writes. A database written by a
/// newer build is refused rather than misread.
pub const SCHEMA_VERSION: u32 = 1;

/// Names the process holding a data dir, for the error a second one gets.
const PID_FILE: &str = "agent-host.pid";
/// Key of the schema version in the meta tree.
pub(super) const SCHEMA_KEY: &str = "schema-version";
/// How long to wait for a lock held by this same process: a dropped store
/// releases sled's file lock only when sled's background flusher lets go.
const OWN_LOCK_WAIT: Duration = Duration::from_secs(5);

/// A sled error as a [`StoreError`]: boxed, so sled's type stays out of the
/// public API (no `From<sled::Error>` either, which would be public too).
pub(super) fn backend(err: sled::Error) -> StoreError {
    StoreError::Db(Box::new(err))
}

/// Creates the private data dir and opens the database in it, waiting
/// briefly if this same process still holds it.
pub(super) fn open(data_dir: &Path) -> Result<sled::Db, StoreError> {
    create_private_dir(data_dir)?;
    let db = open_db(data_dir, &data_dir.join("db"))?;
    // We hold sled's lock now, so the pid file is ours to write.
    let _ = std::fs::write(data_dir.join(PID_FILE), std::process::id().to_string());
    Ok(db)
}

fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
        path: dir.to_owned(),
        source,
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    Ok(())
}

/// Records the schema version of a new database and refuses a newer one.
pub(super) fn check_schema(meta: &sled::Tree, data_dir: &Path) -> Result<(), StoreError> {
    match meta.get(SCHEMA_KEY).map_err(backend)? {
        None => {
            meta.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())
                .map_err(backend)?;
            Ok(())
        }
        Some(bytes) => {
            let found = <[u8; 4]>::try_from(bytes.as_ref())
                .map(u32::from_be_bytes)
                .unwrap_or(u32::MAX);
            if found > SCHEMA_VERSION {
                Err(StoreError::NewerSchema {
                    path: data_dir.to_owned(),
                    found,
                    supported: SCHEMA_VERSION,
                })
            } else {
                Ok(())
            }
        }
    }
}

fn open_db(data_dir: &Path, db_path: &Path) -> Result<sled::Db, StoreError> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(2);
    loop {
        match sled::Config::new().path(db_path).open() {
            Ok(db) => return Ok(db),
            Err(err) => match classify_open_error(data_dir, err) {
                StoreError::Locked { pid: Some(pid), .. }
                    if pid == std::process::id() && started.elapsed() < OWN_LOCK_WAIT =>
                {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                other => return Err(other),
            },
        }
    }
}

/// A lock held by another process is told apart from a database that
/// cannot be read (corrupt, or not a database).
fn classify_open_error(data_dir: &Path, err: sled::Error) -> StoreError {
    let message = err.to_string();
    let locked = match &err {
        sled::Error::Io(io) => {
            io.kind() == std::io::ErrorKind::WouldBlock || message.contains("lock")
        }
        _ => false,
    };
    if locked {
        let pid = std::fs::read_to_string(data_dir.join(PID_FILE))
            .ok()
            .and_then(|text| text.trim().parse().ok());
        StoreError::Locked {
            path: data_dir.to_owned(),
            pid,
        }
    } else {
        StoreError::Open {
            path: data_dir.to_owned(),
            message,
        }
    }
}

#[cfg(test)]
#[path = "db_tests.rs"]
mod tests;
