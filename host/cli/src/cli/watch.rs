//! `agent-host plugins watch`: load the plugin directories, then hot-reload on change and print each event.

use agent_host_runtime::PluginEvent;

use super::{Cli, EXIT_OK, Failure, StoreOpen, config_from, escape, start};

pub async fn run(cli: &Cli, json: bool) -> Result<u8, Failure> {
    let runtime = start(&config_from(cli)?, json, StoreOpen::Now).await?;
    let mut events = runtime.subscribe();
    let _watcher = runtime
        .watch()
        .map_err(|err| Failure::usage(anyhow::anyhow!(err)))?;
    let dirs: Vec<String> = runtime
        .config()
        .plugin_dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    if !json {
        eprintln!(
            "watching {} ({} tools loaded); Ctrl-C to stop",
            dirs.join(", "),
            runtime.tools().len()
        );
    }
    loop {
        tokio::select! {
            event = events.recv() => {
                let Ok(event) = event else { continue };
                if json {
                    outln!("{}", serde_json::to_string(&event).unwrap_or_default());
                } else {
                    match &event {
                        PluginEvent::Loaded { plugin, content_hash, .. } => {
                            let short = content_hash.get(..12).unwrap_or(content_hash);
                            outln!("loaded  {} ({short})", escape::line(plugin));
                        }
                        PluginEvent::Removed { plugin, .. } => {
                            outln!("removed {}", escape::line(plugin));
                        }
                        PluginEvent::TieredUp { plugin } => {
                            outln!("optimized {} (now on its Cranelift build)", escape::line(plugin));
                        }
                        PluginEvent::Failed { path, error } => {
                            // The error quotes what the plugin said about itself.
                            outln!(
                                "failed  {}: {} (previous version keeps serving)",
                                escape::line(&path.display().to_string()),
                                escape::line(error)
                            );
                        }
                    }
                }
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    runtime.persist_cache_stats();
    Ok(EXIT_OK)
}
