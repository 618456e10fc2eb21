//! Category 11, Convex app patterns: scheduled functions (11.6 and 11.7).
//! `notifications:sendLater` schedules `notifications:send` `delayMs` after
//! it commits (`ctx.scheduler.runAfter`): the send runs exactly once, not
//! before its time, and only if the scheduling mutation commits, so a
//! refused attempt, or one that conflicted and ran again, schedules nothing
//! more.
//!
//! Each case schedules into fresh inboxes with titles of its own and judges
//! every `notifications:unread` result pushed to a watcher, against the
//! commit ts each sendLater's `MutationResponse` carried and the ts of the
//! transition that first showed its notification. No replay checker runs
//! here: a scheduled function's commit is not a mutation any client invoked,
//! and the oracle runs none. A backend without `notifications:sendLater`
//! gets Unimplemented. Presence expiry, a scheduled function on the
//! reference server, is judged by case 6.5.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use syncspec_protocol::client::{Client, ClientError, MutationOutcome, View};
use syncspec_protocol::history::{EventKind, History, RecordedModification};
use syncspec_protocol::json;
use syncspec_protocol::value::Value;
use syncspec_protocol::wire::{QueryId, Ts};

use super::case;
use crate::checkers::{field, invariants, order};
use crate::suite::{
    answered, answers, connect_many, missing_function, obj, text, transitions, value_in, wait_view, Case, CaseResult,
    Ctx, Judge,
};

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!(
            "11.6",
            "notifications scheduled from several clients arrive once each, on time",
            "a scheduled function runs exactly once and not before its time: each title sendLater scheduled appears once, in no result before the transition at or past its sendLater's commit ts plus delayMs (less 5 ms of slack), and all appear within the wait",
            on_time_once
        ),
        case!(
            "11.7",
            "only a committed sendLater schedules, under refusals and conflicts",
            "a refused sendLater (InboxFull at 100 unread) schedules nothing, and sendLaters racing sends to the same inbox (conflicts, on a backend that validates reads) leave exactly one notification per sendLater that succeeded and none for one that failed",
            only_committed_schedules
        ),
    ]
}

/// The mutation under test, and what it schedules.
const LATER: &str = "notifications:sendLater";
const SEND: &str = "notifications:send";
/// 11.6's clients, and the sendLaters each makes: delays 200 ms to 1400 ms.
const SCHEDULERS: usize = 3;
const PER_SCHEDULER: usize = 3;
const FIRST_DELAY_MS: f64 = 200.0;
const DELAY_STEP_MS: f64 = 150.0;
/// How much earlier than its sendLater's commit ts plus its delay a
/// scheduled send may first show, in ns. Convex counts `runAfter`'s delay
/// from the start of the scheduling transaction, which can be a few ms
/// before the ts it commits at; a send run at once (the `scheduled-early`
/// fault) shows at least `FIRST_DELAY_MS` early, far beyond this.
const EARLY_SLACK: Ts = 5_000_000;
/// How long a case keeps watching after its notifications arrived, so a
/// second run of a scheduled function shows.
const AFTERWARDS: Duration = Duration::from_millis(500);
/// The unread notifications at which sendLater refuses (the catalogue's).
const INBOX_LIMIT: usize = 100;
/// 11.7's clients filling an inbox to the limit.
const FILLERS: usize = 4;
/// 11.7's race: inboxes, and per inbox the clients sending at once and the
/// sends each makes, and the clients scheduling and the sendLaters each
/// makes (84 per inbox, under the limit).
const INBOXES: usize = 2;
const SENDERS: usize = 6;
const SENDS: usize = 12;
const LATERS: usize = 3;
const PER_LATER: usize = 4;
/// The delay of the refused and the racing sendLaters.
const SHORT_DELAY_MS: f64 = 50.0;

/// One `notifications:unread` result pushed to a watcher.
struct Push {
    event: usize,
    ts: Ts,
    titles: Vec<String>,
}

