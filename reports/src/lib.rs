//! syncspec's reports: one data model ([`report::Report`]) that every result
//! of the kit becomes, and the renderers that read it and nothing else.
//!
//! Layout:
//! - `report`: `Report`, `Backend` (one column) and `Environment`; reading and writing `report.json`.
//! - `conformance`: the suite's results, `Outcome`, `Evidence`, and the histories of cases that did not pass.
//! - `load`: `LoadResult`, the one `Figures` type a run, a kind of client and a sweep step share, and the
//!   HdrHistograms behind every latency.
//! - `model`: model-check results with their traces.
//! - `hist`: `Hist`, an HdrHistogram that travels in JSON, and `Summary`.
//! - `merge`: `report merge`, the shards of one load run added up exactly.
//! - `gate`: threshold expressions and the regression check against a baseline, for CI.
//! - `assessment`: the verdict every renderer shows first, per backend, decided once.
//! - `html`, `markdown`, `junit`: the renderers.
//!
//! **This crate does no network IO**: it reads finished results and writes files.

pub mod assessment;
pub mod conformance;
pub mod gate;
pub mod hist;
pub mod html;
pub mod junit;
pub mod load;
pub mod markdown;
pub mod merge;
pub mod model;
pub mod report;
