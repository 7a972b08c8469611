//! A spinner per plugin while it compiles (first load of a big component), only when stdout is a terminal.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_host_runtime::CompileObserver;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

#[derive(Default)]
pub struct CompileSpinners {
    bars: MultiProgress,
    active: Mutex<HashMap<String, ProgressBar>>,
}

impl CompileSpinners {
    /// Spinners for an interactive terminal; `None` when output is piped.
    pub fn for_terminal() -> Option<Arc<Self>> {
        std::io::stdout()
            .is_terminal()
            .then(|| Arc::new(Self::default()))
    }
}

impl CompileObserver for CompileSpinners {
    fn started(&self, plugin: &str) {
        let bar = self.bars.add(ProgressBar::new_spinner());
        let style = ProgressStyle::with_template("{spinner} compiling {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.set_message(plugin.to_owned());
        bar.enable_steady_tick(Duration::from_millis(100));
        self.active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(plugin.to_owned(), bar);
    }

    fn finished(&self, plugin: &str, took: Duration) {
        if let Some(bar) = self
            .active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(plugin)
        {
            bar.finish_and_clear();
            if took > Duration::from_secs(1) {
                let _ = self.bars.println(format!(
                    "compiled {plugin} in {:.1} s (cached for next time)",
                    took.as_secs_f64()
                ));
            }
        }
    }
}