/// Every result of `notifications:unread` query `q` pushed to `client`.
fn inbox_pushes(judge: &mut Judge, history: &History, client: &Client, q: QueryId) -> Vec<Push> {
    let mut pushes = Vec::new();
    let mut failed = false;
    for (event, end, modifications) in transitions(history, client) {
        for m in modifications {
            match m {
                RecordedModification::Updated { query_id, value } if *query_id == q => {
                    let result = json::decode(value).unwrap_or(Value::Null);
                    pushes.push(Push { event, ts: end.ts, titles: titles(&result) });
                }
                RecordedModification::Failed { query_id, message, .. } if *query_id == q && !failed => {
                    failed = true;
                    judge.fail_at(format!("notifications:unread failed at ts {}: {message}", end.ts), vec![event]);
                }
                _ => {}
            }
        }
    }
    pushes
}

/// The titles in a `{count, items}` result.
fn titles(result: &Value) -> Vec<String> {
    match field(result, "items") {
        Some(Value::Array(items)) => items.iter().map(|i| text(field(i, "title")).to_owned()).collect(),
        _ => Vec::new(),
    }
}

/// The titles an inbox query holds in `view`.
fn held(view: &View, q: QueryId) -> Vec<String> {
    value_in(view, q).map(titles).unwrap_or_default()
}

/// How often `title` shows in one push.
fn count(push: &Push, title: &str) -> usize {
    push.titles.iter().filter(|t| *t == title).count()
}

/// Judges `title` over every push: never twice in one result (`why` says
/// what that means), and shown by the last push exactly when `expected`.
/// Returns the first push showing it.
fn judge_title<'p>(judge: &mut Judge, pushes: &'p [Push], title: &str, expected: bool, why: &str) -> Option<&'p Push> {
    if let Some(p) = pushes.iter().find(|p| count(p, title) > 1) {
        judge.fail_at(
            format!("the push at ts {} shows {title:?} {} times: {why}", p.ts, count(p, title)),
            vec![p.event],
        );
    }
    let first = pushes.iter().find(|p| count(p, title) > 0);
    if !expected {
        if let Some(p) = first {
            judge.fail_at(format!("the push at ts {} shows {title:?}: {why}", p.ts), vec![p.event]);
        }
    } else if let Some(last) = pushes.last().filter(|p| count(p, title) != 1) {
        judge.fail_at(
            format!(
                "{title:?} should be in the inbox once at the end; the last push (ts {}) holds it {} times",
                last.ts,
                count(last, title)
            ),
            vec![last.event],
        );
    } else if pushes.is_empty() {
        judge.fail(format!("{title:?} should be in the inbox once at the end; no result was ever pushed"));
    }
    first
}

/// Schedules a send of `title` to `user` after `delay_ms`: the outcome, or
/// `None` with the reason recorded (no answer; Unimplemented when the
/// backend has no sendLater).
async fn send_later(
    judge: &mut Judge,
    client: &Client,
    user: &str,
    title: &str,
    delay_ms: f64,
) -> Option<MutationOutcome> {
    let args = obj([("user", user.into()), ("title", title.into()), ("delayMs", Value::Float64(delay_ms))]);
    let r = client.mutation(LATER, args).await;
    judge_later(judge, title, r)
}

/// Reads one sendLater's answer as [`send_later`] does.
fn judge_later(judge: &mut Judge, title: &str, r: Result<MutationOutcome, ClientError>) -> Option<MutationOutcome> {
    if !answered(judge, || format!("{LATER} of {title:?}"), &r) {
        return None;
    }
    match r {
        Ok(MutationOutcome::Failed { message, data }) if missing_function(&message, data.as_ref()) => {
            judge.unimplemented(format!("the backend has no {LATER} ({message:?})"));
            None
        }
        r => r.ok(),
    }
}

/// One sendLater that committed: what it scheduled, and when.
struct Scheduled {
    title: String,
    delay_ms: f64,
    ts: Ts,
}

