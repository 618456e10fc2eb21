//! Integration tests of `syncspec-protocol`, one module per area. Unit tests
//! of each codec sit beside it in `src/`; here go tests that need the crate
//! whole or a process-wide setting (the counting allocator below).
//!
//! `allocation_counter` replaces the global allocator for this binary and
//! counts per thread, so tests running side by side do not see each other's
//! allocations.

/// What reading a client's frames and arguments costs: refusals come early,
/// in memory bounded by the frame and by Convex's value limits.
mod args;
/// The `frames` and `values` fuzz targets' bodies over their corpus and
/// edits of it, with their negative controls.
mod fuzz;
