//! A failed case's history in words: each event as one line a person can
//! read, and the window of events around the evidence.

use syncspec_protocol::history::{Event, EventKind, RecordedModification};

use crate::conformance::Excerpt;

/// Events shown before and after the ones the evidence names.
const CONTEXT: usize = 6;
/// The most rows a timeline shows.
const MAX_ROWS: usize = 60;
/// Values are cut to this many characters.
const VALUE_CHARS: usize = 100;

/// One row of a timeline.
#[derive(Clone, Debug)]
pub(crate) struct Row {
    /// The event's index in the history.
    pub(crate) index: usize,
    /// Milliseconds since the history began.
    pub(crate) at_ms: f64,
    /// The client.
    pub(crate) client: u32,
    /// What happened, in words.
    pub(crate) text: String,
    /// Whether the evidence names this event.
    pub(crate) named: bool,
}

/// The rows around the named events (or the excerpt's last events when none
/// is named), and how many events the whole history has.
pub(crate) fn window(history: &Excerpt, named: &[usize]) -> (Vec<Row>, usize) {
    let events = &history.events;
    if events.is_empty() {
        return (Vec::new(), history.total);
    }
    let position = |index: usize| events.partition_point(|e| e.index < index);
    let (from, to) = match (named.iter().min(), named.iter().max()) {
        (Some(lo), Some(hi)) => {
            (position(*lo).saturating_sub(CONTEXT), (position(*hi) + CONTEXT + 1).min(events.len()))
        }
        _ => (events.len().saturating_sub(MAX_ROWS / 2), events.len()),
    };
    // A wide gap between named events keeps the start and end of the window.
    let positions: Vec<usize> = if to - from <= MAX_ROWS {
        (from..to).collect()
    } else {
        let mut keep: Vec<usize> =
            named.iter().map(|i| position(*i)).flat_map(|p| p.saturating_sub(2)..(p + 3).min(events.len())).collect();
        keep.sort_unstable();
        keep.dedup();
        keep.truncate(MAX_ROWS);
        keep
    };
    let rows = positions
        .iter()
        .map(|&p| {
            let e = &events[p];
            Row {
                index: e.index,
                at_ms: e.event.at_us as f64 / 1000.0,
                client: e.event.client,
                text: describe(&e.event),
                named: named.contains(&e.index),
            }
        })
        .collect();
    (rows, history.total)
}

/// One event in words.
pub(crate) fn describe(e: &Event) -> String {
    match &e.kind {
        EventKind::Connect { session_id, connection_count } => {
            format!("connects (socket {} of session {})", connection_count + 1, short(session_id))
        }
        EventKind::Disconnect { reason } => format!("disconnects: {reason}"),
        EventKind::Subscribe { query_id, function, args } => {
            format!("subscribes to {function}({}) as query {query_id}", value(args))
        }
        EventKind::Unsubscribe { query_id } => format!("removes query {query_id}"),
        EventKind::Invoke { request_id, function, args, replay } => {
            format!("{} mutation #{request_id} {function}({})", if *replay { "re-sends" } else { "sends" }, value(args))
        }
        EventKind::Ok { request_id, result, ts } => {
            format!("mutation #{request_id} succeeded → {} (commit ts {ts})", value(result))
        }
        EventKind::Fail { request_id, message, .. } => format!("mutation #{request_id} failed: {message}"),
        EventKind::Resolved { request_id } => format!("mutation #{request_id} resolved (a transition reached its ts)"),
        EventKind::Info { request_id, note } => format!("mutation #{request_id} outcome unknown: {note}"),
        EventKind::Transition { start, end, modifications } => {
            let changes: Vec<String> = modifications
                .iter()
                .map(|m| match m {
                    RecordedModification::Updated { query_id, value: v } => format!("query {query_id} = {}", value(v)),
                    RecordedModification::Failed { query_id, message, .. } => {
                        format!("query {query_id} failed: {message}")
                    }
                    RecordedModification::Removed { query_id } => format!("query {query_id} removed"),
                })
                .collect();
            format!(
                "transition v{}→v{}, ts {}→{}{}",
                start.query_set,
                end.query_set,
                start.ts,
                end.ts,
                if changes.is_empty() { " (no changes)".to_owned() } else { format!(": {}", changes.join("; ")) }
            )
        }
        EventKind::Fatal { message } => format!("FatalError: {message}"),
        EventKind::AuthError { message } => format!("AuthError: {message}"),
        EventKind::Action { request_id, function, args } => {
            format!("sends action #{request_id} {function}({})", value(args))
        }
        EventKind::ActionResponse { request_id, success } => {
            format!("action #{request_id} {}", if *success { "succeeded" } else { "failed" })
        }
        EventKind::Unreadable { error } => format!("unreadable frame: {error}"),
    }
}

fn value(v: &serde_json::Value) -> String {
    let text = v.to_string();
    if text.chars().count() <= VALUE_CHARS {
        text
    } else {
        format!("{}…", text.chars().take(VALUE_CHARS).collect::<String>())
    }
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}
