//! The bodies of syncspec's fuzz targets, one module per target, each a
//! function of the fuzzer's bytes that panics when a property breaks.
//!
//! - `frames`: client and server frames and HTTP bodies, as `wire` reads them.
//! - `values`: the Convex JSON codec, both decoders and the argument envelope.
//! - `core`: the reference server's core, driven through its inputs.
//! - `planted`: the negative control, `frames` with a bug the fuzzers must find.
//!
//! The same files are compiled twice: here, for the libFuzzer targets in
//! `fuzz_targets/` (cargo-fuzz), and by `#[path]` into the stable tests
//! (`protocol/tests/it/fuzz.rs`, `reference-server/tests/it/fuzz.rs`),
//! which replay `corpus/` and mutate it under `cargo test --workspace`
//! with `stable/mutate.rs`. So a body names only `super::` siblings and
//! crates both builds have: `syncspec-protocol`, `syncspec-server` and
//! `allocation-counter`. The corpus's seed files are made (and checked)
//! by those tests, with `wire`'s writers; nothing here writes files.

pub mod core;
pub mod frames;
pub mod planted;
pub mod values;
