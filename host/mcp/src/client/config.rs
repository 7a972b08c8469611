//! One `[mcp.servers.NAME]` entry: how to reach the server (a child process or a URL), its timeouts and caps, which of its tools are used and under what names; `${VAR}` references resolved from the host's environment.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::ClientError;

/// An MCP server whose tools the agent may use.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// The program to start (stdio transport). Exactly one of `command`
    /// and `url` is set.
    pub command: Option<String>,
    /// Its arguments.
    pub args: Vec<String>,
    /// The child's whole environment: it gets these variables and no
    /// others. Values may name host variables as `${NAME}` (for `PATH` or a
    /// token); a missing one is an error naming it.
    pub env: BTreeMap<String, String>,
    /// The Streamable HTTP endpoint (`http://` or `https://`).
    pub url: Option<String>,
    /// Extra request headers for `url`; values may use `${NAME}`, such as
    /// `Authorization = "Bearer ${GITHUB_TOKEN}"`.
    pub headers: BTreeMap<String, String>,
    /// `false` keeps the entry but never connects.
    pub enabled: bool,
    /// How long the first turn (or `tools list`) waits for the server to
    /// be ready. A server still starting after that keeps starting in the
    /// background and its tools join when it is ready.
    pub connect_timeout_ms: u64,
    /// How long starting may take in all (spawn plus handshake plus the
    /// tool list) before the attempt fails with an error naming the server.
    pub start_timeout_ms: u64,
    /// How long one call may take before it fails (and is cancelled on the
    /// server).
    pub call_timeout_ms: u64,
    /// Which of the server's tools are used.
    pub tools: ToolFilter,
    /// What exposed names start with, before `__`; default: the server's
    /// name. Empty: no prefix (clashes are then more likely, and refused).
    pub prefix: Option<String>,
    /// Whether this server's read-only tools may run at the same time as
    /// each other (both this and the tool's `readOnlyHint` must say so).
    pub parallel: bool,
    /// Which protocol to speak: `auto` tries 2026-07-28 (`server/discover`)
    /// and falls back to the `initialize` handshake.
    pub protocol: ProtocolChoice,
    /// The most tools used from this server; a longer list is cut there,
    /// with a warning.
    pub max_tools: usize,
    /// The largest message accepted from the server, in KiB; a larger one
    /// is dropped (stdio) or refused (HTTP) and that call fails.
    pub max_message_kb: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            command: None,
            args: Vec::new(),
            env: BTreeMap::new(),
            url: None,
            headers: BTreeMap::new(),
            enabled: true,
            connect_timeout_ms: 5_000,
            start_timeout_ms: 60_000,
            call_timeout_ms: 120_000,
            tools: ToolFilter::default(),
            prefix: None,
            parallel: true,
            protocol: ProtocolChoice::Auto,
            max_tools: 1_000,
            max_message_kb: 16 * 1024,
        }
    }
}

/// Which protocol era a client speaks to a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
pub enum ProtocolChoice {
    /// 2026-07-28 when the server offers it, else the handshake.
    #[default]
    #[serde(rename = "auto")]
    Auto,
    /// Stateless 2026-07-28 only.
    #[serde(rename = "2026-07-28")]
    V2026_07_28,
    /// The `initialize` handshake at 2025-11-25.
    #[serde(rename = "2025-11-25")]
    V2025_11_25,
    /// The `initialize` handshake at 2025-06-18.
    #[serde(rename = "2025-06-18")]
    V2025_06_18,
}

/// Allow and deny globs over a server's own tool names (`*` any run of
/// characters, `?` one). A tool is used when some allow glob matches (no
/// allow list: all) and no deny glob does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToolFilter {
    /// Globs of the tools to use; empty means every tool.
    pub allow: Vec<String>,
    /// Globs of the tools never to use.
    pub deny: Vec<String>,
}

impl ToolFilter {
    /// Whether the server's tool `name` is used.
    pub fn admits(&self, name: &str) -> bool {
        let allowed = self.allow.is_empty() || self.allow.iter().any(|glob| matches(glob, name));
        allowed && !self.deny.iter().any(|glob| matches(glob, name))
    }
}

