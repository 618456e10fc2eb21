//! Each fault switch breaks a named property of the model, with a shortest
//! counterexample; the skip-occ-validation fault also breaks the bank's
//! serializability property (checked in `standard.rs`'s configurations).

use std::collections::BTreeSet;

use syncspec_models::report;
use syncspec_models::sync::SyncModel;
use syncspec_reports::model::Expectation;
use syncspec_server::core::Fault;

/// The faults the model catches and a property each breaks.
const CAUGHT: &[(Fault, &str)] = &[
    (Fault::SkipOccValidation, "no lost update (committed increments return distinct values)"),
    (Fault::StaleResults, "pushed results equal the state at their ts"),
    (Fault::SkipEmptyTransition, "quiet means converged and resolved"),
    (Fault::BreakVersionChain, "each socket's version chain has no gaps"),
    (Fault::TsRegress, "a client's ts never goes backwards"),
    (Fault::ReplayTwice, "a replayed mutation applies at most once"),
    (Fault::LoseInvalidation, "quiet means converged and resolved"),
    (Fault::TornTransition, "pushed results equal the state at their ts"),
    (Fault::NoRateLimit, "the rate limit holds"),
    (Fault::NonAtomicMutation, "every pushed bank total equals the opening total"),
    (Fault::CommitTsOnly, "a transition carries the time it was built at, never 0"),
    (Fault::SnapshotIsolation, "joint withdrawals never overdraw the pair (no write skew)"),
    (Fault::PageEndMoves, "consecutive pages never overlap or leave a gap"),
    (Fault::ScheduleDespiteAbort, EXACTLY_ONCE),
    (Fault::ScheduledTwice, EXACTLY_ONCE),
    (Fault::ScheduledEarly, NEVER_EARLY),
];

const EXACTLY_ONCE: &str = "a scheduled function runs exactly once, and only if its scheduling mutation committed";
const NEVER_EARLY: &str = "a scheduled function never runs before its time";

/// The faults the model leaves to the suite, and why.
const NOT_MODELLED: &[(Fault, &str)] = &[
    (Fault::HttpErrorStatus560, "the model makes no HTTP calls"),
    (Fault::HttpWritesUnseen, "the model makes no HTTP calls"),
    (Fault::HttpDropUnknown, "the model makes no HTTP calls"),
    (Fault::NoWsPing, "WebSocket pings live in the shell, outside the core"),
    (Fault::IgnoreIdentity, "the model's clients never authenticate"),
    (Fault::StaleIdentityQueries, "the model's clients never authenticate"),
    (Fault::AcceptAnyToken, "tokens are verified in the shell, outside the core"),
    (Fault::ActionMutationTwice, "the model's clients call no actions"),
    (Fault::ActionRollback, "the model's clients call no actions"),
    (Fault::BareCloseOnBadFrame, "WebSocket framing lives in the shell, outside the core"),
    (Fault::UnboundedBacklog, "a socket's unsent frames are counted in the shell, outside the core"),
    (Fault::NoHandshakeTimeout, "the HTTP handshake lives in the shell, outside the core"),
    (Fault::TruncateQuerySet, "the model's clients hold a query or two, far under the session limit"),
];

#[test]
fn the_tables_cover_every_fault() {
    let mut covered: Vec<Fault> = CAUGHT.iter().chain(NOT_MODELLED).map(|(f, _)| *f).collect();
    covered.sort();
    assert_eq!(covered, Fault::ALL.to_vec());
}

#[test]
fn each_fault_breaks_its_property() {
    for &(fault, property) in CAUGHT {
        let faults = BTreeSet::from([fault]);
        let broken: Vec<(String, String, usize)> = SyncModel::standard()
            .into_iter()
            .map(|(name, model)| report::check(name, model.with_faults(&faults)))
            .flat_map(|r| {
                let name = r.name.clone();
                r.properties
                    .into_iter()
                    .filter(|p| !p.holds && p.expectation == Expectation::Always)
                    .map(move |p| (name.clone(), p.name, p.trace.map_or(0, |t| t.len())))
            })
            .collect();
        println!("{}: {broken:?}", fault.name());
        assert!(
            broken.iter().any(|(_, p, _)| p == property),
            "{}: expected {property:?} to break, broke {broken:?}",
            fault.name()
        );
    }
}

/// `page-end-moves` is caught by the shortest overlap there is: the reader
/// holds both pages (7 steps), the writer's removal of the newest message
/// commits (5), and the next push shows page 1's row in page 0 too (1).
/// A longer trace would mean the report no longer stops at the first
/// failing state breadth first.
#[test]
fn page_end_moves_is_caught_in_the_fewest_steps() {
    let (name, model) = SyncModel::standard()
        .into_iter()
        .find(|(name, _)| *name == "two pages while messages arrive and leave")
        .expect("the pagination configuration");
    let r = report::check(name, model.with_faults(&BTreeSet::from([Fault::PageEndMoves])));
    let broken = r.properties.iter().find(|p| p.name == "consecutive pages never overlap or leave a gap");
    let trace = broken.and_then(|p| p.trace.clone()).expect("a counterexample");
    assert_eq!(trace.len(), 13, "{trace:#?}");
    assert_eq!(trace.last().map(String::as_str), Some("connection 1: Transition reaches the client"));
}

/// Each scheduling fault is caught by the shortest counterexample there is,
/// in the scheduling configuration (client 0's `sendLater` of 1 ms; client
/// 1's direct send, then its `sendLater` of 0 ms):
/// - `scheduled-early` in 7: client 0's `sendLater` reaches the server
///   behind its `Connect` (3), executes and commits (2), and its send,
///   dispatched at once, executes and commits a millisecond early (2);
/// - `scheduled-twice` in 8: the same commit (5), the clock moves to its
///   due time (1), and the second, unguarded run executes and commits while
///   the function is still scheduled (2);
/// - `schedule-despite-abort` in 15: both clients' first mutations reach
///   the server (6), both execute (2), the direct send commits and the
///   `sendLater` conflicts (2), so its aborted attempt's schedule is
///   committed and the retry commits another (2), the clock moves to the
///   first one's due time (1), and its send runs while the retry's is
///   still scheduled (2).
///
/// A longer trace would mean the report no longer stops at the first
/// failing state breadth first.
#[test]
fn scheduling_faults_are_caught_in_the_fewest_steps() {
    let (name, model) = SyncModel::standard()
        .into_iter()
        .find(|(name, _)| *name == "two sendLaters and a direct send to one inbox")
        .expect("the scheduling configuration");
    for (fault, property, steps) in [
        (Fault::ScheduledEarly, NEVER_EARLY, 7),
        (Fault::ScheduledTwice, EXACTLY_ONCE, 8),
        (Fault::ScheduleDespiteAbort, EXACTLY_ONCE, 15),
    ] {
        let r = report::check(name, model.clone().with_faults(&BTreeSet::from([fault])));
        let broken = r.properties.iter().find(|p| p.name == property);
        let trace =
            broken.and_then(|p| p.trace.clone()).unwrap_or_else(|| panic!("{}: no counterexample", fault.name()));
        assert_eq!(trace.len(), steps, "{}: {trace:#?}", fault.name());
        assert_eq!(trace.last().map(String::as_str), Some("execution 0 reaches the commit step"), "{}", fault.name());
    }
}
