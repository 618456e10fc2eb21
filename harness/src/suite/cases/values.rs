//! 2. Values: every Convex value type round-trips through `values:echo`.

use syncspec_protocol::value::Value;

use super::case;
use crate::suite::{obj, Case, CaseResult, Ctx, Judge};

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!("2.1", "int64 extremes round-trip", "int64 values keep all 64 bits", int64),
        case!("2.2", "bytes round-trip", "bytes, empty included, arrive unchanged", bytes),
        case!("2.3", "NaN, ±Infinity and -0 round-trip", "special floats keep their bits", special_floats),
        case!("2.4", "nested objects and arrays round-trip", "structure and field order arrive unchanged", nested),
        case!("2.5", "Unicode and escapes in strings round-trip", "strings arrive byte for byte", strings),
        case!("2.6", "ordinary floats round-trip exactly", "float64 values keep all their bits", floats),
        case!("2.7", "a large array round-trips", "8,192 elements arrive intact", large_array),
    ]
}

/// Echoes each value through a subscription and compares bit for bit.
async fn echo_all(ctx: Ctx, values: Vec<Value>) -> CaseResult {
    let mut judge = Judge::default();
    let Some(client) = crate::suite::connect(&ctx, &mut judge).await else { return judge.finish() };
    for value in values {
        let id = client.subscribe("values:echo", obj([("value", value.clone())]));
        let view = crate::suite::wait_view(&mut judge, &client, "the echo", |v| v.results.contains_key(&id)).await;
        let Some(view) = view else { break };
        let got = view.results.get(&id);
        let same = matches!(got, Some(syncspec_protocol::client::QueryResult::Value(v)) if same_bits(v, &value));
        judge.expect(same, || format!("sent {value:?}, got back {got:?}"));
        client.unsubscribe(id);
    }
    judge.verdict(crate::checkers::order::version_chain(&ctx.history()));
    judge.finish()
}

/// Equality that tells -0 from 0 and compares NaN payloads.
fn same_bits(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float64(x), Value::Float64(y)) => x.to_bits() == y.to_bits(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_bits(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((ka, a), (kb, b))| ka == kb && same_bits(a, b))
        }
        _ => a == b,
    }
}

async fn int64(ctx: Ctx) -> CaseResult {
    echo_all(ctx, vec![Value::Int64(i64::MAX), Value::Int64(i64::MIN), Value::Int64(0), Value::Int64(-1)]).await
}

async fn bytes(ctx: Ctx) -> CaseResult {
    echo_all(ctx, vec![Value::Bytes(vec![]), Value::Bytes((0..=255).collect())]).await
}

async fn special_floats(ctx: Ctx) -> CaseResult {
    echo_all(
        ctx,
        vec![
            Value::Float64(f64::NAN),
            Value::Float64(f64::INFINITY),
            Value::Float64(f64::NEG_INFINITY),
            Value::Float64(-0.0),
        ],
    )
    .await
}

async fn nested(ctx: Ctx) -> CaseResult {
    let inner = obj([("a", Value::Array(vec![Value::Null, Value::Boolean(true), obj([("z", Value::Int64(3))])]))]);
    echo_all(ctx, vec![obj([("outer", inner), ("empty", obj([])), ("list", Value::Array(vec![]))])]).await
}

async fn strings(ctx: Ctx) -> CaseResult {
    echo_all(
        ctx,
        vec![
            Value::from("ünïcødé ✓ 𝄞"),
            Value::from("quote \" backslash \\ newline \n tab \t nul \u{0}"),
            Value::from(""),
        ],
    )
    .await
}

async fn floats(ctx: Ctx) -> CaseResult {
    echo_all(
        ctx,
        vec![
            Value::Float64(0.1),
            Value::Float64(1e300),
            Value::Float64(5e-324),
            Value::Float64(-2.5),
            Value::Float64(9007199254740993.0),
        ],
    )
    .await
}

async fn large_array(ctx: Ctx) -> CaseResult {
    echo_all(ctx, vec![Value::Array((0..8192).map(|i| Value::Float64(f64::from(i))).collect())]).await
}
