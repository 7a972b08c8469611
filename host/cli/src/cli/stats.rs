//! `agent-host stats`: extension hook counters summed over every run, plus a cache summary.

use clap::Args;
use serde_json::json;

use agent_host_runtime::hooks::HookStatsRow;
use agent_host_runtime::store::DataStore;

use super::escape;
use super::render::print_json;
use super::{Cli, EXIT_OK, Failure, config_from};

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Print one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cli: &Cli, args: &StatsArgs) -> Result<u8, Failure> {
    // Only the store is opened (no engine, no plugins): the numbers are
    // what earlier runs saved.
    let config = config_from(cli)?;
    let store = DataStore::open(&config.runtime.data_dir).map_err(Failure::usage)?;
    let hooks = store.hook_totals();
    let cache = store.cache_totals();
    if args.json {
        print_json(&json!({ "hooks": hooks, "cache": cache }));
        return Ok(EXIT_OK);
    }
    print_hooks(&hooks);
    outln!();
    outln!(
        "cache: {} memory hits, {} disk hits, {} compiles ({:.1} s compiling, about {:.1} s saved); `agent-host cache stats` has more",
        cache.memory_hits,
        cache.disk_hits,
        cache.compiles,
        cache.compile_ms / 1e3,
        cache.saved_ms / 1e3,
    );
    Ok(EXIT_OK)
}

/// The hook counters as a table (also `/stats` in `chat`, for this process).
pub fn print_hooks(rows: &[HookStatsRow]) {
    if rows.is_empty() {
        outln!(
            "hooks: no extension has been called yet (extensions are plugins of the extension-plugin world)"
        );
        return;
    }
    outln!(
        "{:20} {:20} {:>8} {:>8} {:>8} {:>9} {:>10} {:>8} {:>8}",
        "extension",
        "hook",
        "calls",
        "skipped",
        "dropped",
        "coalesced",
        "time ms",
        "failed",
        "disabled"
    );
    for row in rows {
        let c = &row.counters;
        outln!(
            "{:20} {:20} {:>8} {:>8} {:>8} {:>9} {:>10.1} {:>8} {:>8}",
            escape::line(&row.extension),
            row.point.as_str(),
            c.calls,
            c.skipped,
            c.dropped,
            c.coalesced,
            c.time_us as f64 / 1e3,
            c.failures,
            c.disabled
        );
    }
}
