//! The config file: composes each crate's section, resolves flags, environment, the file and XDG defaults into one [`Settings`].
//!
//! Precedence, highest first: command-line flags, environment variables,
//! the config file, then XDG defaults. Relative paths in the config file are
//! resolved against the file's own directory. Unknown keys are refused with
//! the key and the file named.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use agent_host_agent::config::{AgentSettings, SessionSettings};
use agent_host_llm::config::ProviderConfig;
use agent_host_mcp::McpConfig;
use agent_host_runtime::ConfigError;
use agent_host_runtime::config::{
    CacheConfig, DescribeLimits, ExtensionSettings, Grant, HooksConfig, QuotaConfig, RuntimeConfig,
    SandboxConfig, SchemaConfig, WatchConfig,
};
use agent_host_server::ServerConfig;
use serde::Deserialize;

/// The config file as written by the user.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ConfigFile {
    plugin_dirs: Vec<PathBuf>,
    data_dir: Option<PathBuf>,
    sandbox: SandboxConfig,
    cache: CacheConfig,
    watch: WatchConfig,
    provider: ProviderConfig,
    agent: AgentSettings,
    sessions: SessionSettings,
    grants: BTreeMap<String, Grant>,
    hooks: HooksConfig,
    extensions: BTreeMap<String, ExtensionSettings>,
    describe: DescribeLimits,
    quotas: QuotaConfig,
    schema: SchemaConfig,
    mcp: McpConfig,
    server: ServerConfig,
}

/// Where each setting may come from before it is resolved.
#[derive(Debug, Default, Clone)]
pub struct ConfigSources {
    /// Explicit config file (flag or env); an explicit file must exist.
    pub config_file: Option<PathBuf>,
    /// Plugin directories from flags or env; replace the file's list.
    pub plugin_dirs: Vec<PathBuf>,
    /// Data directory from flags or env.
    pub data_dir: Option<PathBuf>,
}

/// Everything the binary needs, resolved once before any command acts.
#[derive(Debug, Clone)]
pub struct Settings {
    pub runtime: RuntimeConfig,
    pub provider: ProviderConfig,
    pub agent: AgentSettings,
    pub sessions: SessionSettings,
    pub mcp: McpConfig,
    pub server: ServerConfig,
    /// The config file that was read, if any.
    pub config_file: Option<PathBuf>,
}

impl Settings {
    /// Resolves flags/env, the config file and XDG defaults into one config.
    pub fn resolve(sources: ConfigSources) -> Result<Self, ConfigError> {
        let (file, file_path) = match &sources.config_file {
            Some(path) => (Some(read_config_file(path)?), Some(path.clone())),
            None => {
                let default = default_config_file();
                if default.is_file() {
                    (Some(read_config_file(&default)?), Some(default))
                } else {
                    (None, None)
                }
            }
        };
        let base = file_path
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_owned)
            .unwrap_or_else(|| PathBuf::from("."));
        let file = file.unwrap_or_default();

        let plugin_dirs = if !sources.plugin_dirs.is_empty() {
            sources.plugin_dirs.clone()
        } else if !file.plugin_dirs.is_empty() {
            file.plugin_dirs.iter().map(|dir| base.join(dir)).collect()
        } else {
            vec![default_data_dir().join("plugins")]
        };
        let data_dir = match (&sources.data_dir, &file.data_dir) {
            (Some(dir), _) => dir.clone(),
            (None, Some(dir)) => base.join(dir),
            (None, None) => default_data_dir(),
        };
        let mut grants = file.grants;
        for grant in grants.values_mut() {
            for dir in &mut grant.dirs {
                dir.host = base.join(&dir.host);
            }
        }
        let runtime = RuntimeConfig {
            plugin_dirs,
            data_dir,
            sandbox: file.sandbox,
            cache: file.cache,
            watch: file.watch,
            grants,
            hooks: file.hooks,
            extensions: file.extensions,
            describe: file.describe,
            quotas: file.quotas,
            schema: file.schema,
        };
        runtime.validate()?;
        Ok(Self {
            runtime,
            provider: ProviderConfig {
                script: file.provider.script.as_ref().map(|p| base.join(p)),
                ..file.provider
            },
            agent: file.agent,
            sessions: file.sessions,
            mcp: file.mcp,
            server: file.server,
            config_file: file_path,
        })
    }
}

fn read_config_file(path: &Path) -> Result<ConfigFile, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|err| ConfigError::Parse {
        path: path.to_owned(),
        message: err.to_string().trim().to_owned(),
    })
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `$XDG_DATA_HOME/agent-host`, or `~/.local/share/agent-host`.
pub fn default_data_dir() -> PathBuf {
    match std::env::var_os("XDG_DATA_HOME") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("agent-host"),
        _ => home().join(".local/share/agent-host"),
    }
}

