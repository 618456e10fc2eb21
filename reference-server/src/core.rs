//! The reactive core: a deterministic state machine with no IO, no clock and
//! no threads.
//!
//! Inputs are events (a session opened, a client message, a mutation's
//! execution finished, a frame delivered, a tick); outputs are frames for
//! sessions and effects (run this mutation at this snapshot). The tokio shell
//! in `server.rs` feeds it; so can a test or a model checker. Time arrives
//! with every input as wall-clock nanoseconds and never goes backwards.
//!
//! A mutation runs in two steps, so other commits can land in between:
//! `Output::Execute` hands a `Job` (function, args, snapshot) to whoever
//! runs it, and `Input::Executed` brings back its read and write sets. The
//! commit step validates the read set against every write committed after
//! the snapshot (OCC) and retries at a newer snapshot on conflict.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use convex_sync_types::types::SerializedArgs;
use convex_sync_types::{ClientMessage, QuerySetModification};
use serde_json::value::RawValue;
use syncspec_protocol::catalogue::{ErrorCode, Function, Kind};
use syncspec_protocol::value::{Object, Value};
use syncspec_protocol::wire::{self, Modification, QueryId, RequestId, Transition, Ts};

use crate::actions::{Action, Step};
use crate::auth::{Identity, Verifier};
use crate::functions::{self, UserError};
use crate::ratelimit::{self, RateLimiter};
use crate::session::{Queued, Session, SessionId, SessionQuery, MAX_UNSENT_TRANSITIONS};
use crate::store::{DocId, IndexId, Snapshot, Store, Table, TouchedKey, Write};
use crate::subscriptions::{ConnId, QueryKey, Subscriptions};
use crate::txn::{ReadSet, Txn, WriteSet};

use records::{Record, Records};

/// An execution attempt's id.
pub type JobId = u64;

/// How many times a conflicting mutation re-executes at a newer snapshot
/// before the core runs it itself at the head, where it cannot conflict.
pub const MAX_OCC_RETRIES: u32 = 4;
/// A sync `Ping` goes to a session that has been sent nothing for this long.
pub const PING_AFTER_NS: u64 = 15_000_000_000;
/// The most actions one session may have running (Convex's is about 1000).
pub const MAX_ACTIONS_PER_SESSION: usize = 1000;
/// Ids reserved for the inserts of one execution attempt.
const IDS_PER_JOB: u64 = 1 << 20;

/// The core's settings.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Config {
    /// How long a presence row outlives its last heartbeat: each heartbeat
    /// schedules `presence:expire` this far ahead and cancels the last one.
    pub presence_ttl_ns: u64,
    /// Deliberate bugs, each breaking one guarantee; empty unless asked for.
    pub faults: BTreeSet<Fault>,
    /// The per-user limit on the catalogue's high-frequency functions.
    pub rate: ratelimit::Rate,
    /// The most queries one session may hold; a `ModifyQuerySet` that would
    /// take it past this is a protocol error (`TooManyQueries`), so one
    /// client cannot make the core build and keep huge transitions.
    pub max_queries_per_session: usize,
    /// How many queries a session may add or remove, each one token of a
    /// bucket per session; a `ModifyQuerySet` that finds too few ends the
    /// session (`TooManyQueryChanges`, close 1013, so clients back off), so
    /// one client cannot keep the core subscribing and unsubscribing.
    pub query_changes: ratelimit::Rate,
    /// How long an idempotency record outlives its last use (see `records`).
    pub idempotency_retention_ns: u64,
    /// The most messages kept per chat channel, if bounded: once a second
    /// the oldest beyond it are deleted (a commit like any other, so
    /// subscribers see them go), and a long run's memory levels off.
    pub retain_messages: Option<usize>,
    /// The most mutations one session may have queued (Convex's 1,000);
    /// past it, close 1013 `TooManyConcurrentMutations`.
    pub max_queued_mutations: usize,
    /// The most argument text one session's queued mutations may have been
    /// read from (by default two of the largest calls), so a client
    /// pipelining megabytes of arguments is closed (1013) instead of held:
    /// 1,000 mutations of 16 MiB would be 16 GiB.
    pub max_queued_argument_bytes: usize,
}

impl Config {
    /// The catalogue's defaults: a 10 s presence TTL, no faults, 10,000
    /// queries a session (a busy app screen holds tens), 10,000 query
    /// changes a second with a burst of 20,000 (a full set added and
    /// replaced at once), idempotency records kept 15 minutes after their
    /// last use, and every message kept.
    pub fn standard() -> Config {
        Config {
            presence_ttl_ns: 10_000_000_000,
            faults: BTreeSet::new(),
            rate: ratelimit::HIGH_FREQUENCY,
            max_queries_per_session: 10_000,
            query_changes: Config::query_changes_per_second(10_000),
            idempotency_retention_ns: 15 * 60 * 1_000_000_000,
            retain_messages: None,
            max_queued_mutations: 1000,
            max_queued_argument_bytes: 32 * 1024 * 1024,
        }
    }

    /// A bucket of `per_second` query changes a second, holding two seconds' worth.
    pub const fn query_changes_per_second(per_second: u64) -> ratelimit::Rate {
        ratelimit::Rate { burst: per_second.saturating_mul(2), interval_ns: 1_000_000_000 / per_second }
    }

    /// Whether a fault is on.
    pub fn has(&self, fault: Fault) -> bool {
        self.faults.contains(&fault)
    }
}

/// A switch that breaks exactly one guarantee: the negative controls of the
/// conformance suite and the models. Off unless asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// Commit without checking the read set: lost updates, write skew.
    SkipOccValidation,
    /// Send only the first of a transition's query changes and defer the
    /// rest to the next transition: the view at the first one's ts is torn.
    TornTransition,
    /// Re-run queries against the snapshot before the latest commit while
    /// the transition claims the latest ts.
    StaleResults,
    /// Never send a transition without query changes, so a mutation whose
    /// write no subscription sees is never resolved.
    SkipEmptyTransition,
    /// Every third transition of a session starts at a version that is not
    /// the previous end.
    BreakVersionChain,
    /// Every third transition of a session ends below the previous end ts.
    TsRegress,
    /// Ignore idempotency records: a replayed mutation applies again.
    ReplayTwice,
    /// Drop every other commit's invalidations: some subscribers keep a
    /// stale result.
    LoseInvalidation,
    /// Skip the per-user rate limit.
    NoRateLimit,
    /// Commit a multi-document mutation in two commits, so others can see
    /// it half applied.
    NonAtomicMutation,
    /// Answer an HTTP call whose function failed with status 560, which
    /// the Python `ConvexHttpClient` cannot read.
    HttpErrorStatus560,
    /// Commit HTTP mutations without invalidating any subscription.
    HttpWritesUnseen,
    /// Drop the connection of a request for an unknown route, unanswered.
    HttpDropUnknown,
    /// Send no WebSocket pings, so an idle client is cut at the idle timeout.
    NoWsPing,
    /// Stamp transitions with the last commit's ts (0 before the first),
    /// not the current time.
    CommitTsOnly,
    /// Never show a function the caller's identity.
    IgnoreIdentity,
    /// Keep identity-dependent queries on the previous identity's result
    /// after a new `Authenticate`.
    StaleIdentityQueries,
    /// Believe any `User` token's `sub` claim without verifying it.
    AcceptAnyToken,
    /// Validate commits only against write-write conflicts (snapshot
    /// isolation, as many databases do): write skew goes through.
    SnapshotIsolation,
    /// Re-read a subscribed page as `numItems` rows from its cursor on
    /// every change, instead of keeping the end its first result had: as
    /// rows arrive or leave, consecutive pages overlap or leave a gap.
    PageEndMoves,
    /// Run each mutation an action calls twice, as a backend that retries
    /// an action's mutation without idempotency would: tokens doubled.
    ActionMutationTwice,
    /// Undo what a failed action committed, as if actions were
    /// transactions: a half-streamed reply vanishes.
    ActionRollback,
    /// Commit the functions a mutation scheduled even when the mutation
    /// failed or was retried after a conflict (a scheduler fed at call time).
    ScheduleDespiteAbort,
    /// Run each scheduled function twice, once without the guard that
    /// makes it exactly once.
    ScheduledTwice,
    /// Run scheduled functions as soon as they are written, whatever their delay.
    ScheduledEarly,
    /// End a socket at a WebSocket framing violation or an oversize message
    /// with a bare TCP close and no close frame, as the server once did: the
    /// client sees 1006 and cannot tell it from a network failure.
    BareCloseOnBadFrame,
    /// Ignore the bound on a socket's unsent frames (`Limits::max_unsent_frames`):
    /// the server keeps everything for a client that does not read.
    UnboundedBacklog,
    /// Never close a connection that has not sent its request headers
    /// (`Limits::handshake_timeout` off, and hyper's own default with it).
    NoHandshakeTimeout,
    /// Keep only the first queries of a `ModifyQuerySet` that would pass
    /// `max_queries_per_session`, and serve those with no error for the rest.
    TruncateQuerySet,
}

