//! The embedded database (sled) under the data dir: plugin key-value state now, sessions and cache metadata later.
//!
//! Only this module names sled, so the engine could be swapped. A data dir
//! belongs to one process at a time; a second process is told which pid
//! holds it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::config::QuotaConfig;
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
/// First byte of the usage record of a state namespace, kept in the same
/// tree as the namespace so one atomic batch updates both. No namespace
/// prefix can start with it: plugin names are UTF-8, and 0xFF never occurs
/// in UTF-8.
const USAGE_MARK: u8 = 0xFF;
/// Stripes of the per-namespace write locks. A set or delete holds its
/// namespace's stripe while it reads the usage record and writes the batch,
/// so concurrent calls of one plugin cannot both pass the quota check.
const LOCK_STRIPES: usize = 64;
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
    quotas: QuotaConfig,
    locks: Arc<[Mutex<()>]>,
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
        let quotas = &self.quotas;
        let quota = StateQuota {
            max_bytes: mib(quotas.session_max_mb),
            max_keys: quotas.session_max_keys,
            list_max_keys: quotas.list_max_keys,
            list_max_bytes: quotas.list_max_kb.saturating_mul(1024),
            kind: StateKind::Session,
        };
        self.namespace(
            &self.session_kv,
            format!("{plugin}\0{session}\0").into_bytes(),
            quota,
        )
    }

    /// The key-value state of one plugin.
    pub fn plugin_kv(&self, plugin: &str) -> PluginKv {
        let quotas = &self.quotas;
        let quota = StateQuota {
            max_bytes: mib(quotas.kv_max_mb),
            max_keys: quotas.kv_max_keys,
            list_max_keys: quotas.list_max_keys,
            list_max_bytes: quotas.list_max_kb.saturating_mul(1024),
            kind: StateKind::Plugin,
        };
        self.namespace(&self.kv, format!("{plugin}\0").into_bytes(), quota)
    }

    fn namespace(&self, tree: &sled::Tree, prefix: Vec<u8>, quota: StateQuota) -> PluginKv {
        let mut usage_key = Vec::with_capacity(prefix.len() + 1);
        usage_key.push(USAGE_MARK);
        usage_key.extend_from_slice(&prefix);
        let stripe = {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            usage_key.hash(&mut hasher);
            (hasher.finish() % self.locks.len() as u64) as usize
        };
        PluginKv {
            tree: tree.clone(),
            prefix,
            usage_key,
            quota,
            locks: self.locks.clone(),
            stripe,
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
    pub fn session_tree(&self) -> &sled::Tree {
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

/// Whose state a namespace holds: decides the wording and config keys of a
/// refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StateKind {
    Plugin,
    Session,
}

impl StateKind {
    fn quota_name(self) -> &'static str {
        match self {
            Self::Plugin => "key-value state quota",
            Self::Session => "session state quota",
        }
    }

    fn whose(self) -> &'static str {
        match self {
            Self::Plugin => "this plugin's key-value state",
            Self::Session => "this plugin's state in this session",
        }
    }

    fn bytes_key(self) -> &'static str {
        match self {
            Self::Plugin => "quotas.kv_max_mb",
            Self::Session => "quotas.session_max_mb",
        }
    }

    fn keys_key(self) -> &'static str {
        match self {
            Self::Plugin => "quotas.kv_max_keys",
            Self::Session => "quotas.session_max_keys",
        }
    }
}

/// The limits one namespace is held to.
#[derive(Debug, Clone)]
struct StateQuota {
    max_bytes: u64,
    max_keys: u64,
    list_max_keys: usize,
    list_max_bytes: usize,
    kind: StateKind,
}

fn mib(mb: u64) -> u64 {
    mb.saturating_mul(1 << 20)
}

/// What a namespace holds: bytes of keys plus values, and keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateUsage {
    pub bytes: u64,
    pub keys: u64,
}

impl StateUsage {
    fn encode(self) -> [u8; 16] {
        let mut bytes = [0; 16];
        bytes[..8].copy_from_slice(&self.bytes.to_be_bytes());
        bytes[8..].copy_from_slice(&self.keys.to_be_bytes());
        bytes
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; 16] = bytes.try_into().ok()?;
        let (size, keys) = bytes.split_at(8);
        Some(Self {
            bytes: u64::from_be_bytes(size.try_into().ok()?),
            keys: u64::from_be_bytes(keys.try_into().ok()?),
        })
    }
}

