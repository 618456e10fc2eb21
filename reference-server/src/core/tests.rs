//! Unit and property tests of the core, driven with no shell: a `Driver`
//! plays the sockets and the executor, so every interleaving of execution
//! and commit is reachable from a test.

use std::collections::BTreeMap;

use convex_sync_types::{ClientMessage, SessionId as WireSessionId};
use proptest::prelude::*;
use syncspec_protocol::json;
use syncspec_protocol::value::{Object, Value};
use syncspec_protocol::wire::{self, Modification, Ts, Version};

use super::*;

const T0: Ts = 1_760_000_000_000_000_000;

/// Plays the shell: collects frames per connection, holds jobs until told to run them.
pub(super) struct Driver {
    pub(super) core: Core,
    pub(super) now: Ts,
    pub(super) frames: BTreeMap<ConnId, Vec<Frame>>,
    closed: BTreeMap<ConnId, (u16, String)>,
    /// Jobs handed out and not yet executed.
    jobs: Vec<Job>,
    /// Executions finished and not yet reported to the core.
    done: Vec<Executed>,
    /// Execute jobs as soon as they appear.
    inline: bool,
    /// HTTP calls' outcomes.
    pub(super) replies: BTreeMap<CallId, Result<Value, Failure>>,
    /// Times the core asked to be woken at, not yet reached.
    wakes: Vec<Ts>,
}

impl Driver {
    fn new(inline: bool) -> Driver {
        Driver::with_config(inline, Config::standard())
    }

    pub(super) fn with_config(inline: bool, config: Config) -> Driver {
        Driver {
            core: Core::new(config),
            now: T0,
            frames: BTreeMap::new(),
            closed: BTreeMap::new(),
            jobs: Vec::new(),
            done: Vec::new(),
            inline,
            replies: BTreeMap::new(),
            wakes: Vec::new(),
        }
    }

    pub(super) fn input(&mut self, input: Input) {
        self.now += 1_000;
        let mut out = Vec::new();
        self.core.handle(self.now, input, &mut out);
        let mut queue: VecDeque<Output> = out.into();
        while let Some(o) = queue.pop_front() {
            match o {
                Output::Send { conn, frame } => {
                    let transition = matches!(frame, Frame::Transition(..));
                    self.frames.entry(conn).or_default().push(frame);
                    if transition {
                        // The socket writes at once.
                        let mut more = Vec::new();
                        self.core.handle(self.now, Input::Delivered { conn }, &mut more);
                        queue.extend(more);
                    }
                }
                Output::Close { conn, code, reason } => {
                    self.closed.insert(conn, (code, reason));
                }
                Output::Execute(job) if self.inline => {
                    let mut more = Vec::new();
                    self.core.handle(self.now, Input::Executed(execute(&job)), &mut more);
                    queue.extend(more);
                }
                Output::Execute(job) => self.jobs.push(job),
                Output::Reply { call, outcome } => {
                    self.replies.insert(call, outcome);
                }
                Output::Wake { at } => self.wakes.push(at),
            }
        }
    }

    /// Moves the clock to each time the core asked to be woken at, in
    /// order, and wakes it, until it asks for nothing more.
    pub(super) fn wake_all(&mut self) {
        while let Some(at) = self.wakes.iter().copied().min() {
            self.wakes.retain(|&w| w != at);
            self.now = self.now.max(at);
            self.input(Input::Wake);
        }
    }

    /// The time the driver's clock shows.
    pub(super) fn now(&self) -> Ts {
        self.now
    }

    pub(super) fn connect(&mut self, conn: ConnId) {
        self.input(Input::Open { conn });
        self.send(conn, connect_message(conn as u128));
    }

    /// Closes `old` and opens `new` with the session `old` had (a client's
    /// reconnect under the same session id; `connect` names session `conn`).
    pub(super) fn reconnect(&mut self, old: ConnId, new: ConnId, session: ConnId) {
        self.input(Input::Closed { conn: old });
        self.input(Input::Open { conn: new });
        self.send(new, connect_message(session as u128));
    }

    pub(super) fn send(&mut self, conn: ConnId, message: ClientMessage) {
        self.input(Input::Message { conn, message: message.into() });
    }

    pub(super) fn send_text(&mut self, conn: ConnId, text: &str) {
        match wire::parse_client_message(text) {
            Ok(message) => self.input(Input::Message { conn, message: message.into() }),
            Err(e) => self.input(Input::BadFrame { conn, code: e.code(), detail: e.to_string() }),
        }
    }

    pub(super) fn mutate(&mut self, conn: ConnId, request_id: u32, path: &str, args: Value) {
        let text = format!(
            r#"{{"type":"Mutation","requestId":{request_id},"udfPath":"{path}","args":[{}]}}"#,
            json::encode(&args)
        );
        self.send_text(conn, &text);
    }

    pub(super) fn subscribe(&mut self, conn: ConnId, base: u32, query_id: u32, path: &str, args: Value) {
        let text = format!(
            r#"{{"type":"ModifyQuerySet","baseVersion":{base},"newVersion":{},"modifications":[{{"type":"Add","queryId":{query_id},"udfPath":"{path}","args":[{}]}}]}}"#,
            base + 1,
            json::encode(&args)
        );
        self.send_text(conn, &text);
    }

    pub(super) fn run_job(&mut self, index: usize) {
        let job = self.jobs.remove(index);
        self.done.push(execute(&job));
    }

    pub(super) fn report(&mut self, index: usize) {
        let executed = self.done.remove(index);
        self.input(Input::Executed(executed));
    }

    pub(super) fn drain(&mut self) {
        while !self.jobs.is_empty() || !self.done.is_empty() {
            if !self.jobs.is_empty() {
                self.run_job(0);
            }
            if !self.done.is_empty() {
                self.report(0);
            }
        }
    }

    pub(super) fn responses(&self, conn: ConnId) -> Vec<(u32, Result<(Value, Ts), Failure>)> {
        self.frames
            .get(&conn)
            .into_iter()
            .flatten()
            .filter_map(|f| match f {
                Frame::MutationResponse { request_id, outcome } => Some((*request_id, outcome.clone())),
                _ => None,
            })
            .collect()
    }

    pub(super) fn transitions(&self, conn: ConnId) -> Vec<Transition> {
        self.frames
            .get(&conn)
            .into_iter()
            .flatten()
            .filter_map(|f| match f {
                Frame::Transition(t, _) => Some(t.clone()),
                _ => None,
            })
            .collect()
    }

    /// The latest value pushed for a query on a connection.
    pub(super) fn latest(&self, conn: ConnId, query_id: u32) -> Option<Value> {
        self.transitions(conn).iter().flat_map(|t| t.modifications.iter()).rev().find_map(|m| match m {
            Modification::Updated { query_id: q, value, .. } if *q == query_id => {
                Some(json::decode_str(value).unwrap())
            }
            _ => None,
        })
    }
}

