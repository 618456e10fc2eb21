//! Negative controls at the core: each fault switch breaks the one
//! guarantee it names, visibly, and the same scenario without the fault
//! keeps it. The conformance suite's fault table repeats this end to end.

use syncspec_protocol::value::Value;

use super::tests::{args, Driver};
use super::*;

fn with(fault: Option<Fault>) -> Driver {
    let mut config = Config::standard();
    config.faults.extend(fault);
    Driver::with_config(true, config)
}

/// Both settings of one fault: (without, with).
fn both<T>(fault: Fault, scenario: impl Fn(Driver) -> T) -> (T, T) {
    (scenario(with(None)), scenario(with(Some(fault))))
}

#[test]
fn torn_transition_splits_one_commit_over_two_transitions() {
    let (good, bad) = both(Fault::TornTransition, |mut d| {
        d.connect(1);
        d.subscribe(1, 0, 0, "messages:list", args([("channel", "c".into()), ("limit", 1.0.into())]));
        d.subscribe(1, 1, 1, "messages:list", args([("channel", "c".into())]));
        let before = d.transitions(1).len();
        d.connect(2);
        d.mutate(2, 0, "messages:send", args([("channel", "c".into()), ("author", "a".into()), ("body", "x".into())]));
        d.transitions(1)[before..].iter().map(|t| t.modifications.len()).collect::<Vec<_>>()
    });
    assert_eq!(good, vec![2], "one transition carries both changes");
    assert_eq!(bad, vec![1, 1], "the fault splits them");
}

#[test]
fn stale_results_push_the_state_before_the_latest_commit() {
    let (good, bad) = both(Fault::StaleResults, |mut d| {
        d.connect(1);
        d.subscribe(1, 0, 0, "counters:get", args([("name", "c".into())]));
        d.mutate(1, 0, "counters:increment", args([("name", "c".into())]));
        d.mutate(1, 1, "counters:increment", args([("name", "c".into())]));
        d.latest(1, 0)
    });
    assert_eq!(good, Some(Value::Int64(2)));
    assert_eq!(bad, Some(Value::Int64(1)));
}

#[test]
fn skip_empty_transition_leaves_a_mutation_unresolvable() {
    let (good, bad) = both(Fault::SkipEmptyTransition, |mut d| {
        d.connect(1);
        d.mutate(1, 0, "counters:increment", args([("name", "unwatched".into())]));
        let Some((_, Ok((_, ts)))) = d.responses(1).pop() else { panic!("no response") };
        d.transitions(1).iter().any(|t| t.end.ts >= ts)
    });
    assert!(good && !bad);
}

#[test]
fn break_version_chain_leaves_a_gap() {
    let (good, bad) = both(Fault::BreakVersionChain, |mut d| {
        d.connect(1);
        for i in 0..4 {
            d.mutate(1, i, "counters:increment", args([("name", "c".into())]));
        }
        d.transitions(1).windows(2).all(|w| w[1].start == w[0].end)
    });
    assert!(good && !bad);
}

#[test]
fn ts_regress_moves_a_transition_back_in_time() {
    let (good, bad) = both(Fault::TsRegress, |mut d| {
        d.connect(1);
        for i in 0..4 {
            d.mutate(1, i, "counters:increment", args([("name", "c".into())]));
        }
        d.transitions(1).windows(2).all(|w| w[1].end.ts >= w[0].end.ts)
    });
    assert!(good && !bad);
}

#[test]
fn replay_twice_applies_a_replayed_mutation_again() {
    let (good, bad) = both(Fault::ReplayTwice, |mut d| {
        d.connect(1);
        d.mutate(1, 7, "counters:increment", args([("name", "c".into())]));
        d.input(Input::Closed { conn: 1 });
        d.input(Input::Open { conn: 2 });
        d.send(2, super::tests::connect_message(1));
        d.mutate(2, 7, "counters:increment", args([("name", "c".into())]));
        d.responses(2)[0].1.as_ref().map(|(v, _)| v.clone()).ok()
    });
    assert_eq!(good, Some(Value::Int64(1)));
    assert_eq!(bad, Some(Value::Int64(2)));
}

#[test]
fn lose_invalidation_leaves_a_subscriber_stale() {
    let (good, bad) = both(Fault::LoseInvalidation, |mut d| {
        d.connect(1);
        d.subscribe(1, 0, 0, "counters:get", args([("name", "c".into())]));
        d.connect(2);
        for i in 0..2 {
            d.mutate(2, i, "counters:increment", args([("name", "c".into())]));
        }
        d.latest(1, 0)
    });
    assert_eq!(good, Some(Value::Int64(2)));
    assert_ne!(bad, Some(Value::Int64(2)));
}

#[test]
fn no_rate_limit_accepts_every_move() {
    let (good, bad) = both(Fault::NoRateLimit, |mut d| {
        d.connect(1);
        for i in 0..60 {
            d.mutate(
                1,
                i,
                "cursors:move",
                args([("room", "r".into()), ("user", "u".into()), ("x", 1.0.into()), ("y", 1.0.into())]),
            );
        }
        d.responses(1).iter().filter(|(_, r)| r.is_ok()).count()
    });
    assert_eq!((good, bad), (20, 60));
}

#[test]
fn non_atomic_mutation_shows_a_half_applied_transfer() {
    let (good, bad) = both(Fault::NonAtomicMutation, |mut d| {
        d.connect(1);
        d.mutate(
            1,
            0,
            "accounts:open",
            args([("bank", "b".into()), ("accounts", 2.0.into()), ("balance", Value::Int64(50))]),
        );
        d.connect(2);
        d.subscribe(2, 0, 0, "accounts:balances", args([("bank", "b".into())]));
        d.mutate(
            1,
            1,
            "accounts:transfer",
            args([("bank", "b".into()), ("from", 0.0.into()), ("to", 1.0.into()), ("amount", Value::Int64(10))]),
        );
        // Every total the subscriber was shown.
        d.transitions(2)
            .iter()
            .flat_map(|t| t.modifications.iter())
            .filter_map(|m| match m {
                syncspec_protocol::wire::Modification::Updated { value, .. } => {
                    syncspec_protocol::json::decode_str(value).ok()
                }
                _ => None,
            })
            .map(|rows| match rows {
                Value::Array(rows) => rows
                    .iter()
                    .filter_map(|r| match r.as_object().and_then(|o| o.get("balance")) {
                        Some(Value::Int64(b)) => Some(*b),
                        _ => None,
                    })
                    .sum::<i64>(),
                _ => -1,
            })
            .collect::<Vec<_>>()
    });
    assert!(good.iter().all(|&t| t == 100), "{good:?}");
    assert!(bad.iter().any(|&t| t != 100), "{bad:?}");
}
