//! plugin-fs: the `fs_read`, `fs_list` and `fs_write` tools over the directories the host preopened.
//!
//! The sandbox (WASI preopens) is what enforces access; this plugin only
//! checks paths up front so that a refusal reads as "the host did not grant
//! it" rather than as a confusing "file not found".

mod paths;

use std::fs;
use std::io::{self, Read};

use agent_plugin_sdk::prelude::*;

use paths::Grant;

/// Bigger files are cut here; the output says so.
const MAX_READ_BYTES: u64 = 1 << 20;
/// Bigger directories are listed up to here; the output says so.
const MAX_LIST_ENTRIES: usize = 1000;

struct Fs;

impl Plugin for Fs {
    fn tools() -> Vec<ToolSpec> {
        let path = json!({
            "type": "string",
            "minLength": 1,
            "description": "Absolute, or relative to /workspace"
        });
        vec![
            ToolSpec::new(
                "fs_read",
                "Read a UTF-8 text file (at most 1 MiB is returned; longer files are truncated and say so).",
            )
            .title("Read file")
            .schema(json!({
                "type": "object",
                "properties": { "path": path },
                "required": ["path"],
                "additionalProperties": false
            }))
            .output_schema(json!({
                "type": "object",
                "properties": {
                    "path": { "type": "string" },
                    "size": { "type": "integer" },
                    "truncated": { "type": "boolean" }
                },
                "required": ["path", "size", "truncated"]
            }))
            .read_only()
            .idempotent()
            .parallel_safe(),
            ToolSpec::new("fs_list", "List a directory: each entry's name, type and size, sorted by name.")
                .title("List directory")
                .schema(json!({
                    "type": "object",
                    "properties": { "path": path },
                    "required": ["path"],
                    "additionalProperties": false
                }))
                .output_schema(json!({
                    "type": "object",
                    "properties": {
                        "path": { "type": "string" },
                        "entries": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "name": { "type": "string" },
                                    "type": { "enum": ["file", "dir", "symlink", "other"] },
                                    "size": { "type": "integer" }
                                },
                                "required": ["name", "type", "size"]
                            }
                        },
                        "truncated": { "type": "boolean" }
                    },
                    "required": ["path", "entries", "truncated"]
                }))
                .read_only()
                .idempotent()
                .parallel_safe(),
            ToolSpec::new(
                "fs_write",
                "Write text to a file, creating it or replacing its whole content. The parent directory must exist.",
            )
            .title("Write file")
            .schema(json!({
                "type": "object",
                "properties": { "path": path, "content": { "type": "string" } },
                "required": ["path", "content"],
                "additionalProperties": false
            }))
            .output_schema(json!({
                "type": "object",
                "properties": { "path": { "type": "string" }, "bytes": { "type": "integer" } },
                "required": ["path", "bytes"]
            }))
            .destructive()
            .idempotent(),
        ]
    }

    fn call(name: &str, args: Value, _ctx: &CallContext) -> Result<Output, ToolError> {
        match name {
            "fs_read" => read(&Grant::check(args.str_field("path")?)?),
            "fs_list" => list(&Grant::check(args.str_field("path")?)?),
            "fs_write" => write(
                &Grant::check(args.str_field("path")?)?,
                args.str_field("content")?,
            ),
            _ => Err(ToolError::unknown_tool(name)),
        }
    }
}

export_plugin!(Fs);

