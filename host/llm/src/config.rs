//! The provider section of the configuration: which model answers and how to reach it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Which API answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// OpenAI-compatible chat completions (OpenAI, Ollama, llama.cpp, vLLM).
    Openai,
    /// The Anthropic messages API.
    Anthropic,
    /// Offline, deterministic replay of a script file.
    Scripted,
}

/// Which model answers, and how to reach it. Flags and environment
/// (`OPENAI_BASE_URL`, `OPENAI_API_KEY`, `ANTHROPIC_API_KEY`) override it;
/// [`crate::factory`] turns it into a provider.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderConfig {
    /// `openai`, `anthropic` or `scripted`; unset means scripted.
    pub kind: Option<ProviderKind>,
    /// The model name sent to the provider.
    pub model: Option<String>,
    /// The API's base URL, e.g. `http://localhost:11434/v1` for Ollama.
    pub base_url: Option<String>,
    /// Name of the environment variable that holds the API key.
    pub api_key_env: Option<String>,
    /// Script for the scripted provider.
    pub script: Option<PathBuf>,
    /// Overall deadline of one model call, retries included.
    pub deadline_secs: Option<u64>,
    /// Retries of a model call on 429, 5xx and connection failures.
    pub max_retries: Option<u32>,
    /// Use streaming responses (default true).
    pub stream: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct File {
        provider: ProviderConfig,
    }

    fn parse(text: &str) -> Result<ProviderConfig, String> {
        serde_json::from_str::<File>(text)
            .map(|file| file.provider)
            .map_err(|err| err.to_string())
    }

    #[test]
    fn kinds_are_the_lowercase_names() {
        for (name, kind) in [
            ("openai", ProviderKind::Openai),
            ("anthropic", ProviderKind::Anthropic),
            ("scripted", ProviderKind::Scripted),
        ] {
            let config = parse(&format!(r#"{{"provider": {{"kind": "{name}"}}}}"#)).unwrap();
            assert_eq!(config.kind, Some(kind));
        }
        assert_eq!(parse(r#"{"provider": {}}"#).unwrap().kind, None);
    }

    #[test]
    fn an_unknown_kind_is_refused_with_the_valid_names() {
        let err = parse(r#"{"provider": {"kind": "gemini"}}"#).unwrap_err();
        assert!(
            err.contains("gemini")
                && err.contains("openai")
                && err.contains("anthropic")
                && err.contains("scripted"),
            "{err}"
        );
    }
}
