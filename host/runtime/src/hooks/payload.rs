//! Applying an extension's patch to an event payload: only the fields the hook point allows, only JSON objects; a rewritten tool result held to the tool's output cap.

use serde_json::{Map, Value};

use super::HookPoint;
use crate::error::PatchError;

/// A tool result an extension rewrote, held to the tool's own output cap:
/// `Err` with the message that replaces it when it is over. It is withheld
/// rather than cut, since a cut could undo a redaction.
pub fn capped_rewrite(tool: &str, text: String, limit: usize) -> Result<String, String> {
    if text.len() <= limit {
        return Ok(text);
    }
    tracing::warn!(tool = %tool, size = text.len(), limit, "a patched tool result is over the tool's output cap; withheld");
    Err(format!(
        "result withheld: an extension rewrote it to {} bytes, over the tool's output limit of {limit} bytes",
        text.len()
    ))
}

/// Replaces the payload fields named in `patch` (a JSON object text).
/// Refuses the whole patch, changing nothing, if it is not a JSON object or
/// names a field this point does not let extensions change.
pub fn apply_patch(
    point: HookPoint,
    payload: &mut Map<String, Value>,
    patch: &str,
) -> Result<(), PatchError> {
    let allowed = point.patchable_fields();
    if allowed.is_empty() {
        return Err(PatchError::NotPatchable { point });
    }
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(patch) else {
        return Err(PatchError::NotAnObject { allowed });
    };
    if let Some(field) = fields
        .keys()
        .find(|field| !allowed.contains(&field.as_str()))
    {
        return Err(PatchError::Field {
            point,
            field: field.clone(),
            allowed,
        });
    }
    for (field, value) in fields {
        payload.insert(field, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payload() -> Map<String, Value> {
        match json!({"name": "t", "output": "secret", "ok": true}) {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn allowed_fields_are_replaced() {
        let mut p = payload();
        apply_patch(
            HookPoint::AfterToolCall,
            &mut p,
            r#"{"output": "[masked]"}"#,
        )
        .unwrap();
        assert_eq!(p["output"], "[masked]");
        assert_eq!(p["name"], "t");
    }

    #[test]
    fn bad_patches_change_nothing() {
        let mut p = payload();
        let err = apply_patch(
            HookPoint::AfterToolCall,
            &mut p,
            r#"{"output": "x", "name": "y"}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`name`"), "{err}");
        assert_eq!(p, payload());
        assert!(apply_patch(HookPoint::AfterToolCall, &mut p, "[1]").is_err());
        assert!(apply_patch(HookPoint::TurnEnd, &mut p, "{}").is_err());
        assert_eq!(p, payload());
    }
}
