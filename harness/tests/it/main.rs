//! Integration tests of the `syncspec` binary, one test binary for the crate.

/// The npm `convex` client against `syncspec serve` (runs `tests/node`).
mod official_js_client;
/// Workspace rules a compiler does not check: file headers, banned attributes.
mod tidy;