impl Fault {
    /// Every fault.
    pub const ALL: &'static [Fault] = &[
        Fault::SkipOccValidation,
        Fault::TornTransition,
        Fault::StaleResults,
        Fault::SkipEmptyTransition,
        Fault::BreakVersionChain,
        Fault::TsRegress,
        Fault::ReplayTwice,
        Fault::LoseInvalidation,
        Fault::NoRateLimit,
        Fault::NonAtomicMutation,
        Fault::HttpErrorStatus560,
        Fault::HttpWritesUnseen,
        Fault::HttpDropUnknown,
        Fault::NoWsPing,
        Fault::CommitTsOnly,
        Fault::IgnoreIdentity,
        Fault::StaleIdentityQueries,
        Fault::AcceptAnyToken,
        Fault::SnapshotIsolation,
        Fault::PageEndMoves,
        Fault::ActionMutationTwice,
        Fault::ActionRollback,
        Fault::ScheduleDespiteAbort,
        Fault::ScheduledTwice,
        Fault::ScheduledEarly,
        Fault::BareCloseOnBadFrame,
        Fault::UnboundedBacklog,
        Fault::NoHandshakeTimeout,
        Fault::TruncateQuerySet,
    ];

    /// The switch's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Fault::SkipOccValidation => "skip-occ-validation",
            Fault::TornTransition => "torn-transition",
            Fault::StaleResults => "stale-results",
            Fault::SkipEmptyTransition => "skip-empty-transition",
            Fault::BreakVersionChain => "break-version-chain",
            Fault::TsRegress => "ts-regress",
            Fault::ReplayTwice => "replay-twice",
            Fault::LoseInvalidation => "lose-invalidation",
            Fault::NoRateLimit => "no-rate-limit",
            Fault::NonAtomicMutation => "non-atomic-mutation",
            Fault::HttpErrorStatus560 => "http-error-status-560",
            Fault::HttpWritesUnseen => "http-writes-unseen",
            Fault::HttpDropUnknown => "http-drop-unknown",
            Fault::NoWsPing => "no-ws-ping",
            Fault::CommitTsOnly => "commit-ts-only",
            Fault::IgnoreIdentity => "ignore-identity",
            Fault::StaleIdentityQueries => "stale-identity-queries",
            Fault::AcceptAnyToken => "accept-any-token",
            Fault::SnapshotIsolation => "snapshot-isolation",
            Fault::PageEndMoves => "page-end-moves",
            Fault::ActionMutationTwice => "action-mutation-twice",
            Fault::ActionRollback => "action-rollback",
            Fault::ScheduleDespiteAbort => "schedule-despite-abort",
            Fault::ScheduledTwice => "scheduled-twice",
            Fault::ScheduledEarly => "scheduled-early",
            Fault::BareCloseOnBadFrame => "bare-close-on-bad-frame",
            Fault::UnboundedBacklog => "unbounded-backlog",
            Fault::NoHandshakeTimeout => "no-handshake-timeout",
            Fault::TruncateQuerySet => "truncate-query-set",
        }
    }

    /// What the switch breaks.
    pub fn description(self) -> &'static str {
        match self {
            Fault::SkipOccValidation => "commits mutations without validating their read sets (OCC off)",
            Fault::TornTransition => "splits a transition's query changes over two transitions (torn views)",
            Fault::StaleResults => "evaluates pushed queries one commit behind the ts they claim",
            Fault::SkipEmptyTransition => "sends no transition without changes (mutations never resolve)",
            Fault::BreakVersionChain => "starts every third transition away from the previous end version",
            Fault::TsRegress => "ends every third transition below the previous ts",
            Fault::ReplayTwice => "ignores idempotency records (a replayed mutation applies again)",
            Fault::LoseInvalidation => "drops every other commit's invalidations (stale subscribers)",
            Fault::NoRateLimit => "accepts any rate of cursor moves and heartbeats",
            Fault::NonAtomicMutation => "commits a multi-document mutation in two commits",
            Fault::HttpErrorStatus560 => {
                "answers HTTP calls whose function failed with status 560 (Python clients cannot read it)"
            }
            Fault::HttpWritesUnseen => "commits HTTP mutations without telling any subscriber",
            Fault::HttpDropUnknown => "drops the connection of a request for an unknown route",
            Fault::NoWsPing => "sends no WebSocket pings (idle clients are cut at the idle timeout)",
            Fault::CommitTsOnly => "stamps transitions with the last commit's ts (0 before the first)",
            Fault::IgnoreIdentity => "never shows functions the caller's identity",
            Fault::StaleIdentityQueries => "keeps identity-dependent queries on the previous identity's result",
            Fault::AcceptAnyToken => "believes any User token's sub claim without verifying it",
            Fault::SnapshotIsolation => "validates commits against write-write conflicts only (write skew)",
            Fault::PageEndMoves => "re-reads subscribed pages from their cursor instead of keeping their end",
            Fault::ActionMutationTwice => "runs each mutation an action calls twice",
            Fault::ActionRollback => "undoes what a failed action committed, as if it were a transaction",
            Fault::ScheduleDespiteAbort => "keeps what failed or retried mutations scheduled",
            Fault::ScheduledTwice => "runs each scheduled function twice",
            Fault::ScheduledEarly => "runs scheduled functions at once, ignoring their delay",
            Fault::BareCloseOnBadFrame => {
                "ends a socket at a framing violation or an oversize message with no close frame (1006)"
            }
            Fault::UnboundedBacklog => "keeps every frame for a client that does not read (no unsent-frame bound)",
            Fault::NoHandshakeTimeout => "never closes a connection that has not sent its request headers",
            Fault::TruncateQuerySet => {
                "serves only the first queries of a query set past the session limit, with no error"
            }
        }
    }

    /// Looks a fault up by name.
    pub fn from_name(name: &str) -> Option<Fault> {
        Fault::ALL.iter().copied().find(|f| f.name() == name)
    }
}

/// A call's function and validated arguments, or the failure its caller gets.
pub type Resolved = Result<(Function, Arc<Object>), Failure>;

/// A client message with the arguments of every call it makes already
/// decoded and validated: a `Mutation`'s or `Action`'s, and each query a
/// `ModifyQuerySet` adds, in order. `Incoming::new` is pure and runs in the
/// shell, outside the core's lock, so a frame of many megabytes stalls only
/// its own socket; the message keeps none of the arguments' text.
#[derive(Clone, Debug)]
pub struct Incoming {
    message: ClientMessage,
    calls: Vec<Resolved>,
    /// The bytes of argument text the calls were read from.
    args_bytes: usize,
}

impl Incoming {
    /// Resolves `message`'s calls and drops their text.
    pub fn new(mut message: ClientMessage) -> Incoming {
        let mut calls = Vec::new();
        let mut args_bytes = 0;
        let mut take = |kind: Kind, path: &str, args: &mut SerializedArgs| {
            args_bytes += args.get().len();
            calls.push(resolve(kind, path, args.get()));
            *args = SerializedArgs::from_raw(RawValue::NULL.to_owned());
        };
        match &mut message {
            ClientMessage::Mutation { udf_path, args, .. } => {
                take(Kind::Mutation, &String::from(udf_path.clone()), args)
            }
            ClientMessage::Action { udf_path, args, .. } => take(Kind::Action, &String::from(udf_path.clone()), args),
            ClientMessage::ModifyQuerySet { modifications, .. } => {
                for m in modifications {
                    if let QuerySetModification::Add(q) = m {
                        take(Kind::Query, &String::from(q.udf_path.clone()), &mut q.args);
                    }
                }
            }
            _ => {}
        }
        Incoming { message, calls, args_bytes }
    }
}

impl From<ClientMessage> for Incoming {
    fn from(message: ClientMessage) -> Incoming {
        Incoming::new(message)
    }
}

