//! The embedded database (sled) under the data dir: plugin key-value state now, sessions and cache metadata later.
//!
//! Only this module names sled, so the engine could be swapped. A data dir
//! belongs to one process at a time; a second process is told which pid
//! holds it.

use std::path::{Path, PathBuf};

use crate::error::StoreError;

/// Largest key a plugin may use in its key-value state.
pub const MAX_KEY_BYTES: usize = 256;
/// Largest value a plugin may store under one key.
pub const MAX_VALUE_BYTES: usize = 1 << 20;

const PID_FILE: &str = "agent-host.pid";
const KV_TREE: &str = "plugin-kv";
const ARTIFACT_TREE: &str = "artifacts";
const SPEC_TREE: &str = "tool-specs";
const META_TREE: &str = "meta";
const CACHE_TOTALS_KEY: &str = "cache-totals";
const HOOK_TOTALS_KEY: &str = "hook-totals";
const SESSION_TREE: &str = "sessions";
const SESSION_KV_TREE: &str = "session-kv";
const SCHEMA_KEY: &str = "schema-version";
/// Version of the data layout this build writes. A database written by a
/// newer build is refused rather than misread.
pub const SCHEMA_VERSION: u32 = 1;

/// What the host recorded about a compiled artifact it wrote to disk.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ArtifactRecord {
    /// Integrity hash of the artifact file, checked before every deserialization.
    pub integrity: String,
    pub size: u64,
    /// What compiling it cost, to report the time a hit saves.
    pub compile_ms: f64,
    /// Unix seconds of last use, for pruning.
    pub last_used: u64,
}

/// A handle to the open database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    kv: sled::Tree,
    artifacts: sled::Tree,
    specs: sled::Tree,
    meta: sled::Tree,
    sessions: sled::Tree,
    session_kv: sled::Tree,
    dir: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("dir", &self.dir).finish()
    }
}

