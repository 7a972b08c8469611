//! Finding, loading, reloading and checking plugins, and refusing name and tool clashes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::Runtime;
use crate::error::LoadError;
use crate::loader::{self, LoadMode, LoadedPlugin};
use crate::registry::LoadProblem;

/// What happened to each plugin file found at startup.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Names of the plugins registered.
    pub loaded: Vec<String>,
    /// Files refused, with the reason.
    pub failed: Vec<(PathBuf, LoadError)>,
}

/// What happened to a plugin while the runtime was running (hot reload).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum PluginEvent {
    /// A plugin was loaded or replaced by a new version.
    Loaded {
        /// The plugin's name.
        plugin: String,
        /// Its component file.
        path: PathBuf,
        /// blake3 of the version now serving, hex.
        content_hash: String,
    },
    /// A plugin file was removed and its tools unregistered.
    Removed {
        /// The plugin's name.
        plugin: String,
        /// The file that went away.
        path: PathBuf,
    },
    /// A new version failed to load; the previous version (if any) keeps serving.
    Failed {
        /// The component file.
        path: PathBuf,
        /// Why the new version was refused.
        error: String,
    },
    /// A plugin that started on its baseline build now runs its optimized
    /// build (same version, same tools).
    TieredUp {
        /// The plugin's name.
        plugin: String,
    },
}

impl Runtime {
    /// Every `.wasm` file in the configured plugin directories, sorted.
    pub fn discover(&self) -> Vec<PathBuf> {
        self.discover_with_sizes()
            .into_iter()
            .map(|(path, _)| path)
            .collect()
    }

