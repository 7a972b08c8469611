//! Validates tool arguments and structured results against a tool's JSON Schemas, under static limits and a time budget.
//!
//! Schemas come from plugins and are untrusted. Before jsonschema compiles
//! one, [`limits::analyze`] checks its size and complexity iteratively; the
//! validator then uses the linear-time `regex` engine (never fancy-regex's
//! backtracking), and a call's validation runs off the async threads under
//! the tool's deadline, collecting a bounded number of problems.

mod limits;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::config::SchemaConfig;
use crate::error::{CallError, FailureKind};
use crate::spec::ToolSpec;

/// Validations whose static bound (subschema paths times values) is at most
/// this run inline on the calling task: spawning a blocking task would cost
/// more than they do.
const INLINE_WORK: usize = 100_000;

/// Longest problem text reported (a problem may quote the offending value).
const MAX_PROBLEM_CHARS: usize = 300;

/// The compiled schemas of one tool: its input schema and, when it declares
/// one, its output schema. Cheap to clone.
#[derive(Clone)]
pub struct ArgsValidator {
    inner: Arc<Schemas>,
}

struct Schemas {
    input: Compiled,
    output: Option<Compiled>,
    max_reported: usize,
    max_running: usize,
}

struct Compiled {
    validator: jsonschema::Validator,
    /// See [`limits::Analysis::acyclic_paths`].
    acyclic_paths: Option<usize>,
}

impl std::fmt::Debug for ArgsValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ArgsValidator")
    }
}

/// Why a value did not pass its schema within the budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckError {
    /// The value breaks the schema; each problem names where and which rule.
    Invalid(Vec<String>),
    /// Validation did not finish within the budget.
    OutOfTime { ms: u64 },
    /// Validation failed inside the host (a panic in the validator).
    Crashed(String),
    /// This many costly validations are still running (some abandoned
    /// after their deadline); no more are started until one ends.
    Busy { running: usize },
}

/// Which of a tool's schemas a check uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Input,
    Output,
}

impl ArgsValidator {
    /// Checks the limits and compiles a tool's schemas; the error explains
    /// what is wrong with which schema. Remote `$ref`s are never fetched.
    pub fn compile(spec: &ToolSpec, limits: &SchemaConfig) -> Result<Self, String> {
        let input = compile_one(&spec.input_schema, limits, "its input schema")?;
        let output = match &spec.output_schema {
            Some(schema) => Some(compile_one(schema, limits, "its output schema")?),
            None => None,
        };
        Ok(Self {
            inner: Arc::new(Schemas {
                input,
                output,
                max_reported: limits.max_reported_errors.max(1),
                max_running: limits.max_running_validations.max(1),
            }),
        })
    }

    /// Compiles an input schema alone (no output schema).
    pub fn compile_input(schema: &Value, limits: &SchemaConfig) -> Result<Self, String> {
        let spec = ToolSpec {
            name: String::new(),
            title: None,
            description: String::new(),
            input_schema: schema.clone(),
            output_schema: None,
            hints: Default::default(),
        };
        Self::compile(&spec, limits)
    }

    /// Whether the tool declares an output schema.
    pub fn has_output_schema(&self) -> bool {
        self.inner.output.is_some()
    }

    /// Checks arguments on this thread, without a budget. Each problem names
    /// the field (as a JSON pointer) and the rule it breaks.
    pub fn check(&self, args: &Value) -> Result<(), Vec<String>> {
        self.inner.check(Which::Input, args)
    }

    /// Checks a structured result against the output schema (passes when
    /// the tool declares none), on this thread.
    pub fn check_output(&self, value: &Value) -> Result<(), Vec<String>> {
        self.inner.check(Which::Output, value)
    }

    /// Checks arguments within `budget` (see [`Self::check_within`]).
    pub async fn check_args_within(
        &self,
        args: &Value,
        budget: Duration,
    ) -> Result<(), CheckError> {
        self.check_within(Which::Input, args, budget).await
    }

    /// Checks a structured result within `budget`.
    pub async fn check_output_within(
        &self,
        value: &Value,
        budget: Duration,
    ) -> Result<(), CheckError> {
        self.check_within(Which::Output, value, budget).await
    }

