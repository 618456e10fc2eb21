//! Stateright models of the reference server, driving its own sans-IO core.
//!
//! Layout:
//! - `sync`: the model (clients with scripts, ordered per-connection
//!   networks, the executor, a clock that moves when the core asks it to)
//!   and its properties.
//! - `report`: runs a check and reports states, depth, time and traces.
//!
//! **Models never touch tokio or a socket**: the core they drive takes its
//! time and its messages from the model's actions.

pub mod report;
pub mod sync;
