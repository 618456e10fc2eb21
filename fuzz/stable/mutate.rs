//! The stable stand-in for libFuzzer, which `cargo test --workspace` runs
//! on any toolchain: every file of a target's committed corpus replayed,
//! then proptest cases that each take a corpus file and make one to seven
//! edits of the kinds libFuzzer makes (bit flips, bytes set, inserted and
//! removed, JSON and protocol tokens, numbers, truncation, splices of two
//! files, repetition, deep nesting). It is not coverage-guided: it finds
//! what a few edits of the corpus reach, which is why the corpus holds
//! every frame type and value edge.
//!
//! Included by `#[path]` from `protocol/tests/it/fuzz.rs` and
//! `reference-server/tests/it/fuzz.rs`. It needs `proptest`, which the
//! libFuzzer build has no use for, so it is not in `src/`.
//!
//! `SYNCSPEC_FUZZ_CASES` sets the cases a target runs (each test says its
//! default, sized to take a few seconds in a debug build) and
//! `SYNCSPEC_FUZZ_SEED` the RNG seed (default fixed, so a run repeats).
//! `SYNCSPEC_BLESS_CORPUS=1` writes the seed files from the code that
//! makes them, instead of checking them.

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestError, TestRunner};

/// The most bytes an edited input may hold: larger inputs cost a debug
/// build more time than they find (`protocol/tests/it/args.rs` reads
/// frames of megabytes).
const MAX_INPUT: usize = 256 * 1024;

/// Text the edits insert: JSON's structure, the special values, and the
/// names and types of the protocol's frames.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    ":",
    ",",
    "null",
    "true",
    "false",
    "0",
    "-0",
    "1e308",
    "-1e-400",
    "0.5",
    "\"\"",
    "\\u0000",
    "\\ud800",
    "\\ud83d\\ude00",
    "\\\"",
    "\u{e9}",
    "\u{1f600}",
    "\u{fffd}",
    "\"$integer\":",
    "\"$float\":",
    "\"$bytes\":",
    "\"AAAAAAAAAIA=\"",
    "\"AAAAAAAA+H8=\"",
    "\"type\":",
    "\"Connect\"",
    "\"ModifyQuerySet\"",
    "\"Mutation\"",
    "\"Action\"",
    "\"Authenticate\"",
    "\"Event\"",
    "\"requestId\":",
    "\"udfPath\":",
    "\"args\":",
    "\"modifications\":",
    "\"Add\"",
    "\"Remove\"",
    "\"queryId\":",
    "\"baseVersion\":",
    "\"newVersion\":",
    "\"sessionId\":",
    "\"tokenType\":",
    "\"User\"",
    "\"None\"",
    "\"value\":",
    "\"journal\":",
    "\"path\":",
    "\"status\":",
];

/// One file of a corpus.
#[derive(Clone, Debug)]
pub(crate) struct Seed {
    pub(crate) name: String,
    pub(crate) bytes: Vec<u8>,
}

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target)
}

/// Every file of `fuzz/corpus/<target>/`, by name.
pub(crate) fn corpus(target: &str) -> Vec<Seed> {
    let dir = corpus_dir(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut seeds: Vec<Seed> = entries
        .map(|entry| {
            let path = entry.expect("a directory entry").path();
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            Seed { name: path.file_name().unwrap_or_default().to_string_lossy().into_owned(), bytes }
        })
        .collect();
    seeds.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(!seeds.is_empty(), "{} holds no corpus", dir.display());
    seeds
}

/// Checks that the corpus holds each seed as the code makes it today (or,
/// with `SYNCSPEC_BLESS_CORPUS=1`, writes them).
pub(crate) fn check_seeds(target: &str, seeds: &[(&str, Vec<u8>)]) -> Result<(), String> {
    let dir = corpus_dir(target);
    let bless = std::env::var_os("SYNCSPEC_BLESS_CORPUS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for (name, bytes) in seeds {
        let path = dir.join(name);
        if bless {
            std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, bytes)).expect("the seed written");
        } else if std::fs::read(&path).ok().as_ref() != Some(bytes) {
            stale.push(*name);
        }
    }
    if stale.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{}: seeds {stale:?} are missing or differ from what the code makes; \
         rerun with SYNCSPEC_BLESS_CORPUS=1 to write them",
        dir.display()
    ))
}

