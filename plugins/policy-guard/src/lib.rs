//! plugin-policy-guard: an extension that blocks tool calls a configured policy forbids (denied tools, denied argument values).
//!
//! The policy is the plugin's `[config]`: tool-name globs to deny outright,
//! and rules that deny a tool's string arguments by substring or prefix. A
//! blocked call is not run; the model gets the reason, which names the rule
//! and says what to do instead.
//!
//! A configuration that does not decode fails closed: every tool call is
//! blocked with a reason saying so, because running without the intended
//! policy is the one outcome a guard must not allow silently.

use agent_plugin_sdk::prelude::*;
use serde::Deserialize;

/// Longest argument value quoted back in a reason.
const MAX_QUOTED_CHARS: usize = 120;

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Policy {
    /// Tool-name globs (`*` matches any run of characters) that are never run.
    deny_tools: Vec<String>,
    rules: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    /// Tool-name glob the rule applies to.
    #[serde(default = "any")]
    tool: String,
    /// A top-level argument name (every string inside that argument is
    /// checked), or `*` for every string value anywhere in the arguments.
    #[serde(default = "any")]
    field: String,
    #[serde(default)]
    deny_contains: Vec<String>,
    #[serde(default)]
    deny_prefix: Vec<String>,
    /// Compare without regard to letter case.
    #[serde(default)]
    ignore_case: bool,
    /// What the model should do instead; replaces the generic advice.
    #[serde(default)]
    hint: Option<String>,
}

fn any() -> String {
    "*".to_owned()
}

struct PolicyGuard;

impl Extension for PolicyGuard {
    fn describe() -> ExtensionInfo {
        // Early, so no other extension acts on (or patches around) a call
        // that is going to be refused; after the redactor-style cleaners.
        ExtensionInfo::new(-50).subscribe(Subscription::sync(HookPoint::BeforeToolCall))
    }

    fn on_event(event: Event) -> Outcome {
        let Some(name) = event.str_field("name") else {
            return Outcome::Continue;
        };
        let policy = match serde_json::from_value::<Policy>(host::config()) {
            Ok(policy) => policy,
            Err(err) => {
                host::warn(&format!(
                    "invalid [config]: {err}; blocking every tool call until it is fixed"
                ));
                return Outcome::block(format!(
                    "policy-guard: the tool policy is misconfigured ({err}), so no tool may run. \
                     Do not retry; tell the user to fix the policy-guard configuration."
                ));
            }
        };
        let arguments = event.payload.get("arguments").unwrap_or(&Value::Null);
        match check(&policy, name, arguments) {
            Some(reason) => Outcome::Block(reason),
            None => Outcome::Continue,
        }
    }
}

export_extension!(PolicyGuard);

/// The reason to block calling `tool` with `arguments`, if the policy
/// forbids it.
fn check(policy: &Policy, tool: &str, arguments: &Value) -> Option<String> {
    if let Some(pattern) = policy
        .deny_tools
        .iter()
        .find(|pattern| glob_match(pattern, tool))
    {
        return Some(format!(
            "policy-guard: the tool `{tool}` is not allowed here (deny_tools pattern `{pattern}`). \
             Do not call it again; do the task with other tools, or tell the user it needs `{tool}`."
        ));
    }
    for (index, rule) in policy.rules.iter().enumerate() {
        if !glob_match(&rule.tool, tool) {
            continue;
        }
        let mut strings = Vec::new();
        if rule.field == "*" {
            collect_strings(arguments, "arguments".to_owned(), &mut strings);
        } else if let Some(value) = arguments.get(&rule.field) {
            collect_strings(value, format!("arguments.{}", rule.field), &mut strings);
        }
        for (path, value) in strings {
            if let Some(why) = violation(rule, value) {
                let advice = rule.hint.as_deref().unwrap_or(
                    "Do not retry the same value; use one the rule allows, or ask the user.",
                );
                return Some(format!(
                    "policy-guard: rule {} (tool `{}`, field `{}`) blocks this call: {path} = {} {why}. {advice}",
                    index + 1,
                    rule.tool,
                    rule.field,
                    quote(value),
                ));
            }
        }
    }
    None
}

/// Why `value` breaks `rule`, if it does.
fn violation(rule: &Rule, value: &str) -> Option<String> {
    let fold = |text: &str| {
        if rule.ignore_case {
            text.to_lowercase()
        } else {
            text.to_owned()
        }
    };
    let value = fold(value);
    // An empty pattern would match every value; it is always a mistake, not
    // a request to deny everything (deny_tools does that).
    let patterns = |list: &[String]| -> Vec<String> {
        list.iter()
            .filter(|pattern| !pattern.is_empty())
            .cloned()
            .collect()
    };
    if let Some(pattern) = patterns(&rule.deny_contains)
        .into_iter()
        .find(|pattern| value.contains(&fold(pattern)))
    {
        return Some(format!("contains the denied text {}", quote(&pattern)));
    }
    patterns(&rule.deny_prefix)
        .into_iter()
        .find(|pattern| value.starts_with(&fold(pattern)))
        .map(|pattern| format!("starts with the denied prefix {}", quote(&pattern)))
}