impl Store {
    /// Opens (creating if needed) the database in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        create_private_dir(data_dir)?;
        let db_path = data_dir.join("db");
        let db = open_db(data_dir, &db_path)?;
        // We hold sled's lock now, so the pid file is ours to write.
        let _ = std::fs::write(data_dir.join(PID_FILE), std::process::id().to_string());
        let kv = db.open_tree(KV_TREE)?;
        let artifacts = db.open_tree(ARTIFACT_TREE)?;
        let specs = db.open_tree(SPEC_TREE)?;
        let meta = db.open_tree(META_TREE)?;
        check_schema(&meta, data_dir)?;
        let sessions = db.open_tree(SESSION_TREE)?;
        let session_kv = db.open_tree(SESSION_KV_TREE)?;
        Ok(Self {
            db,
            kv,
            artifacts,
            specs,
            meta,
            sessions,
            session_kv,
            dir: data_dir.to_owned(),
        })
    }

    /// The data directory this store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The state of one plugin in one session (namespaced by both).
    pub fn session_kv(&self, plugin: &str, session: &str) -> PluginKv {
        PluginKv {
            tree: self.session_kv.clone(),
            prefix: format!("{plugin}\0{session}\0").into_bytes(),
        }
    }

    /// The key-value state of one plugin.
    pub fn plugin_kv(&self, plugin: &str) -> PluginKv {
        PluginKv {
            tree: self.kv.clone(),
            prefix: format!("{plugin}\0").into_bytes(),
        }
    }

    /// The record of a compiled artifact, by file name.
    pub fn artifact(&self, name: &str) -> Option<ArtifactRecord> {
        let bytes = self.artifacts.get(name).ok()??;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn put_artifact(&self, name: &str, record: &ArtifactRecord) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(record).unwrap_or_default();
        self.artifacts.insert(name, bytes)?;
        Ok(())
    }

    pub fn remove_artifact(&self, name: &str) -> Result<(), StoreError> {
        self.artifacts.remove(name)?;
        Ok(())
    }

    /// Every recorded artifact.
    pub fn artifacts(&self) -> Vec<(String, ArtifactRecord)> {
        self.artifacts
            .iter()
            .flatten()
            .filter_map(|(key, value)| {
                let record = serde_json::from_slice(&value).ok()?;
                Some((String::from_utf8_lossy(&key).into_owned(), record))
            })
            .collect()
    }

    /// Tool specs a plugin version described, by its content hash: listing
    /// tools on a warm cache needs no instance.
    pub fn tool_specs(&self, content_hash: &str) -> Option<Vec<crate::spec::ToolSpec>> {
        let bytes = self.specs.get(content_hash).ok()??;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn put_tool_specs(
        &self,
        content_hash: &str,
        specs: &[crate::spec::ToolSpec],
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(specs).unwrap_or_default();
        self.specs.insert(content_hash, bytes)?;
        Ok(())
    }

    /// What an extension version declared, by its content hash.
    pub fn extension_spec(&self, key: &str) -> Option<crate::hooks::ExtensionSpec> {
        let bytes = self.specs.get(key).ok()??;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn put_extension_spec(
        &self,
        key: &str,
        spec: &crate::hooks::ExtensionSpec,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(spec).unwrap_or_default();
        self.specs.insert(key, bytes)?;
        Ok(())
    }

    /// Why a plugin version's description was refused, by the key the
    /// loader builds from its content hash and the limits it broke: a
    /// refused version is not instantiated again at every start.
    pub fn describe_failure(&self, key: &str) -> Option<String> {
        let bytes = self.specs.get(format!("failed:{key}")).ok()??;
        String::from_utf8(bytes.to_vec()).ok()
    }

    pub fn put_describe_failure(&self, key: &str, message: &str) -> Result<(), StoreError> {
        self.specs
            .insert(format!("failed:{key}"), message.as_bytes())?;
        Ok(())
    }

    /// Forgets every cached artifact record and tool spec.
    pub fn clear_cache_records(&self) -> Result<(), StoreError> {
        self.artifacts.clear()?;
        self.specs.clear()?;
        self.meta.remove(CACHE_TOTALS_KEY)?;
        Ok(())
    }

    /// Cache counters summed over every run.
    pub fn cache_totals(&self) -> crate::cache::CacheStatsSnapshot {
        self.meta
            .get(CACHE_TOTALS_KEY)
            .ok()
            .flatten()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    pub fn put_cache_totals(
        &self,
        totals: &crate::cache::CacheStatsSnapshot,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(totals).unwrap_or_default();
        self.meta.insert(CACHE_TOTALS_KEY, bytes)?;
        Ok(())
    }

    /// Hook counters summed over every run.
    pub fn hook_totals(&self) -> Vec<crate::hooks::HookStatsRow> {
        self.meta
            .get(HOOK_TOTALS_KEY)
            .ok()
            .flatten()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    pub fn put_hook_totals(&self, totals: &[crate::hooks::HookStatsRow]) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(totals).unwrap_or_default();
        self.meta.insert(HOOK_TOTALS_KEY, bytes)?;
        Ok(())
    }

    /// The tree holding sessions and their messages (owned by `sessions`).
    pub(crate) fn session_tree(&self) -> &sled::Tree {
        &self.sessions
    }

    /// Writes everything to disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
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
fn check_schema(meta: &sled::Tree, data_dir: &Path) -> Result<(), StoreError> {
    match meta.get(SCHEMA_KEY)? {
        None => {
            meta.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())?;
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

/// How long to wait for a lock held by this same process: a dropped `Store`
/// releases sled's file lock only when sled's background flusher lets go.
const OWN_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

fn open_db(data_dir: &Path, db_path: &Path) -> Result<sled::Db, StoreError> {
    let started = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(2);
    loop {
        match sled::Config::new().path(db_path).open() {
            Ok(db) => return Ok(db),
            Err(err) => match classify_open_error(data_dir, err) {
                StoreError::Locked { pid: Some(pid), .. }
                    if pid == std::process::id() && started.elapsed() < OWN_LOCK_WAIT =>
                {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(std::time::Duration::from_millis(100));
                }
                other => return Err(other),
            },
        }
    }
}

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

/// One plugin's namespace in the key-value state. Keys of other plugins are
/// unreachable from here.
#[derive(Clone)]
pub struct PluginKv {
    tree: sled::Tree,
    prefix: Vec<u8>,
}

impl std::fmt::Debug for PluginKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginKv")
            .field("prefix", &String::from_utf8_lossy(&self.prefix))
            .finish()
    }
}

impl PluginKv {
    fn full_key(&self, key: &str) -> Vec<u8> {
        let mut full = self.prefix.clone();
        full.extend_from_slice(key.as_bytes());
        full
    }

    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tree.get(self.full_key(key))?.map(|v| v.to_vec()))
    }

    /// Stores a value; the error text is shown to the plugin.
    pub fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            return Err(format!(
                "key must be 1-{MAX_KEY_BYTES} bytes, got {}",
                key.len()
            ));
        }
        if value.len() > MAX_VALUE_BYTES {
            return Err(format!(
                "value must be at most {MAX_VALUE_BYTES} bytes, got {}",
                value.len()
            ));
        }
        self.tree
            .insert(self.full_key(key), value)
            .map(|_| ())
            .map_err(|err| format!("storage error: {err}"))
    }

    pub fn delete(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.tree.remove(self.full_key(key))?.is_some())
    }

    pub fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        for entry in self.tree.scan_prefix(self.full_key(prefix)) {
            let (key, _) = entry?;
            keys.push(String::from_utf8_lossy(&key[self.prefix.len()..]).into_owned());
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_state_is_namespaced_and_limited() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let a = store.plugin_kv("a");
        let b = store.plugin_kv("b");
        a.set("k1", b"one").unwrap();
        a.set("k2", b"two").unwrap();
        b.set("k1", b"other").unwrap();
        assert_eq!(a.get("k1").unwrap().as_deref(), Some(&b"one"[..]));
        assert_eq!(b.get("k1").unwrap().as_deref(), Some(&b"other"[..]));
        assert_eq!(a.list("k").unwrap(), vec!["k1", "k2"]);
        assert!(a.delete("k1").unwrap());
        assert!(!a.delete("k1").unwrap());
        assert!(a.set("", b"x").is_err());
        assert!(a.set(&"x".repeat(MAX_KEY_BYTES + 1), b"x").is_err());
        assert!(
            a.set("big", &vec![0; MAX_VALUE_BYTES + 1])
                .unwrap_err()
                .contains("at most")
        );
    }

    #[test]
    fn state_survives_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let store = Store::open(tmp.path()).unwrap();
            store.plugin_kv("p").set("k", b"v").unwrap();
            store.flush().unwrap();
        }
        let store = Store::open(tmp.path()).unwrap();
        assert_eq!(
            store.plugin_kv("p").get("k").unwrap().as_deref(),
            Some(&b"v"[..])
        );
    }
}
