//! Scheduled functions: `notifications:sendLater` runs `notifications:send`
//! exactly once, not before its time, and only if the scheduling mutation
//! commits; presence expiry is a scheduled `presence:expire` that each
//! heartbeat moves. Each of the three scheduling faults breaks one of these.

use syncspec_protocol::value::Value;

use super::tests::{args, Driver};
use super::*;

const SECOND: Ts = 1_000_000_000;

fn driver(inline: bool, fault: Option<Fault>) -> Driver {
    let mut config = Config::standard();
    config.faults.extend(fault);
    Driver::with_config(inline, config)
}

fn later(user: &str, title: &str, delay_ms: f64) -> Value {
    args([("user", user.into()), ("title", title.into()), ("delayMs", delay_ms.into())])
}

/// The titles of `user`'s unread notifications, as the store holds them.
fn titles(d: &Driver, user: &str) -> Vec<String> {
    d.core
        .head()
        .scan(IndexId::NotificationsByUserRead, &[Value::from(user), Value::Boolean(false)])
        .map(|doc| doc.get("title").as_str().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn a_scheduled_send_runs_once_and_not_before_its_time() {
    let mut d = driver(true, None);
    d.connect(1);
    d.mutate(1, 0, "notifications:sendLater", later("u", "hello", 250.0));
    let (_, outcome) = d.responses(1).remove(0);
    let (id, ts) = outcome.expect("scheduled");
    assert!(id.as_str().is_some_and(|id| id.starts_with('s')), "a scheduled function's id: {id}");
    d.input(Input::Tick);
    assert!(titles(&d, "u").is_empty(), "not yet due");
    d.wake_all();
    assert_eq!(titles(&d, "u"), ["hello"]);
    let sent = d.core.head().scan(IndexId::NotificationsByUserRead, &[Value::from("u")]).next().unwrap().created;
    assert!(sent >= ts + 250_000_000, "ran {} ms after the scheduling commit", (sent - ts) / 1_000_000);
    d.now += 60 * SECOND;
    d.input(Input::Tick);
    assert_eq!(titles(&d, "u"), ["hello"], "and never again");
}

#[test]
fn a_refused_mutation_schedules_nothing() {
    let run = |fault| {
        let mut d = driver(true, fault);
        d.connect(1);
        for i in 0..functions::MAX_UNREAD {
            d.mutate(1, i as u32, "notifications:send", args([("user", "u".into()), ("title", "x".into())]));
        }
        d.mutate(1, 1000, "notifications:sendLater", later("u", "late", 0.0));
        let refused = d.responses(1).into_iter().find(|(r, _)| *r == 1000).unwrap().1.unwrap_err();
        assert!(refused.message.contains("unread"), "{}", refused.message);
        d.now += SECOND;
        d.input(Input::Tick);
        titles(&d, "u").iter().filter(|t| *t == "late").count()
    };
    assert_eq!(run(None), 0);
    assert_eq!(run(Some(Fault::ScheduleDespiteAbort)), 1, "the fault keeps the refused mutation's schedule");
}

#[test]
fn a_retried_mutation_schedules_once() {
    let run = |fault| {
        let mut d = driver(false, fault);
        d.connect(1);
        d.connect(2);
        d.mutate(1, 0, "notifications:sendLater", later("u", "late", 0.0));
        // Another send to the same inbox commits while sendLater executes:
        // sendLater read the inbox, so it conflicts and runs again.
        d.mutate(2, 0, "notifications:send", args([("user", "u".into()), ("title", "now".into())]));
        d.run_job(1);
        d.report(0);
        d.drain();
        assert!(d.core.stats().conflicts >= 1, "the race conflicted");
        d.now += SECOND;
        d.input(Input::Tick);
        d.drain();
        titles(&d, "u").iter().filter(|t| *t == "late").count()
    };
    assert_eq!(run(None), 1);
    assert_eq!(run(Some(Fault::ScheduleDespiteAbort)), 2, "the fault keeps the first attempt's schedule too");
}

#[test]
fn scheduled_twice_and_scheduled_early_faults_break_their_guarantee() {
    let mut d = driver(true, Some(Fault::ScheduledTwice));
    d.connect(1);
    d.mutate(1, 0, "notifications:sendLater", later("u", "once", 10.0));
    d.wake_all();
    assert_eq!(titles(&d, "u"), ["once", "once"]);

    let mut d = driver(true, Some(Fault::ScheduledEarly));
    d.connect(1);
    d.mutate(1, 0, "notifications:sendLater", later("u", "later", 60_000.0));
    assert_eq!(titles(&d, "u"), ["later"], "ran a minute early");
}

#[test]
fn each_heartbeat_moves_the_scheduled_expiry() {
    let mut d = driver(true, None);
    d.connect(1);
    d.subscribe(1, 0, 0, "presence:list", args([("room", "r".into())]));
    let beat = args([("room", "r".into()), ("user", "u".into()), ("name", "U".into())]);
    d.mutate(1, 0, "presence:heartbeat", beat.clone());
    d.now += 6 * SECOND;
    d.mutate(1, 1, "presence:heartbeat", beat);
    let scheduled = d.core.head().scan(IndexId::ScheduledByDue, &[]).count();
    assert_eq!(scheduled, 1, "the first expiry was cancelled");
    d.now += 6 * SECOND;
    d.input(Input::Tick);
    let Some(Value::Array(rows)) = d.latest(1, 0) else { panic!() };
    assert_eq!(rows.len(), 1, "12 s after the first heartbeat, 6 s after the last: still present");
    d.now += 5 * SECOND;
    d.input(Input::Tick);
    assert_eq!(d.latest(1, 0), Some(Value::Array(vec![])), "gone 10 s after the last heartbeat");
    assert_eq!(d.core.head().scan(IndexId::ScheduledByDue, &[]).count(), 0);
}

#[test]
fn internal_functions_are_not_callable() {
    let mut d = driver(true, None);
    d.connect(1);
    d.mutate(1, 0, "presence:expire", args([("room", "r".into()), ("user", "u".into())]));
    let failure = d.responses(1).remove(0).1.unwrap_err();
    assert!(failure.message.contains("Could not find public function"), "{}", failure.message);
}