/// Runs `body` over every corpus file; the error names each that panicked.
pub(crate) fn replay(seeds: &[Seed], body: fn(&[u8])) -> Result<(), String> {
    let failures: Vec<String> = seeds
        .iter()
        .filter_map(|seed| {
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| body(&seed.bytes)));
            outcome.err().map(|e| format!("{}: {}", seed.name, panic_message(&*e)))
        })
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    match (payload.downcast_ref::<&str>(), payload.downcast_ref::<String>()) {
        (Some(s), _) => (*s).to_owned(),
        (_, Some(s)) => s.clone(),
        _ => "a panic that is not text".to_owned(),
    }
}

/// How many cases each target runs: `SYNCSPEC_FUZZ_CASES`, or `default`.
pub(crate) fn cases(default: u32) -> u32 {
    std::env::var("SYNCSPEC_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn rng_seed() -> u64 {
    std::env::var("SYNCSPEC_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x5eed_5eed)
}

/// One edit, its positions as fractions of the input's length in 65536ths
/// so that it applies to any file.
#[derive(Clone, Debug)]
pub(crate) enum Edit {
    FlipBit {
        at: u16,
        bit: u8,
    },
    SetByte {
        at: u16,
        byte: u8,
    },
    Insert {
        at: u16,
        bytes: Vec<u8>,
    },
    Token {
        at: u16,
        token: usize,
    },
    Remove {
        at: u16,
        len: u8,
    },
    Truncate {
        at: u16,
    },
    /// Replaces the `nth` run of ASCII digits (counting round) with `value`.
    Number {
        nth: u8,
        value: u64,
    },
    /// Repeats the `nth` run of ASCII letters and digits (counting round)
    /// `times` times: a longer name, key or path that still parses.
    Word {
        nth: u8,
        times: u16,
    },
    /// Copies `len` bytes of another corpus file, from `from`, to `at`.
    Splice {
        at: u16,
        seed: usize,
        from: u16,
        len: u16,
    },
    /// Repeats the `len` bytes at `at` `times` times.
    Repeat {
        at: u16,
        len: u8,
        times: u16,
    },
    /// Wraps the `len` bytes at `at` in `depth` arrays, or objects.
    Nest {
        at: u16,
        len: u16,
        depth: u8,
        objects: bool,
    },
}

fn edit(seeds: usize) -> impl Strategy<Value = Edit> {
    let value = prop_oneof![0..16u64, any::<u16>().prop_map(u64::from), any::<u32>().prop_map(u64::from), any::<u64>()];
    // Printable ASCII half the time: text that still parses, a longer name.
    let byte = prop_oneof![any::<u8>(), 0x20..0x7fu8];
    // A few repetitions as often as many: a longer name or a huge array.
    let times = prop_oneof![2..8u16, 8..64u16, 64..4096u16];
    prop_oneof![
        1 => (any::<u16>(), 0..8u8).prop_map(|(at, bit)| Edit::FlipBit { at, bit }),
        1 => (any::<u16>(), any::<u8>()).prop_map(|(at, byte)| Edit::SetByte { at, byte }),
        1 => (any::<u16>(), prop::collection::vec(byte, 1..8)).prop_map(|(at, bytes)| Edit::Insert { at, bytes }),
        3 => (any::<u16>(), 0..TOKENS.len()).prop_map(|(at, token)| Edit::Token { at, token }),
        1 => (any::<u16>(), 1..32u8).prop_map(|(at, len)| Edit::Remove { at, len }),
        1 => any::<u16>().prop_map(|at| Edit::Truncate { at }),
        3 => (any::<u8>(), value).prop_map(|(nth, value)| Edit::Number { nth, value }),
        3 => (any::<u8>(), times.clone()).prop_map(|(nth, times)| Edit::Word { nth, times }),
        1 => (any::<u16>(), 0..seeds, any::<u16>(), 1..512u16)
            .prop_map(|(at, seed, from, len)| Edit::Splice { at, seed, from, len }),
        1 => (any::<u16>(), 1..64u8, times).prop_map(|(at, len, times)| Edit::Repeat { at, len, times }),
        1 => (any::<u16>(), any::<u16>(), 1..200u8, any::<bool>())
            .prop_map(|(at, len, depth, objects)| Edit::Nest { at, len, depth, objects }),
    ]
}

/// A position in `len` bytes for a fraction `at`.
fn position(at: u16, len: usize) -> usize {
    (usize::from(at) * (len + 1)) >> 16
}

/// Applies `edits` to a copy of `input`; `seeds` are what a splice copies from.
pub(crate) fn apply(input: &[u8], edits: &[Edit], seeds: &[Seed]) -> Vec<u8> {
    let mut out = input.to_vec();
    for edit in edits {
        let at = |at: u16, out: &Vec<u8>| position(at, out.len());
        match edit {
            Edit::FlipBit { at: a, bit } if !out.is_empty() => {
                let i = at(*a, &out).min(out.len() - 1);
                out[i] ^= 1 << bit;
            }
            Edit::SetByte { at: a, byte } if !out.is_empty() => {
                let i = at(*a, &out).min(out.len() - 1);
                out[i] = *byte;
            }
            Edit::Insert { at: a, bytes } => {
                let i = at(*a, &out);
                out.splice(i..i, bytes.iter().copied());
            }
            Edit::Token { at: a, token } => {
                let i = at(*a, &out);
                out.splice(i..i, TOKENS[*token].bytes());
            }
            Edit::Remove { at: a, len } => {
                let i = at(*a, &out);
                let end = (i + usize::from(*len)).min(out.len());
                out.drain(i..end);
            }
            Edit::Truncate { at: a } => out.truncate(at(*a, &out)),
            Edit::Number { nth, value } => {
                if let Some((start, end)) = nth_run(&out, *nth, u8::is_ascii_digit) {
                    out.splice(start..end, value.to_string().into_bytes());
                }
            }
            Edit::Word { nth, times } => {
                if let Some((start, end)) = nth_run(&out, *nth, u8::is_ascii_alphanumeric) {
                    let word = out[start..end].to_vec();
                    let copies = usize::from(*times).min(MAX_INPUT / word.len());
                    out.splice(end..end, word.iter().copied().cycle().take(word.len() * (copies - 1)));
                }
            }
            Edit::Splice { at: a, seed, from, len } => {
                let other = &seeds[*seed].bytes;
                let from = position(*from, other.len());
                let end = (from + usize::from(*len)).min(other.len());
                let i = at(*a, &out);
                out.splice(i..i, other[from..end].iter().copied());
            }
            Edit::Repeat { at: a, len, times } => {
                let i = at(*a, &out);
                let end = (i + usize::from(*len)).min(out.len());
                let piece = out[i..end].to_vec();
                let copies = usize::from(*times).min(MAX_INPUT / piece.len().max(1));
                out.splice(end..end, piece.iter().copied().cycle().take(piece.len() * copies));
            }
            Edit::Nest { at: a, len, depth, objects } => {
                let i = at(*a, &out);
                let end = (i + usize::from(*len)).min(out.len());
                let (open, close): (&[u8], &[u8]) = if *objects { (b"{\"a\":", b"}") } else { (b"[", b"]") };
                let depth = usize::from(*depth);
                out.splice(end..end, close.iter().copied().cycle().take(close.len() * depth));
                out.splice(i..i, open.iter().copied().cycle().take(open.len() * depth));
            }
            _ => {}
        }
        out.truncate(MAX_INPUT);
    }
    out
}

/// Where the `nth` (counting round) run of bytes that are `in_run` is.
fn nth_run(bytes: &[u8], nth: u8, in_run: fn(&u8) -> bool) -> Option<(usize, usize)> {
    let mut runs = Vec::new();
    let mut start = None;
    for (i, b) in bytes.iter().enumerate() {
        match (in_run(b), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                runs.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    runs.extend(start.map(|s| (s, bytes.len())));
    (!runs.is_empty()).then(|| runs[usize::from(nth) % runs.len()])
}

/// Runs `body` over `cases` edited corpus files. The error is proptest's
/// verdict with the smallest failing edit it found, and the input itself.
pub(crate) fn mutate(target: &str, seeds: &[Seed], cases: u32, body: fn(&[u8])) -> Result<(), String> {
    let config = Config { cases, failure_persistence: None, rng_seed: RngSeed::Fixed(rng_seed()), ..Config::default() };
    // Mostly one or two edits, as most edits leave text no parser reads.
    let edits = prop_oneof![3 => 1..3usize, 1 => 3..8usize];
    let count = seeds.len();
    let strategy = (0..count, edits.prop_flat_map(move |n| prop::collection::vec(edit(count), n)));
    let outcome = TestRunner::new(config).run(&strategy, |(seed, edits)| {
        body(&apply(&seeds[seed].bytes, &edits, seeds));
        Ok(())
    });
    match outcome {
        Ok(()) => Ok(()),
        Err(TestError::Fail(why, (seed, edits))) => {
            let input = apply(&seeds[seed].bytes, &edits, seeds);
            Err(format!(
                "{target}: {why}\n{} edited by {edits:?} gives the {}-byte input {:?}; once fixed, add it to fuzz/corpus/{target}/",
                seeds[seed].name,
                input.len(),
                String::from_utf8_lossy(&input[..input.len().min(4096)]),
            ))
        }
        Err(TestError::Abort(why)) => Err(format!("{target}: {why}")),
    }
}
