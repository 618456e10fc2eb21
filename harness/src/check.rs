//! `syncspec check`: run the conformance suite and report.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use syncspec::suite::{cases, run, Auth};
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
        let given =
            crate::embedded::given_auth(args.auth_secret.as_deref(), args.auth_token.as_deref(), &args.auth_issuer);
        let tested = crate::embedded::suite_target(args.target.as_deref(), faults, given)?;
        let url = tested.url.clone();
        // Unreachable is "could not run" (2), not a failed check.
        if let Err(e) = reachable(&url).await {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
        println!("syncspec check against {url}");
        let suite = Suite { auth: tested.auth.clone(), idle_for: args.idle_for };
        let conformance = conformance(&url, &patterns, args.out.as_deref(), run::Histories::All, true, &suite).await?;
        println!("{} passed, {} failed", conformance.passed, conformance.failed);
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

/// What the cases need to know about one target beyond its URL.
pub(crate) struct Suite {
    /// How to be a caller the target trusts.
    pub(crate) auth: Auth,
    /// How long case 10.4 keeps a socket idle.
    pub(crate) idle_for: Duration,
}

/// Runs the selected cases against `url`, writing histories under `out`.
pub(crate) async fn conformance(
    url: &str,
    patterns: &[String],
    out: Option<&Path>,
    histories: run::Histories,
    verbose: bool,
    suite: &Suite,
) -> anyhow::Result<Conformance> {
    let config = run::RunConfig {
        url: url.to_owned(),
        patterns: patterns.to_vec(),
        out: out.map(Path::to_owned),
        histories,
        verbose,
        auth: suite.auth.clone(),
        idle_for: suite.idle_for,
    };
    run::run(&cases::all(), &config).await.context("while writing the histories")
}
