//! `syncspec run`, the main job: against the embedded reference server and
//! every `--target`, the conformance suite, the standard load mix, the cursor
//! rate sweep and (for the reference) the model check; then one report with
//! the reference as the first column. Each phase says what it does as it
//! starts and what it found as it ends; the last line is the HTML report's path.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use syncspec::suite::run::{Histories, RunConfig};
use syncspec::suite::Auth;
use syncspec_reports::assessment::{group, Assessment, Mark};
use syncspec_reports::report::{Backend, Report};
use syncspec_scenarios::{Kind, LoadConfig, ScenarioName, Schedule, Shard};

use crate::cli::{Phase, RunArgs};

pub(crate) fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let patterns = crate::check::patterns(&args.cases)?;
    let phases: BTreeSet<Phase> = args.phases.iter().copied().collect();
    anyhow::ensure!(!phases.is_empty(), "--phases names no phase; expected some of conformance, load, sweep, model");
    if let Some(bad) = args.sweep.iter().find(|r| !(**r > 0.0 && **r <= 1000.0)) {
        anyhow::bail!("--sweep rates must be above 0 and at most 1000 Hz, got {bad}");
    }
    let runtime = tokio::runtime::Runtime::new().context("while starting the tokio runtime")?;
    runtime.block_on(async {
        // Each backend: its URL, whether it is the reference, and how the suite is a caller it trusts.
        let mut backends: Vec<(String, bool, Auth)> = Vec::new();
        let _stop = if args.no_reference {
            None
        } else {
            let reference = crate::embedded::suite_target(None, BTreeSet::new(), Auth::None)?;
            backends.push((reference.url, true, reference.auth));
            reference.stop
        };
        let given = args.suite.auth();
        for target in &args.targets {
            let url = target.trim_end_matches('/').to_owned();
            if backends.iter().any(|(seen, _, _)| *seen == url) {
                eprintln!("error: --target {url} is given twice");
                return Ok(ExitCode::from(2));
            }
            status("Checking", &format!("that {url} answers the sync protocol"));
            if let Err(e) = crate::check::reachable(&url).await {
                eprintln!("error: {url} is unreachable: {e}");
                return Ok(ExitCode::from(2));
            }
            backends.push((url, false, given.clone()));
        }
        let steps: usize = backends
            .iter()
            .map(|(_, reference, _)| phases.iter().filter(|p| **p != Phase::Model || *reference).count())
            .sum();
        let mut plan = Plan { step: 0, steps, started: Instant::now() };
        let mut columns = Vec::new();
        for (url, reference, auth) in &backends {
            let mut column = crate::column::new(url, reference.then_some(&[][..])).await;
            let relative = Path::new("backends").join(column.slug());
            let dir = args.out.join(&relative);
            let suite = RunConfig {
                url: url.clone(),
                patterns: patterns.clone(),
                out: Some(dir.clone()),
                histories: Histories::NotPassed,
                verbose: false,
                auth: auth.clone(),
                idle_for: args.suite.idle_for,
            };
            run_backend(&args, &phases, &suite, &mut plan, &mut column, &dir).await?;
            // History files are named relative to the report's directory.
            for case in column.conformance.iter_mut().flat_map(|c| c.cases.iter_mut()) {
                if let Some(file) = case.history_file.take() {
                    case.history_file = Some(relative.join(file).to_string_lossy().into_owned());
                }
            }
            columns.push(column);
        }
        let report = Report::new(columns);
        let index = crate::output::write(&report, &args.out, None)?;
        eprintln!();
        let mut failed = false;
        for b in &report.backends {
            let v = Assessment::of(b);
            failed |= v.conformance == Mark::Bad || v.model == Mark::Bad;
            eprintln!("{}:", b.name);
            for (what, mark, text) in [
                ("correct", v.conformance, &v.conformance_text),
                ("latency", v.latency, &v.latency_text),
                ("rate", v.rate, &v.rate_text),
                ("model", v.model, &v.model_text),
            ] {
                let sign = match mark {
                    Mark::Good => "✓",
                    Mark::Bad => "✗",
                    Mark::Absent => "-",
                };
                eprintln!("  {sign} {what:<8} {text}");
            }
        }
        status(
            "Finished",
            &format!("in {:.0} s; report.json, report.md and junit.xml beside", plan.started.elapsed().as_secs_f64()),
        );
        println!("{}", index.display());
        // A phase that could not run is "could not run", even where another failed.
        Ok(if report.backends.iter().any(|b| !b.problems.is_empty()) {
            ExitCode::from(2)
        } else if failed {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        })
    })
}

/// Where the run is, for the phase lines.
struct Plan {
    step: usize,
    steps: usize,
    started: Instant,
}

