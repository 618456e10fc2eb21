//! 9. Limits and bad input: each gets the protocol's answer (a failed call,
//! or FatalError for a protocol violation) and harms no other session.
//!
//! Cases 9.11 to 9.14, what a hostile client does, are in `hostile.rs`.

use futures_util::SinkExt as _;
use syncspec_protocol::client::MutationOutcome;
use tokio_tungstenite::tungstenite::Message;

use super::case;
use super::handshake::{open_raw, raw_socket, read_until};
use crate::suite::{connect, obj, Case, CaseResult, Ctx, Judge};

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!("9.1", "an $integer of 4 bytes fails the call", "int64 needs exactly 8 bytes", short_integer),
        case!(
            "9.2",
            "a $float for an ordinary number fails the call",
            "$float is only for NaN, ±Infinity and -0",
            plain_float
        ),
        case!(
            "9.3",
            "arguments as a bare object fail the call",
            "args is a one-element array holding an object",
            bare_object_args
        ),
        case!(
            "9.4",
            "arguments as two objects fail the call",
            "args is a one-element array holding an object",
            two_object_args
        ),
        case!("9.5", "arguments over 16 MiB fail the call", "function arguments are limited to 16 MiB", oversize_args),
        case!("9.6", "a document over 1 MiB fails the call", "documents are limited to 1 MiB", oversize_document),
        case!(
            "9.7",
            "a maxObservedTimestamp far in the future is refused",
            "a client cannot have seen a ts the backend never reached",
            future_timestamp
        ),
        case!(
            "9.8",
            "a duplicate query id ends the session",
            "query ids are unique within a query set",
            duplicate_query_id
        ),
        case!(
            "9.9",
            "removing an unknown query id ends the session",
            "Remove names a query in the set",
            unknown_query_id
        ),
        case!("9.10", "a field name starting with $ fails the call", "field names may not start with $", dollar_field),
    ]
}

