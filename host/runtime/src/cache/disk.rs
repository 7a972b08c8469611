//! The on-disk level: serialized artifacts keyed by content hash + engine compatibility hash, verified before use.
//!
//! Deserializing is `unsafe` in wasmtime: a crafted artifact is native code.
//! So only files this host wrote are loaded: each artifact's integrity hash
//! is recorded in the store when it is written and checked before it is
//! deserialized; the directory is private (0700); writes are atomic (temp
//! file + rename). A corrupt or truncated artifact is deleted and the
//! component recompiled, never a crash.
//!
//! The integrity hash is XXH3-128, not blake3: it runs at memory speed. It
//! defends against corruption and against files this host did not write; it
//! is not meant to resist someone who can already write our private
//! directory and the database next to it (they could rewrite the record too).
//!
//! Reading a whole large artifact to hash it would cost more than mapping
//! it (a 36 MB artifact: 2.6x a bare `deserialize_file`). So the bytes are
//! checked when the artifact is written and whenever the file's identity
//! (device, inode, size, mtime, ctime) differs from the one recorded at the
//! last check; any write, truncation, replacement or rename over the file
//! changes that identity (ctime cannot be set back from user space). What
//! the identity cannot see, bits rotting in place on the medium, `agent-host
//! cache verify` finds by hashing every artifact.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::store::{ArtifactRecord, DataStore};

/// Bumped when the artifact layout of this host changes.
const FORMAT: u32 = 1;

/// The artifacts directory under the data dir and the store records that
/// vouch for its files, bounded by a size limit (least recently used pruned).
pub struct DiskCache {
    engine: Engine,
    dir: PathBuf,
    engine_hash: String,
    store: DataStore,
    limit_bytes: u64,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A short hex digest of everything that makes an artifact loadable by
/// this engine: wasmtime version, compiler settings, target, and our format.
fn engine_hash(engine: &Engine) -> String {
    let mut hasher = std::hash::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    FORMAT.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// XXH3-128 of an artifact, hex, prefixed with the algorithm so a change of
/// algorithm reads as a mismatch rather than a false match.
fn integrity_hash(bytes: &[u8]) -> String {
    format!("xxh3-128:{:032x}", xxhash_rust::xxh3::xxh3_128(bytes))
}

/// What identifies a file's current contents without reading them: any
/// change through the file system changes at least its ctime. Recorded
/// with each artifact (`ArtifactRecord::verified_identity`).
pub fn file_identity(path: &Path) -> std::io::Result<String> {
    Ok(identity_of(&std::fs::metadata(path)?))
}

/// [`file_identity`] from metadata already read.
pub fn identity_of(meta: &std::fs::Metadata) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        format!(
            "{}:{}:{}:{}.{:09}:{}.{:09}",
            meta.dev(),
            meta.ino(),
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec()
        )
    }
    #[cfg(not(unix))]
    {
        let modified = meta
            .modified()
            .ok()
            .and_then(|modified| modified.duration_since(UNIX_EPOCH).ok())
            .unwrap_or_default();
        format!("{}:{}", meta.len(), modified.as_nanos())
    }
}

/// How a load checked the artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// Its identity is the one recorded at its last full check.
    ByIdentity,
    /// Its bytes were hashed now (new identity, or an older record).
    ByContent,
}

/// [`integrity_hash`] of a file, streamed through a small buffer rather than
/// read whole into a fresh allocation.
fn integrity_hash_of_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(format!("xxh3-128:{:032x}", hasher.digest128()))
}

