//! Running cases: selection by pattern, one case at a time with a deadline,
//! a line per case as it finishes, and the histories a run leaves behind.
//! The results become the report's `Conformance` (`syncspec_reports`).

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;
use syncspec_reports::conformance::{CaseReport, CheckSummary, Conformance, Excerpt};

use super::{Auth, Case, CaseResult, Ctx, Patience};
use crate::checkers::{Evidence, Outcome};

/// The longest any one case may run.
pub const CASE_DEADLINE: Duration = Duration::from_secs(90);
/// The longest a case may run once a wait of the run has run out. Only a
/// backstop: with the short patience every case ends well before it by
/// itself, with its own evidence (the longest, 5.2, transfers for 10 s and
/// then replays its history: about 25 s on a busy two-core machine), and one
/// that does not is stuck on something no patience governs.
pub const HURRIED_CASE_DEADLINE: Duration = Duration::from_secs(60);

/// How a run is set up.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The backend's deployment URL.
    pub url: String,
    /// Case patterns (`4.3`, `5.*`, `*`); a case runs if any matches.
    pub patterns: Vec<String>,
    /// Where the histories go (`histories/ID.json`), if anywhere.
    pub out: Option<PathBuf>,
    /// Which cases' histories are written there.
    pub histories: Histories,
    /// Print one line per case.
    pub verbose: bool,
    /// How the cases can be a caller the backend trusts.
    pub auth: Auth,
    /// How long case 10.4 keeps a socket idle.
    pub idle_for: Duration,
}

/// Which cases' histories a run writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Histories {
    /// Every case's (`syncspec check --out`).
    All,
    /// Only those of cases that did not pass (`syncspec run`: a passing
    /// concurrency case alone can record hundreds of megabytes).
    NotPassed,
}

/// Whether `id` matches `pattern` (`*` anywhere matches any run of characters).
pub fn matches(pattern: &str, id: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], s) || (!s.is_empty() && go(p, &s[1..])),
            (Some(a), Some(b)) if a == b => go(&p[1..], &s[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), id.as_bytes())
}

/// Selects the cases matching any pattern, in suite order.
pub fn select(cases: &[Case], patterns: &[String]) -> Vec<Case> {
    cases.iter().copied().filter(|c| patterns.iter().any(|p| matches(p, c.id))).collect()
}

/// Runs one case with its deadline, waiting as the run's `patience` says; a
/// panic or a timeout is a failure.
pub async fn run_case(
    case: &Case,
    config: &RunConfig,
    run_tag: &str,
    patience: &Patience,
) -> (CaseResult, Ctx, Duration) {
    let ctx = Ctx::new(config, &format!("{run_tag}-{}", case.id), patience);
    let deadline = if patience.lapses() == 0 { CASE_DEADLINE } else { HURRIED_CASE_DEADLINE };
    let started = Instant::now();
    let task = tokio::spawn((case.run)(ctx.clone()));
    // Dropping a join handle leaves its task running; a case past its
    // deadline must stop calling the backend before the next case starts.
    let stop = task.abort_handle();
    let result = match tokio::time::timeout(deadline, task).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => failure(format!("the case itself failed to run: {e}")),
        Err(_) => {
            stop.abort();
            failure(format!("the case did not finish within {} s", deadline.as_secs()))
        }
    };
    (result, ctx, started.elapsed())
}

fn failure(message: String) -> CaseResult {
    CaseResult { outcome: Outcome::Fail, evidence: vec![Evidence { message, events: vec![] }], verdicts: vec![] }
}

/// Runs the selected cases, writing each history when asked; returns the
/// results, with an excerpt of the history of every case that did not pass.
pub async fn run(cases: &[Case], config: &RunConfig) -> std::io::Result<Conformance> {
    let selected = select(cases, &config.patterns);
    let run_tag = format!(
        "ss{:x}",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis())
    );
    if let Some(out) = &config.out {
        std::fs::create_dir_all(out.join("histories"))?;
    }
    let started = Instant::now();
    let terminal = std::io::stderr().is_terminal();
    let patience = super::run_patience();
    let mut reports = Vec::new();
    for (n, case) in selected.iter().enumerate() {
        if terminal {
            eprint!("\r[{:>3}/{}] {} {:<60}", n + 1, selected.len(), case.id, case.title);
            let _ = std::io::stderr().flush();
        }
        let (result, ctx, elapsed) = run_case(case, config, &run_tag, &patience).await;
        let keep = config.histories == Histories::All || result.outcome != Outcome::Pass;
        // A copy of the history only when it is written or excerpted: a
        // concurrency case can record a million events.
        let history = if keep { ctx.history() } else { Default::default() };
        drop(ctx);
        let history_file = match &config.out {
            Some(out) if keep => {
                let name = format!("histories/{}.json", case.id);
                write_json(&out.join(&name), &history)?;
                Some(name)
            }
            _ => None,
        };
        if terminal {
            eprint!("\r{:<80}\r", "");
        }
        if config.verbose {
            println!("{:<6} {:<14} {:>6} ms  {}", case.id, result.outcome.label(), elapsed.as_millis(), case.title);
            if result.outcome == Outcome::Fail {
                for e in result.evidence.iter().take(5) {
                    println!("         {}", e.message);
                }
            }
        }
        let excerpt = (result.outcome != Outcome::Pass).then(|| {
            let named: Vec<usize> = result.evidence.iter().flat_map(|e| e.events.iter().copied()).collect();
            Excerpt::around(&history, &named)
        });
        reports.push(CaseReport {
            id: case.id.to_owned(),
            title: case.title.to_owned(),
            guarantee: case.guarantee.to_owned(),
            outcome: result.outcome,
            checks: result
                .verdicts
                .iter()
                .map(|v| CheckSummary { checker: v.checker.clone(), outcome: v.outcome, checked: v.checked })
                .collect(),
            evidence: result.evidence,
            duration_ms: elapsed.as_millis() as u64,
            history_file,
            history: excerpt,
        });
    }
    Ok(Conformance::new(super::cases::categories(), reports, started.elapsed().as_millis() as u64))
}

fn write_json(path: &Path, value: &impl Serialize) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(matches("5.*", "5.1"));
        assert!(matches("5.*", "5.12"));
        assert!(!matches("5.*", "15.1"));
        assert!(matches("*", "9.3"));
        assert!(matches("4.3", "4.3"));
        assert!(!matches("4.3", "4.31"));
    }
}
