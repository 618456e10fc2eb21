//! The bottom of syncspec: what crosses the wire, and the catalogue's contract.
//!
//! Layout:
//! - `value`: the Convex value model, totally ordered and hashable.
//! - `json`: the Convex JSON codec with the official clients' rules.
//! - `catalogue`: the functions every backend exposes, their validators and error codes.
//! - `wire`: every frame both ways (writers, parsers, the flat reader `peek`), HTTP call bodies, timestamps.
//! - `history`: Jepsen-style records of what clients saw, on one clock.
//! - `client`: an async client that behaves like the official ones and records a history.
//!
//! Nothing here runs a server; the reference server lives in `syncspec-server`.

pub mod catalogue;
pub mod client;
pub mod history;
pub mod json;
pub mod value;
pub mod wire;

pub use convex_sync_types;
