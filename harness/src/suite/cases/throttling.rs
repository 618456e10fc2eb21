//! 7. Throttling at 20 updates per second per user.

use std::time::{Duration, Instant};

use syncspec_protocol::client::MutationOutcome;
use syncspec_protocol::value::Value;

use super::case;
use crate::checkers::invariants;
use crate::suite::{answered, connect, connect_many, obj, Case, CaseResult, Ctx, Judge};

const LIMITED: &[&str] = &["cursors:move", "presence:heartbeat"];

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!(
            "7.1",
            "60 simultaneous cursor moves: about 20 accepted",
            "over 20 per second per user is refused with RateLimited",
            burst
        ),
        case!(
            "7.2",
            "cursor moves paced at 20 per second are all accepted",
            "the limit admits the Convex guidance's 20 updates per second",
            paced
        ),
        case!("7.3", "RateLimited says when to retry", "a refusal carries retryAfterMs", retry_after),
        case!(
            "7.4",
            "heartbeats are limited like cursor moves",
            "presence:heartbeat is limited to 20 per second per user",
            heartbeats
        ),
        case!("7.5", "each user has a limit of their own", "limits are per user, not per room or connection", per_user),
    ]
}

fn cursor(room: &str, user: &str, x: f64) -> Value {
    obj([("room", room.into()), ("user", user.into()), ("x", Value::Float64(x)), ("y", Value::Float64(0.0))])
}

async fn burst(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(client) = connect(&ctx, &mut judge).await else { return judge.finish() };
    let (room, user) = (ctx.fresh("room"), ctx.fresh("user"));
    let calls: Vec<_> = (0..60).map(|i| client.mutation("cursors:move", cursor(&room, &user, f64::from(i)))).collect();
    let results = futures_util::future::join_all(calls).await;
    let accepted = results.iter().filter(|r| matches!(r, Ok(MutationOutcome::Ok { .. }))).count();
    let limited =
        results.iter().filter(|r| r.as_ref().ok().and_then(|o| o.error_code()) == Some("RateLimited")).count();
    judge.expect((18..=22).contains(&accepted), || format!("{accepted} of 60 accepted; about 20 expected"));
    judge.expect(accepted + limited == 60, || {
        format!("{accepted} accepted and {limited} RateLimited: the rest failed otherwise")
    });
    judge.verdict(invariants::rate_limit(&ctx.history(), LIMITED, 20, 20));
    judge.finish()
}

async fn paced(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(client) = connect(&ctx, &mut judge).await else { return judge.finish() };
    let (room, user) = (ctx.fresh("room"), ctx.fresh("user"));
    let start = Instant::now();
    let mut refused = 0;
    for i in 0..40u32 {
        // An open schedule: the i-th move is due at i × 50 ms.
        let due = start + Duration::from_millis(50) * i;
        tokio::time::sleep_until(due.into()).await;
        let r = client.mutation("cursors:move", cursor(&room, &user, f64::from(i))).await;
        if !answered(&mut judge, || format!("move {i}"), &r) {
            break;
        }
        if !matches!(r, Ok(MutationOutcome::Ok { .. })) {
            refused += 1;
        }
    }
    judge.expect(refused == 0, || format!("{refused} of 40 moves paced at 20 per second were refused"));
    judge.verdict(invariants::rate_limit(&ctx.history(), LIMITED, 20, 20));
    judge.finish()
}

async fn retry_after(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(client) = connect(&ctx, &mut judge).await else { return judge.finish() };
    let (room, user) = (ctx.fresh("room"), ctx.fresh("user"));
    let calls: Vec<_> = (0..30).map(|i| client.mutation("cursors:move", cursor(&room, &user, f64::from(i)))).collect();
    let results = futures_util::future::join_all(calls).await;
    let refusal = results.iter().find_map(|r| match r {
        Ok(MutationOutcome::Failed { data: Some(Value::Object(o)), .. })
            if o.get("code") == Some(&Value::from("RateLimited")) =>
        {
            Some(o.clone())
        }
        _ => None,
    });
    match refusal {
        None => judge.fail("30 simultaneous moves got no RateLimited refusal"),
        Some(data) => {
            let ok = matches!(data.get("retryAfterMs"), Some(Value::Float64(ms)) if *ms > 0.0 && *ms <= 1000.0);
            judge.expect(ok, || {
                format!(
                    "retryAfterMs should be a number of milliseconds up to a second, got {:?}",
                    data.get("retryAfterMs")
                )
            });
        }
    }
    judge.finish()
}

async fn heartbeats(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(client) = connect(&ctx, &mut judge).await else { return judge.finish() };
    let (room, user) = (ctx.fresh("room"), ctx.fresh("user"));
    let calls: Vec<_> = (0..45)
        .map(|_| {
            client.mutation(
                "presence:heartbeat",
                obj([("room", room.as_str().into()), ("user", user.as_str().into()), ("name", "N".into())]),
            )
        })
        .collect();
    let results = futures_util::future::join_all(calls).await;
    let accepted = results.iter().filter(|r| matches!(r, Ok(MutationOutcome::Ok { .. }))).count();
    judge.expect((18..=22).contains(&accepted), || format!("{accepted} of 45 heartbeats accepted; about 20 expected"));
    judge.verdict(invariants::rate_limit(&ctx.history(), LIMITED, 20, 20));
    judge.finish()
}

async fn per_user(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(c) = connect_many(&ctx, &mut judge, 2).await else { return judge.finish() };
    let room = ctx.fresh("room");
    let users = [ctx.fresh("a"), ctx.fresh("b")];
    let calls: Vec<_> = (0..40)
        .map(|i| {
            let user = &users[i % 2];
            c[i % 2].mutation("cursors:move", cursor(&room, user, i as f64))
        })
        .collect();
    let results = futures_util::future::join_all(calls).await;
    let accepted = results.iter().filter(|r| matches!(r, Ok(MutationOutcome::Ok { .. }))).count();
    judge.expect(accepted >= 38, || format!("two users with 20 moves each: {accepted} of 40 accepted"));
    judge.verdict(invariants::rate_limit(&ctx.history(), LIMITED, 20, 20));
    judge.finish()
}