/// The size one entry counts for against a quota.
fn entry_size(key_len: usize, value_len: usize) -> u64 {
    (key_len as u64).saturating_add(value_len as u64)
}

/// One plugin's namespace in the key-value state (or in one session's
/// state). Keys of other plugins are unreachable from here.
///
/// Its usage (bytes and keys) is kept in a record next to the data and
/// updated in the same atomic batch as every write, so a quota check reads
/// one record instead of scanning the namespace; a missing record (a
/// database written before quotas) is rebuilt by one scan.
#[derive(Clone)]
pub struct PluginKv {
    tree: sled::Tree,
    prefix: Vec<u8>,
    usage_key: Vec<u8>,
    quota: StateQuota,
    locks: Arc<[Mutex<()>]>,
    stripe: usize,
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

    /// Serialises the writes of this namespace (and of the others sharing
    /// its stripe).
    fn write_lock(&self) -> MutexGuard<'_, ()> {
        self.locks[self.stripe]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The usage record, rebuilt by one scan when it is missing. The caller
    /// holds the write lock, so nothing changes the namespace meanwhile.
    fn usage_locked(&self) -> Result<StateUsage, StoreError> {
        if let Some(record) = self.tree.get(&self.usage_key)?
            && let Some(usage) = StateUsage::decode(&record)
        {
            return Ok(usage);
        }
        let mut usage = StateUsage::default();
        for entry in self.tree.scan_prefix(&self.prefix) {
            let (key, value) = entry?;
            usage.bytes += entry_size(key.len() - self.prefix.len(), value.len());
            usage.keys += 1;
        }
        self.tree.insert(&self.usage_key, &usage.encode()[..])?;
        Ok(usage)
    }

