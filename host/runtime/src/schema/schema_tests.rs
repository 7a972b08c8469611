//! Unit tests of the schema limits, compilation and argument/output checks.

use super::*;
use serde_json::json;

fn limits() -> SchemaConfig {
    SchemaConfig::default()
}

fn compile(schema: Value) -> Result<ArgsValidator, SchemaError> {
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
    ArgsValidator::compile_input(&schema, limits)
        .unwrap_err()
        .to_string()
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

/// A check turned away because every place is taken is a failed call (the
/// model may try again), not a host error that would abort the agent's run.
#[test]
fn a_check_turned_away_when_busy_is_a_failed_call_naming_the_setting() {
    for (error, stage) in [
        (
            CheckError::Busy { running: 16 }.for_arguments("p", "t"),
            "argument",
        ),
        (
            CheckError::Busy { running: 16 }.for_output("p", "t"),
            "output",
        ),
    ] {
        match &error {
            CallError::Failed {
                kind:
                    FailureKind::ValidationBusy {
                        stage: got,
                        running,
                    },
                ..
            } => {
                assert_eq!(got, stage);
                assert_eq!(*running, 16);
            }
            other => panic!("expected a failed call, got {other:?}"),
        }
        let message = error.to_string();
        assert!(message.contains("max_running_validations"), "{message}");
    }
}
