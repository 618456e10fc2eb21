//! Running a model check and reporting it: states explored, depth, time,
//! and each property's result with its trace, as the report keeps them
//! (`syncspec_reports::model`).

use std::time::Instant;

use stateright::{Checker, Expectation, Model};
use syncspec_reports::model::{self as data, Configuration, Property};

use crate::sync::SyncModel;

/// Explores the whole state space breadth first (so counterexamples are shortest).
pub fn check(name: &str, model: SyncModel) -> Configuration {
    let started = Instant::now();
    let properties = model.properties();
    let checker = model.checker().spawn_bfs().join();
    let elapsed = started.elapsed();
    let results = properties
        .iter()
        .map(|p| {
            let found = checker.discovery(p.name);
            let trace: Option<Vec<String>> =
                found.map(|path| path.into_actions().iter().map(ToString::to_string).collect());
            let (expectation, holds) = match p.expectation {
                Expectation::Always => (data::Expectation::Always, trace.is_none()),
                Expectation::Sometimes => (data::Expectation::Sometimes, trace.is_some()),
                Expectation::Eventually => (data::Expectation::Eventually, trace.is_none()),
            };
            Property { name: p.name.to_owned(), expectation, holds, trace }
        })
        .collect();
    Configuration {
        name: name.to_owned(),
        states: checker.state_count(),
        unique_states: checker.unique_state_count(),
        max_depth: checker.max_depth(),
        elapsed_ms: (elapsed.as_secs_f64() * 1e4).round() / 10.0,
        properties: results,
    }
}
