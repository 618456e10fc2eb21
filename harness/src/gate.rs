//! `syncspec gate`: judge a saved result against threshold rules and,
//! optionally, a baseline; print each rule with what was observed, as k6
//! does, and exit 1 on any failure.

use std::process::ExitCode;

use syncspec_reports::gate;
use syncspec_reports::report::Report;

use crate::cli::GateArgs;

pub(crate) fn run(args: GateArgs) -> anyhow::Result<ExitCode> {
    if args.thresholds.is_empty() && args.baseline.is_none() {
        eprintln!("error: nothing to judge; give --threshold EXPR (e.g. 'sync.p95<50ms') or --baseline FILE");
        return Ok(ExitCode::from(2));
    }
    let mut thresholds = Vec::new();
    for expr in &args.thresholds {
        match gate::parse(expr) {
            Ok(t) => thresholds.push(t),
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(2));
            }
        }
    }
    let max_regression = match gate::parse_fraction(&args.max_regression) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: --max-regression: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let report = match Report::read(&args.result) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let mut results = match gate::evaluate(&report, &thresholds, args.backend.as_deref()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    if let Some(path) = &args.baseline {
        let baseline = match Report::read(path) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: baseline: {e}");
                return Ok(ExitCode::from(2));
            }
        };
        match gate::regression(&report, &baseline, max_regression, args.backend.as_deref()) {
            Ok(r) => results.extend(r),
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(2));
            }
        }
    }
    print!("{}", gate::render(&results));
    if let Some(path) = &args.junit {
        // The JUnit file speaks of the backends judged.
        let mut judged = report.clone();
        if let Some(name) = &args.backend {
            judged.backends.retain(|b| &b.name == name);
        }
        let text = syncspec_reports::junit::render(&judged, Some(&results));
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("error: {}: {e}", path.display());
            return Ok(ExitCode::from(2));
        }
    }
    Ok(if results.iter().all(|r| r.passed) { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
