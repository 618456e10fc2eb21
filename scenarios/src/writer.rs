//! What each simulated client writes, and when: an open schedule per client
//! (the intended instants are fixed in advance and do not wait for
//! answers), so a slow backend delays samples instead of removing them.
//! History clients write here as chat clients do; their page loads live in
//! `history`, and the reply writer's actions in `reply`.

use std::sync::Arc;
use std::time::Duration;

use rand::{Rng as _, SeedableRng as _};
use syncspec_protocol::json;
use syncspec_protocol::value::Value;
use syncspec_protocol::wire;

use crate::conn::{Conn, Owner, Write};
use crate::plan::Kind;
use crate::run::Run;
use crate::{history, reply};

/// Chat messages come every 30 s on average (exponential gaps).
pub(crate) const CHAT_MEAN_GAP_US: f64 = 30_000_000.0;
/// Presence heartbeats every 5 s.
pub(crate) const HEARTBEAT_US: u64 = 5_000_000;
/// Streamed tokens, 50 a second.
pub(crate) const TOKEN_GAP_US: u64 = 20_000;
/// Tokens per streamed message before it is finished and a new one starts.
pub(crate) const TOKENS_PER_STREAM: u32 = 100;
/// The chance, per heartbeat, that a presence client leaves for 10 s, and
/// that it goes silent for 15 s (longer than the 10 s TTL: it times out).
const LEAVE_CHANCE: f64 = 1.0 / 60.0;
const SILENCE_CHANCE: f64 = 1.0 / 60.0;

/// How the writer schedules its sends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Schedule {
    /// Fixed intended instants; latency counts from them (the default).
    #[default]
    Open,
    /// Each cursor move or streamed token waits for the previous one's
    /// answer and is stamped when actually sent: the coordinated-omission
    /// mistake, kept only as a negative control for the measuring tests.
    Closed,
}

