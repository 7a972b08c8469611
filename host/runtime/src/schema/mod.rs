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
use crate::error::{CallError, FailureKind, SchemaError};
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

/// Aligned to cache lines of its own: every call of the tool on every
/// thread reads it, so no other data may share its lines.
#[repr(align(128))]
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
    OutOfTime {
        /// The budget, in milliseconds.
        ms: u64,
    },
    /// Validation failed inside the host (a panic in the validator).
    Crashed(String),
    /// This many costly validations are still running (some abandoned
    /// after their deadline); no more are started until one ends.
    Busy {
        /// Validations still running.
        running: usize,
    },
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
    pub fn compile(spec: &ToolSpec, limits: &SchemaConfig) -> Result<Self, SchemaError> {
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
    pub fn compile_input(schema: &Value, limits: &SchemaConfig) -> Result<Self, SchemaError> {
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
            CheckError::Busy { running } => CallError::Failed {
                plugin: plugin.to_owned(),
                tool: tool.to_owned(),
                kind: FailureKind::ValidationBusy {
                    stage: stage.to_owned(),
                    running,
                },
                detail: None,
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

fn compile_one(
    schema: &Value,
    limits: &SchemaConfig,
    which: &str,
) -> Result<Compiled, SchemaError> {
    if !schema.is_object() && !schema.is_boolean() {
        return Err(SchemaError::NotObject {
            which: which.to_owned(),
        });
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
        .map_err(|err| SchemaError::Invalid {
            message: truncate(format!("{which} is not a valid JSON Schema: {err}")),
        })?;
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
#[path = "schema_tests.rs"]
mod tests;