/// An event for the core.
#[derive(Clone, Debug)]
pub enum Input {
    /// A socket opened.
    Open {
        /// Its connection id (chosen by the caller, never reused).
        conn: ConnId,
    },
    /// A parsed client message, its calls resolved (`Incoming::new`).
    Message {
        /// The connection it came from.
        conn: ConnId,
        /// The message.
        message: Incoming,
    },
    /// An `Authenticate` whose token the shell has checked: the identity it
    /// names (`None` for `tokenType: "None"`), or why it was refused.
    Authenticated {
        /// The connection it came from.
        conn: ConnId,
        /// The frame's `baseVersion`.
        base_version: u32,
        /// The verified caller, or the refusal.
        outcome: Result<Option<Identity>, String>,
    },
    /// A call over the HTTP API.
    Call(Box<Call>),
    /// A frame that is not a client message (bad JSON, a binary frame).
    BadFrame {
        /// The connection it came from.
        conn: ConnId,
        /// The short error code for `FatalError`.
        code: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// A socket closed (either side).
    Closed {
        /// The connection.
        conn: ConnId,
    },
    /// A job finished executing.
    Executed(Executed),
    /// A `Transition` frame was written to the socket.
    Delivered {
        /// The connection.
        conn: ConnId,
    },
    /// Time passed: pings, housekeeping, and any timer that is due. The
    /// shell sends one a second.
    Tick,
    /// A time the core asked for with `Output::Wake` has come: the timers
    /// and scheduled functions that are due run.
    Wake,
}

/// What the core asks of its shell.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Send a frame to a connection.
    Send {
        /// The connection.
        conn: ConnId,
        /// The frame.
        frame: Frame,
    },
    /// Close a connection after the frames already sent.
    Close {
        /// The connection.
        conn: ConnId,
        /// The WebSocket close code.
        code: u16,
        /// The short reason.
        reason: String,
    },
    /// Run a job and report it back with `Input::Executed`.
    Execute(Job),
    /// Send `Input::Wake` at or after this wall-clock time (a timer is
    /// due then). `Input::Tick` also runs due timers, so a lost wake only
    /// delays them to the next tick.
    Wake {
        /// When.
        at: Ts,
    },
    /// Answer an HTTP call.
    Reply {
        /// The call.
        call: CallId,
        /// Its result, or the failure.
        outcome: Result<Value, Failure>,
    },
}

/// An HTTP call's id (chosen by the shell).
pub type CallId = u64;

/// A function call over the HTTP API.
#[derive(Clone, Debug)]
pub struct Call {
    /// Its id, for the `Reply`.
    pub id: CallId,
    /// The kind its route demands (`/api/query`, `/api/mutation`,
    /// `/api/action`), or `None` for `/api/function`, which takes any.
    pub route: Option<Kind>,
    /// The function path.
    pub path: String,
    /// The decoded argument object.
    pub args: Value,
    /// The verified caller.
    pub caller: Option<Identity>,
}

/// A failed call's message and `errorData`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Failure {
    /// The message.
    pub message: String,
    /// `errorData`, for user errors.
    pub data: Option<Value>,
}

impl From<UserError> for Failure {
    fn from(e: UserError) -> Failure {
        Failure { message: e.message.clone(), data: Some(e.data()) }
    }
}

/// A server frame, before encoding.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// A `Transition` with its clock skew.
    Transition(Transition, Option<i64>),
    /// A `MutationResponse`: the result and commit ts, or the failure.
    MutationResponse {
        /// The request it answers.
        request_id: RequestId,
        /// Result and commit ts, or failure.
        outcome: Result<(Value, Ts), Failure>,
    },
    /// An `ActionResponse`: the result, or the failure.
    ActionResponse {
        /// The request it answers.
        request_id: RequestId,
        /// Result or failure.
        outcome: Result<Value, Failure>,
    },
    /// An `AuthError`.
    AuthError {
        /// Why.
        message: String,
        /// The identity version it concerns.
        base_version: Option<u32>,
    },
    /// A `FatalError`; a `Close` follows.
    Fatal(String),
    /// The protocol keepalive.
    Ping,
}

impl Frame {
    /// Encodes the frame; `server_ts` is stamped into transitions.
    pub fn encode(&self, server_ts: Ts) -> String {
        match self {
            Frame::Transition(t, skew) => {
                let mut out = String::with_capacity(256);
                wire::write_transition(t, *skew, server_ts, &mut out);
                out
            }
            Frame::MutationResponse { request_id, outcome: Ok((value, ts)) } => {
                wire::mutation_success(*request_id, value, *ts)
            }
            Frame::MutationResponse { request_id, outcome: Err(f) } => {
                wire::mutation_failure(*request_id, &f.message, f.data.as_ref())
            }
            Frame::ActionResponse { request_id, outcome: Ok(value) } => wire::action_success(*request_id, value),
            Frame::ActionResponse { request_id, outcome: Err(f) } => {
                wire::action_failure(*request_id, &f.message, f.data.as_ref())
            }
            Frame::AuthError { message, base_version } => wire::auth_error(message, *base_version, true),
            Frame::Fatal(message) => wire::fatal_error(message),
            Frame::Ping => wire::ping(),
        }
    }
}

/// A mutation to execute at a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Job {
    /// This attempt's id.
    pub id: JobId,
    /// The mutation.
    pub function: Function,
    /// Its validated arguments.
    pub args: Arc<Object>,
    /// Who called it, as the function may see it.
    pub caller: Option<Identity>,
    /// The snapshot to run against.
    pub snapshot: Snapshot,
    /// For a scheduled function, its `Scheduled` document: the run reads
    /// and deletes it in the same transaction, so of two runs at most one
    /// commits (the other conflicts, retries, finds it gone and does nothing).
    pub scheduled: Option<DocId>,
    /// The presence TTL `presence:heartbeat` schedules expiry with.
    pub presence_ttl_ms: u64,
}

/// What an execution produced.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Executed {
    /// The attempt.
    pub job: JobId,
    /// The return value with read and write sets, or a user error.
    pub outcome: Result<(Value, ReadSet, WriteSet), UserError>,
    /// What a failed attempt had written before it failed: never
    /// committed (but for the `schedule-despite-abort` fault).
    pub discarded: WriteSet,
}

/// Runs a job. Pure: any thread may call it, with no lock held.
pub fn execute(job: &Job) -> Executed {
    let mut txn = Txn::new(&job.snapshot, job.id.wrapping_mul(IDS_PER_JOB).wrapping_add(1));
    txn.presence_ttl_ms = job.presence_ttl_ms as f64;
    if let Some(doc) = job.scheduled {
        if txn.get(doc).is_none() {
            let error = UserError::new(ErrorCode::NotFound, "the scheduled function already ran or was cancelled");
            return Executed { job: job.id, outcome: Err(error), discarded: WriteSet::new() };
        }
        txn.delete(doc, Table::Scheduled);
    }
    match functions::run(job.function, &job.args, job.caller.as_ref(), &mut txn) {
        Ok(value) => {
            let (reads, writes) = txn.finish();
            Executed { job: job.id, outcome: Ok((value, reads, writes)), discarded: WriteSet::new() }
        }
        Err(error) => Executed { job: job.id, outcome: Err(error), discarded: txn.finish().1 },
    }
}

/// Counters for benchmarks and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Stats {
    /// Commits (of mutations, scheduled functions and their clean-up).
    pub commits: u64,
    /// Executions whose read set conflicted at commit.
    pub conflicts: u64,
    /// Conflicting mutations that ran out of retries and ran at the head.
    pub fallbacks: u64,
    /// Replays answered from an idempotency record.
    pub replays: u64,
    /// Messages deleted past `Config::retain_messages`.
    pub trimmed: u64,
}

/// What the core holds at one moment, for operators.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Load {
    /// Sessions past their `Connect`.
    pub sessions: usize,
    /// Queries in those sessions' query sets.
    pub queries: usize,
    /// Socket mutations waiting for their turn.
    pub queued_mutations: usize,
    /// Mutation executions dispatched and not yet committed.
    pub in_flight: usize,
    /// Idempotency records kept.
    pub idempotency_records: usize,
    /// Documents in the store.
    pub documents: usize,
}

/// Who a mutation answers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Origin {
    /// A socket's `Mutation`, remembered for replays under its session.
    Socket { conn: ConnId, session_id: SessionId, request_id: RequestId },
    /// An HTTP call: nothing to replay, one `Reply`.
    Http(CallId),
    /// A step of a running action: its outcome goes back to the action.
    Action(ActionId),
    /// A scheduled function's run: nobody to answer.
    Scheduled(DocId),
}

/// A running action's id.
pub type ActionId = u64;

/// Who an action answers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Caller {
    /// A socket's `Action`: one `ActionResponse`.
    Socket { conn: ConnId, request_id: RequestId },
    /// An HTTP call: one `Reply`.
    Http(CallId),
}

/// An action between its call and its response.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Running {
    caller: Caller,
    /// When it began, for its waits.
    started: Ts,
    /// The identity it runs as (its queries and mutations see it too).
    identity: Option<Identity>,
    action: Action,
    /// The mutation to run once more (the `action-mutation-twice` fault).
    again: Option<(Function, Arc<Object>)>,
    /// What its commits overwrote, to put back if it fails (the
    /// `action-rollback` fault).
    undo: WriteSet,
}

/// Something the core does when a time comes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Timer {
    /// An action's wait is over.
    Resume(ActionId),
}

/// A mutation between dispatch and commit.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct InFlight {
    origin: Origin,
    function: Function,
    args: Arc<Object>,
    caller: Option<Identity>,
    snapshot_ts: Ts,
    attempts: u32,
    /// Runs without the scheduled function's exactly-once guard (the
    /// `scheduled-twice` fault's second run).
    unguarded: bool,
}

impl InFlight {
    /// A mutation from `origin`, not yet dispatched.
    fn new(origin: Origin, function: Function, args: Arc<Object>, caller: Option<Identity>) -> InFlight {
        InFlight { origin, function, args, caller, snapshot_ts: 0, attempts: 0, unguarded: false }
    }
}

