//! Checks that a file is a component of a contract version this host serves, and which world it implements, before anything is instantiated.
//!
//! The header is checked on the raw bytes (before compiling); the world and
//! the `agent:plugin` versions it imports and exports on the compiled
//! component (before linking). A 0.x host serves plugins of the same minor:
//! [`crate::CONTRACT_VERSION`] is `wit/v0.1/plugin.wit`'s package version (a
//! test keeps them equal).

use std::path::Path;

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::LoadError;
use crate::{CONTRACT_PACKAGE, CONTRACT_VERSION};

const WASM_MAGIC: &[u8; 4] = b"\0asm";

/// Rejects files that are not WebAssembly, and core modules, with messages
/// that say what to build instead.
pub(crate) fn check_header(path: &Path, bytes: &[u8]) -> Result<(), LoadError> {
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
pub(crate) fn check_world(
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

/// The contract version a component was built against: the version on the
/// `agent:plugin` interface it exports (`tool` or `extension`), as its
/// author's tool chain wrote it. `None` when it exports neither.
pub(crate) fn built_version(engine: &Engine, component: &Component) -> Option<String> {
    component
        .component_type()
        .exports(engine)
        .find_map(|(name, _)| {
            let version = contract_version(name)?;
            let interface = name.strip_prefix(CONTRACT_PACKAGE)?.trim_start_matches('/');
            let interface = interface.split('@').next()?;
            matches!(interface, "tool" | "extension").then(|| version.to_owned())
        })
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

    /// The version in the `package agent:plugin@X.Y.Z;` line of a WIT file.
    fn wit_package_version(wit: &str) -> Option<&str> {
        wit.lines().find_map(|line| {
            line.trim()
                .strip_prefix("package ")?
                .strip_suffix(';')?
                .strip_prefix(CONTRACT_PACKAGE)?
                .strip_prefix('@')
        })
    }

    /// `0.1` of `0.1.0`: contract directories are per minor (`wit/v0.1`).
    fn contract_minor() -> &'static str {
        CONTRACT_VERSION.rsplit_once('.').unwrap().0
    }

    fn read(relative: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()))
    }

    #[test]
    fn package_lines_are_parsed() {
        let wit = "/// docs\npackage agent:plugin@0.2.3;\n\ninterface types {}\n";
        assert_eq!(wit_package_version(wit), Some("0.2.3"));
        assert_eq!(wit_package_version("package other:pkg@0.1.0;"), None);
        assert_eq!(wit_package_version("interface types {}"), None);
    }

    /// CONTRACT_VERSION is what the host checks plugins against; the WIT is
    /// what both sides are generated from. They must not drift apart.
    #[test]
    fn contract_version_is_the_wit_package_version() {
        let dir = format!("../../wit/v{}", contract_minor());
        let wit = read(&format!("{dir}/plugin.wit"));
        assert_eq!(
            wit_package_version(&wit),
            Some(CONTRACT_VERSION),
            "{dir}/plugin.wit declares another package version than CONTRACT_VERSION in lib.rs"
        );
        // The one bindgen! site and the SDK's generate! read that directory
        // (both crates sit two levels below the workspace root).
        let bound = format!("path: \"{dir}\"");
        assert!(
            include_str!("bindings.rs").contains(&bound),
            "bindings.rs does not bind {dir}"
        );
        let sdk = read("../../plugins/sdk/src/lib.rs");
        assert!(
            sdk.contains(&bound),
            "plugins/sdk does not generate from {dir}"
        );
        assert!(
            sdk.contains(&format!("CONTRACT_VERSION: &str = \"{CONTRACT_VERSION}\"")),
            "plugins/sdk's CONTRACT_VERSION differs from the host's"
        );
    }
}