pub(super) fn connect_message(session: u128) -> ClientMessage {
    ClientMessage::Connect {
        session_id: WireSessionId::new(uuid_from(session)),
        connection_count: 0,
        last_close_reason: "InitialConnect".into(),
        max_observed_timestamp: None,
        client_ts: None,
    }
}

fn uuid_from(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(n)
}

pub(super) fn args<const N: usize>(fields: [(&'static str, Value); N]) -> Value {
    Value::object(fields)
}

#[test]
fn mutation_response_precedes_its_covering_transition() {
    let mut d = Driver::new(true);
    d.connect(1);
    d.subscribe(1, 0, 0, "counters:get", args([("name", "c".into())]));
    d.mutate(1, 0, "counters:increment", args([("name", "c".into())]));
    let frames = &d.frames[&1];
    let response = frames.iter().position(|f| matches!(f, Frame::MutationResponse { .. })).unwrap();
    let Frame::MutationResponse { outcome: Ok((value, ts)), .. } = &frames[response] else { panic!() };
    assert_eq!(value, &Value::Int64(1));
    let covering = frames
        .iter()
        .position(|f| matches!(f, Frame::Transition(t, _) if t.end.ts >= *ts))
        .expect("a transition covers the commit");
    assert!(response < covering, "response at {response}, covering transition at {covering}");
    assert_eq!(d.latest(1, 0), Some(Value::Int64(1)));
}

#[test]
fn a_mutation_with_no_subscriber_still_gets_a_transition() {
    let mut d = Driver::new(true);
    d.connect(1);
    d.mutate(1, 0, "counters:increment", args([("name", "c".into())]));
    let Some((_, Ok((_, ts)))) = d.responses(1).pop() else { panic!("no response") };
    let t = d.transitions(1);
    assert_eq!(t.len(), 1);
    assert!(t[0].modifications.is_empty());
    assert!(t[0].end.ts >= ts);
}

#[test]
fn transitions_chain_and_ts_never_decreases() {
    let mut d = Driver::new(true);
    d.connect(1);
    d.connect(2);
    d.subscribe(1, 0, 0, "messages:list", args([("channel", "x".into())]));
    for i in 0..5 {
        d.mutate(2, i, "messages:send", args([("channel", "x".into()), ("author", "a".into()), ("body", "hi".into())]));
    }
    let t = d.transitions(1);
    assert_eq!(t.len(), 6);
    assert_eq!(t[0].start, Version::default());
    for pair in t.windows(2) {
        assert_eq!(pair[1].start, pair[0].end);
        assert!(pair[1].end.ts >= pair[0].end.ts);
    }
    let Some(Value::Array(rows)) = d.latest(1, 0) else { panic!() };
    assert_eq!(rows.len(), 5);
}

#[test]
fn one_evaluation_serves_every_subscriber() {
    let mut d = Driver::new(true);
    for conn in 1..=50 {
        d.connect(conn);
        d.subscribe(conn, 0, 0, "cursors:list", args([("room", "r".into())]));
    }
    // Fifty subscribers, one evaluation at subscribe time, since nothing committed between.
    assert_eq!(d.core.evaluations(), 1);
    d.mutate(
        1,
        0,
        "cursors:move",
        args([("room", "r".into()), ("user", "u".into()), ("x", 1.0.into()), ("y", 2.0.into())]),
    );
    assert_eq!(d.core.evaluations(), 2);
    for conn in 1..=50 {
        let Some(Value::Array(rows)) = d.latest(conn, 0) else { panic!("conn {conn} saw nothing") };
        assert_eq!(rows.len(), 1);
    }
    // A write elsewhere invalidates nothing here.
    d.mutate(
        1,
        1,
        "cursors:move",
        args([("room", "other".into()), ("user", "u".into()), ("x", 1.0.into()), ("y", 2.0.into())]),
    );
    assert_eq!(d.core.evaluations(), 2);
    assert_eq!(d.transitions(2).len(), 2);
}

#[test]
fn unchanged_results_are_not_resent() {
    let mut d = Driver::new(true);
    d.connect(1);
    d.subscribe(1, 0, 0, "presence:list", args([("room", "r".into())]));
    d.mutate(1, 0, "presence:leave", args([("room", "r".into()), ("user", "nobody".into())]));
    // `leave` of an absent user writes nothing, so no query changed; the
    // transition still comes, empty.
    let t = d.transitions(1);
    assert_eq!(t.len(), 2);
    assert!(t[1].modifications.is_empty());
}

#[test]
fn slow_consumer_gets_at_most_two_unsent_transitions() {
    let mut core = Core::new(Config::standard());
    let mut out = Vec::new();
    let mut now = T0;
    let mut step = |core: &mut Core, input: Input, out: &mut Vec<Output>| {
        now += 1000;
        core.handle(now, input, out);
        // Execute inline, never report delivery.
        loop {
            let jobs: Vec<Job> =
                out.iter().filter_map(|o| if let Output::Execute(j) = o { Some(j.clone()) } else { None }).collect();
            out.retain(|o| !matches!(o, Output::Execute(_)));
            if jobs.is_empty() {
                break;
            }
            for job in jobs {
                core.handle(now, Input::Executed(execute(&job)), out);
            }
        }
    };
    step(&mut core, Input::Open { conn: 1 }, &mut out);
    step(&mut core, Input::Message { conn: 1, message: connect_message(1).into() }, &mut out);
    step(&mut core, Input::Open { conn: 2 }, &mut out);
    step(&mut core, Input::Message { conn: 2, message: connect_message(2).into() }, &mut out);
    let sub = wire::parse_client_message(
        r#"{"type":"ModifyQuerySet","baseVersion":0,"newVersion":1,"modifications":[{"type":"Add","queryId":0,"udfPath":"counters:get","args":[{"name":"c"}]}]}"#,
    )
    .unwrap();
    step(&mut core, Input::Message { conn: 1, message: sub.into() }, &mut out);
    for i in 0..20 {
        let m = wire::parse_client_message(&format!(
            r#"{{"type":"Mutation","requestId":{i},"udfPath":"counters:increment","args":[{{"name":"c"}}]}}"#
        ))
        .unwrap();
        step(&mut core, Input::Message { conn: 2, message: m.into() }, &mut out);
    }
    let to_slow = |out: &[Output]| {
        out.iter().filter(|o| matches!(o, Output::Send { conn: 1, frame: Frame::Transition(..) })).count()
    };
    assert_eq!(to_slow(&out), 2, "the slow session got more than two unsent transitions");
    // Once it drains, it gets one coalesced transition with the latest value.
    out.clear();
    step(&mut core, Input::Delivered { conn: 1 }, &mut out);
    let latest: Vec<&Transition> = out
        .iter()
        .filter_map(|o| match o {
            Output::Send { conn: 1, frame: Frame::Transition(t, _) } => Some(t),
            _ => None,
        })
        .collect();
    assert_eq!(latest.len(), 1);
    let Modification::Updated { value, .. } = &latest[0].modifications[0] else { panic!() };
    assert_eq!(json::decode_str(value).unwrap(), Value::Int64(20));
}

#[test]
fn replay_under_the_same_session_applies_once() {
    let mut d = Driver::new(true);
    d.connect(1);
    d.mutate(1, 7, "counters:increment", args([("name", "c".into())]));
    // Reconnect with the same session id and resend request 7.
    d.reconnect(1, 2, 1);
    d.mutate(2, 7, "counters:increment", args([("name", "c".into())]));
    let first = d.responses(1);
    let replay = d.responses(2);
    assert_eq!(first[0].1, replay[0].1, "the replay must return the original result and ts");
    assert_eq!(d.core.stats().replays, 1);
    d.mutate(2, 8, "counters:get_nope", args([]));
    d.mutate(2, 9, "counters:increment", args([("name", "c".into())]));
    assert_eq!(d.responses(2)[2].1.as_ref().unwrap().0, Value::Int64(2));
}

#[test]
fn replay_racing_its_original_applies_once() {
    let mut d = Driver::new(false);
    d.connect(1);
    d.mutate(1, 0, "counters:increment", args([("name", "c".into())]));
    assert_eq!(d.jobs.len(), 1);
    // The socket drops while the mutation executes; the client replays on a new socket.
    d.reconnect(1, 2, 1);
    d.mutate(2, 0, "counters:increment", args([("name", "c".into())]));
    assert_eq!(d.jobs.len(), 2);
    d.drain();
    assert_eq!(d.responses(2)[0].1.as_ref().unwrap().0, Value::Int64(1));
    d.mutate(2, 1, "counters:increment", args([("name", "c".into())]));
    d.drain();
    assert_eq!(d.responses(2)[1].1.as_ref().unwrap().0, Value::Int64(2));
}

/// The `FatalError` text a connection got, if any.
fn fatal_of(d: &Driver, conn: ConnId) -> Option<String> {
    d.frames.get(&conn)?.iter().find_map(|f| match f {
        Frame::Fatal(text) => Some(text.clone()),
        _ => None,
    })
}

#[test]
fn a_reused_request_id_with_another_call_is_a_protocol_error_not_the_earlier_result() {
    let mut d = Driver::new(true);
    d.connect(1);
    d.mutate(1, 7, "counters:increment", args([("name", "c".into())]));
    d.reconnect(1, 2, 1);
    // The same requestId, another function: not a replay.
    d.mutate(2, 7, "messages:send", args([("channel", "c".into()), ("author", "a".into()), ("body", "hi".into())]));
    assert!(d.responses(2).is_empty(), "the earlier call's result was handed out: {:?}", d.responses(2));
    let fatal = fatal_of(&d, 2).expect("a FatalError");
    assert!(fatal.starts_with("InvalidRequestId") && fatal.contains("requestId 7"), "{fatal}");
    assert_eq!(d.closed.get(&2).map(|(code, _)| *code), Some(1002));
    // The same function with other arguments is refused the same way.
    d.reconnect(2, 3, 1);
    d.mutate(3, 7, "counters:increment", args([("name", "other".into())]));
    assert!(d.responses(3).is_empty());
    assert!(fatal_of(&d, 3).is_some_and(|f| f.starts_with("InvalidRequestId")));
    // Nothing the refused calls asked for was applied; the exact replay still is one.
    d.reconnect(3, 4, 1);
    d.mutate(4, 7, "counters:increment", args([("name", "c".into())]));
    assert_eq!(d.responses(4)[0].1.as_ref().unwrap().0, Value::Int64(1));
    assert_eq!(d.core.stats().replays, 1);
    d.subscribe(4, 0, 0, "messages:list", args([("channel", "c".into())]));
    assert_eq!(d.latest(4, 0), Some(Value::Array(vec![])));
}

#[test]
fn a_reused_request_id_racing_the_call_it_reuses_is_refused_at_commit() {
    let mut d = Driver::new(false);
    d.connect(1);
    d.mutate(1, 0, "counters:increment", args([("name", "c".into())]));
    d.reconnect(1, 2, 1);
    d.mutate(2, 0, "counters:increment", args([("name", "c".into()), ("by", Value::Int64(5))]));
    d.drain();
    assert!(d.responses(2).is_empty(), "{:?}", d.responses(2));
    assert!(fatal_of(&d, 2).is_some_and(|f| f.starts_with("InvalidRequestId")));
    d.connect(3);
    d.subscribe(3, 0, 0, "counters:get", args([("name", "c".into())]));
    assert_eq!(d.latest(3, 0), Some(Value::Int64(1)), "only the original call applied");
}

#[test]
fn a_query_set_past_the_session_limit_is_refused_whole_and_harms_no_one_else() {
    let config = Config { max_queries_per_session: 3, ..Config::standard() };
    let mut d = Driver::with_config(true, config);
    d.connect(1);
    d.connect(2);
    // Up to the limit, in two changes: fine.
    d.subscribe(1, 0, 0, "counters:get", args([("name", "a".into())]));
    d.subscribe(1, 1, 1, "counters:get", args([("name", "b".into())]));
    d.subscribe(1, 2, 2, "counters:get", args([("name", "c".into())]));
    assert_eq!(d.latest(1, 2), Some(Value::Int64(0)));
    assert!(fatal_of(&d, 1).is_none());
    // One more is a protocol error, and the session ends.
    d.subscribe(1, 3, 3, "counters:get", args([("name", "d".into())]));
    let fatal = fatal_of(&d, 1).expect("a FatalError");
    assert!(fatal.starts_with("TooManyQueries") && fatal.contains("4 queries"), "{fatal}");
    assert!(d.latest(1, 3).is_none(), "the refused query was run");
    // Another session is served as before.
    d.subscribe(2, 0, 0, "counters:get", args([("name", "a".into())]));
    d.mutate(2, 0, "counters:increment", args([("name", "a".into())]));
    assert_eq!(d.latest(2, 0), Some(Value::Int64(1)));
}

#[test]
fn query_set_churn_past_the_session_bucket_ends_the_session_with_1013() {
    // Ten changes at once, then one every 200 ms.
    let config = Config { query_changes: Config::query_changes_per_second(5), ..Config::standard() };
    let mut d = Driver::with_config(true, config);
    d.connect(1);
    d.connect(2);
    let remove = |base: u32, id: u32| {
        format!(
            r#"{{"type":"ModifyQuerySet","baseVersion":{base},"newVersion":{},"modifications":[{{"type":"Remove","queryId":{id}}}]}}"#,
            base + 1
        )
    };
    // Five adds and five removes of one query: the whole burst.
    for round in 0..5 {
        d.subscribe(1, 2 * round, round, "counters:get", args([("name", "a".into())]));
        d.send_text(1, &remove(2 * round + 1, round));
    }
    assert!(fatal_of(&d, 1).is_none(), "the burst is allowed");
    assert!(!d.closed.contains_key(&1));
    // The eleventh change within the same second is one too many.
    d.subscribe(1, 10, 5, "counters:get", args([("name", "a".into())]));
    let fatal = fatal_of(&d, 1).expect("a FatalError");
    assert!(fatal.starts_with("TooManyQueryChanges") && fatal.contains("5 a second"), "{fatal}");
    assert_eq!(d.closed.get(&1), Some(&(1013, "TooManyQueryChanges".to_owned())));
    // Each session has its own bucket, and a bucket refills with time.
    d.subscribe(2, 0, 0, "counters:get", args([("name", "a".into())]));
    d.mutate(2, 0, "counters:increment", args([("name", "a".into())]));
    assert_eq!(d.latest(2, 0), Some(Value::Int64(1)));
    for round in 0..5 {
        d.send_text(2, &remove(2 * round + 1, round));
        d.subscribe(2, 2 * round + 2, round + 1, "counters:get", args([("name", "a".into())]));
        d.now += 400_000_000;
    }
    assert!(fatal_of(&d, 2).is_none(), "two changes every 400 ms is the rate");
    assert_eq!(d.latest(2, 5), Some(Value::Int64(1)));
}

#[test]
fn a_tick_keeps_the_newest_messages_of_each_channel_written_and_tells_subscribers() {
    let config = Config { retain_messages: Some(3), ..Config::standard() };
    let mut d = Driver::with_config(true, config);
    d.connect(1);
    let list = |channel: &str| args([("channel", channel.into()), ("limit", Value::Float64(100.0))]);
    d.subscribe(1, 0, 0, "messages:list", list("a"));
    d.subscribe(1, 1, 1, "messages:list", list("b"));
    for (i, channel) in ["a", "a", "a", "a", "a", "b", "b"].into_iter().enumerate() {
        let body = format!("m{i}");
        d.mutate(
            1,
            i as u32,
            "messages:send",
            args([("channel", channel.into()), ("author", "x".into()), ("body", body.as_str().into())]),
        );
    }
    let bodies = |d: &Driver, q: u32| -> Vec<String> {
        let Some(Value::Array(rows)) = d.latest(1, q) else { panic!("no list result") };
        rows.iter()
            .map(|r| r.as_object().and_then(|o| o.get("body")).and_then(Value::as_str).unwrap().to_owned())
            .collect()
    };
    assert_eq!(bodies(&d, 0).len(), 5, "nothing is trimmed before the tick");
    d.input(Input::Tick);
    let mut kept = bodies(&d, 0);
    kept.sort();
    assert_eq!(kept, ["m2", "m3", "m4"], "the three newest of a");
    assert_eq!(bodies(&d, 1).len(), 2, "b is under the bound");
    assert_eq!(d.core.stats().trimmed, 2);
    // Without the bound nothing goes.
    let mut d = Driver::new(true);
    d.connect(1);
    for i in 0..5 {
        d.mutate(1, i, "messages:send", args([("channel", "a".into()), ("author", "x".into()), ("body", "m".into())]));
    }
    d.input(Input::Tick);
    assert_eq!(d.core.stats().trimmed, 0);
}

#[test]
fn an_idempotency_record_expires_its_retention_after_its_last_use() {
    let config = Config { idempotency_retention_ns: 60_000_000_000, ..Config::standard() };
    let mut d = Driver::with_config(true, config);
    d.connect(1);
    d.mutate(1, 0, "counters:increment", args([("name", "c".into())]));
    assert_eq!(d.core.load().idempotency_records, 1);
    d.now += 30_000_000_000;
    d.input(Input::Tick);
    assert_eq!(d.core.load().idempotency_records, 1, "kept within its retention");
    // A replay uses it again, so it is kept 60 s from now.
    d.reconnect(1, 2, 1);
    d.mutate(2, 0, "counters:increment", args([("name", "c".into())]));
    d.now += 45_000_000_000;
    d.input(Input::Tick);
    assert_eq!(d.core.load().idempotency_records, 1, "the replay refreshed it");
    d.now += 20_000_000_000;
    d.input(Input::Tick);
    assert_eq!(d.core.load().idempotency_records, 0, "65 s after its last use it is gone");
    d.connect(3);
    d.subscribe(3, 0, 0, "counters:get", args([("name", "c".into())]));
    assert_eq!(d.latest(3, 0), Some(Value::Int64(1)), "the replay did not apply again");
}

#[test]
fn queued_mutations_past_their_argument_bytes_close_the_session_with_1013() {
    let config = Config { max_queued_argument_bytes: 100, ..Config::standard() };
    // Jobs are left unexecuted, so every mutation after the first waits.
    let mut d = Driver::with_config(false, config);
    d.connect(1);
    let body = "x".repeat(40);
    let send = |d: &mut Driver, id: u32| {
        d.mutate(
            1,
            id,
            "messages:send",
            args([("channel", "c".into()), ("author", "a".into()), ("body", body.as_str().into())]),
        )
    };
    send(&mut d, 0);
    send(&mut d, 1);
    assert!(!d.closed.contains_key(&1), "one running and one of about 70 bytes waiting is within 100");
    send(&mut d, 2);
    assert_eq!(d.closed.get(&1), Some(&(1013, "TooManyConcurrentMutations".to_owned())));
}

#[test]
fn conflicting_executions_retry_at_a_newer_snapshot() {
    let mut d = Driver::new(false);
    d.connect(1);
    d.connect(2);
    d.mutate(1, 0, "counters:increment", args([("name", "c".into())]));
    d.mutate(2, 0, "counters:increment", args([("name", "c".into())]));
    // Both executed at the same snapshot; the second to commit conflicts.
    d.run_job(0);
    d.run_job(0);
    d.report(0);
    d.report(0);
    assert_eq!(d.core.stats().conflicts, 1);
    d.drain();
    let mut values: Vec<Value> = [1, 2].iter().map(|&c| d.responses(c)[0].1.as_ref().unwrap().0.clone()).collect();
    values.sort();
    assert_eq!(values, vec![Value::Int64(1), Value::Int64(2)]);
}

#[test]
fn rate_limit_accepts_twenty_a_second() {
    let mut d = Driver::new(true);
    d.connect(1);
    for i in 0..60 {
        d.mutate(
            1,
            i,
            "cursors:move",
            args([("room", "r".into()), ("user", "u".into()), ("x", 1.0.into()), ("y", 1.0.into())]),
        );
    }
    let responses = d.responses(1);
    let accepted = responses.iter().filter(|(_, r)| r.is_ok()).count();
    assert_eq!(accepted, 20);
    let Err(f) = &responses[59].1 else { panic!() };
    let data = f.data.as_ref().unwrap().as_object().unwrap();
    assert_eq!(data["code"], Value::from("RateLimited"));
    assert!(matches!(data["retryAfterMs"], Value::Float64(ms) if ms > 0.0));
}

#[test]
fn presence_rows_expire_by_ttl() {
    let mut d = Driver::new(true);
    d.connect(1);
    d.subscribe(1, 0, 0, "presence:list", args([("room", "r".into())]));
    d.mutate(1, 0, "presence:heartbeat", args([("room", "r".into()), ("user", "u".into()), ("name", "U".into())]));
    let Some(Value::Array(rows)) = d.latest(1, 0) else { panic!() };
    assert_eq!(rows.len(), 1);
    d.now += 11_000_000_000;
    d.input(Input::Tick);
    let Some(Value::Array(rows)) = d.latest(1, 0) else { panic!() };
    assert!(rows.is_empty(), "the sweep should have removed the row: {rows:?}");
}

#[test]
fn idle_sessions_get_a_ping() {
    let mut d = Driver::new(true);
    d.connect(1);
    d.now += PING_AFTER_NS;
    d.input(Input::Tick);
    assert!(matches!(d.frames[&1].last(), Some(Frame::Ping)));
}

#[test]
fn protocol_violations_are_fatal_to_that_session_only() {
    let cases = [
        ("not json", "WSMessageInvalidJson"),
        (r#"{"type":"Nope"}"#, "WSMessageInvalid"),
        (r#"{"type":"ModifyQuerySet","baseVersion":3,"newVersion":4,"modifications":[]}"#, "BaseVersionMismatch"),
        (
            r#"{"type":"ModifyQuerySet","baseVersion":0,"newVersion":1,"modifications":[{"type":"Remove","queryId":9}]}"#,
            "UnknownQueryId",
        ),
        (
            r#"{"type":"ModifyQuerySet","baseVersion":0,"newVersion":1,"modifications":[{"type":"Add","queryId":1,"udfPath":"counters:get","args":[{"name":"a"}]},{"type":"Add","queryId":1,"udfPath":"counters:get","args":[{"name":"b"}]}]}"#,
            "DuplicateQueryId",
        ),
    ];
    for (i, (text, code)) in cases.iter().enumerate() {
        let mut d = Driver::new(true);
        d.connect(1);
        d.connect(2);
        d.send_text(1, text);
        assert_eq!(d.closed.get(&1).map(|(_, r)| r.as_str()), Some(*code), "case {i}: {text}");
        assert!(matches!(d.frames[&1].last(), Some(Frame::Fatal(m)) if m.starts_with(code)));
        d.mutate(2, 0, "counters:increment", args([("name", "c".into())]));
        assert!(d.responses(2)[0].1.is_ok(), "case {i}: the other session must keep being served");
    }
}

#[test]
fn bad_calls_fail_the_call_and_keep_the_session() {
    let mut d = Driver::new(true);
    d.connect(1);
    let cases = [
        (r#"{"type":"Mutation","requestId":0,"udfPath":"nope:nope","args":[{}]}"#, None),
        (r#"{"type":"Mutation","requestId":1,"udfPath":"counters:get","args":[{"name":"c"}]}"#, None),
        (
            r#"{"type":"Mutation","requestId":2,"udfPath":"counters:increment","args":{"name":"c"}}"#,
            Some("InvalidArguments"),
        ),
        (
            r#"{"type":"Mutation","requestId":3,"udfPath":"counters:increment","args":[{"name":"c"},{}]}"#,
            Some("InvalidArguments"),
        ),
        (
            r#"{"type":"Mutation","requestId":4,"udfPath":"counters:increment","args":[{"name":"c","by":{"$integer":"AQ=="}}]}"#,
            Some("InvalidArguments"),
        ),
        (
            r#"{"type":"Mutation","requestId":5,"udfPath":"counters:increment","args":[{"name":"c","by":{"$float":"AAAAAAAA8D8="}}]}"#,
            Some("InvalidArguments"),
        ),
        (
            r#"{"type":"Mutation","requestId":6,"udfPath":"counters:increment","args":[{"name":"c","by":1}]}"#,
            Some("InvalidArguments"),
        ),
        (
            r#"{"type":"Mutation","requestId":7,"udfPath":"messages:send","args":[{"channel":"c","author":"a","body":"   "}]}"#,
            Some("EmptyMessage"),
        ),
    ];
    for (text, _) in &cases {
        d.send_text(1, text);
    }
    let responses = d.responses(1);
    assert_eq!(responses.len(), cases.len());
    for ((text, code), (_, outcome)) in cases.iter().zip(&responses) {
        let Err(failure) = outcome else { panic!("{text} should fail") };
        let got = failure.data.as_ref().and_then(|d| d.as_object()).map(|o| o["code"].clone());
        assert_eq!(got, code.map(Value::from), "{text}: {failure:?}");
    }
    assert!(d.closed.is_empty());
    d.subscribe(1, 0, 0, "nope:nope", args([]));
    let t = d.transitions(1);
    assert!(matches!(t.last().unwrap().modifications[0], Modification::Failed { .. }));
    d.mutate(1, 8, "counters:increment", args([("name", "c".into())]));
    assert!(d.responses(1)[8].1.is_ok());
}

#[test]
fn oversize_arguments_and_documents_are_user_errors() {
    let mut d = Driver::new(true);
    d.connect(1);
    let big = "x".repeat(wire::MAX_ARGS_BYTES + 1);
    d.mutate(1, 0, "documents:create", args([("title", "t".into()), ("content", big.into())]));
    let doc = "x".repeat(crate::txn::MAX_DOCUMENT_BYTES + 1);
    d.mutate(1, 1, "documents:create", args([("title", "t".into()), ("content", doc.into())]));
    for (_, outcome) in d.responses(1) {
        let code = outcome.unwrap_err().data.unwrap().as_object().unwrap()["code"].clone();
        assert_eq!(code, Value::from("TooLarge"));
    }
}

#[test]
fn max_observed_timestamp_moves_the_clock_or_is_refused() {
    let mut d = Driver::new(true);
    d.input(Input::Open { conn: 1 });
    let behind_wall_clock = d.now - 1_000_000;
    d.send(
        1,
        ClientMessage::Connect {
            session_id: WireSessionId::new(uuid_from(1)),
            connection_count: 1,
            last_close_reason: "x".into(),
            max_observed_timestamp: Some(convex_sync_types::Timestamp::try_from(behind_wall_clock).unwrap()),
            client_ts: None,
        },
    );
    assert!(d.closed.is_empty());
    d.subscribe(1, 0, 0, "counters:get", args([("name", "c".into())]));
    assert!(d.transitions(1)[0].end.ts >= behind_wall_clock);
    d.input(Input::Open { conn: 2 });
    d.send(
        2,
        ClientMessage::Connect {
            session_id: WireSessionId::new(uuid_from(2)),
            connection_count: 1,
            last_close_reason: "x".into(),
            max_observed_timestamp: Some(convex_sync_types::Timestamp::try_from(d.now + 3_600_000_000_000).unwrap()),
            client_ts: None,
        },
    );
    assert_eq!(d.closed.get(&2).map(|(_, r)| r.as_str()), Some("MaxObservedTimestampAhead"));
}

// header {"alg":"none"}, payload {"sub":"alice"}: a token nobody signed.
const UNSIGNED_ALICE: &str = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.";

fn identity(subject: &str) -> Identity {
    Identity {
        subject: subject.into(),
        issuer: "https://issuer.test".into(),
        name: Some(subject.to_uppercase().into()),
    }
}

impl Driver {
    fn authenticate(&mut self, conn: ConnId, base_version: u32, who: Option<&str>) {
        self.input(Input::Authenticated { conn, base_version, outcome: Ok(who.map(identity)) });
    }

    pub(super) fn call(&mut self, id: CallId, route: Option<Kind>, path: &str, args: Value, caller: Option<&str>) {
        self.input(Input::Call(Box::new(Call { id, route, path: path.into(), args, caller: caller.map(identity) })));
    }
}

#[test]
fn identity_changes_bump_the_version_and_rerun_queries() {
    let mut d = Driver::new(true);
    d.connect(1);
    d.subscribe(1, 0, 0, "counters:get", args([("name", "c".into())]));
    d.authenticate(1, 0, Some("alice"));
    let t = d.transitions(1);
    assert_eq!(t.last().unwrap().end.identity, 1);
    assert_eq!(d.core.sessions[&1].caller.as_ref().map(|c| &*c.subject), Some("alice"));
    d.input(Input::Authenticated { conn: 1, base_version: 1, outcome: Err("token refused: expired".into()) });
    assert!(matches!(d.frames[&1].last(), Some(Frame::AuthError { message, .. }) if message.contains("expired")));
    assert!(d.closed.contains_key(&1));
}

#[test]
fn a_raw_user_token_is_refused_by_the_core_which_holds_no_keys() {
    // The shell verifies tokens (and under `accept-any-token` believes them:
    // `auth::tests::only_the_faulty_verifier_believes_an_unsigned_token`).
    let authenticate =
        format!(r#"{{"type":"Authenticate","baseVersion":0,"tokenType":"User","value":"{UNSIGNED_ALICE}"}}"#);
    let mut d = Driver::new(true);
    d.connect(1);
    d.send_text(1, &authenticate);
    assert!(matches!(d.frames[&1].last(), Some(Frame::AuthError { .. })));
    assert_eq!(d.core.sessions.get(&1).and_then(|s| s.caller.clone()), None);
}

#[test]
fn identity_reaches_functions_and_a_new_identity_reruns_the_queries_that_read_it() {
    let mut d = Driver::new(true);
    d.connect(1);
    d.mutate(1, 0, "notifications:send", args([("user", "alice".into()), ("title", "for alice".into())]));
    d.subscribe(1, 0, 0, "notifications:mine", args([]));
    d.subscribe(1, 1, 1, "users:me", args([]));
    assert_eq!(d.latest(1, 1), Some(Value::Null));
    let count = |v: Option<Value>| match v {
        Some(Value::Object(o)) => o.get("count").cloned(),
        _ => None,
    };
    assert_eq!(count(d.latest(1, 0)), Some(Value::Float64(0.0)));
    d.mutate(1, 1, "messages:sendAsMe", args([("channel", "c".into()), ("body", "hi".into())]));
    let failed = d.responses(1).into_iter().find(|(id, _)| *id == 1).unwrap().1.unwrap_err();
    assert!(failed.data.unwrap().to_string().contains("Unauthenticated"));
    d.authenticate(1, 0, Some("alice"));
    let confirming = d.transitions(1).into_iter().find(|t| t.end.identity == 1).unwrap();
    assert_eq!(confirming.modifications.len(), 2, "both identity-dependent queries re-ran: {confirming:?}");
    assert_eq!(count(d.latest(1, 0)), Some(Value::Float64(1.0)));
    let Some(Value::Object(me)) = d.latest(1, 1) else { panic!("users:me is an object once signed in") };
    assert_eq!(me.get("tokenIdentifier"), Some(&Value::from("https://issuer.test|alice")));
    d.mutate(1, 2, "messages:sendAsMe", args([("channel", "c".into()), ("body", "hi".into())]));
    assert!(d.responses(1).into_iter().find(|(id, _)| *id == 2).unwrap().1.is_ok());
    // Another session subscribed to the same query as someone else shares nothing with it.
    d.connect(2);
    d.authenticate(2, 0, Some("bob"));
    d.subscribe(2, 0, 0, "notifications:mine", args([]));
    assert_eq!(count(d.latest(2, 0)), Some(Value::Float64(0.0)));
}

#[test]
fn stale_identity_queries_and_ignore_identity_faults_break_what_they_say() {
    for fault in [Fault::StaleIdentityQueries, Fault::IgnoreIdentity] {
        let mut d = Driver::with_config(true, Config { faults: [fault].into(), ..Config::standard() });
        d.connect(1);
        d.subscribe(1, 0, 0, "users:me", args([]));
        d.authenticate(1, 0, Some("alice"));
        assert_eq!(d.latest(1, 0), Some(Value::Null), "{fault:?}: users:me stayed null");
    }
}

#[test]
fn transitions_carry_the_current_time_not_the_last_commit() {
    let mut d = Driver::new(true);
    d.connect(1);
    d.subscribe(1, 0, 0, "counters:get", args([("name", "c".into())]));
    let first = d.transitions(1)[0].end.ts;
    assert!(first >= T0, "the first transition carries the clock ({first}), not 0");
    d.now += 5_000_000_000;
    d.subscribe(1, 1, 1, "counters:get", args([("name", "d".into())]));
    let later = d.transitions(1).last().unwrap().end.ts;
    assert!(later >= first + 5_000_000_000, "idle, ts follows the clock: {first} then {later}");
    // A commit after that lands after every ts a transition carried.
    d.mutate(1, 0, "counters:increment", args([("name", "c".into())]));
    let (_, outcome) = d.responses(1).pop().unwrap();
    assert!(outcome.unwrap().1 > later);

    let mut d = Driver::with_config(true, Config { faults: [Fault::CommitTsOnly].into(), ..Config::standard() });
    d.connect(1);
    d.subscribe(1, 0, 0, "counters:get", args([("name", "c".into())]));
    assert_eq!(d.transitions(1)[0].end.ts, 0, "the fault stamps the last commit's ts");
}

#[test]
fn http_calls_run_queries_and_commit_mutations_that_subscribers_see() {
    let mut d = Driver::new(true);
    d.connect(1);
    d.subscribe(1, 0, 0, "counters:get", args([("name", "c".into())]));
    d.call(1, Some(Kind::Mutation), "counters:increment", args([("name", "c".into())]), None);
    assert_eq!(d.replies[&1], Ok(Value::Int64(1)));
    assert_eq!(d.latest(1, 0), Some(Value::Int64(1)), "the socket subscriber saw the HTTP write");
    d.call(2, Some(Kind::Query), "counters:get", args([("name", "c".into())]), None);
    assert_eq!(d.replies[&2], Ok(Value::Int64(1)));
    d.call(3, Some(Kind::Query), "counters:increment", args([("name", "c".into())]), None);
    assert!(d.replies[&3].as_ref().unwrap_err().message.contains("no query"));
    d.call(4, None, "users:me", args([]), Some("carol"));
    assert!(matches!(&d.replies[&4], Ok(Value::Object(o)) if o.get("subject") == Some(&Value::from("carol"))));
    d.call(5, None, "messages:sendAsMe", args([("channel", "c".into()), ("body", "".into())]), Some("carol"));
    assert!(d.replies[&5].as_ref().unwrap_err().data.as_ref().unwrap().to_string().contains("EmptyMessage"));

    let mut d = Driver::with_config(true, Config { faults: [Fault::HttpWritesUnseen].into(), ..Config::standard() });
    d.connect(1);
    d.subscribe(1, 0, 0, "counters:get", args([("name", "c".into())]));
    d.call(1, Some(Kind::Mutation), "counters:increment", args([("name", "c".into())]), None);
    assert_eq!(d.replies[&1], Ok(Value::Int64(1)));
    assert_eq!(d.latest(1, 0), Some(Value::Int64(0)), "under the fault the subscriber never hears of it");
}

// ---- property tests ----

/// One mutation of the OCC property test.
#[derive(Clone, Debug)]
enum Op {
    Increment(&'static str),
    Transfer { from: u8, to: u8, amount: i64 },
    Update { doc: usize, expected: f64 },
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        prop::sample::select(vec!["a", "b"]).prop_map(Op::Increment),
        (0u8..3, 0u8..3, 0i64..60).prop_map(|(from, to, amount)| Op::Transfer { from, to, amount }),
        (0usize..2, 1u8..3).prop_map(|(doc, v)| Op::Update { doc, expected: f64::from(v) }),
    ]
}

fn op_call(op: &Op, doc_ids: &[String]) -> (&'static str, Value) {
    match op {
        Op::Increment(name) => ("counters:increment", args([("name", (*name).into())])),
        Op::Transfer { from, to, amount } => (
            "accounts:transfer",
            args([
                ("bank", "b".into()),
                ("from", f64::from(*from).into()),
                ("to", f64::from(*to).into()),
                ("amount", Value::Int64(*amount)),
            ]),
        ),
        Op::Update { doc, expected } => (
            "documents:update",
            args([
                ("id", doc_ids[*doc].clone().into()),
                ("content", "x".into()),
                ("expectedVersion", (*expected).into()),
            ]),
        ),
    }
}

/// Opens the bank and two documents inline, returning the document ids.
fn setup(d: &mut Driver) -> Vec<String> {
    d.connect(100);
    d.mutate(
        100,
        0,
        "accounts:open",
        args([("bank", "b".into()), ("accounts", 3.0.into()), ("balance", Value::Int64(50))]),
    );
    d.mutate(100, 1, "documents:create", args([("title", "t".into()), ("content", "".into())]));
    d.mutate(100, 2, "documents:create", args([("title", "t".into()), ("content", "".into())]));
    d.drain();
    d.responses(100)[1..].iter().map(|(_, r)| r.as_ref().unwrap().0.as_str().unwrap().to_owned()).collect()
}

/// What a serial run of `calls` returns, one at a time, inline.
fn serial_results(calls: &[(&'static str, Value)]) -> Vec<Result<Value, Failure>> {
    let mut d = Driver::new(true);
    setup(&mut d);
    d.connect(1);
    for (i, (path, a)) in calls.iter().enumerate() {
        d.mutate(1, i as u32, path, a.clone());
    }
    d.responses(1).into_iter().map(|(_, r)| r.map(|(v, _)| v)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any interleaving of execute and commit steps yields, for every
    /// committed mutation, the result the serial execution in commit order
    /// gives, and the same final state.
    #[test]
    fn occ_is_serializable_in_commit_order(
        ops in prop::collection::vec((0u64..3, arb_op()), 1..12),
        schedule in prop::collection::vec(0usize..1000, 0..80),
    ) {
        if let Err(violation) = check_serializable(Config::standard(), &ops, &schedule) {
            prop_assert!(false, "{}", violation);
        }
    }

    /// Arbitrary frames never panic the core; every answer encodes to a
    /// frame `convex_sync_types` reads; other sessions keep being served.
    #[test]
    fn arbitrary_frames_get_well_formed_answers(frames in prop::collection::vec(arb_frame(), 1..12)) {
        let mut d = Driver::new(true);
        d.connect(1);
        d.connect(2);
        for text in &frames {
            d.send_text(1, text);
        }
        for frame in d.frames.get(&1).into_iter().flatten() {
            let text = frame.encode(T0);
            prop_assert!(wire::parse_server_message(&text).is_ok(), "unreadable frame {}", text);
        }
        if d.frames.get(&1).into_iter().flatten().any(|f| matches!(f, Frame::Fatal(_))) {
            prop_assert!(d.closed.contains_key(&1), "a FatalError must be followed by a close");
        }
        d.mutate(2, 0, "counters:increment", args([("name", "c".into())]));
        prop_assert!(d.responses(2)[0].1.is_ok());
    }
}

/// Runs `ops` (connection, op) under the interleaving `schedule` and checks
/// every committed result and the final state against a serial run in
/// commit-ts order.
fn check_serializable(config: Config, ops: &[(u64, Op)], schedule: &[usize]) -> Result<(), String> {
    let mut d = Driver::with_config(false, config);
    let doc_ids = setup(&mut d);
    for c in 1..=3 {
        d.connect(c);
    }
    let mut calls = BTreeMap::new();
    for (i, (conn, op)) in ops.iter().enumerate() {
        let (path, a) = op_call(op, &doc_ids);
        calls.insert((conn + 1, i as u32), (path, a.clone()));
        d.mutate(conn + 1, i as u32, path, a);
    }
    // Interleave: each choice runs a job or reports an execution.
    for &choice in schedule {
        let (jobs, done) = (d.jobs.len(), d.done.len());
        if jobs + done == 0 {
            break;
        }
        let pick = choice % (jobs + done);
        if pick < jobs {
            d.run_job(pick)
        } else {
            d.report(pick - jobs)
        }
    }
    d.drain();
    let mut committed: Vec<(Ts, (&'static str, Value), Value)> = Vec::new();
    for conn in 1..=3u64 {
        for (request_id, outcome) in d.responses(conn) {
            if let Ok((value, ts)) = outcome {
                committed.push((ts, calls[&(conn, request_id)].clone(), value));
            }
        }
    }
    committed.sort_by_key(|(ts, _, _)| *ts);
    let serial_calls: Vec<_> = committed.iter().map(|(_, c, _)| c.clone()).collect();
    let serial = serial_results(&serial_calls);
    for ((ts, call, value), expected) in committed.iter().zip(&serial) {
        if Ok(value.clone()) != *expected {
            return Err(format!(
                "{call:?} committed at ts {ts} returned {value}, the serial run returned {expected:?}"
            ));
        }
    }
    let mut s = Driver::new(true);
    setup(&mut s);
    s.connect(1);
    for (i, (path, a)) in serial_calls.iter().enumerate() {
        s.mutate(1, i as u32, path, a.clone());
    }
    let state = |core: &Core| -> Vec<Value> {
        let head = core.head();
        head.scan(IndexId::CountersByName, &[])
            .chain(head.scan(IndexId::AccountsByBank, &[]))
            .map(|doc| Value::Object(Object::clone(&doc.fields)))
            .collect()
    };
    if state(&d.core) != state(&s.core) {
        return Err(format!("final state {:?} differs from the serial run's {:?}", state(&d.core), state(&s.core)));
    }
    Ok(())
}

#[test]
fn skipping_occ_validation_is_caught_as_a_lost_update() {
    // Two increments execute at one snapshot, then both commit.
    let ops = [(0, Op::Increment("a")), (1, Op::Increment("a"))];
    let schedule = [0, 0, 0, 0];
    assert_eq!(check_serializable(Config::standard(), &ops, &schedule), Ok(()));
    let mut faulty = Config::standard();
    faulty.faults.insert(Fault::SkipOccValidation);
    let violation = check_serializable(faulty, &ops, &schedule).unwrap_err();
    assert!(violation.contains("counters:increment"), "{violation}");
}

fn arb_frame() -> impl Strategy<Value = String> {
    let path = prop::sample::select(vec![
        "counters:increment",
        "counters:get",
        "messages:send",
        "messages:list",
        "values:echo",
        "nope:x",
        "accounts:transfer",
    ]);
    let json_value = prop_oneof![
        Just("1".to_owned()),
        Just("null".to_owned()),
        Just(r#"{"name":"c"}"#.to_owned()),
        Just(r#"{"$integer":"AQ=="}"#.to_owned()),
        Just(r#"{"$float":"AAAAAAAA8D8="}"#.to_owned()),
        Just(r#"{"value":{"$bytes":"AAE="}}"#.to_owned()),
        "[a-z]{0,5}".prop_map(|s| format!("{s:?}")),
    ];
    prop_oneof![
        any::<String>(),
        (any::<u32>(), path.clone(), prop::collection::vec(json_value.clone(), 0..3))
            .prop_map(|(id, p, a)| format!(r#"{{"type":"Mutation","requestId":{id},"udfPath":"{p}","args":[{}]}}"#, a.join(","))),
        (0u32..3, 0u32..4, 0u32..3, path, json_value.clone()).prop_map(|(b, n, q, p, a)| format!(
            r#"{{"type":"ModifyQuerySet","baseVersion":{b},"newVersion":{n},"modifications":[{{"type":"Add","queryId":{q},"udfPath":"{p}","args":[{a}]}}]}}"#
        )),
        (0u32..3, 0u32..4, 0u32..3).prop_map(|(b, n, q)| format!(
            r#"{{"type":"ModifyQuerySet","baseVersion":{b},"newVersion":{n},"modifications":[{{"type":"Remove","queryId":{q}}}]}}"#
        )),
        (0u32..2, "[a-zA-Z0-9.]{0,20}").prop_map(|(b, v)| format!(
            r#"{{"type":"Authenticate","baseVersion":{b},"tokenType":"User","value":"{v}"}}"#
        )),
        Just(r#"{"type":"Connect","sessionId":"00000000-0000-0000-0000-000000000009","connectionCount":0}"#.to_owned()),
        Just(r#"{"type":"Event","eventType":"x","event":{}}"#.to_owned()),
        json_value.prop_map(|a| format!(r#"{{"type":"Action","requestId":1,"udfPath":"a:b","args":[{a}]}}"#)),
    ]
}

/// Two withdrawals of 150 from the two accounts of a pair holding 100 each,
/// executed at one snapshot: serializable, the second conflicts, re-runs and
/// is refused; under snapshot isolation both commit and the pair is overdrawn.
fn joint_withdrawals(config: Config) -> (Vec<Result<(Value, Ts), Failure>>, u64) {
    let mut d = Driver::with_config(false, config);
    d.connect(1);
    d.connect(2);
    let open = args([("bank", "b".into()), ("accounts", 2.0.into()), ("balance", Value::Int64(100))]);
    d.mutate(1, 0, "accounts:open", open);
    d.drain();
    for (conn, account, partner) in [(1, 0.0, 1.0), (2, 1.0, 0.0)] {
        let withdraw = args([
            ("bank", "b".into()),
            ("account", account.into()),
            ("partner", partner.into()),
            ("amount", Value::Int64(150)),
        ]);
        d.mutate(conn, 1, "accounts:withdrawJoint", withdraw);
    }
    d.run_job(0);
    d.run_job(0);
    d.report(0);
    d.report(0);
    d.drain();
    let outcomes = [1, 2].iter().map(|&c| d.responses(c).into_iter().find(|(r, _)| *r == 1).unwrap().1).collect();
    (outcomes, d.core.stats().conflicts)
}

#[test]
fn joint_withdrawals_serialize_and_snapshot_isolation_lets_write_skew_through() {
    let (outcomes, conflicts) = joint_withdrawals(Config::standard());
    assert_eq!(conflicts, 1, "the second withdrawal read what the first wrote");
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1, "{outcomes:?}");
    let refused = outcomes.iter().find_map(|o| o.as_ref().err()).unwrap();
    assert!(refused.data.as_ref().unwrap().to_string().contains("InsufficientFunds"), "{refused:?}");

    let skewed = Config { faults: [Fault::SnapshotIsolation].into(), ..Config::standard() };
    let (outcomes, conflicts) = joint_withdrawals(skewed);
    assert_eq!(conflicts, 0, "no document was written twice");
    assert!(outcomes.iter().all(Result::is_ok), "both withdrawals commit: {outcomes:?}");
}