impl DiskCache {
    /// Opens (creating, private) the artifacts directory of `store`'s data
    /// dir; artifacts beyond `limit_bytes` in all are pruned as new ones
    /// are saved.
    pub fn open(engine: &Engine, store: &DataStore, limit_bytes: u64) -> Result<Self, String> {
        let dir = store.dir().join("artifacts");
        std::fs::create_dir_all(&dir)
            .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|err| format!("cannot make {} private: {err}", dir.display()))?;
        }
        Ok(Self {
            engine: engine.clone(),
            dir,
            engine_hash: engine_hash(engine),
            store: store.clone(),
            limit_bytes,
        })
    }

    /// The artifacts directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The artifact file for a content hash under this engine.
    pub fn artifact_path(&self, content_hash: &str) -> PathBuf {
        self.dir.join(self.artifact_name(content_hash))
    }

    fn artifact_name(&self, content_hash: &str) -> String {
        format!("{content_hash}-{}.cwasm", self.engine_hash)
    }

    /// Whether an artifact of this content hash is recorded for this engine.
    pub fn has(&self, content_hash: &str) -> bool {
        self.store
            .artifact(&self.artifact_name(content_hash))
            .is_some()
    }

    /// (entries, bytes) recorded on disk.
    pub fn usage(&self) -> (usize, u64) {
        let records = self.store.artifacts();
        (records.len(), records.iter().map(|(_, r)| r.size).sum())
    }

    /// Loads a verified artifact, with the compile time it saves.
    pub fn load(&self, content_hash: &str) -> Option<(Component, Duration)> {
        self.load_checked(content_hash)
            .map(|(component, saved, _)| (component, saved))
    }

    /// [`Self::load`], saying how the artifact was checked.
    pub fn load_checked(&self, content_hash: &str) -> Option<(Component, Duration, Verified)> {
        let name = self.artifact_name(content_hash);
        let path = self.dir.join(&name);
        let mut record = self.store.artifact(&name)?;
        let identity = match file_identity(&path) {
            Ok(identity) => identity,
            Err(err) => {
                tracing::debug!("artifact {name} recorded but missing ({err}); recompiling");
                let _ = self.store.remove_artifact(&name);
                return None;
            }
        };
        let verified = if record.verified_identity.as_deref() == Some(identity.as_str()) {
            Verified::ByIdentity
        } else {
            match integrity_hash_of_file(&path) {
                Ok(integrity) if integrity == record.integrity => {}
                Ok(_) => {
                    tracing::warn!(
                        "artifact {} is corrupt (integrity check failed); deleting it and recompiling",
                        path.display()
                    );
                    self.discard(&name);
                    return None;
                }
                Err(err) => {
                    tracing::debug!("artifact {name} recorded but unreadable ({err}); recompiling");
                    let _ = self.store.remove_artifact(&name);
                    return None;
                }
            }
            record.verified_identity = Some(identity);
            Verified::ByContent
        };
        // SAFETY: the file is in our private directory and its contents match
        // the hash we recorded when this host serialized it (checked now, or
        // at a check since which the file's identity has not changed), so it
        // is an artifact produced by a compatible engine (the name includes
        // the engine hash).
        let loaded = unsafe { Component::deserialize_file(&self.engine, &path) };
        match loaded {
            Ok(component) => {
                record.last_used = now_secs();
                let _ = self.store.put_artifact(&name, &record);
                Some((
                    component,
                    Duration::from_secs_f64(record.compile_ms / 1e3),
                    verified,
                ))
            }
            Err(err) => {
                tracing::warn!(
                    "artifact {} cannot be loaded ({err}); deleting it and recompiling",
                    path.display()
                );
                self.discard(&name);
                None
            }
        }
    }

    /// Hashes every recorded artifact and deletes the ones whose bytes do
    /// not match their record (the scrub for what file identities cannot
    /// see). Returns (checked, deleted).
    pub fn verify_all(&self) -> (usize, Vec<String>) {
        let mut checked = 0;
        let mut deleted = Vec::new();
        for (name, mut record) in self.store.artifacts() {
            let path = self.dir.join(&name);
            checked += 1;
            let identity = file_identity(&path).ok();
            match integrity_hash_of_file(&path) {
                Ok(integrity) if integrity == record.integrity => {
                    record.verified_identity = identity;
                    let _ = self.store.put_artifact(&name, &record);
                }
                _ => {
                    tracing::warn!("artifact {name} failed its check; deleting it");
                    self.discard(&name);
                    deleted.push(name);
                }
            }
        }
        (checked, deleted)
    }

    /// Writes a freshly compiled artifact (its serialized bytes) and its
    /// record, then maps the file it went into: the code that runs and the
    /// cached copy are then the same page-cache pages, one artifact-sized
    /// copy of fresh memory fewer than compiling in memory and serializing
    /// (which a cold start of many plugins pays in page faults).
    pub fn save_and_map(
        &self,
        content_hash: &str,
        artifact: &[u8],
        compile_time: Duration,
    ) -> Result<Component, String> {
        let path = self.save(content_hash, artifact, compile_time)?;
        // SAFETY: the file is in our private directory and holds the bytes
        // this engine produced a moment ago (written, synced and hashed
        // above; the same trust as a load whose identity check passes).
        let mapped = unsafe { Component::deserialize_file(&self.engine, &path) }
            .map_err(|err| format!("cannot map {}: {err}", path.display()));
        // After mapping: a limit smaller than this artifact deletes its file,
        // and the mapping outlives that.
        self.prune();
        mapped
    }

    /// Writes an artifact and its record (no pruning); returns where it went.
    fn save(
        &self,
        content_hash: &str,
        bytes: &[u8],
        compile_time: Duration,
    ) -> Result<PathBuf, String> {
        let name = self.artifact_name(content_hash);
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let written = std::fs::File::create(&tmp).and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        });
        if let Err(err) = written.and_then(|()| std::fs::rename(&tmp, &path)) {
            let _ = std::fs::remove_file(&tmp);
            return Err(format!("cannot write {}: {err}", path.display()));
        }
        // The bytes were hashed as they were written; the identity of the
        // file they went into vouches for them from now on.
        let record = ArtifactRecord {
            integrity: integrity_hash(bytes),
            size: bytes.len() as u64,
            compile_ms: compile_time.as_secs_f64() * 1e3,
            last_used: now_secs(),
            verified_identity: file_identity(&path).ok(),
        };
        self.store
            .put_artifact(&name, &record)
            .map_err(|err| err.to_string())?;
        Ok(path)
    }

    fn discard(&self, name: &str) {
        let _ = std::fs::remove_file(self.dir.join(name));
        let _ = self.store.remove_artifact(name);
    }

    /// Deletes the least recently used artifacts until the total fits the limit.
    fn prune(&self) {
        let mut records = self.store.artifacts();
        let mut total: u64 = records.iter().map(|(_, r)| r.size).sum();
        if total <= self.limit_bytes {
            return;
        }
        records.sort_by_key(|(_, record)| record.last_used);
        for (name, record) in records {
            if total <= self.limit_bytes {
                break;
            }
            tracing::debug!("pruning artifact {name} ({} bytes)", record.size);
            self.discard(&name);
            total -= record.size;
        }
    }

    /// Deletes every artifact and its record.
    pub fn clear(&self) -> Result<(), String> {
        for (name, _) in self.store.artifacts() {
            self.discard(&name);
        }
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        self.store
            .clear_cache_records()
            .map_err(|err| err.to_string())
    }
}
