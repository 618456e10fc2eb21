//! 7. Throttling at 20 updates per second per user.
//!
//! The limit is a burst of 20, then a token every 50 ms. A burst of
//! simultaneous calls is judged by when the backend committed the accepted
//! ones, since a backend that runs a session's calls one at a time earns
//! tokens while it runs them.

use std::time::{Duration, Instant};

use syncspec_protocol::client::{ClientError, MutationOutcome};
use syncspec_protocol::value::Value;
use syncspec_protocol::wire::Ts;

use super::case;
use crate::checkers::invariants;
use crate::suite::{answered, connect, connect_many, obj, Case, CaseResult, Ctx, Judge};

const LIMITED: &[&str] = &["cursors:move", "presence:heartbeat"];

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!(
            "7.1",
            "60 simultaneous cursor moves: a burst of 20, then 20 a second",
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
    let sent = Instant::now();
    let calls: Vec<_> = (0..60).map(|i| client.mutation("cursors:move", cursor(&room, &user, f64::from(i)))).collect();
    let results = futures_util::future::join_all(calls).await;
    let waited = sent.elapsed();
    let accepted = results.iter().filter(|r| matches!(r, Ok(MutationOutcome::Ok { .. }))).count();
    let limited =
        results.iter().filter(|r| r.as_ref().ok().and_then(|o| o.error_code()) == Some("RateLimited")).count();
    for problem in Burst::of(&results, waited).problems() {
        judge.fail(format!("60 cursor moves: {problem}"));
    }
    judge.expect(accepted + limited == 60, || {
        format!("{accepted} accepted and {limited} RateLimited: the rest failed otherwise")
    });
    judge.verdict(invariants::rate_limit(&ctx.history(), LIMITED, 20, 20));
    judge.finish()
}

/// The bucket the limited functions share: a burst of 20, then a token every 50 ms.
const BURST: usize = 20;
/// How often the bucket gains a token.
const REFILL: Duration = Duration::from_millis(50);
/// How many of a burst's first calls must be accepted: the burst, less two
/// for a backend whose clock moved while it ran them.
const GRANTED: usize = 18;
/// Accepted calls closer together than this cannot all be a burst's
/// answers: a backend that refused none of them has no limit.
const REFUSAL_SPAN: Duration = Duration::from_millis(700);

/// A burst of simultaneous calls to a limited function, as the client saw it.
#[derive(Debug)]
struct Burst {
    /// Per call, in the order sent: an accepted call's commit ts, or `None`.
    commits: Vec<Option<Ts>>,
    /// From sending the first call to the last answer.
    waited: Duration,
}

impl Burst {
    fn of(results: &[Result<MutationOutcome, ClientError>], waited: Duration) -> Burst {
        let commits = results
            .iter()
            .map(|r| match r {
                Ok(MutationOutcome::Ok { ts, .. }) => Some(*ts),
                _ => None,
            })
            .collect();
        Burst { commits, waited }
    }

