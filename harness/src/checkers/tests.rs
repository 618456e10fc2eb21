//! Property tests of the checkers: histories generated from a serial
//! backend pass every checker; the same histories with one injected anomaly
//! fail the checker that guards against it, with evidence that names it.

use proptest::prelude::*;
use syncspec_protocol::history::{Event, EventKind, History, RecordedModification, RecordedVersion};
use syncspec_protocol::json;
use syncspec_protocol::value::Value;

use super::{invariants, order, replay};

const T0: u64 = 1_760_000_000_000_000_000;

/// A history of `clients` clients, each subscribed to every counter, doing
/// `ops` (client, counter) increments against a serial backend.
fn serial_history(clients: u32, counters: u32, ops: &[(u32, u32)]) -> History {
    let mut events = Vec::new();
    let mut at = 0u64;
    let mut push = |events: &mut Vec<Event>, client, kind| {
        at += 10;
        events.push(Event { client, at_us: at, kind });
    };
    let name = |k: u32| format!("k{k}");
    let mut values = vec![0i64; counters as usize];
    let mut versions = vec![RecordedVersion { query_set: 0, identity: 0, ts: 0 }; clients as usize + 1];
    let mut ts = T0;
    for c in 1..=clients {
        push(&mut events, c, EventKind::Connect { session_id: format!("s{c}"), connection_count: 0 });
        for k in 0..counters {
            push(
                &mut events,
                c,
                EventKind::Subscribe {
                    query_id: k,
                    function: "counters:get".into(),
                    args: json::to_json(&Value::object([("name", Value::from(name(k)))])),
                },
            );
        }
        let end = RecordedVersion { query_set: 1, identity: 0, ts };
        let modifications = (0..counters)
            .map(|k| RecordedModification::Updated {
                query_id: k,
                value: json::to_json(&Value::Int64(values[k as usize])),
            })
            .collect();
        push(&mut events, c, EventKind::Transition { start: versions[c as usize], end, modifications });
        versions[c as usize] = end;
    }
    for (request_id, &(client, k)) in ops.iter().enumerate() {
        let client = client % clients + 1;
        let k = k % counters;
        let request_id = request_id as u32;
        push(
            &mut events,
            client,
            EventKind::Invoke {
                request_id,
                function: "counters:increment".into(),
                args: json::to_json(&Value::object([("name", Value::from(name(k)))])),
                replay: false,
            },
        );
        ts += 1000;
        values[k as usize] += 1;
        push(
            &mut events,
            client,
            EventKind::Ok { request_id, result: json::to_json(&Value::Int64(values[k as usize])), ts },
        );
        for c in 1..=clients {
            let end = RecordedVersion { ts, ..versions[c as usize] };
            let modifications = vec![RecordedModification::Updated {
                query_id: k,
                value: json::to_json(&Value::Int64(values[k as usize])),
            }];
            push(&mut events, c, EventKind::Transition { start: versions[c as usize], end, modifications });
            versions[c as usize] = end;
            if c == client {
                push(&mut events, c, EventKind::Resolved { request_id });
            }
        }
    }
    History { events }
}

fn arb_history() -> impl Strategy<Value = History> {
    (1u32..4, 1u32..3, prop::collection::vec((0u32..4, 0u32..3), 2..25))
        .prop_map(|(clients, counters, ops)| serial_history(clients, counters, &ops))
}

fn all_pass(h: &History) -> Result<(), String> {
    for v in [
        order::version_chain(h),
        order::read_your_writes(h),
        order::exactly_once(h),
        replay::serializable(h),
        replay::snapshot_consistent(h),
        replay::converged(h),
        invariants::no_lost_increment(h),
    ] {
        if !v.passed() {
            return Err(format!("{} failed on a valid history: {:?}", v.checker, v.evidence));
        }
    }
    Ok(())
}

/// Indices of a history's transitions that carry a counter value.
fn pushes(h: &History) -> Vec<usize> {
    h.events
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(&e.kind, EventKind::Transition { modifications, start, .. } if !modifications.is_empty() && start.ts > 0))
        .map(|(i, _)| i)
        .collect()
}

