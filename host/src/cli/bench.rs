//! `agent-host bench`: bare wasmtime versus the full agent-host call path, side by side.

use clap::Args;

use super::render::print_json;
use super::{Cli, EXIT_OK, Failure, start};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Tool to call (a trivial one measures host overhead best).
    #[arg(long, default_value = "echo")]
    pub tool: String,
    /// Arguments for each call.
    #[arg(long, default_value = r#"{"text":"hello"}"#, value_name = "JSON")]
    pub args: String,
    /// Calls per path.
    #[arg(long, default_value_t = 2000)]
    pub iterations: usize,
    #[arg(long)]
    pub json: bool,
}

pub async fn run(cli: &Cli, args: &BenchArgs) -> Result<u8, Failure> {
    let call_args: serde_json::Value = serde_json::from_str(&args.args)
        .map_err(|err| Failure::usage(anyhow::anyhow!("--args is not valid JSON: {err}")))?;
    if args.iterations == 0 {
        return Err(Failure::usage(anyhow::anyhow!(
            "--iterations must be at least 1"
        )));
    }
    let runtime = start(cli, args.json).await?;
    let report =
        agent_host::bench::compare_call_paths(&runtime, &args.tool, &call_args, args.iterations)
            .await
            .map_err(|err| Failure::usage(anyhow::anyhow!(err)))?;
    if args.json {
        print_json(&report);
        return Ok(EXIT_OK);
    }
    println!(
        "tool call '{}' (plugin {}), {} calls per path, fresh sandboxed instance each call",
        report.tool, report.plugin, report.iterations
    );
    println!(
        "{:44} {:>10} {:>10} {:>10} {:>10}",
        "path", "median us", "mean us", "p90 us", "min us"
    );
    for (name, stats) in [
        ("bare wasmtime (InstancePre+pooling+call)", &report.bare),
        ("agent-host (lookup+schema+sandbox+call)", &report.host),
    ] {
        println!(
            "{:44} {:>10.1} {:>10.1} {:>10.1} {:>10.1}",
            name, stats.median_us, stats.mean_us, stats.p90_us, stats.min_us
        );
    }
    println!(
        "ratio host/bare (median): {:.2}x (target <= 1.5x)",
        report.ratio
    );
    Ok(EXIT_OK)
}
