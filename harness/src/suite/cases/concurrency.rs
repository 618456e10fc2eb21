//! 5. Consistency under concurrency: counters, a bank, documents with
//! version conflicts, notifications. Judged by replay in claimed commit
//! order and by invariants that need no timestamps.

use std::time::{Duration, Instant};

use syncspec_protocol::client::{MutationOutcome, QueryResult};
use syncspec_protocol::value::Value;

use super::case;
use crate::checkers::{invariants, order, replay};
use crate::suite::{
    answered, answers, connect_many, each_answered, obj, quiesce, wait_view, Case, CaseResult, Ctx, Judge,
};

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!(
            "5.1",
            "20 clients x 50 increments on one counter",
            "no lost update: OCC serializes read-modify-write",
            hot_counter
        ),
        case!(
            "5.2",
            "a bank of 10 accounts under 20 transferring clients for 10 s (at most 250 transfers each)",
            "every pushed total equals the opening total; transfers serialize",
            bank
        ),
        case!(
            "5.3",
            "concurrent documents:update races on one version",
            "exactly one update wins each version; the rest conflict",
            document_race
        ),
        case!(
            "5.4",
            "notifications sent while being marked read",
            "count == items.length in every pushed result",
            notifications
        ),
        case!(
            "5.5",
            "increments on many counters from many clients",
            "every client's view is one snapshot of all its counters",
            many_counters
        ),
        case!(
            "5.6",
            "a bank of 4 accounts under 5 transferring clients for 2 s",
            "a transfer's debit and credit are seen together or not at all",
            small_bank
        ),
        case!(
            "5.7",
            "withdrawals from the two accounts of a joint pair race, 50 times",
            "serializable, not snapshot isolation: no write skew overdraws a pair",
            write_skew
        ),
    ]
}

/// Pairs of clients racing joint withdrawals, and races each pair runs.
const SKEW_PAIRS: usize = 10;
const SKEW_RACES: usize = 5;

/// Each race opens a bank of two accounts holding 100 each, and two clients
/// withdraw 150 at once, each from its own account, each allowed while the
/// pair's sum covers it. Run one after the other, the second is refused;
/// a backend that validates only write-write conflicts (snapshot isolation)
/// lets both through when they overlap, and the pair holds -100.
async fn write_skew(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(clients) = connect_many(&ctx, &mut judge, 2 * SKEW_PAIRS).await else { return judge.finish() };
    let banks: Vec<Vec<String>> =
        (0..SKEW_PAIRS).map(|_| (0..SKEW_RACES).map(|_| ctx.fresh("joint")).collect()).collect();
    for bank in banks.iter().flatten() {
        let open =
            obj([("bank", bank.as_str().into()), ("accounts", Value::Float64(2.0)), ("balance", Value::Int64(100))]);
        let opened = clients[0].mutation("accounts:open", open).await;
        if !answered(&mut judge, || format!("accounts:open {bank}"), &opened) {
            return judge.finish();
        }
        judge.expect(matches!(opened, Ok(MutationOutcome::Ok { .. })), || {
            format!("accounts:open {bank} failed: {opened:?}")
        });
    }
    let withdraw = |bank: &str, account: f64| {
        obj([
            ("bank", bank.into()),
            ("account", Value::Float64(account)),
            ("partner", Value::Float64(1.0 - account)),
            ("amount", Value::Int64(150)),
        ])
    };
    let tasks: Vec<_> = banks
        .iter()
        .enumerate()
        .map(|(p, races)| {
            let (a, b) = (clients[2 * p].clone(), clients[2 * p + 1].clone());
            let races = races.clone();
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                for bank in races {
                    let (x, y) = tokio::join!(
                        a.mutation("accounts:withdrawJoint", withdraw(&bank, 0.0)),
                        b.mutation("accounts:withdrawJoint", withdraw(&bank, 1.0))
                    );
                    outcomes.push((bank, (a.id(), x), (b.id(), y)));
                }
                outcomes
            })
        })
        .collect();
    let mut races = 0;
    for task in tasks {
        let Ok(outcomes) = task.await else {
            judge.fail("a racing pair's task panicked");
            continue;
        };
        for (bank, (a, x), (b, y)) in outcomes {
            if !answered(&mut judge, || format!("client {a}'s withdrawal in {bank}"), &x)
                || !answered(&mut judge, || format!("client {b}'s withdrawal in {bank}"), &y)
            {
                continue;
            }
            races += 1;
            let (x, y) = (x.expect("answered"), y.expect("answered"));
            let balance = |o: &MutationOutcome| match o {
                MutationOutcome::Ok { value: Value::Int64(v), .. } => Some(*v),
                _ => None,
            };
            match (balance(&x), balance(&y)) {
                (Some(bx), Some(by)) => judge.fail(format!(
                    "write skew in {bank}: client {a} withdrew 150 from account 0 (left {bx}) and client {b} 150 from account 1 (left {by}), each allowed by the pair's sum before the other; together they hold {}",
                    bx + by
                )),
                (Some(_), None) | (None, Some(_)) => {
                    let refused = if balance(&x).is_some() { &y } else { &x };
                    judge.expect(refused.error_code() == Some("InsufficientFunds"), || {
                        format!("in {bank} the second withdrawal should fail InsufficientFunds, got {refused:?}")
                    });
                }
                (None, None) => judge.fail(format!("in {bank} both withdrawals failed ({x:?}, {y:?}); one fits the pair's 200")),
            }
        }
    }
    judge.expect(races > 0, || "no race was run".to_owned());
    quiesce().await;
    judge.verdict(replay::serializable(&ctx.history()));
    judge.finish()
}