/// The reactive core.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Core {
    config: Config,
    store: Store,
    sessions: BTreeMap<ConnId, Session>,
    subscriptions: Subscriptions,
    in_flight: BTreeMap<JobId, InFlight>,
    next_job: JobId,
    /// Commits since the oldest in-flight snapshot, for OCC validation.
    /// Invariant: empty when nothing is in flight.
    write_log: VecDeque<(Ts, Vec<TouchedKey>)>,
    records: Records,
    rate: RateLimiter,
    now: Ts,
    /// The highest ts a transition has carried; the next commit lands after it.
    served: Ts,
    stats: Stats,
    /// Channels written since the last trim, while `retain_messages` is set.
    trim_channels: BTreeSet<Value>,
    /// The head before the latest commit (kept for the `stale-results` fault).
    previous_head: Snapshot,
    /// Actions between call and response.
    actions: BTreeMap<ActionId, Running>,
    next_action: ActionId,
    /// Timers by due time (the id keeps equal times apart).
    timers: BTreeSet<(Ts, Timer)>,
    /// Scheduled functions dispatched and not yet finished (kept beside
    /// `in_flight` so the check per due entry stays a lookup).
    scheduled_running: BTreeSet<DocId>,
    /// Times asked for with `Output::Wake` that have not yet come.
    wakes: BTreeSet<Ts>,
}

impl Core {
    /// A core with an empty store.
    pub fn new(config: Config) -> Core {
        Core {
            config,
            store: Store::default(),
            sessions: BTreeMap::new(),
            subscriptions: Subscriptions::default(),
            in_flight: BTreeMap::new(),
            next_job: 1,
            write_log: VecDeque::new(),
            records: Records::default(),
            rate: RateLimiter::default(),
            now: 0,
            served: 0,
            stats: Stats::default(),
            trim_channels: BTreeSet::new(),
            previous_head: Snapshot::default(),
            actions: BTreeMap::new(),
            next_action: 1,
            timers: BTreeSet::new(),
            scheduled_running: BTreeSet::new(),
            wakes: BTreeSet::new(),
        }
    }

    /// The latest committed snapshot.
    pub fn head(&self) -> &Snapshot {
        self.store.head()
    }

    /// What the core holds right now (O(sessions), for a metrics scrape).
    pub fn load(&self) -> Load {
        let sessions = self.sessions.values().filter(|s| s.session_id.is_some());
        let (mut queries, mut queued_mutations, mut count) = (0, 0, 0);
        for session in sessions {
            count += 1;
            queries += session.queries.len();
            queued_mutations += session.queue.len();
        }
        Load {
            sessions: count,
            queries,
            queued_mutations,
            in_flight: self.in_flight.len(),
            idempotency_records: self.records.len(),
            documents: self.store.head().len(),
        }
    }

    /// Counters since start.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// How many query evaluations have run.
    pub fn evaluations(&self) -> u64 {
        self.subscriptions.evaluations()
    }

    /// How many sessions are open.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Handles one input at wall-clock `now`, appending outputs to `out`.
    pub fn handle(&mut self, now: Ts, input: Input, out: &mut Vec<Output>) {
        self.now = self.now.max(now);
        match input {
            Input::Open { conn } => {
                self.sessions.insert(conn, Session { last_emit: self.now, ..Session::default() });
            }
            Input::Message { conn, message } => self.on_message(conn, message, out),
            Input::Authenticated { conn, base_version, outcome } => {
                self.on_authenticate(conn, base_version, outcome, out)
            }
            Input::Call(call) => self.on_call(*call, out),
            Input::BadFrame { conn, code, detail } => self.fatal(conn, code, &detail, out),
            Input::Closed { conn } => self.on_closed(conn),
            Input::Executed(executed) => self.on_executed(executed, out),
            Input::Delivered { conn } => {
                if let Some(session) = self.sessions.get_mut(&conn) {
                    session.unsent = session.unsent.saturating_sub(1);
                }
                self.flush(conn, out);
            }
            Input::Tick => {
                self.on_tick(out);
                self.fire_timers(out);
            }
            Input::Wake => self.fire_timers(out),
        }
        self.after_input(out);
    }

    fn on_message(&mut self, conn: ConnId, incoming: Incoming, out: &mut Vec<Output>) {
        let Some(session) = self.sessions.get_mut(&conn) else {
            return;
        };
        let connected = session.session_id.is_some();
        let Incoming { message, calls, args_bytes } = incoming;
        match message {
            ClientMessage::Connect { session_id, max_observed_timestamp, client_ts, .. } => {
                if connected {
                    return self.fatal(conn, "DuplicateConnect", "expected one Connect per socket, got a second", out);
                }
                if let Some(observed) = max_observed_timestamp.map(u64::from) {
                    if observed > self.store.ts() {
                        // A client that saw a later ts from a previous run of
                        // this in-memory server: move the clock past it. One
                        // claiming a ts ahead of the wall clock saw the future.
                        if observed > self.now.saturating_add(1_000_000_000) {
                            return self.fatal(
                                conn,
                                "MaxObservedTimestampAhead",
                                &format!("maxObservedTimestamp {observed} is ahead of the server's clock {}", self.now),
                                out,
                            );
                        }
                        self.store.advance_to(observed);
                    }
                }
                let now_ms = (self.now / 1_000_000) as i64;
                let session = self.sessions.get_mut(&conn).expect("session exists");
                session.session_id = Some(session_id.as_u128());
                session.clock_skew = client_ts.filter(|&ts| ts > 0).map(|ts| ts as i64 - now_ms);
            }
            _ if !connected => self.connect_expected(conn, out),
            ClientMessage::ModifyQuerySet { base_version, new_version, modifications } => {
                self.on_modify_query_set(conn, base_version, new_version, modifications, calls, out)
            }
            ClientMessage::Mutation { request_id, .. } => {
                let queued_bytes = session.queue.iter().map(|q| q.args_bytes).sum::<usize>() + args_bytes;
                let full = session.queue.len() >= self.config.max_queued_mutations;
                if full || queued_bytes > self.config.max_queued_argument_bytes {
                    out.push(Output::Close { conn, code: 1013, reason: "TooManyConcurrentMutations".into() });
                    return;
                }
                let call = calls.into_iter().next().expect("a mutation makes one call");
                session.queue.push_back(Queued { request_id, call, args_bytes });
                self.start_next_mutation(conn, out);
            }
            ClientMessage::Action { request_id, .. } => {
                let caller = Caller::Socket { conn, request_id };
                if session.actions >= MAX_ACTIONS_PER_SESSION {
                    let message = format!(
                        "TooManyInflightActionsForSingleClient: {MAX_ACTIONS_PER_SESSION} actions of this session are running"
                    );
                    return self.answer_action(caller, Err(Failure { message, data: None }), out);
                }
                let identity = session.caller.clone();
                match calls.into_iter().next().expect("an action makes one call") {
                    Ok((function, args)) => self.start_action(caller, function, &args, identity, out),
                    Err(failure) => self.answer_action(caller, Err(failure), out),
                }
            }
            ClientMessage::Authenticate { base_version, token } => {
                // The shell verifies tokens and sends `Input::Authenticated`;
                // the core holds no keys, so a raw one can only be anonymous.
                let outcome = Verifier::none().identity(&token);
                self.on_authenticate(conn, base_version, outcome, out)
            }
            ClientMessage::Event(_) => {}
        }
    }

