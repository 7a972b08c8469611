//! The provider factory: the config's provider section, overridden by flags and the environment, becomes a ready provider and a line describing it.
//!
//! Precedence, highest first: the overrides (command-line flags), the
//! environment, the config file, the defaults. The environment is read in
//! one place, [`ProviderEnv::from_process`], and passed in as values, so
//! [`build_provider`] itself reads nothing but the script file.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::anthropic::{AnthropicConfig, AnthropicProvider};
use crate::config::{ProviderConfig, ProviderKind};
use crate::http::check_base_url;
use crate::openai::{OpenAiConfig, OpenAiProvider};
use crate::scripted::{Script, ScriptTurn, ScriptedProvider};
use crate::{BaseUrlError, HttpSettings, ProviderError, SharedProvider};

const OPENAI_BASE_URL: &str = "OPENAI_BASE_URL";
const OPENAI_API_KEY: &str = "OPENAI_API_KEY";
const ANTHROPIC_API_KEY: &str = "ANTHROPIC_API_KEY";

/// What differs between setting up the HTTP providers.
struct Vendor {
    /// The provider's short name.
    name: &'static str,
    /// How the banner names the API.
    api: &'static str,
    /// The variable that can replace the file's base URL.
    base_url_var: Option<&'static str>,
    default_base_url: &'static str,
    default_model: &'static str,
    /// The variable holding the key, unless `api_key_env` names another.
    key_var: &'static str,
    /// A base URL on this host is the vendor's own API, which needs a key.
    vendor_host: &'static str,
    /// What to use instead when there is no key.
    keyless_alternative: &'static str,
}

const OPENAI: Vendor = Vendor {
    name: "openai",
    api: "OpenAI-compatible API",
    base_url_var: Some(OPENAI_BASE_URL),
    default_base_url: "https://api.openai.com/v1",
    default_model: "gpt-4o-mini",
    key_var: OPENAI_API_KEY,
    vendor_host: "api.openai.com",
    keyless_alternative: "a local server such as Ollama (http://localhost:11434/v1)",
};

const ANTHROPIC: Vendor = Vendor {
    name: "anthropic",
    api: "Anthropic API",
    base_url_var: None,
    default_base_url: "https://api.anthropic.com",
    default_model: "claude-sonnet-4-5",
    key_var: ANTHROPIC_API_KEY,
    vendor_host: "api.anthropic.com",
    keyless_alternative: "a compatible server",
};

/// What the scripted provider says when no provider and no script is
/// configured: how to get a real model.
const NO_PROVIDER_TEXT: &str = "This is agent-host's offline scripted model: no LLM is configured. Pass --provider openai or --provider anthropic (with OPENAI_API_KEY / ANTHROPIC_API_KEY), point --base-url at a local server such as Ollama, or give --script FILE to replay a script.";

/// Settings that outrank the config file and the environment (the
/// command-line flags).
#[derive(Debug, Clone, Default)]
pub struct ProviderOverrides {
    /// Which API answers.
    pub kind: Option<ProviderKind>,
    /// The model name.
    pub model: Option<String>,
    /// The API's base URL.
    pub base_url: Option<String>,
    /// The scripted provider's script.
    pub script: Option<PathBuf>,
    /// The scripted provider's pause between streamed words (a terminal
    /// shows the text arriving; a pipe wants it at once).
    pub scripted_chunk_delay: Duration,
}

/// The environment variables a provider config can use, read once.
/// Empty values count as unset.
#[derive(Debug, Clone, Default)]
pub struct ProviderEnv {
    vars: BTreeMap<String, String>,
}

impl ProviderEnv {
    /// Reads `OPENAI_BASE_URL`, `OPENAI_API_KEY`, `ANTHROPIC_API_KEY` and
    /// the variable `config.api_key_env` names from the process.
    pub fn from_process(config: &ProviderConfig) -> Self {
        Self::from_lookup(config, |name| std::env::var(name).ok())
    }

    /// Reads the same variables through `lookup`.
    pub fn from_lookup(config: &ProviderConfig, lookup: impl Fn(&str) -> Option<String>) -> Self {
        let names = [OPENAI_BASE_URL, OPENAI_API_KEY, ANTHROPIC_API_KEY]
            .map(str::to_owned)
            .into_iter()
            .chain(config.api_key_env.clone());
        let vars = names
            .filter_map(|name| {
                let value = lookup(&name).filter(|value| !value.is_empty())?;
                Some((name, value))
            })
            .collect();
        Self { vars }
    }

    fn get(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }
}

/// A ready provider.
pub struct BuiltProvider {
    /// The provider.
    pub provider: SharedProvider,
    /// One line saying which model answers and where, for the user.
    pub banner: String,
    /// Which API it speaks.
    pub kind: ProviderKind,
}

