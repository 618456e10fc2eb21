//! Invariants that need no timestamps: a backend that reports false commit
//! timestamps still fails these. Counters lose no increment, bank totals
//! never change, `count == items.length`, and the rate limit holds (timed
//! by commit ts, but never longer than the client waited, so a false ts
//! cannot pass a backend without a limit).

use std::collections::BTreeMap;

use syncspec_protocol::history::{EventKind, History, RecordedModification};
use syncspec_protocol::json;
use syncspec_protocol::value::Value;

use super::{committed, field, subscriptions, Evidence, Verdict};

fn int(value: Option<&Value>) -> Option<i64> {
    match value {
        Some(Value::Int64(i)) => Some(*i),
        _ => None,
    }
}

/// For every counter: the values returned by successful increments are
/// distinct and the largest is the sum of all increments.
pub fn no_lost_increment(history: &History) -> Verdict {
    let mut per_counter: BTreeMap<String, Vec<(i64, i64, usize)>> = BTreeMap::new();
    for c in committed(history) {
        if c.function != "counters:increment" {
            continue;
        }
        let Some(Value::String(name)) = field(&c.args, "name").cloned() else { continue };
        let by = int(field(&c.args, "by")).unwrap_or(1);
        let Value::Int64(result) = c.result else { continue };
        per_counter.entry(name).or_default().push((by, result, c.event));
    }
    let mut evidence = Vec::new();
    for (name, increments) in &per_counter {
        let mut seen: BTreeMap<i64, usize> = BTreeMap::new();
        for &(_, result, at) in increments {
            if let Some(&first) = seen.get(&result) {
                evidence.push(Evidence {
                    message: format!("counter {name:?}: two increments both returned {result}: one update was lost"),
                    events: vec![first, at],
                });
            }
            seen.insert(result, at);
        }
        let total: i64 = increments.iter().map(|&(by, _, _)| by).sum();
        let highest = increments.iter().map(|&(_, r, _)| r).max().unwrap_or(0);
        if highest != total {
            let at = increments.iter().max_by_key(|&&(_, r, _)| r).map(|&(_, _, at)| at).unwrap_or(0);
            evidence.push(Evidence {
                message: format!(
                    "counter {name:?}: {} increments adding {total} in all, but the highest value returned is {highest}",
                    increments.len()
                ),
                events: vec![at],
            });
        }
    }
    Verdict::new("no-lost-increment", per_counter.values().map(Vec::len).sum(), evidence)
}

/// Every pushed `accounts:balances` result sums to the bank's opening total.
pub fn bank_totals(history: &History) -> Verdict {
    let mut opening: BTreeMap<String, i64> = BTreeMap::new();
    for c in committed(history) {
        if c.function != "accounts:open" {
            continue;
        }
        let (Some(Value::String(bank)), Some(Value::Float64(n)), Some(balance)) =
            (field(&c.args, "bank").cloned(), field(&c.args, "accounts").cloned(), int(field(&c.args, "balance")))
        else {
            continue;
        };
        opening.insert(bank, n as i64 * balance);
    }
    let queries = subscriptions(history);
    let mut evidence = Vec::new();
    let mut checked = 0;
    for (i, e) in history.events.iter().enumerate() {
        let EventKind::Transition { modifications, end, .. } = &e.kind else { continue };
        for m in modifications {
            let RecordedModification::Updated { query_id, value } = m else { continue };
            let Some((function, args)) = queries.get(&(e.client, *query_id)) else { continue };
            if function != "accounts:balances" {
                continue;
            }
            let Some(Value::String(bank)) = field(args, "bank").cloned() else { continue };
            let Some(&total) = opening.get(&bank) else { continue };
            let Ok(Value::Array(rows)) = json::decode(value) else { continue };
            if rows.is_empty() {
                continue;
            }
            checked += 1;
            let sum: i64 = rows.iter().filter_map(|r| int(field(r, "balance"))).sum();
            if sum != total {
                evidence.push(Evidence {
                    message: format!(
                        "client {}: bank {bank:?} pushed at ts {} sums to {sum}, but it opened with {total} and transfers never change the total",
                        e.client, end.ts
                    ),
                    events: vec![i],
                });
            }
        }
    }
    Verdict::new("bank-totals", checked, evidence)
}

