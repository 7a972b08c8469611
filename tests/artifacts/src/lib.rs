//! Paths of the guest plugins the integration tests load, built for wasm32-wasip2 by this crate's build script.
//!
//! `test_plugins::ECHO` and friends are [`Plugin`]s (component + manifest);
//! [`foreach_test_plugin!`] and [`foreach_example_plugin!`] call a macro once
//! per plugin, so a test crate can define one private handle per plugin and
//! let the dead-code lint refuse a plugin that no test uses.

use std::path::{Path, PathBuf};

/// A built plugin: its component and its manifest, side by side as
/// `<name>.wasm` and `<name>.toml`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plugin {
    /// The file stem of both files, and the name in the manifest.
    pub name: &'static str,
    pub wasm: &'static str,
    pub manifest: &'static str,
}

impl Plugin {
    /// The component and manifest paths.
    ///
    /// # Panics
    ///
    /// When a file has gone since the build script ran (the guest target
    /// directory was removed by hand), with the way to rebuild it.
    pub fn files(&self) -> (PathBuf, PathBuf) {
        for path in [self.wasm, self.manifest] {
            assert!(
                Path::new(path).is_file(),
                "{path} is missing: its guest build was removed; run \
                 `cargo clean -p agent-host-test-artifacts` and test again"
            );
        }
        (self.wasm.into(), self.manifest.into())
    }
}

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));
