//! The libFuzzer target `planted`, the negative control: `frames` with the
//! bug in `src/planted.rs`, which a bounded run must find.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| syncspec_fuzz::planted::frames(data));
