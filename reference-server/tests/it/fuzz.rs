//! The `core` fuzz target on the stable toolchain: its body
//! (`fuzz/src/core.rs`, shared with the libFuzzer target by `#[path]`)
//! over every script of its committed corpus, then over edited scripts
//! (`fuzz/stable/mutate.rs`), with the negative control that shows the
//! run catches a core that harms its clients. The seed scripts are made
//! here, their frames with `wire`'s writers.

use syncspec_protocol::value::{Object, Value};
use syncspec_protocol::wire::{self, AuthToken, Connect, QuerySetChange, Ts};
use syncspec_server::core::{Config, Fault};

// The body is `pub` for the fuzz crate, which calls it from outside.
#[allow(unreachable_pub)]
#[path = "../../../fuzz/src/core.rs"]
mod core;
#[allow(unreachable_pub)]
#[path = "../../../fuzz/stable/mutate.rs"]
mod mutate;

use self::core::{op, SESSIONS, T0};

#[test]
fn the_corpus_holds_the_seeds() {
    mutate::check_seeds("core", &seeds()).unwrap();
}

#[test]
fn scripts_of_the_corpus() {
    mutate::replay(&mutate::corpus("core"), self::core::run).unwrap();
}

#[test]
fn scripts_edited() {
    mutate::mutate("core", &mutate::corpus("core"), mutate::cases(2048), self::core::run).unwrap();
}

/// A core whose every third transition of a session starts away from
/// where the last ended: the corpus's scripts alone show it.
#[test]
fn a_broken_version_chain_is_caught() {
    fn broken(data: &[u8]) {
        let mut config = Config::standard();
        config.faults.insert(Fault::BreakVersionChain);
        self::core::run_with(data, config);
    }
    let found = mutate::replay(&mutate::corpus("core"), broken).expect_err("the broken chain went unnoticed");
    assert!(found.contains("transitions do not chain"), "{found}");
}

/// Writes scripts for `corpus/core/`: each operation as `step` reads it.
#[derive(Debug, Default)]
struct Script(Vec<u8>);

impl Script {
    fn op(mut self, opcode: u8, slot: u8) -> Script {
        self.0.extend([opcode, slot]);
        self
    }

    /// An operation whose fields are `fields`, read as `step` reads them.
    fn with(mut self, opcode: u8, slot: u8, fields: &[u8]) -> Script {
        self.0.extend([opcode, slot]);
        self.0.extend(fields);
        self
    }

    fn text(mut self, slot: u8, text: &str) -> Script {
        let len = u16::try_from(text.len()).expect("a seed frame under 64 KiB");
        self.0.extend([op::TEXT, slot]);
        self.0.extend(len.to_le_bytes());
        self.0.extend(text.as_bytes());
        self
    }
}

