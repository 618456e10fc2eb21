//! `syncspec report`: render saved results side by side, and `report merge`:
//! combine the shards of one load run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use syncspec_reports::report::Report;

use crate::cli::{MergeArgs, ReportArgs, ReportCommand};

pub(crate) fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    if let Some(ReportCommand::Merge(merge)) = args.command {
        return run_merge(merge);
    }
    let started = Instant::now();
    let Some(reports) = read_all(&args.results) else { return Ok(ExitCode::from(2)) };
    let report = Report::combine(reports);
    let index = crate::output::write(&report, &args.out, None)?;
    let names: Vec<&str> = report.backends.iter().map(|b| b.name.as_str()).collect();
    eprintln!(
        "rendered {} backend{} ({}) in {:.0} ms",
        names.len(),
        if names.len() == 1 { "" } else { "s" },
        names.join(", "),
        started.elapsed().as_secs_f64() * 1000.0
    );
    println!("{}", index.display());
    Ok(ExitCode::SUCCESS)
}

fn run_merge(args: MergeArgs) -> anyhow::Result<ExitCode> {
    let Some(reports) = read_all(&args.shards) else { return Ok(ExitCode::from(2)) };
    let shards: Vec<(PathBuf, Report)> = args.shards.iter().cloned().zip(reports).collect();
    let merged = match syncspec_reports::merge::merge(shards) {
        Ok(merged) => merged,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let load = merged.backends[0].load.as_ref().expect("a merge holds one load run");
    eprintln!(
        "merged {} shards of {} ({} users): sync p95 {}, {} samples",
        load.shards.held.len(),
        load.scenario,
        load.figures.users,
        syncspec_reports::assessment::ms(load.figures.sync_latency_us.p95),
        load.figures.sync_latency_us.count
    );
    let index = crate::output::write(&merged, &args.out, None)?;
    println!("{}", index.display());
    Ok(ExitCode::SUCCESS)
}

/// Reads every result, printing each one that cannot be read; `None` if any could not.
pub(crate) fn read_all(paths: &[PathBuf]) -> Option<Vec<Report>> {
    let mut reports = Vec::new();
    let mut ok = true;
    for path in paths {
        match Report::read(path) {
            Ok(r) => reports.push(r),
            Err(e) => {
                eprintln!("error: {e}");
                ok = false;
            }
        }
    }
    ok.then_some(reports)
}
