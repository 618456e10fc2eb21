//! Benchmarks of the sans-IO core alone: commits per second, OCC under a hot
//! key, and the fan-out of one write to a room of subscribers.
//!
//! Run with `cargo bench -p syncspec-server --bench core`. No sockets here;
//! see `socket.rs` for the whole server over WebSocket.

use std::hint::black_box;
use std::time::{Duration, Instant};

use convex_sync_types::ClientMessage;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use syncspec_protocol::wire;
use syncspec_server::core::{execute, Config, Core, Input, Output};

// The same allocator the `syncspec` binary runs with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const T0: u64 = 1_760_000_000_000_000_000;

fn message(text: &str) -> ClientMessage {
    wire::parse_client_message(text).expect("bench frames are valid")
}

fn connect(core: &mut Core, conn: u64, now: u64) {
    let mut out = Vec::new();
    core.handle(now, Input::Open { conn }, &mut out);
    let text = format!(
        r#"{{"type":"Connect","sessionId":"00000000-0000-0000-0000-{conn:012}","connectionCount":0,"lastCloseReason":"InitialConnect"}}"#
    );
    core.handle(now, Input::Message { conn, message: message(&text).into() }, &mut out);
}

/// Runs one input to completion: executes jobs inline and delivers every
/// transition at once, as a fast client would. Returns the outputs seen.
fn step(core: &mut Core, now: u64, input: Input, out: &mut Vec<Output>) -> usize {
    out.clear();
    core.handle(now, input, out);
    let mut sent = 0;
    let mut queue: std::collections::VecDeque<Output> = out.drain(..).collect();
    while let Some(output) = queue.pop_front() {
        match output {
            Output::Execute(job) => {
                let executed = execute(&job);
                // As the server does: release the snapshot before committing.
                drop(job);
                core.handle(now, Input::Executed(executed), out);
                queue.extend(out.drain(..));
            }
            Output::Send { conn, frame: syncspec_server::core::Frame::Transition(..) } => {
                core.handle(now, Input::Delivered { conn }, out);
                queue.extend(out.drain(..));
                sent += 1;
            }
            _ => sent += 1,
        }
    }
    sent
}

fn distinct_counters(c: &mut Criterion) {
    let mut group = c.benchmark_group("commit");
    group.throughput(Throughput::Elements(1));
    group.bench_function("counters_increment_distinct", |b| {
        b.iter_custom(|iters| {
            let mut core = Core::new(Config::standard());
            let mut now = T0;
            connect(&mut core, 1, now);
            let messages: Vec<ClientMessage> = (0..iters)
                .map(|i| {
                    message(&format!(
                        r#"{{"type":"Mutation","requestId":{i},"udfPath":"counters:increment","args":[{{"name":"c{i}"}}]}}"#
                    ))
                })
                .collect();
            let mut out = Vec::with_capacity(16);
            let start = Instant::now();
            for message in messages {
                now += 1_000;
                black_box(step(&mut core, now, Input::Message { conn: 1, message: message.into() }, &mut out));
            }
            start.elapsed()
        })
    });
    group.finish();
}

fn hot_counter(c: &mut Criterion) {
    let mut group = c.benchmark_group("commit");
    group.throughput(Throughput::Elements(4));
    let mut last_stats = None;
    group.bench_function("counters_increment_hot_4_interleaved", |b| {
        b.iter_custom(|iters| {
            let mut core = Core::new(Config::standard());
            let mut now = T0;
            for conn in 1..=4 {
                connect(&mut core, conn, now);
            }
            let mut out = Vec::new();
            let mut elapsed = Duration::ZERO;
            for i in 0..iters {
                let messages: Vec<(u64, ClientMessage)> = (1..=4)
                    .map(|conn| {
                        (conn, message(&format!(
                            r#"{{"type":"Mutation","requestId":{i},"udfPath":"counters:increment","args":[{{"name":"hot"}}]}}"#
                        )))
                    })
                    .collect();
                let start = Instant::now();
                // Four executions start at one snapshot before any commits.
                let mut jobs = Vec::new();
                for (conn, message) in messages {
                    now += 1_000;
                    out.clear();
                    core.handle(now, Input::Message { conn, message: message.into() }, &mut out);
                    jobs.extend(out.drain(..).filter_map(|o| if let Output::Execute(j) = o { Some(j) } else { None }));
                }
                // Run every pending job at its snapshot, then commit them all;
                // the conflicting ones come back as new jobs until all commit.
                while !jobs.is_empty() {
                    let executed: Vec<_> = jobs.iter().map(execute).collect();
                    // Release the snapshots before committing, as the server does.
                    jobs.clear();
                    for e in executed {
                        now += 1_000;
                        out.clear();
                        core.handle(now, Input::Executed(e), &mut out);
                        for o in out.drain(..) {
                            match o {
                                Output::Execute(j) => jobs.push(j),
                                Output::Send { conn, frame: syncspec_server::core::Frame::Transition(..) } => {
                                    let mut more = Vec::new();
                                    core.handle(now, Input::Delivered { conn }, &mut more);
                                }
                                _ => {}
                            }
                        }
                    }
                }
                elapsed += start.elapsed();
            }
            last_stats = Some(core.stats());
            elapsed
        })
    });
    group.finish();
    if let Some(s) = last_stats {
        let executions = s.commits + s.conflicts;
        println!(
            "hot counter, 4 interleaved executions per round: {} commits, {} conflicts ({:.1}% of executions), {} fell back to the head after {} retries",
            s.commits,
            s.conflicts,
            100.0 * s.conflicts as f64 / executions.max(1) as f64,
            s.fallbacks,
            syncspec_server::core::MAX_OCC_RETRIES,
        );
    }
}

fn fanout(c: &mut Criterion) {
    const ROOM: u64 = 50;
    let mut group = c.benchmark_group("fanout");
    group.bench_function("cursors_move_room_of_50", |b| {
        let mut core = Core::new(Config::standard());
        let mut now = T0;
        let mut out = Vec::new();
        for conn in 1..=ROOM {
            connect(&mut core, conn, now);
            let sub = message(
                r#"{"type":"ModifyQuerySet","baseVersion":0,"newVersion":1,"modifications":[{"type":"Add","queryId":0,"udfPath":"cursors:list","args":[{"room":"r"}]}]}"#,
            );
            step(&mut core, now, Input::Message { conn, message: sub.into() }, &mut out);
        }
        let mut i = 0u64;
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                i += 1;
                // A second between moves of one user keeps them under the rate limit.
                now += 1_000_000_000 / ROOM;
                let conn = 1 + i % ROOM;
                let m = message(&format!(
                    r#"{{"type":"Mutation","requestId":{i},"udfPath":"cursors:move","args":[{{"room":"r","user":"u{conn}","x":{i},"y":1}}]}}"#
                ));
                let start = Instant::now();
                let sent = step(&mut core, now, Input::Message { conn, message: m.into() }, &mut out);
                elapsed += start.elapsed();
                // One response plus a transition to each of the fifty.
                assert_eq!(sent, 1 + ROOM as usize);
            }
            elapsed
        })
    });
    group.finish();
}

criterion_group!(benches, distinct_counters, hot_counter, fanout);
criterion_main!(benches);
