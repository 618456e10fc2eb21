//! Running a model check and reporting it: states explored, depth, time,
//! and each property's result with its trace, as the report keeps them
//! (`syncspec_reports::model`).

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::time::Instant;

use stateright::{Checker, Expectation, Model};
use syncspec_reports::model::{self as data, Configuration, Property};

use crate::sync::{Action, SyncModel, SyncState};

/// Explores the whole state space breadth first, then finds each failing
/// `always` property's shortest counterexample (`shortest_counterexample`;
/// the checker's own trace should that search come back empty).
pub fn check(name: &str, model: SyncModel) -> Configuration {
    let started = Instant::now();
    let properties = model.properties();
    let checker = model.clone().checker().spawn_bfs().join();
    let results = properties
        .iter()
        .map(|p| {
            let found = checker.discovery(p.name);
            let mut trace: Option<Vec<String>> =
                found.map(|path| path.into_actions().iter().map(ToString::to_string).collect());
            if p.expectation == Expectation::Always && trace.is_some() {
                trace = shortest_counterexample(&model, p.condition).or(trace);
            }
            let (expectation, holds) = match p.expectation {
                Expectation::Always => (data::Expectation::Always, trace.is_none()),
                Expectation::Sometimes => (data::Expectation::Sometimes, trace.is_some()),
                Expectation::Eventually => (data::Expectation::Eventually, trace.is_none()),
            };
            Property { name: p.name.to_owned(), expectation, holds, trace }
        })
        .collect();
    let elapsed = started.elapsed();
    Configuration {
        name: name.to_owned(),
        states: checker.state_count(),
        unique_states: checker.unique_state_count(),
        max_depth: checker.max_depth(),
        elapsed_ms: (elapsed.as_secs_f64() * 1e4).round() / 10.0,
        properties: results,
    }
}

/// The actions to the first state breadth first where `holds` fails: a
/// shortest counterexample.
///
/// stateright's breadth-first checker keeps, for an `always` property, the
/// last failing state it visited (each one it finds replaces the one before
/// it), which is among the deepest; the model's failures stick once made, so
/// that is usually a long trace with the failure somewhere inside it. This
/// search stops at the first failing state instead, so it costs at most one
/// more pass, and only for a property the checker already saw fail.
fn shortest_counterexample(model: &SyncModel, holds: fn(&SyncModel, &SyncState) -> bool) -> Option<Vec<String>> {
    let fingerprint = |state: &SyncState| {
        let mut hasher = DefaultHasher::new();
        state.hash(&mut hasher);
        hasher.finish()
    };
    let mut seen = HashSet::new();
    let mut pending: VecDeque<(_, Vec<Action>)> = VecDeque::new();
    for state in model.init_states() {
        if seen.insert(fingerprint(&state)) {
            pending.push_back((state, Vec::new()));
        }
    }
    let mut actions = Vec::new();
    while let Some((state, path)) = pending.pop_front() {
        if !holds(model, &state) {
            return Some(path.iter().map(ToString::to_string).collect());
        }
        model.actions(&state, &mut actions);
        for action in actions.drain(..) {
            let Some(next) = model.next_state(&state, action.clone()) else { continue };
            if seen.insert(fingerprint(&next)) {
                let mut next_path = path.clone();
                next_path.push(action);
                pending.push_back((next, next_path));
            }
        }
    }
    None
}
