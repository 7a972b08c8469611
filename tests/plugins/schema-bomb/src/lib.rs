//! test-plugin-schema-bomb: declares the hostile JSON Schema its manifest's [config] asks for, and a tool that breaks its own output schema.
//!
//! Written against the SDK's raw WIT bindings rather than its `Plugin`
//! trait: the schemas are built as text (a 50 MB one stays cheap for the
//! guest) and structured output can be sent that is not JSON at all.

use agent_plugin_sdk::bindings::agent::plugin::types as wit;
use agent_plugin_sdk::bindings::exports::agent::plugin::tool::Guest;
use agent_plugin_sdk::host;
use agent_plugin_sdk::serde_json::{self, Value, json};

struct Bomb;

struct Settings {
    mode: String,
    tool: String,
    n: usize,
}

fn settings() -> Settings {
    let config = host::config();
    let mode = config["mode"].as_str().unwrap_or("ok").to_owned();
    let tool = config["tool"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| mode.replace('-', "_"));
    let n = config["n"]
        .as_u64()
        .or(config["depth"].as_u64())
        .or(config["bytes"].as_u64())
        .unwrap_or(10) as usize;
    Settings { mode, tool, n }
}

/// `{"$ref": d0}` with `d<i> -> d<i+1>`, `n` long.
fn ref_chain(n: usize) -> String {
    let mut text = String::from(r##"{"type":"object","$ref":"#/$defs/d0","$defs":{"##);
    for i in 0..n {
        text.push_str(&format!(r##""d{i}":{{"$ref":"#/$defs/d{}"}},"##, i + 1));
    }
    text.push_str(&format!(r#""d{n}":{{"type":"object"}}}}}}"#));
    text
}

/// `d<i> = anyOf [d<i+1>, d<i+1>]`: 2^depth subschemas once inlined. With
/// `items`, an `allOf` tree (a valid value must pass every branch, so all
/// of them are checked) applies to each item of an `items` array instead.
fn anyof_tree(depth: usize, items: bool) -> String {
    let mut defs = serde_json::Map::new();
    let combinator = if items { "allOf" } else { "anyOf" };
    for i in 0..depth {
        let next = format!("#/$defs/d{}", i + 1);
        defs.insert(
            format!("d{i}"),
            json!({ combinator: [{ "$ref": next, "minimum": 0 }, { "$ref": next }] }),
        );
    }
    defs.insert(
        format!("d{depth}"),
        json!({ "type": if items { "integer" } else { "string" } }),
    );
    if items {
        json!({
            "type": "object",
            "properties": { "items": { "type": "array", "items": { "$ref": "#/$defs/d0" } } },
            "$defs": defs
        })
        .to_string()
    } else {
        json!({ "type": "object", "$ref": "#/$defs/d0", "$defs": defs }).to_string()
    }
}

fn big(bytes: usize) -> String {
    let mut text = String::with_capacity(bytes + 64);
    text.push_str(r#"{"type":"object","description":""#);
    text.extend(std::iter::repeat_n('x', bytes));
    text.push_str(r#""}"#);
    text
}

fn many_patterns(n: usize) -> String {
    let mut text = String::from(r#"{"type":"object","patternProperties":{"#);
    for i in 0..n {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&format!(r#""^p{i}_[a-z]+$":{{"type":"string"}}"#));
    }
    text.push_str("}}");
    text
}

fn input_schema(settings: &Settings) -> String {
    match settings.mode.as_str() {
        "ref-chain" => ref_chain(settings.n),
        "anyof-tree" => anyof_tree(settings.n, false),
        "slow" => anyof_tree(settings.n, true),
        "redos" => json!({
            "type": "object",
            "properties": { "words": { "type": "array", "items": { "type": "string", "pattern": "^((?=a)a+)+$" } } }
        })
        .to_string(),
        "big" => big(settings.n),
        "many-patterns" => many_patterns(settings.n),
        "cycle" => json!({
            "$defs": { "a": { "anyOf": [{ "type": "string" }, { "$ref": "#/$defs/a" }] } },
            "$ref": "#/$defs/a"
        })
        .to_string(),
        "output" => json!({
            "type": "object",
            "properties": { "answer": { "enum": ["good", "bad", "not-json", "none"] } },
            "required": ["answer"]
        })
        .to_string(),
        // "ok": an ordinary schema with a nested quantifier, catastrophic for
        // a backtracking engine on a near miss, linear for the host's.
        _ => json!({
            "type": "object",
            "properties": { "words": { "type": "array", "items": { "type": "string", "pattern": "^(a+)+$" } } },
            "required": ["words"],
            "additionalProperties": false
        })
        .to_string(),
    }
}

impl Guest for Bomb {
    fn describe() -> Vec<wit::ToolSpec> {
        let settings = settings();
        let output_schema = (settings.mode == "output").then(|| {
            json!({
                "type": "object",
                "properties": { "value": { "type": "integer" } },
                "required": ["value"]
            })
            .to_string()
        });
        vec![wit::ToolSpec {
            name: settings.tool.clone(),
            title: None,
            description: format!("A tool whose schema is a {} bomb.", settings.mode),
            input_schema: input_schema(&settings),
            output_schema,
            hints: wit::ToolHints::empty(),
        }]
    }

    fn invoke(
        _name: String,
        args_json: String,
        _ctx: wit::CallContext,
    ) -> Result<wit::ToolOutput, wit::ToolError> {
        let args: Value = serde_json::from_str(&args_json)
            .map_err(|err| wit::ToolError::InvalidArguments(err.to_string()))?;
        let text = |text: String| wit::ToolOutput {
            content: vec![wit::ContentPart::Text(text)],
            structured: None,
        };
        if let Some(words) = args["words"].as_array() {
            return Ok(text(format!("{} words", words.len())));
        }
        if let Some(items) = args["items"].as_array() {
            return Ok(text(format!("{} items", items.len())));
        }
        let structured = match args["answer"].as_str() {
            Some("good") => Some(json!({ "value": 42 }).to_string()),
            Some("bad") => Some(json!({ "value": "forty-two" }).to_string()),
            Some("not-json") => Some("{value: 42".to_owned()),
            _ => None,
        };
        Ok(wit::ToolOutput {
            content: vec![wit::ContentPart::Text("answered".to_owned())],
            structured,
        })
    }
}

agent_plugin_sdk::bindings::export!(Bomb with_types_in agent_plugin_sdk::bindings);