async fn hot_counter(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(clients) = connect_many(&ctx, &mut judge, 20).await else { return judge.finish() };
    let name = ctx.fresh("hot");
    let watcher = clients[0].subscribe("counters:get", obj([("name", name.as_str().into())]));
    let tasks: Vec<_> = clients
        .iter()
        .map(|client| {
            let (client, name) = (client.clone(), name.clone());
            tokio::spawn(async move {
                answers(0..50, |_| client.mutation("counters:increment", obj([("name", name.as_str().into())]))).await
            })
        })
        .collect();
    let (mut failures, mut stop) = (0, Ok(()));
    for t in tasks {
        match t.await {
            Ok((outcomes, stopped)) => {
                failures += outcomes.iter().filter(|o| !matches!(o, MutationOutcome::Ok { .. })).count();
                stop = stop.and(stopped);
            }
            Err(_) => failures += 50,
        }
    }
    judge.expect(failures == 0, || format!("{failures} of 1000 increments did not succeed"));
    if answered(&mut judge, || "an increment".to_owned(), &stop) {
        wait_view(&mut judge, &clients[0], "the count of 1000", |v| {
            v.results.get(&watcher) == Some(&QueryResult::Value(Value::Int64(1000)))
        })
        .await;
    }
    quiesce().await;
    let h = ctx.history();
    judge.verdict(invariants::no_lost_increment(&h));
    judge.verdict(replay::serializable(&h));
    judge.verdict(order::version_chain(&h));
    judge.finish()
}

async fn bank(ctx: Ctx) -> CaseResult {
    bank_run(ctx, 10, 20, 5, Duration::from_secs(10)).await
}

async fn small_bank(ctx: Ctx) -> CaseResult {
    bank_run(ctx, 4, 5, 2, Duration::from_secs(2)).await
}

/// Transfers one client makes at most in a bank run. On a fast backend 20
/// clients made about 200,000 transfers in 10 s, and the watchers' history of
/// them (every pushed balance list) held several gigabytes; 5,000 transfers
/// still race on every account many times over.
const MAX_TRANSFERS_PER_CLIENT: u32 = 250;