/// Runs one client's writes until the run stops writing; `first` is its
/// subscription's first result.
pub(crate) async fn write(run: Arc<Run>, owner: Owner, conn: Conn, ready: u64, first: String) {
    let clock = run.recorder.clock();
    let mut rng = rand::rngs::SmallRng::from_rng(&mut rand::rng());
    let room = Value::from(owner.room.name.as_str());
    // Unique over the run: rate limits are per user.
    let name = crate::conn::member_name(&owner.room.name, owner.member);
    let me = Value::from(name.as_str());
    let sleep_until = |stamp: u64| tokio::time::sleep_until(clock.instant(stamp).into());
    match owner.kind {
        Kind::Chat => chat(&run, &owner, &conn, ready).await,
        Kind::History => {
            tokio::join!(chat(&run, &owner, &conn, ready), history::load_pages(&run, &owner, &conn, ready, &first));
        }
        Kind::Reply => reply::write(&run, &owner, &conn, ready).await,
        Kind::Presence => {
            let mut next = ready;
            while run.may_write(next) {
                sleep_until(next).await;
                // A user leaving may have stopped the writes while this one slept.
                if !run.may_write(next) {
                    return;
                }
                let args = Value::object([
                    ("room", room.clone()),
                    ("user", me.clone()),
                    ("name", Value::from(format!("{name} t{next}"))),
                ]);
                if !conn.write(Write { stamp: next, function: "presence:heartbeat", args, update: true, reply: None }) {
                    return;
                }
                next += HEARTBEAT_US;
                let roll: f64 = rng.random();
                if roll < LEAVE_CHANCE {
                    sleep_until(next).await;
                    // A user leaving may have stopped the writes while this one slept.
                    if !run.may_write(next) {
                        return;
                    }
                    let args = Value::object([("room", room.clone()), ("user", me.clone())]);
                    conn.write(Write { stamp: next, function: "presence:leave", args, update: false, reply: None });
                    next += 2 * HEARTBEAT_US;
                } else if roll < LEAVE_CHANCE + SILENCE_CHANCE {
                    next += 3 * HEARTBEAT_US;
                }
            }
        }
        Kind::Cursors => {
            let period = (1_000_000.0 / run.rate_hz).max(1.0) as u64;
            let mut next = ready + rng.random_range(0..period);
            while run.may_write(next) {
                sleep_until(next).await;
                // A user leaving may have stopped the writes while this one slept.
                if !run.may_write(next) {
                    return;
                }
                let mut stamp = next;
                let (reply, answered) = match run.schedule {
                    Schedule::Open => (None, None),
                    Schedule::Closed => {
                        stamp = clock.now();
                        let (tx, rx) = tokio::sync::oneshot::channel();
                        (Some(tx), Some(rx))
                    }
                };
                let y: f64 = rng.random_range(0.0..1080.0);
                let args = Value::object([
                    ("room", room.clone()),
                    ("user", me.clone()),
                    ("x", Value::Float64(stamp as f64)),
                    ("y", Value::Float64(y.floor())),
                ]);
                if !conn.write(Write { stamp, function: "cursors:move", args, update: true, reply }) {
                    return;
                }
                next += period;
                if let Some(answered) = answered {
                    let _ = answered.await;
                    next = clock.now() + period;
                }
            }
        }
        Kind::Stream => {
            if owner.member != 0 {
                return; // readers only read
            }
            let mut next = ready;
            'streams: while run.may_write(next) {
                sleep_until(next).await;
                // A user leaving may have stopped the writes while this one slept.
                if !run.may_write(next) {
                    break 'streams;
                }
                let (tx, rx) = tokio::sync::oneshot::channel();
                let args = Value::object([("channel", room.clone()), ("author", me.clone())]);
                if !conn.write(Write {
                    stamp: next,
                    function: "messages:startStream",
                    args,
                    update: false,
                    reply: Some(tx),
                }) {
                    return;
                }
                let id = match tokio::time::timeout(Duration::from_secs(10), rx).await {
                    Ok(Ok(Ok(id))) => id,
                    _ => {
                        // Counted as an error where it failed; try again later.
                        next = clock.now() + 1_000_000;
                        continue;
                    }
                };
                // Tokens keep their schedule from the stream's intended start:
                // those due while the start was answered go out at once,
                // each still measured from its own intended instant.
                for _ in 0..TOKENS_PER_STREAM {
                    next += TOKEN_GAP_US;
                    if !run.may_write(next) {
                        break 'streams;
                    }
                    sleep_until(next).await;
                    // A user leaving may have stopped the writes while this one slept.
                    if !run.may_write(next) {
                        break 'streams;
                    }
                    let (stamp, reply, answered) = match run.schedule {
                        Schedule::Open => (next, None, None),
                        Schedule::Closed => {
                            let (tx, rx) = tokio::sync::oneshot::channel();
                            (clock.now(), Some(tx), Some(rx))
                        }
                    };
                    let args = Value::object([("id", id.clone()), ("token", Value::from(format!("t{stamp} ")))]);
                    if !conn.write(Write { stamp, function: "messages:appendToken", args, update: true, reply }) {
                        return;
                    }
                    if let Some(answered) = answered {
                        let _ = answered.await;
                        next = clock.now();
                    }
                }
                conn.write(Write {
                    stamp: next,
                    function: "messages:finishStream",
                    args: Value::object([("id", id)]),
                    update: false,
                    reply: None,
                });
            }
        }
    }
}

/// A chat client's messages, at exponential gaps (`CHAT_MEAN_GAP_US` on
/// average) from its ready instant, each body stamped `t<intended instant>`.
async fn chat(run: &Run, owner: &Owner, conn: &Conn, ready: u64) {
    let clock = run.recorder.clock();
    let mut rng = rand::rngs::SmallRng::from_rng(&mut rand::rng());
    let room = Value::from(owner.room.name.as_str());
    let name = crate::conn::member_name(&owner.room.name, owner.member);
    let me = Value::from(name.as_str());
    let mut next = ready + exponential(&mut rng, CHAT_MEAN_GAP_US);
    let mut seq = 0u64;
    while run.may_write(next) {
        tokio::time::sleep_until(clock.instant(next).into()).await;
        // A user leaving may have stopped the writes while this one slept.
        if !run.may_write(next) {
            return;
        }
        let body = format!("t{next} hello from {name}, message {seq} of a simulated chat");
        let args = Value::object([("channel", room.clone()), ("author", me.clone()), ("body", Value::from(body))]);
        if !conn.write(Write { stamp: next, function: "messages:send", args, update: true, reply: None }) {
            return;
        }
        seq += 1;
        next += exponential(&mut rng, CHAT_MEAN_GAP_US).max(1);
    }
}