    /// [`Runtime::discover`], with each file's size (from the same look at
    /// the file that saw it is one).
    fn discover_with_sizes(&self) -> Vec<(PathBuf, u64)> {
        let mut found = Vec::new();
        for dir in &self.inner.config.plugin_dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                tracing::warn!(dir = %dir.display(), "plugin directory cannot be read; skipping it");
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|ext| ext == "wasm")
                    && let Ok(meta) = std::fs::metadata(&path)
                    && meta.is_file()
                {
                    found.push((path, meta.len()));
                }
            }
        }
        found.sort();
        found
    }

    /// Loads every plugin in the plugin directories, in parallel (bounded by
    /// the number of cores). Plugins whose specs are cached are prepared on
    /// their first call; see [`LoadMode`]. Failures are reported, recorded
    /// for `plugins list`, and never stop other plugins from loading.
    pub async fn load_plugin_dirs(&self) -> LoadReport {
        self.load_plugin_dirs_with(LoadMode::Lazy).await
    }

    /// [`Runtime::load_plugin_dirs`] with an explicit [`LoadMode`].
    pub async fn load_plugin_dirs_with(&self, mode: LoadMode) -> LoadReport {
        let started = std::time::Instant::now();
        let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
        let permits = Arc::new(tokio::sync::Semaphore::new(parallel));
        let found = self.discover_with_sizes();
        // Largest files start first (longest compile first): on a cold
        // start the biggest plugin's compile then overlaps the small ones
        // instead of running alone at the end. A load is spawned only once
        // it has a permit, so they start in exactly this order (spawned
        // tasks are not polled in the order they were spawned).
        let mut by_size: Vec<usize> = (0..found.len()).collect();
        by_size.sort_by(|&a, &b| found[b].1.cmp(&found[a].1));
        let mut loads = Vec::with_capacity(found.len());
        for index in by_size {
            let permit = permits.clone().acquire_owned().await.ok();
            let runtime = self.clone();
            let path = found[index].0.clone();
            let load = tokio::spawn(async move {
                let _permit = permit;
                let result = loader::load(&runtime.load_context(), &path, mode).await;
                (path, result)
            });
            loads.push((index, load));
        }
        // Registered in discovery order, whatever order they finished in.
        loads.sort_by_key(|&(index, _)| index);
        let mut results = Vec::with_capacity(loads.len());
        for (_, load) in loads {
            if let Ok(result) = load.await {
                results.push(result);
            }
        }
        let results = refuse_clashes(results);
        let mut report = LoadReport::default();
        for (path, result) in results {
            match result.and_then(|plugin| self.register(plugin)) {
                Ok(name) => report.loaded.push(name),
                Err(err) => {
                    tracing::debug!("{err}");
                    self.record_problem(&path, &err);
                    report.failed.push((path, err));
                }
            }
        }
        self.refresh_extensions();
        tracing::debug!(
            loaded = report.loaded.len(),
            failed = report.failed.len(),
            took_ms = started.elapsed().as_secs_f64() * 1e3,
            "plugin directories loaded"
        );
        report
    }

    /// Loads one plugin and registers its tools.
    pub async fn load_plugin(&self, wasm_path: &Path) -> Result<Arc<LoadedPlugin>, LoadError> {
        let result = loader::load(&self.load_context(), wasm_path, LoadMode::Eager).await;
        match result {
            Ok(plugin) => {
                self.register(plugin.clone())?;
                self.refresh_extensions();
                Ok(plugin)
            }
            Err(err) => {
                self.record_problem(wasm_path, &err);
                Err(err)
            }
        }
    }

    /// Loads a plugin without registering it, to inspect it.
    pub async fn check_plugin(&self, wasm_path: &Path) -> Result<Arc<LoadedPlugin>, LoadError> {
        loader::load(&self.load_context(), wasm_path, LoadMode::Eager).await
    }

    /// Reloads whatever changed at `path` (a .wasm or its manifest): loads
    /// the new version and swaps it in atomically, unregisters a deleted
    /// plugin, or keeps the old version serving if the new one fails.
    /// Calls in flight finish on the version they started with.
    pub async fn reload_path(&self, path: &Path) -> Option<PluginEvent> {
        let wasm = if path.extension().is_some_and(|ext| ext == "toml") {
            path.with_extension("wasm")
        } else if path.extension().is_some_and(|ext| ext == "wasm") {
            path.to_owned()
        } else {
            return None;
        };
        let event = if wasm.is_file() {
            match loader::load(&self.load_context(), &wasm, LoadMode::Eager).await {
                Ok(plugin) => {
                    let hash = plugin.content_hash.clone();
                    match self.register(plugin) {
                        Ok(name) => {
                            self.clear_problem(&wasm);
                            tracing::info!(plugin = %name, "plugin loaded from {}", wasm.display());
                            PluginEvent::Loaded {
                                plugin: name,
                                path: wasm,
                                content_hash: hash,
                            }
                        }
                        Err(err) => PluginEvent::Failed {
                            path: wasm,
                            error: err.to_string(),
                        },
                    }
                }
                Err(err) => {
                    tracing::warn!(
                        "update of {} not applied, previous version keeps serving: {err}",
                        wasm.display()
                    );
                    self.record_problem(&wasm, &err);
                    PluginEvent::Failed {
                        path: wasm,
                        error: err.to_string(),
                    }
                }
            }
        } else {
            let removed = {
                let mut registry = self.registry_mut();
                registry.clear_problem(&wasm);
                registry.remove_by_path(&wasm)
            };
            let plugin = removed?;
            tracing::info!(%plugin, "plugin removed");
            PluginEvent::Removed { plugin, path: wasm }
        };
        self.refresh_extensions();
        let _ = self.inner.events.send(event.clone());
        Some(event)
    }

    /// Whether the plugin file at `path` holds exactly the version that is
    /// loaded from it (same bytes), so a watcher event on it changes nothing.
    pub fn is_current(&self, path: &Path) -> bool {
        let loaded = {
            let registry = self.registry();
            registry
                .plugins()
                .find(|plugin| plugin.wasm_path == path)
                .map(|plugin| (plugin.size, plugin.content_hash.clone()))
        };
        let Some((loaded_size, loaded_hash)) = loaded else {
            return false;
        };
        // A different size is a real change, known without reading: the
        // reload that follows reads and hashes the file itself. Only a file
        // of the same size is read here, to tell a copy from an edit.
        if std::fs::metadata(path).map_or(true, |meta| meta.len() != loaded_size) {
            return false;
        }
        std::fs::read(path).is_ok_and(|bytes| crate::cache::content_hash(&bytes) == loaded_hash)
    }

    /// Starts hot reload: watches the plugin directories for as long as the
    /// returned handle lives.
    #[cfg(feature = "watch")]
    pub fn watch(&self) -> Result<crate::watcher::PluginWatcher, crate::watcher::WatchError> {
        crate::watcher::watch(self)
    }

    pub(crate) fn clear_problem(&self, path: &Path) {
        let mut registry = self.registry_mut();
        registry.clear_problem(path);
    }

    fn register(&self, plugin: Arc<LoadedPlugin>) -> Result<String, LoadError> {
        let name = plugin.name().to_owned();
        let mut registry = self.registry_mut();
        match registry.insert(plugin.clone()) {
            Ok(()) => Ok(name),
            Err(err) => {
                registry.record_problem(LoadProblem {
                    path: plugin.wasm_path.clone(),
                    plugin: Some(name),
                    error: err.to_string(),
                });
                Err(err)
            }
        }
    }

    fn record_problem(&self, path: &Path, err: &LoadError) {
        let plugin = crate::manifest::Manifest::load(&crate::manifest::manifest_path_for(path))
            .ok()
            .map(|m| m.plugin.name);
        let mut registry = self.registry_mut();
        registry.record_problem(LoadProblem {
            path: path.to_owned(),
            plugin,
            error: err.to_string(),
        });
    }

    /// Loaded plugins, by name.
    pub fn plugins(&self) -> Vec<Arc<LoadedPlugin>> {
        let registry = self.registry();
        registry.plugins().cloned().collect()
    }

    /// Plugin files that failed to load, with the reason.
    pub fn problems(&self) -> Vec<LoadProblem> {
        let registry = self.registry();
        registry.problems().to_vec()
    }
}