/// `transferring` clients move money between `accounts` accounts for
/// `length` (or until each made [`MAX_TRANSFERS_PER_CLIENT`]) while
/// `watching` clients check every pushed total.
async fn bank_run(ctx: Ctx, accounts: u64, transferring: usize, watching: usize, length: Duration) -> CaseResult {
    let mut judge = Judge::default();
    let Some(clients) = connect_many(&ctx, &mut judge, transferring + watching).await else { return judge.finish() };
    let bank = ctx.fresh("bank");
    let opened = clients[0]
        .mutation(
            "accounts:open",
            obj([
                ("bank", bank.as_str().into()),
                ("accounts", Value::Float64(accounts as f64)),
                ("balance", Value::Int64(1000)),
            ]),
        )
        .await;
    judge.expect(matches!(opened, Ok(MutationOutcome::Ok { .. })), || format!("accounts:open failed: {opened:?}"));
    let watchers: Vec<_> = clients[transferring..]
        .iter()
        .map(|c| c.subscribe("accounts:balances", obj([("bank", bank.as_str().into())])))
        .collect();
    let until = Instant::now() + length;
    let tasks: Vec<_> = clients[..transferring]
        .iter()
        .enumerate()
        .map(|(w, client)| {
            let (client, bank) = (client.clone(), bank.clone());
            tokio::spawn(async move {
                let mut i: u64 = w as u64;
                let mut done = 0u32;
                while Instant::now() < until && done < MAX_TRANSFERS_PER_CLIENT {
                    // A cheap deterministic spread of accounts and amounts.
                    i = i.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    let (from, to, amount) = ((i >> 33) % accounts, (i >> 40) % accounts, ((i >> 20) % 300) as i64);
                    let args = obj([
                        ("bank", bank.as_str().into()),
                        ("from", Value::Float64(from as f64)),
                        ("to", Value::Float64(to as f64)),
                        ("amount", Value::Int64(amount)),
                    ]);
                    if client.mutation("accounts:transfer", args).await.is_err() {
                        break;
                    }
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut transfers = 0;
    for t in tasks {
        transfers += t.await.unwrap_or(0);
    }
    judge.expect(transfers > 20, || format!("only {transfers} transfers ran in {} s", length.as_secs()));
    for (client, q) in clients[transferring..].iter().zip(&watchers) {
        if wait_view(&mut judge, client, "the balances", |v| v.results.contains_key(q)).await.is_none() {
            break;
        }
    }
    quiesce().await;
    let h = ctx.history();
    judge.verdict(invariants::bank_totals(&h));
    judge.verdict(replay::serializable(&h));
    judge.verdict(replay::snapshot_consistent(&h));
    judge.verdict(replay::converged(&h));
    judge.finish()
}

async fn document_race(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(clients) = connect_many(&ctx, &mut judge, 5).await else { return judge.finish() };
    let created =
        clients[0].mutation("documents:create", obj([("title", "race".into()), ("content", "".into())])).await;
    let Some(id) = created.ok().and_then(|o| o.value().cloned()) else {
        judge.fail("documents:create failed");
        return judge.finish();
    };
    for version in 1..=5 {
        let calls: Vec<_> = clients
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let content = format!("v{version} by {i}");
                c.mutation(
                    "documents:update",
                    obj([
                        ("id", id.clone()),
                        ("content", content.into()),
                        ("expectedVersion", Value::Float64(f64::from(version))),
                    ]),
                )
            })
            .collect();
        let results = futures_util::future::join_all(calls).await;
        let unanswered = results.iter().find_map(|r| r.as_ref().err().cloned()).map_or(Ok(()), Err);
        if !answered(&mut judge, || format!("an update of version {version}"), &unanswered) {
            break;
        }
        let winners = results.iter().filter(|r| matches!(r, Ok(MutationOutcome::Ok { .. }))).count();
        let conflicts =
            results.iter().filter(|r| r.as_ref().ok().and_then(|o| o.error_code()) == Some("VersionConflict")).count();
        judge.expect(winners == 1 && conflicts == 4, || {
            format!("version {version}: {winners} updates won and {conflicts} conflicted; expected 1 and 4")
        });
    }
    quiesce().await;
    judge.verdict(replay::serializable(&ctx.history()));
    judge.finish()
}

async fn notifications(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(clients) = connect_many(&ctx, &mut judge, 4).await else { return judge.finish() };
    let user = ctx.fresh("user");
    let q = clients[3].subscribe("notifications:unread", obj([("user", user.as_str().into())]));
    let senders: Vec<_> = clients[..2]
        .iter()
        .map(|c| {
            let (c, user) = (c.clone(), user.clone());
            tokio::spawn(async move {
                let send = |i| {
                    c.mutation(
                        "notifications:send",
                        obj([("user", user.as_str().into()), ("title", format!("n{i}").into())]),
                    )
                };
                answers(0..40, send).await.1
            })
        })
        .collect();
    each_answered(&mut judge, "markAllRead", 0..10, |_| {
        clients[2].mutation("notifications:markAllRead", obj([("user", user.as_str().into())]))
    })
    .await;
    let mut stop = Ok(());
    for s in senders {
        stop = stop.and(s.await.unwrap_or(Ok(())));
    }
    answered(&mut judge, || "a notification".to_owned(), &stop);
    wait_view(&mut judge, &clients[3], "the unread list", |v| v.results.contains_key(&q)).await;
    quiesce().await;
    let h = ctx.history();
    judge.verdict(invariants::unread_counts(&h));
    judge.verdict(replay::serializable(&h));
    judge.verdict(replay::converged(&h));
    judge.finish()
}

async fn many_counters(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(clients) = connect_many(&ctx, &mut judge, 6).await else { return judge.finish() };
    let names: Vec<String> = (0..4).map(|i| ctx.fresh(&format!("k{i}"))).collect();
    for watcher in &clients[4..] {
        for name in &names {
            watcher.subscribe("counters:get", obj([("name", name.as_str().into())]));
        }
    }
    let tasks: Vec<_> = clients[..4]
        .iter()
        .map(|c| {
            let (c, names) = (c.clone(), names.clone());
            tokio::spawn(async move {
                let increment = |i: usize| {
                    c.mutation("counters:increment", obj([("name", names[i % names.len()].as_str().into())]))
                };
                answers(0..25, increment).await.1
            })
        })
        .collect();
    let mut stop = Ok(());
    for t in tasks {
        stop = stop.and(t.await.unwrap_or(Ok(())));
    }
    answered(&mut judge, || "an increment".to_owned(), &stop);
    quiesce().await;
    let h = ctx.history();
    judge.verdict(replay::snapshot_consistent(&h));
    judge.verdict(replay::converged(&h));
    judge.verdict(invariants::no_lost_increment(&h));
    judge.finish()
}
