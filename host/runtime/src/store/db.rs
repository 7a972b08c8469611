//! Opening the sled database of a data dir, now or on first use: the private dir, the process lock and its pid file, the schema version, and turning sled's errors into [`StoreError`]s.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
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

const KV_TREE: &str = "plugin-kv";
const ARTIFACT_TREE: &str = "artifacts";
const META_TREE: &str = "meta";
const SESSION_TREE: &str = "sessions";
const SESSION_KV_TREE: &str = "session-kv";
/// Where databases of earlier builds kept the description records, now
/// files (see `descriptions`): dropped at open, so they are not kept twice.
const OLD_DESCRIPTION_TREE: &[u8] = b"tool-specs";

/// The open database and the trees the store uses.
pub(super) struct Trees {
    pub(super) db: sled::Db,
    pub(super) kv: sled::Tree,
    pub(super) artifacts: sled::Tree,
    pub(super) meta: sled::Tree,
    pub(super) sessions: sled::Tree,
    pub(super) session_kv: sled::Tree,
}

impl Trees {
    fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let db = open(data_dir)?;
        let tree = |name: &str| db.open_tree(name).map_err(backend);
        let meta = tree(META_TREE)?;
        check_schema(&meta, data_dir)?;
        if db
            .tree_names()
            .iter()
            .any(|name| name == OLD_DESCRIPTION_TREE)
        {
            db.drop_tree(OLD_DESCRIPTION_TREE).map_err(backend)?;
        }
        Ok(Self {
            kv: tree(KV_TREE)?,
            artifacts: tree(ARTIFACT_TREE)?,
            sessions: tree(SESSION_TREE)?,
            session_kv: tree(SESSION_KV_TREE)?,
            meta,
            db,
        })
    }
}

/// The database of a data dir, opened when something first needs it.
///
/// Opening sled is the dearest part of a short command's start-up: its
/// recovery rewrites the tail of the log and syncs it, and its first use
/// starts a pool of io threads. A command that only reads what the host
/// keeps outside the database (the description records) never pays it, and
/// never contends for the one-process lock a running `serve` holds.
pub(super) struct LazyDb {
    dir: PathBuf,
    opened: OnceLock<Trees>,
    /// Held while opening, so two threads never open the database twice
    /// (the second would find it locked by its own process).
    opening: Mutex<()>,
    /// Set once a read that could not open the database has said so.
    warned: std::sync::atomic::AtomicBool,
}

impl LazyDb {
    pub(super) fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            opened: OnceLock::new(),
            opening: Mutex::new(()),
            warned: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The open database, opening it now if needed. A failed open is not
    /// remembered: the next use tries again (the process holding the lock
    /// may have gone).
    pub(super) fn get(&self) -> Result<&Trees, StoreError> {
        if let Some(trees) = self.opened.get() {
            return Ok(trees);
        }
        let _opening = self.opening.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(trees) = self.opened.get() {
            return Ok(trees);
        }
        let started = Instant::now();
        let trees = Trees::open(&self.dir)?;
        tracing::debug!(
            took_ms = started.elapsed().as_secs_f64() * 1e3,
            "database opened"
        );
        Ok(self.opened.get_or_init(|| trees))
    }

    /// The open database for a read that can do without it (it then
    /// finds nothing): a failure to open is logged once per process.
    pub(super) fn get_or_warn(&self, what: &str) -> Option<&Trees> {
        match self.get() {
            Ok(trees) => Some(trees),
            Err(err) => {
                if !self.warned.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    tracing::warn!("{what} unavailable: {err}");
                }
                None
            }
        }
    }

    /// The database if something opened it already.
    pub(super) fn if_open(&self) -> Option<&Trees> {
        self.opened.get()
    }
}

/// Creates the private data dir and opens the database in it, waiting
/// briefly if this same process still holds it.
fn open(data_dir: &Path) -> Result<sled::Db, StoreError> {
    create_private_dir(data_dir)?;
    let db = open_db(data_dir, &data_dir.join("db"))?;
    // We hold sled's lock now, so the pid file is ours to write.
    let _ = std::fs::write(data_dir.join(PID_FILE), std::process::id().to_string());
    Ok(db)
}

pub(super) fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
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
fn check_schema(meta: &sled::Tree, data_dir: &Path) -> Result<(), StoreError> {
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
