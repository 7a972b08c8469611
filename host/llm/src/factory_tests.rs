//! Unit tests of the provider factory: which provider each source picks, precedence flags > env > file, key and URL errors.

use super::*;
use crate::{ChatRequest, Message, ProviderEvent};
use tokio_util::sync::CancellationToken;

fn env(config: &ProviderConfig, pairs: &[(&str, &str)]) -> ProviderEnv {
    let vars: BTreeMap<String, String> = pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
    ProviderEnv::from_lookup(config, |name| vars.get(name).cloned())
}

fn openai_file(base_url: Option<&str>) -> ProviderConfig {
    ProviderConfig {
        kind: Some(ProviderKind::Openai),
        base_url: base_url.map(str::to_owned),
        model: Some("file-model".to_owned()),
        ..ProviderConfig::default()
    }
}

fn build(
    config: &ProviderConfig,
    overrides: &ProviderOverrides,
    pairs: &[(&str, &str)],
) -> Result<BuiltProvider, SetupError> {
    build_provider(config, overrides, &env(config, pairs))
}

#[test]
fn nothing_configured_is_the_built_in_script() {
    let built = build(
        &ProviderConfig::default(),
        &ProviderOverrides::default(),
        &[],
    )
    .unwrap();
    assert_eq!(built.kind, ProviderKind::Scripted);
    assert_eq!(built.provider.name(), "scripted");
    assert!(
        built.banner.contains("no provider is configured"),
        "{}",
        built.banner
    );
}

#[tokio::test]
async fn the_built_in_script_says_how_to_configure_a_model() {
    let built = build(
        &ProviderConfig::default(),
        &ProviderOverrides::default(),
        &[],
    )
    .unwrap();
    let request = ChatRequest {
        model: String::new(),
        system: None,
        messages: vec![Message::user("hi")],
        tools: Vec::new(),
        max_tokens: 16,
    };
    let mut events = built.provider.start(request, CancellationToken::new());
    let mut text = String::new();
    while let Some(Ok(event)) = events.recv().await {
        if let ProviderEvent::TextDelta { text: delta } = event {
            text.push_str(&delta);
        }
    }
    assert_eq!(text, NO_PROVIDER_TEXT);
}

#[test]
fn base_url_precedence_is_flag_then_env_then_file() {
    let config = openai_file(Some("http://file:1/v1"));
    let flag = ProviderOverrides {
        base_url: Some("http://flag:3/v1".to_owned()),
        ..ProviderOverrides::default()
    };
    let with_env = [(OPENAI_BASE_URL, "http://env:2/v1")];
    let banner = |overrides: &ProviderOverrides, pairs: &[(&str, &str)]| {
        build(&config, overrides, pairs).unwrap().banner
    };
    assert!(banner(&flag, &with_env).ends_with("at http://flag:3/v1"));
    let none = ProviderOverrides::default();
    assert!(banner(&none, &with_env).ends_with("at http://env:2/v1"));
    assert!(banner(&none, &[]).ends_with("at http://file:1/v1"));
    // An empty variable is no setting at all.
    assert!(banner(&none, &[(OPENAI_BASE_URL, "")]).ends_with("at http://file:1/v1"));
    let defaulted = build(&openai_file(None), &none, &[(OPENAI_API_KEY, "sk")]).unwrap();
    assert!(defaulted.banner.ends_with(OPENAI.default_base_url));
}

#[test]
fn kind_and_model_precedence_is_flag_then_file() {
    let config = openai_file(Some("http://localhost:11434/v1"));
    let built = build(&config, &ProviderOverrides::default(), &[]).unwrap();
    assert_eq!(built.kind, ProviderKind::Openai);
    assert_eq!(built.provider.model(), "file-model");
    let flags = ProviderOverrides {
        kind: Some(ProviderKind::Anthropic),
        model: Some("flag-model".to_owned()),
        ..ProviderOverrides::default()
    };
    let built = build(&config, &flags, &[]).unwrap();
    assert_eq!(
        (built.kind, built.provider.name(), built.provider.model()),
        (ProviderKind::Anthropic, "anthropic", "flag-model")
    );
    // OPENAI_BASE_URL is the OpenAI provider's: Anthropic takes the file's.
    let built = build(&config, &flags, &[(OPENAI_BASE_URL, "http://env:2/v1")]).unwrap();
    assert!(
        built.banner.ends_with("at http://localhost:11434/v1"),
        "{}",
        built.banner
    );
    let defaulted = build(
        &ProviderConfig {
            kind: Some(ProviderKind::Anthropic),
            ..ProviderConfig::default()
        },
        &ProviderOverrides::default(),
        &[(ANTHROPIC_API_KEY, "sk-ant")],
    )
    .unwrap();
    assert_eq!(defaulted.provider.model(), ANTHROPIC.default_model);
}

