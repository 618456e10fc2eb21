//! Histories: what a client saw, as Jepsen-style records on one monotonic
//! clock, serializable to JSON so a failure can be replayed and read.
//!
//! Every simulated client of a run writes into one shared `Recorder`, so the
//! events of all clients are ordered by one clock. Values are kept in Convex
//! JSON (the wire form), which round-trips every value type.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::json;
use crate::value::Value;
use crate::wire::{QueryId, RequestId, Ts};

/// A harness-chosen id for one simulated client.
pub type ClientId = u32;

/// One end of a transition, as recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedVersion {
    /// `querySet`.
    pub query_set: u32,
    /// `identity`.
    pub identity: u32,
    /// `ts`, decoded.
    pub ts: Ts,
}

/// One query change inside a recorded transition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum RecordedModification {
    /// `QueryUpdated`.
    Updated {
        /// The client's query id.
        query_id: QueryId,
        /// The value in Convex JSON.
        value: Json,
    },
    /// `QueryFailed`.
    Failed {
        /// The client's query id.
        query_id: QueryId,
        /// The message.
        message: String,
        /// `errorData` in Convex JSON.
        data: Option<Json>,
    },
    /// `QueryRemoved`.
    Removed {
        /// The client's query id.
        query_id: QueryId,
    },
}

/// Applies one transition's modifications to `view`, a client's queries
/// by id: an update sets the query's value, decoded (`null` if it does not
/// decode); a failure or removal leaves it with none.
pub fn apply(view: &mut BTreeMap<QueryId, Value>, modifications: &[RecordedModification]) {
    for m in modifications {
        match m {
            RecordedModification::Updated { query_id, value } => {
                view.insert(*query_id, json::decode(value).unwrap_or(Value::Null));
            }
            RecordedModification::Failed { query_id, .. } | RecordedModification::Removed { query_id } => {
                view.remove(query_id);
            }
        }
    }
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// A socket opened and `Connect` was sent.
    Connect {
        /// The session id (kept across reconnects).
        session_id: String,
        /// How many sockets this client opened before.
        connection_count: u32,
    },
    /// The socket ended.
    Disconnect {
        /// Why, as the client saw it.
        reason: String,
    },
    /// A query was added to the query set.
    Subscribe {
        /// The client's query id.
        query_id: QueryId,
        /// `module:function`.
        function: String,
        /// The argument object in Convex JSON.
        args: Json,
    },
    /// A query was removed from the query set.
    Unsubscribe {
        /// The client's query id.
        query_id: QueryId,
    },
    /// A mutation was sent (or re-sent after a reconnect, `replay: true`).
    Invoke {
        /// Its request id.
        request_id: RequestId,
        /// `module:function`.
        function: String,
        /// The argument object in Convex JSON.
        args: Json,
        /// Whether this is a re-send of an unresolved mutation.
        replay: bool,
    },
    /// A successful `MutationResponse`.
    Ok {
        /// The request it answers.
        request_id: RequestId,
        /// The result in Convex JSON.
        result: Json,
        /// The commit ts it reported.
        ts: Ts,
    },
    /// A failed `MutationResponse`.
    Fail {
        /// The request it answers.
        request_id: RequestId,
        /// The message.
        message: String,
        /// `errorData` in Convex JSON.
        data: Option<Json>,
    },
    /// The client resolved a successful mutation (a transition reached its ts).
    Resolved {
        /// The request.
        request_id: RequestId,
    },
    /// The outcome is unknown (the client gave up waiting).
    Info {
        /// The request.
        request_id: RequestId,
        /// Why.
        note: String,
    },
    /// A `Transition`.
    Transition {
        /// `startVersion`.
        start: RecordedVersion,
        /// `endVersion`.
        end: RecordedVersion,
        /// The query changes.
        modifications: Vec<RecordedModification>,
    },
    /// A `FatalError`.
    Fatal {
        /// The message.
        message: String,
    },
    /// An `AuthError`.
    AuthError {
        /// The message.
        message: String,
    },
    /// An `Action` was sent (never re-sent: a lost socket fails it).
    Action {
        /// Its request id (mutations and actions of a session share them).
        request_id: RequestId,
        /// `module:function`.
        function: String,
        /// The argument object in Convex JSON.
        args: Json,
    },
    /// An `ActionResponse`.
    ActionResponse {
        /// The request it answers.
        request_id: RequestId,
        /// Whether it succeeded.
        success: bool,
    },
    /// A frame the client could not read.
    Unreadable {
        /// What was wrong.
        error: String,
    },
}

/// One recorded event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Which client.
    pub client: ClientId,
    /// Microseconds since the recorder started, on a monotonic clock.
    pub at_us: u64,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// A whole run's events, in recording order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// Every event, ordered by `at_us` (ties in recording order).
    pub events: Vec<Event>,
}

impl History {
    /// The events of one client.
    pub fn of(&self, client: ClientId) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(move |e| e.client == client)
    }

    /// Every client that appears.
    pub fn clients(&self) -> Vec<ClientId> {
        let mut ids: Vec<ClientId> = self.events.iter().map(|e| e.client).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

/// Shared by every client of a run: one clock, one event list.
#[derive(Clone, Debug)]
pub struct Recorder {
    start: Instant,
    /// The events so far. A std mutex: held for a push or a copy, never
    /// across an await.
    events: Arc<Mutex<Vec<Event>>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    /// A recorder whose clock starts now.
    pub fn new() -> Recorder {
        Recorder { start: Instant::now(), events: Arc::new(Mutex::new(Vec::new())) }
    }

    /// Records one event now.
    pub fn record(&self, client: ClientId, kind: EventKind) {
        let at_us = self.start.elapsed().as_micros() as u64;
        self.events.lock().unwrap_or_else(|p| p.into_inner()).push(Event { client, at_us, kind });
    }

    /// A copy of everything recorded so far.
    pub fn history(&self) -> History {
        History { events: self.events.lock().unwrap_or_else(|p| p.into_inner()).clone() }
    }

    /// Microseconds since the recorder started.
    pub fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }
}
