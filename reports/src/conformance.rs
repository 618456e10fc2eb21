//! The conformance suite's results as the report keeps them: per case its
//! outcome, the evidence in words with the events it points at, the checkers
//! it ran, and for every case that did not pass its whole history, so a
//! report can show the timeline around a failure without the run's files.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use syncspec_protocol::history::History;

/// How a case or check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Outcome {
    /// Executed and passed.
    Pass,
    /// Conformant but ignored a should-level behaviour.
    NonStrict,
    /// Broke a guarantee.
    Fail,
    /// Behaviour the protocol leaves open, reported for information.
    Info,
    /// The backend lacks the feature the case needs.
    Unimplemented,
}

impl Outcome {
    /// The label a table shows (Autobahn's words).
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Pass => "Pass",
            Outcome::NonStrict => "Non-Strict",
            Outcome::Fail => "FAIL",
            Outcome::Info => "Info",
            Outcome::Unimplemented => "Unimplemented",
        }
    }

    /// A lowercase name for CSS classes and expressions.
    pub fn slug(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::NonStrict => "non-strict",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
            Outcome::Unimplemented => "unimplemented",
        }
    }
}

/// One piece of evidence: what is wrong, and the events that show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// What was expected and what came.
    pub message: String,
    /// Indices into the case's history events.
    pub events: Vec<usize>,
}

/// A checker's line in a case report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckSummary {
    /// The checker.
    pub checker: String,
    /// Its outcome.
    pub outcome: Outcome,
    /// How many things it checked.
    pub checked: usize,
}

/// One case's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    /// The history file written beside the report, relative to its directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_file: Option<String>,
    /// The whole history, kept for every case that did not pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<History>,
}

impl CaseReport {
    /// The category number, from the id.
    pub fn category(&self) -> u32 {
        self.id.split('.').next().and_then(|c| c.parse().ok()).unwrap_or(0)
    }
}

/// A whole conformance run against one backend.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Conformance {
    /// Cases that did not fail (Pass, Non-Strict, Info and Unimplemented).
    pub passed: usize,
    /// Cases that failed.
    pub failed: usize,
    /// Wall time of the whole suite.
    pub duration_ms: u64,
    /// Category names by number.
    pub categories: BTreeMap<u32, String>,
    /// Every case run, in suite order.
    pub cases: Vec<CaseReport>,
}

impl Conformance {
    /// Builds the totals from the cases.
    pub fn new(categories: BTreeMap<u32, String>, cases: Vec<CaseReport>, duration_ms: u64) -> Conformance {
        let failed = cases.iter().filter(|c| c.outcome == Outcome::Fail).count();
        Conformance { passed: cases.len() - failed, failed, duration_ms, categories, cases }
    }

    /// The case with this id.
    pub fn case(&self, id: &str) -> Option<&CaseReport> {
        self.cases.iter().find(|c| c.id == id)
    }

    /// How many cases came out as `outcome`.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.cases.iter().filter(|c| c.outcome == outcome).count()
    }
}
