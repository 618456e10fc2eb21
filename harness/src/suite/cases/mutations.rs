//! 4. Mutations and read-your-writes: resolution after the covering
//! transition, order within a session, user errors with their codes.

use syncspec_protocol::client::{ClientError, MutationOutcome, QueryResult};
use syncspec_protocol::value::Value;

use super::case;
use super::validation::rejects_arguments;
use crate::checkers::{order, replay};
use crate::suite::{answered, connect, obj, quiesce, wait_view, Case, CaseResult, Ctx, Judge};

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!(
            "4.1",
            "a resolved mutation shows in the sender's own subscription",
            "read-your-writes: a mutation resolves only once its effect is visible",
            own_write_visible
        ),
        case!(
            "4.2",
            "a mutation no subscription depends on still resolves",
            "a transition reaches every commit's ts, even with nothing to update",
            resolves_without_subscriptions
        ),
        case!(
            "4.3",
            "one client's mutations commit in the order sent",
            "a session's mutations run one at a time, in order",
            session_order
        ),
        case!("4.4", "an empty message fails with EmptyMessage", "user errors carry errorData.code", empty_message),
        case!("4.5", "a 4,097-character message fails with TooLong", "user errors carry errorData.code", too_long),
        case!(
            "4.6",
            "missing, extra and mistyped fields fail their validator",
            "validators refuse bad arguments (InvalidArguments naming the field, or Convex's ArgumentValidationError) and keep the session",
            invalid_arguments
        ),
        case!(
            "4.7",
            "an unknown mutation fails and the session goes on",
            "an unknown function fails the call, not the session",
            unknown_mutation
        ),
        case!(
            "4.8",
            "a stale expectedVersion fails with VersionConflict",
            "documents:update checks the stored version",
            version_conflict
        ),
        case!(
            "4.9",
            "appending to a missing message fails with NotFound",
            "user errors carry errorData.code",
            not_found
        ),
        case!(
            "4.10",
            "failed mutations write nothing",
            "a user error commits no partial write",
            failures_write_nothing
        ),
        case!(
            "4.11",
            "the commit ts of a session's mutations increases",
            "commit timestamps order a session's mutations",
            commit_ts_increases
        ),
    ]
}

async fn own_write_visible(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(client) = connect(&ctx, &mut judge).await else { return judge.finish() };
    let channel = ctx.fresh("chan");
    let q = client.subscribe("messages:list", obj([("channel", channel.as_str().into())]));
    wait_view(&mut judge, &client, "the initial result", |v| v.results.contains_key(&q)).await;
    for i in 0..5 {
        let body = format!("mine {i}");
        let r = client
            .mutation(
                "messages:send",
                obj([("channel", channel.as_str().into()), ("author", "me".into()), ("body", body.into())]),
            )
            .await;
        if !answered(&mut judge, || format!("message {i}"), &r) {
            break;
        }
        let view = client.view();
        let shown = match (&r, view.results.get(&q)) {
            (
                Ok(MutationOutcome::Ok { value: Value::String(id), .. }),
                Some(QueryResult::Value(Value::Array(rows))),
            ) => rows.iter().any(|row| row.as_object().and_then(|o| o.get("_id")) == Some(&Value::String(id.clone()))),
            _ => false,
        };
        judge.expect(shown, || format!("message {i} resolved ({r:?}) but the sender's subscription did not show it"));
    }
    let h = ctx.history();
    judge.verdict(order::read_your_writes(&h));
    judge.verdict(replay::snapshot_consistent(&h));
    judge.finish()
}

async fn resolves_without_subscriptions(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(client) = connect(&ctx, &mut judge).await else { return judge.finish() };
    let watched = client.subscribe("counters:get", obj([("name", ctx.fresh("watched").into())]));
    wait_view(&mut judge, &client, "the initial result", |v| v.results.contains_key(&watched)).await;
    let name = ctx.fresh("unwatched");
    for _ in 0..3 {
        let r = client.mutation("counters:increment", obj([("name", name.as_str().into())])).await;
        if !matches!(r, Ok(MutationOutcome::Ok { .. })) {
            judge.fail(format!("the mutation never resolved: {r:?}"));
            break;
        }
    }
    judge.verdict(order::read_your_writes(&ctx.history()));
    judge.finish()
}