/// `$XDG_CONFIG_HOME/agent-host/config.toml`, or `~/.config/agent-host/config.toml`.
pub fn default_config_file() -> PathBuf {
    let dir = match std::env::var_os("XDG_CONFIG_HOME") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => home().join(".config"),
    };
    dir.join("agent-host/config.toml")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("config.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Resolves `path` as the config file, with no flags or environment.
    fn resolve_file(path: impl Into<PathBuf>) -> Result<Settings, ConfigError> {
        Settings::resolve(ConfigSources {
            config_file: Some(path.into()),
            ..Default::default()
        })
    }

    #[test]
    fn flags_override_file_and_relative_paths_follow_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = write(
            tmp.path(),
            r#"
            plugin_dirs = ["plugins"]
            data_dir = "data"
            [grants.fs]
            dirs = [{ host = "work", guest = "/workspace", access = "read" }]
            "#,
        );
        let config = resolve_file(path.clone()).unwrap();
        assert_eq!(config.runtime.plugin_dirs, vec![tmp.path().join("plugins")]);
        assert_eq!(config.runtime.data_dir, tmp.path().join("data"));
        assert_eq!(
            config.runtime.grants["fs"].dirs[0].host,
            tmp.path().join("work")
        );

        let config = Settings::resolve(ConfigSources {
            config_file: Some(path),
            plugin_dirs: vec![PathBuf::from("/elsewhere")],
            data_dir: Some(PathBuf::from("/d")),
        })
        .unwrap();
        assert_eq!(
            config.runtime.plugin_dirs,
            vec![PathBuf::from("/elsewhere")]
        );
        assert_eq!(config.runtime.data_dir, PathBuf::from("/d"));
    }

    #[test]
    fn the_example_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/agent-host.toml");
        let config = resolve_file(path).unwrap();
        let guard = &config.runtime.extensions["policy-guard"];
        assert!(guard.fail_closed);
        assert_eq!(config.runtime.hooks.timeout_ms, 100);
    }

    #[test]
    fn an_unknown_hook_point_is_refused_with_the_valid_names() {
        let tmp = tempfile::tempdir().unwrap();
        let path = write(
            tmp.path(),
            "[extensions.audit.hooks.before_tool_call]\nmin_interval_ms = 5\n",
        );
        let err = resolve_file(path).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("before_tool_call") && message.contains("before-tool-call"),
            "{message}"
        );
    }

    #[test]
    fn quotas_are_read_and_checked() {
        let tmp = tempfile::tempdir().unwrap();
        let path = write(tmp.path(), "[quotas]\nkv_max_mb = 8\nlist_max_keys = 50\n");
        let config = resolve_file(path).unwrap();
        assert_eq!(config.runtime.quotas.kv_max_mb, 8);
        assert_eq!(config.runtime.quotas.list_max_keys, 50);
        assert_eq!(
            config.runtime.quotas.kv_max_keys,
            QuotaConfig::default().kv_max_keys
        );
        for (text, expected) in [
            (
                "[quotas]\nsession_max_keys = 0\n",
                "quotas.session_max_keys",
            ),
            ("[quotas]\nkv_max_bytes = 5\n", "kv_max_bytes"),
        ] {
            let path = write(tmp.path(), text);
            let err = resolve_file(path).unwrap_err();
            assert!(err.to_string().contains(expected), "{err}");
        }
    }

    #[test]
    fn bad_files_name_the_problem() {
        let tmp = tempfile::tempdir().unwrap();
        let path = write(tmp.path(), "[sandbox]\nmax_memory_mb = \"lots\"\n");
        let err = resolve_file(path).unwrap_err();
        assert!(err.to_string().contains("max_memory_mb"), "{err}");

        let path = write(
            tmp.path(),
            "[sandbox]\ndefault_timeout_ms = 10\nmax_timeout_ms = 5\n",
        );
        let err = resolve_file(path).unwrap_err();
        assert!(err.to_string().contains("above its maximum"), "{err}");

        let err = resolve_file(tmp.path().join("missing.toml")).unwrap_err();
        assert!(err.to_string().contains("cannot read config file"), "{err}");
    }

    /// Found by fuzzing (docs/fuzzing.md): a size in KiB or MiB whose byte
    /// count does not fit in 64 bits overflowed when a plugin was granted
    /// its limits (a panic in debug builds, a wrapped, tiny cap in release).
    #[test]
    fn sizes_whose_bytes_overflow_are_refused_with_their_key() {
        let tmp = tempfile::tempdir().unwrap();
        for (text, key) in [
            (
                "[sandbox]\nmax_output_kb = 9223372036854775807\n",
                "sandbox.max_output_kb",
            ),
            (
                "[sandbox]\nlog_capture_kb = 18014398509481984\n",
                "sandbox.log_capture_kb",
            ),
            ("[cache]\nmemory_mb = 17592186044416\n", "cache.memory_mb"),
            ("[cache]\ndisk_mb = 9223372036854775807\n", "cache.disk_mb"),
            (
                "[hooks]\nmax_patch_kb = 18014398509481984\n",
                "hooks.max_patch_kb",
            ),
        ] {
            let path = write(tmp.path(), text);
            let err = resolve_file(path).unwrap_err();
            let message = err.to_string();
            assert!(
                message.contains(key) && message.contains("too large"),
                "{text}: {message}"
            );
        }
        // The largest representable size is still accepted.
        let path = write(
            tmp.path(),
            "[sandbox]\nmax_output_kb = 18014398509481983\nlog_capture_kb = 18014398509481983\n",
        );
        let config = resolve_file(path).unwrap();
        let manifest =
            agent_host_runtime::manifest::Manifest::parse("[plugin]\nname = \"x\"\nversion = \"0.1.0\"\n[limits]\nmax_output_kb = 9223372036854775807\n")
                .unwrap();
        let caps = agent_host_runtime::capabilities::grant(
            &manifest,
            &config.runtime.grant_for("x"),
            &config.runtime.sandbox,
        )
        .unwrap();
        assert_eq!(
            caps.limits.max_output_bytes,
            ((u64::MAX >> 10) << 10) as usize
        );
    }
}