    fn on_modify_query_set(
        &mut self,
        conn: ConnId,
        base_version: u32,
        new_version: u32,
        modifications: Vec<QuerySetModification>,
        calls: Vec<Resolved>,
        out: &mut Vec<Output>,
    ) {
        let Some(session) = self.sessions.get(&conn) else {
            return;
        };
        if base_version != session.query_set {
            let detail = format!("expected baseVersion {}, got {base_version}", session.query_set);
            return self.fatal(conn, "BaseVersionMismatch", &detail, out);
        }
        if new_version <= base_version {
            let detail = format!("expected newVersion above {base_version}, got {new_version}");
            return self.fatal(conn, "BaseVersionMismatch", &detail, out);
        }
        let caller = session.caller.clone();
        // Check the whole batch first so that a bad one changes nothing.
        let mut ids: BTreeSet<QueryId> = session.queries.keys().copied().collect();
        for m in &modifications {
            let error = match m {
                QuerySetModification::Add(q) if !ids.insert(q.query_id.get_id()) => "DuplicateQueryId",
                QuerySetModification::Remove { query_id } if !ids.remove(&query_id.get_id()) => "UnknownQueryId",
                _ => continue,
            };
            let id = match m {
                QuerySetModification::Add(q) => q.query_id.get_id(),
                QuerySetModification::Remove { query_id } => query_id.get_id(),
            };
            return self.fatal(conn, error, &format!("query id {id} in ModifyQuerySet"), out);
        }
        let mut modifications = modifications;
        if ids.len() > self.config.max_queries_per_session && self.config.has(Fault::TruncateQuerySet) {
            // The fault keeps the first adds that fit and says nothing of the rest.
            let adds = modifications.iter().filter(|m| matches!(m, QuerySetModification::Add(_))).count();
            let mut keep = adds.saturating_sub(ids.len() - self.config.max_queries_per_session);
            modifications.retain(|m| match m {
                QuerySetModification::Add(_) if keep == 0 => false,
                QuerySetModification::Add(_) => {
                    keep -= 1;
                    true
                }
                QuerySetModification::Remove { .. } => true,
            });
        } else if ids.len() > self.config.max_queries_per_session {
            let detail = format!(
                "this ModifyQuerySet would leave the session with {} queries; a session may hold {}",
                ids.len(),
                self.config.max_queries_per_session
            );
            return self.fatal(conn, "TooManyQueries", &detail, out);
        }
        let rate = self.config.query_changes;
        let tat = self.sessions.get(&conn).map_or(0, |s| s.query_changes);
        match rate.take(tat, self.now, modifications.len() as u64) {
            Ok(tat) => self.sessions.get_mut(&conn).expect("session exists").query_changes = tat,
            Err(wait_ns) => {
                let detail = format!(
                    "this ModifyQuerySet makes {} query changes, and the session may make {} a second ({} at \
                     once); it could in {} ms",
                    modifications.len(),
                    1_000_000_000 / rate.interval_ns.max(1),
                    rate.burst,
                    wait_ns.div_ceil(1_000_000)
                );
                return self.end_session(conn, "TooManyQueryChanges", &detail, 1013, out);
            }
        }
        // Each add's resolved call, in order (a truncating fault keeps the first adds).
        let mut calls = calls.into_iter();
        for m in modifications {
            match m {
                QuerySetModification::Add(q) => {
                    let id = q.query_id.get_id();
                    let query = match calls.next().expect("one resolved call per add") {
                        Ok((function, mut args)) => {
                            // A page re-added with the journal it was last sent
                            // keeps the end it had before the reconnect.
                            let journal = q.journal.clone().flatten();
                            let pinned = journal
                                .filter(|_| function.is_paginated() && !self.config.has(Fault::PageEndMoves))
                                .and_then(|end| functions::pin_page_end(&args, &end));
                            if let Some(pinned) = pinned {
                                args = Arc::new(pinned);
                            }
                            let key = QueryKey::new(function, args, caller.as_ref());
                            SessionQuery::Live { key: self.subscriptions.subscribe(key, (conn, id)), last_hash: None }
                        }
                        Err(f) => {
                            SessionQuery::Broken { message: Arc::from(f.message.as_str()), data: f.data, sent: false }
                        }
                    };
                    let session = self.sessions.get_mut(&conn).expect("session exists");
                    session.removed.remove(&id);
                    session.queries.insert(id, query);
                    session.dirty.push(id);
                }
                QuerySetModification::Remove { query_id } => {
                    let id = query_id.get_id();
                    let session = self.sessions.get_mut(&conn).expect("session exists");
                    if let Some(SessionQuery::Live { key, .. }) = session.queries.remove(&id) {
                        self.subscriptions.unsubscribe(key, (conn, id));
                    }
                    let session = self.sessions.get_mut(&conn).expect("session exists");
                    session.dirty.retain(|&q| q != id);
                    session.removed.insert(id);
                }
            }
        }
        let session = self.sessions.get_mut(&conn).expect("session exists");
        session.query_set = new_version;
        session.pending = true;
        self.flush(conn, out);
    }

    fn on_authenticate(
        &mut self,
        conn: ConnId,
        base_version: u32,
        outcome: Result<Option<Identity>, String>,
        out: &mut Vec<Output>,
    ) {
        let Some(session) = self.sessions.get(&conn) else {
            return;
        };
        if session.session_id.is_none() {
            return self.connect_expected(conn, out);
        }
        if base_version != session.identity {
            let message = format!("expected identity baseVersion {}, got {base_version}", session.identity);
            return self.auth_failed(conn, base_version, message, out);
        }
        let caller = match outcome {
            Ok(caller) => self.visible(caller),
            Err(message) => return self.auth_failed(conn, base_version, message, out),
        };
        let session = self.sessions.get_mut(&conn).expect("session exists");
        let changed = session.caller != caller;
        session.identity += 1;
        session.caller = caller.clone();
        if changed && !self.config.has(Fault::StaleIdentityQueries) {
            // Identity-dependent queries move to the new caller's cache entry.
            for (&id, query) in session.queries.iter_mut() {
                let SessionQuery::Live { key, .. } = query else { continue };
                let Some(old) = self.subscriptions.key_of(*key).filter(|k| k.function.uses_identity()).cloned() else {
                    continue;
                };
                self.subscriptions.unsubscribe(*key, (conn, id));
                *key = self.subscriptions.subscribe(QueryKey::new(old.function, old.args, caller.as_ref()), (conn, id));
            }
        }
        // A new identity re-runs every query.
        let session = self.sessions.get_mut(&conn).expect("session exists");
        let all: Vec<QueryId> = session.queries.keys().copied().collect();
        session.dirty.extend(all);
        session.pending = true;
        self.flush(conn, out);
    }

    /// The identity functions may see: the caller's, unless the
    /// `ignore-identity` fault hides it. Applied where an identity comes in
    /// (`Authenticate`, an HTTP call), so everything after holds only this.
    fn visible(&self, caller: Option<Identity>) -> Option<Identity> {
        caller.filter(|_| !self.config.has(Fault::IgnoreIdentity))
    }

    /// Ends a session whose first message was not `Connect`.
    fn connect_expected(&mut self, conn: ConnId, out: &mut Vec<Output>) {
        self.fatal(conn, "ConnectExpected", "expected Connect as the first message", out);
    }

    /// Runs an HTTP call: a query at the head, a mutation through the same
    /// execution and commit as a socket's (with no session to replay under).
    fn on_call(&mut self, call: Call, out: &mut Vec<Output>) {
        let Call { id, route, path, args, caller } = call;
        let caller = self.visible(caller);
        let function = match lookup(route, &path) {
            Ok(function) => function,
            Err(failure) => return out.push(Output::Reply { call: id, outcome: Err(failure) }),
        };
        let args = match validate(function, &args) {
            Ok(args) => args,
            Err(failure) => return out.push(Output::Reply { call: id, outcome: Err(failure) }),
        };
        match function.kind() {
            Kind::Query => {
                let mut txn = Txn::new(self.store.head(), 0);
                let outcome = functions::run(function, &args, caller.as_ref(), &mut txn).map_err(Failure::from);
                out.push(Output::Reply { call: id, outcome });
            }
            Kind::Mutation => {
                let flight = InFlight::new(Origin::Http(id), function, args, caller);
                self.dispatch(flight, out);
            }
            Kind::Action => self.start_action(Caller::Http(id), function, &args, caller, out),
        }
    }

    /// Starts an action and runs it to its first wait or mutation.
    fn start_action(
        &mut self,
        caller: Caller,
        function: Function,
        args: &Object,
        identity: Option<Identity>,
        out: &mut Vec<Output>,
    ) {
        let action = match Action::start(function, args) {
            Ok(action) => action,
            Err(error) => return self.answer_action(caller, Err(error.into()), out),
        };
        let id = self.next_action;
        self.next_action += 1;
        if let Caller::Socket { conn, .. } = caller {
            if let Some(session) = self.sessions.get_mut(&conn) {
                session.actions += 1;
            }
        }
        let started = self.now;
        self.actions.insert(id, Running { caller, started, identity, action, again: None, undo: WriteSet::new() });
        self.advance_action(id, None, out);
    }

    /// Feeds an action the outcome of its last step and carries out its
    /// next ones: queries at once, at the head; a mutation through the
    /// usual execute and commit (the action resumes when it is answered);
    /// a wait as a timer.
    fn advance_action(&mut self, id: ActionId, mut last: Option<Result<Value, Failure>>, out: &mut Vec<Output>) {
        loop {
            let Some(running) = self.actions.get_mut(&id) else {
                return;
            };
            match running.action.next(last.take()) {
                Step::Query(function, args) => {
                    let identity = running.identity.clone();
                    let mut txn = Txn::new(self.store.head(), 0);
                    let outcome = functions::run(function, &args, identity.as_ref(), &mut txn);
                    last = Some(outcome.map_err(Failure::from));
                }
                Step::Mutation(function, args) => {
                    let args = Arc::new(args);
                    if self.config.has(Fault::ActionMutationTwice) {
                        running.again = Some((function, args.clone()));
                    }
                    let flight = InFlight::new(Origin::Action(id), function, args, running.identity.clone());
                    return self.dispatch(flight, out);
                }
                Step::Wait(ns) => {
                    let at = running.started.saturating_add(ns);
                    if at <= self.now {
                        continue;
                    }
                    // `after_input` asks to be woken then.
                    self.timers.insert((at, Timer::Resume(id)));
                    return;
                }
                Step::Done(outcome) => {
                    let Some(running) = self.actions.remove(&id) else {
                        return;
                    };
                    if outcome.is_err() && !running.undo.is_empty() {
                        // The `action-rollback` fault: put back what it wrote.
                        self.commit_and_tell(&running.undo, true, out);
                    }
                    if let Caller::Socket { conn, .. } = running.caller {
                        if let Some(session) = self.sessions.get_mut(&conn) {
                            session.actions = session.actions.saturating_sub(1);
                        }
                    }
                    return self.answer_action(running.caller, outcome, out);
                }
            }
        }
    }

