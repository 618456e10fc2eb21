//! Integration tests of the `syncspec` binary, one test binary for the crate.

/// `syncspec check` end to end: the reference passes, every fault is caught.
mod check;
/// `syncspec load`: the measuring itself (a known delay, a stall, closed-loop control).
mod load;
/// `syncspec model` end to end: passes by default, names a fault's property.
mod model;
/// `syncspec run` end to end, and `report` and `gate` on what it wrote.
mod run;
/// The npm `convex` client against `syncspec serve` (runs `tests/node`).
mod official_js_client;
/// Workspace rules a compiler does not check: file headers, banned attributes.
mod tidy;