async fn on_time_once(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(c) = connect_many(&ctx, &mut judge, 1 + SCHEDULERS).await else { return judge.finish() };
    let watcher = &c[0];
    let user = ctx.fresh("inbox");
    let q = watcher.subscribe("notifications:unread", obj([("user", user.as_str().into())]));
    if wait_view(&mut judge, watcher, "the empty inbox", |v| value_in(v, q).is_some()).await.is_none() {
        return judge.finish();
    }
    // Delays interleave across clients, so each client's come out of order too.
    let plan = |k: usize, i: usize| {
        let n = i * SCHEDULERS + k;
        let delay = FIRST_DELAY_MS + DELAY_STEP_MS * ((n * 5) % (SCHEDULERS * PER_SCHEDULER)) as f64;
        (format!("at-{delay}ms-from-{k}"), delay)
    };
    let tasks: Vec<_> = c[1..]
        .iter()
        .enumerate()
        .map(|(k, client)| {
            let (client, user) = (client.clone(), user.clone());
            tokio::spawn(async move {
                answers(0..PER_SCHEDULER, |i| {
                    let (title, delay) = plan(k, i);
                    let args = obj([
                        ("user", user.as_str().into()),
                        ("title", title.into()),
                        ("delayMs", Value::Float64(delay)),
                    ]);
                    let client = client.clone();
                    async move { client.mutation(LATER, args).await }
                })
                .await
            })
        })
        .collect();
    let mut scheduled = Vec::new();
    let mut ids = BTreeSet::new();
    for (k, task) in tasks.into_iter().enumerate() {
        let Ok((outcomes, stopped)) = task.await else {
            judge.fail(format!("scheduling client {k}'s task panicked"));
            continue;
        };
        for (i, outcome) in outcomes.into_iter().enumerate() {
            let (title, delay_ms) = plan(k, i);
            match judge_later(&mut judge, &title, Ok(outcome)) {
                Some(MutationOutcome::Ok { value: Value::String(id), ts }) => {
                    judge.expect(ids.insert(id.clone()), || format!("two sendLaters returned the same id {id:?}"));
                    scheduled.push(Scheduled { title, delay_ms, ts });
                }
                Some(other) => {
                    judge.fail(format!("{LATER} of {title:?} should return the scheduled function's id, got {other:?}"))
                }
                None => {}
            }
        }
        if !answered(&mut judge, || format!("a {LATER} of client {k}"), &stopped) {
            break;
        }
    }
    if scheduled.len() < SCHEDULERS * PER_SCHEDULER {
        return judge.finish();
    }
    let longest = Duration::from_millis(scheduled.iter().map(|s| s.delay_ms as u64).max().unwrap_or(0));
    let all_in = |v: &View| {
        let titles = held(v, q);
        scheduled.iter().all(|s| titles.contains(&s.title))
    };
    let deadline = longest + ctx.patience.current();
    if let Err(view) = watcher.wait_for(deadline, all_in).await {
        judge.fail(format!(
            "waited {deadline:?} (the longest delay and the run's patience) for every scheduled notification; the inbox holds {:?}",
            held(&view, q)
        ));
    }
    tokio::time::sleep(AFTERWARDS).await;
    let h = ctx.history();
    let pushes = inbox_pushes(&mut judge, &h, watcher, q);
    for s in &scheduled {
        let why = "the scheduled send ran more than once";
        let Some(first) = judge_title(&mut judge, &pushes, &s.title, true, why) else { continue };
        let due = s.ts + (s.delay_ms * 1e6) as Ts;
        if first.ts + EARLY_SLACK < due {
            judge.fail_at(
                format!(
                    "{:?} first shows in the push at ts {}, {:.1} ms after its sendLater committed (ts {}): {:.1} ms before its delay of {} ms had passed, more than the {} ms of slack",
                    s.title,
                    first.ts,
                    first.ts.saturating_sub(s.ts) as f64 / 1e6,
                    s.ts,
                    (due - first.ts) as f64 / 1e6,
                    s.delay_ms,
                    EARLY_SLACK / 1_000_000
                ),
                vec![first.event],
            );
        }
    }
    let expected: BTreeSet<&str> = scheduled.iter().map(|s| s.title.as_str()).collect();
    if let Some(p) = pushes.iter().find(|p| p.titles.iter().any(|t| !expected.contains(t.as_str()))) {
        judge.fail_at(
            format!("the push at ts {} holds notifications nobody scheduled: {:?}", p.ts, p.titles),
            vec![p.event],
        );
    }
    judge.verdict(invariants::unread_counts(&h));
    judge.verdict(order::version_chain(&h));
    judge.finish()
}