    /// How the burst breaks the limit, judged by the accepted calls' commit
    /// timestamps: a backend running a session's calls one at a time with
    /// real latency refills the bucket while the burst runs, and may
    /// accept a token per 50 ms the accepted calls span. That span is taken
    /// as at most what the client waited, so a backend stretching its
    /// timestamps gains nothing.
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let n = self.commits.len();
        if let Some(refused) = self.commits.iter().take(GRANTED).position(Option::is_none) {
            problems.push(format!(
                "call {} of {n} was not accepted, with only {refused} accepted before it: the burst of {BURST} was not granted",
                refused + 1
            ));
        }
        let ts: Vec<Ts> = self.commits.iter().flatten().copied().collect();
        let (Some(first), Some(last)) = (ts.iter().min(), ts.iter().max()) else { return problems };
        let span = Duration::from_nanos(last - first).min(self.waited);
        let allowed = BURST + span.as_nanos().div_ceil(REFILL.as_nanos()) as usize + 1;
        if ts.len() > allowed {
            problems.push(format!(
                "{} of {n} accepted within {span:?} of commit time (the client waited {:?}); the limit allows {allowed}",
                ts.len(),
                self.waited
            ));
        } else if ts.len() == n && span < REFUSAL_SPAN {
            problems.push(format!("all {n} accepted within {span:?}, none refused: no limit"));
        }
        problems
    }
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
    let sent = Instant::now();
    let calls: Vec<_> = (0..45)
        .map(|_| {
            client.mutation(
                "presence:heartbeat",
                obj([("room", room.as_str().into()), ("user", user.as_str().into()), ("name", "N".into())]),
            )
        })
        .collect();
    let results = futures_util::future::join_all(calls).await;
    for problem in Burst::of(&results, sent.elapsed()).problems() {
        judge.fail(format!("45 heartbeats: {problem}"));
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Ts = 1_000_000;
    const T0: Ts = 1_760_000_000_000 * MS;

    /// A burst whose accepted calls committed `gap_ms` apart, in the order sent.
    fn burst(accepted: &[bool], gap_ms: Ts, waited: Duration) -> Burst {
        let mut at = T0;
        let commits = accepted
            .iter()
            .map(|&ok| {
                at += gap_ms * MS;
                ok.then_some(at)
            })
            .collect();
        Burst { commits, waited }
    }

    fn first(accepted: usize, of: usize) -> Vec<bool> {
        (0..of).map(|i| i < accepted).collect()
    }

    #[test]
    fn the_burst_at_once_passes_and_more_fails() {
        let quick = Duration::from_millis(30);
        assert_eq!(burst(&first(20, 60), 0, quick).problems(), Vec::<String>::new());
        // Commits in one instant: one over the burst for clock granularity.
        assert!(burst(&first(21, 60), 0, quick).problems().is_empty());
        assert_eq!(burst(&first(22, 60), 0, quick).problems().len(), 1);
        // The `no-rate-limit` fault: all accepted at once.
        let none = burst(&first(60, 60), 0, quick).problems();
        assert!(none.len() == 1 && none[0].contains("the limit allows 21"), "{none:?}");
    }

    #[test]
    fn a_serial_backend_earns_a_token_per_50_ms_it_spends() {
        // A call every 10 ms: 27 accepted span 260 ms, which earns 6 tokens.
        let slow = Duration::from_millis(700);
        assert_eq!(burst(&first(27, 60), 10, slow).problems(), Vec::<String>::new());
        assert_eq!(burst(&first(28, 60), 10, slow).problems().len(), 1);
        // All 60 at 40 ms each span 2.36 s and earn 48: a limit cannot tell.
        assert!(burst(&first(60, 60), 40, Duration::from_secs(3)).problems().is_empty());
        // All 45 at 15 ms each span 660 ms and earn 14.
        assert_eq!(burst(&first(45, 45), 15, Duration::from_secs(1)).problems().len(), 1);
        // A smaller burst within the bound, but all accepted that close together.
        let no_refusal = burst(&first(30, 30), 20, Duration::from_secs(1)).problems();
        assert!(no_refusal.len() == 1 && no_refusal[0].contains("none refused"), "{no_refusal:?}");
    }

    #[test]
    fn timestamps_stretched_past_the_wait_gain_nothing() {
        // Commits claimed a second apart, all answered within 100 ms.
        let lying = burst(&first(60, 60), 1000, Duration::from_millis(100)).problems();
        assert!(lying.len() == 1 && lying[0].contains("the limit allows 23"), "{lying:?}");
    }

    #[test]
    fn refusals_within_the_burst_fail() {
        let quick = Duration::from_millis(30);
        let mut early = first(20, 60);
        early[5] = false;
        let problems = burst(&early, 0, quick).problems();
        assert!(problems.len() == 1 && problems[0].contains("call 6 of 60"), "{problems:?}");
        // A refusal past the first 18 passes.
        let mut late = first(20, 60);
        late[18] = false;
        assert!(burst(&late, 0, quick).problems().is_empty());
        assert_eq!(burst(&first(17, 60), 0, quick).problems().len(), 1);
    }
}