/// Every pushed `notifications:unread` result has `count == items.length`.
pub fn unread_counts(history: &History) -> Verdict {
    let queries = subscriptions(history);
    let mut evidence = Vec::new();
    let mut checked = 0;
    for (i, e) in history.events.iter().enumerate() {
        let EventKind::Transition { modifications, .. } = &e.kind else { continue };
        for m in modifications {
            let RecordedModification::Updated { query_id, value } = m else { continue };
            if queries.get(&(e.client, *query_id)).is_none_or(|(f, _)| f != "notifications:unread") {
                continue;
            }
            let Ok(result) = json::decode(value) else { continue };
            checked += 1;
            let count = match field(&result, "count") {
                Some(Value::Float64(c)) => *c as i64,
                _ => -1,
            };
            let items = match field(&result, "items") {
                Some(Value::Array(items)) => items.len() as i64,
                _ => -1,
            };
            if count != items {
                evidence.push(Evidence {
                    message: format!(
                        "client {}: notifications:unread pushed count {count} with {items} items",
                        e.client
                    ),
                    events: vec![i],
                });
            }
        }
    }
    Verdict::new("unread-count", checked, evidence)
}

/// Per (function, user), accepted calls fit a bucket of `burst` refilled at
/// `per_second`: in any window of `w` seconds at most `burst + per_second·w`
/// (plus one for clock granularity). A window is timed by the calls' commit
/// ts, as the backend's bucket is, but never longer than from sending its
/// first call to receiving its last answer: a backend that runs calls one
/// at a time earns tokens while it runs them, and one that stretches its
/// timestamps earns nothing by it.
pub fn rate_limit(history: &History, functions: &[&str], burst: u32, per_second: u32) -> Verdict {
    /// An accepted call: its commit ts, when it was sent and answered (µs), its answer's event.
    struct Accepted {
        ts: u64,
        sent_us: u64,
        answered_us: u64,
        event: usize,
    }
    let mut accepted: BTreeMap<(String, String), Vec<Accepted>> = BTreeMap::new();
    let mut invoked: BTreeMap<(u32, u32), (String, Value, u64)> = BTreeMap::new();
    for (i, e) in history.events.iter().enumerate() {
        match &e.kind {
            EventKind::Invoke { request_id, function, args, .. } => {
                let args = json::decode(args).unwrap_or(Value::Null);
                invoked.insert((e.client, *request_id), (function.clone(), args, e.at_us));
            }
            EventKind::Ok { request_id, ts, .. } => {
                let Some((function, args, sent_us)) = invoked.get(&(e.client, *request_id)) else { continue };
                if !functions.contains(&function.as_str()) {
                    continue;
                }
                let user = field(args, "user").and_then(Value::as_str).unwrap_or("").to_owned();
                let call = Accepted { ts: *ts, sent_us: *sent_us, answered_us: e.at_us, event: i };
                accepted.entry((function.clone(), user)).or_default().push(call);
            }
            _ => {}
        }
    }
    let mut evidence = Vec::new();
    for ((function, user), calls) in &mut accepted {
        calls.sort_by_key(|c| (c.ts, c.event));
        for (a, start) in calls.iter().enumerate() {
            for (b, end) in calls.iter().enumerate().skip(a) {
                let by_ts = (end.ts - start.ts) as f64 / 1e9;
                let by_client = end.answered_us.saturating_sub(start.sent_us) as f64 / 1e6;
                let window_s = by_ts.min(by_client);
                let allowed = f64::from(burst) + f64::from(per_second) * window_s + 1.0;
                let count = (b - a + 1) as f64;
                if count > allowed {
                    evidence.push(Evidence {
                        message: format!(
                            "{function} for user {user:?}: {count} calls accepted within {:.0} ms, over the {burst} + {per_second}/s limit",
                            window_s * 1e3
                        ),
                        events: vec![start.event, end.event],
                    });
                    break;
                }
            }
            if !evidence.is_empty() {
                break;
            }
        }
    }
    Verdict::new("rate-limit", accepted.values().map(Vec::len).sum(), evidence)
}
