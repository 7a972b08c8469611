//! Fuzz target: plugin manifest text (`<plugin>.toml`) through `Manifest::parse`.
#![no_main]

use agent_host_runtime::fuzzing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The loader reads the manifest as UTF-8 text; other bytes never reach
    // the parser.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(manifest) = fuzzing::parse_manifest(text) else {
        return;
    };
    // A manifest the host accepted stays accepted, unchanged, when written
    // back out (`plugins check` shows it; the cache keys on it). Values TOML
    // cannot hold (a NaN turned JSON null) cannot be written: skip those.
    if let Ok(again) = toml::to_string(&manifest) {
        let reparsed = fuzzing::parse_manifest(&again)
            .unwrap_or_else(|err| panic!("re-serialized manifest refused: {err}\n{again}"));
        assert_eq!(reparsed, manifest, "round trip changed the manifest");
    }
});
