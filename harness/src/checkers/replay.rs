//! Checkers that replay the committed mutations through the oracle, in the
//! order of the commit timestamps the backend claimed: serializability,
//! snapshot consistency of every client's whole view, and convergence.

use std::collections::BTreeMap;

use syncspec_protocol::catalogue::Kind;
use syncspec_protocol::history::{self, ClientId, EventKind, History};
use syncspec_protocol::json;
use syncspec_protocol::value::Value;
use syncspec_protocol::wire::{QueryId, Ts};
use syncspec_server::oracle::{self, Oracle};

use super::{committed, normalize, subscriptions, Committed, Evidence, Verdict};

/// Functions whose return value is the id of a new document.
const RETURNS_ID: &[&str] = &["messages:send", "messages:startStream", "documents:create", "notifications:send"];

/// Mutations that schedule a function whose effect a client can see: the
/// oracle runs no scheduled functions, so a history holding one cannot be
/// replayed. (Actions never reach the replay: a history records them as
/// `Action` events, not as mutations a client invoked.)
const SCHEDULES: &[&str] = &["notifications:sendLater"];

/// Backend ids mapped to the oracle's, learned as creations replay.
type IdMap = BTreeMap<String, String>;

/// Replaces document ids in arguments with the oracle's.
fn translate_args(args: &Value, ids: &IdMap) -> Value {
    match args {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| match (k.as_ref(), v) {
                    ("id", Value::String(id)) => {
                        (k.clone(), Value::String(ids.get(id).cloned().unwrap_or_else(|| id.clone())))
                    }
                    _ => (k.clone(), v.clone()),
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Applies one committed mutation to the oracle; returns a mismatch, if any.
fn apply(oracle: &mut Oracle, ids: &mut IdMap, c: &Committed) -> Option<String> {
    let args = translate_args(&c.args, ids);
    let (function, fields) = match oracle::resolve(Kind::Mutation, &c.function, &args) {
        Ok(resolved) => resolved,
        Err(e) => return Some(format!("{} committed with arguments the catalogue rejects: {e}", c.function)),
    };
    if function.uses_identity() {
        // The history records what was called, not who called it.
        return Some(format!(
            "{} reads the caller's identity, which a history does not record; it cannot be replayed",
            c.function
        ));
    }
    if SCHEDULES.contains(&c.function.as_str()) {
        return Some(format!(
            "{} schedules a function, which the oracle does not run; it cannot be replayed",
            c.function
        ));
    }
    match oracle.mutate(c.ts, function, &fields, None) {
        Ok(value) => {
            if RETURNS_ID.contains(&c.function.as_str()) {
                if let (Value::String(backend), Value::String(reference)) = (&c.result, &value) {
                    ids.insert(backend.clone(), reference.clone());
                    return None;
                }
            }
            let got = normalize(&c.result, ids);
            let want = normalize(&value, ids);
            (got != want).then(|| {
                format!(
                    "client {} request {}: {} committed at ts {} returned {got}, but run serially in commit-ts order it returns {want}",
                    c.client, c.request_id, c.function, c.ts
                )
            })
        }
        Err(e) => Some(format!(
            "client {} request {}: {} committed at ts {} returned {}, but run serially in commit-ts order it fails with {}",
            c.client,
            c.request_id,
            c.function,
            c.ts,
            c.result,
            e.code.as_str()
        )),
    }
}

/// Replaying the committed mutations one at a time in claimed commit-ts
/// order gives every one of them the result the backend returned.
pub fn serializable(history: &History) -> Verdict {
    let commits = committed(history);
    let mut evidence = Vec::new();
    for pair in commits.windows(2) {
        if pair[0].ts == pair[1].ts {
            evidence.push(Evidence {
                message: format!(
                    "two commits claim ts {}: a commit order cannot be read from the timestamps",
                    pair[0].ts
                ),
                events: vec![pair[0].event, pair[1].event],
            });
        }
    }
    let mut oracle = Oracle::new();
    let mut ids = IdMap::new();
    for c in &commits {
        if let Some(message) = apply(&mut oracle, &mut ids, c) {
            evidence.push(Evidence { message, events: vec![c.event] });
        }
    }
    Verdict::new("serializable", commits.len(), evidence)
}

/// One client's whole view right after one transition.
struct Checkpoint {
    client: ClientId,
    ts: Ts,
    event: usize,
    view: Vec<(QueryId, Value)>,
}

/// After every transition, every query the client holds (pushed in that
/// transition or not) equals the oracle's evaluation at the transition's ts.
pub fn snapshot_consistent(history: &History) -> Verdict {
    let queries = subscriptions(history);
    let mut checkpoints = Vec::new();
    let mut views: BTreeMap<ClientId, BTreeMap<QueryId, Value>> = BTreeMap::new();
    for (i, e) in history.events.iter().enumerate() {
        match &e.kind {
            EventKind::Connect { .. } => {
                views.insert(e.client, BTreeMap::new());
            }
            EventKind::Transition { end, modifications, .. } => {
                let view = views.entry(e.client).or_default();
                history::apply(view, modifications);
                checkpoints.push(Checkpoint {
                    client: e.client,
                    ts: end.ts,
                    event: i,
                    view: view.iter().map(|(q, v)| (*q, v.clone())).collect(),
                });
            }
            EventKind::Unsubscribe { query_id } => {
                views.entry(e.client).or_default().remove(query_id);
            }
            _ => {}
        }
    }
    checkpoints.sort_by_key(|c| (c.ts, c.event));
    let commits = committed(history);
    let mut oracle = Oracle::new();
    let mut ids = IdMap::new();
    let mut next = 0;
    let mut evidence = Vec::new();
    let mut checked = 0;
    for cp in &checkpoints {
        while next < commits.len() && commits[next].ts <= cp.ts {
            let _ = apply(&mut oracle, &mut ids, &commits[next]);
            next += 1;
        }
        for (query_id, held) in &cp.view {
            let Some((function, args)) = queries.get(&(cp.client, *query_id)) else { continue };
            let Ok((f, fields)) = oracle::resolve(Kind::Query, function, &translate_args(args, &ids)) else { continue };
            if f.uses_identity() {
                continue;
            }
            checked += 1;
            let want = match oracle.query(f, &fields, None) {
                Ok(v) => normalize(&v, &reverse(&ids)),
                Err(_) => continue,
            };
            let got = normalize(held, &IdMap::new());
            let want = normalize(&want, &IdMap::new());
            if got != want {
                evidence.push(Evidence {
                    message: format!(
                        "client {} after the transition to ts {}: {function} {} holds {}, but the state at that ts gives {}",
                        cp.client,
                        cp.ts,
                        json::encode(args),
                        short(&got),
                        short(&want)
                    ),
                    events: vec![cp.event],
                });
            }
        }
    }
    Verdict::new("snapshot-consistent", checked, evidence)
}

/// Once the run is quiet, every client's last view equals the final state.
pub fn converged(history: &History) -> Verdict {
    let queries = subscriptions(history);
    let mut last_view: BTreeMap<ClientId, (usize, BTreeMap<QueryId, Value>)> = BTreeMap::new();
    for (i, e) in history.events.iter().enumerate() {
        match &e.kind {
            EventKind::Connect { .. } => {
                last_view.insert(e.client, (i, BTreeMap::new()));
            }
            EventKind::Transition { modifications, .. } => {
                let entry = last_view.entry(e.client).or_default();
                entry.0 = i;
                history::apply(&mut entry.1, modifications);
            }
            EventKind::Unsubscribe { query_id } => {
                if let Some(entry) = last_view.get_mut(&e.client) {
                    entry.1.remove(query_id);
                }
            }
            _ => {}
        }
    }
    let mut oracle = Oracle::new();
    let mut ids = IdMap::new();
    for c in committed(history) {
        let _ = apply(&mut oracle, &mut ids, &c);
    }
    let back = reverse(&ids);
    let mut evidence = Vec::new();
    let mut checked = 0;
    for (client, (at, view)) in &last_view {
        for (query_id, held) in view {
            let Some((function, args)) = queries.get(&(*client, *query_id)) else { continue };
            let Ok((f, fields)) = oracle::resolve(Kind::Query, function, &translate_args(args, &ids)) else { continue };
            if f.uses_identity() {
                continue;
            }
            let Ok(want) = oracle.query(f, &fields, None) else { continue };
            checked += 1;
            let (got, want) = (normalize(held, &IdMap::new()), normalize(&normalize(&want, &back), &IdMap::new()));
            if got != want {
                evidence.push(Evidence {
                    message: format!(
                        "client {client} never converged: after the run went quiet, {function} {} still holds {}, the final state gives {}",
                        json::encode(args),
                        short(&got),
                        short(&want)
                    ),
                    events: vec![*at],
                });
            }
        }
    }
    Verdict::new("converged", checked, evidence)
}

/// Oracle ids back to the backend's, so results compare in backend terms.
fn reverse(ids: &IdMap) -> IdMap {
    ids.iter().map(|(backend, oracle)| (oracle.clone(), backend.clone())).collect()
}

fn short(value: &Value) -> String {
    let text = json::encode(value);
    if text.len() > 200 {
        format!("{}…", text.chars().take(200).collect::<String>())
    } else {
        text
    }
}