/// Glob matching with `*` and `?`, without recursion or backtracking
/// blow-up: the classic single-star-memory walk, O(glob x name).
fn matches(glob: &str, name: &str) -> bool {
    let glob: Vec<char> = glob.chars().collect();
    let name: Vec<char> = name.chars().collect();
    let (mut g, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if g < glob.len() && (glob[g] == '?' || glob[g] == name[n]) {
            g += 1;
            n += 1;
        } else if g < glob.len() && glob[g] == '*' {
            star = Some((g, n));
            g += 1;
        } else if let Some((star_g, star_n)) = star {
            g = star_g + 1;
            n = star_n + 1;
            star = Some((star_g, star_n + 1));
        } else {
            return false;
        }
    }
    glob[g..].iter().all(|&c| c == '*')
}

/// Where a server is, with every `${VAR}` resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A child process on stdio.
    Command {
        /// The program.
        program: String,
        /// Its arguments.
        args: Vec<String>,
        /// Its whole environment.
        env: BTreeMap<String, String>,
    },
    /// Streamable HTTP.
    Url {
        /// The endpoint.
        url: String,
        /// Extra headers.
        headers: BTreeMap<String, String>,
    },
}

impl ServerConfig {
    /// Checks the entry on its own (before anything starts): a name the
    /// host can use, exactly one of `command` and `url`, a URL it can
    /// reach, sane limits.
    pub fn validate(&self, name: &str) -> Result<(), ClientError> {
        let invalid = |problem: String| ClientError::Config {
            server: name.to_owned(),
            problem,
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(invalid(
                "server names may use only letters, digits, '_' and '-'".to_owned(),
            ));
        }
        match (&self.command, &self.url) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "set either `command` (a stdio server) or `url` (Streamable HTTP), not both"
                        .to_owned(),
                ));
            }
            (None, None) => {
                return Err(invalid(
                    "set `command` (a program to start, with `args`) or `url` (a Streamable HTTP endpoint)".to_owned(),
                ));
            }
            (Some(command), None) if command.trim().is_empty() => {
                return Err(invalid("`command` is empty".to_owned()));
            }
            (None, Some(url)) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                return Err(invalid(format!(
                    "`url` must start with http:// or https:// (got {url:?})"
                )));
            }
            _ => {}
        }
        if self.url.is_none() && !self.headers.is_empty() {
            return Err(invalid(
                "`headers` apply to `url` servers only; a stdio server gets `env`".to_owned(),
            ));
        }
        if self.command.is_none() && (!self.args.is_empty() || !self.env.is_empty()) {
            return Err(invalid(
                "`args` and `env` apply to `command` servers only".to_owned(),
            ));
        }
        if let Some(prefix) = &self.prefix
            && prefix.contains("__")
        {
            return Err(invalid(
                "`prefix` may not contain `__` (it separates the prefix from the tool's name)"
                    .to_owned(),
            ));
        }
        if self.max_tools == 0 {
            return Err(invalid("`max_tools` must be at least 1".to_owned()));
        }
        Ok(())
    }

    /// The prefix of exposed names: the configured one, else `name`.
    pub fn prefix_or<'a>(&'a self, name: &'a str) -> &'a str {
        self.prefix.as_deref().unwrap_or(name)
    }

    /// The endpoint with `${VAR}` resolved through `lookup` (the host's
    /// environment in production).
    pub fn endpoint(
        &self,
        name: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Endpoint, ClientError> {
        let resolve = |field: &str, value: &str| {
            expand(value, lookup).map_err(|variable| ClientError::Config {
                server: name.to_owned(),
                problem: format!(
                    "{field} uses ${{{variable}}}, which is not set in the environment; set it or change the config"
                ),
            })
        };
        let resolve_map = |field: &str, map: &BTreeMap<String, String>| {
            map.iter()
                .map(|(key, value)| Ok((key.clone(), resolve(&format!("{field}.{key}"), value)?)))
                .collect::<Result<BTreeMap<_, _>, ClientError>>()
        };
        match (&self.command, &self.url) {
            (Some(command), _) => Ok(Endpoint::Command {
                program: command.clone(),
                args: self.args.clone(),
                env: resolve_map("env", &self.env)?,
            }),
            (None, Some(url)) => Ok(Endpoint::Url {
                url: resolve("url", url)?,
                headers: resolve_map("headers", &self.headers)?,
            }),
            (None, None) => Err(ClientError::Config {
                server: name.to_owned(),
                problem: "no `command` and no `url`".to_owned(),
            }),
        }
    }

    /// What identifies the server for the persisted tool list: where it is
    /// and how it is started, as written in the config (unresolved, so no
    /// secret from the environment is part of it).
    pub fn identity(&self, name: &str) -> String {
        let described = serde_json::json!({
            "name": name,
            "command": self.command,
            "args": self.args,
            "env": self.env,
            "url": self.url,
            "headers": self.headers.keys().collect::<Vec<_>>(),
        });
        blake3::hash(described.to_string().as_bytes())
            .to_hex()
            .to_string()
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub(crate) fn start_timeout(&self) -> Duration {
        Duration::from_millis(self.start_timeout_ms.max(self.connect_timeout_ms))
    }

    pub(crate) fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.call_timeout_ms.max(1))
    }

    pub(crate) fn max_message_bytes(&self) -> usize {
        self.max_message_kb.max(1).saturating_mul(1024)
    }
}

