//! Static limits on a plugin-declared JSON Schema, checked before jsonschema compiles it.
//!
//! A schema is untrusted input: a `$ref` chain tens of thousands long
//! overflows a recursive validator's stack, an `anyOf` tree over `$defs`
//! grows exponentially when inlined, and a hundred thousand patterns cost
//! gigabytes to compile. Everything here is iterative (explicit stacks, no
//! recursion a schema can drive) and linear in the size of the schema, and it
//! stops at the first limit that is exceeded.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::config::SchemaConfig;
use crate::error::SchemaError;

/// What the analysis learnt about an accepted schema.
#[derive(Debug, Clone)]
pub(super) struct Analysis {
    /// When no path through the schema (refs inlined) loops and it has no
    /// pattern, the number of paths from the root (saturating): validating a
    /// value of `n` nodes applies at most `paths * n` subschemas.
    pub acyclic_paths: Option<usize>,
}

/// Longest part of a pattern quoted in a message.
const QUOTE_CHARS: usize = 80;

/// A refusal naming the limit, its value and the config key that raises it.
fn over(what: &str, value: impl std::fmt::Display, limit: usize, key: &'static str) -> SchemaError {
    SchemaError::OverLimit {
        what: what.to_owned(),
        value: value.to_string(),
        limit,
        key,
    }
}

/// A pattern as quoted in messages: escaped and cut to a readable length.
fn quote_pattern(pattern: &str) -> String {
    let mut quoted: String = pattern.chars().take(QUOTE_CHARS).collect();
    if quoted.len() < pattern.len() {
        quoted.push_str("...");
    }
    format!("{quoted:?}")
}

/// Checks every static limit. `which` names the schema in messages ("its
/// input schema").
pub(super) fn analyze(
    schema: &Value,
    limits: &SchemaConfig,
    which: &str,
) -> Result<Analysis, SchemaError> {
    let bytes = json_size(schema, limits.max_schema_bytes);
    if bytes > limits.max_schema_bytes {
        let shown = if bytes == usize::MAX {
            "far more".to_owned()
        } else {
            format!("more than {}", limits.max_schema_bytes)
        };
        return Err(over(
            &format!("{which} is"),
            format!("{shown} bytes of JSON"),
            limits.max_schema_bytes,
            "max_schema_bytes",
        ));
    }
    let graph = Graph::build(schema, limits, which)?;
    let patterns = graph.patterns(limits, which)?;
    let (depth, paths) = graph.depth_and_paths();
    if depth > limits.max_depth {
        return Err(over(
            &format!("{which} nests subschemas (with every `$ref` inlined) to a depth of"),
            depth,
            limits.max_depth,
            "max_depth",
        ));
    }
    graph.check_in_place(limits, which)?;
    Ok(Analysis {
        acyclic_paths: paths.filter(|_| patterns == 0),
    })
}

/// The size of `value` as compact JSON text, counted without building it;
/// stops (returning `usize::MAX` or the count so far) once past `limit`.
fn json_size(value: &Value, limit: usize) -> usize {
    let mut total: usize = 0;
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        total = total.saturating_add(match value {
            Value::Null => 4,
            Value::Bool(b) => 4 + usize::from(!b),
            Value::Number(n) => n.to_string().len(),
            Value::String(s) => s.len() + 2,
            Value::Array(items) => {
                stack.extend(items.iter());
                items.len().max(1) + 1
            }
            Value::Object(map) => {
                let keys: usize = map.keys().map(|k| k.len() + 3).sum();
                stack.extend(map.values());
                keys + map.len().max(1) + 1
            }
        });
        if total > limit {
            return total;
        }
    }
    total
}

/// One subschema and where it leads.
struct Node<'a> {
    value: &'a Value,
    /// Subschemas applied to the same value (`allOf`, `$ref`, `if`, ...).
    in_place: Vec<usize>,
    /// Subschemas applied to parts of the value (`properties`, `items`, ...).
    descend: Vec<usize>,
}

/// Every subschema reachable from the root (refs resolved), as a graph.
struct Graph<'a> {
    nodes: Vec<Node<'a>>,
    patterns: Vec<&'a str>,
}

