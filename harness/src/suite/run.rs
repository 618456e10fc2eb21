//! Running cases: selection by pattern, one case at a time with a deadline,
//! a line per case as it finishes, and the files a run leaves behind.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Case, CaseResult, Ctx};
use crate::checkers::{Evidence, Outcome};

/// The longest any one case may run.
pub const CASE_DEADLINE: Duration = Duration::from_secs(90);

/// How a run is set up.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The backend's deployment URL.
    pub url: String,
    /// Case patterns (`4.3`, `5.*`, `*`); a case runs if any matches.
    pub patterns: Vec<String>,
    /// Where `results.json` and histories go, if anywhere.
    pub out: Option<PathBuf>,
    /// Print one line per case.
    pub verbose: bool,
}

/// One case's entry in `results.json`.
#[derive(Clone, Debug, Serialize)]
pub struct CaseReport {
    /// `category.number`.
    pub id: String,
    /// One line.
    pub title: String,
    /// The guarantee it checks.
    pub guarantee: String,
    /// How it came out.
    pub outcome: Outcome,
    /// Why, when it did not pass.
    pub evidence: Vec<Evidence>,
    /// The checkers it ran: name, outcome and how much each checked.
    pub checks: Vec<CheckSummary>,
    /// Wall time.
    pub duration_ms: u64,
    /// The history file, relative to the output directory.
    pub history: Option<String>,
}

/// A checker's line in a case report.
#[derive(Clone, Debug, Serialize)]
pub struct CheckSummary {
    /// The checker.
    pub checker: String,
    /// Its outcome.
    pub outcome: Outcome,
    /// How many things it checked.
    pub checked: usize,
}

/// A whole run.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// The backend tested.
    pub backend: String,
    /// Cases that passed (Pass, Non-Strict, Info, Unimplemented count as not failed).
    pub passed: usize,
    /// Cases that failed.
    pub failed: usize,
    /// Every case run.
    pub cases: Vec<CaseReport>,
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

/// Runs one case with its deadline; a panic or a timeout is a failure.
pub async fn run_case(case: &Case, url: &str, run_tag: &str) -> (CaseResult, Ctx, Duration) {
    let ctx = Ctx::new(url, &format!("{run_tag}-{}", case.id));
    let started = Instant::now();
    let task = tokio::spawn((case.run)(ctx.clone()));
    let result = match tokio::time::timeout(CASE_DEADLINE, task).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => failure(format!("the case itself failed to run: {e}")),
        Err(_) => failure(format!("the case did not finish within {} s", CASE_DEADLINE.as_secs())),
    };
    (result, ctx, started.elapsed())
}

fn failure(message: String) -> CaseResult {
    CaseResult { outcome: Outcome::Fail, evidence: vec![Evidence { message, events: vec![] }], verdicts: vec![] }
}

/// Runs the selected cases and writes the report; returns it.
pub async fn run(cases: &[Case], config: &RunConfig) -> std::io::Result<RunReport> {
    let selected = select(cases, &config.patterns);
    let run_tag = format!(
        "ss{:x}",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis())
    );
    if let Some(out) = &config.out {
        std::fs::create_dir_all(out.join("histories"))?;
    }
    let terminal = std::io::stderr().is_terminal();
    let mut reports = Vec::new();
    for (n, case) in selected.iter().enumerate() {
        if terminal {
            eprint!("\r[{:>3}/{}] {} {:<60}", n + 1, selected.len(), case.id, case.title);
            let _ = std::io::stderr().flush();
        }
        let (result, ctx, elapsed) = run_case(case, &config.url, &run_tag).await;
        let history = match &config.out {
            Some(out) => {
                let name = format!("histories/{}.json", case.id);
                write_json(&out.join(&name), &ctx.history())?;
                Some(name)
            }
            None => None,
        };
        if terminal {
            eprint!("\r{:<80}\r", "");
        }
        if config.verbose {
            println!("{:<6} {:<14} {:>6} ms  {}", case.id, label(result.outcome), elapsed.as_millis(), case.title);
            if result.outcome == Outcome::Fail {
                for e in result.evidence.iter().take(5) {
                    println!("         {}", e.message);
                }
            }
        }
        reports.push(CaseReport {
            id: case.id.to_owned(),
            title: case.title.to_owned(),
            guarantee: case.guarantee.to_owned(),
            outcome: result.outcome,
            evidence: result.evidence,
            checks: result
                .verdicts
                .iter()
                .map(|v| CheckSummary { checker: v.checker.clone(), outcome: v.outcome, checked: v.checked })
                .collect(),
            duration_ms: elapsed.as_millis() as u64,
            history,
        });
    }
    let failed = reports.iter().filter(|r| r.outcome == Outcome::Fail).count();
    let report = RunReport { backend: config.url.clone(), passed: reports.len() - failed, failed, cases: reports };
    if let Some(out) = &config.out {
        write_json(&out.join("results.json"), &report)?;
    }
    Ok(report)
}

fn label(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Pass => "Pass",
        Outcome::NonStrict => "Non-Strict",
        Outcome::Fail => "FAIL",
        Outcome::Info => "Info",
        Outcome::Unimplemented => "Unimplemented",
    }
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