/// How many of the sendLaters to `user` that committed saw a send to the
/// same inbox, sent after them, commit before them (so the inbox changed
/// under them while they were in flight: a conflict on a backend that
/// validates reads), and how many committed. The wire shows no retries;
/// this is what a history can show of them, and it misses the conflicts
/// that scheduled sends, which no client invoked, cause.
fn overtaken(history: &History, user: &str) -> (usize, usize) {
    let mut invoked: BTreeMap<(u32, u32), (usize, String)> = BTreeMap::new();
    let (mut laters, mut sends) = (Vec::new(), Vec::new());
    for (i, e) in history.events.iter().enumerate() {
        match &e.kind {
            EventKind::Invoke { request_id, function, args, replay: false } => {
                let to =
                    json::decode(args).ok().and_then(|a| field(&a, "user").and_then(Value::as_str).map(str::to_owned));
                if to.as_deref() == Some(user) {
                    invoked.insert((e.client, *request_id), (i, function.clone()));
                }
            }
            EventKind::Ok { request_id, ts, .. } => match invoked.get(&(e.client, *request_id)) {
                Some((at, f)) if f == LATER => laters.push((*at, *ts)),
                Some((at, f)) if f == SEND => sends.push((*at, *ts)),
                _ => {}
            },
            _ => {}
        }
    }
    let raced =
        laters.iter().filter(|(at, ts)| sends.iter().any(|(sent, committed)| sent > at && committed < ts)).count();
    (raced, laters.len())
}

