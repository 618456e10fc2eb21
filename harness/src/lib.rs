//! The `syncspec` crate's library: what the subcommands are built from.
//!
//! Layout:
//! - `checkers`: verdicts over recorded histories, each with evidence.
//! - `suite`: the conformance cases and the runner behind `syncspec check`.
//! - `proxy`: a fault-injecting TCP proxy on loopback for the fault cases.
//!
//! The binary (`main.rs`) parses the command line and calls into these.

pub mod checkers;
pub mod proxy;
pub mod suite;
