//! The set of loaded plugins and the tool-name index, with clash detection and load problems kept for display.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::error::LoadError;
use crate::loader::LoadedPlugin;

/// A plugin file that could not be loaded, kept so `plugins list` can show it.
#[derive(Debug, Clone, Serialize)]
pub struct LoadProblem {
    /// The plugin file.
    pub path: PathBuf,
    /// The plugin name from its manifest, when the manifest could be read.
    pub plugin: Option<String>,
    /// Why it was refused.
    pub error: String,
}

/// Loaded plugins by name, and which plugin serves each tool.
#[derive(Debug, Default)]
pub struct Registry {
    plugins: BTreeMap<String, Arc<LoadedPlugin>>,
    tools: BTreeMap<String, String>,
    problems: Vec<LoadProblem>,
}

impl Registry {
    /// Registers a plugin. A plugin whose name or any tool name is already
    /// taken by another plugin is refused whole: a clash is never resolved
    /// by silently shadowing one tool with another.
    pub fn insert(&mut self, plugin: Arc<LoadedPlugin>) -> Result<(), LoadError> {
        let name = plugin.name().to_owned();
        if let Some(existing) = self.plugins.get(&name)
            && existing.wasm_path != plugin.wasm_path
        {
            return Err(LoadError::DuplicatePlugin {
                name,
                first: existing.wasm_path.clone(),
                second: plugin.wasm_path.clone(),
            });
        }
        for tool in &plugin.tools {
            if let Some(owner) = self.tools.get(&tool.spec.name)
                && *owner != name
            {
                return Err(LoadError::DuplicateTool {
                    tool: tool.spec.name.clone(),
                    plugin: name,
                    existing_plugin: owner.clone(),
                });
            }
        }
        self.remove(&name);
        for tool in &plugin.tools {
            self.tools.insert(tool.spec.name.clone(), name.clone());
        }
        self.plugins.insert(name, plugin);
        Ok(())
    }

    /// Unregisters a plugin and its tools.
    pub fn remove(&mut self, name: &str) -> Option<Arc<LoadedPlugin>> {
        let removed = self.plugins.remove(name)?;
        self.tools.retain(|_, owner| owner != name);
        Some(removed)
    }

    /// Unregisters the plugin loaded from `path`, returning its name.
    pub fn remove_by_path(&mut self, path: &std::path::Path) -> Option<String> {
        let name = self
            .plugins
            .values()
            .find(|plugin| plugin.wasm_path == path)
            .map(|plugin| plugin.name().to_owned())?;
        self.remove(&name);
        Some(name)
    }

    /// Forgets the problem recorded for `path`.
    pub fn clear_problem(&mut self, path: &std::path::Path) {
        self.problems.retain(|p| p.path != path);
    }

    /// Records a problem, replacing an earlier one for the same path.
    pub fn record_problem(&mut self, problem: LoadProblem) {
        self.problems.retain(|p| p.path != problem.path);
        self.problems.push(problem);
    }

    /// Every recorded problem.
    pub fn problems(&self) -> &[LoadProblem] {
        &self.problems
    }

    /// The plugin that serves `tool`.
    pub fn plugin_for_tool(&self, tool: &str) -> Option<Arc<LoadedPlugin>> {
        let owner = self.tools.get(tool)?;
        self.plugins.get(owner).cloned()
    }

    /// The plugin called `name`.
    pub fn plugin(&self, name: &str) -> Option<Arc<LoadedPlugin>> {
        self.plugins.get(name).cloned()
    }

    /// All plugins, by name.
    pub fn plugins(&self) -> impl Iterator<Item = &Arc<LoadedPlugin>> {
        self.plugins.values()
    }

    /// All tool names, sorted.
    pub fn tool_names(&self) -> Vec<String> {
        self.tools.keys().cloned().collect()
    }
}