    /// Answers an action: an `ActionResponse` (with a transition after it,
    /// as Convex schedules an update) or an HTTP reply.
    fn answer_action(&mut self, caller: Caller, outcome: Result<Value, Failure>, out: &mut Vec<Output>) {
        match caller {
            Caller::Socket { conn, request_id } => {
                if !self.sessions.contains_key(&conn) {
                    return;
                }
                self.emit(conn, Frame::ActionResponse { request_id, outcome }, out);
                if let Some(session) = self.sessions.get_mut(&conn) {
                    session.pending = true;
                }
                self.flush(conn, out);
            }
            Caller::Http(call) => out.push(Output::Reply { call, outcome }),
        }
    }

    /// Commits the functions a discarded attempt scheduled: only under the
    /// `schedule-despite-abort` fault (a scheduler fed at call time, not at
    /// commit).
    fn leak_schedules(&mut self, writes: &WriteSet, out: &mut Vec<Output>) {
        if !self.config.has(Fault::ScheduleDespiteAbort) {
            return;
        }
        let leaked: WriteSet = writes
            .iter()
            .filter(|(id, w)| {
                w.table == Table::Scheduled && w.fields.is_some() && self.store.head().get(**id).is_none()
            })
            .map(|(id, w)| (*id, w.clone()))
            .collect();
        if !leaked.is_empty() {
            self.commit_and_tell(&leaked, true, out);
        }
    }

    /// Starts every scheduled function that is due and not already
    /// running (as a mutation of its own, retried on conflict like any
    /// other), then asks to be woken when the next timer or scheduled
    /// function is due. One pass over the schedule, in due order.
    fn after_input(&mut self, out: &mut Vec<Output>) {
        // The `scheduled-early` fault runs them as soon as they are written.
        let horizon = if self.config.has(Fault::ScheduledEarly) { Ts::MAX } else { self.now };
        let mut due = Vec::new();
        let mut next = self.timers.first().map(|&(at, _)| at);
        for doc in self.store.head().scan(IndexId::ScheduledByDue, &[]) {
            if doc.due() > horizon {
                next = Some(next.map_or(doc.due(), |at| at.min(doc.due())));
                break;
            }
            if self.scheduled_running.contains(&doc.id) {
                continue;
            }
            let Some(function) = doc.get("name").as_str().and_then(Function::from_path) else { continue };
            let Value::Object(args) = doc.get("args") else { continue };
            due.push((doc.id, function, Arc::new(args.clone())));
        }
        for (doc, function, args) in due {
            self.scheduled_running.insert(doc);
            // The `scheduled-twice` fault: a second run without the
            // exactly-once guard.
            let runs = if self.config.has(Fault::ScheduledTwice) { 2 } else { 1 };
            for run in 0..runs {
                let mut flight = InFlight::new(Origin::Scheduled(doc), function, args.clone(), None);
                flight.unguarded = run > 0;
                self.dispatch(flight, out);
            }
        }
        let now = self.now;
        while self.wakes.first().is_some_and(|&at| at <= now) {
            self.wakes.pop_first();
        }
        if let Some(at) = next.filter(|&at| at > now && self.wakes.range(..=at).next().is_none()) {
            self.wakes.insert(at);
            out.push(Output::Wake { at });
        }
    }

    /// Runs every timer that is due.
    fn fire_timers(&mut self, out: &mut Vec<Output>) {
        while let Some(&(at, timer)) = self.timers.first() {
            if at > self.now {
                break;
            }
            self.timers.remove(&(at, timer));
            match timer {
                Timer::Resume(id) => self.advance_action(id, None, out),
            }
        }
    }

    /// Refuses an `Authenticate`: `AuthError`, then close.
    fn auth_failed(&mut self, conn: ConnId, base_version: u32, message: String, out: &mut Vec<Output>) {
        let frame = Frame::AuthError { message, base_version: Some(base_version) };
        self.emit(conn, frame, out);
        out.push(Output::Close { conn, code: 1000, reason: "AuthError".into() });
    }

    fn on_closed(&mut self, conn: ConnId) {
        let Some(session) = self.sessions.remove(&conn) else {
            return;
        };
        for (id, query) in session.queries {
            if let SessionQuery::Live { key, .. } = query {
                self.subscriptions.unsubscribe(key, (conn, id));
            }
        }
        // A mutation already executing still commits (and records its
        // outcome for a replay); the ones still queued are dropped.
    }

    /// Starts the session's next queued mutation, answering at once those
    /// that fail before execution or were already applied.
    fn start_next_mutation(&mut self, conn: ConnId, out: &mut Vec<Output>) {
        loop {
            let Some(session) = self.sessions.get_mut(&conn) else {
                return;
            };
            if session.running {
                return;
            }
            let Some(queued) = session.queue.pop_front() else {
                return;
            };
            let session_id = session.session_id.unwrap_or_default();
            let request_id = queued.request_id;
            let resolved = queued.call;
            let remembered = if self.config.has(Fault::ReplayTwice) {
                None
            } else {
                self.records.touch((session_id, request_id), self.now)
            };
            if let Some(record) = remembered {
                let same = resolved.as_ref().is_ok_and(|(f, args)| record.call == call_fingerprint(*f, args));
                if !same {
                    return self.fatal(conn, "InvalidRequestId", &reused_request_id(request_id), out);
                }
                let (result, ts) = (record.result.clone(), record.ts);
                self.stats.replays += 1;
                self.respond(conn, request_id, Ok((result, ts)), out);
                continue;
            }
            match resolved {
                Err(failure) => self.respond(conn, request_id, Err(failure), out),
                Ok((function, args)) => {
                    let session = self.sessions.get_mut(&conn).expect("session exists");
                    session.running = true;
                    let flight = InFlight::new(
                        Origin::Socket { conn, session_id, request_id },
                        function,
                        args,
                        session.caller.clone(),
                    );
                    self.dispatch(flight, out);
                    return;
                }
            }
        }
    }

    /// Hands a mutation to an executor at the current head.
    fn dispatch(&mut self, mut flight: InFlight, out: &mut Vec<Output>) {
        let id = self.next_job;
        self.next_job += 1;
        flight.snapshot_ts = self.store.ts();
        let job = self.job_for(id, &flight);
        self.in_flight.insert(id, flight);
        out.push(Output::Execute(job));
    }

    /// The job that runs `flight` at the head.
    fn job_for(&self, id: JobId, flight: &InFlight) -> Job {
        Job {
            id,
            function: flight.function,
            args: flight.args.clone(),
            caller: flight.caller.clone(),
            snapshot: self.store.head().clone(),
            scheduled: match flight.origin {
                Origin::Scheduled(doc) if !flight.unguarded => Some(doc),
                _ => None,
            },
            presence_ttl_ms: self.config.presence_ttl_ns / 1_000_000,
        }
    }

    fn on_executed(&mut self, executed: Executed, out: &mut Vec<Output>) {
        let Some(mut flight) = self.in_flight.remove(&executed.job) else {
            return;
        };
        let (value, reads, writes) = match executed.outcome {
            Ok(done) => done,
            Err(user_error) => {
                self.prune_write_log();
                self.leak_schedules(&executed.discarded, out);
                return self.finish_mutation(flight, Err(user_error.into()), out);
            }
        };
        // The `snapshot-isolation` fault validates only what the mutation
        // wrote (write-write conflicts), whatever it read.
        let validated = if self.config.has(Fault::SnapshotIsolation) { &ReadSet::of_writes(&writes) } else { &reads };
        let conflict = !self.config.has(Fault::SkipOccValidation)
            && self
                .write_log
                .iter()
                .filter(|(ts, _)| *ts > flight.snapshot_ts)
                .any(|(_, touched)| validated.overlaps(touched));
        if !conflict {
            return self.commit_mutation(flight, value, writes, out);
        }
        self.stats.conflicts += 1;
        self.leak_schedules(&writes, out);
        flight.attempts += 1;
        if flight.attempts <= MAX_OCC_RETRIES {
            self.dispatch(flight, out);
            self.prune_write_log();
            return;
        }
        // Out of retries: run it here, at the head, where nothing can land
        // in between, so it commits.
        self.stats.fallbacks += 1;
        self.prune_write_log();
        let job = self.job_for(self.next_job, &flight);
        self.next_job += 1;
        let executed = execute(&job);
        drop(job);
        match executed.outcome {
            Ok((value, _, writes)) => self.commit_mutation(flight, value, writes, out),
            Err(user_error) => {
                self.leak_schedules(&executed.discarded, out);
                self.finish_mutation(flight, Err(user_error.into()), out)
            }
        }
    }

