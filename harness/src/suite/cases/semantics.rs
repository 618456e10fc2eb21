//! 6. Chat, presence and cursors: what the catalogue's realtime functions
//! mean, as other clients see it.

use std::time::Duration;

use syncspec_protocol::client::{MutationOutcome, View};
use syncspec_protocol::value::Value;

use super::case;
use crate::checkers::{field, replay};
use crate::suite::{
    answered, connect_many, each_answered, obj, quiesce, rows, text, wait_view, Case, CaseResult, Ctx, Judge,
};

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!(
            "6.1",
            "chat lists the last messages oldest first",
            "messages:list returns the last `limit` messages in send order",
            chat_order
        ),
        case!(
            "6.2",
            "a token stream builds one message",
            "appendToken appends in order; finishStream ends the stream",
            stream
        ),
        case!(
            "6.3",
            "a heartbeat shows the user to the room",
            "presence:heartbeat upserts a row others see",
            presence_join
        ),
        case!("6.4", "leaving removes the user from the room", "presence:leave removes the row", presence_leave),
        case!(
            "6.5",
            "a silent user expires from the room",
            "presence rows older than the TTL are swept (by a commit)",
            presence_expiry
        ),
        case!(
            "6.6",
            "the latest cursor position wins",
            "cursors:move keeps one row per user with its last position",
            cursor_latest
        ),
        case!(
            "6.7",
            "a finished stream refuses more tokens",
            "appendToken after finishStream fails with StreamFinished",
            stream_finished
        ),
    ]
}

async fn chat_order(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(c) = connect_many(&ctx, &mut judge, 2).await else { return judge.finish() };
    let channel = ctx.fresh("chat");
    let q =
        c[0].subscribe("messages:list", obj([("channel", channel.as_str().into()), ("limit", Value::Float64(5.0))]));
    let sent = each_answered(&mut judge, "message", 0..8, |i| {
        c[1].mutation(
            "messages:send",
            obj([("channel", channel.as_str().into()), ("author", "w".into()), ("body", format!("  m{i}  ").into())]),
        )
    })
    .await;
    let last_five = |v: &View| rows(v, q).last().is_some_and(|r| text(field(r, "body")) == "m7");
    let view = if sent { wait_view(&mut judge, &c[0], "the last five", last_five).await } else { None };
    if let Some(view) = view {
        let bodies: Vec<String> = rows(&view, q).iter().map(|r| text(field(r, "body")).to_owned()).collect();
        judge.expect(bodies == ["m3", "m4", "m5", "m6", "m7"], || {
            format!("expected the last five, trimmed, oldest first; got {bodies:?}")
        });
    }
    quiesce().await;
    judge.verdict(replay::converged(&ctx.history()));
    judge.finish()
}

async fn stream(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(c) = connect_many(&ctx, &mut judge, 2).await else { return judge.finish() };
    let channel = ctx.fresh("stream");
    let q = c[0].subscribe("messages:list", obj([("channel", channel.as_str().into())]));
    let started = c[1]
        .mutation("messages:startStream", obj([("channel", channel.as_str().into()), ("author", "bot".into())]))
        .await;
    let Some(id) = started.ok().and_then(|o| o.value().cloned()) else {
        judge.fail("messages:startStream failed");
        return judge.finish();
    };
    let mut streamed = true;
    for token in ["Hel", "lo, ", "wor", "ld"] {
        let r = c[1].mutation("messages:appendToken", obj([("id", id.clone()), ("token", token.into())])).await;
        if !answered(&mut judge, || format!("appendToken {token:?}"), &r) {
            streamed = false;
            break;
        }
        judge.expect(matches!(r, Ok(MutationOutcome::Ok { .. })), || format!("appendToken {token:?} failed: {r:?}"));
    }
    if streamed {
        let _ = c[1].mutation("messages:finishStream", obj([("id", id.clone())])).await;
        wait_view(&mut judge, &c[0], "the finished message", |v| {
            rows(v, q).first().is_some_and(|r| {
                text(field(r, "body")) == "Hello, world" && field(r, "streaming") == Some(&Value::Boolean(false))
            })
        })
        .await;
    }
    quiesce().await;
    let h = ctx.history();
    judge.verdict(replay::snapshot_consistent(&h));
    judge.verdict(replay::serializable(&h));
    judge.finish()
}

