//! Running a model check and reporting it: states explored, depth, time,
//! and each property's result with its trace, as data.

use std::time::{Duration, Instant};

use stateright::{Checker, Expectation, Model};

use crate::sync::SyncModel;

/// One property's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PropertyResult {
    /// The property's name.
    pub name: &'static str,
    /// `always` or `sometimes`.
    pub kind: &'static str,
    /// Whether it held (an `always` with no counterexample, a `sometimes` with an example).
    pub holds: bool,
    /// The shortest path to the counterexample (or, for `sometimes`, the example).
    pub trace: Option<Vec<String>>,
}

/// One configuration's check.
#[derive(Clone, Debug)]
pub struct ModelReport {
    /// The configuration's name.
    pub name: String,
    /// States visited, counting repeats.
    pub states: usize,
    /// Distinct states.
    pub unique_states: usize,
    /// The longest path explored.
    pub max_depth: usize,
    /// Wall time.
    pub elapsed: Duration,
    /// Every property.
    pub properties: Vec<PropertyResult>,
}

impl ModelReport {
    /// Whether every property held.
    pub fn passed(&self) -> bool {
        self.properties.iter().all(|p| p.holds)
    }
}

/// Explores the whole state space breadth first (so counterexamples are shortest).
pub fn check(name: &str, model: SyncModel) -> ModelReport {
    let started = Instant::now();
    let properties = model.properties();
    let checker = model.checker().spawn_bfs().join();
    let elapsed = started.elapsed();
    let results = properties
        .iter()
        .map(|p| {
            let found = checker.discovery(p.name);
            let trace = found.map(|path| path.into_actions().iter().map(ToString::to_string).collect());
            let (kind, holds) = match p.expectation {
                Expectation::Always => ("always", trace.is_none()),
                Expectation::Sometimes => ("sometimes", trace.is_some()),
                Expectation::Eventually => ("eventually", trace.is_none()),
            };
            PropertyResult { name: p.name, kind, holds, trace }
        })
        .collect();
    ModelReport {
        name: name.to_owned(),
        states: checker.state_count(),
        unique_states: checker.unique_state_count(),
        max_depth: checker.max_depth(),
        elapsed,
        properties: results,
    }
}
