//! goose load scenarios for backends that speak the Convex sync protocol.
//!
//! One simulated client per goose user: it connects, subscribes to its
//! room's query, and writes on an open schedule, stamping each write with
//! its intended send instant. Every other client of the room that sees the
//! change records how long it took (one process, one monotonic clock). The
//! samples go to goose as custom requests (so its reports and thresholds
//! work) and to the kit's own HdrHistograms (so shards merge exactly).

mod conn;
pub mod echo;
mod history;
pub mod metrics;
pub mod plan;
mod reply;
mod room;
pub mod run;
mod writer;

pub use plan::{Kind, ScenarioName, Shard};
pub use run::{goose_help, run, sweep, LoadAuth, LoadConfig, LoadError};
pub use writer::Schedule;
