//! `syncspec check`: run the conformance suite and report.

use std::process::ExitCode;

use anyhow::Context as _;
use syncspec::suite::{cases, run};
use syncspec_protocol::client::{Client, Options, Patience};
use syncspec_protocol::history::Recorder;
use syncspec_reports::conformance::Conformance;
use syncspec_reports::report::Report;

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
    let patterns = patterns(&args.cases)?;
    let runtime = tokio::runtime::Runtime::new().context("while starting the tokio runtime")?;
    runtime.block_on(async {
        let tested = crate::embedded::suite_target(args.target.as_deref(), faults, args.suite.auth())?;
        let url = tested.url.clone();
        // Unreachable is "could not run" (2), not a failed check.
        if let Err(e) = reachable(&url).await {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
        println!("syncspec check against {url}");
        let config = run::RunConfig {
            url: url.clone(),
            patterns,
            out: args.out.clone(),
            histories: run::Histories::All,
            verbose: true,
            auth: tested.auth.clone(),
            idle_for: args.suite.idle_for,
        };
        let conformance = conformance(&config).await?;
        println!("{}", conformance.summary());
        let failed = conformance.failed;
        if let Some(out) = &args.out {
            let embedded = args.target.is_none().then_some(args.faults.as_slice());
            let mut backend = crate::column::new(&url, embedded).await;
            backend.conformance = Some(conformance);
            let index = crate::output::write(&Report::new(vec![backend]), out, None)?;
            println!("report in {}", index.display());
        }
        Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
    })
}

/// The case patterns to run (all by default), refused when none matches.
pub(crate) fn patterns(given: &[String]) -> anyhow::Result<Vec<String>> {
    let patterns = if given.is_empty() { vec!["*".to_owned()] } else { given.to_vec() };
    if run::select(&cases::all(), &patterns).is_empty() {
        anyhow::bail!("no case matches {patterns:?}; `syncspec check --list` shows the ids");
    }
    Ok(patterns)
}

/// Whether the target answers the sync protocol at all.
pub(crate) async fn reachable(url: &str) -> Result<(), String> {
    let probe = Options {
        url: url.to_owned(),
        client: 0,
        recorder: Recorder::new(),
        reconnect: false,
        patience: Patience::fixed(std::time::Duration::from_secs(5)),
    };
    Client::connect(probe).await.map(|_| ()).map_err(|e| e.to_string())
}

/// Runs the selected cases as `config` says, writing histories under its `out`.
pub(crate) async fn conformance(config: &run::RunConfig) -> anyhow::Result<Conformance> {
    run::run(&cases::all(), config).await.context("while writing the histories")
}
