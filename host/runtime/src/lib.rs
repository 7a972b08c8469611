//! agent-host-runtime: load WebAssembly tool and extension plugins, run each call in a sandbox, and persist their state.
//!
//! The entry point is [`Runtime`]: it owns the wasmtime engine, the plugin
//! registry and the store. Everything a caller sees is plain Rust types from
//! [`spec`]; the generated component bindings stay inside [`bindings`].

#![warn(missing_docs, unreachable_pub)]

#[cfg(feature = "bench")]
pub mod bench;
mod bindings;
pub mod cache;
pub mod capabilities;
pub mod config;
mod contract;
mod engine;
pub use engine::Tier;
pub mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod guest_error;
pub mod hooks;
mod host_api;
mod instance_slots;
mod invoke;
mod loader;
pub mod manifest;
mod output_capture;
pub mod registry;
pub mod runtime;
mod sandbox;
pub mod schema;
pub mod session_state;
pub mod spec;
pub mod store;
#[cfg(feature = "watch")]
pub mod watcher;

pub use config::RuntimeConfig;
pub use contract::PluginKind;
pub use error::{
    CacheError, CallError, ConfigError, EngineError, FailureKind, GrantError, HookError, HostError,
    HostPatternError, LoadError, ManifestError, PatchError, SchemaError, StoreError,
};
pub use loader::{CompileObserver, LoadMode};
pub use runtime::{CallOptions, PluginEvent, Runtime};
pub use spec::{ContentPart, ToolError, ToolHints, ToolOutput, ToolSpec};

/// The contract version this host implements: the version of the
/// `agent:plugin` package in `wit/v0.1/plugin.wit`, which the bindings are
/// generated from (a test in `contract.rs` fails if the two differ).
pub const CONTRACT_VERSION: &str = "0.1.0";
/// The WIT package name of the contract.
pub const CONTRACT_PACKAGE: &str = "agent:plugin";
/// The contract's WIT text, as the bindings were generated from it: what
/// a plugin's tool chain builds against (`agent-host plugins new` writes it).
pub const CONTRACT_WIT: &str = include_str!("../../../wit/v0.1/plugin.wit");