proptest! {
    #[test]
    fn valid_histories_pass_every_checker(h in arb_history()) {
        prop_assert_eq!(all_pass(&h), Ok(()));
    }

    /// A reordered push: one client's two transitions swapped.
    #[test]
    fn a_reordered_push_breaks_the_chain(h in arb_history(), pick in any::<prop::sample::Index>()) {
        let mut h = h;
        let candidates: Vec<(usize, usize)> = pushes(&h)
            .windows(2)
            .filter(|w| h.events[w[0]].client == h.events[w[1]].client)
            .map(|w| (w[0], w[1]))
            .collect();
        prop_assume!(!candidates.is_empty());
        let (a, b) = candidates[pick.index(candidates.len())];
        let kind_a = h.events[a].kind.clone();
        h.events[a].kind = h.events[b].kind.clone();
        h.events[b].kind = kind_a;
        let v = order::version_chain(&h);
        prop_assert!(!v.passed());
        prop_assert!(v.evidence.iter().any(|e| e.message.contains("gap") || e.message.contains("backwards")), "{:?}", v.evidence);
    }

    /// A torn result: a push claims a ts but carries the value from before it.
    #[test]
    fn a_torn_result_breaks_snapshot_consistency(h in arb_history(), pick in any::<prop::sample::Index>()) {
        let mut h = h;
        let candidates = pushes(&h);
        prop_assume!(!candidates.is_empty());
        let i = candidates[pick.index(candidates.len())];
        if let EventKind::Transition { modifications, .. } = &mut h.events[i].kind {
            if let RecordedModification::Updated { value, .. } = &mut modifications[0] {
                let Value::Int64(n) = json::decode(value).unwrap() else { unreachable!() };
                *value = json::to_json(&Value::Int64(n - 1));
            }
        }
        let v = replay::snapshot_consistent(&h);
        prop_assert!(!v.passed());
        prop_assert!(v.evidence.iter().any(|e| e.message.contains("state at that ts gives")), "{:?}", v.evidence);
    }

    /// A dropped increment: an increment returns the value another already returned.
    #[test]
    fn a_dropped_increment_is_a_lost_update(h in arb_history(), pick in any::<prop::sample::Index>()) {
        let mut h = h;
        let oks: Vec<usize> = h.events.iter().enumerate()
            .filter(|(_, e)| matches!(&e.kind, EventKind::Ok { result, .. } if json::decode(result).unwrap() != Value::Int64(1)))
            .map(|(i, _)| i)
            .collect();
        prop_assume!(!oks.is_empty());
        let i = oks[pick.index(oks.len())];
        if let EventKind::Ok { result, .. } = &mut h.events[i].kind {
            let Value::Int64(n) = json::decode(result).unwrap() else { unreachable!() };
            *result = json::to_json(&Value::Int64(n - 1));
        }
        let v = invariants::no_lost_increment(&h);
        prop_assert!(!v.passed());
        prop_assert!(v.evidence.iter().any(|e| e.message.contains("lost")), "{:?}", v.evidence);
        prop_assert!(!replay::serializable(&h).passed());
    }

    /// A duplicated replay: a re-sent request applied again, answered with a new ts.
    #[test]
    fn a_duplicated_replay_is_caught(h in arb_history(), pick in any::<prop::sample::Index>()) {
        let mut h = h;
        let oks: Vec<usize> = h.events.iter().enumerate().filter(|(_, e)| matches!(e.kind, EventKind::Ok { .. })).map(|(i, _)| i).collect();
        prop_assume!(!oks.is_empty());
        let i = oks[pick.index(oks.len())];
        let mut again = h.events[i].clone();
        if let EventKind::Ok { ts, result, .. } = &mut again.kind {
            *ts += 1;
            let Value::Int64(n) = json::decode(result).unwrap() else { unreachable!() };
            *result = json::to_json(&Value::Int64(n + 1));
        }
        again.at_us = h.events.last().unwrap().at_us + 10;
        h.events.push(again);
        let v = order::exactly_once(&h);
        prop_assert!(!v.passed());
        prop_assert!(v.evidence.iter().any(|e| e.message.contains("applied twice")), "{:?}", v.evidence);
    }
}

#[test]
fn a_missing_covering_transition_fails_read_your_writes() {
    let mut h = serial_history(1, 1, &[(0, 0)]);
    h.events.retain(|e| !matches!(e.kind, EventKind::Resolved { .. }));
    let v = order::read_your_writes(&h);
    assert!(!v.passed());
    assert!(v.evidence[0].message.contains("never resolved"), "{:?}", v.evidence);
}

