//! The syncspec reference server: an in-memory reactive backend that speaks
//! the Convex sync protocol, built as a sans-IO core inside a thin tokio shell.
//!
//! Layout:
//! - `auth`: verified identities from JWTs (the shell verifies; the core holds the result).
//! - `store`: documents, ordered indexes, MVCC snapshots.
//! - `txn`: transactions over a snapshot, with read and write sets.
//! - `functions`: what the catalogue's queries and mutations do.
//! - `actions`: what its actions do, step by step, outside transactions.
//! - `subscriptions`: the shared query cache and read-set invalidation.
//! - `ratelimit`: token buckets per (function, user).
//! - `session`: one socket's protocol state.
//! - `core`: the deterministic state machine that ties them together.
//! - `oracle`: the catalogue applied one call at a time, for checkers to replay against.
//! - `server`: the tokio shell: sockets, time, worker threads.
//! - `http`: the HTTP API beside the socket, and the routing of every request.
//! - `connection`: one WebSocket, generic over `Sink` and `Stream`, with its keepalive.
//!
//! **The core has no IO, no clock and no threads**; only `server` and
//! `connection` touch tokio.

pub mod actions;
pub mod admission;
pub mod auth;
pub mod connection;
pub mod core;
pub mod functions;
pub mod http;
mod metrics;
pub mod oracle;
pub mod ratelimit;
pub mod server;
pub mod session;
pub mod store;
pub mod subscriptions;
pub mod txn;
