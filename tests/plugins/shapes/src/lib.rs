//! test-plugin-shapes: tools that return each result shape the MCP front end maps (text, JSON, image, audio, other binary, structured output), each kind of tool error, and a call that reports progress and then runs until stopped.

use std::hint::black_box;

use agent_plugin_sdk::prelude::*;

struct Shapes;

/// The first bytes of a PNG file: enough for a client to see image data.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
/// A RIFF/WAVE header.
const WAV: &[u8] = b"RIFF\x24\0\0\0WAVEfmt ";
const PDF: &[u8] = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n";

impl Plugin for Shapes {
    fn tools() -> Vec<ToolSpec> {
        vec![
            ToolSpec::new(
                "shapes_mixed",
                "Return one content part of each kind and a structured result.",
            )
            .title("Mixed shapes")
            .schema(json!({ "type": "object", "additionalProperties": false }))
            .output_schema(json!({
                "type": "object",
                "properties": { "count": { "type": "integer" } },
                "required": ["count"]
            }))
            .destructive()
            .open_world(),
            ToolSpec::new("shapes_fail", "Return the tool error named by `kind`.").schema(json!({
                "type": "object",
                "properties": { "kind": { "enum": ["failed", "denied", "invalid"] } },
                "required": ["kind"]
            })),
            ToolSpec::new(
                "shapes_wait",
                "Report progress once, then run until cancelled or out of time.",
            )
            .schema(json!({ "type": "object" })),
        ]
    }

    fn call(name: &str, args: Value, _ctx: &CallContext) -> Result<Output, ToolError> {
        match name {
            "shapes_mixed" => Ok(Output::text("hello")
                .with_json(json!({ "a": 1 }))
                .with_binary("image/png", PNG)
                .with_binary("audio/wav", WAV)
                .with_binary("application/pdf", PDF)
                .with_structured(json!({ "count": 3 }))),
            "shapes_fail" => match args.str_field("kind")? {
                "failed" => Err(ToolError::failed("the disk is full")),
                "denied" => Err(ToolError::denied("not allowed to touch /etc")),
                _ => Err(ToolError::invalid_arguments("`kind` made no sense here")),
            },
            "shapes_wait" => {
                host::progress(1, None, Some("started"));
                wait_forever()
            }
            _ => Err(ToolError::unknown_tool(name)),
        }
    }
}

fn wait_forever() -> ! {
    let mut counter = 0u64;
    loop {
        // black_box keeps the optimizer from proving the loop useless.
        counter = black_box(counter.wrapping_add(1));
    }
}

export_plugin!(Shapes);
