//! The libFuzzer target `core`: the body in `src/core.rs`, which the stable
//! tests run too.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| syncspec_fuzz::core::run(data));
