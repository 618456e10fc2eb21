//! The libFuzzer target `values`: the body in `src/values.rs`, which the stable
//! tests run too.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| syncspec_fuzz::values::run(data));
