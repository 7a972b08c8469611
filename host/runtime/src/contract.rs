//! Checks that a file is a component for this host's contract version, before anything is instantiated.

use std::path::Path;

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::LoadError;
use crate::{CONTRACT_PACKAGE, CONTRACT_VERSION};

const WASM_MAGIC: &[u8; 4] = b"\0asm";

/// Rejects files that are not WebAssembly, and core modules, with messages
/// that say what to build instead.
pub fn check_header(path: &Path, bytes: &[u8]) -> Result<(), LoadError> {
    if bytes.len() < 8 || &bytes[..4] != WASM_MAGIC {
        return Err(LoadError::NotWasm {
            path: path.to_owned(),
        });
    }
    // Bytes 4..8 are the version and layer: 1,0,0,0 is a core module;
    // components use a different version with layer 1.
    if bytes[4..8] == [1, 0, 0, 0] {
        return Err(LoadError::CoreModule {
            path: path.to_owned(),
        });
    }
    Ok(())
}

/// The version part of `agent:plugin/<iface>@<version>`, if the name is ours.
fn contract_version(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(CONTRACT_PACKAGE)?.strip_prefix('/')?;
    Some(rest.split_once('@').map_or("", |(_, version)| version))
}

/// Whether a contract version can be served by this host: the same version,
/// or for 0.x versions the same minor (WIT's semver rules for pre-1.0).
fn is_compatible(version: &str) -> bool {
    let minor_of = |v: &str| {
        let mut parts = v.split('.');
        (
            parts.next().map(str::to_owned),
            parts.next().map(str::to_owned),
        )
    };
    let (major, minor) = minor_of(version);
    let (our_major, our_minor) = minor_of(CONTRACT_VERSION);
    match (major.as_deref(), our_major.as_deref()) {
        (Some("0"), Some("0")) => minor == our_minor,
        _ => major == our_major,
    }
}

/// Which world of the contract a component implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginKind {
    /// Exports `tool`: provides tools to the model.
    Tool,
    /// Exports `extension`: hooks into the agent loop.
    Extension,
}

/// Verifies the component exports the tool or the extension interface of a
/// supported contract version (not both), and imports nothing from another
/// version of it.
pub fn check_world(
    engine: &Engine,
    component: &Component,
    path: &Path,
) -> Result<PluginKind, LoadError> {
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    let imports: Vec<String> = ty
        .imports(engine)
        .map(|(name, _)| name.to_owned())
        .collect();

    let unsupported = |found: &str| LoadError::UnsupportedContract {
        path: path.to_owned(),
        package: CONTRACT_PACKAGE.to_owned(),
        found: if found.is_empty() {
            "(unversioned)".to_owned()
        } else {
            found.to_owned()
        },
        supported: CONTRACT_VERSION.to_owned(),
    };
    for name in exports.iter().chain(&imports) {
        if let Some(version) = contract_version(name)
            && !is_compatible(version)
        {
            return Err(unsupported(version));
        }
    }
    let exports_interface = |interface: &str| {
        let wanted = format!("{CONTRACT_PACKAGE}/{interface}");
        exports
            .iter()
            .any(|name| name.split('@').next() == Some(wanted.as_str()))
    };
    match (exports_interface("tool"), exports_interface("extension")) {
        (true, false) => Ok(PluginKind::Tool),
        (false, true) => Ok(PluginKind::Extension),
        (both, _) => Err(LoadError::WrongWorld {
            path: path.to_owned(),
            exports: exports.join(", "),
            expected: format!(
                "{}either {CONTRACT_PACKAGE}/tool@{CONTRACT_VERSION} (world tool-plugin) or {CONTRACT_PACKAGE}/extension@{CONTRACT_VERSION} (world extension-plugin)",
                if both { "only one of them: " } else { "" }
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_classified() {
        let p = Path::new("x.wasm");
        assert!(matches!(
            check_header(p, b"hello world"),
            Err(LoadError::NotWasm { .. })
        ));
        assert!(matches!(
            check_header(p, b"\0asm"),
            Err(LoadError::NotWasm { .. })
        ));
        assert!(matches!(
            check_header(p, b"\0asm\x01\0\0\0"),
            Err(LoadError::CoreModule { .. })
        ));
        assert!(check_header(p, b"\0asm\x0d\0\x01\0").is_ok());
    }

    #[test]
    fn versions_follow_wit_semver() {
        assert_eq!(contract_version("agent:plugin/tool@0.1.0"), Some("0.1.0"));
        assert_eq!(contract_version("agent:plugin/tool"), Some(""));
        assert_eq!(contract_version("wasi:cli/stdout@0.2.0"), None);
        assert!(is_compatible("0.1.0"));
        assert!(is_compatible("0.1.7"));
        assert!(!is_compatible("0.2.0"));
        assert!(!is_compatible("9.0.0"));
        assert!(!is_compatible(""));
    }
}
