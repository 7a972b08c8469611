//! `agent-host cache stats | verify | clear`.

use clap::Subcommand;
use serde_json::json;

use agent_host_runtime::Runtime;
use agent_host_runtime::cache::CacheStatsSnapshot;

use super::render::print_json;
use super::{Cli, EXIT_OK, Failure, StoreOpen, config_from, start};

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Entries, bytes, hits and misses per level, hit rate, evictions, compile time spent and saved.
    Stats {
        #[arg(long)]
        json: bool,
    },
    /// Hash every compiled artifact against the record written with it; delete the ones that fail.
    #[command(
        long_about = "Hash every compiled artifact against the record written with it and delete the ones that fail \
(the next load recompiles them). Loading checks an artifact's bytes when it is written and whenever the file's \
identity (device, inode, size, mtime, ctime) has changed since its last check, so any write to it is caught; \
this scrub also finds what no write explains (bits rotting in place). Exit status 1 when any failed."
    )]
    Verify {
        #[arg(long)]
        json: bool,
    },
    /// Delete every compiled artifact and cached tool spec; the next load recompiles.
    Clear,
}

pub async fn run(cli: &Cli, command: &CacheCommand) -> Result<u8, Failure> {
    match command {
        CacheCommand::Stats { json } => stats(cli, *json).await,
        CacheCommand::Verify { json } => verify(cli, *json),
        CacheCommand::Clear => clear(cli),
    }
}

fn verify(cli: &Cli, json: bool) -> Result<u8, Failure> {
    let runtime = Runtime::new(config_from(cli)?.runtime).map_err(Failure::usage)?;
    let (checked, deleted) = runtime.verify_cache();
    if json {
        print_json(&json!({ "checked": checked, "deleted": deleted }));
    } else if deleted.is_empty() {
        outln!("{checked} artifact(s) checked, all intact");
    } else {
        outln!(
            "{checked} artifact(s) checked; {} failed and were deleted (they recompile on next use): {}",
            deleted.len(),
            deleted.join(", ")
        );
    }
    Ok(if deleted.is_empty() {
        EXIT_OK
    } else {
        super::EXIT_TOOL
    })
}

async fn stats(cli: &Cli, json: bool) -> Result<u8, Failure> {
    // Loading the plugin directories is itself a use of the cache: the
    // "this run" column shows what a start-up costs right now.
    let runtime = start(&config_from(cli)?, true, StoreOpen::Now).await?;
    let run = runtime.cache_stats();
    runtime.persist_cache_stats();
    let total = runtime.cache_totals();
    // Which build each plugin would run now: its cached tier.
    let tiers: Vec<(String, Option<agent_host_runtime::Tier>)> = runtime
        .plugins()
        .iter()
        .map(|plugin| (plugin.name().to_owned(), runtime.best_tier(plugin)))
        .collect();
    if json {
        let tiers: serde_json::Map<String, serde_json::Value> = tiers
            .iter()
            .map(|(name, tier)| (name.clone(), json!(tier)))
            .collect();
        print_json(&json!({
            "this_run": with_rate(&run), "all_runs": with_rate(&total),
            "artifact_dir": runtime.store().dir().join("artifacts"),
            "tiers": tiers,
        }));
        return Ok(EXIT_OK);
    }
    outln!("{:24} {:>14} {:>14}", "", "this run", "all runs");
    let rows: [(&str, String, String); 12] = [
        (
            "memory entries",
            run.memory_entries.to_string(),
            total.memory_entries.to_string(),
        ),
        (
            "memory bytes",
            run.memory_bytes.to_string(),
            total.memory_bytes.to_string(),
        ),
        (
            "disk entries",
            run.disk_entries.to_string(),
            total.disk_entries.to_string(),
        ),
        (
            "disk bytes",
            run.disk_bytes.to_string(),
            total.disk_bytes.to_string(),
        ),
        (
            "memory hits",
            run.memory_hits.to_string(),
            total.memory_hits.to_string(),
        ),
        (
            "memory misses",
            run.memory_misses.to_string(),
            total.memory_misses.to_string(),
        ),
        (
            "disk hits",
            run.disk_hits.to_string(),
            total.disk_hits.to_string(),
        ),
        (
            "disk misses (compiles)",
            run.disk_misses.to_string(),
            total.disk_misses.to_string(),
        ),
        (
            "hit rate",
            format!("{:.1}%", run.hit_rate() * 100.0),
            format!("{:.1}%", total.hit_rate() * 100.0),
        ),
        (
            "evictions",
            run.evictions.to_string(),
            total.evictions.to_string(),
        ),
        (
            "compile time spent",
            format!("{:.1} ms", run.compile_ms),
            format!("{:.1} ms", total.compile_ms),
        ),
        (
            "compile time saved",
            format!("{:.1} ms", run.saved_ms),
            format!("{:.1} ms", total.saved_ms),
        ),
    ];
    for (name, this_run, all) in rows {
        outln!("{name:24} {this_run:>14} {all:>14}");
    }
    if !tiers.is_empty() {
        let shown: Vec<String> = tiers
            .iter()
            .map(|(name, tier)| {
                format!(
                    "{} {}",
                    super::escape::line(name),
                    tier.map_or("not compiled", |tier| tier.label())
                )
            })
            .collect();
        outln!("\ncached build per plugin: {}", shown.join(", "));
    }
    Ok(EXIT_OK)
}

fn with_rate(stats: &CacheStatsSnapshot) -> serde_json::Value {
    let mut value = serde_json::to_value(stats).unwrap_or_default();
    value["hit_rate"] = json!(stats.hit_rate());
    value
}

fn clear(cli: &Cli) -> Result<u8, Failure> {
    let runtime = Runtime::new(config_from(cli)?.runtime).map_err(Failure::usage)?;
    runtime
        .clear_cache()
        .map_err(|err| Failure::usage(anyhow::anyhow!("cannot clear the cache: {err}")))?;
    outln!(
        "cache cleared ({})",
        runtime.store().dir().join("artifacts").display()
    );
    Ok(EXIT_OK)
}
