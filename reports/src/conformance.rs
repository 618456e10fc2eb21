//! The conformance suite's results as the report keeps them: per case its
//! outcome, the evidence in words with the events it points at, the checkers
//! it ran, and for every case that did not pass an excerpt of its history
//! around those events, so a report can show the timeline around a failure
//! without the run's files (a whole history can run to hundreds of megabytes).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use syncspec_protocol::history::{Event, History};

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
    /// The history around the evidence, kept for every case that did not pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Excerpt>,
}

/// Events kept on each side of one the evidence names.
const EXCERPT_CONTEXT: usize = 20;
/// Events an excerpt keeps at most.
const EXCERPT_MAX: usize = 2_000;

/// Part of a history: the events around the ones evidence names, each with
/// its index in the whole history (evidence refers to events by that index).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Excerpt {
    /// Events in the whole history.
    pub total: usize,
    /// The events kept, in history order.
    pub events: Vec<Numbered>,
}

/// One event of an excerpt, with its index in the whole history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Numbered {
    /// Its index in the whole history.
    pub index: usize,
    /// The event.
    #[serde(flatten)]
    pub event: Event,
}

impl Excerpt {
    /// The events within a few of each named one (the last events when none
    /// is named), at most [`EXCERPT_MAX`], the earliest named first.
    pub fn around(history: &History, named: &[usize]) -> Excerpt {
        let n = history.events.len();
        let mut keep: Vec<usize> = if named.is_empty() {
            (n.saturating_sub(EXCERPT_CONTEXT * 10)..n).collect()
        } else {
            let mut named = named.to_vec();
            named.sort_unstable();
            named.iter().flat_map(|i| i.saturating_sub(EXCERPT_CONTEXT)..(i + EXCERPT_CONTEXT + 1).min(n)).collect()
        };
        keep.sort_unstable();
        keep.dedup();
        keep.truncate(EXCERPT_MAX);
        Excerpt {
            total: n,
            events: keep.into_iter().map(|index| Numbered { index, event: history.events[index].clone() }).collect(),
        }
    }

    /// The event at `index` of the whole history, if kept.
    pub fn get(&self, index: usize) -> Option<&Event> {
        self.events.binary_search_by_key(&index, |e| e.index).ok().map(|i| &self.events[i].event)
    }
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
    /// Cases that were asked and did not fail (Pass, Non-Strict and Info).
    pub passed: usize,
    /// Cases the backend could not be asked (Unimplemented): neither passed
    /// nor failed. Absent from reports written before it was counted apart.
    #[serde(default)]
    pub unimplemented: usize,
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
        let unimplemented = cases.iter().filter(|c| c.outcome == Outcome::Unimplemented).count();
        let passed = cases.len() - failed - unimplemented;
        Conformance { passed, unimplemented, failed, duration_ms, categories, cases }
    }

    /// The case with this id.
    pub fn case(&self, id: &str) -> Option<&CaseReport> {
        self.cases.iter().find(|c| c.id == id)
    }

    /// The headline: `70 passed, 2 unimplemented, 0 failed`.
    pub fn summary(&self) -> String {
        format!("{} passed, {} unimplemented, {} failed", self.passed, self.unimplemented, self.failed)
    }

    /// How many cases came out as `outcome`.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.cases.iter().filter(|c| c.outcome == outcome).count()
    }
}

#[cfg(test)]
mod tests {
    use syncspec_protocol::history::{EventKind, History};

    use super::*;

    fn history(n: usize) -> History {
        let events = (0..n)
            .map(|i| Event { client: 0, at_us: i as u64, kind: EventKind::Resolved { request_id: i as u32 } })
            .collect();
        History { events }
    }

    #[test]
    fn an_excerpt_keeps_the_named_events_with_their_indices_and_context() {
        let h = history(10_000);
        let e = Excerpt::around(&h, &[5_000, 9_999]);
        assert_eq!(e.total, 10_000);
        assert_eq!(e.events.len(), 41 + 21);
        assert_eq!(e.get(5_000), Some(&h.events[5_000]));
        assert_eq!(e.get(4_980).map(|e| e.at_us), Some(4_980));
        assert_eq!(e.get(4_979), None);
        let round: Excerpt = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(round, e);
    }

    #[test]
    fn unimplemented_cases_count_neither_as_passed_nor_as_failed() {
        let case = |id: &str, outcome| CaseReport {
            id: id.to_owned(),
            title: String::new(),
            guarantee: String::new(),
            outcome,
            evidence: vec![],
            checks: vec![],
            duration_ms: 0,
            history_file: None,
            history: None,
        };
        let outcomes = [Outcome::Pass, Outcome::NonStrict, Outcome::Info, Outcome::Unimplemented, Outcome::Fail];
        let cases = outcomes.into_iter().enumerate().map(|(i, o)| case(&format!("1.{i}"), o)).collect();
        let c = Conformance::new(BTreeMap::new(), cases, 0);
        assert_eq!((c.passed, c.unimplemented, c.failed), (3, 1, 1));
        assert_eq!(c.summary(), "3 passed, 1 unimplemented, 1 failed");
    }

    #[test]
    fn an_excerpt_is_bounded() {
        let h = history(1_000_000);
        let named: Vec<usize> = (0..1_000_000).step_by(10).collect();
        let e = Excerpt::around(&h, &named);
        assert_eq!(e.events.len(), EXCERPT_MAX);
        assert_eq!(Excerpt::around(&h, &[]).events.len(), EXCERPT_CONTEXT * 10);
    }
}
