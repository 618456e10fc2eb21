//! Integration tests of the `syncspec` binary, one test binary for the crate.

/// The HTML report in headless chromium from disk, network off (runs `tests/browser`).
mod browser;
/// `syncspec check` end to end: the reference passes, every fault is caught.
mod check;
/// The catalogue as a Convex project: type check and `convex-test` over the shared scripts (runs `backends/convex`).
mod convex_project;
/// `examples/`: the manifests validate offline; the Indexed Job's shard-then-merge runs here.
mod examples;
/// `syncspec load`: the measuring itself (a known delay, a stall, closed-loop control), history and reply clients.
mod load;
/// `syncspec model` end to end: passes by default, names a fault's property.
mod model;
/// The npm `convex` client against `syncspec serve` (runs `tests/node`).
mod official_js_client;
/// The PyPI `convex` client against `syncspec serve` (runs `tests/python`).
mod official_python_client;
/// `syncspec run` end to end, and `report` and `gate` on what it wrote.
mod run;
/// Shared helpers: turns, scratch directories, a server child process, npm installs.
mod support;
/// Workspace rules a compiler does not check: file headers, banned attributes.
mod tidy;
