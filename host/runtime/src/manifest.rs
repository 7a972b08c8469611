//! Plugin manifests: the TOML file next to each `.wasm` naming the plugin and the capabilities it requests.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::LoadError;

/// Directory access a plugin requests or the host grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    Read,
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
    pub path: String,
    pub access: Access,
}

/// Everything a plugin asks for. Nothing here is available unless the host
/// configuration grants it too.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CapabilityRequest {
    #[serde(default)]
    pub dirs: Vec<DirRequest>,
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
    pub memory_mb: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub fuel: Option<u64>,
    pub max_output_kb: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub description: String,
}

/// A parsed and validated plugin manifest.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub plugin: PluginInfo,
    #[serde(default)]
    pub capabilities: CapabilityRequest,
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

impl Manifest {
    /// Reads and validates the manifest at `path`.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|message| LoadError::Manifest {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses and validates manifest text; the error says which field is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let manifest: Manifest =
            toml::from_str(text).map_err(|err| err.to_string().trim().to_owned())?;
        manifest.validate()?;
        Ok(manifest)
    }

    fn validate(&self) -> Result<(), String> {
        let name = &self.plugin.name;
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(format!(
                "plugin.name '{name}' must be 1-64 characters of a-z, 0-9 and '-'"
            ));
        }
        if !is_semver(&self.plugin.version) {
            return Err(format!(
                "plugin.version '{}' must be a full semantic version such as 0.1.0 or 1.2.0-beta.1+build.5 \
                 (MAJOR.MINOR.PATCH without leading zeros, optional -prerelease and +build of dot-separated \
                 [0-9A-Za-z-] identifiers, at most {MAX_VERSION_LEN} characters)",
                self.plugin.version
            ));
        }
        for dir in &self.capabilities.dirs {
            if !dir.path.starts_with('/') {
                return Err(format!(
                    "capabilities.dirs path '{}' must be an absolute guest path such as /workspace",
                    dir.path
                ));
            }
            if dir.path.split('/').any(|part| part == "..") {
                return Err(format!(
                    "capabilities.dirs path '{}' must not contain '..'",
                    dir.path
                ));
            }
        }
        for var in &self.capabilities.env {
            if var.is_empty() || var.contains('=') || var.contains('\0') {
                return Err(format!(
                    "capabilities.env entry '{var}' is not a variable name"
                ));
            }
        }
        for host in &self.capabilities.network {
            if host.is_empty() || host.contains('/') || host.contains(' ') {
                return Err(format!(
                    "capabilities.network entry '{host}' must be 'host', 'host:port' or '*', not a URL"
                ));
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
                return Err(format!(
                    "{field} must be greater than 0 (omit it for the default)"
                ));
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
mod tests {
    use super::*;

    const GOOD: &str = r#"
        [plugin]
        name = "fs"
        version = "0.1.0"
        [capabilities]
        dirs = [{ path = "/workspace", access = "read-write" }]
        env = ["HOME"]
        network = ["example.com:443"]
        [limits]
        memory_mb = 64
    "#;

    #[test]
    fn parses_a_full_manifest() {
        let manifest = Manifest::parse(GOOD).unwrap();
        assert_eq!(manifest.plugin.name, "fs");
        assert_eq!(manifest.capabilities.dirs[0].access, Access::ReadWrite);
        assert_eq!(manifest.limits.memory_mb, Some(64));
        assert_eq!(manifest.limits.timeout_ms, None);
    }

    #[test]
    fn minimal_manifest_requests_nothing() {
        let manifest = Manifest::parse("[plugin]\nname = \"x\"\nversion = \"1.2.3\"\n").unwrap();
        assert_eq!(manifest.capabilities, CapabilityRequest::default());
    }

    #[test]
    fn rejects_bad_fields_with_their_names() {
        let cases = [
            (
                "[plugin]\nname = \"Bad Name\"\nversion = \"0.1.0\"",
                "plugin.name",
            ),
            (
                "[plugin]\nname = \"x\"\nversion = \"one\"",
                "plugin.version",
            ),
            (
                "[plugin]\nname = \"x\"\nversion = \"0.1.0\"\n[capabilities]\ndirs = [{ path = \"rel\", access = \"read\" }]",
                "absolute",
            ),
            (
                "[plugin]\nname = \"x\"\nversion = \"0.1.0\"\n[capabilities]\ndirs = [{ path = \"/a\", access = \"all\" }]",
                "access",
            ),
            (
                "[plugin]\nname = \"x\"\nversion = \"0.1.0\"\n[capabilities]\nnetwork = [\"https://a.com/\"]",
                "not a URL",
            ),
            (
                "[plugin]\nname = \"x\"\nversion = \"0.1.0\"\n[limits]\nmemory_mb = 0",
                "limits.memory_mb",
            ),
            (
                "[plugin]\nname = \"x\"\nversion = \"0.1.0\"\nsurprise = 1",
                "surprise",
            ),
            ("[plugin\nname", "TOML"),
        ];
        for (text, expected) in cases {
            let err = Manifest::parse(text).unwrap_err();
            let matches = err.contains(expected) || (expected == "TOML" && !err.is_empty());
            assert!(
                matches,
                "error for {text:?} should mention {expected:?}: {err}"
            );
        }
    }

    #[test]
    fn versions_must_be_full_semver() {
        let good = [
            "0.0.0",
            "0.1.0",
            "1.2.3",
            "10.20.30",
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-0.3.7",
            "1.0.0-x.7.z.92",
            "1.0.0-x-y-z.--",
            "1.0.0-alpha+001",
            "1.0.0+20130313144700",
            "1.0.0-beta+exp.sha.5114f85",
            "1.0.0+21AF26D3----117B344092BD",
            "18446744073709551615.0.0",
        ];
        for version in good {
            assert!(is_semver(version), "{version} is semver");
        }
        let bad = [
            "",
            "1",
            "1.2",
            "1.2.3.4",
            "01.1.1",
            "1.01.1",
            "1.1.01",
            "1.2.3-",
            "1.2.3+",
            "1.2.3-+",
            "1.2.3-0123",
            "1.2.3-01.1",
            "1.2.3-alpha..1",
            "1.2.3-alpha_beta",
            "1.2.3+build..1",
            "1.2.3+a+b",
            "v1.2.3",
            " 1.2.3",
            "1.2.3 ",
            "1.2.-3",
            "+1.2.3",
            "18446744073709551616.0.0",
            "0.1.0-\u{1b}]0;pwned\u{7}",
            "0.1.0+\u{1b}[2J",
            "0.1.0-\u{9b}2J",
            "0.1.0-é",
        ];
        for version in bad {
            assert!(!is_semver(version), "{version:?} is not semver");
        }
        let long = format!("1.0.0-{}", "a".repeat(MAX_VERSION_LEN));
        assert!(!is_semver(&long));
        let err = Manifest::parse("[plugin]\nname = \"x\"\nversion = \"0.1.0-\\u001b[2J\"\n")
            .unwrap_err();
        assert!(
            err.contains("plugin.version") && err.contains("full semantic version"),
            "{err}"
        );
    }
}