/// Keywords whose value is one subschema applied to the same value.
const IN_PLACE_ONE: &[&str] = &["not", "if", "then", "else"];
/// Keywords whose value is an array of subschemas applied to the same value.
const IN_PLACE_MANY: &[&str] = &["allOf", "anyOf", "oneOf"];
/// Keywords whose value is a map of subschemas applied to the same value.
const IN_PLACE_MAP: &[&str] = &["dependentSchemas", "dependencies"];
/// Keywords whose value is one subschema applied to parts of the value.
const DESCEND_ONE: &[&str] = &[
    "additionalProperties",
    "unevaluatedProperties",
    "propertyNames",
    "contains",
    "additionalItems",
    "unevaluatedItems",
    "contentSchema",
    "items",
];
/// Keywords whose value is an array of subschemas applied to parts.
const DESCEND_MANY: &[&str] = &["prefixItems", "items"];
/// Keywords whose value is a map of subschemas applied to parts.
const DESCEND_MAP: &[&str] = &["properties", "patternProperties"];
/// Keywords holding subschemas that apply only through a `$ref`.
const DEFINITIONS: &[&str] = &["$defs", "definitions"];
/// Keywords that reference another subschema.
const REFS: &[&str] = &["$ref", "$dynamicRef", "$recursiveRef"];

fn is_schema(value: &Value) -> bool {
    value.is_object() || value.is_boolean()
}

impl<'a> Graph<'a> {
    fn build(root: &'a Value, limits: &SchemaConfig, which: &str) -> Result<Self, SchemaError> {
        let index = Index::build(root);
        let mut graph = Graph {
            nodes: Vec::new(),
            patterns: Vec::new(),
        };
        let mut seen_patterns: HashSet<&'a str> = HashSet::new();
        let mut ids: HashMap<*const Value, usize> = HashMap::new();
        let mut refs = 0usize;
        let mut queue: Vec<usize> = Vec::new();
        // Adds a subschema once (by address) and queues it for a visit.
        let mut intern = |graph: &mut Graph<'a>,
                          queue: &mut Vec<usize>,
                          value: &'a Value|
         -> Result<usize, SchemaError> {
            if let Some(&id) = ids.get(&(value as *const Value)) {
                return Ok(id);
            }
            if graph.nodes.len() >= limits.max_subschemas {
                return Err(over(
                    &format!("{which} has"),
                    format!("more than {} subschemas", limits.max_subschemas),
                    limits.max_subschemas,
                    "max_subschemas",
                ));
            }
            let id = graph.nodes.len();
            graph.nodes.push(Node {
                value,
                in_place: Vec::new(),
                descend: Vec::new(),
            });
            ids.insert(value as *const Value, id);
            queue.push(id);
            Ok(id)
        };
        intern(&mut graph, &mut queue, root)?;
        while let Some(id) = queue.pop() {
            let Value::Object(map) = graph.nodes[id].value else {
                continue;
            };
            let mut in_place = Vec::new();
            let mut descend = Vec::new();
            for (keyword, value) in map {
                let keyword = keyword.as_str();
                if IN_PLACE_ONE.contains(&keyword) && is_schema(value) {
                    in_place.push(intern(&mut graph, &mut queue, value)?);
                }
                if IN_PLACE_MANY.contains(&keyword)
                    && let Value::Array(items) = value
                {
                    if items.len() > limits.max_fan_out {
                        return Err(over(
                            &format!("{which} has an `{keyword}` of"),
                            format!("{} branches", items.len()),
                            limits.max_fan_out,
                            "max_fan_out",
                        ));
                    }
                    for item in items.iter().filter(|item| is_schema(item)) {
                        in_place.push(intern(&mut graph, &mut queue, item)?);
                    }
                }
                if IN_PLACE_MAP.contains(&keyword)
                    && let Value::Object(entries) = value
                {
                    for item in entries.values().filter(|item| is_schema(item)) {
                        in_place.push(intern(&mut graph, &mut queue, item)?);
                    }
                }
                if DESCEND_ONE.contains(&keyword) && is_schema(value) {
                    descend.push(intern(&mut graph, &mut queue, value)?);
                }
                if DESCEND_MANY.contains(&keyword)
                    && let Value::Array(items) = value
                {
                    for item in items.iter().filter(|item| is_schema(item)) {
                        descend.push(intern(&mut graph, &mut queue, item)?);
                    }
                }
                if DESCEND_MAP.contains(&keyword)
                    && let Value::Object(entries) = value
                {
                    for item in entries.values().filter(|item| is_schema(item)) {
                        descend.push(intern(&mut graph, &mut queue, item)?);
                    }
                }
                if DEFINITIONS.contains(&keyword)
                    && let Value::Object(entries) = value
                {
                    // Visited for the counts and patterns; they only apply
                    // through a `$ref`, which adds the edge.
                    for item in entries.values().filter(|item| is_schema(item)) {
                        intern(&mut graph, &mut queue, item)?;
                    }
                }
                if keyword == "patternProperties"
                    && let Value::Object(entries) = value
                {
                    for pattern in entries.keys() {
                        if seen_patterns.insert(pattern) {
                            graph.patterns.push(pattern);
                        }
                    }
                }
                if keyword == "pattern"
                    && let Value::String(pattern) = value
                    && seen_patterns.insert(pattern)
                {
                    graph.patterns.push(pattern);
                }
                if REFS.contains(&keyword)
                    && let Value::String(reference) = value
                {
                    refs += 1;
                    if refs > limits.max_refs {
                        return Err(over(
                            &format!("{which} has"),
                            format!("more than {} `$ref`s", limits.max_refs),
                            limits.max_refs,
                            "max_refs",
                        ));
                    }
                    match index.resolve(root, reference) {
                        Resolved::Schema(target) => {
                            in_place.push(intern(&mut graph, &mut queue, target)?);
                        }
                        Resolved::MetaSchema => {}
                        Resolved::Missing => {
                            return Err(SchemaError::UnresolvedRef {
                                which: which.to_owned(),
                                keyword: keyword.to_owned(),
                                reference: quote_pattern(reference),
                            });
                        }
                    }
                }
            }
            let node = &mut graph.nodes[id];
            node.in_place = in_place;
            node.descend = descend;
        }
        Ok(graph)
    }