    /// Small validations (by their static bound) run inline. The rest run
    /// on a thread of their own with a large stack, under `budget`: a costly
    /// one neither stalls the async threads nor outlives the call's deadline
    /// by much. A validation that runs out of time is abandoned, not stopped
    /// (nothing can interrupt jsonschema); what bounds its thread is the
    /// static limits checked at load, and at most `max_running_validations`
    /// such threads exist at once. The thread is detached, so a runaway
    /// neither holds a blocking-pool thread nor delays the host's exit.
    async fn check_within(
        &self,
        which: Which,
        value: &Value,
        budget: Duration,
    ) -> Result<(), CheckError> {
        let Some(compiled) = self.inner.get(which) else {
            return Ok(());
        };
        if compiled.is_cheap(value) {
            return self.inner.check(which, value).map_err(CheckError::Invalid);
        }
        let Some(slot) = Slot::take(self.inner.max_running) else {
            return Err(CheckError::Busy {
                running: self.inner.max_running,
            });
        };
        let inner = self.inner.clone();
        let value = value.clone();
        let (send, receive) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("schema-check".to_owned())
            .stack_size(VALIDATION_STACK)
            .spawn(move || {
                let _slot = slot;
                let _ = send.send(inner.check(which, &value));
            });
        if let Err(err) = spawned {
            return Err(CheckError::Crashed(format!(
                "cannot start a validation thread: {err}"
            )));
        }
        match tokio::time::timeout(budget, receive).await {
            Ok(Ok(result)) => result.map_err(CheckError::Invalid),
            Ok(Err(_dropped)) => Err(CheckError::Crashed("the validator panicked".to_owned())),
            Err(_elapsed) => Err(CheckError::OutOfTime {
                ms: u64::try_from(budget.as_millis()).unwrap_or(u64::MAX),
            }),
        }
    }
}

/// Stack of a validation thread: reserved, not committed, so cheap; deep
/// enough for any schema within `max_depth` over any JSON serde_json parses.
const VALIDATION_STACK: usize = 64 << 20;

/// Validation threads alive now (finished, running, or abandoned after
/// their deadline).
static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// One of the `max_running_validations` places; freed when dropped.
struct Slot;

impl Slot {
    fn take(max: usize) -> Option<Slot> {
        RUNNING
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |running| {
                (running < max).then_some(running + 1)
            })
            .ok()
            .map(|_| Slot)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Compiled {
    /// Whether the static bound on validating `value` is small enough to
    /// run inline and to list every problem.
    fn is_cheap(&self, value: &Value) -> bool {
        match self.acyclic_paths {
            Some(paths) => {
                let allowed = INLINE_WORK / paths.max(1);
                count_nodes(value, allowed) <= allowed
            }
            None => false,
        }
    }
}

impl CheckError {
    /// The call error for arguments that failed their check.
    pub fn for_arguments(self, plugin: &str, tool: &str) -> CallError {
        match self {
            CheckError::Invalid(problems) => CallError::InvalidArguments {
                tool: tool.to_owned(),
                problems,
            },
            other => other.failed(plugin, tool, "argument"),
        }
    }

    /// The call error for a structured result that failed its check: the
    /// plugin broke its own contract, so the call failed.
    pub fn for_output(self, plugin: &str, tool: &str) -> CallError {
        match self {
            CheckError::Invalid(problems) => CallError::Failed {
                plugin: plugin.to_owned(),
                tool: tool.to_owned(),
                kind: FailureKind::BadAnswer {
                    message: format!(
                        "its structured output does not match the tool's output schema: {}",
                        problems.join("; ")
                    ),
                },
                detail: None,
            },
            other => other.failed(plugin, tool, "output"),
        }
    }

    fn failed(self, plugin: &str, tool: &str, stage: &str) -> CallError {
        match self {
            CheckError::OutOfTime { ms } => CallError::Failed {
                plugin: plugin.to_owned(),
                tool: tool.to_owned(),
                kind: FailureKind::ValidationTimeout {
                    stage: stage.to_owned(),
                    ms,
                },
                detail: None,
            },
            CheckError::Busy { running } => CallError::Host {
                tool: tool.to_owned(),
                message: format!(
                    "{stage} validation was not started: {running} costly schema validations are still running (some past their deadline); try again shortly, or raise `max_running_validations` in the [schema] section of the host config"
                ),
            },
            CheckError::Crashed(message) => CallError::Host {
                tool: tool.to_owned(),
                message: format!("{stage} validation failed: {message}"),
            },
            CheckError::Invalid(problems) => CallError::Host {
                tool: tool.to_owned(),
                message: format!("{stage} validation failed: {}", problems.join("; ")),
            },
        }
    }
}

impl Schemas {
    fn get(&self, which: Which) -> Option<&Compiled> {
        match which {
            Which::Input => Some(&self.input),
            Which::Output => self.output.as_ref(),
        }
    }