async fn session_order(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(client) = connect(&ctx, &mut judge).await else { return judge.finish() };
    let name = ctx.fresh("ordered");
    let calls: Vec<_> =
        (0..30).map(|_| client.mutation("counters:increment", obj([("name", name.as_str().into())]))).collect();
    let results = futures_util::future::join_all(calls).await;
    let values: Vec<i64> = results
        .iter()
        .map(|r| match r {
            Ok(MutationOutcome::Ok { value: Value::Int64(v), .. }) => *v,
            _ => -1,
        })
        .collect();
    judge.expect(values == (1..=30).collect::<Vec<_>>(), || {
        format!("30 pipelined increments returned {values:?}, expected 1..=30 in send order")
    });
    judge.verdict(replay::serializable(&ctx.history()));
    judge.finish()
}

async fn expect_code(ctx: Ctx, function: &str, args: Value, code: &str) -> CaseResult {
    let mut judge = Judge::default();
    let Some(client) = connect(&ctx, &mut judge).await else { return judge.finish() };
    let r = client.mutation(function, args).await;
    let got = r.as_ref().ok().and_then(|o| o.error_code().map(str::to_owned));
    judge.expect(got.as_deref() == Some(code), || format!("expected errorData.code {code}, got {r:?}"));
    let alive = client.mutation("counters:increment", obj([("name", ctx.fresh("alive").into())])).await;
    judge.expect(matches!(alive, Ok(MutationOutcome::Ok { .. })), || {
        format!("the session should go on after a user error: {alive:?}")
    });
    judge.finish()
}

async fn empty_message(ctx: Ctx) -> CaseResult {
    let args = obj([("channel", ctx.fresh("c").into()), ("author", "a".into()), ("body", " \t ".into())]);
    expect_code(ctx, "messages:send", args, "EmptyMessage").await
}

async fn too_long(ctx: Ctx) -> CaseResult {
    let args = obj([("channel", ctx.fresh("c").into()), ("author", "a".into()), ("body", "x".repeat(4097).into())]);
    expect_code(ctx, "messages:send", args, "TooLong").await
}

async fn invalid_arguments(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(client) = connect(&ctx, &mut judge).await else { return judge.finish() };
    let channel = ctx.fresh("c");
    let cases = [
        ("missing field", obj([("channel", channel.as_str().into()), ("author", "a".into())])),
        (
            "extra field",
            obj([
                ("channel", channel.as_str().into()),
                ("author", "a".into()),
                ("body", "b".into()),
                ("mood", "x".into()),
            ]),
        ),
        ("mistyped field", obj([("channel", Value::Float64(1.0)), ("author", "a".into()), ("body", "b".into())])),
    ];
    for (what, args) in cases {
        let r = client.mutation("messages:send", args).await;
        if !answered(&mut judge, || format!("the {what}"), &r) {
            return judge.finish();
        }
        judge.expect(refused_arguments(&r), || format!("{what}: expected a validator failure, got {r:?}"));
    }
    let by = client
        .mutation("counters:increment", obj([("name", ctx.fresh("c").into()), ("by", Value::Float64(1.0))]))
        .await;
    if !answered(&mut judge, || "the float64 `by`".to_owned(), &by) {
        return judge.finish();
    }
    judge.expect(refused_arguments(&by), || {
        format!("a float64 `by` must be refused by the validator (it is int64), got {by:?}")
    });
    // The session goes on after four refusals.
    let alive = client.mutation("counters:increment", obj([("name", ctx.fresh("alive").into())])).await;
    let view = client.view();
    judge.expect(matches!(alive, Ok(MutationOutcome::Ok { .. })) && view.connections == 1, || {
        format!(
            "the session should go on after bad arguments: {alive:?} (FatalError {:?}, {} sockets)",
            view.fatal, view.connections
        )
    });
    judge.finish()
}

/// Whether a call failed its argument validator, in either form a backend
/// may give ([`rejects_arguments`]); a success is not a refusal.
fn refused_arguments(r: &Result<MutationOutcome, ClientError>) -> bool {
    matches!(r, Ok(MutationOutcome::Failed { message, data }) if rejects_arguments(message, data.as_ref()))
}

