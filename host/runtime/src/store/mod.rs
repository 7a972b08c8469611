//! The store API: everything the host persists under its data dir (plugin and session key-value state, session records, cache records, counters), behind types that do not name the database engine.
//!
//! Today the one backend is sled, opened by [`DataStore::open`] (or on first
//! use: [`DataStore::open_on_first_use`]): this module and its files are the
//! only place that names sled, so no sled type or error reaches a caller.
//! The description records live beside the database as files, so listing
//! tools on a warm cache needs no database. Sessions go through the [`SessionStore`] trait, so a
//! second backend (a database shared by several hosts) can serve them
//! without a change to the agent. A sled data dir belongs to one process at
//! a time; a second process is told which pid holds it.
//!
//! Files by job: `db` opens the database (now or on first use) and checks
//! its schema version, `descriptions` keeps the description record files,
//! `kv` holds the quota-checked plugin and session state, `sessions` the
//! session records and messages, `records` the cache's artifact records and
//! the description records' API, `stats` the counters summed over runs.

mod db;
mod descriptions;
mod kv;
mod records;
mod sessions;
mod stats;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::config::QuotaConfig;
use crate::error::StoreError;

pub use db::SCHEMA_VERSION;
pub use kv::{MAX_KEY_BYTES, MAX_VALUE_BYTES, PluginKv, StateUsage};
pub use records::ArtifactRecord;
pub use sessions::{SessionStore, SessionWrite};

use db::{LazyDb, backend};
use descriptions::DescriptionFiles;
use kv::{KvTree, StateQuota};

/// Stripes of the per-namespace write locks. A set or delete holds its
/// namespace's stripe while it reads the usage record and writes the batch,
/// so concurrent calls of one plugin cannot both pass the quota check.
const LOCK_STRIPES: usize = 64;

/// A handle to the store under a data dir; cheap to clone (every clone
/// shares the one database).
#[derive(Clone)]
pub struct DataStore {
    db: Arc<LazyDb>,
    descriptions: DescriptionFiles,
    dir: PathBuf,
    quotas: QuotaConfig,
    locks: Arc<[Mutex<()>]>,
}

impl std::fmt::Debug for DataStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataStore").field("dir", &self.dir).finish()
    }
}

impl DataStore {
    /// Opens (creating if needed) the database in `data_dir`.
    ///
    /// Refused with a [`StoreError`] that says why: the dir is held by
    /// another process (with its pid), the database is corrupt, or it was
    /// written by a newer schema than [`SCHEMA_VERSION`].
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let store = Self::open_on_first_use(data_dir)?;
        store.open_now()?;
        Ok(store)
    }

    /// The store of `data_dir` with its database opened when something
    /// first needs it (a plugin's state, a session, an artifact record, a
    /// counter), not now; the description records need no database. Errors
    /// [`DataStore::open`] would give now come from that first use; only
    /// the private data dir is made now.
    pub fn open_on_first_use(data_dir: &Path) -> Result<Self, StoreError> {
        db::create_private_dir(data_dir)?;
        Ok(Self {
            db: Arc::new(LazyDb::new(data_dir)),
            descriptions: DescriptionFiles::new(data_dir),
            dir: data_dir.to_owned(),
            quotas: QuotaConfig::default(),
            locks: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
        })
    }

    /// Opens the database now if it is not open yet, with the errors of
    /// [`DataStore::open`].
    pub fn open_now(&self) -> Result<(), StoreError> {
        self.db.get().map(|_| ())
    }

    /// Whether the database has been opened.
    pub fn is_open(&self) -> bool {
        self.db.if_open().is_some()
    }

    /// The same store enforcing `quotas` on the plugin state it hands out
    /// from now on (the defaults until this is called).
    pub fn with_quotas(mut self, quotas: &QuotaConfig) -> Self {
        self.quotas = quotas.clone();
        self
    }

    /// The quotas this store enforces.
    pub fn quotas(&self) -> &QuotaConfig {
        &self.quotas
    }

    /// The data directory this store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The state of one plugin in one session (namespaced by both).
    pub fn session_kv(&self, plugin: &str, session: &str) -> PluginKv {
        PluginKv::new(
            &self.db,
            KvTree::Session,
            format!("{plugin}\0{session}\0").into_bytes(),
            StateQuota::session(&self.quotas),
            &self.locks,
        )
    }

    /// The key-value state of one plugin.
    pub fn plugin_kv(&self, plugin: &str) -> PluginKv {
        PluginKv::new(
            &self.db,
            KvTree::Plugin,
            format!("{plugin}\0").into_bytes(),
            StateQuota::plugin(&self.quotas),
            &self.locks,
        )
    }

    /// The session records and messages of this data dir, for the agent's
    /// sessions (which batch their writes into it).
    pub fn session_store(&self) -> Arc<dyn SessionStore> {
        Arc::new(sessions::SledSessions::new(&self.db))
    }

    /// Writes everything to disk (nothing to do when the database was
    /// never opened).
    pub fn flush(&self) -> Result<(), StoreError> {
        if let Some(trees) = self.db.if_open() {
            trees.db.flush().map_err(backend)?;
        }
        Ok(())
    }
}
