//! Turns a `.wasm` + manifest pair into a ready-to-call plugin: validate, compile, check the contract, pre-instantiate, describe.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::Engine;
use wasmtime::component::Linker;

use crate::bindings::{self, ToolPluginPre};
use crate::cache::{CacheLevel, ComponentCache};
use crate::capabilities::{self, Capabilities};
use crate::config::HostConfig;
use crate::contract;
use crate::error::LoadError;
use crate::host_api::HostContext;
use crate::manifest::{self, Manifest};
use crate::sandbox::{self, CallState};
use crate::schema::ArgsValidator;
use crate::spec::ToolSpec;
use crate::store::Store;

/// Longest a plugin may take to describe its tools.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(10);

/// A tool ready to call: its spec and compiled argument schema.
#[derive(Debug)]
pub struct LoadedTool {
    pub spec: ToolSpec,
    pub validator: ArgsValidator,
}

/// A plugin that passed every check and can be instantiated cheaply.
pub struct LoadedPlugin {
    pub manifest: Manifest,
    pub wasm_path: PathBuf,
    pub manifest_path: PathBuf,
    pub capabilities: Capabilities,
    /// blake3 of the component bytes, hex.
    pub content_hash: String,
    pub size: u64,
    /// Time spent compiling for this load (zero when a cache answered).
    pub compile_time: Duration,
    /// Which cache level provided the compiled component.
    pub cache_level: CacheLevel,
    /// Total load time: read, verify, compile or fetch, link, describe.
    pub load_time: Duration,
    pub tools: Vec<LoadedTool>,
    pub(crate) pre: ToolPluginPre<CallState>,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("name", &self.manifest.plugin.name)
            .field("wasm_path", &self.wasm_path)
            .field("tools", &self.tools.len())
            .finish()
    }
}

impl LoadedPlugin {
    pub fn name(&self) -> &str {
        &self.manifest.plugin.name
    }

    pub fn tool(&self, name: &str) -> Option<&LoadedTool> {
        self.tools.iter().find(|tool| tool.spec.name == name)
    }
}

/// Something that wants to know when a real compilation starts and ends
/// (the CLI shows a spinner for slow ones).
pub trait CompileObserver: Send + Sync {
    fn started(&self, plugin: &str);
    fn finished(&self, plugin: &str, took: Duration);
}

/// Everything loading needs from the runtime.
pub struct LoadContext<'a> {
    pub engine: &'a Engine,
    pub linker: &'a Linker<CallState>,
    pub config: &'a HostConfig,
    pub store: &'a Store,
    pub cache: &'a Arc<ComponentCache>,
    pub observer: Option<Arc<dyn CompileObserver>>,
}

/// Whether `name` is a legal tool name (the rule OpenAI and MCP clients share).
pub fn is_valid_tool_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Loads the plugin at `wasm_path`. Compilation runs on a blocking thread.
pub async fn load(cx: &LoadContext<'_>, wasm_path: &Path) -> Result<Arc<LoadedPlugin>, LoadError> {
    let started = Instant::now();
    let manifest_path = manifest::manifest_path_for(wasm_path);
    if !manifest_path.is_file() {
        return Err(LoadError::MissingManifest {
            wasm: wasm_path.to_owned(),
            manifest: manifest_path,
        });
    }
    let manifest = Manifest::load(&manifest_path)?;
    let name = manifest.plugin.name.clone();
    let bytes = std::fs::read(wasm_path).map_err(|source| LoadError::Io {
        path: wasm_path.to_owned(),
        source,
    })?;
    contract::check_header(wasm_path, &bytes)?;
    let capabilities =
        capabilities::grant(&manifest, &cx.config.grant_for(&name), &cx.config.sandbox).map_err(
            |message| LoadError::Grant {
                plugin: name.clone(),
                message,
            },
        )?;
    let content_hash = crate::cache::content_hash(&bytes);
    let size = bytes.len() as u64;

    let cache = cx.cache.clone();
    let path = wasm_path.to_owned();
    let observer = cx.observer.clone();
    let plugin_name = name.clone();
    let hash = content_hash.clone();
    let compiled = tokio::task::spawn_blocking(move || {
        let on_compile = || {
            if let Some(observer) = &observer {
                observer.started(&plugin_name);
            }
        };
        let result = cache.get_or_compile(&path, &bytes, &hash, &on_compile);
        if let (Some(observer), Ok(compiled)) = (&observer, &result)
            && compiled.level == CacheLevel::Compiled
        {
            observer.finished(&plugin_name, compiled.compile_time);
        }
        result
    })
    .await
    .map_err(|err| LoadError::Compile {
        path: wasm_path.to_owned(),
        message: format!("compiler thread failed: {err}"),
    })?
    .map_err(|message| LoadError::Compile {
        path: wasm_path.to_owned(),
        message,
    })?;
    let component = compiled.component;
    tracing::debug!(plugin = %name, level = ?compiled.level, ms = compiled.compile_time.as_secs_f64() * 1e3, "component ready");

    contract::check_world(cx.engine, &component, wasm_path, "tool")?;
    let instance_pre = cx
        .linker
        .instantiate_pre(&component)
        .map_err(|err| LoadError::Link {
            plugin: name.clone(),
            message: format!("{err:#}"),
        })?;
    let pre = ToolPluginPre::new(instance_pre).map_err(|err| LoadError::Link {
        plugin: name.clone(),
        message: format!("{err:#}"),
    })?;

    // Specs are a pure function of the component, so a version described
    // once is never instantiated just to be listed again.
    let specs = match cx.store.tool_specs(&content_hash) {
        Some(specs) => specs,
        None => {
            let specs = describe(cx, &pre, &capabilities, &name).await?;
            if let Err(err) = cx.store.put_tool_specs(&content_hash, &specs) {
                tracing::warn!(plugin = %name, "cannot persist tool specs: {err}");
            }
            specs
        }
    };
    let tools = validate_specs(&name, specs)?;
    Ok(Arc::new(LoadedPlugin {
        manifest,
        wasm_path: wasm_path.to_owned(),
        manifest_path,
        capabilities,
        content_hash,
        size,
        compile_time: compiled.compile_time,
        cache_level: compiled.level,
        load_time: started.elapsed(),
        tools,
        pre,
    }))
}

