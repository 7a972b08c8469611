//! test-plugin-ext-wrong-version: a well-formed extension for contract version 9.0.0, which the host must refuse.
//!
//! `wit/plugin.wit` is the real contract with only the package version
//! changed, so the version is the one thing wrong with this plugin.

wit_bindgen::generate!({
    path: "wit",
    world: "extension-plugin",
});

use agent::plugin::host;
use agent::plugin::types::LogLevel;
use exports::agent::plugin::extension::{
    Delivery, Event, ExtensionInfo, Guest, HookPoint, Outcome, Subscription, Throttle,
};

struct WrongVersion;

impl Guest for WrongVersion {
    fn describe_extension() -> ExtensionInfo {
        ExtensionInfo {
            priority: 0,
            subscriptions: vec![Subscription {
                point: HookPoint::BeforeToolCall,
                delivery: Delivery::Sync,
                throttle: Throttle {
                    min_interval_ms: None,
                    every_n_turns: None,
                    coalesce_chunks: None,
                    coalesce_ms: None,
                },
            }],
        }
    }

    fn on_event(_event: Event) -> Outcome {
        // The host import makes the component import `host@9.0.0` too, like
        // a real extension, not only export `extension@9.0.0`.
        host::log(LogLevel::Error, "a 9.0.0 extension ran");
        // Would make any call it saw fail visibly if the host ever ran it.
        Outcome::Block("a 9.0.0 extension ran".into())
    }
}

export!(WrongVersion);
