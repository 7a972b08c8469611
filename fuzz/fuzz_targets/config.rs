//! Fuzz target: host config file bytes through `HostConfig::resolve` (read, TOML, path resolution, validation) and into a plugin's capabilities.
#![no_main]

use agent_host::fuzzing;
use agent_host::manifest::Manifest;
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

fuzz_target!(|data: &[u8]| {
    let Ok(config) = fuzzing::resolve_config(data) else {
        return;
    };
    // What `resolve` returns has been validated; validating again agrees,
    // and `config show --json` can print it.
    config
        .validate()
        .expect("a resolved config must pass its own validation");
    serde_json::to_string(&config).expect("a resolved config must serialize");
    // A config the host accepted must give every plugin usable limits.
    for text in MANIFESTS {
        let manifest = Manifest::parse(text).expect("fixed manifest");
        if let Ok(caps) = fuzzing::plugin_capabilities(&config, &manifest) {
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
