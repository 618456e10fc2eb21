//! `syncspec gate`: judge a saved result against threshold rules and,
//! optionally, a baseline; print each rule with what was observed, as k6
//! does, and exit 1 on any failure.

use std::process::ExitCode;

use syncspec_reports::gate;
use syncspec_reports::report::Report;

use crate::cli::GateArgs;

pub(crate) fn run(args: GateArgs) -> anyhow::Result<ExitCode> {
    match judge(&args) {
        Ok(passed) => Ok(if passed { ExitCode::SUCCESS } else { ExitCode::from(1) }),
        // A bad rule, an unreadable file: could not judge.
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(2))
        }
    }
}

/// Judges and prints every rule; whether all held, or why nothing could be judged.
fn judge(args: &GateArgs) -> Result<bool, String> {
    if args.thresholds.is_empty() && args.baseline.is_none() {
        return Err("nothing to judge; give --threshold EXPR (e.g. 'sync.p95<50ms') or --baseline FILE".to_owned());
    }
    let thresholds = args
        .thresholds
        .iter()
        .map(|expr| gate::parse(expr))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let max_regression = gate::parse_fraction(&args.max_regression).map_err(|e| format!("--max-regression: {e}"))?;
    let report = Report::read(&args.result).map_err(|e| e.to_string())?;
    let mut results = gate::evaluate(&report, &thresholds, args.backend.as_deref()).map_err(|e| e.to_string())?;
    if let Some(path) = &args.baseline {
        let baseline = Report::read(path).map_err(|e| format!("baseline: {e}"))?;
        let regressions =
            gate::regression(&report, &baseline, max_regression, args.backend.as_deref()).map_err(|e| e.to_string())?;
        results.extend(regressions);
    }
    print!("{}", gate::render(&results));
    if let Some(path) = &args.junit {
        // The JUnit file speaks of the backends judged.
        let mut judged = report.clone();
        if let Some(name) = &args.backend {
            judged.backends.retain(|b| &b.name == name);
        }
        let text = syncspec_reports::junit::render(&judged, Some(&results));
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(results.iter().all(|r| r.passed))
}
