//! The libFuzzer target `frames`: the body in `src/frames.rs`, which the stable
//! tests run too.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| syncspec_fuzz::frames::run(data));
