//! Ordering checkers: the per-session version chain, read-your-writes and
//! exactly-once replay. None of them needs the oracle.

use std::collections::BTreeMap;

use syncspec_protocol::history::{self, ClientId, EventKind, History, RecordedVersion};
use syncspec_protocol::json;
use syncspec_protocol::value::Value;
use syncspec_protocol::wire::{QueryId, RequestId};

use super::{describe, subscriptions, Evidence, Verdict};

const INITIAL: RecordedVersion = RecordedVersion { query_set: 0, identity: 0, ts: 0 };

/// Per client: on each socket the first transition starts at the initial
/// version and each later one starts where the previous ended; across all
/// its sockets the end ts never decreases.
pub fn version_chain(history: &History) -> Verdict {
    let mut expected: BTreeMap<ClientId, RecordedVersion> = BTreeMap::new();
    let mut highest: BTreeMap<ClientId, (u64, usize)> = BTreeMap::new();
    let mut evidence = Vec::new();
    let mut checked = 0;
    for (i, e) in history.events.iter().enumerate() {
        match &e.kind {
            EventKind::Connect { .. } => {
                expected.insert(e.client, INITIAL);
            }
            EventKind::Transition { start, end, .. } => {
                checked += 1;
                let want = expected.get(&e.client).copied().unwrap_or(INITIAL);
                if *start != want {
                    evidence.push(Evidence {
                        message: format!(
                            "client {}: transition starts at {start:?}, but the previous one on this socket ended at {want:?} (a gap in the version chain)",
                            e.client
                        ),
                        events: vec![i],
                    });
                }
                if let Some(&(ts, at)) = highest.get(&e.client) {
                    if end.ts < ts {
                        evidence.push(Evidence {
                            message: format!(
                                "client {}: transition ends at ts {}, below the ts {ts} it already saw (event {at}): ts went backwards",
                                e.client, end.ts
                            ),
                            events: vec![at, i],
                        });
                    }
                }
                if highest.get(&e.client).is_none_or(|&(ts, _)| end.ts >= ts) {
                    highest.insert(e.client, (end.ts, i));
                }
                expected.insert(e.client, *end);
            }
            _ => {}
        }
    }
    Verdict::new("version-chain", checked, evidence)
}

/// Every successful mutation is resolved by a transition at or past its
/// commit ts, and once it is, a `messages:send` shows in every
/// `messages:list` subscription of the same client on that channel.
pub fn read_your_writes(history: &History) -> Verdict {
    let queries = subscriptions(history);
    let mut evidence = Vec::new();
    let mut checked = 0;
    let mut invoked: BTreeMap<(ClientId, RequestId), (String, Value)> = BTreeMap::new();
    let mut ok: BTreeMap<(ClientId, RequestId), (usize, u64, Value)> = BTreeMap::new();
    let mut resolved: BTreeMap<(ClientId, RequestId), usize> = BTreeMap::new();
    // Each client's latest results on its current socket.
    let mut views: BTreeMap<ClientId, BTreeMap<QueryId, Value>> = BTreeMap::new();
    let mut gave_up = std::collections::BTreeSet::new();
    for (i, e) in history.events.iter().enumerate() {
        match &e.kind {
            EventKind::Connect { .. } => {
                views.insert(e.client, BTreeMap::new());
            }
            EventKind::Invoke { request_id, function, args, .. } => {
                invoked
                    .entry((e.client, *request_id))
                    .or_insert_with(|| (function.clone(), json::decode(args).unwrap_or(Value::Null)));
            }
            EventKind::Ok { request_id, result, ts } => {
                ok.entry((e.client, *request_id)).or_insert((i, *ts, json::decode(result).unwrap_or(Value::Null)));
            }
            EventKind::Info { request_id, .. } => {
                gave_up.insert((e.client, *request_id));
            }
            EventKind::Transition { modifications, .. } => {
                let view = views.entry(e.client).or_default();
                history::apply(view, modifications);
            }
            EventKind::Resolved { request_id } => {
                checked += 1;
                resolved.insert((e.client, *request_id), i);
                let Some((function, args)) = invoked.get(&(e.client, *request_id)) else { continue };
                let Some((_, _, Value::String(id))) = ok.get(&(e.client, *request_id)) else { continue };
                if function != "messages:send" {
                    continue;
                }
                let channel = args.as_object().and_then(|a| a.get("channel")).cloned();
                let view = views.get(&e.client).cloned().unwrap_or_default();
                for ((client, query_id), (query, query_args)) in &queries {
                    let same_channel = query_args.as_object().and_then(|a| a.get("channel")).cloned() == channel;
                    if *client != e.client || query != "messages:list" || !same_channel {
                        continue;
                    }
                    let Some(Value::Array(rows)) = view.get(query_id) else { continue };
                    let shown = rows
                        .iter()
                        .any(|r| r.as_object().and_then(|o| o.get("_id")) == Some(&Value::String(id.clone())));
                    if !shown {
                        evidence.push(Evidence {
                            message: format!(
                                "client {}: messages:send returned {id:?} and resolved, but its own messages:list subscription (query {query_id}) does not show it",
                                e.client
                            ),
                            events: vec![i],
                        });
                    }
                }
            }
            _ => {}
        }
    }
    for (key, (at, ts, _)) in &ok {
        if !resolved.contains_key(key) && !gave_up.contains(key) {
            evidence.push(Evidence {
                message: format!(
                    "client {}: request {} committed at ts {ts} ({}) but no transition at or past that ts ever arrived, so it never resolved",
                    key.0,
                    key.1,
                    describe(&history.events[*at])
                ),
                events: vec![*at],
            });
        }
    }
    Verdict::new("read-your-writes", checked + ok.len(), evidence)
}

/// A mutation sent again under the same session and request id returns the
/// original result and commit ts.
pub fn exactly_once(history: &History) -> Verdict {
    let mut first: BTreeMap<(ClientId, RequestId), (usize, &serde_json::Value, u64)> = BTreeMap::new();
    let mut evidence = Vec::new();
    let mut checked = 0;
    for (i, e) in history.events.iter().enumerate() {
        let EventKind::Ok { request_id, result, ts } = &e.kind else { continue };
        match first.get(&(e.client, *request_id)) {
            None => {
                first.insert((e.client, *request_id), (i, result, *ts));
            }
            Some(&(at, original, original_ts)) => {
                checked += 1;
                if original != result || original_ts != *ts {
                    evidence.push(Evidence {
                        message: format!(
                            "client {}: request {request_id} answered twice with different outcomes: {original} at ts {original_ts}, then {result} at ts {ts} (applied twice)",
                            e.client
                        ),
                        events: vec![at, i],
                    });
                }
            }
        }
    }
    Verdict::new("exactly-once", checked, evidence)
}