#[test]
fn the_vendor_api_without_its_key_names_the_variable_to_set() {
    let none = ProviderOverrides::default();
    let err = build(&openai_file(None), &none, &[]).unwrap_err();
    assert_eq!(
        err,
        SetupError::MissingApiKey {
            var: OPENAI_API_KEY.to_owned(),
            alternative: "a local server such as Ollama (http://localhost:11434/v1)",
        }
    );
    assert!(
        err.to_string()
            .starts_with("OPENAI_API_KEY is not set; export it"),
        "{err}"
    );
    let anthropic = ProviderConfig {
        kind: Some(ProviderKind::Anthropic),
        ..ProviderConfig::default()
    };
    let err = build(&anthropic, &none, &[(OPENAI_API_KEY, "sk")]).unwrap_err();
    assert!(
        matches!(&err, SetupError::MissingApiKey { var, .. } if var == ANTHROPIC_API_KEY),
        "{err:?}"
    );
    assert!(build(&anthropic, &none, &[(ANTHROPIC_API_KEY, "sk-ant")]).is_ok());
    // A local server needs no key.
    assert!(build(&openai_file(Some("http://localhost:11434/v1")), &none, &[]).is_ok());
}

#[test]
fn api_key_env_replaces_the_default_variable() {
    let config = ProviderConfig {
        api_key_env: Some("MY_KEY".to_owned()),
        ..openai_file(None)
    };
    let none = ProviderOverrides::default();
    let err = build(&config, &none, &[(OPENAI_API_KEY, "sk")]).unwrap_err();
    assert!(
        matches!(&err, SetupError::MissingApiKey { var, .. } if var == "MY_KEY"),
        "{err:?}"
    );
    assert!(build(&config, &none, &[("MY_KEY", "sk")]).is_ok());
}

#[test]
fn a_bad_base_url_is_a_typed_error_naming_it() {
    let flags = ProviderOverrides {
        base_url: Some("localhost:11434/v1".to_owned()),
        ..ProviderOverrides::default()
    };
    let err = build(&openai_file(None), &flags, &[]).unwrap_err();
    assert_eq!(
        err,
        SetupError::BadBaseUrl {
            provider: "openai",
            url: "localhost:11434/v1".to_owned(),
            reason: BaseUrlError::NotHttp,
        }
    );
    assert_eq!(
        err.to_string(),
        "openai base URL `localhost:11434/v1` must start with http:// or https://"
    );
    let flags = ProviderOverrides {
        kind: Some(ProviderKind::Anthropic),
        base_url: Some("not a url".to_owned()),
        ..ProviderOverrides::default()
    };
    let err = build(&openai_file(None), &flags, &[]).unwrap_err();
    assert!(
        matches!(
            &err,
            SetupError::BadBaseUrl {
                provider: "anthropic",
                reason: BaseUrlError::Invalid(_),
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_blank_model_is_refused_by_the_provider() {
    let flags = ProviderOverrides {
        model: Some(" ".to_owned()),
        ..ProviderOverrides::default()
    };
    let err = build(&openai_file(Some("http://localhost:1/v1")), &flags, &[]).unwrap_err();
    assert!(
        matches!(&err, SetupError::Provider(ProviderError::Config(message)) if message.contains("model name")),
        "{err:?}"
    );
}

#[test]
fn script_precedence_is_flag_then_file_and_a_missing_file_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let from_file = dir.join("file.json");
    std::fs::write(&from_file, r#"{"turns": [{"say": "from the file"}]}"#).unwrap();
    let config = ProviderConfig {
        script: Some(from_file.clone()),
        ..ProviderConfig::default()
    };
    let built = build(&config, &ProviderOverrides::default(), &[]).unwrap();
    assert!(built.banner.contains("file.json"), "{}", built.banner);
    let missing = dir.join("flag.json");
    let flags = ProviderOverrides {
        script: Some(missing.clone()),
        ..ProviderOverrides::default()
    };
    let err = build(&config, &flags, &[]).unwrap_err();
    assert!(
        matches!(&err, SetupError::Provider(ProviderError::Config(message)) if message.contains("flag.json")),
        "{err:?}"
    );
}

#[test]
fn the_file_sets_deadline_and_retries() {
    let config = ProviderConfig {
        deadline_secs: Some(7),
        max_retries: Some(0),
        ..ProviderConfig::default()
    };
    let http = http_settings(&config);
    assert_eq!(
        (http.deadline, http.max_retries),
        (Duration::from_secs(7), 0)
    );
    assert_eq!(
        http_settings(&ProviderConfig::default()),
        HttpSettings::default()
    );
}

#[test]
fn the_environment_is_read_for_the_configured_names_only() {
    let config = ProviderConfig {
        api_key_env: Some("MY_KEY".to_owned()),
        ..ProviderConfig::default()
    };
    let asked = std::cell::RefCell::new(Vec::new());
    let _ = ProviderEnv::from_lookup(&config, |name| {
        asked.borrow_mut().push(name.to_owned());
        None
    });
    assert_eq!(
        asked.into_inner(),
        [OPENAI_BASE_URL, OPENAI_API_KEY, ANTHROPIC_API_KEY, "MY_KEY"]
    );
}