impl std::fmt::Debug for BuiltProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltProvider")
            .field("banner", &self.banner)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// Why no provider could be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    /// The vendor's own API is configured, and the variable that holds its
    /// key is not set.
    #[error("{var} is not set; export it, or pass --base-url for {alternative}")]
    MissingApiKey {
        /// The environment variable to set.
        var: String,
        /// What could be used without a key.
        alternative: &'static str,
    },
    /// The base URL cannot be used.
    #[error("{provider} base URL `{url}` {reason}")]
    BadBaseUrl {
        /// The provider's short name.
        provider: &'static str,
        /// The base URL as given.
        url: String,
        /// What is wrong with it.
        reason: BaseUrlError,
    },
    /// The provider refused its configuration (no model name, an
    /// unreadable script).
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

/// Builds the provider `config` describes, with `overrides` and `env`
/// taking precedence (see the module docs).
pub fn build_provider(
    config: &ProviderConfig,
    overrides: &ProviderOverrides,
    env: &ProviderEnv,
) -> Result<BuiltProvider, SetupError> {
    let kind = overrides
        .kind
        .or(config.kind)
        .unwrap_or(ProviderKind::Scripted);
    let (provider, banner): (SharedProvider, String) = match kind {
        ProviderKind::Openai => {
            let endpoint = Endpoint::resolve(&OPENAI, config, overrides, env)?;
            let banner = endpoint.banner(&OPENAI);
            let provider = OpenAiProvider::new(OpenAiConfig {
                base_url: endpoint.base_url,
                api_key: endpoint.api_key,
                model: endpoint.model,
                stream: config.stream.unwrap_or(true),
                http: http_settings(config),
            })?;
            (Arc::new(provider), banner)
        }
        ProviderKind::Anthropic => {
            let endpoint = Endpoint::resolve(&ANTHROPIC, config, overrides, env)?;
            let banner = endpoint.banner(&ANTHROPIC);
            let provider = AnthropicProvider::new(AnthropicConfig {
                base_url: endpoint.base_url,
                api_key: endpoint.api_key,
                model: endpoint.model,
                http: http_settings(config),
            })?;
            (Arc::new(provider), banner)
        }
        ProviderKind::Scripted => {
            let (provider, banner) = match overrides.script.as_ref().or(config.script.as_ref()) {
                Some(path) => (
                    ScriptedProvider::from_file(path)?,
                    format!(
                        "model: scripted replay of {} (offline, not a real LLM)",
                        path.display()
                    ),
                ),
                None => (
                    ScriptedProvider::new(no_provider_script()),
                    "model: scripted (offline, not a real LLM; no provider is configured)"
                        .to_owned(),
                ),
            };
            let provider = provider.with_chunk_delay(overrides.scripted_chunk_delay);
            (Arc::new(provider), banner)
        }
    };
    Ok(BuiltProvider {
        provider,
        banner,
        kind,
    })
}

/// Where an HTTP provider is reached, resolved and checked.
struct Endpoint {
    base_url: String,
    model: String,
    api_key: Option<String>,
}

impl Endpoint {
    fn resolve(
        vendor: &Vendor,
        config: &ProviderConfig,
        overrides: &ProviderOverrides,
        env: &ProviderEnv,
    ) -> Result<Self, SetupError> {
        let base_url = pick(
            &overrides.base_url,
            vendor.base_url_var.and_then(|var| env.get(var)),
            &config.base_url,
            vendor.default_base_url,
        );
        let model = pick(&overrides.model, None, &config.model, vendor.default_model);
        let key_var = config.api_key_env.as_deref().unwrap_or(vendor.key_var);
        let api_key = env.get(key_var);
        // The vendor's own API needs a key; a local or compatible server
        // may not.
        if api_key.is_none() && base_url.contains(vendor.vendor_host) {
            return Err(SetupError::MissingApiKey {
                var: key_var.to_owned(),
                alternative: vendor.keyless_alternative,
            });
        }
        check_base_url(&base_url).map_err(|reason| SetupError::BadBaseUrl {
            provider: vendor.name,
            url: base_url.clone(),
            reason,
        })?;
        Ok(Self {
            base_url,
            model,
            api_key,
        })
    }

    fn banner(&self, vendor: &Vendor) -> String {
        format!(
            "model: {} via {} at {}",
            self.model, vendor.api, self.base_url
        )
    }
}

/// A setting from the override, else the environment, else the config
/// file, else the default.
fn pick(
    overriding: &Option<String>,
    env: Option<String>,
    file: &Option<String>,
    default: &str,
) -> String {
    overriding
        .clone()
        .or(env)
        .or_else(|| file.clone())
        .unwrap_or_else(|| default.to_owned())
}

/// The HTTP settings the config file changes; the rest are defaults.
fn http_settings(config: &ProviderConfig) -> HttpSettings {
    let mut http = HttpSettings::default();
    if let Some(secs) = config.deadline_secs {
        http.deadline = Duration::from_secs(secs);
    }
    if let Some(retries) = config.max_retries {
        http.max_retries = retries;
    }
    http
}

fn no_provider_script() -> Script {
    Script {
        turns: vec![ScriptTurn {
            say: NO_PROVIDER_TEXT.to_owned(),
            tool_calls: Vec::new(),
            when_result_contains: None,
        }],
    }
}

#[cfg(test)]
#[path = "factory_tests.rs"]
mod tests;