impl Plan {
    fn begin(&mut self, phase: &str, backend: &str, what: &str) -> Instant {
        use std::io::IsTerminal as _;
        self.step += 1;
        let (bold, plain) = if std::io::stderr().is_terminal() { ("\x1b[1m", "\x1b[0m") } else { ("", "") };
        eprintln!("{bold}[{}/{}] {phase}{plain} · {backend} · {what}", self.step, self.steps);
        Instant::now()
    }
}

/// A cargo-style status line.
fn status(word: &str, text: &str) {
    eprintln!("{word:>12} {text}");
}

async fn run_backend(
    args: &RunArgs,
    phases: &BTreeSet<Phase>,
    suite: &RunConfig,
    plan: &mut Plan,
    column: &mut Backend,
    dir: &Path,
) -> anyhow::Result<()> {
    let name = column.name.clone();
    let url = column.url.clone();
    if phases.contains(&Phase::Conformance) {
        let started = plan.begin("conformance", &name, "every numbered case");
        let c = crate::check::conformance(suite).await?;
        let failed: Vec<&str> = c
            .cases
            .iter()
            .filter(|c| c.outcome == syncspec_reports::conformance::Outcome::Fail)
            .map(|c| c.id.as_str())
            .collect();
        status(
            "Judged",
            &format!(
                "{}{} in {:.1} s",
                c.summary(),
                if failed.is_empty() { String::new() } else { format!(" ({})", failed.join(", ")) },
                started.elapsed().as_secs_f64()
            ),
        );
        column.conformance = Some(c);
    }
    if phases.contains(&Phase::Load) {
        let started = plan.begin(
            "load",
            &name,
            &format!("the standard mix, {} clients for {}", args.users, crate::cli::show_duration(args.run_time)),
        );
        let config = load_config(&url, ScenarioName::Mix, args.users, args.run_time, dir.join("load"));
        match syncspec_scenarios::run(&config).await {
            Ok(result) => {
                status(
                    "Measured",
                    &format!(
                        "sync p95 {} over {} samples, {} errors, {} missing, in {:.0} s",
                        syncspec_reports::assessment::ms(result.figures.sync_latency_us.p95),
                        group(result.figures.sync_latency_us.count as f64),
                        result.figures.errors,
                        result.figures.updates_missing,
                        started.elapsed().as_secs_f64()
                    ),
                );
                column.load = Some(result);
            }
            Err(e) => {
                status("Failed", &format!("the load run could not run: {e}"));
                column.problems.push(format!("the load run could not run: {e}"));
            }
        }
    }
    if phases.contains(&Phase::Sweep) {
        let rates: Vec<String> = args.sweep.iter().map(|r| r.to_string()).collect();
        let started = plan.begin(
            "sweep",
            &name,
            &format!(
                "{} cursor clients at {} Hz, {} a step",
                args.sweep_users,
                rates.join(", "),
                crate::cli::show_duration(args.sweep_time)
            ),
        );
        let config =
            load_config(&url, ScenarioName::Only(Kind::Cursors), args.sweep_users, args.sweep_time, dir.join("sweep"));
        match syncspec_scenarios::sweep(&config, &args.sweep).await {
            Ok((sweep, _)) => {
                status(
                    "Measured",
                    &format!(
                        "highest accepted {:.2} per user per second in {:.0} s",
                        sweep.highest_accepted().unwrap_or(0.0),
                        started.elapsed().as_secs_f64()
                    ),
                );
                column.sweep = Some(sweep);
            }
            Err(e) => {
                status("Failed", &format!("the sweep could not run: {e}"));
                column.problems.push(format!("the sweep could not run: {e}"));
            }
        }
    }
    if phases.contains(&Phase::Model) && column.reference {
        let started = plan.begin("model check", &name, "every interleaving of the standard configurations");
        let check = tokio::task::spawn_blocking(|| crate::model::check_all(&BTreeSet::new(), |_| {})).await?;
        status(
            "Explored",
            &format!(
                "{} of {} properties hold over {} states in {:.1} s",
                check.checked() - check.failed(),
                check.checked(),
                group(check.unique_states() as f64),
                started.elapsed().as_secs_f64()
            ),
        );
        column.model = Some(check);
    }
    Ok(())
}

fn load_config(
    url: &str,
    scenario: ScenarioName,
    users: usize,
    run_time: std::time::Duration,
    out: PathBuf,
) -> LoadConfig {
    LoadConfig {
        scenario,
        url: url.to_owned(),
        users,
        // Cursor moves per client per second: the rate limit, as `load --rate` defaults to.
        rate_hz: 20.0,
        run_time,
        increase_rate: 500.0,
        shard: Shard::WHOLE,
        out: Some(out),
        // goose's own tables repeat what the report shows.
        goose_args: vec!["--no-print-metrics".to_owned()],
        progress: true,
        schedule: Schedule::Open,
        auth: None,
    }
}
