//! Fuzz target: values a guest returns (tool specs, tool results, extension info, hook outcomes) through their conversion into host values.
#![no_main]

use agent_host_runtime::fuzzing::{
    self, GuestOutcome, GuestPart, GuestResult, GuestSubscription, GuestToolSpec,
};
use agent_host_runtime::hooks::HookPoint;
use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

fn part(u: &mut Unstructured) -> Result<GuestPart> {
    Ok(match u.int_in_range(0..=2)? {
        0 => GuestPart::Text(u.arbitrary()?),
        1 => GuestPart::Json(u.arbitrary()?),
        _ => GuestPart::Binary {
            mime_type: u.arbitrary()?,
            data: u.arbitrary()?,
        },
    })
}

fn result(u: &mut Unstructured) -> Result<GuestResult> {
    Ok(match u.int_in_range(0..=3)? {
        0 => GuestResult::InvalidArguments(u.arbitrary()?),
        1 => GuestResult::Failed(u.arbitrary()?),
        2 => GuestResult::Denied(u.arbitrary()?),
        _ => {
            let mut content = Vec::new();
            for _ in 0..u.int_in_range(0..=4)? {
                content.push(part(u)?);
            }
            GuestResult::Ok {
                content,
                structured: u.arbitrary()?,
            }
        }
    })
}

fn spec(u: &mut Unstructured) -> Result<GuestToolSpec> {
    Ok(GuestToolSpec {
        name: u.arbitrary()?,
        title: u.arbitrary()?,
        description: u.arbitrary()?,
        input_schema: u.arbitrary()?,
        output_schema: u.arbitrary()?,
        hints: u.arbitrary()?,
    })
}

fn subscription(u: &mut Unstructured) -> Result<GuestSubscription> {
    Ok(GuestSubscription {
        point: u.arbitrary()?,
        background: u.arbitrary()?,
        min_interval_ms: u.arbitrary()?,
        every_n_turns: u.arbitrary()?,
        coalesce_chunks: u.arbitrary()?,
        coalesce_ms: u.arbitrary()?,
    })
}

fn outcome(u: &mut Unstructured) -> Result<GuestOutcome> {
    Ok(match u.int_in_range(0..=3)? {
        0 => GuestOutcome::Continue,
        1 => GuestOutcome::Patch(u.arbitrary()?),
        2 => GuestOutcome::Block(u.arbitrary()?),
        _ => GuestOutcome::Inject(u.arbitrary()?),
    })
}

fn run(u: &mut Unstructured) -> Result<()> {
    match u.int_in_range(0..=3)? {
        0 => {
            let guest = spec(u)?;
            let (has_output, title) = (guest.output_schema.is_some(), guest.title.clone());
            if let Ok(spec) = fuzzing::tool_spec(guest) {
                assert_eq!(spec.output_schema.is_some(), has_output);
                assert_eq!(spec.title, title);
                serde_json::to_string(&spec).expect("a tool spec must serialize");
            }
        }
        1 => {
            let guest = result(u)?;
            let parts = match &guest {
                GuestResult::Ok { content, .. } => content.len(),
                _ => 0,
            };
            let cap = u.int_in_range(0..=64 * 1024)?;
            if let Some((size, converted)) = fuzzing::tool_result(guest, cap) {
                assert!(size <= cap);
                // The outer `Err` is structured output that is not JSON.
                if let Ok(Ok(output)) = converted {
                    // Every part is kept: invalid JSON becomes text.
                    assert_eq!(output.content.len(), parts);
                    let _ = output.to_text();
                    serde_json::to_string(&output).expect("a tool output must serialize");
                }
            }
        }
        2 => {
            let priority = u.arbitrary()?;
            let mut subscriptions = Vec::new();
            for _ in 0..u.int_in_range(0..=12)? {
                subscriptions.push(subscription(u)?);
            }
            let count = subscriptions.len();
            let spec = fuzzing::extension_spec(priority, subscriptions);
            assert_eq!(spec.priority, priority);
            assert_eq!(spec.subscriptions.len(), count);
        }
        _ => {
            let guest = outcome(u)?;
            let point = HookPoint::ALL[usize::from(u.arbitrary::<u8>()?) % HookPoint::ALL.len()];
            let Value::Object(mut payload) =
                json!({"name": "tool", "arguments": {"a": 1}, "output": "text", "ok": true})
            else {
                unreachable!()
            };
            let before: Map<String, Value> = payload.clone();
            let (_, patched) = fuzzing::hook_outcome(guest, point, &mut payload);
            // A refused patch changes nothing.
            if let Some(Err(_)) = patched {
                assert_eq!(payload, before, "a refused patch changed the payload");
            }
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