/// An exponentially distributed gap with the given mean, in microseconds.
pub(crate) fn exponential(rng: &mut rand::rngs::SmallRng, mean_us: f64) -> u64 {
    (-(1.0 - rng.random::<f64>()).ln() * mean_us) as u64
}

/// The query each client of a kind watches.
pub(crate) fn subscription(kind: Kind, room: &str) -> (&'static str, Value) {
    let room = Value::from(room);
    match kind {
        Kind::Chat => ("messages:list", Value::object([("channel", room), ("limit", Value::Float64(20.0))])),
        Kind::Presence => ("presence:list", Value::object([("room", room)])),
        Kind::Cursors => ("cursors:list", Value::object([("room", room)])),
        Kind::Stream | Kind::Reply => {
            ("messages:list", Value::object([("channel", room), ("limit", Value::Float64(5.0))]))
        }
        Kind::History => history::subscription(room.as_str().unwrap_or_default()),
    }
}

/// The size in bytes of a typical push to one client of this kind: a
/// transition carrying its query's result for a full room.
pub(crate) fn typical_push_bytes(kind: Kind) -> usize {
    let stamp = 123_456_789u64;
    let text = |s: String| Value::String(s);
    let number = Value::Float64;
    let message = |channel: &str, author: String, body: String, streaming: bool| {
        Value::object([
            ("_id", Value::from("k57a8fbn0x9j3s2c1v6d7e8f4g5h")),
            ("_creationTime", number(1.7e12)),
            ("channel", Value::from(channel)),
            ("author", text(author)),
            ("body", text(body)),
            ("streaming", Value::Boolean(streaming)),
        ])
    };
    let chat = |channel: &str| -> Vec<Value> {
        (0..20)
            .map(|i| {
                let author = format!("{channel}:m{i}");
                let body = format!("t{stamp} hello from {author}, message 12 of a simulated chat");
                message(channel, author, body, false)
            })
            .collect()
    };
    let result = match kind {
        Kind::Chat => Value::Array(chat("load-abcdef12-chat-0")),
        // Page 0 as it first arrives; it grows by the messages sent since.
        Kind::History => history::page_result(chat("load-abcdef12-history-0"), "1760000000000.123:12345"),
        Kind::Presence => Value::Array(
            (0..10)
                .map(|i| {
                    let user = format!("load-abcdef12-presence-0:m{i}");
                    let name = format!("{user} t{stamp}");
                    Value::object([("user", text(user)), ("name", text(name)), ("lastSeen", number(1.7e12))])
                })
                .collect(),
        ),
        Kind::Cursors => Value::Array(
            (0..5)
                .map(|i| {
                    Value::object([
                        ("user", text(format!("load-abcdef12-cursors-0:m{i}"))),
                        ("x", number(stamp as f64)),
                        ("y", number(512.0)),
                        ("updatedAt", number(1.7e12)),
                    ])
                })
                .collect(),
        ),
        Kind::Stream | Kind::Reply => Value::Array(
            (0..5)
                .map(|_| {
                    let body = format!("t{stamp} ").repeat(50);
                    message("load-abcdef12-stream-0", "load-abcdef12-stream-0:m0".into(), body, true)
                })
                .collect(),
        ),
    };
    let version = wire::Version { query_set: 1, identity: 0, ts: 1_760_000_000_000_000_000 };
    let push = wire::Transition {
        start: version,
        end: version,
        modifications: vec![wire::Modification::Updated {
            query_id: 0,
            value: json::encode(&result).into(),
            journal: None,
        }],
    };
    let mut out = String::new();
    wire::write_transition(&push, None, 1_760_000_000_000_000_000, &mut out);
    out.len()
}
