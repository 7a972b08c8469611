//! The runtime's tools as MCP tools: names, schemas, annotations from the hints, and one page of a deterministic, cursor-paged list.

use std::sync::Arc;

use agent_host_runtime::runtime::ToolInfo;
use rmcp::model::{JsonObject, MetaObject, Tool, ToolAnnotations};
use serde_json::Value;

/// A cursor is the name of the last tool of the page before, so a reload
/// between two pages neither repeats nor skips a tool that stayed. The
/// prefix keeps it recognisable: anything else is a client's mistake.
const CURSOR_PREFIX: &str = "after:";

/// One page of the tool list.
#[derive(Debug)]
pub struct Page {
    /// The tools of this page, by name.
    pub tools: Vec<Tool>,
    /// The cursor of the next page, when there is one.
    pub next_cursor: Option<String>,
}

/// A cursor this server did not hand out.
#[derive(Debug, thiserror::Error)]
#[error("the cursor {cursor:?} is not one this server handed out; start again without a cursor")]
pub struct BadCursor {
    /// The cursor received.
    pub cursor: String,
}

/// The page of `tools` (sorted by name, as the runtime lists them) that
/// follows `cursor`.
pub fn page(tools: &[ToolInfo], cursor: Option<&str>, page_size: usize) -> Result<Page, BadCursor> {
    let start = match cursor {
        None => 0,
        Some(cursor) => {
            let after = cursor
                .strip_prefix(CURSOR_PREFIX)
                .ok_or_else(|| BadCursor {
                    cursor: cursor.to_owned(),
                })?;
            tools.partition_point(|tool| tool.spec.name.as_str() <= after)
        }
    };
    let end = (start + page_size.max(1)).min(tools.len());
    let page = &tools[start..end];
    let next_cursor = (end < tools.len())
        .then(|| page.last())
        .flatten()
        .map(|last| format!("{CURSOR_PREFIX}{}", last.spec.name));
    Ok(Page {
        tools: page.iter().map(to_mcp_tool).collect(),
        next_cursor,
    })
}

/// One tool as MCP describes it. Every hint is stated, set or not: MCP's
/// defaults (destructive, open-world) are the pessimistic ones, and a tool
/// that declared neither should not be shown as both.
pub fn to_mcp_tool(info: &ToolInfo) -> Tool {
    let spec = &info.spec;
    let hints = spec.hints;
    let annotations = ToolAnnotations::from_raw(
        spec.title.clone(),
        Some(hints.read_only),
        Some(hints.destructive),
        Some(hints.idempotent),
        Some(hints.open_world),
    );
    let mut meta = MetaObject::new();
    meta.0.insert(
        "agent-host/plugin".to_owned(),
        Value::from(info.plugin.as_str()),
    );
    let mut tool = Tool::new(
        spec.name.clone(),
        spec.description.clone(),
        Arc::new(schema_object(&spec.input_schema)),
    )
    .with_annotations(annotations)
    .with_meta(meta);
    if let Some(title) = &spec.title {
        tool = tool.with_title(title.clone());
    }
    if let Some(output) = &spec.output_schema {
        tool = tool.with_raw_output_schema(Arc::new(schema_object(output)));
    }
    tool
}

/// MCP wants schemas as objects; a boolean schema (`true` accepts
/// anything) becomes the object schema that means the same for arguments.
fn schema_object(schema: &Value) -> JsonObject {
    match schema {
        Value::Object(object) => object.clone(),
        _ => {
            let mut object = JsonObject::new();
            object.insert("type".to_owned(), Value::from("object"));
            object
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_host_runtime::{ToolHints, ToolSpec};
    use serde_json::json;

    fn info(name: &str) -> ToolInfo {
        ToolInfo {
            plugin: "p".to_owned(),
            spec: ToolSpec {
                name: name.to_owned(),
                title: None,
                description: format!("{name} does things"),
                input_schema: json!({ "type": "object" }),
                output_schema: None,
                hints: ToolHints {
                    read_only: true,
                    ..ToolHints::default()
                },
            },
        }
    }

    fn names(page: &Page) -> Vec<&str> {
        page.tools.iter().map(|t| t.name.as_ref()).collect()
    }

    #[test]
    fn pages_follow_each_other_without_gaps_or_repeats() {
        let tools: Vec<ToolInfo> = ["a", "b", "c", "d", "e"].into_iter().map(info).collect();
        let first = page(&tools, None, 2).unwrap();
        assert_eq!(names(&first), ["a", "b"]);
        let second = page(&tools, first.next_cursor.as_deref(), 2).unwrap();
        assert_eq!(names(&second), ["c", "d"]);
        let last = page(&tools, second.next_cursor.as_deref(), 2).unwrap();
        assert_eq!(names(&last), ["e"]);
        assert!(last.next_cursor.is_none());
    }

    #[test]
    fn a_tool_removed_between_pages_does_not_shift_the_next_page() {
        let tools: Vec<ToolInfo> = ["a", "b", "c", "d"].into_iter().map(info).collect();
        let first = page(&tools, None, 2).unwrap();
        let fewer: Vec<ToolInfo> = ["a", "c", "d"].into_iter().map(info).collect();
        let second = page(&fewer, first.next_cursor.as_deref(), 2).unwrap();
        assert_eq!(names(&second), ["c", "d"]);
    }

    #[test]
    fn a_foreign_cursor_is_refused() {
        let tools = vec![info("a")];
        let err = page(&tools, Some("42"), 2).unwrap_err();
        assert!(err.to_string().contains("start again without a cursor"));
    }

    #[test]
    fn every_hint_is_stated() {
        let tool = to_mcp_tool(&info("a"));
        let annotations = tool.annotations.unwrap();
        assert_eq!(annotations.read_only_hint, Some(true));
        assert_eq!(annotations.destructive_hint, Some(false));
        assert_eq!(annotations.open_world_hint, Some(false));
        assert_eq!(annotations.idempotent_hint, Some(false));
    }
}
