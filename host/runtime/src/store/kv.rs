//! Plugin key-value state: one namespace per plugin (or per plugin and session), held to its byte and key quotas by a usage record written in the same atomic batch as the data.

use std::sync::{Arc, Mutex, MutexGuard};

use super::db::{LazyDb, backend};
use crate::config::QuotaConfig;
use crate::error::StoreError;

/// Largest key a plugin may use in its key-value state.
pub const MAX_KEY_BYTES: usize = 256;
/// Largest value a plugin may store under one key.
pub const MAX_VALUE_BYTES: usize = 1 << 20;

/// First byte of the usage record of a state namespace, kept in the same
/// tree as the namespace so one atomic batch updates both. No namespace
/// prefix can start with it: plugin names are UTF-8, and 0xFF never occurs
/// in UTF-8.
const USAGE_MARK: u8 = 0xFF;

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
pub(super) struct StateQuota {
    max_bytes: u64,
    max_keys: u64,
    list_max_keys: usize,
    list_max_bytes: usize,
    kind: StateKind,
}

impl StateQuota {
    /// The limits of one plugin's key-value state.
    pub(super) fn plugin(quotas: &QuotaConfig) -> Self {
        Self::new(
            quotas,
            quotas.kv_max_mb,
            quotas.kv_max_keys,
            StateKind::Plugin,
        )
    }

    /// The limits of one plugin's state in one session.
    pub(super) fn session(quotas: &QuotaConfig) -> Self {
        Self::new(
            quotas,
            quotas.session_max_mb,
            quotas.session_max_keys,
            StateKind::Session,
        )
    }

    fn new(quotas: &QuotaConfig, max_mb: u64, max_keys: u64, kind: StateKind) -> Self {
        Self {
            max_bytes: max_mb.saturating_mul(1 << 20),
            max_keys,
            list_max_keys: quotas.list_max_keys,
            list_max_bytes: quotas.list_max_kb.saturating_mul(1024),
            kind,
        }
    }
}

/// What a namespace holds: bytes of keys plus values, and keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateUsage {
    /// Bytes of keys plus values, as the byte quota counts them.
    pub bytes: u64,
    /// Number of keys.
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

/// Which tree a namespace lives in.
#[derive(Debug, Clone, Copy)]
pub(super) enum KvTree {
    /// Plugins' own state.
    Plugin,
    /// Plugins' state per session.
    Session,
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
///
/// A clone shares the handle (one reference count), so a call can be given
/// one cheaply.
#[derive(Clone)]
pub struct PluginKv {
    inner: Arc<Namespace>,
}

/// What a [`PluginKv`] handle shares.
struct Namespace {
    /// The database, opened by the first operation that needs it: a
    /// plugin that never touches its state never opens it.
    db: Arc<LazyDb>,
    which: KvTree,
    prefix: Vec<u8>,
    usage_key: Vec<u8>,
    quota: StateQuota,
    locks: Arc<[Mutex<()>]>,
    stripe: usize,
}

impl std::fmt::Debug for PluginKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginKv")
            .field("prefix", &String::from_utf8_lossy(&self.inner.prefix))
            .finish()
    }
}

impl PluginKv {
    /// The namespace of tree `which` under `prefix`, its writes serialised
    /// by one stripe of `locks` (chosen by the namespace).
    pub(super) fn new(
        db: &Arc<LazyDb>,
        which: KvTree,
        prefix: Vec<u8>,
        quota: StateQuota,
        locks: &Arc<[Mutex<()>]>,
    ) -> Self {
        let mut usage_key = Vec::with_capacity(prefix.len() + 1);
        usage_key.push(USAGE_MARK);
        usage_key.extend_from_slice(&prefix);
        let stripe = {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            usage_key.hash(&mut hasher);
            (hasher.finish() % locks.len() as u64) as usize
        };
        Self {
            inner: Arc::new(Namespace {
                db: db.clone(),
                which,
                prefix,
                usage_key,
                quota,
                locks: locks.clone(),
                stripe,
            }),
        }
    }

    fn tree(&self) -> Result<&sled::Tree, StoreError> {
        let trees = self.inner.db.get()?;
        Ok(match self.inner.which {
            KvTree::Plugin => &trees.kv,
            KvTree::Session => &trees.session_kv,
        })
    }

