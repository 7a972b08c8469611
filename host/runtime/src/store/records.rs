//! The compiled-component cache's records: one per artifact file on disk (in the database), and the description records (files, see `descriptions`): the tool specs and extension specs plugin versions described, the descriptions refused, plugin files' content hashes by file identity, and the tool lists remote tool sources (MCP servers) last gave.

use super::DataStore;
use super::db::backend;
use crate::error::StoreError;

/// Key of the cache counters in the meta tree (cleared with the records).
pub(super) const CACHE_TOTALS_KEY: &str = "cache-totals";

/// What the host recorded about a compiled artifact it wrote to disk.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ArtifactRecord {
    /// Integrity hash of the artifact file, checked before every deserialization.
    pub integrity: String,
    /// Bytes of the artifact file, for the cache's size limit.
    pub size: u64,
    /// What compiling it cost, to report the time a hit saves.
    pub compile_ms: f64,
    /// Unix seconds of last use, for pruning.
    pub last_used: u64,
    /// The file's identity when its bytes were last checked against
    /// `integrity` (device, inode, size, mtime and ctime in ns): while it
    /// stays the same, loading skips reading the whole file again. Absent
    /// in records of older hosts: the next load checks the bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_identity: Option<String>,
}

/// A plugin file's content hash as of one identity of the file.
#[derive(serde::Serialize, serde::Deserialize)]
struct PluginFileRecord {
    identity: String,
    content_hash: String,
}

fn plugin_file_key(path: &std::path::Path) -> String {
    format!("file:{}", path.display())
}

impl DataStore {
    /// The record of a compiled artifact, by file name.
    pub fn artifact(&self, name: &str) -> Option<ArtifactRecord> {
        let bytes = self.artifact_tree()?.get(name).ok()??;
        serde_json::from_slice(&bytes).ok()
    }

    /// Records (or replaces the record of) a compiled artifact.
    pub fn put_artifact(&self, name: &str, record: &ArtifactRecord) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(record).unwrap_or_default();
        self.db
            .get()?
            .artifacts
            .insert(name, bytes)
            .map_err(backend)?;
        Ok(())
    }

    /// Forgets the record of an artifact (its file is the caller's).
    pub fn remove_artifact(&self, name: &str) -> Result<(), StoreError> {
        self.db.get()?.artifacts.remove(name).map_err(backend)?;
        Ok(())
    }

    /// Every recorded artifact.
    pub fn artifacts(&self) -> Vec<(String, ArtifactRecord)> {
        let Some(tree) = self.artifact_tree() else {
            return Vec::new();
        };
        tree.iter()
            .flatten()
            .filter_map(|(key, value)| {
                let record = serde_json::from_slice(&value).ok()?;
                Some((String::from_utf8_lossy(&key).into_owned(), record))
            })
            .collect()
    }

    /// The artifacts tree, opening the database if needed; `None` (a miss,
    /// so the caller compiles) when it cannot be opened.
    fn artifact_tree(&self) -> Option<&sled::Tree> {
        Some(&self.db.get_or_warn("compiled-artifact records")?.artifacts)
    }

    /// Tool specs a plugin version described, by its content hash: listing
    /// tools on a warm cache needs no instance.
    pub fn tool_specs(&self, content_hash: &str) -> Option<Vec<crate::spec::ToolSpec>> {
        self.descriptions.get(&format!("specs:{content_hash}"))
    }

    /// Records the tool specs a plugin version described.
    pub fn put_tool_specs(
        &self,
        content_hash: &str,
        specs: &[crate::spec::ToolSpec],
    ) -> Result<(), StoreError> {
        self.descriptions
            .put(&format!("specs:{content_hash}"), specs)
    }

    /// The tool list a remote tool source (an MCP server) last gave, by
    /// the source's identity: listing tools needs no connection. The value
    /// is the source's own format; the store only keeps it.
    pub fn remote_tool_list(&self, identity: &str) -> Option<serde_json::Value> {
        self.descriptions.get(&format!("remote:{identity}"))
    }

    /// Records the tool list of a remote tool source.
    pub fn put_remote_tool_list(
        &self,
        identity: &str,
        list: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.descriptions.put(&format!("remote:{identity}"), list)
    }

    /// The content hash recorded for the plugin file at `path` when its
    /// identity (device, inode, size, mtime and ctime in ns) was `identity`;
    /// `None` when there is none or the file is not the same file any more.
    pub fn plugin_file_hash(&self, path: &std::path::Path, identity: &str) -> Option<String> {
        let record: PluginFileRecord = self.descriptions.get(&plugin_file_key(path))?;
        (record.identity == identity).then_some(record.content_hash)
    }

    /// Records the content hash of the plugin file at `path` as it is now.
    pub fn put_plugin_file_hash(
        &self,
        path: &std::path::Path,
        identity: &str,
        content_hash: &str,
    ) -> Result<(), StoreError> {
        let record = PluginFileRecord {
            identity: identity.to_owned(),
            content_hash: content_hash.to_owned(),
        };
        self.descriptions.put(&plugin_file_key(path), &record)
    }

    /// What an extension version declared, by its content hash.
    pub fn extension_spec(&self, key: &str) -> Option<crate::hooks::ExtensionSpec> {
        self.descriptions.get(key)
    }

    /// Records what an extension version declared.
    pub fn put_extension_spec(
        &self,
        key: &str,
        spec: &crate::hooks::ExtensionSpec,
    ) -> Result<(), StoreError> {
        self.descriptions.put(key, spec)
    }

    /// Why a plugin version's description was refused, by the key the
    /// loader builds from its content hash and the limits it broke: a
    /// refused version is not instantiated again at every start.
    pub fn describe_failure(&self, key: &str) -> Option<String> {
        self.descriptions.get(&format!("failed:{key}"))
    }

    /// Records why a plugin version's description was refused.
    pub fn put_describe_failure(&self, key: &str, message: &str) -> Result<(), StoreError> {
        self.descriptions.put(&format!("failed:{key}"), message)
    }

    /// Forgets every cached artifact record and tool spec, and the cache
    /// counters.
    pub fn clear_cache_records(&self) -> Result<(), StoreError> {
        let trees = self.db.get()?;
        trees.artifacts.clear().map_err(backend)?;
        trees.meta.remove(CACHE_TOTALS_KEY).map_err(backend)?;
        self.descriptions.clear()
    }
}