    /// `is_valid` first: it stops at the first failure and builds no
    /// error. Only an invalid value pays for errors, and only a bounded
    /// number: jsonschema's `iter_errors` builds every error (an `anyOf`
    /// error holds the errors of all its branches), so it is used only when
    /// the static bound on the work is small ([`INLINE_WORK`]); otherwise
    /// the first error alone is reported.
    fn check(&self, which: Which, value: &Value) -> Result<(), Vec<String>> {
        let Some(compiled) = self.get(which) else {
            return Ok(());
        };
        if compiled.validator.is_valid(value) {
            return Ok(());
        }
        let root = match which {
            Which::Input => "arguments",
            Which::Output => "result",
        };
        let describe = |error: &jsonschema::ValidationError<'_>| {
            let path = error.instance_path().to_string();
            let at = if path.is_empty() {
                root.to_owned()
            } else {
                format!("field {path}")
            };
            truncate(format!("{at}: {error}"))
        };
        let mut problems = Vec::new();
        if compiled.is_cheap(value) {
            for error in compiled.validator.iter_errors(value) {
                if problems.len() == self.max_reported {
                    problems.push("and more".to_owned());
                    break;
                }
                problems.push(describe(&error));
            }
        } else if let Err(error) = compiled.validator.validate(value) {
            problems.push(describe(&error));
        }
        if problems.is_empty() {
            // is_valid and the error report disagree; still refuse, clearly.
            problems.push(format!("{root}: do not match the schema"));
        }
        Err(problems)
    }
}

fn compile_one(schema: &Value, limits: &SchemaConfig, which: &str) -> Result<Compiled, String> {
    if !schema.is_object() && !schema.is_boolean() {
        return Err(format!("{which} must be a JSON object"));
    }
    let analysis = limits::analyze(schema, limits, which)?;
    let regex_bytes = limits.max_regex_bytes;
    let validator = jsonschema::options()
        .with_pattern_options(
            jsonschema::PatternOptions::regex()
                .size_limit(regex_bytes)
                .dfa_size_limit(regex_bytes),
        )
        .build(schema)
        .map_err(|err| truncate(format!("{which} is not a valid JSON Schema: {err}")))?;
    Ok(Compiled {
        validator,
        acyclic_paths: analysis.acyclic_paths,
    })
}

/// Number of JSON values in `value`, counting stops past `limit`.
fn count_nodes(value: &Value, limit: usize) -> usize {
    let mut count = 0usize;
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        count += 1;
        if count > limit {
            return count;
        }
        match value {
            Value::Array(items) => stack.extend(items.iter()),
            Value::Object(map) => stack.extend(map.values()),
            _ => {}
        }
    }
    count
}