/// The seed inputs of `corpus/core/`: the script's connections connecting,
/// subscribing, calling and misbehaving, with whole frames `wire` writes.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let connect = |session: &str, observed: Option<Ts>| {
        wire::write_connect(&Connect {
            session_id: session,
            connection_count: 0,
            last_close_reason: "InitialConnect",
            max_observed_timestamp: observed,
            client_ts: None,
        })
    };
    let counter = Value::object([("name", Value::from("c"))]);
    let send = Value::object([
        ("channel", Value::from("general")),
        ("author", Value::from("ada")),
        ("body", Value::from("hi")),
    ]);
    let page = Value::object([
        ("channel", Value::from("general")),
        ("paginationOpts", Value::object([("numItems", Value::Float64(1.0)), ("cursor", Value::Null)])),
    ]);
    let reply = Value::object([
        ("channel", Value::from("general")),
        ("author", Value::from("bot")),
        ("text", Value::from("one two three")),
        ("tokenIntervalMs", Value::Float64(5.0)),
        ("failAfterTokens", Value::Float64(2.0)),
    ]);
    let later =
        Value::object([("user", Value::from("ada")), ("title", Value::from("t")), ("delayMs", Value::Float64(10.0))]);
    let subscribe = |base: u32, query_id: u32, path: &str, args: &Value| {
        wire::write_modify_query_set(
            base,
            base + 1,
            &[QuerySetChange::Add { query_id, udf_path: path, args, journal: None }],
        )
    };
    let session = SESSIONS[0];
    let two_clients = Script::default()
        .op(op::OPEN, 0)
        .text(0, &connect(session, None))
        .op(op::OPEN, 1)
        .text(1, &connect(SESSIONS[1], None))
        .text(0, &subscribe(0, 0, "counters:get", &counter))
        .text(1, &subscribe(0, 0, "messages:page", &page))
        .text(0, &wire::write_mutation(0, "counters:increment", &counter))
        .text(1, &wire::write_mutation(0, "messages:send", &send))
        .with(op::RUN_JOB, 0, &[0, 0])
        .with(op::RUN_JOB, 0, &[0, 0])
        .with(op::REPORT, 0, &[1, 0])
        .with(op::REPORT, 0, &[0, 0])
        .op(op::DELIVER, 0)
        .op(op::DELIVER, 1);
    let replay = Script::default()
        .op(op::OPEN, 0)
        .text(0, &connect(session, None))
        .text(0, &wire::write_mutation(7, "counters:increment", &counter))
        .op(op::CLOSE, 0)
        .op(op::OPEN, 0)
        .text(0, &connect(session, Some(T0)))
        .text(0, &wire::write_mutation(7, "counters:increment", &counter))
        .text(0, &wire::write_mutation(7, "counters:increment", &send))
        .op(op::RUN_ALL, 0);
    let action_and_schedule = Script::default()
        .op(op::OPEN, 2)
        .text(2, &connect(SESSIONS[2], None))
        .text(2, &wire::write_action(0, "messages:streamReply", &reply))
        .text(2, &wire::write_mutation(0, "notifications:sendLater", &later))
        .op(op::RUN_ALL, 0)
        .op(op::WAKE, 0)
        .op(op::RUN_ALL, 0)
        .with(op::TICK, 0, &[3, 0x10, 0x27, 0, 0])
        .op(op::WAKE, 0)
        .op(op::RUN_ALL, 0);
    let bad_frames = Script::default()
        .op(op::OPEN, 0)
        .text(0, &wire::write_mutation(0, "counters:increment", &counter))
        .op(op::OPEN, 1)
        .text(1, &connect(session, None))
        .text(1, "{not json")
        .op(op::OPEN, 2)
        .text(2, &connect(SESSIONS[2], Some(u64::MAX)))
        .op(op::OPEN, 0)
        .text(0, &connect(SESSIONS[3], None))
        .text(0, &wire::write_modify_query_set(5, 6, &[]))
        .op(op::BINARY, 0);
    let authenticate = Script::default()
        .op(op::OPEN, 1)
        .text(1, &connect(SESSIONS[1], None))
        .text(1, &subscribe(0, 3, "users:me", &Value::Object(Object::new())))
        .text(1, &wire::write_authenticate(0, AuthToken::User("not.a.jwt")))
        .with(op::AUTHENTICATE, 1, &[1, 4, 1, 0, 1, 1, 0, 2])
        .text(1, &wire::write_authenticate(0, AuthToken::None));
    let http = Script::default()
        .with(op::CALL, 0, &[2, 3, 1, 2, 2, 2, 2, 2])
        .with(op::CALL, 0, &[1, 9, 2, 0, 0, 0])
        .with(op::CALL, 0, &[3, 0, 5, 1, 1, 1, 1, 1, 1, 1])
        .op(op::RUN_ALL, 0);
    let generated = Script::default()
        .op(op::OPEN, 0)
        .with(op::CONNECT, 0, &[0, 0, 0, 1, 0])
        .with(op::MODIFY_QUERY_SET, 0, &[1, 2, 1, 5, 1, 2, 2, 2, 2, 2])
        .with(op::MUTATION, 0, &[2, 1, 4, 2, 2, 2, 2, 2, 2, 2, 2])
        .with(op::ACTION, 0, &[2, 1, 0, 2, 2, 2, 2, 2, 2, 2])
        .with(op::EVENT, 0, &[0, 2, 9, 1])
        .op(op::RUN_ALL, 0)
        .with(op::PASS, 0, &[2, 0xff, 0xff]);
    let mut watched = Script::default()
        .op(op::OPEN, 0)
        .text(0, &connect(session, None))
        .text(0, &subscribe(0, 0, "counters:get", &counter))
        .op(op::OPEN, 1)
        .text(1, &connect(SESSIONS[1], None));
    for request_id in 0..4 {
        watched = watched
            .text(1, &wire::write_mutation(request_id, "counters:increment", &counter))
            .op(op::RUN_ALL, 0)
            .op(op::DELIVER, 0)
            .op(op::DELIVER, 1);
    }
    // A path `convex_sync_types` panicked on (`wire::udf_path` says more),
    // from a client whose session others share.
    let long_path = format!("{}\u{e9}:f", "m".repeat(63));
    let path_char_boundary = Script::default()
        .op(op::OPEN, 0)
        .text(0, &connect(session, None))
        .text(0, &subscribe(0, 0, "counters:get", &counter))
        .text(0, &subscribe(1, 1, &long_path, &counter))
        .op(op::OPEN, 1)
        .text(1, &connect(session, None))
        .text(1, &wire::write_mutation(0, &long_path, &counter));
    let mut seeds = vec![
        ("two-clients", two_clients.0),
        ("watched", watched.0),
        ("regression-path-char-boundary", path_char_boundary.0),
        ("replay", replay.0),
        ("action-and-schedule", action_and_schedule.0),
        ("bad-frames", bad_frames.0),
        ("authenticate", authenticate.0),
        ("http", http.0),
        ("generated", generated.0),
    ];
    seeds.sort();
    seeds
}
