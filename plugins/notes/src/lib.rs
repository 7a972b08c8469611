//! plugin-notes: the `note_add`, `note_get`, `note_list` and `note_delete` tools over the host's kv state.

use agent_plugin_sdk::prelude::*;
use serde::{Deserialize, Serialize};

/// Every note is one kv entry under this prefix, so listing is one prefix scan.
const PREFIX: &str = "note/";
/// Keeps `PREFIX + title` under the host's 256-byte key limit.
const MAX_TITLE_BYTES: usize = 200;
/// Comfortably below the host's 1 MiB value limit once JSON-encoded.
const MAX_BODY_BYTES: usize = 512 << 10;
/// How much of each body `note_list` previews.
const PREVIEW_CHARS: usize = 80;

#[derive(Debug, Serialize, Deserialize)]
struct Note {
    title: String,
    body: String,
    /// Seconds since the Unix epoch, from the wall clock WASI provides.
    updated_unix: u64,
}

struct Notes;

impl Plugin for Notes {
    fn tools() -> Vec<ToolSpec> {
        let title = json!({ "type": "string", "minLength": 1, "maxLength": MAX_TITLE_BYTES });
        let title_only = json!({
            "type": "object",
            "properties": { "title": title },
            "required": ["title"],
            "additionalProperties": false
        });
        vec![
            ToolSpec::new(
                "note_add",
                "Save a note under a title, replacing any note with the same title. Notes persist across sessions.",
            )
            .title("Add note")
            .schema(json!({
                "type": "object",
                "properties": {
                    "title": title,
                    "body": { "type": "string", "maxLength": MAX_BODY_BYTES }
                },
                "required": ["title", "body"],
                "additionalProperties": false
            }))
            .idempotent(),
            ToolSpec::new("note_get", "Read the note with this exact title.")
                .title("Get note")
                .schema(title_only.clone())
                .output_schema(json!({
                    "type": "object",
                    "properties": {
                        "title": { "type": "string" },
                        "body": { "type": "string" },
                        "updated_unix": { "type": "integer" }
                    },
                    "required": ["title", "body", "updated_unix"]
                }))
                .read_only()
                .idempotent()
                .parallel_safe(),
            ToolSpec::new("note_list", "List the titles of all notes, each with the start of its body.")
                .title("List notes")
                .schema(json!({ "type": "object", "properties": {}, "additionalProperties": false }))
                .output_schema(json!({
                    "type": "object",
                    "properties": {
                        "notes": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": { "title": { "type": "string" }, "preview": { "type": "string" } },
                                "required": ["title", "preview"]
                            }
                        }
                    },
                    "required": ["notes"]
                }))
                .read_only()
                .idempotent()
                .parallel_safe(),
            ToolSpec::new("note_delete", "Delete the note with this exact title.")
                .title("Delete note")
                .schema(title_only)
                .destructive()
                .idempotent(),
        ]
    }

    fn call(name: &str, args: Value, _ctx: &CallContext) -> Result<Output, ToolError> {
        match name {
            "note_add" => {
                let title = title_arg(&args)?;
                let body = args.str_field("body")?;
                if body.len() > MAX_BODY_BYTES {
                    return Err(ToolError::invalid_arguments(format!(
                        "`body` is {} bytes; the limit is {MAX_BODY_BYTES}",
                        body.len()
                    )));
                }
                let key = key(title);
                let existed = kv::get(&key).is_some();
                let note = Note {
                    title: title.to_owned(),
                    body: body.to_owned(),
                    updated_unix: unix_now(),
                };
                kv::set_json(&key, &note)?;
                let verb = if existed { "Replaced" } else { "Saved" };
                Ok(Output::text(format!(
                    "{verb} note \"{title}\" ({} bytes).",
                    body.len()
                )))
            }
            "note_get" => {
                let title = title_arg(&args)?;
                let note: Note = kv::get_json(&key(title))?.ok_or_else(|| not_found(title))?;
                let structured = json!({ "title": note.title, "body": note.body, "updated_unix": note.updated_unix });
                Ok(Output::text(note.body).with_structured(structured))
            }
            "note_list" => list(),
            "note_delete" => {
                let title = title_arg(&args)?;
                if kv::delete(&key(title)) {
                    Ok(Output::text(format!("Deleted note \"{title}\".")))
                } else {
                    Err(not_found(title))
                }
            }
            _ => Err(ToolError::unknown_tool(name)),
        }
    }
}

export_plugin!(Notes);

fn list() -> Result<Output, ToolError> {
    let mut items = Vec::new();
    let mut text = String::new();
    for key in kv::list(PREFIX) {
        // A key that vanished or no longer decodes is skipped rather than
        // failing the whole listing.
        let Ok(Some(note)) = kv::get_json::<Note>(&key) else {
            continue;
        };
        let mut preview: String = note
            .body
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(PREVIEW_CHARS)
            .collect();
        if preview.len() < note.body.len() {
            preview.push_str("...");
        }
        text.push_str(&format!("- {}: {preview}\n", note.title));
        items.push(json!({ "title": note.title, "preview": preview }));
    }
    if items.is_empty() {
        text.push_str("No notes yet.");
    }
    Ok(Output::text(text).with_structured(json!({ "notes": items })))
}

fn title_arg(args: &Value) -> Result<&str, ToolError> {
    let title = args.str_field("title")?.trim();
    if title.is_empty() {
        return Err(ToolError::invalid_arguments("`title` must not be blank"));
    }
    if title.len() > MAX_TITLE_BYTES {
        return Err(ToolError::invalid_arguments(format!(
            "`title` is {} bytes; the limit is {MAX_TITLE_BYTES}",
            title.len()
        )));
    }
    Ok(title)
}

fn key(title: &str) -> String {
    format!("{PREFIX}{title}")
}

fn not_found(title: &str) -> ToolError {
    ToolError::failed(format!(
        "there is no note titled \"{title}\"; note_list shows the titles"
    ))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