    /// Checks the number and length of the patterns and that the linear-time
    /// engine compiles each within its size limit.
    fn patterns(&self, limits: &SchemaConfig, which: &str) -> Result<usize, SchemaError> {
        if self.patterns.len() > limits.max_patterns {
            return Err(over(
                &format!("{which} has"),
                format!("{} distinct patterns", self.patterns.len()),
                limits.max_patterns,
                "max_patterns",
            ));
        }
        for pattern in &self.patterns {
            if pattern.len() > limits.max_pattern_bytes {
                return Err(over(
                    &format!("{which} has a pattern ({}) of", quote_pattern(pattern)),
                    format!("{} bytes", pattern.len()),
                    limits.max_pattern_bytes,
                    "max_pattern_bytes",
                ));
            }
            compile_pattern(pattern, limits.max_regex_bytes).map_err(|why| {
                SchemaError::Pattern {
                    which: which.to_owned(),
                    pattern: quote_pattern(pattern),
                    why,
                }
            })?;
        }
        Ok(self.patterns.len())
    }

    /// Refuses cycles among the subschemas applied to one value (they would
    /// never terminate) and bounds how many subschemas apply to one value.
    fn check_in_place(&self, limits: &SchemaConfig, which: &str) -> Result<(), SchemaError> {
        const NEW: u8 = 0;
        const OPEN: u8 = 1;
        const DONE: u8 = 2;
        let mut state = vec![NEW; self.nodes.len()];
        let mut expanded = vec![0usize; self.nodes.len()];
        for start in 0..self.nodes.len() {
            if state[start] != NEW {
                continue;
            }
            let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
            state[start] = OPEN;
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                if let Some(&child) = self.nodes[node].in_place.get(*next) {
                    *next += 1;
                    match state[child] {
                        NEW => {
                            state[child] = OPEN;
                            stack.push((child, 0));
                        }
                        OPEN => {
                            return Err(SchemaError::RefCycle {
                                which: which.to_owned(),
                            });
                        }
                        _ => {}
                    }
                    continue;
                }
                stack.pop();
                state[node] = DONE;
                let size = self.nodes[node]
                    .in_place
                    .iter()
                    .fold(1usize, |sum, &child| sum.saturating_add(expanded[child]));
                if size > limits.max_expanded {
                    return Err(over(
                        &format!(
                            "{which} applies to one value (with every `$ref` inlined across `allOf`/`anyOf`/`oneOf`/`not`/`if`/`$ref`)"
                        ),
                        format!("{} subschemas", display_count(size)),
                        limits.max_expanded,
                        "max_expanded",
                    ));
                }
                expanded[node] = size;
            }
        }
        Ok(())
    }

    /// The deepest nesting from the root with refs inlined (a path is cut
    /// where it would revisit a subschema it is inside of), and the number of
    /// paths from the root when no path loops.
    fn depth_and_paths(&self) -> (usize, Option<usize>) {
        const NEW: u8 = 0;
        const OPEN: u8 = 1;
        const DONE: u8 = 2;
        if self.nodes.is_empty() {
            return (0, Some(0));
        }
        let children = |node: usize| {
            let node = &self.nodes[node];
            node.in_place.iter().chain(node.descend.iter()).copied()
        };
        let mut state = vec![NEW; self.nodes.len()];
        let mut depth = vec![0usize; self.nodes.len()];
        let mut paths = vec![0usize; self.nodes.len()];
        let mut looped = false;
        let mut stack: Vec<(usize, usize)> = vec![(0, 0)];
        state[0] = OPEN;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(child) = children(node).nth(*next) {
                *next += 1;
                match state[child] {
                    NEW => {
                        state[child] = OPEN;
                        stack.push((child, 0));
                    }
                    OPEN => looped = true,
                    _ => {}
                }
                continue;
            }
            stack.pop();
            state[node] = DONE;
            let mut deepest = 0;
            let mut count = 1usize;
            for child in children(node) {
                if state[child] == DONE {
                    deepest = deepest.max(depth[child]);
                    count = count.saturating_add(paths[child]);
                }
            }
            depth[node] = deepest + 1;
            paths[node] = count;
        }
        (depth[0], (!looped).then_some(paths[0]))
    }
}

