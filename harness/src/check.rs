//! `syncspec check`: run the conformance suite and report.

use std::process::ExitCode;

use anyhow::Context as _;
use syncspec::suite::{cases, run};
use syncspec_protocol::client::{Client, Options};
use syncspec_protocol::history::Recorder;

use crate::cli::CheckArgs;

pub(crate) fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let all = cases::all();
    if args.list {
        for case in &all {
            println!("{:<6} {}  [{}]", case.id, case.title, case.guarantee);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let faults = crate::cli::parse_faults(&args.faults).map_err(anyhow::Error::msg)?;
    let patterns = if args.cases.is_empty() { vec!["*".to_owned()] } else { args.cases.clone() };
    if run::select(&all, &patterns).is_empty() {
        anyhow::bail!("no case matches {patterns:?}; `syncspec check --list` shows the ids");
    }
    let runtime = tokio::runtime::Runtime::new().context("while starting the tokio runtime")?;
    runtime.block_on(async {
        let (url, _stop) = crate::embedded::target_or_start(args.target.as_deref(), faults)?;
        // Unreachable is "could not run" (2), not a failed check.
        let probe = Options {
            url: url.clone(),
            client: 0,
            recorder: Recorder::new(),
            reconnect: false,
            patience: std::time::Duration::from_secs(5),
        };
        if let Err(e) = Client::connect(probe).await {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
        println!("syncspec check against {url}");
        let config = run::RunConfig { url: url.clone(), patterns, out: args.out.clone(), verbose: true };
        let report = run::run(&all, &config).await.context("while writing the results")?;
        println!("{} passed, {} failed", report.passed, report.failed);
        Ok(if report.failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
    })
}
