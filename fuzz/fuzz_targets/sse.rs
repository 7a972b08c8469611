//! Fuzz target: provider response bodies through the SSE parser and the OpenAI and Anthropic stream decoders, in arbitrary chunks.
#![no_main]

use agent_host_llm::fuzzing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First byte: how many chunk boundaries follow (2 bytes each); the rest
    // is the body. Where the network cuts a body must never change what it
    // decodes to.
    let Some((&count, rest)) = data.split_first() else {
        return;
    };
    let count = usize::from(count % 16).min(rest.len() / 2);
    let (cut_bytes, body) = rest.split_at(count * 2);
    let cuts: Vec<usize> = cut_bytes
        .chunks_exact(2)
        .map(|pair| usize::from(u16::from_le_bytes([pair[0], pair[1]])) % (body.len() + 1))
        .collect();

    let whole = fuzzing::sse_events(vec![body]);
    let split = fuzzing::sse_events(fuzzing::chunks(body, &cuts));
    assert_eq!(whole, split, "SSE events depend on chunking");

    let whole = fuzzing::openai_stream(vec![body]);
    let split = fuzzing::openai_stream(fuzzing::chunks(body, &cuts));
    assert_eq!(whole, split, "OpenAI stream decoding depends on chunking");

    let whole = fuzzing::anthropic_stream(vec![body]);
    let split = fuzzing::anthropic_stream(fuzzing::chunks(body, &cuts));
    assert_eq!(
        whole, split,
        "Anthropic stream decoding depends on chunking"
    );

    // Servers that ignore `stream` answer with one JSON document.
    let _ = fuzzing::openai_completion(body);
});