fn display_count(count: usize) -> String {
    if count == usize::MAX {
        "more than 18446744073709551615".to_owned()
    } else {
        count.to_string()
    }
}

/// Compiles a JSON Schema (ECMA-262) pattern the way the validator will:
/// translated by jsonschema's own translation, then built by the
/// linear-time `regex` engine under a size limit.
fn compile_pattern(pattern: &str, size_limit: usize) -> Result<regex::Regex, String> {
    let translated = jsonschema_regex::to_rust_regex(pattern).map_err(|()| {
        "the host's linear-time regex engine cannot use: look-around, backreferences and invalid syntax are not supported".to_owned()
    })?;
    regex::RegexBuilder::new(&translated)
        .size_limit(size_limit)
        .dfa_size_limit(size_limit)
        .build()
        .map_err(|err| match err {
            regex::Error::CompiledTooBig(limit) => format!(
                "compiles to more than {limit} bytes; simplify it, or raise `max_regex_bytes` in the [schema] section of the host config"
            ),
            other => format!(
                "the host's linear-time regex engine cannot use ({}); look-around and backreferences are not supported",
                first_line(&other.to_string())
            ),
        })
}

fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .rfind(|line| line.starts_with("error:"))
        .unwrap_or_else(|| text.lines().next().unwrap_or(""))
        .chars()
        .take(200)
        .collect()
}

/// Where `$id`s and anchors point, for resolving references.
struct Index<'a> {
    ids: HashMap<&'a str, &'a Value>,
    anchors: HashMap<&'a str, &'a Value>,
}

enum Resolved<'a> {
    Schema(&'a Value),
    /// A published meta-schema, which jsonschema ships with.
    MetaSchema,
    Missing,
}

impl<'a> Index<'a> {
    fn build(root: &'a Value) -> Self {
        let mut index = Index {
            ids: HashMap::new(),
            anchors: HashMap::new(),
        };
        let mut stack = vec![root];
        while let Some(value) = stack.pop() {
            match value {
                Value::Object(map) => {
                    if let Some(Value::String(id)) = map.get("$id") {
                        let (base, fragment) = id.split_once('#').unwrap_or((id, ""));
                        if !base.is_empty() {
                            index.ids.entry(base).or_insert(value);
                        }
                        if !fragment.is_empty() && !fragment.starts_with('/') {
                            index.anchors.entry(fragment).or_insert(value);
                        }
                    }
                    for key in ["$anchor", "$dynamicAnchor", "$recursiveAnchor"] {
                        if let Some(Value::String(anchor)) = map.get(key) {
                            index.anchors.entry(anchor).or_insert(value);
                        }
                    }
                    stack.extend(map.values());
                }
                Value::Array(items) => stack.extend(items.iter()),
                _ => {}
            }
        }
        index
    }

    /// Resolves a reference inside the document. Scoping of `$id`s and
    /// anchors is approximated (any `$id` whose path ends like the
    /// reference's); what cannot be found is refused, as jsonschema would
    /// refuse it without remote retrieval.
    fn resolve(&self, root: &'a Value, reference: &str) -> Resolved<'a> {
        let (base, fragment) = reference.split_once('#').unwrap_or((reference, ""));
        let document = if base.is_empty() {
            root
        } else if base.starts_with("http://json-schema.org/")
            || base.starts_with("https://json-schema.org/")
        {
            return Resolved::MetaSchema;
        } else if let Some(doc) = self.ids.get(base) {
            doc
        } else {
            let tail = base.rsplit('/').next().unwrap_or(base);
            match self
                .ids
                .iter()
                .find(|(id, _)| id.rsplit('/').next() == Some(tail))
            {
                Some((_, doc)) => doc,
                None => return Resolved::Missing,
            }
        };
        let fragment = percent_decode(fragment);
        let target = if fragment.is_empty() {
            Some(document)
        } else if fragment.starts_with('/') {
            document.pointer(&fragment)
        } else {
            self.anchors.get(fragment.as_str()).copied()
        };
        match target {
            Some(value) => Resolved::Schema(value),
            None => Resolved::Missing,
        }
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(hi * 16 + lo);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|d| d as u8)
}