async fn only_committed_schedules(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let per_inbox = 1 + SENDERS + LATERS;
    let Some(c) = connect_many(&ctx, &mut judge, 1 + INBOXES * per_inbox).await else { return judge.finish() };

    // A full inbox refuses, and the refusal schedules nothing.
    let (watcher, fillers) = (&c[0], &c[1..=FILLERS]);
    let full = ctx.fresh("full-inbox");
    let q = watcher.subscribe("notifications:unread", obj([("user", full.as_str().into())]));
    let fill: Vec<_> = fillers
        .iter()
        .enumerate()
        .map(|(k, client)| {
            let (client, full) = (client.clone(), full.clone());
            tokio::spawn(async move {
                answers((k..INBOX_LIMIT).step_by(FILLERS), |i| {
                    client.mutation(SEND, obj([("user", full.as_str().into()), ("title", format!("fill-{i}").into())]))
                })
                .await
            })
        })
        .collect();
    for task in fill {
        let Ok((outcomes, stopped)) = task.await else {
            judge.fail("a filling client's task panicked");
            return judge.finish();
        };
        if !answered(&mut judge, || format!("a {SEND} filling the inbox"), &stopped) {
            return judge.finish();
        }
        if let Some(bad) = outcomes.iter().find(|o| !matches!(o, MutationOutcome::Ok { .. })) {
            judge.fail(format!("{SEND} filling the inbox failed: {bad:?}"));
            return judge.finish();
        }
    }
    let Some(refused) = send_later(&mut judge, &c[1], &full, "refused", SHORT_DELAY_MS).await else {
        return judge.finish();
    };
    judge.expect(refused.error_code() == Some("InboxFull"), || {
        format!("{LATER} to an inbox with {INBOX_LIMIT} unread should fail with InboxFull, got {refused:?}")
    });
    // Past the delay, a send is a fence: once the watcher sees it, it has
    // seen every commit before it, the refused schedule's due time included.
    tokio::time::sleep(Duration::from_millis(SHORT_DELAY_MS as u64) + AFTERWARDS).await;
    let fence = c[1].mutation(SEND, obj([("user", full.as_str().into()), ("title", "fence".into())])).await;
    if !answered(&mut judge, || "the fence".to_owned(), &fence) {
        return judge.finish();
    }
    wait_view(&mut judge, watcher, "the fence", |v| held(v, q).iter().any(|t| t == "fence")).await;
    let h = ctx.history();
    let pushes = inbox_pushes(&mut judge, &h, watcher, q);
    let refused_ran = refused.value().is_some();
    judge_title(&mut judge, &pushes, "refused", refused_ran, "a refused sendLater's schedule ran");

    // sendLaters racing sends to the same inbox.
    let inboxes: Vec<String> = (0..INBOXES).map(|_| ctx.fresh("raced-inbox")).collect();
    let mut watchers = Vec::new();
    let mut tasks = Vec::new();
    for (n, inbox) in inboxes.iter().enumerate() {
        let group = &c[1 + n * per_inbox..1 + (n + 1) * per_inbox];
        watchers.push((
            group[0].clone(),
            group[0].subscribe("notifications:unread", obj([("user", inbox.as_str().into())])),
        ));
        for (k, client) in group[1..].iter().enumerate() {
            let (client, inbox) = (client.clone(), inbox.clone());
            let (function, count, delay) =
                if k < SENDERS { (SEND, SENDS, None) } else { (LATER, PER_LATER, Some(SHORT_DELAY_MS)) };
            tasks.push(tokio::spawn(async move {
                let title = |i: usize| format!("{}-{n}-{k}-{i}", if delay.is_some() { "later" } else { "now" });
                let (outcomes, stopped) = answers(0..count, |i| {
                    let mut args = obj([("user", inbox.as_str().into()), ("title", title(i).into())]);
                    if let (Some(ms), Value::Object(fields)) = (delay, &mut args) {
                        fields.insert("delayMs".into(), Value::Float64(ms));
                    }
                    client.mutation(function, args)
                })
                .await;
                let titled: Vec<(String, MutationOutcome)> =
                    outcomes.into_iter().enumerate().map(|(i, o)| (title(i), o)).collect();
                (n, function, titled, stopped)
            }));
        }
    }
    // Per inbox, the titles that must arrive once and those that must not.
    let mut owed: Vec<Vec<String>> = vec![Vec::new(); INBOXES];
    let mut barred: Vec<Vec<String>> = vec![Vec::new(); INBOXES];
    let mut all_answered = true;
    for task in tasks {
        let Ok((n, function, titled, stopped)) = task.await else {
            judge.fail("a racing client's task panicked");
            all_answered = false;
            continue;
        };
        for (title, outcome) in titled {
            if function == LATER && judge_later(&mut judge, &title, Ok(outcome.clone())).is_none() {
                all_answered = false;
                continue;
            }
            match outcome {
                MutationOutcome::Ok { .. } => owed[n].push(title),
                failed => {
                    // The inbox never nears the limit, so nothing refuses;
                    // a failed sendLater must still schedule nothing.
                    judge.fail(format!(
                        "{function} of {title:?} to an inbox under {INBOX_LIMIT} unread failed: {failed:?}"
                    ));
                    if function == LATER {
                        barred[n].push(title);
                    }
                }
            }
        }
        all_answered &= answered(&mut judge, || format!("a racing {function}"), &stopped);
    }
    if !all_answered {
        return judge.finish();
    }
    for (n, (client, q)) in watchers.iter().enumerate() {
        let deadline = Duration::from_millis(SHORT_DELAY_MS as u64) + ctx.patience.current();
        if let Err(view) = client.wait_for(deadline, |v| owed[n].iter().all(|t| held(v, *q).contains(t))).await {
            let missing: Vec<&String> = owed[n].iter().filter(|t| !held(&view, *q).contains(t)).collect();
            judge.fail(format!("waited {deadline:?} for inbox {n}'s notifications; {missing:?} never arrived"));
        }
    }
    tokio::time::sleep(AFTERWARDS).await;
    let h = ctx.history();
    for (n, (client, q)) in watchers.iter().enumerate() {
        let (raced, laters) = overtaken(&h, &inboxes[n]);
        let why = format!(
            "a sendLater's schedule committed more than once (in inbox {n}, {raced} of {laters} committed sendLaters saw a send to the same inbox, sent after them, commit before them: a conflict on a backend that validates reads; the wire shows no retries)"
        );
        let pushes = inbox_pushes(&mut judge, &h, client, *q);
        for title in &owed[n] {
            judge_title(&mut judge, &pushes, title, true, &why);
        }
        for title in &barred[n] {
            judge_title(&mut judge, &pushes, title, false, "a failed sendLater's schedule ran");
        }
        let known: BTreeSet<&String> = owed[n].iter().chain(&barred[n]).collect();
        if let Some(p) = pushes.iter().find(|p| p.titles.iter().any(|t| !known.contains(t))) {
            judge.fail_at(
                format!("the push at ts {} to inbox {n} holds notifications nobody sent: {:?}", p.ts, p.titles),
                vec![p.event],
            );
        }
    }
    judge.verdict(invariants::unread_counts(&h));
    judge.finish()
}