async fn describe(
    cx: &LoadContext<'_>,
    pre: &ToolPluginPre<CallState>,
    capabilities: &Capabilities,
    name: &str,
) -> Result<Vec<ToolSpec>, LoadError> {
    let describe_error = |message: String| LoadError::Describe {
        plugin: name.to_owned(),
        message,
    };
    let mut caps = capabilities.clone();
    caps.limits.timeout = caps.limits.timeout.min(DESCRIBE_TIMEOUT);
    let host = HostContext::new(name, "describe", cx.store.plugin_kv(name), None);
    let (mut store, probe) = sandbox::new_store(cx.engine, &caps, host).map_err(describe_error)?;
    let run = async {
        let instance = pre.instantiate_async(&mut store).await?;
        instance.agent_plugin_tool().call_describe(&mut store).await
    };
    let specs = match tokio::time::timeout(caps.limits.timeout, run).await {
        Ok(Ok(specs)) => specs,
        Ok(Err(err)) => {
            let (stderr, _) = probe.stderr.take();
            return Err(describe_error(format!("{err:#} {}", stderr.trim())));
        }
        Err(_) => {
            return Err(describe_error(format!(
                "no answer within {:?}",
                caps.limits.timeout
            )));
        }
    };
    specs
        .into_iter()
        .map(|spec| {
            bindings::spec_from_wit(spec).map_err(|bad| LoadError::BadSpec {
                plugin: name.to_owned(),
                tool: bad.tool,
                reason: bad.reason,
            })
        })
        .collect()
}

fn validate_specs(plugin: &str, specs: Vec<ToolSpec>) -> Result<Vec<LoadedTool>, LoadError> {
    let bad = |tool: &str, reason: String| LoadError::BadSpec {
        plugin: plugin.to_owned(),
        tool: tool.to_owned(),
        reason,
    };
    if specs.is_empty() {
        return Err(bad("(none)", "the plugin describes no tools".to_owned()));
    }
    let mut tools: Vec<LoadedTool> = Vec::with_capacity(specs.len());
    for spec in specs {
        if !is_valid_tool_name(&spec.name) {
            return Err(bad(
                &spec.name,
                "a tool name must be 1-64 characters of A-Z, a-z, 0-9, '_' and '-'".to_owned(),
            ));
        }
        if tools.iter().any(|tool| tool.spec.name == spec.name) {
            return Err(bad(
                &spec.name,
                "the plugin declares this tool twice".to_owned(),
            ));
        }
        if spec.description.trim().is_empty() {
            return Err(bad(
                &spec.name,
                "the description is empty; the model needs it to choose the tool".to_owned(),
            ));
        }
        let validator =
            ArgsValidator::compile(&spec.input_schema).map_err(|reason| bad(&spec.name, reason))?;
        tools.push(LoadedTool { spec, validator });
    }
    Ok(tools)
}