/// `value` with every `${NAME}` replaced by `lookup(NAME)`; `$$` is a
/// literal `$`. The error is the first variable that is not set.
fn expand(value: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('{')
            && let Some(end) = tail.find('}')
        {
            let variable = &tail[..end];
            out.push_str(&lookup(variable).ok_or_else(|| variable.to_owned())?);
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_names() {
        assert!(matches("*", "anything"));
        assert!(matches("get_*", "get_issue"));
        assert!(!matches("get_*", "list_issues"));
        assert!(matches("?cho", "echo"));
        assert!(matches("*_issue*", "create_issue_comment"));
        assert!(!matches("echo", "echo2"));
        assert!(matches("a*b*c", "aXXbYYc"));
        assert!(!matches("a*b*c", "aXXbYY"));
        // Many stars over a long name stays quick (no backtracking blow-up).
        let name = "a".repeat(10_000);
        assert!(!matches(&format!("{}b", "*a".repeat(50)), &name));
    }

    #[test]
    fn the_filter_allows_then_denies() {
        let filter = ToolFilter {
            allow: vec!["get_*".into(), "echo".into()],
            deny: vec!["get_secret*".into()],
        };
        assert!(filter.admits("echo"));
        assert!(filter.admits("get_issue"));
        assert!(!filter.admits("get_secret_key"));
        assert!(!filter.admits("delete_repo"));
        assert!(ToolFilter::default().admits("whatever"));
    }

    #[test]
    fn variables_come_from_the_environment_or_are_named() {
        let lookup = |name: &str| (name == "TOKEN").then(|| "s3cret".to_owned());
        assert_eq!(expand("Bearer ${TOKEN}", &lookup).unwrap(), "Bearer s3cret");
        assert_eq!(expand("$$5 and $x", &lookup).unwrap(), "$5 and $x");
        assert_eq!(expand("${MISSING}", &lookup).unwrap_err(), "MISSING");
        let config = ServerConfig {
            url: Some("https://example.com/mcp".into()),
            headers: BTreeMap::from([("Authorization".into(), "Bearer ${NOPE}".into())]),
            ..ServerConfig::default()
        };
        let err = config.endpoint("gh", &lookup).unwrap_err().to_string();
        assert!(
            err.contains("mcp.servers.gh") && err.contains("${NOPE}"),
            "{err}"
        );
    }

    #[test]
    fn an_entry_needs_one_way_to_reach_the_server() {
        let neither = ServerConfig::default();
        assert!(
            neither
                .validate("x")
                .unwrap_err()
                .to_string()
                .contains("set `command`")
        );
        let both = ServerConfig {
            command: Some("srv".into()),
            url: Some("http://127.0.0.1:1/mcp".into()),
            ..ServerConfig::default()
        };
        assert!(
            both.validate("x")
                .unwrap_err()
                .to_string()
                .contains("not both")
        );
        let ftp = ServerConfig {
            url: Some("ftp://host".into()),
            ..ServerConfig::default()
        };
        assert!(ftp.validate("x").is_err());
        let command = ServerConfig {
            command: Some("srv".into()),
            ..ServerConfig::default()
        };
        assert!(command.validate("ok-name_1").is_ok());
        assert!(command.validate("bad name").is_err());
        let prefixed = ServerConfig {
            prefix: Some("a__b".into()),
            ..command
        };
        assert!(prefixed.validate("x").is_err());
    }
}