/// Sends a raw mutation frame on a fresh socket; expects a failed response
/// whose `errorData.code` (if any) is `code`, and the session to go on.
async fn expect_failed_call(ctx: Ctx, args_json: &str, what: &str) -> CaseResult {
    let mut judge = Judge::default();
    let Some(mut ws) = raw_socket(&ctx, &mut judge, "/api/sync").await else { return judge.finish() };
    let frame = format!(r#"{{"type":"Mutation","requestId":7,"udfPath":"counters:increment","args":{args_json}}}"#);
    let _ = ws.send(Message::text(frame)).await;
    let got = read_until(&mut ws, "\"requestId\":7", &ctx.patience).await;
    let response = got.texts.iter().find(|t| t.contains("\"requestId\":7"));
    judge.expect(response.is_some_and(|r| r.contains("\"success\":false")), || {
        format!("{what}: expected a failed MutationResponse, got {:?} (closed: {})", got.texts, got.closed)
    });
    let follow =
        r#"{"type":"Mutation","requestId":8,"udfPath":"counters:increment","args":[{"name":"after-bad-input"}]}"#;
    let _ = ws.send(Message::text(follow)).await;
    let after = read_until(&mut ws, "\"requestId\":8", &ctx.patience).await;
    judge.expect(after.texts.iter().any(|t| t.contains("\"requestId\":8") && t.contains("\"success\":true")), || {
        format!("{what}: the session should go on, got {:?}", after.texts)
    });
    judge.finish()
}

async fn short_integer(ctx: Ctx) -> CaseResult {
    expect_failed_call(ctx, r#"[{"name":"c","by":{"$integer":"AQAAAA=="}}]"#, "a 4-byte $integer").await
}

async fn plain_float(ctx: Ctx) -> CaseResult {
    expect_failed_call(ctx, r#"[{"name":"c","by":{"$float":"AAAAAAAA8D8="}}]"#, "a $float for 1.0").await
}

async fn bare_object_args(ctx: Ctx) -> CaseResult {
    expect_failed_call(ctx, r#"{"name":"c"}"#, "a bare object").await
}

async fn two_object_args(ctx: Ctx) -> CaseResult {
    expect_failed_call(ctx, r#"[{"name":"c"},{"name":"d"}]"#, "two objects").await
}

async fn dollar_field(ctx: Ctx) -> CaseResult {
    expect_failed_call(ctx, r#"[{"name":"c","$weird":1}]"#, "a $ field name").await
}

async fn oversize_args(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(client) = connect(&ctx, &mut judge).await else { return judge.finish() };
    let big = "x".repeat(16 * 1024 * 1024 + 1);
    let r = client
        .mutation("messages:send", obj([("channel", "c".into()), ("author", "a".into()), ("body", big.into())]))
        .await;
    judge.expect(matches!(r, Ok(MutationOutcome::Failed { .. })), || {
        "arguments over 16 MiB should fail the call".to_owned()
    });
    let r = client.mutation("counters:increment", obj([("name", ctx.fresh("after").into())])).await;
    judge.expect(matches!(r, Ok(MutationOutcome::Ok { .. })), || format!("the session should go on: {r:?}"));
    judge.finish()
}

async fn oversize_document(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(client) = connect(&ctx, &mut judge).await else { return judge.finish() };
    let big = "x".repeat(1024 * 1024 + 1);
    let r = client.mutation("documents:create", obj([("title", "t".into()), ("content", big.into())])).await;
    judge.expect(matches!(r, Ok(MutationOutcome::Failed { .. })), || {
        "a document over 1 MiB should fail the call".to_owned()
    });
    let r = client.mutation("documents:create", obj([("title", "t".into()), ("content", "small".into())])).await;
    judge.expect(matches!(r, Ok(MutationOutcome::Ok { .. })), || format!("the session should go on: {r:?}"));
    judge.finish()
}

async fn future_timestamp(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(mut ws) = open_raw(&ctx, &mut judge, "/api/sync").await else { return judge.finish() };
    let day_ahead =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
            + 86_400_000_000_000;
    let connect = serde_json::json!({"type": "Connect", "sessionId": "00000000-0000-4000-8000-00000000f00d", "connectionCount": 1,
        "lastCloseReason": "x", "maxObservedTimestamp": syncspec_protocol::wire::encode_ts(day_ahead)});
    let _ = ws.send(Message::text(connect.to_string())).await;
    let add = serde_json::json!({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1,
        "modifications": [{"type": "Add", "queryId": 0, "udfPath": "counters:get", "args": [{"name": "x"}]}]});
    let _ = ws.send(Message::text(add.to_string())).await;
    let got = read_until(&mut ws, "FatalError", &ctx.patience).await;
    let served = got.has("\"Transition\"");
    judge.expect(!served && (got.closed || got.has("FatalError")), || {
        format!("a client claiming a ts a day ahead was served: {:?}", got.texts)
    });
    judge.finish()
}

async fn query_set_violation(ctx: Ctx, modifications: serde_json::Value, what: &str) -> CaseResult {
    let mut judge = Judge::default();
    let Some(mut ws) = raw_socket(&ctx, &mut judge, "/api/sync").await else { return judge.finish() };
    let frame = serde_json::json!({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": modifications});
    let _ = ws.send(Message::text(frame.to_string())).await;
    let got = read_until(&mut ws, "FatalError", &ctx.patience).await;
    judge.expect(got.has("FatalError") || got.closed, || {
        format!("{what}: expected the session to end, got {:?}", got.texts)
    });
    let Some(other) = connect(&ctx, &mut judge).await else { return judge.finish() };
    let r = other.mutation("counters:increment", obj([("name", ctx.fresh("bystander").into())])).await;
    judge.expect(matches!(r, Ok(MutationOutcome::Ok { .. })), || format!("another session failed after {what}: {r:?}"));
    judge.finish()
}

async fn duplicate_query_id(ctx: Ctx) -> CaseResult {
    let add = |name: &str| serde_json::json!({"type": "Add", "queryId": 3, "udfPath": "counters:get", "args": [{"name": name}]});
    query_set_violation(ctx, serde_json::json!([add("a"), add("b")]), "a duplicate query id").await
}

async fn unknown_query_id(ctx: Ctx) -> CaseResult {
    query_set_violation(ctx, serde_json::json!([{"type": "Remove", "queryId": 41}]), "removing an unknown query").await
}