async fn unknown_mutation(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(client) = connect(&ctx, &mut judge).await else { return judge.finish() };
    let r = client.mutation("nope:nothing", obj([])).await;
    judge.expect(matches!(r, Ok(MutationOutcome::Failed { .. })), || {
        format!("an unknown mutation should fail, got {r:?}")
    });
    let alive = client.mutation("counters:increment", obj([("name", ctx.fresh("alive").into())])).await;
    judge.expect(matches!(alive, Ok(MutationOutcome::Ok { .. })), || format!("the session should go on: {alive:?}"));
    judge.finish()
}

async fn version_conflict(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(client) = connect(&ctx, &mut judge).await else { return judge.finish() };
    let created = client.mutation("documents:create", obj([("title", "t".into()), ("content", "a".into())])).await;
    let Some(id) = created.ok().and_then(|o| o.value().cloned()) else {
        judge.fail("documents:create failed");
        return judge.finish();
    };
    let first = client
        .mutation(
            "documents:update",
            obj([("id", id.clone()), ("content", "b".into()), ("expectedVersion", Value::Float64(1.0))]),
        )
        .await;
    judge.expect(first.as_ref().ok().and_then(|o| o.value().cloned()) == Some(Value::Float64(2.0)), || {
        format!("the first update should give version 2: {first:?}")
    });
    let stale = client
        .mutation(
            "documents:update",
            obj([("id", id), ("content", "c".into()), ("expectedVersion", Value::Float64(1.0))]),
        )
        .await;
    let code = stale.as_ref().ok().and_then(|o| o.error_code().map(str::to_owned));
    judge.expect(code.as_deref() == Some("VersionConflict"), || {
        format!("a stale expectedVersion should fail with VersionConflict: {stale:?}")
    });
    judge.finish()
}

async fn not_found(ctx: Ctx) -> CaseResult {
    let args = obj([("id", "m000000".into()), ("token", "x".into())]);
    expect_code(ctx, "messages:appendToken", args, "NotFound").await
}

async fn failures_write_nothing(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(client) = connect(&ctx, &mut judge).await else { return judge.finish() };
    let bank = ctx.fresh("bank");
    let _ = client
        .mutation(
            "accounts:open",
            obj([("bank", bank.as_str().into()), ("accounts", Value::Float64(2.0)), ("balance", Value::Int64(10))]),
        )
        .await;
    let q = client.subscribe("accounts:balances", obj([("bank", bank.as_str().into())]));
    let r = client
        .mutation(
            "accounts:transfer",
            obj([
                ("bank", bank.as_str().into()),
                ("from", Value::Float64(0.0)),
                ("to", Value::Float64(1.0)),
                ("amount", Value::Int64(11)),
            ]),
        )
        .await;
    let code = r.as_ref().ok().and_then(|o| o.error_code().map(str::to_owned));
    judge.expect(code.as_deref() == Some("InsufficientFunds"), || format!("expected InsufficientFunds, got {r:?}"));
    let r = client
        .mutation(
            "accounts:transfer",
            obj([
                ("bank", bank.as_str().into()),
                ("from", Value::Float64(0.0)),
                ("to", Value::Float64(7.0)),
                ("amount", Value::Int64(1)),
            ]),
        )
        .await;
    let code = r.as_ref().ok().and_then(|o| o.error_code().map(str::to_owned));
    judge.expect(code.as_deref() == Some("NoSuchAccount"), || format!("expected NoSuchAccount, got {r:?}"));
    wait_view(&mut judge, &client, "the balances", |v| v.results.contains_key(&q)).await;
    quiesce().await;
    let h = ctx.history();
    judge.verdict(replay::converged(&h));
    judge.verdict(crate::checkers::invariants::bank_totals(&h));
    judge.finish()
}

async fn commit_ts_increases(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(client) = connect(&ctx, &mut judge).await else { return judge.finish() };
    let name = ctx.fresh("ts");
    let mut last = 0;
    for i in 0..10 {
        let r = client.mutation("counters:increment", obj([("name", name.as_str().into())])).await;
        if !answered(&mut judge, || format!("mutation {i}"), &r) {
            break;
        }
        match r {
            Ok(MutationOutcome::Ok { ts, .. }) => {
                judge.expect(ts > last, || format!("mutation {i} committed at ts {ts}, not after the previous {last}"));
                last = ts;
            }
            other => judge.fail(format!("mutation {i} failed: {other:?}")),
        }
    }
    judge.verdict(order::version_chain(&ctx.history()));
    judge.finish()
}