#[test]
fn a_changed_bank_total_is_caught() {
    let bank =
        Value::object([("bank", Value::from("b")), ("accounts", Value::Float64(2.0)), ("balance", Value::Int64(50))]);
    let row = |account: f64, balance: i64| {
        Value::object([("account", Value::Float64(account)), ("balance", Value::Int64(balance))])
    };
    let events = vec![
        Event {
            client: 1,
            at_us: 1,
            kind: EventKind::Invoke {
                request_id: 0,
                function: "accounts:open".into(),
                args: json::to_json(&bank),
                replay: false,
            },
        },
        Event { client: 1, at_us: 2, kind: EventKind::Ok { request_id: 0, result: serde_json::Value::Null, ts: T0 } },
        Event {
            client: 1,
            at_us: 3,
            kind: EventKind::Subscribe {
                query_id: 0,
                function: "accounts:balances".into(),
                args: json::to_json(&Value::object([("bank", Value::from("b"))])),
            },
        },
        Event {
            client: 1,
            at_us: 4,
            kind: EventKind::Transition {
                start: RecordedVersion { query_set: 0, identity: 0, ts: 0 },
                end: RecordedVersion { query_set: 1, identity: 0, ts: T0 + 5 },
                modifications: vec![RecordedModification::Updated {
                    query_id: 0,
                    value: json::to_json(&Value::Array(vec![row(0.0, 40), row(1.0, 50)])),
                }],
            },
        },
    ];
    let v = invariants::bank_totals(&History { events });
    assert!(!v.passed());
    assert!(v.evidence[0].message.contains("sums to 90"), "{:?}", v.evidence);
}

#[test]
fn a_scheduling_mutation_is_named_unreplayable() {
    let later =
        Value::object([("user", Value::from("u")), ("title", Value::from("t")), ("delayMs", Value::Float64(0.0))]);
    let events = vec![
        Event {
            client: 1,
            at_us: 1,
            kind: EventKind::Invoke {
                request_id: 0,
                function: "notifications:sendLater".into(),
                args: json::to_json(&later),
                replay: false,
            },
        },
        Event { client: 1, at_us: 2, kind: EventKind::Ok { request_id: 0, result: "s1".into(), ts: T0 } },
    ];
    let v = replay::serializable(&History { events });
    assert!(!v.passed());
    assert!(v.evidence[0].message.contains("cannot be replayed"), "{:?}", v.evidence);
}

/// `n` cursor moves by one user, sent at once at 0 µs; the i-th committed
/// `commit_gap_us · i` after the first and answered when it committed.
fn cursor_burst(n: u32, commit_gap_us: u64, claimed_gap_ns: u64) -> History {
    let args = json::to_json(&Value::object([("room", Value::from("r")), ("user", Value::from("u"))]));
    let mut events: Vec<Event> = (0..n)
        .map(|request_id| Event {
            client: 1,
            at_us: 0,
            kind: EventKind::Invoke { request_id, function: "cursors:move".into(), args: args.clone(), replay: false },
        })
        .collect();
    events.extend((0..n).map(|request_id| Event {
        client: 1,
        at_us: 1000 + commit_gap_us * u64::from(request_id),
        kind: EventKind::Ok {
            request_id,
            result: json::to_json(&Value::Null),
            ts: T0 + claimed_gap_ns * u64::from(request_id),
        },
    }));
    History { events }
}

#[test]
fn the_rate_limit_is_timed_by_commit_ts_within_the_clients_wait() {
    let limit = |h: &History| invariants::rate_limit(h, &["cursors:move"], 20, 20);
    // 30 accepted, committed 50 ms apart and answered as they committed:
    // the bucket refilled one token a call.
    assert!(limit(&cursor_burst(30, 50_000, 50_000_000)).passed());
    // Answered 50 ms apart but committed within 10 ms: 30 at once is too many.
    let v = limit(&cursor_burst(30, 50_000, 300_000));
    assert!(!v.passed() && v.evidence[0].message.contains("22 calls accepted within 6 ms"), "{:?}", v.evidence);
    // Commits claimed a second apart, all answered within 30 ms: the
    // client's wait bounds the window.
    let v = limit(&cursor_burst(30, 1000, 1_000_000_000));
    assert!(!v.passed(), "{:?}", v.evidence);
    // The reference's burst: 21 committed nanoseconds apart.
    assert!(limit(&cursor_burst(21, 10, 1000)).passed());
    assert!(!limit(&cursor_burst(22, 10, 1000)).passed());
}
