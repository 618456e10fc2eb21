//! The reports crate's integration tests, one binary.

/// Gate rules as negative controls: each must fail where it should.
mod gate;
/// The HTML report: self-contained, and every section a reader looks for.
mod html;
/// `report merge`: exact sums, and the shards it must refuse.
mod merge;
/// Renderers and the gate against a fixed result (snapshots under `tests/data/`).
mod snapshots;
/// Shared helpers: the fixture.
mod support;