    /// Commits a validated mutation: idempotency, rate limit, apply, notify.
    fn commit_mutation(&mut self, flight: InFlight, value: Value, writes: WriteSet, out: &mut Vec<Output>) {
        let key = match flight.origin {
            Origin::Socket { session_id, request_id, .. } => Some((session_id, request_id)),
            Origin::Http(_) | Origin::Action(_) | Origin::Scheduled(_) => None,
        };
        let remembered =
            if self.config.has(Fault::ReplayTwice) { None } else { key.and_then(|key| self.records.get(&key)) };
        if let Some(record) = remembered {
            if record.call != call_fingerprint(flight.function, &flight.args) {
                // Not a replay: another call under a used requestId.
                self.prune_write_log();
                if let Origin::Socket { conn, request_id, .. } = flight.origin {
                    if let Some(session) = self.sessions.get_mut(&conn) {
                        session.running = false;
                    }
                    self.fatal(conn, "InvalidRequestId", &reused_request_id(request_id), out);
                }
                return;
            }
            // A replay that raced its original: answer with the original.
            self.stats.replays += 1;
            let outcome = Ok((record.result.clone(), record.ts));
            self.prune_write_log();
            return self.finish_mutation(flight, outcome, out);
        }
        let limit = rate_limit_of(flight.function, self.config.rate).filter(|_| !self.config.has(Fault::NoRateLimit));
        if let Some(rate) = limit {
            let user = match (&flight.caller, flight.args.get("user")) {
                (Some(me), _) if flight.function.uses_identity() => &*me.subject,
                (_, user) => user.and_then(Value::as_str).unwrap_or(""),
            };
            if let Err(wait_ns) = self.rate.try_take(rate, flight.function, user, self.now) {
                let retry_after_ms = wait_ns.div_ceil(1_000_000);
                let error = UserError::new(
                    ErrorCode::RateLimited,
                    format!("{} is limited to {} calls a second per user", flight.function.path(), rate.burst),
                )
                .with("retryAfterMs", Value::Float64(retry_after_ms as f64));
                self.prune_write_log();
                return self.finish_mutation(flight, Err(error.into()), out);
            }
        }
        if self.config.has(Fault::NonAtomicMutation) && writes.len() >= 2 {
            // The fault: the first document commits alone, and others are
            // told, before the rest commits.
            let mut rest = writes.clone();
            let first_key = *rest.keys().next().expect("two or more writes");
            let first: WriteSet = rest.remove_entry(&first_key).into_iter().collect();
            let invalidate = self.invalidates(flight.origin);
            self.commit_and_tell(&first, invalidate, out);
            self.now += 1;
            let (ts, notified) = self.commit(&rest, invalidate);
            if let Some(key) = key {
                let call = call_fingerprint(flight.function, &flight.args);
                self.records.insert(key, Record::new(call, value.clone(), ts, self.now));
            }
            self.finish_mutation(flight, Ok((value, ts)), out);
            for conn in notified {
                self.flush(conn, out);
            }
            return;
        }
        if let (Origin::Action(id), true) = (flight.origin, self.config.has(Fault::ActionRollback)) {
            let head = self.store.head();
            if let Some(running) = self.actions.get_mut(&id) {
                for (&doc, write) in &writes {
                    let old = Write { table: write.table, fields: head.get(doc).map(|d| d.fields.clone()) };
                    running.undo.entry(doc).or_insert(old);
                }
            }
        }
        let (ts, notified) = self.commit(&writes, self.invalidates(flight.origin));
        if let Some(key) = key {
            let call = call_fingerprint(flight.function, &flight.args);
            self.records.insert(key, Record::new(call, value.clone(), ts, self.now));
        }
        // The response goes out before any transition that covers it.
        self.finish_mutation(flight, Ok((value, ts)), out);
        for conn in notified {
            self.flush(conn, out);
        }
    }

    /// Whether a commit from `origin` tells subscribers (always, but for
    /// HTTP writes under the `http-writes-unseen` fault).
    fn invalidates(&self, origin: Origin) -> bool {
        !(matches!(origin, Origin::Http(_)) && self.config.has(Fault::HttpWritesUnseen))
    }

    /// Applies writes at a fresh ts (after every ts a transition carried)
    /// and, if `invalidate`, invalidates subscriptions; returns the ts and
    /// the sessions that now have a transition pending.
    fn commit(&mut self, writes: &WriteSet, invalidate: bool) -> (Ts, BTreeSet<ConnId>) {
        let ts = self.now.max(self.store.ts() + 1).max(self.served + 1);
        if self.config.has(Fault::StaleResults) {
            self.previous_head = self.store.head().clone();
        }
        let touched = self.store.apply(ts, writes);
        self.stats.commits += 1;
        if self.config.retain_messages.is_some() {
            let channels = writes.values().filter(|w| w.table == Table::Messages).filter_map(|w| w.fields.as_ref());
            self.trim_channels.extend(channels.map(|fields| fields.get("channel").cloned().unwrap_or(Value::Null)));
        }
        if !self.in_flight.is_empty() {
            self.write_log.push_back((ts, touched.clone()));
        }
        self.prune_write_log();
        let mut notify = self.subscriptions.invalidate(&touched);
        if !invalidate || (self.config.has(Fault::LoseInvalidation) && self.stats.commits.is_multiple_of(2)) {
            // A fault (`http-writes-unseen`, `lose-invalidation`): this
            // commit's subscribers are never told.
            notify.clear();
        }
        let mut sessions = BTreeSet::new();
        for (conn, query_id) in notify {
            if let Some(session) = self.sessions.get_mut(&conn) {
                session.dirty.push(query_id);
                session.pending = true;
                sessions.insert(conn);
            }
        }
        (ts, sessions)
    }

    /// Commits writes that answer no caller (a sweep, a rollback, a
    /// scheduled function's clean-up) and sends the transitions they cause.
    fn commit_and_tell(&mut self, writes: &WriteSet, invalidate: bool, out: &mut Vec<Output>) {
        let (_, notified) = self.commit(writes, invalidate);
        for conn in notified {
            self.flush(conn, out);
        }
    }

    /// Deletes the oldest messages of each channel written since the last
    /// trim beyond the newest `retain_messages`, in one commit.
    fn trim_messages(&mut self, out: &mut Vec<Output>) {
        let Some(keep) = self.config.retain_messages else {
            return;
        };
        let head = self.store.head();
        let mut deletes = WriteSet::new();
        for channel in std::mem::take(&mut self.trim_channels) {
            for doc in head.scan(IndexId::MessagesByChannel, std::slice::from_ref(&channel)).rev().skip(keep) {
                deletes.insert(doc.id, Write { table: Table::Messages, fields: None });
            }
        }
        if !deletes.is_empty() {
            self.stats.trimmed += deletes.len() as u64;
            self.commit_and_tell(&deletes, true, out);
        }
    }

    /// Drops write-log entries no in-flight execution can conflict with.
    fn prune_write_log(&mut self) {
        let oldest = self.in_flight.values().map(|f| f.snapshot_ts).min();
        match oldest {
            None => self.write_log.clear(),
            Some(oldest) => {
                while self.write_log.front().is_some_and(|(ts, _)| *ts <= oldest) {
                    self.write_log.pop_front();
                }
            }
        }
    }

    /// Answers a mutation and starts the session's next one.
    fn finish_mutation(&mut self, flight: InFlight, outcome: Result<(Value, Ts), Failure>, out: &mut Vec<Output>) {
        match flight.origin {
            Origin::Socket { conn, request_id, .. } => {
                if let Some(session) = self.sessions.get_mut(&conn) {
                    session.running = false;
                }
                self.respond(conn, request_id, outcome, out);
                self.start_next_mutation(conn, out);
            }
            Origin::Http(call) => out.push(Output::Reply { call, outcome: outcome.map(|(value, _)| value) }),
            Origin::Scheduled(doc) => {
                self.scheduled_running.remove(&doc);
                if outcome.is_err() && self.store.head().get(doc).is_some() {
                    // It failed (as Convex marks it failed): it is done, and
                    // does not run again.
                    let done: WriteSet = [(doc, Write { table: Table::Scheduled, fields: None })].into();
                    self.commit_and_tell(&done, true, out);
                }
            }
            Origin::Action(id) => {
                let again = self.actions.get_mut(&id).and_then(|r| r.again.take()).filter(|_| outcome.is_ok());
                if let Some((function, args)) = again {
                    // The `action-mutation-twice` fault: the same call once more.
                    let caller = self.actions.get(&id).and_then(|r| r.identity.clone());
                    let flight = InFlight::new(flight.origin, function, args, caller);
                    return self.dispatch(flight, out);
                }
                self.advance_action(id, Some(outcome.map(|(value, _)| value)), out)
            }
        }
    }

