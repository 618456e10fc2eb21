//! One socket's protocol state: versions, the query set, the mutation queue
//! and the transition chain.
//!
//! The session only records; the core decides when a transition is built.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use syncspec_protocol::value::Value;
use syncspec_protocol::wire::{QueryId, RequestId, Ts, Version};

use crate::auth::Identity;
use crate::core::Resolved;
use crate::subscriptions::KeyId;

/// A client's session id (the UUID from `Connect`).
pub type SessionId = u128;

/// The most unsent transitions buffered for one session (coalescing).
pub const MAX_UNSENT_TRANSITIONS: u8 = 2;

/// A query in a session's set.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SessionQuery {
    /// Subscribed to a shared cache entry.
    Live {
        /// The shared entry.
        key: KeyId,
        /// The hash of the result last sent, to skip unchanged results.
        last_hash: Option<u64>,
    },
    /// The query cannot run (unknown function, bad args); it fails once.
    Broken {
        /// The failure message.
        message: Arc<str>,
        /// `errorData`, if any.
        data: Option<Value>,
        /// Whether the failure was sent.
        sent: bool,
    },
}

/// A mutation waiting for its turn (one runs at a time per session).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Queued {
    /// The client's request id.
    pub request_id: RequestId,
    /// Its function and validated arguments, or the failure it answers with.
    pub call: Resolved,
    /// The bytes of argument text it was read from, counted against
    /// `Config::max_queued_argument_bytes`.
    pub args_bytes: usize,
}

/// One connection's state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Session {
    /// The session id from `Connect`; `None` until then.
    pub session_id: Option<SessionId>,
    /// `clientTs - server ms` from `Connect`, echoed in transitions.
    pub clock_skew: Option<i64>,
    /// The last query-set version received.
    pub query_set: u32,
    /// The last identity version received.
    pub identity: u32,
    /// The verified caller, if any.
    pub caller: Option<Identity>,
    /// The query set.
    pub queries: BTreeMap<QueryId, SessionQuery>,
    /// Queries removed since the last transition.
    pub removed: BTreeSet<QueryId>,
    /// Queries to (re-)read before the next transition; may hold repeats
    /// (the flush sorts and dedups), which spares a set's node allocation
    /// on the hot path of one invalidated query per session.
    pub dirty: Vec<QueryId>,
    /// Whether something (versions, a mutation's ts, results) awaits a transition.
    pub pending: bool,
    /// The last `endVersion` sent; the next transition starts here.
    pub last_sent: Version,
    /// Transitions handed to the socket and not yet written.
    pub unsent: u8,
    /// Mutations waiting to run, in arrival order.
    pub queue: VecDeque<Queued>,
    /// Whether a mutation of this session is executing.
    pub running: bool,
    /// Actions of this session between call and response.
    pub actions: usize,
    /// When a frame was last emitted, for the idle `Ping`.
    pub last_emit: Ts,
    /// Transitions built for this session so far.
    pub transitions_sent: u64,
    /// The theoretical arrival time of the session's bucket of query
    /// changes (`Config::query_changes`); 0 while it is full.
    pub query_changes: Ts,
}

impl Session {
    /// The version the next transition will end at, for a store at `ts`.
    pub fn next_version(&self, ts: Ts) -> Version {
        Version { query_set: self.query_set, identity: self.identity, ts: ts.max(self.last_sent.ts) }
    }
}