async fn presence_join(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(c) = connect_many(&ctx, &mut judge, 3).await else { return judge.finish() };
    let room = ctx.fresh("room");
    let q = c[0].subscribe("presence:list", obj([("room", room.as_str().into())]));
    // Fresh users: the catalogue's rate limits are keyed per function and
    // user across the deployment, so fixed names would collide between runs
    // on a shared one. "u0" sorts before "u1" whatever the counter says.
    let users = [ctx.fresh("u0"), ctx.fresh("u1")];
    let mut joined = true;
    for (i, (client, user)) in c[1..].iter().zip(&users).enumerate() {
        let r = client
            .mutation(
                "presence:heartbeat",
                obj([
                    ("room", room.as_str().into()),
                    ("user", user.as_str().into()),
                    ("name", format!("User {i}").into()),
                ]),
            )
            .await;
        if !answered(&mut judge, || format!("the heartbeat of {user}"), &r) {
            joined = false;
            break;
        }
        judge.expect(matches!(r, Ok(MutationOutcome::Ok { .. })), || format!("heartbeat failed: {r:?}"));
    }
    let view = if joined { wait_view(&mut judge, &c[0], "both users", |v| rows(v, q).len() == 2).await } else { None };
    if let Some(view) = view {
        let listed: Vec<String> = rows(&view, q).iter().map(|r| text(field(r, "user")).to_owned()).collect();
        judge.expect(listed == users, || format!("expected {users:?} sorted by user, got {listed:?}"));
        let seen = rows(&view, q).iter().all(|r| matches!(field(r, "lastSeen"), Some(Value::Float64(ms)) if *ms > 0.0));
        judge.expect(seen, || "every row should carry lastSeen in milliseconds".to_owned());
    }
    judge.finish()
}

async fn presence_leave(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(c) = connect_many(&ctx, &mut judge, 2).await else { return judge.finish() };
    let room = ctx.fresh("room");
    let user = ctx.fresh("u");
    let q = c[0].subscribe("presence:list", obj([("room", room.as_str().into())]));
    let _ = c[1]
        .mutation(
            "presence:heartbeat",
            obj([("room", room.as_str().into()), ("user", user.as_str().into()), ("name", "U".into())]),
        )
        .await;
    wait_view(&mut judge, &c[0], "the user", |v| rows(v, q).len() == 1).await;
    let _ =
        c[1].mutation("presence:leave", obj([("room", room.as_str().into()), ("user", user.as_str().into())])).await;
    wait_view(&mut judge, &c[0], "the user to leave", |v| rows(v, q).is_empty() && v.results.contains_key(&q)).await;
    judge.finish()
}

async fn presence_expiry(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(c) = connect_many(&ctx, &mut judge, 2).await else { return judge.finish() };
    let room = ctx.fresh("room");
    let ghost = ctx.fresh("ghost");
    let q = c[0].subscribe("presence:list", obj([("room", room.as_str().into())]));
    let _ = c[1]
        .mutation(
            "presence:heartbeat",
            obj([("room", room.as_str().into()), ("user", ghost.as_str().into()), ("name", "G".into())]),
        )
        .await;
    wait_view(&mut judge, &c[0], "the user", |v| rows(v, q).len() == 1).await;
    // The catalogue's default TTL is 10 s; the sweep runs on the server's own clock.
    match c[0].wait_for(Duration::from_secs(25), |v| v.results.contains_key(&q) && rows(v, q).is_empty()).await {
        Ok(_) => {}
        Err(view) => judge.fail(format!("the silent user was still listed 25 s later: {:?}", rows(&view, q))),
    }
    judge.finish()
}

async fn cursor_latest(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(c) = connect_many(&ctx, &mut judge, 2).await else { return judge.finish() };
    let room = ctx.fresh("room");
    let user = ctx.fresh("u");
    let q = c[0].subscribe("cursors:list", obj([("room", room.as_str().into())]));
    let moved = each_answered(&mut judge, "move", 1..=5, |i| {
        c[1].mutation(
            "cursors:move",
            obj([
                ("room", room.as_str().into()),
                ("user", user.as_str().into()),
                ("x", Value::Float64(f64::from(i))),
                ("y", Value::Float64(0.5)),
            ]),
        )
    })
    .await;
    let last = |v: &View| rows(v, q).first().is_some_and(|r| field(r, "x") == Some(&Value::Float64(5.0)));
    let view = if moved { wait_view(&mut judge, &c[0], "the last position", last).await } else { None };
    if let Some(view) = view {
        judge.expect(rows(&view, q).len() == 1, || format!("one row per user expected, got {:?}", rows(&view, q)));
    }
    quiesce().await;
    judge.verdict(replay::converged(&ctx.history()));
    judge.finish()
}

async fn stream_finished(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(c) = connect_many(&ctx, &mut judge, 1).await else { return judge.finish() };
    let started = c[0]
        .mutation("messages:startStream", obj([("channel", ctx.fresh("s").into()), ("author", "bot".into())]))
        .await;
    let Some(id) = started.ok().and_then(|o| o.value().cloned()) else {
        judge.fail("messages:startStream failed");
        return judge.finish();
    };
    let _ = c[0].mutation("messages:finishStream", obj([("id", id.clone())])).await;
    let r = c[0].mutation("messages:appendToken", obj([("id", id), ("token", "late".into())])).await;
    let code = r.as_ref().ok().and_then(|o| o.error_code().map(str::to_owned));
    judge.expect(code.as_deref() == Some("StreamFinished"), || format!("expected StreamFinished, got {r:?}"));
    judge.finish()
}
