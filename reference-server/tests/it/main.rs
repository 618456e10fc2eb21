//! Integration tests of the reference server, one test binary for the crate.
//! Every test starts its own server on a free loopback port.

/// Connection limits and the handshake timeout: idle and half-sent connections, a 503 past the limit.
mod admission;
/// The catalogue's shared expectations, run against the reference functions.
mod catalogue;
/// A client churning its query set: closed with 1013 past its bucket of changes.
mod churn;
/// The official crates.io `convex` client: read-your-writes, concurrency, values, errors, drops.
mod convex_rs_client;
/// The `core` fuzz target's body over its corpus and edits of it, with its negative control.
mod fuzz;
/// The HTTP API and keepalive at the byte level.
mod http;
/// What a core step costs for a call with megabytes of arguments: no more than for a small one.
mod lock;
/// Raw WebSocket clients: routing, keepalive, bad frames, oversize input, stalled readers.
mod socket;
