//! The `agent-host` binary: parse flags, build one validated config, run the subcommand, map errors to exit codes.

mod cli;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc rather than glibc's malloc: with many calls on both cores at
/// once (an MCP server under load) glibc's arenas contend; mimalloc nearly
/// doubled the concurrent MCP HTTP throughput (docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_logging(args.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(cli::EXIT_USAGE);
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            // Errors quote plugin, model and manifest text; lines stay,
            // control characters are shown escaped.
            let message = format!("{:#}", failure.error);
            eprintln!("error: {}", cli::escape::text(&message));
            ExitCode::from(failure.code)
        }
    }
}
