//! Benchmarks of reading what a client sends: a typical mutation frame and
//! its arguments of about 1 KiB, and one frame holding an argument array far
//! over Convex's 8192-element limit, which must be refused after reading
//! little more than the limit.
//!
//! Run with `cargo bench -p syncspec-protocol --bench decode`. Writing frames
//! and the server's side of a call are measured in `syncspec-server`'s benches.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use syncspec_protocol::value::Value;
use syncspec_protocol::wire;

/// Arguments shaped like a chat message with metadata: strings, floats, an
/// int64, bytes, a nested object and a short array; about 1 KiB as JSON.
fn typical_args() -> String {
    let text = "a message of ordinary length, with a \"quote\" and a newline\n in it. ".repeat(10);
    let meta = Value::object([
        ("client", Value::from("web/1.31.2")),
        ("sentAt", Value::Float64(1_760_000_000_123.0)),
        ("seq", Value::Int64(4_117)),
        ("draft", Value::Boolean(false)),
    ]);
    let args = Value::object([
        ("channel", Value::from("general")),
        ("author", Value::from("user-0042")),
        ("body", Value::from(text)),
        ("meta", meta),
        ("tags", Value::Array(["urgent", "ops", "follow-up"].map(Value::from).to_vec())),
        ("scores", Value::Array((0..24).map(|i| Value::Float64(f64::from(i) * 0.25)).collect())),
        ("nonce", Value::Bytes((0..16).collect())),
        ("replyTo", Value::Null),
    ]);
    let mut out = String::from("[");
    syncspec_protocol::json::encode_into(&args, &mut out);
    out.push(']');
    out
}

fn decode(c: &mut Criterion) {
    let args = typical_args();
    let frame = format!(r#"{{"type":"Mutation","requestId":7,"udfPath":"messages:send","args":{args}}}"#);
    let mut group = c.benchmark_group("decode");

    group.throughput(Throughput::Bytes(args.len() as u64));
    group.bench_function("typical_args", |b| b.iter(|| wire::decode_args(black_box(&args)).unwrap()));

    group.throughput(Throughput::Bytes(frame.len() as u64));
    group.bench_function("typical_frame", |b| b.iter(|| wire::parse_client_message(black_box(&frame)).unwrap()));

    // One million zeros: 2 MB of text, far over the array limit.
    let mut zeros = String::from(r#"[{"a":["#);
    zeros.push_str(&"0,".repeat(1_000_000));
    zeros.push_str("0]}]");
    group.throughput(Throughput::Bytes(zeros.len() as u64));
    group.sample_size(20);
    group.bench_function("over_limit_array", |b| b.iter(|| wire::decode_args(black_box(&zeros))));
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
