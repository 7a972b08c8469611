//! Watches the plugin directories and hot-swaps a plugin when its .wasm or manifest changes.
//!
//! Directories are watched, not files: a watch on a file misses a new file
//! renamed into place. Events are debounced so a file still being written is
//! loaded only once it has been quiet for `watch.debounce_ms`; loading runs
//! on the watcher's own task, off every call's path, and the swap itself is
//! a pointer exchange in the registry.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use notify_debouncer_full::notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};

use crate::runtime::Runtime;

/// Why hot reload could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The operating system's file watcher could not be set up.
    #[error("cannot start the file watcher: {error}")]
    Start {
        /// What notify reported.
        error: notify_debouncer_full::notify::Error,
    },
}

/// A running watcher; dropping it stops watching.
pub struct PluginWatcher {
    _debouncer: Debouncer<notify_debouncer_full::notify::RecommendedWatcher, RecommendedCache>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for PluginWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PluginWatcher")
    }
}

impl Drop for PluginWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether a changed path can affect a plugin: `<name>.wasm` or `<name>.toml`,
/// not hidden temporary files.
fn is_plugin_file(path: &std::path::Path) -> bool {
    let hidden = path
        .file_name()
        .and_then(|name| name.to_str())
        .is_none_or(|name| name.starts_with('.'));
    !hidden
        && path
            .extension()
            .is_some_and(|ext| ext == "wasm" || ext == "toml")
}

/// Whether an event can mean new content. Opening, reading and closing a
/// file are not changes: the host reads plugin files itself when it loads
/// them, and taking those reads for changes made every load trigger the next.
fn is_change(kind: &EventKind) -> bool {
    !matches!(kind, EventKind::Access(_))
}

/// Starts watching the runtime's plugin directories. Must be called inside a
/// tokio runtime.
pub(crate) fn watch(runtime: &Runtime) -> Result<PluginWatcher, WatchError> {
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<Vec<PathBuf>>();
    let debounce = Duration::from_millis(runtime.config().watch.debounce_ms.max(1));
    let mut debouncer =
        new_debouncer(
            debounce,
            None,
            move |result: DebounceEventResult| match result {
                Ok(events) => {
                    let paths: Vec<PathBuf> = events
                        .into_iter()
                        .filter(|event| is_change(&event.event.kind))
                        .flat_map(|event| event.event.paths)
                        .collect();
                    if !paths.is_empty() {
                        let _ = sender.send(paths);
                    }
                }
                Err(errors) => {
                    for error in errors {
                        tracing::warn!("plugin directory watcher: {error}");
                    }
                }
            },
        )
        .map_err(|error| WatchError::Start { error })?;
    for dir in &runtime.config().plugin_dirs {
        if let Err(err) = debouncer.watch(dir, RecursiveMode::NonRecursive) {
            tracing::warn!(dir = %dir.display(), "cannot watch plugin directory: {err}");
        }
    }
    let runtime = runtime.clone();
    let task = tokio::spawn(async move {
        while let Some(paths) = receiver.recv().await {
            // One reload per plugin however many events its files produced;
            // a manifest change reloads its .wasm.
            let mut changed: BTreeMap<PathBuf, bool> = BTreeMap::new();
            for path in paths.into_iter().filter(|path| is_plugin_file(path)) {
                let manifest_changed = path.extension().is_some_and(|ext| ext == "toml");
                *changed.entry(path.with_extension("wasm")).or_default() |= manifest_changed;
            }
            for (path, manifest_changed) in changed {
                // A .wasm replaced by an identical copy needs no reload.
                // (A failed update that was reverted leaves no problem behind.)
                if !manifest_changed && runtime.is_current(&path) {
                    tracing::debug!(path = %path.display(), "plugin file touched, content unchanged");
                    runtime.clear_problem(&path);
                    continue;
                }
                runtime.reload_path(&path).await;
            }
        }
    });
    Ok(PluginWatcher {
        _debouncer: debouncer,
        task,
    })
}

#[cfg(test)]
mod tests {
    use super::{is_change, is_plugin_file};
    use notify_debouncer_full::notify::EventKind;
    use notify_debouncer_full::notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind};
    use std::path::Path;

    #[test]
    fn reads_of_plugin_files_are_not_changes() {
        assert!(!is_change(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(!is_change(&EventKind::Access(AccessKind::Read)));
        assert!(!is_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(is_change(&EventKind::Create(CreateKind::File)));
        assert!(is_change(&EventKind::Modify(ModifyKind::Any)));
    }

    #[test]
    fn only_plugin_files_trigger_reloads() {
        assert!(is_plugin_file(Path::new("/p/calc.wasm")));
        assert!(is_plugin_file(Path::new("/p/calc.toml")));
        assert!(!is_plugin_file(Path::new("/p/.calc.wasm.tmp")));
        assert!(!is_plugin_file(Path::new("/p/.calc.wasm")));
        assert!(!is_plugin_file(Path::new("/p/calc.wasm.part")));
        assert!(!is_plugin_file(Path::new("/p/README.md")));
    }
}
