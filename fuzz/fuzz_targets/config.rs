//! Fuzz target: config file bytes through the binary's `Settings::resolve` (read, TOML, section composition, path resolution, validation) and into a plugin's capabilities.
#![no_main]

// The binary's own config module, compiled into the target as it is: the
// file composition lives in the CLI crate, which has no library to link.
#[path = "../../host/cli/src/cli/config.rs"]
mod config;

use std::path::PathBuf;

use agent_host_runtime::fuzzing;
use agent_host_runtime::manifest::Manifest;
use config::{ConfigSources, Settings};
use libfuzzer_sys::fuzz_target;

/// Two plugins: one that asks for nothing (the config's defaults apply) and
/// one that asks for everything (the config's maxima apply; TOML integers
/// stop at i64::MAX).
const MANIFESTS: [&str; 2] = [
    "[plugin]\nname = \"plain\"\nversion = \"0.1.0\"\n",
    "[plugin]\nname = \"fs\"\nversion = \"0.1.0\"\n\
     [capabilities]\ndirs = [{ path = \"/workspace\", access = \"read-write\" }]\n\
     env = [\"HOME\"]\nnetwork = [\"*\"]\n\
     [limits]\nmemory_mb = 9223372036854775807\ntimeout_ms = 9223372036854775807\n\
     fuel = 9223372036854775807\nmax_output_kb = 9223372036854775807\n",
];

/// Each fuzzing process writes its own scratch config file: the file is the
/// real input path (read, UTF-8 check, TOML).
fn scratch_config_path() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("agent-host-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    dir.join("config.toml")
}

fuzz_target!(|data: &[u8]| {
    let path = scratch_config_path();
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let Ok(settings) = Settings::resolve(ConfigSources {
        config_file: Some(path),
        ..ConfigSources::default()
    }) else {
        return;
    };
    let config = &settings.runtime;
    // What `resolve` returns has been validated; validating again agrees,
    // and every section of it can be printed as JSON.
    config
        .validate()
        .expect("a resolved config must pass its own validation");
    serde_json::to_string(&(
        config,
        &settings.provider,
        &settings.agent,
        &settings.sessions,
        &settings.config_file,
    ))
    .expect("a resolved config must serialize");
    // A config the host accepted must give every plugin usable limits.
    for text in MANIFESTS {
        let manifest = Manifest::parse(text).expect("fixed manifest");
        if let Ok(caps) = fuzzing::plugin_capabilities(config, &manifest) {
            let limits = &caps.limits;
            assert!(
                limits.memory_bytes >= 1 << 20,
                "memory limit below 1 MiB: {limits:?}"
            );
            assert!(
                limits.max_output_bytes >= 1024,
                "output cap below 1 KiB: {limits:?}"
            );
            assert!(!limits.timeout.is_zero(), "zero timeout: {limits:?}");
        }
    }
});
