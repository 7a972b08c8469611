//! The provider section of the configuration: which model answers and how to reach it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Which model answers, and how to reach it. Flags and environment
/// (`OPENAI_BASE_URL`, `OPENAI_API_KEY`, `ANTHROPIC_API_KEY`) override it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderConfig {
    /// `openai`, `anthropic` or `scripted`; unset means scripted.
    pub kind: Option<String>,
    pub model: Option<String>,
    pub base_url: Option<String>,
    /// Name of the environment variable that holds the API key.
    pub api_key_env: Option<String>,
    /// Script for the scripted provider.
    pub script: Option<PathBuf>,
    /// Overall deadline of one model call, retries included.
    pub deadline_secs: Option<u64>,
    pub max_retries: Option<u32>,
    /// Use streaming responses (default true).
    pub stream: Option<bool>,
}
