//! Plugin manifests: the TOML file next to each `.wasm` naming the plugin and the capabilities it requests.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{LoadError, ManifestError};

/// Directory access a plugin requests or the host grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    /// Read only.
    Read,
    /// Read and write.
    ReadWrite,
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Access::Read => "read",
            Access::ReadWrite => "read-write",
        })
    }
}

/// A directory the plugin wants to see, by its path inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DirRequest {
    /// The absolute guest path asked for.
    pub path: String,
    /// The access asked for.
    pub access: Access,
}

/// Everything a plugin asks for. Nothing here is available unless the host
/// configuration grants it too.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CapabilityRequest {
    /// Directories asked for.
    #[serde(default)]
    pub dirs: Vec<DirRequest>,
    /// Environment variables asked for (names).
    #[serde(default)]
    pub env: Vec<String>,
    /// Hosts (`host`, `host:port`) or `*` for whatever the host grants.
    #[serde(default)]
    pub network: Vec<String>,
}

/// Limits the plugin asks to run under; the host caps each one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitRequest {
    /// Memory cap asked for, in MiB.
    pub memory_mb: Option<u64>,
    /// Deadline asked for, in ms.
    pub timeout_ms: Option<u64>,
    /// Fuel asked for (only when the host meters fuel).
    pub fuel: Option<u64>,
    /// Output cap asked for, in KiB.
    pub max_output_kb: Option<u64>,
}

/// The `[plugin]` table: who the plugin is.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PluginInfo {
    /// The plugin's name: its file stem, 1-64 characters of a-z, 0-9 and '-'.
    pub name: String,
    /// A full semantic version.
    pub version: String,
    /// What it is for, for listings.
    #[serde(default)]
    pub description: String,
}

/// A parsed and validated plugin manifest.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Who the plugin is.
    pub plugin: PluginInfo,
    /// What it asks to be granted.
    #[serde(default)]
    pub capabilities: CapabilityRequest,
    /// The limits it asks for.
    #[serde(default)]
    pub limits: LimitRequest,
    /// Settings for the plugin itself, handed to it as JSON by the host's
    /// `config` import. The host configuration can replace them.
    #[serde(default)]
    pub config: serde_json::Map<String, serde_json::Value>,
}

/// The manifest path that belongs to a `.wasm` file: same stem, `.toml`.
pub fn manifest_path_for(wasm: &Path) -> PathBuf {
    wasm.with_extension("toml")
}

/// Whether `name` can name a plugin: 1-64 characters of a-z, 0-9 and '-'.
pub fn is_plugin_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

impl Manifest {
    /// Reads and validates the manifest at `path`.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|error| LoadError::Manifest {
            path: path.to_owned(),
            error,
        })
    }

    /// Parses and validates manifest text; the error says which field is wrong.
    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        let manifest: Manifest = toml::from_str(text)
            .map_err(|err| ManifestError::Toml(err.to_string().trim().to_owned()))?;
        manifest.validate()?;
        Ok(manifest)
    }

    fn validate(&self) -> Result<(), ManifestError> {
        let name = &self.plugin.name;
        if !is_plugin_name(name) {
            return Err(ManifestError::Name { name: name.clone() });
        }
        if !is_semver(&self.plugin.version) {
            return Err(ManifestError::Version {
                version: self.plugin.version.clone(),
                max_len: MAX_VERSION_LEN,
            });
        }
        for dir in &self.capabilities.dirs {
            if !dir.path.starts_with('/') {
                return Err(ManifestError::RelativeDir {
                    path: dir.path.clone(),
                });
            }
            if dir.path.split('/').any(|part| part == "..") {
                return Err(ManifestError::ParentInDir {
                    path: dir.path.clone(),
                });
            }
        }
        for var in &self.capabilities.env {
            if var.is_empty() || var.contains('=') || var.contains('\0') {
                return Err(ManifestError::EnvName { var: var.clone() });
            }
        }
        for host in &self.capabilities.network {
            if host.is_empty() || host.contains('/') || host.contains(' ') {
                return Err(ManifestError::Network { host: host.clone() });
            }
        }
        let limits = &self.limits;
        for (field, value) in [
            ("limits.memory_mb", limits.memory_mb),
            ("limits.timeout_ms", limits.timeout_ms),
            ("limits.fuel", limits.fuel),
            ("limits.max_output_kb", limits.max_output_kb),
        ] {
            if value == Some(0) {
                return Err(ManifestError::ZeroLimit { field });
            }
        }
        Ok(())
    }
}

/// Longest `plugin.version` accepted: a version is shown in tables and
/// messages, so it stays short.
pub const MAX_VERSION_LEN: usize = 64;

/// Whether `version` is a full semantic version (semver.org 2.0.0):
/// `MAJOR.MINOR.PATCH`, then optionally `-` and dot-separated pre-release
/// identifiers, then optionally `+` and dot-separated build identifiers.
/// Identifiers are non-empty runs of `[0-9A-Za-z-]`; numeric parts of the
/// core and numeric pre-release identifiers have no leading zeros.
fn is_semver(version: &str) -> bool {
    if version.len() > MAX_VERSION_LEN {
        return false;
    }
    let (rest, build) = match version.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (version, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let numeric = |part: &str| {
        !part.is_empty()
            && part.bytes().all(|b| b.is_ascii_digit())
            && (part == "0" || !part.starts_with('0'))
    };
    let identifier = |part: &str| {
        !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|part| numeric(part) && part.parse::<u64>().is_ok())
        && pre.is_none_or(|pre| {
            pre.split('.').all(|part| {
                identifier(part) && (!part.bytes().all(|b| b.is_ascii_digit()) || numeric(part))
            })
        })
        && build.is_none_or(|build| build.split('.').all(identifier))
}

#[cfg(test)]
#[path = "manifest_tests.rs"]
mod tests;