    /// Bytes and keys this namespace holds.
    pub fn usage(&self) -> Result<StateUsage, StoreError> {
        let _guard = self.write_lock();
        self.usage_locked()
    }

    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tree.get(self.full_key(key))?.map(|v| v.to_vec()))
    }

    /// Stores a value; the error text is shown to the plugin. Refused when
    /// it would take the namespace over its byte or key quota; an overwrite
    /// that does not grow the namespace is always allowed, so a plugin over
    /// a lowered quota can still shrink its state.
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
        let storage = |err: StoreError| format!("storage error: {err}");
        let full = self.full_key(key);
        let _guard = self.write_lock();
        let usage = self.usage_locked().map_err(storage)?;
        let old = self
            .tree
            .get(&full)
            .map_err(|err| storage(StoreError::from(err)))?;
        let new_size = entry_size(key.len(), value.len());
        let (freed, added_keys) = match &old {
            Some(old) => (entry_size(key.len(), old.len()), 0),
            None => (0, 1),
        };
        let after = StateUsage {
            bytes: usage.bytes.saturating_sub(freed).saturating_add(new_size),
            keys: usage.keys + added_keys,
        };
        self.check_quota(key, usage, after)?;
        let mut batch = sled::Batch::default();
        batch.insert(full, value);
        batch.insert(self.usage_key.as_slice(), &after.encode()[..]);
        self.tree
            .apply_batch(batch)
            .map_err(|err| format!("storage error: {err}"))
    }

    fn check_quota(&self, key: &str, before: StateUsage, after: StateUsage) -> Result<(), String> {
        let quota = &self.quota;
        let kind = quota.kind;
        if after.keys > before.keys && after.keys > quota.max_keys {
            return Err(format!(
                "{} exceeded: {} already has {} keys and the limit is {} ({} in the host \
                 config), so the new key {key:?} was not stored; delete keys or reuse \
                 existing ones, or ask the host owner to raise {}",
                kind.quota_name(),
                kind.whose(),
                before.keys,
                quota.max_keys,
                kind.keys_key(),
                kind.keys_key(),
            ));
        }
        if after.bytes > before.bytes && after.bytes > quota.max_bytes {
            return Err(format!(
                "{} exceeded: {} uses {} of {} bytes ({} = {} in the host config) and \
                 storing {key:?} needs {} more, so it was not stored; delete keys to free \
                 space, or ask the host owner to raise {}",
                kind.quota_name(),
                kind.whose(),
                before.bytes,
                quota.max_bytes,
                kind.bytes_key(),
                quota.max_bytes >> 20,
                after.bytes - before.bytes,
                kind.bytes_key(),
            ));
        }
        Ok(())
    }

    /// Removes a key and frees its share of the quota.
    pub fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let full = self.full_key(key);
        let _guard = self.write_lock();
        let Some(old) = self.tree.get(&full)? else {
            return Ok(false);
        };
        let usage = self.usage_locked()?;
        let after = StateUsage {
            bytes: usage.bytes.saturating_sub(entry_size(key.len(), old.len())),
            keys: usage.keys.saturating_sub(1),
        };
        let mut batch = sled::Batch::default();
        batch.remove(full);
        batch.insert(self.usage_key.as_slice(), &after.encode()[..]);
        self.tree.apply_batch(batch)?;
        Ok(true)
    }

    /// Keys that start with `prefix`, in byte order: at most
    /// `quotas.list_max_keys` of them and `quotas.list_max_kb` of key bytes.
    /// Iteration stops at the bound, so a huge namespace costs no more than
    /// a full page.
    pub fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        let mut page = ListPage::new(&self.quota);
        for entry in self.tree.scan_prefix(self.full_key(prefix)).keys() {
            let key = entry?;
            let key = String::from_utf8_lossy(&key[self.prefix.len()..]).into_owned();
            if !page.admit(&key) {
                break;
            }
            keys.push(key);
        }
        Ok(keys)
    }

    /// Keys of `keys` (already in byte order and filtered by prefix) cut at
    /// the same bound as [`PluginKv::list`].
    pub(crate) fn bound_list<'a>(&self, keys: impl Iterator<Item = &'a String>) -> Vec<String> {
        let mut page = ListPage::new(&self.quota);
        keys.take_while(|key| page.admit(key)).cloned().collect()
    }

    /// Every entry of the namespace, unbounded: for loading a session's
    /// state, which its own quota bounds.
    pub(crate) fn entries(
        &self,
    ) -> impl Iterator<Item = Result<(String, Vec<u8>), StoreError>> + '_ {
        self.tree.scan_prefix(&self.prefix).map(|entry| {
            let (key, value) = entry?;
            Ok((
                String::from_utf8_lossy(&key[self.prefix.len()..]).into_owned(),
                value.to_vec(),
            ))
        })
    }
}

/// The running size of one list answer.
struct ListPage {
    keys: usize,
    bytes: usize,
    max_keys: usize,
    max_bytes: usize,
}

impl ListPage {
    fn new(quota: &StateQuota) -> Self {
        Self {
            keys: 0,
            bytes: 0,
            max_keys: quota.list_max_keys,
            max_bytes: quota.list_max_bytes,
        }
    }