fn read(grant: &Grant) -> Result<Output, ToolError> {
    let path = grant.path.as_str();
    let io_err = |err| io_error(err, "read", grant);
    let file = fs::File::open(path).map_err(io_err)?;
    let meta = file.metadata().map_err(io_err)?;
    if meta.is_dir() {
        return Err(ToolError::failed(format!(
            "`{path}` is a directory; use fs_list"
        )));
    }
    let mut bytes = Vec::new();
    // One byte past the cap tells a file of exactly the cap from a longer one
    // even when the size in the metadata is stale.
    file.take(MAX_READ_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    let truncated = bytes.len() as u64 > MAX_READ_BYTES;
    if truncated {
        bytes.truncate(MAX_READ_BYTES as usize);
    }
    let size = meta.len().max(bytes.len() as u64);
    let (text, lossy) = match String::from_utf8(bytes) {
        Ok(text) => (text, false),
        // A cut can land inside a multi-byte character, and some files are
        // not text at all; either way the model gets readable text and a note.
        Err(err) => (String::from_utf8_lossy(err.as_bytes()).into_owned(), true),
    };
    let mut output = Output::text(text);
    if truncated {
        output = output.with_text(format!(
            "[truncated: showed the first {MAX_READ_BYTES} bytes of {size}]"
        ));
    }
    if lossy {
        output =
            output.with_text("[the file is not valid UTF-8; invalid bytes are shown as U+FFFD]");
    }
    Ok(output.with_structured(json!({ "path": path, "size": size, "truncated": truncated })))
}

fn list(grant: &Grant) -> Result<Output, ToolError> {
    let path = grant.path.as_str();
    let io_err = |err| io_error(err, "list", grant);
    let mut entries = Vec::new();
    for entry in fs::read_dir(path).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        // `file_type` does not follow symlinks, so a link is reported as one.
        let kind = match entry.file_type() {
            Ok(t) if t.is_dir() => "dir",
            Ok(t) if t.is_file() => "file",
            Ok(t) if t.is_symlink() => "symlink",
            _ => "other",
        };
        let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
        entries.push((entry.file_name().to_string_lossy().into_owned(), kind, size));
    }
    entries.sort();
    let total = entries.len();
    let truncated = total > MAX_LIST_ENTRIES;
    entries.truncate(MAX_LIST_ENTRIES);

    let mut text = String::new();
    for (name, kind, size) in &entries {
        match *kind {
            "dir" => text.push_str(&format!("{name}/\n")),
            "file" => text.push_str(&format!("{name}  ({size} bytes)\n")),
            other => text.push_str(&format!("{name}  ({other})\n")),
        }
    }
    if entries.is_empty() {
        text.push_str("(empty directory)\n");
    }
    if truncated {
        text.push_str(&format!(
            "[truncated: listed {MAX_LIST_ENTRIES} of {total} entries]\n"
        ));
    }
    let items: Vec<Value> = entries
        .iter()
        .map(|(name, kind, size)| json!({ "name": name, "type": kind, "size": size }))
        .collect();
    Ok(Output::text(text)
        .with_structured(json!({ "path": path, "entries": items, "truncated": truncated })))
}

fn write(grant: &Grant, content: &str) -> Result<Output, ToolError> {
    let path = grant.path.as_str();
    if fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        return Err(ToolError::failed(format!("`{path}` is a directory")));
    }
    fs::write(path, content).map_err(|err| io_error(err, "write", grant))?;
    let bytes = content.len();
    Ok(Output::text(format!("wrote {bytes} bytes to {path}"))
        .with_structured(json!({ "path": path, "bytes": bytes })))
}

/// Permission errors come from the sandbox, so they are reported as denied
/// grants; everything else is an ordinary failure.
fn io_error(err: io::Error, op: &str, grant: &Grant) -> ToolError {
    let path = &grant.path;
    match err.kind() {
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
            ToolError::denied(format!(
                "the host did not grant {op} access to `{path}` (granted directory {}: {err})",
                grant.root
            ))
        }
        io::ErrorKind::NotFound if op == "write" => ToolError::failed(format!(
            "cannot write `{path}`: its parent directory does not exist"
        )),
        io::ErrorKind::NotFound => ToolError::failed(format!("`{path}` does not exist")),
        io::ErrorKind::NotADirectory => {
            ToolError::failed(format!("`{path}` is not a directory ({err})"))
        }
        io::ErrorKind::IsADirectory => ToolError::failed(format!("`{path}` is a directory")),
        _ => ToolError::failed(format!("cannot {op} `{path}`: {err}")),
    }
}
