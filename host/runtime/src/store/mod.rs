//! The store API: everything the host persists under its data dir (plugin and session key-value state, session records, cache records, counters), behind types that do not name the database engine.
//!
//! Today the one backend is sled, opened by [`DataStore::open`]: this module and
//! its files are the only place that names sled, so no sled type or error
//! reaches a caller. Sessions go through the [`SessionStore`] trait, so a
//! second backend (a database shared by several hosts) can serve them
//! without a change to the agent. A sled data dir belongs to one process at
//! a time; a second process is told which pid holds it.
//!
//! Files by job: `db` opens the database and checks its schema version,
//! `kv` holds the quota-checked plugin and session state, `sessions` the
//! session records and messages, `records` the cache's artifact and spec
//! records, `stats` the counters summed over runs.

mod db;
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

use db::backend;
use kv::StateQuota;

const KV_TREE: &str = "plugin-kv";
const ARTIFACT_TREE: &str = "artifacts";
const SPEC_TREE: &str = "tool-specs";
const META_TREE: &str = "meta";
const SESSION_TREE: &str = "sessions";
const SESSION_KV_TREE: &str = "session-kv";
/// Stripes of the per-namespace write locks. A set or delete holds its
/// namespace's stripe while it reads the usage record and writes the batch,
/// so concurrent calls of one plugin cannot both pass the quota check.
const LOCK_STRIPES: usize = 64;

/// A handle to the open database under a data dir; cheap to clone (every
/// clone shares the one database).
#[derive(Clone)]
pub struct DataStore {
    db: sled::Db,
    kv: sled::Tree,
    artifacts: sled::Tree,
    specs: sled::Tree,
    meta: sled::Tree,
    sessions: sessions::SledSessions,
    session_kv: sled::Tree,
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
        let db = db::open(data_dir)?;
        let tree = |name: &str| db.open_tree(name).map_err(backend);
        let meta = tree(META_TREE)?;
        db::check_schema(&meta, data_dir)?;
        Ok(Self {
            kv: tree(KV_TREE)?,
            artifacts: tree(ARTIFACT_TREE)?,
            specs: tree(SPEC_TREE)?,
            meta,
            sessions: sessions::SledSessions::new(tree(SESSION_TREE)?),
            session_kv: tree(SESSION_KV_TREE)?,
            db,
            dir: data_dir.to_owned(),
            quotas: QuotaConfig::default(),
            locks: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
        })
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
            &self.session_kv,
            format!("{plugin}\0{session}\0").into_bytes(),
            StateQuota::session(&self.quotas),
            &self.locks,
        )
    }

    /// The key-value state of one plugin.
    pub fn plugin_kv(&self, plugin: &str) -> PluginKv {
        PluginKv::new(
            &self.kv,
            format!("{plugin}\0").into_bytes(),
            StateQuota::plugin(&self.quotas),
            &self.locks,
        )
    }

    /// The session records and messages of this data dir, for the agent's
    /// sessions (which batch their writes into it).
    pub fn session_store(&self) -> Arc<dyn SessionStore> {
        Arc::new(self.sessions.clone())
    }

    /// Writes everything to disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(backend)?;
        Ok(())
    }
}