fn truncate(mut text: String) -> String {
    if let Some((at, _)) = text.char_indices().nth(MAX_PROBLEM_CHARS) {
        text.truncate(at);
        text.push_str("...");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn limits() -> SchemaConfig {
        SchemaConfig::default()
    }

    fn compile(schema: Value) -> Result<ArgsValidator, String> {
        ArgsValidator::compile_input(&schema, &limits())
    }

    fn validator() -> ArgsValidator {
        compile(json!({
            "type": "object",
            "properties": {
                "text": { "type": "string", "maxLength": 5 },
                "repeat": { "type": "integer", "minimum": 1 }
            },
            "required": ["text"],
            "additionalProperties": false
        }))
        .unwrap()
    }

    #[test]
    fn valid_arguments_pass() {
        assert!(
            validator()
                .check(&json!({"text": "hi", "repeat": 2}))
                .is_ok()
        );
    }

    #[test]
    fn problems_name_the_field_and_rule() {
        let problems = validator()
            .check(&json!({"text": 5, "repeat": 0}))
            .unwrap_err();
        let all = problems.join("\n");
        assert!(
            all.contains("field /text") && all.contains("string"),
            "{all}"
        );
        assert!(
            all.contains("field /repeat") && all.contains("minimum"),
            "{all}"
        );

        let problems = validator().check(&json!({})).unwrap_err();
        assert!(
            problems[0].contains("\"text\" is a required property"),
            "{problems:?}"
        );

        let problems = validator().check(&json!({"text": "toolong"})).unwrap_err();
        assert!(problems[0].contains("longer than 5"), "{problems:?}");

        let problems = validator()
            .check(&json!({"text": "a", "extra": 1}))
            .unwrap_err();
        assert!(problems[0].contains("extra"), "{problems:?}");
    }

    #[test]
    fn bad_schemas_are_refused() {
        assert!(compile(json!("nope")).is_err());
        assert!(compile(json!({"type": 12})).is_err());
    }

    /// `{"$ref": d0}` with `d<i> -> d<i+1>`, ending in `{"type": "object"}`.
    fn ref_chain(n: usize) -> Value {
        let mut defs = serde_json::Map::new();
        for i in 0..n {
            defs.insert(
                format!("d{i}"),
                json!({ "$ref": format!("#/$defs/d{}", i + 1) }),
            );
        }
        defs.insert(format!("d{n}"), json!({ "type": "object" }));
        json!({ "$ref": "#/$defs/d0", "$defs": defs })
    }

    /// `d<i> = anyOf [d<i+1>, d<i+1>]`: 2^depth subschemas once inlined.
    fn anyof_tree(depth: usize) -> Value {
        let mut defs = serde_json::Map::new();
        for i in 0..depth {
            let next = format!("#/$defs/d{}", i + 1);
            defs.insert(
                format!("d{i}"),
                json!({ "anyOf": [{ "$ref": next }, { "$ref": next, "type": "object" }] }),
            );
        }
        defs.insert(format!("d{depth}"), json!({ "type": "string" }));
        json!({ "$ref": "#/$defs/d0", "$defs": defs })
    }

    fn refused(schema: Value, limits: &SchemaConfig) -> String {
        ArgsValidator::compile_input(&schema, limits).unwrap_err()
    }

    #[test]
    fn long_ref_chains_are_refused_by_depth_and_size() {
        let short = compile(ref_chain(20)).unwrap();
        assert!(short.check(&json!({})).is_ok());
        assert!(short.check(&json!(1)).is_err());

        let why = refused(ref_chain(500), &limits());
        assert!(why.contains("max_depth") && why.contains("502"), "{why}");

        let why = refused(ref_chain(50_000), &limits());
        assert!(why.contains("max_schema_bytes"), "{why}");

        // With the size limit out of the way, the depth limit still holds,
        // and the analysis itself does not recurse.
        let roomy = SchemaConfig {
            max_schema_bytes: usize::MAX,
            max_subschemas: usize::MAX,
            max_refs: usize::MAX,
            ..limits()
        };
        let why = refused(ref_chain(50_000), &roomy);
        assert!(why.contains("max_depth"), "{why}");
    }

    #[test]
    fn exponential_anyof_trees_are_refused() {
        assert!(compile(anyof_tree(8)).is_ok());
        let why = refused(anyof_tree(22), &limits());
        assert!(
            why.contains("max_expanded") && why.contains("anyOf"),
            "{why}"
        );
    }

    #[test]
    fn cycles_that_stay_on_one_value_are_refused() {
        let why = refused(
            json!({ "$defs": { "a": { "anyOf": [{ "type": "string" }, { "$ref": "#/$defs/a" }] } },
                    "$ref": "#/$defs/a" }),
            &limits(),
        );
        assert!(why.contains("cycle"), "{why}");
        // A cycle through `properties` is a recursive data type: accepted.
        let tree = compile(json!({
            "$defs": { "node": { "type": "object", "properties": {
                "children": { "type": "array", "items": { "$ref": "#/$defs/node" } } } } },
            "$ref": "#/$defs/node"
        }))
        .unwrap();
        assert!(tree.check(&json!({"children": [{"children": []}]})).is_ok());
        assert!(tree.check(&json!({"children": [{"children": 3}]})).is_err());
    }

    #[test]
    fn backtracking_patterns_are_refused_and_others_are_linear() {
        let why = refused(
            json!({ "type": "string", "pattern": "^((?=a)a+)+$" }),
            &limits(),
        );
        assert!(
            why.contains("look-around") && why.contains("(?=a)"),
            "{why}"
        );
        let why = refused(
            json!({ "type": "string", "pattern": "^(a)\\1$" }),
            &limits(),
        );
        assert!(why.contains("backreferences"), "{why}");
        let why = refused(
            json!({ "type": "string", "pattern": "a{1000}{1000}" }),
            &limits(),
        );
        assert!(why.contains("max_regex_bytes"), "{why}");

        let nested = compile(json!({ "type": "string", "pattern": "^(a+)+$" })).unwrap();
        let long = "a".repeat(100_000);
        assert!(nested.check(&json!(long)).is_ok());
        assert!(nested.check(&json!(format!("{long}b"))).is_err());
    }

    #[test]
    fn pattern_counts_and_lengths_are_bounded() {
        let mut props = serde_json::Map::new();
        for i in 0..300 {
            props.insert(format!("^p{i}$"), json!({}));
        }
        let why = refused(json!({ "patternProperties": props }), &limits());
        assert!(why.contains("max_patterns") && why.contains("300"), "{why}");

        let long = "a".repeat(2000);
        let why = refused(json!({ "pattern": long }), &limits());
        assert!(
            why.contains("max_pattern_bytes") && why.contains("..."),
            "{why}"
        );
        assert!(why.len() < 400, "the pattern is quoted shortened: {why}");
    }

    #[test]
    fn fan_out_refs_and_unresolvable_refs_are_bounded() {
        let branches: Vec<Value> = (0..300).map(|i| json!({ "const": i })).collect();
        let why = refused(json!({ "oneOf": branches }), &limits());
        assert!(
            why.contains("max_fan_out") && why.contains("oneOf"),
            "{why}"
        );

        let why = refused(json!({ "$ref": "https://example.com/x.json" }), &limits());
        assert!(why.contains("does not point into the schema"), "{why}");

        let few = SchemaConfig {
            max_refs: 3,
            ..limits()
        };
        let why = refused(ref_chain(5), &few);
        assert!(why.contains("max_refs"), "{why}");
    }

    #[test]
    fn only_a_bounded_number_of_problems_is_collected() {
        let v = compile(json!({ "type": "array", "items": { "type": "string" } })).unwrap();
        let problems = v.check(&json!(vec![1; 10_000])).unwrap_err();
        assert_eq!(problems.len(), limits().max_reported_errors + 1);
        assert_eq!(problems.last().unwrap(), "and more");

        // A recursive schema has no static bound on its errors: only the
        // first is built.
        let nested = compile(json!({
            "$defs": { "n": { "type": "array", "items": { "$ref": "#/$defs/n" } } },
            "$ref": "#/$defs/n"
        }))
        .unwrap();
        let problems = nested.check(&json!(vec![1; 10_000])).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("field /0"), "{problems:?}");
    }

    #[test]
    fn output_schemas_are_checked() {
        let spec = ToolSpec {
            name: "t".into(),
            title: None,
            description: "d".into(),
            input_schema: json!({ "type": "object" }),
            output_schema: Some(json!({ "type": "object", "required": ["value"] })),
            hints: Default::default(),
        };
        let v = ArgsValidator::compile(&spec, &limits()).unwrap();
        assert!(v.has_output_schema());
        assert!(v.check_output(&json!({ "value": 1 })).is_ok());
        let problems = v.check_output(&json!({})).unwrap_err();
        assert!(problems[0].starts_with("result:"), "{problems:?}");
    }

    #[test]
    fn ordinary_mcp_style_schemas_are_accepted() {
        compile(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "url": { "type": "string", "format": "uri", "pattern": "^https?://" },
                "method": { "enum": ["GET", "POST"] },
                "headers": { "type": "object", "additionalProperties": { "type": "string" } },
                "body": { "oneOf": [{ "type": "string" }, { "$ref": "#/$defs/json" }] },
                "email": { "type": "string", "pattern": "^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\\.[a-zA-Z]{2,}$" },
                "id": { "type": "string", "pattern": "^\\d{3}-\\w+$" }
            },
            "required": ["url"],
            "$defs": { "json": { "type": ["object", "array"] } },
            "additionalProperties": false
        }))
        .unwrap();
        compile(json!({
            "type": "object",
            "definitions": { "item": { "type": "object", "properties": { "sub": { "$ref": "#/definitions/item" } } } },
            "properties": { "root": { "$ref": "#/definitions/item" } }
        }))
        .unwrap();
    }
}