    fn full_key(&self, key: &str) -> Vec<u8> {
        let mut full = self.inner.prefix.clone();
        full.extend_from_slice(key.as_bytes());
        full
    }

    /// Serialises the writes of this namespace (and of the others sharing
    /// its stripe).
    fn write_lock(&self) -> MutexGuard<'_, ()> {
        self.inner.locks[self.inner.stripe]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The usage record, rebuilt by one scan when it is missing. The caller
    /// holds the write lock, so nothing changes the namespace meanwhile.
    fn usage_locked(&self) -> Result<StateUsage, StoreError> {
        let tree = self.tree()?;
        if let Some(record) = tree.get(&self.inner.usage_key).map_err(backend)?
            && let Some(usage) = StateUsage::decode(&record)
        {
            return Ok(usage);
        }
        let mut usage = StateUsage::default();
        for entry in tree.scan_prefix(&self.inner.prefix) {
            let (key, value) = entry.map_err(backend)?;
            usage.bytes += entry_size(key.len() - self.inner.prefix.len(), value.len());
            usage.keys += 1;
        }
        tree.insert(&self.inner.usage_key, &usage.encode()[..])
            .map_err(backend)?;
        Ok(usage)
    }

    /// Bytes and keys this namespace holds.
    pub fn usage(&self) -> Result<StateUsage, StoreError> {
        let _guard = self.write_lock();
        self.usage_locked()
    }

    /// The value stored under `key`, if any.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .tree()?
            .get(self.full_key(key))
            .map_err(backend)?
            .map(|v| v.to_vec()))
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
        let tree = self.tree().map_err(storage)?;
        let old = tree.get(&full).map_err(|err| storage(backend(err)))?;
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
        batch.insert(self.inner.usage_key.as_slice(), &after.encode()[..]);
        tree.apply_batch(batch).map_err(|err| storage(backend(err)))
    }

    fn check_quota(&self, key: &str, before: StateUsage, after: StateUsage) -> Result<(), String> {
        let quota = &self.inner.quota;
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

    /// Removes a key and frees its share of the quota; returns whether it
    /// existed.
    pub fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let full = self.full_key(key);
        let _guard = self.write_lock();
        let tree = self.tree()?;
        let Some(old) = tree.get(&full).map_err(backend)? else {
            return Ok(false);
        };
        let usage = self.usage_locked()?;
        let after = StateUsage {
            bytes: usage.bytes.saturating_sub(entry_size(key.len(), old.len())),
            keys: usage.keys.saturating_sub(1),
        };
        let mut batch = sled::Batch::default();
        batch.remove(full);
        batch.insert(self.inner.usage_key.as_slice(), &after.encode()[..]);
        tree.apply_batch(batch).map_err(backend)?;
        Ok(true)
    }

    /// Keys that start with `prefix`, in byte order: at most
    /// `quotas.list_max_keys` of them and `quotas.list_max_kb` of key bytes.
    /// Iteration stops at the bound, so a huge namespace costs no more than
    /// a full page.
    pub fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        let mut page = ListPage::new(&self.inner.quota);
        for entry in self.tree()?.scan_prefix(self.full_key(prefix)).keys() {
            let key = entry.map_err(backend)?;
            let key = String::from_utf8_lossy(&key[self.inner.prefix.len()..]).into_owned();
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
        let mut page = ListPage::new(&self.inner.quota);
        keys.take_while(|key| page.admit(key)).cloned().collect()
    }

    /// Every entry of the namespace, unbounded: for loading a session's
    /// state, which its own quota bounds.
    pub(crate) fn entries(
        &self,
    ) -> impl Iterator<Item = Result<(String, Vec<u8>), StoreError>> + '_ {
        let (scan, failed) = match self.tree() {
            Ok(tree) => (Some(tree.scan_prefix(&self.inner.prefix)), None),
            Err(err) => (None, Some(Err(err))),
        };
        failed
            .into_iter()
            .chain(scan.into_iter().flatten().map(|entry| {
                let (key, value) = entry.map_err(backend)?;
                Ok((
                    String::from_utf8_lossy(&key[self.inner.prefix.len()..]).into_owned(),
                    value.to_vec(),
                ))
            }))
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
#[path = "kv_tests.rs"]
mod tests;