/// At start-up, plugins that share a name (the same file name in two plugin
/// directories) or declare the same tool are all refused: which one would
/// win must never depend on file order, or a plugin could take over another
/// one's name, state, grants or tools by sorting first.
fn refuse_clashes(
    results: Vec<(PathBuf, Result<Arc<LoadedPlugin>, LoadError>)>,
) -> Vec<(PathBuf, Result<Arc<LoadedPlugin>, LoadError>)> {
    use std::collections::HashMap;
    let mut by_name: HashMap<&str, Vec<&Path>> = HashMap::new();
    let mut by_tool: HashMap<&str, Vec<&str>> = HashMap::new();
    for (path, result) in &results {
        if let Ok(plugin) = result {
            by_name.entry(plugin.name()).or_default().push(path);
            for tool in &plugin.tools {
                by_tool
                    .entry(&tool.spec.name)
                    .or_default()
                    .push(plugin.name());
            }
        }
    }
    let verdicts: Vec<Option<LoadError>> = results
        .iter()
        .map(|(path, result)| {
            let plugin = result.as_ref().ok()?;
            let paths = &by_name[plugin.name()];
            if paths.len() > 1 {
                let other = paths.iter().find(|other| **other != path)?;
                return Some(LoadError::DuplicatePlugin {
                    name: plugin.name().to_owned(),
                    first: path.clone(),
                    second: other.to_path_buf(),
                });
            }
            plugin.tools.iter().find_map(|tool| {
                let owners = &by_tool[tool.spec.name.as_str()];
                let other = owners.iter().find(|owner| **owner != plugin.name())?;
                Some(LoadError::DuplicateTool {
                    tool: tool.spec.name.clone(),
                    plugin: plugin.name().to_owned(),
                    existing_plugin: (*other).to_owned(),
                })
            })
        })
        .collect();
    results
        .into_iter()
        .zip(verdicts)
        .map(|((path, result), verdict)| match verdict {
            Some(err) => (path, Err(err)),
            None => (path, result),
        })
        .collect()
}
