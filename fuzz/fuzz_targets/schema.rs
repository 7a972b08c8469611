//! Fuzz target: a plugin-supplied input schema and call arguments through `ArgsValidator::compile_input` and `check`.
#![no_main]

use agent_host_runtime::fuzzing;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    // `<schema JSON> NUL <arguments JSON>`: both come from outside the host
    // (the plugin's describe, the model's tool call).
    let (schema, args) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b"{}"[..]),
    };
    let Ok(schema) = serde_json::from_slice::<Value>(schema) else {
        return;
    };
    let Ok(args) = serde_json::from_slice::<Value>(args) else {
        return;
    };
    if let Ok(Err(problems)) = fuzzing::validate_args(&schema, &args) {
        assert!(!problems.is_empty(), "a refusal must say what is wrong");
    }
});
