//! Checkers: verdicts over recorded histories, each with the evidence that
//! shows it.
//!
//! A checker reads a `History` and returns a `Verdict`; a failure is data
//! (the events that show it), never a panic or an `Err`. Checkers that need
//! the truth replay the committed mutations through the reference server's
//! `Oracle`, in the order of the commit timestamps the backend claimed. The
//! invariant checkers need no timestamps at all, so a backend that reports
//! false timestamps still fails them.

pub mod invariants;
pub mod order;
pub mod replay;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use syncspec_protocol::history::{ClientId, Event, EventKind, History};
use syncspec_protocol::json;
use syncspec_protocol::value::Value;
use syncspec_protocol::wire::{QueryId, RequestId, Ts};

// The report keeps outcomes and evidence as checkers produce them; they are
// the report's types so that a saved result reads back the same.
pub use syncspec_reports::conformance::{Evidence, Outcome};

/// A checker's judgement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Which checker.
    pub checker: String,
    /// Pass or Fail (checkers do not give the other outcomes).
    pub outcome: Outcome,
    /// Why it failed, when it did (at most `MAX_EVIDENCE` items).
    pub evidence: Vec<Evidence>,
    /// How many things were checked, so a pass over nothing shows.
    pub checked: usize,
}

/// Evidence beyond this many items is counted, not kept.
pub const MAX_EVIDENCE: usize = 20;

impl Verdict {
    fn new(checker: &str, checked: usize, mut evidence: Vec<Evidence>) -> Verdict {
        let total = evidence.len();
        if total > MAX_EVIDENCE {
            evidence.truncate(MAX_EVIDENCE);
            evidence.push(Evidence { message: format!("… and {} more", total - MAX_EVIDENCE), events: vec![] });
        }
        let outcome = if evidence.is_empty() { Outcome::Pass } else { Outcome::Fail };
        Verdict { checker: checker.to_owned(), outcome, evidence, checked }
    }

    /// Whether the checker passed.
    pub fn passed(&self) -> bool {
        self.outcome == Outcome::Pass
    }
}

/// A mutation that committed, as the backend reported it.
#[derive(Clone, Debug)]
pub(crate) struct Committed {
    pub(crate) client: ClientId,
    pub(crate) request_id: RequestId,
    pub(crate) function: String,
    pub(crate) args: Value,
    pub(crate) result: Value,
    pub(crate) ts: Ts,
    /// The index of its (first) `Ok` event.
    pub(crate) event: usize,
}

/// Every committed mutation, once each (a replay's second `Ok` is not a
/// second commit), in the order of the backend's claimed commit ts.
pub(crate) fn committed(history: &History) -> Vec<Committed> {
    let mut invoked: BTreeMap<(ClientId, RequestId), (String, Value)> = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for (i, e) in history.events.iter().enumerate() {
        match &e.kind {
            EventKind::Invoke { request_id, function, args, .. } => {
                let args = json::decode(args).unwrap_or(Value::Null);
                invoked.entry((e.client, *request_id)).or_insert((function.clone(), args));
            }
            EventKind::Ok { request_id, result, ts } => {
                if !seen.insert((e.client, *request_id)) {
                    continue;
                }
                if let Some((function, args)) = invoked.get(&(e.client, *request_id)) {
                    out.push(Committed {
                        client: e.client,
                        request_id: *request_id,
                        function: function.clone(),
                        args: args.clone(),
                        result: json::decode(result).unwrap_or(Value::Null),
                        ts: *ts,
                        event: i,
                    });
                }
            }
            _ => {}
        }
    }
    out.sort_by_key(|c| (c.ts, c.event));
    out
}

/// The queries each client has subscribed, by id.
pub(crate) fn subscriptions(history: &History) -> BTreeMap<(ClientId, QueryId), (String, Value)> {
    history
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Subscribe { query_id, function, args } => {
                Some(((e.client, *query_id), (function.clone(), json::decode(args).unwrap_or(Value::Null))))
            }
            _ => None,
        })
        .collect()
}

/// A field of an object value; `None` for a missing field or a value that
/// is not an object. Checkers and cases read results with it.
pub(crate) fn field<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    value.as_object().and_then(|o| o.get(name))
}

/// Shows an event compactly for evidence messages.
pub(crate) fn describe(event: &Event) -> String {
    let text = serde_json::to_string(&event.kind).unwrap_or_default();
    let short: String = text.chars().take(240).collect();
    format!("client {} at {} µs: {short}", event.client, event.at_us)
}

/// Removes what legitimately differs between two backends (commit-time
/// stamps) and maps the backend's ids to the oracle's.
pub(crate) fn normalize(value: &Value, ids: &BTreeMap<String, String>) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .filter(|(k, _)| !matches!(k.as_ref(), "_creationTime" | "lastSeen" | "updatedAt"))
                .map(|(k, v)| {
                    let v = match (k.as_ref(), v) {
                        ("_id", Value::String(id)) => {
                            Value::String(ids.get(id).cloned().unwrap_or_else(|| format!("unmapped:{id}")))
                        }
                        _ => normalize(v, ids),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| normalize(v, ids)).collect()),
        other => other.clone(),
    }
}
