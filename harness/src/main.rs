//! The `syncspec` binary: parses the command line and runs one subcommand.
//!
//! Exit codes: 0 all good, 1 a check or gate failed, 2 could not run.

mod check;
mod cli;
mod column;
mod embedded;
mod gate;
mod load;
mod model;
mod output;
mod report;
mod run;
mod serve;

use std::process::ExitCode;

use clap::Parser as _;

/// The server allocates many small short-lived values (frames, keys,
/// values); mimalloc serves those markedly faster than the system allocator
/// (see `reference-server/benches/core.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // `serve` says where it listens and what it did; other commands keep
    // stdout and stderr for their own report.
    let default_filter = match cli.command {
        cli::Command::Serve(_) => "warn,syncspec_server=info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        cli::Command::Serve(args) => serve::run(args),
        cli::Command::Check(args) => check::run(args),
        cli::Command::Model(args) => model::run(args),
        cli::Command::Load(args) => load::run(args),
        cli::Command::Run(args) => run::run(args),
        cli::Command::Report(args) => report::run(args),
        cli::Command::Gate(args) => gate::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