    /// Whether `key` still fits in the page (and counts it if so).
    fn admit(&mut self, key: &str) -> bool {
        let bytes = self.bytes.saturating_add(key.len());
        if self.keys >= self.max_keys || bytes > self.max_bytes {
            return false;
        }
        self.keys += 1;
        self.bytes = bytes;
        true
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

    fn quotas(kv_max_mb: u64, kv_max_keys: u64) -> QuotaConfig {
        QuotaConfig {
            kv_max_mb,
            kv_max_keys,
            ..QuotaConfig::default()
        }
    }

    /// Usage by a full scan, to check the record against.
    fn scanned(kv: &PluginKv) -> StateUsage {
        let mut usage = StateUsage::default();
        for entry in kv.entries() {
            let (key, value) = entry.unwrap();
            usage.bytes += entry_size(key.len(), value.len());
            usage.keys += 1;
        }
        usage
    }

    #[test]
    fn the_byte_quota_refuses_and_deletes_and_overwrites_free_it() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path())
            .unwrap()
            .with_quotas(&quotas(1, 1000));
        let kv = store.plugin_kv("p");
        let value = vec![0u8; 300 * 1024];
        for i in 0..3 {
            kv.set(&format!("k{i}"), &value).unwrap();
        }
        let err = kv.set("k3", &value).unwrap_err();
        assert!(
            err.contains("key-value state quota exceeded")
                && err.contains("1048576 bytes")
                && err.contains("quotas.kv_max_mb"),
            "{err}"
        );
        assert_eq!(kv.get("k3").unwrap(), None);
        assert_eq!(kv.usage().unwrap(), scanned(&kv));
        assert_eq!(kv.usage().unwrap().keys, 3);
        // Overwriting with a smaller value frees room; so does a delete.
        kv.set("k0", b"small").unwrap();
        kv.set("k3", &value[..200 * 1024]).unwrap();
        assert!(kv.delete("k1").unwrap());
        kv.set("k4", &value).unwrap();
        assert_eq!(kv.usage().unwrap(), scanned(&kv));
        // Another plugin has its own quota.
        store.plugin_kv("q").set("k", &value).unwrap();
    }

    #[test]
    fn the_key_quota_counts_new_keys_only() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap().with_quotas(&quotas(64, 3));
        let kv = store.plugin_kv("p");
        for key in ["a", "b", "c"] {
            kv.set(key, b"v").unwrap();
        }
        let err = kv.set("d", b"v").unwrap_err();
        assert!(
            err.contains("already has 3 keys") && err.contains("quotas.kv_max_keys"),
            "{err}"
        );
        kv.set("a", b"overwrite is fine").unwrap();
        assert!(kv.delete("b").unwrap());
        kv.set("d", b"v").unwrap();
        assert_eq!(kv.usage().unwrap(), scanned(&kv));
    }

    #[test]
    fn usage_survives_reopen_and_a_lost_record_is_rebuilt() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let store = Store::open(tmp.path()).unwrap();
            let kv = store.plugin_kv("p");
            kv.set("k1", b"one").unwrap();
            kv.set("k2", b"two!").unwrap();
            store.flush().unwrap();
        }
        let store = Store::open(tmp.path()).unwrap();
        let kv = store.plugin_kv("p");
        let usage = StateUsage {
            bytes: 2 + 3 + 2 + 4,
            keys: 2,
        };
        assert_eq!(kv.usage().unwrap(), usage);
        // A database from before quotas has no record: one scan rebuilds it.
        store.kv.remove(&kv.usage_key).unwrap();
        assert_eq!(kv.usage().unwrap(), usage);
        assert!(store.kv.get(&kv.usage_key).unwrap().is_some());
        // The record is not one of the plugin's keys.
        assert_eq!(kv.list("").unwrap(), vec!["k1", "k2"]);
    }

    #[test]
    fn concurrent_writers_of_one_plugin_cannot_overshoot() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path())
            .unwrap()
            .with_quotas(&quotas(1, 100_000));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let kv = store.plugin_kv("p");
                std::thread::spawn(move || {
                    let value = vec![0u8; 16 * 1024];
                    (0..40)
                        .filter(|i| kv.set(&format!("t{t}-{i}"), &value).is_ok())
                        .count()
                })
            })
            .collect();
        let stored: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        let kv = store.plugin_kv("p");
        let usage = kv.usage().unwrap();
        assert_eq!(usage, scanned(&kv));
        assert_eq!(usage.keys as usize, stored);
        assert!(usage.bytes <= 1 << 20, "{usage:?}");
        assert!(usage.bytes + 16 * 1024 + 8 > 1 << 20, "{usage:?}");
    }

    #[test]
    fn a_list_stops_at_its_key_and_byte_bounds() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap().with_quotas(&QuotaConfig {
            list_max_keys: 10,
            list_max_kb: 1,
            ..QuotaConfig::default()
        });
        let kv = store.plugin_kv("p");
        for i in 0..50 {
            kv.set(&format!("k{i:02}"), b"v").unwrap();
            kv.set(&format!("long{i:02}{}", "x".repeat(194)), b"v")
                .unwrap();
        }
        let keys = kv.list("k").unwrap();
        assert_eq!(keys.len(), 10);
        assert_eq!(keys[0], "k00");
        // 200-byte keys: the sixth would pass 1 KiB.
        assert_eq!(kv.list("long").unwrap().len(), 5);
        // A narrower prefix reaches the rest.
        assert_eq!(kv.list("k4").unwrap().len(), 10);
        assert_eq!(kv.list("k49").unwrap(), vec!["k49"]);
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