    /// Sends a `MutationResponse`, and a transition after it.
    fn respond(
        &mut self,
        conn: ConnId,
        request_id: RequestId,
        outcome: Result<(Value, Ts), Failure>,
        out: &mut Vec<Output>,
    ) {
        if !self.sessions.contains_key(&conn) {
            return;
        }
        // Clients resolve a successful mutation on the first transition that
        // arrives after its response and reaches its ts, so one always follows,
        // even for a replayed mutation whose ts an earlier transition passed.
        // The Rust client also holds a failure that carries `errorData` until
        // the next transition, so failures get one too, as Convex does.
        self.emit(conn, Frame::MutationResponse { request_id, outcome }, out);
        if let Some(session) = self.sessions.get_mut(&conn) {
            session.pending = true;
        }
        self.flush(conn, out);
    }

    /// Builds and sends the session's next transition, if it has something
    /// to say and fewer than `MAX_UNSENT_TRANSITIONS` are buffered.
    fn flush(&mut self, conn: ConnId, out: &mut Vec<Output>) {
        // Results read at the head hold until the next commit, so a
        // transition may claim any time up to now: it carries the current
        // time, never 0 and never the last commit's ts while idle (but for
        // the `commit-ts-only` fault).
        let ts = if self.config.has(Fault::CommitTsOnly) { self.store.ts() } else { self.store.ts().max(self.now) };
        let Some(session) = self.sessions.get_mut(&conn) else {
            return;
        };
        if !session.pending || session.unsent >= MAX_UNSENT_TRANSITIONS || session.session_id.is_none() {
            return;
        }
        let mut modifications: Vec<Modification> =
            session.removed.iter().map(|&query_id| Modification::Removed { query_id }).collect();
        session.removed.clear();
        let mut dirty = std::mem::take(&mut session.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        // Normally queries are read at the head; the `stale-results` fault
        // reads them one commit behind.
        let snapshot = if self.config.has(Fault::StaleResults) { &self.previous_head } else { self.store.head() };
        let torn = self.config.has(Fault::TornTransition);
        let pin_pages = !self.config.has(Fault::PageEndMoves);
        let mut deferred = Vec::new();
        for query_id in dirty {
            if torn && modifications.iter().any(|m| !matches!(m, Modification::Removed { .. })) {
                // The fault: every change after the first waits for the next transition.
                deferred.push(query_id);
                continue;
            }
            let Some(query) = session.queries.get_mut(&query_id) else {
                continue;
            };
            match query {
                SessionQuery::Broken { message, data, sent } => {
                    if !*sent {
                        *sent = true;
                        modifications.push(Modification::Failed {
                            query_id,
                            message: message.clone(),
                            data: data.as_ref().map(|d| syncspec_protocol::json::encode(d).into()),
                        });
                    }
                }
                SessionQuery::Live { key, last_hash } => {
                    let Some(result) = self.subscriptions.result(*key, snapshot, pin_pages) else {
                        continue;
                    };
                    if *last_hash == Some(result.hash) {
                        continue;
                    }
                    *last_hash = Some(result.hash);
                    modifications.push(match &result.outcome {
                        Ok(value) => {
                            Modification::Updated { query_id, value: value.clone(), journal: result.journal.clone() }
                        }
                        Err((message, data)) => {
                            Modification::Failed { query_id, message: message.clone(), data: Some(data.clone()) }
                        }
                    });
                }
            }
        }
        if self.config.has(Fault::SkipEmptyTransition) && modifications.is_empty() {
            // The fault: nothing changed, so nothing is sent.
            session.pending = false;
            return;
        }
        session.transitions_sent += 1;
        let every_third = session.transitions_sent % 3 == 0;
        let mut start = session.last_sent;
        let mut end = session.next_version(ts);
        if every_third && self.config.has(Fault::BreakVersionChain) {
            start.query_set += 1;
        }
        if every_third && self.config.has(Fault::TsRegress) && session.last_sent.ts > 0 {
            end.ts = session.last_sent.ts - 1;
        }
        session.last_sent = end;
        self.served = self.served.max(end.ts);
        session.pending = !deferred.is_empty();
        session.dirty.extend(deferred);
        session.unsent += 1;
        let skew = session.clock_skew;
        let more = session.pending;
        self.emit(conn, Frame::Transition(Transition { start, end, modifications }, skew), out);
        if more {
            self.flush(conn, out);
        }
    }

    fn emit(&mut self, conn: ConnId, frame: Frame, out: &mut Vec<Output>) {
        if let Some(session) = self.sessions.get_mut(&conn) {
            session.last_emit = self.now;
        }
        out.push(Output::Send { conn, frame });
    }

    /// Ends a session for a protocol violation: `FatalError`, then close.
    /// Its queued mutations are dropped: a session told it is over runs
    /// nothing more.
    /// Ends a session for a protocol violation: `FatalError`, then close 1002.
    fn fatal(&mut self, conn: ConnId, code: &str, detail: &str, out: &mut Vec<Output>) {
        self.end_session(conn, code, detail, 1002, out)
    }

    /// Ends a session with `FatalError` and a close frame with `close_code`
    /// (1013 where the client should back off and try again).
    fn end_session(&mut self, conn: ConnId, code: &str, detail: &str, close_code: u16, out: &mut Vec<Output>) {
        if let Some(session) = self.sessions.get_mut(&conn) {
            session.queue.clear();
        }
        self.emit(conn, Frame::Fatal(format!("{code}: {detail}")), out);
        out.push(Output::Close { conn, code: close_code, reason: code.to_owned() });
    }

    fn on_tick(&mut self, out: &mut Vec<Output>) {
        let now = self.now;
        let idle: Vec<ConnId> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.session_id.is_some() && now.saturating_sub(s.last_emit) >= PING_AFTER_NS)
            .map(|(&conn, _)| conn)
            .collect();
        for conn in idle {
            self.emit(conn, Frame::Ping, out);
        }
        self.rate.prune(now);
        self.records.expire(now, self.config.idempotency_retention_ns);
        self.trim_messages(out);
    }
}

/// What a mutation call asked for, as one number: its function and its
/// arguments. Two calls with the same fingerprint are the same call.
fn call_fingerprint(function: Function, args: &Object) -> u64 {
    use std::hash::{Hash as _, Hasher as _};
    let mut hasher = std::hash::DefaultHasher::new();
    function.hash(&mut hasher);
    args.hash(&mut hasher);
    hasher.finish()
}

/// The `FatalError` detail for a reused `requestId`.
fn reused_request_id(request_id: RequestId) -> String {
    format!(
        "requestId {request_id} was already used in this session by a mutation with another function or other \
         arguments; a replay must repeat its call exactly, and a new call needs a new requestId"
    )
}

/// The rate limit a function is under, if any.
fn rate_limit_of(function: Function, rate: ratelimit::Rate) -> Option<ratelimit::Rate> {
    match function {
        Function::CursorsMove | Function::PresenceHeartbeat | Function::PresenceHeartbeatAsMe => Some(rate),
        _ => None,
    }
}

/// Resolves a path and raw args to a catalogue function of `kind` with
/// validated arguments, or the failure the caller gets.
fn resolve(kind: Kind, udf_path: &str, raw_args: &str) -> Result<(Function, Arc<Object>), Failure> {
    let function = lookup(Some(kind), udf_path)?;
    let args = wire::decode_args(raw_args).map_err(|e| {
        let code = match e {
            wire::ArgsError::TooLarge(_) => ErrorCode::TooLarge,
            _ => ErrorCode::InvalidArguments,
        };
        Failure::from(UserError::new(code, format!("{}: {e}", function.path())))
    })?;
    Ok((function, validate(function, &args)?))
}

/// Finds a catalogue function by path, of the kind a route demands (any for `None`).
fn lookup(kind: Option<Kind>, udf_path: &str) -> Result<Function, Failure> {
    let public = |f: &Function| !f.is_internal() && kind.is_none_or(|k| f.kind() == k);
    Function::from_path(udf_path).filter(public).ok_or_else(|| Failure {
        message: format!(
            "Could not find public function for '{udf_path}'. The syncspec catalogue has no {} by that name.",
            match kind {
                Some(Kind::Query) => "query",
                Some(Kind::Mutation) => "mutation",
                Some(Kind::Action) => "action",
                None => "function",
            }
        ),
        data: None,
    })
}

/// Checks decoded arguments against a function's validator.
fn validate(function: Function, args: &Value) -> Result<Arc<Object>, Failure> {
    let fields = function.validate(args).map_err(|e| {
        let mut error = UserError::new(ErrorCode::InvalidArguments, format!("{}: {e}", function.path()));
        if let Some(field) = e.field {
            error = error.with("field", Value::from(field));
        }
        Failure::from(error)
    })?;
    Ok(Arc::new(fields.clone()))
}

mod records;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fault_tests;

#[cfg(test)]
mod page_tests;

#[cfg(test)]
mod action_tests;

#[cfg(test)]
mod schedule_tests;
