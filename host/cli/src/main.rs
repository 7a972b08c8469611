//! The `agent-host` binary: parse flags, build one validated config, run the subcommand, map errors to exit codes.

mod cli;

use std::process::ExitCode;

use clap::Parser;

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