/// Every string in `value`, with a path such as `arguments.files[2].path`.
fn collect_strings<'a>(value: &'a Value, path: String, out: &mut Vec<(String, &'a str)>) {
    match value {
        Value::String(text) => out.push((path, text)),
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                collect_strings(item, format!("{path}[{index}]"), out);
            }
        }
        Value::Object(fields) => {
            for (key, item) in fields {
                collect_strings(item, format!("{path}.{key}"), out);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// `text` as a JSON string, shortened so a huge argument does not flood
/// the reason.
fn quote(text: &str) -> String {
    match text.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((cut, _)) => format!("{}...", Value::from(&text[..cut])),
        None => Value::from(text).to_string(),
    }
}

/// Glob match where `*` stands for any run of characters (also none) and
/// every other character for itself.
fn glob_match(pattern: &str, text: &str) -> bool {
    let (pattern, text) = (pattern.as_bytes(), text.as_bytes());
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and where in `text` it is currently assumed to
    // end; on a mismatch the star swallows one more byte.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&byte| byte == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(value: Value) -> Policy {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn globs_use_star_only() {
        assert!(glob_match("*", ""));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("fs_*", "fs_write"));
        assert!(glob_match("*_write", "fs_write"));
        assert!(glob_match("f*_w*e", "fs_write"));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        assert!(!glob_match("fs_*", "http_get"));
        assert!(!glob_match("a*b", "acbx"));
        assert!(!glob_match("fs_?", "fs_x"));
        assert!(!glob_match("", "x"));
    }

    #[test]
    fn denied_tools_are_blocked_by_name() {
        let policy = policy(json!({"deny_tools": ["shell*", "http_post"]}));
        let reason = check(&policy, "shell_exec", &json!({})).unwrap();
        assert!(reason.contains("`shell_exec`") && reason.contains("`shell*`"));
        assert!(check(&policy, "http_post", &json!({})).is_some());
        assert!(check(&policy, "http_get", &json!({})).is_none());
    }

    #[test]
    fn rules_check_the_named_field() {
        let policy = policy(json!({"rules": [
            {"tool": "fs_*", "field": "path", "deny_prefix": ["/etc", "/root"], "deny_contains": [".."]},
        ]}));
        let reason = check(&policy, "fs_read", &json!({"path": "/etc/passwd"})).unwrap();
        assert!(reason.contains("rule 1"), "{reason}");
        assert!(
            reason.contains("arguments.path = \"/etc/passwd\""),
            "{reason}"
        );
        assert!(reason.contains("denied prefix \"/etc\""), "{reason}");
        assert!(check(&policy, "fs_read", &json!({"path": "/data/../secret"})).is_some());
        // Other fields and other tools are not this rule's business.
        assert!(
            check(
                &policy,
                "fs_read",
                &json!({"path": "/data/x", "to": "/etc/x"})
            )
            .is_none()
        );
        assert!(check(&policy, "http_get", &json!({"path": "/etc/passwd"})).is_none());
        // Every string inside the named argument counts.
        assert!(
            check(
                &policy,
                "fs_read",
                &json!({"path": ["/data", "/root/.ssh"]})
            )
            .is_some()
        );
    }

    #[test]
    fn star_field_checks_every_string_anywhere() {
        let policy = policy(json!({"rules": [
            {"tool": "*", "field": "*", "deny_contains": ["drop table"], "ignore_case": true,
             "hint": "Use the read-only query tool instead."},
        ]}));
        let arguments = json!({"n": 1, "ops": [{"sql": "SELECT 1"}, {"sql": "DROP TABLE users"}]});
        let reason = check(&policy, "db_exec", &arguments).unwrap();
        assert!(reason.contains("arguments.ops[1].sql"), "{reason}");
        assert!(
            reason.ends_with("Use the read-only query tool instead."),
            "{reason}"
        );
        assert!(check(&policy, "db_exec", &json!({"sql": "select 1"})).is_none());
    }

    #[test]
    fn case_matters_unless_told_otherwise_and_empty_patterns_are_ignored() {
        let policy = policy(json!({"rules": [
            {"tool": "*", "field": "cmd", "deny_contains": ["rm -rf", ""], "deny_prefix": [""]},
        ]}));
        assert!(check(&policy, "sh", &json!({"cmd": "rm -rf /"})).is_some());
        assert!(check(&policy, "sh", &json!({"cmd": "RM -RF /"})).is_none());
        assert!(check(&policy, "sh", &json!({"cmd": "ls"})).is_none());
    }

    #[test]
    fn long_values_are_shortened_in_reasons() {
        let policy = policy(json!({"rules": [{"deny_contains": ["x"]}]}));
        let reason = check(&policy, "t", &json!({"a": "x".repeat(1000)})).unwrap();
        assert!(reason.len() < 500, "{reason}");
        assert!(reason.contains("\"..."), "{reason}");
    }

    #[test]
    fn config_is_strict() {
        assert!(serde_json::from_value::<Policy>(json!({})).is_ok());
        assert!(serde_json::from_value::<Policy>(json!({"deny_tool": ["x"]})).is_err());
        assert!(
            serde_json::from_value::<Policy>(json!({"rules": [{"deny_contain": ["x"]}]})).is_err()
        );
        assert!(serde_json::from_value::<Policy>(json!({"deny_tools": "x"})).is_err());
    }
}
