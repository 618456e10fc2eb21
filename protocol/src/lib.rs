//! The bottom of syncspec: what crosses the wire, and the catalogue's contract.
//!
//! Layout:
//! - `value`: the Convex value model, totally ordered and hashable.
//! - `json`: the Convex JSON codec with the official clients' rules.
//! - `catalogue`: the functions every backend exposes, their validators and error codes.
//! - `wire`: parsing client frames and writing server frames, timestamps.
//!
//! Nothing here runs a server; the reference server lives in `syncspec-server`.

pub mod catalogue;
pub mod json;
pub mod value;
pub mod wire;

pub use convex_sync_types;
