//! agent-plugin-sdk: the one guest binding of the `agent:plugin` contract and the idiomatic API over it.
//!
//! A tool plugin implements [`Plugin`] (a list of [`ToolSpec`]s and a `call`
//! function) and invokes [`export_plugin!`]. An extension (hooks into the
//! agent loop) implements [`Extension`] and invokes [`export_extension!`];
//! see the [`extension`] module. The generated WIT bindings live in
//! [`bindings`] and [`extension_bindings`]; plugin code should not need them.
//!
//! ```ignore
//! use agent_plugin_sdk::prelude::*;
//!
//! struct Echo;
//!
//! impl Plugin for Echo {
//!     fn tools() -> Vec<ToolSpec> {
//!         vec![ToolSpec::new("echo", "Return the text unchanged.")
//!             .schema(json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}))
//!             .read_only()]
//!     }
//!
//!     fn call(name: &str, args: Value, _ctx: &CallContext) -> Result<Output, ToolError> {
//!         match name {
//!             "echo" => Ok(Output::text(args.str_field("text")?)),
//!             _ => Err(ToolError::unknown_tool(name)),
//!         }
//!     }
//! }
//!
//! export_plugin!(Echo);
//! ```

// Lets the generated code name this crate by its external path, which is the
// only path that also works when the export macro expands in a plugin crate.
extern crate self as agent_plugin_sdk;

mod adapter;
mod args;
mod error;
pub mod extension;
pub mod host;
pub mod kv;
mod output;
pub mod session;
mod spec;

pub use adapter::Adapter;
pub use args::{ArgsExt, from_args};
pub use error::{ToolError, ToolErrorKind};
pub use extension::{
    Delivery, Event, Extension, ExtensionAdapter, ExtensionInfo, HookPoint, Outcome, Subscription,
    Throttle,
};
pub use host::Level;
pub use output::{Output, Part};
pub use serde_json;
pub use spec::{Hints, ToolSpec};

/// The contract version these bindings were generated from.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// Generated bindings for world `agent:plugin/tool-plugin`. Exposed for
/// [`export_plugin!`] and for authors who need a type the SDK does not wrap.
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/v0.1",
        world: "tool-plugin",
        // The export macro must be reachable from plugin crates, and must
        // find these types there without the plugin naming this module.
        pub_export_macro: true,
        default_bindings_module: "agent_plugin_sdk::bindings",
        // Plugin crates depend on the SDK only, not on wit-bindgen.
        runtime_path: "agent_plugin_sdk::__private::wit_bindgen::rt",
        bitflags_path: "agent_plugin_sdk::__private::wit_bindgen::rt::bitflags",
    });
}

/// Generated bindings for world `agent:plugin/extension-plugin`. Exposed for
/// [`export_extension!`] and for authors who need a type the SDK does not
/// wrap.
///
/// The shared `types` and `host` interfaces are not generated again: they
/// are the ones in [`bindings`], so host functions exist once. Like
/// [`bindings`], only the world's imports are linked into every plugin; the
/// `extension` export is declared by [`export_extension!`] alone, so a tool
/// plugin never claims to export it (and an extension never claims `tool`).
pub mod extension_bindings {
    wit_bindgen::generate!({
        path: "../../wit/v0.1",
        world: "extension-plugin",
        pub_export_macro: true,
        default_bindings_module: "agent_plugin_sdk::extension_bindings",
        runtime_path: "agent_plugin_sdk::__private::wit_bindgen::rt",
        bitflags_path: "agent_plugin_sdk::__private::wit_bindgen::rt::bitflags",
        with: {
            "agent:plugin/types@0.1.0": crate::bindings::agent::plugin::types,
            "agent:plugin/host@0.1.0": crate::bindings::agent::plugin::host,
        },
    });
}

#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;
}

/// Facts about the current call, as the host gave them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallContext {
    /// Identifier of this call, unique within a session.
    pub call_id: String,
    /// The agent session the call belongs to, if any.
    pub session_id: Option<String>,
    /// Wall-clock budget for this call in milliseconds; the host stops the
    /// call when it runs out.
    pub timeout_ms: u64,
}

impl From<bindings::agent::plugin::types::CallContext> for CallContext {
    fn from(ctx: bindings::agent::plugin::types::CallContext) -> Self {
        Self {
            call_id: ctx.call_id,
            session_id: ctx.session_id,
            timeout_ms: ctx.timeout_ms,
        }
    }
}

/// A tool plugin. Both functions are associated functions, not methods: the
/// host runs every call in a fresh instance, so there is no state to keep
/// between calls except what goes through [`kv`].
pub trait Plugin {
    /// Every tool this plugin provides. The host calls this once per plugin
    /// version and caches it, so it must not depend on arguments or state.
    fn tools() -> Vec<ToolSpec>;

    /// Runs tool `name`. `args` is a JSON object that the host has already
    /// validated against the tool's input schema. For a name this plugin does
    /// not know, return [`ToolError::unknown_tool`]; the SDK turns that into
    /// an `invalid-arguments` error that lists the tools it does know.
    fn call(name: &str, args: serde_json::Value, ctx: &CallContext) -> Result<Output, ToolError>;
}

/// Everything a typical plugin or extension needs, in one `use`.
pub mod prelude {
    pub use crate::host::{self, Level};
    pub use crate::{
        ArgsExt, CallContext, Delivery, Event, Extension, ExtensionInfo, HookPoint, Outcome,
        Output, Plugin, Subscription, Throttle, ToolError, ToolSpec, export_extension,
        export_plugin, from_args, kv, session,
    };
    // The crate itself too, so plugins need no direct serde_json dependency.
    pub use crate::serde_json::{self, Map, Value, json};
}

/// Exports a [`Plugin`] implementation as this component's `agent:plugin/tool`.
/// Invoke it once, at the top level of a `cdylib` crate.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        // The generated macro takes a type *name*, so the generic adapter
        // gets one through an alias.
        #[doc(hidden)]
        type __AgentPluginExport = $crate::Adapter<$plugin>;
        $crate::bindings::export!(__AgentPluginExport with_types_in $crate::bindings);
    };
}

/// Exports an [`Extension`] implementation as this component's
/// `agent:plugin/extension`. Invoke it once, at the top level of a `cdylib`
/// crate (and not together with [`export_plugin!`]: a component targets one
/// world).
#[macro_export]
macro_rules! export_extension {
    ($extension:ty) => {
        #[doc(hidden)]
        type __AgentExtensionExport = $crate::ExtensionAdapter<$extension>;
        $crate::extension_bindings::export!(
            __AgentExtensionExport with_types_in $crate::extension_bindings
        );
    };
}
