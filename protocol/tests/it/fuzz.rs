//! The `frames` and `values` fuzz targets on the stable toolchain: each
//! body (`fuzz/src/`, shared with the libFuzzer targets by `#[path]`) over
//! every file of its committed corpus, then over edited corpus files
//! (`fuzz/stable/mutate.rs`), with the negative controls that show both
//! runs catch a bug: a planted panic the edits must reach, and an encoder
//! whose round trip the replay must refuse. `cargo fuzz` runs the same
//! bodies coverage-guided (README, "Fuzzing"). What fuzzing found is pinned
//! here when it needs the counting allocator, in `wire.rs`'s tests otherwise.

use syncspec_protocol::json;
use syncspec_protocol::value::Value;
use syncspec_protocol::wire;

// The bodies are `pub` for the fuzz crate, which calls them from outside.
#[allow(unreachable_pub)]
#[path = "../../../fuzz/src/frames.rs"]
mod frames;
#[allow(unreachable_pub)]
#[path = "../../../fuzz/stable/mutate.rs"]
mod mutate;
#[allow(unreachable_pub)]
#[path = "../../../fuzz/src/planted.rs"]
mod planted;
#[allow(unreachable_pub)]
#[path = "../../../fuzz/src/values.rs"]
mod values;

/// The seed files, made with `wire`'s writers.
mod seeds;

fn as_bytes(seeds: Vec<(&'static str, String)>) -> Vec<(&'static str, Vec<u8>)> {
    seeds.into_iter().map(|(name, text)| (name, text.into_bytes())).collect()
}

#[test]
fn the_corpus_holds_the_seeds() {
    mutate::check_seeds("frames", &as_bytes(seeds::frames())).unwrap();
    mutate::check_seeds("values", &as_bytes(seeds::values())).unwrap();
}

#[test]
fn frames_of_the_corpus() {
    mutate::replay(&mutate::corpus("frames"), frames::run).unwrap();
}

#[test]
fn frames_edited() {
    mutate::mutate("frames", &mutate::corpus("frames"), mutate::cases(4096), frames::run).unwrap();
}

#[test]
fn values_of_the_corpus() {
    mutate::replay(&mutate::corpus("values"), values::run).unwrap();
}

#[test]
fn values_edited() {
    mutate::mutate("values", &mutate::corpus("values"), mutate::cases(4096), values::run).unwrap();
}

/// The planted bug (a `Mutation` path of over 32 bytes copied into 32) is
/// in no corpus file, and edits of the corpus's `Mutation` frames find it
/// (as CI's libFuzzer run of `planted` starts from them too), in a fixed
/// number of cases whatever `SYNCSPEC_FUZZ_CASES` says.
#[test]
fn the_planted_bug_is_found() {
    let corpus = mutate::corpus("frames");
    assert_eq!(mutate::replay(&corpus, planted::frames), Ok(()), "the corpus itself must not hold the bug");
    let mutations: Vec<_> = corpus.into_iter().filter(|seed| seed.name.starts_with("mutation")).collect();
    let found = mutate::mutate("frames", &mutations, 4096, planted::frames).expect_err("the planted bug went unfound");
    assert!(found.contains("out of range for slice of length 32"), "{found}");
}

/// An encoder that writes -0 as a plain `0` (JSON numbers cannot carry the
/// sign) loses it on the way back, and the round trip says so.
#[test]
fn an_encoder_that_drops_the_sign_of_zero_is_caught() {
    fn encode(value: &Value) -> String {
        json::encode(value).replace(&json::encode(&Value::Float64(-0.0)), "0")
    }
    let found = mutate::replay(&mutate::corpus("values"), |data| values::check(data, encode))
        .expect_err("the broken encoder went unnoticed");
    assert!(found.contains("came back different"), "{found}");
}

/// Found by measuring what the `frames` body's inputs cost: a frame of
/// many fields other than arguments, each under `MAX_OTHER_FIELD_BYTES`,
/// was read into trees whole (eight fields of 800 KB of `[0],` held 613 MB
/// for a 6.4 MB frame). They are limited together now, by their lengths,
/// before any is read.
#[test]
fn many_fields_each_under_the_limit_are_refused_unread() {
    let field = format!("[{}]", vec!["[0]"; 200_000].join(","));
    assert!(field.len() < wire::MAX_OTHER_FIELD_BYTES);
    let fields: String = (0..8).map(|i| format!(r#","x{i}":{field}"#)).collect();
    let frame = format!(r#"{{"type":"Event","eventType":"x","event":null{fields}}}"#);
    let mut parsed = None;
    let held = allocation_counter::measure(|| parsed = Some(wire::parse_client_message(&frame))).bytes_max;
    let e = parsed.expect("measured").unwrap_err();
    assert!(e.to_string().contains("fields other than arguments and modifications"), "{e}");
    assert!(held < 64 * 1024, "{held} bytes held to refuse a {}-byte frame", frame.len());
}
