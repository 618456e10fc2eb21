//! The `core` target: the reference server's sans-IO core driven through
//! its inputs by a shell that plays three fuzzed connections, the executor
//! and the clock, beside a bystander that behaves.
//!
//! The bytes are read as a script of operations, each one byte of opcode
//! and the fields it reads after it (`Bytes` reads zeros once the input is
//! spent): open or close a connection, send it a frame (well-formed ones
//! written by `wire`'s client writers with fuzzed fields, or any text,
//! parsed as `connection.rs` parses it into a `Message` or a `BadFrame`, or
//! a binary frame), call a function over HTTP, run a dispatched job or
//! report a finished one, deliver a transition, tick, wake the core at a
//! time it asked for, or let time pass. The shell does only what the tokio
//! shell does: fresh connection ids, each job executed and reported once,
//! `Delivered` only for a transition sent, `Wake` only at or after a time
//! the core asked for, time that never goes back.
//!
//! Properties: nothing panics; every frame the core sends encodes to text
//! both server-frame readers accept; every connection's transitions chain
//! from the initial version; a `FatalError` is followed by a close; once
//! the script ends and the core settles (every job run, every time it asked
//! for reached), every HTTP call has had one reply and every connection
//! still open one response per mutation and per action it sent; and the
//! bystander (connect, subscribe to a counter, increment it at the end) is
//! never sent a `FatalError`, and gets its `MutationResponse` with the value
//! it was last shown plus one, then a transition showing it. The script's
//! clients may use the bystander's counter too, but not its session: the
//! session id is a client's secret, so no operation writes the bystander's.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use syncspec_protocol::catalogue::{ArgType, Function, Kind};
use syncspec_protocol::convex_sync_types::ClientMessage;
use syncspec_protocol::json;
use syncspec_protocol::value::{Object, Value};
use syncspec_protocol::wire::{self, AuthToken, Connect, Modification, QuerySetChange, Ts, Version};
use syncspec_server::auth::{Identity, Verifier};
use syncspec_server::core::{self, Call, CallId, Config, Core, Executed, Frame, Input, Job, Output};

/// A connection id, as the shell chooses them.
type ConnId = u64;

/// The clock's start: any instant will do.
pub const T0: Ts = 1_760_000_000_000_000_000;
/// How many connections the script plays at once.
const SLOTS: usize = 3;
/// The most operations one input runs.
const MAX_OPS: usize = 256;
/// The bystander's connection, session and counter.
const BYSTANDER: ConnId = 1 << 40;
const BYSTANDER_SESSION: &str = "b7572a4d-0b55-4d59-8f0e-5e1ab5a7e9c1";
const BYSTANDER_COUNTER: &str = "bystander";
/// The sessions the script's connections connect as: shared between its
/// connections, so a reconnect can replay a mutation under its session.
pub const SESSIONS: [&str; 4] = [
    "00000000-0000-4000-8000-000000000001",
    "00000000-0000-4000-8000-000000000002",
    "6f9619ff-8b86-4011-b42d-00c04fc964ff",
    "00000000-0000-0000-0000-000000000000",
];
/// Strings the script's arguments draw on besides fuzzed ones: names the
/// catalogue's tables share, and the bystander's counter.
const WORDS: [&str; 10] =
    ["", "c", "general", "ada", "room", "bank", BYSTANDER_COUNTER, "a b c ", "\u{0}", "\u{1f600}"];

/// The operations, by opcode (the byte modulo their count).
pub mod op {
    pub const OPEN: u8 = 0;
    pub const CLOSE: u8 = 1;
    pub const CONNECT: u8 = 2;
    pub const MODIFY_QUERY_SET: u8 = 3;
    pub const MUTATION: u8 = 4;
    pub const ACTION: u8 = 5;
    pub const AUTHENTICATE: u8 = 6;
    pub const TEXT: u8 = 7;
    pub const EVENT: u8 = 8;
    pub const BINARY: u8 = 9;
    pub const CALL: u8 = 10;
    pub const RUN_JOB: u8 = 11;
    pub const REPORT: u8 = 12;
    pub const RUN_ALL: u8 = 13;
    pub const DELIVER: u8 = 14;
    pub const TICK: u8 = 15;
    pub const WAKE: u8 = 16;
    pub const PASS: u8 = 17;
    pub const COUNT: u8 = 18;
}

/// Drives the standard core with `data`; panics on a broken property.
pub fn run(data: &[u8]) {
    run_with(data, Config::standard());
}

/// `run` with a core of `config` (a fault makes the negative control).
pub fn run_with(data: &[u8], config: Config) {
    let mut shell = Shell::new(config);
    shell.bystander_joins();
    let mut bytes = Bytes(data);
    for _ in 0..MAX_OPS {
        if bytes.0.is_empty() {
            break;
        }
        shell.step(&mut bytes);
    }
    shell.settle(8 * data.len() + 10_000);
    shell.bystander_increments();
    shell.check_answers();
}

/// The fuzzer's bytes, read front to back; zeros once they run out.
#[derive(Debug)]
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn byte(&mut self) -> u8 {
        let Some((&first, rest)) = self.0.split_first() else { return 0 };
        self.0 = rest;
        first
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    fn u32(&mut self) -> u32 {
        u32::from(self.u16()) | u32::from(self.u16()) << 16
    }

    fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | u64::from(self.u32()) << 32
    }

    /// A coin toss.
    fn coin(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    /// A number below `n` (which is at least 1).
    fn below(&mut self, n: usize) -> usize {
        if n <= 256 {
            usize::from(self.byte()) % n
        } else {
            usize::from(self.u16()) % n
        }
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        taken
    }
}

/// One of the script's connections, as its client sees it.
#[derive(Debug, Default)]
struct Slot {
    conn: Option<ConnId>,
    /// The next `ModifyQuerySet` base and `Authenticate` base a client
    /// that follows the protocol would send.
    query_set: u32,
    identity: u32,
    next_request: u32,
}

/// What one connection was sent and sent, for the properties.
#[derive(Debug, Default)]
struct View {
    /// The end of the last transition, where the next must start.
    end: Version,
    /// Transitions sent and not yet reported delivered.
    undelivered: usize,
    fatal: Option<String>,
    /// The core closed it, or the client did.
    closed: bool,
    mutations: usize,
    mutation_responses: usize,
    actions: usize,
    action_responses: usize,
    /// Every frame, kept for the bystander only.
    frames: Vec<Frame>,
}

/// The shell around the core.
#[derive(Debug)]
struct Shell {
    core: Core,
    now: Ts,
    slots: [Slot; SLOTS],
    next_conn: ConnId,
    views: BTreeMap<ConnId, View>,
    /// Jobs dispatched and not yet executed.
    jobs: Vec<Job>,
    /// Executions finished and not yet reported.
    done: Vec<Executed>,
    /// Times the core asked to be woken at, not yet reached.
    wakes: BTreeSet<Ts>,
    next_call: CallId,
    /// HTTP calls not yet answered.
    calls: BTreeSet<CallId>,
    /// Strings the core handed out (ids, cursors), for arguments to name.
    handed_out: Vec<String>,
}

impl Shell {
    fn new(config: Config) -> Shell {
        Shell {
            core: Core::new(config),
            now: T0,
            slots: Default::default(),
            next_conn: 1,
            views: BTreeMap::new(),
            jobs: Vec::new(),
            done: Vec::new(),
            wakes: BTreeSet::new(),
            next_call: 1,
            calls: BTreeSet::new(),
            handed_out: Vec::new(),
        }
    }

    /// Feeds one input and what it leads to within the step: `Closed` for
    /// a connection the core closed, `Delivered` for the bystander's
    /// transitions (it reads its socket at once).
    fn input(&mut self, input: Input) {
        self.now += 1_000;
        let mut queue = VecDeque::from([input]);
        while let Some(input) = queue.pop_front() {
            let mut out = Vec::new();
            self.core.handle(self.now, input, &mut out);
            for output in out {
                self.output(output, &mut queue);
            }
        }
    }

    fn output(&mut self, output: Output, queue: &mut VecDeque<Input>) {
        match output {
            Output::Send { conn, frame } => self.sent(conn, frame, queue),
            Output::Close { conn, code, reason } => {
                let view = self.views.entry(conn).or_default();
                assert!(conn != BYSTANDER, "the bystander was closed with {code} {reason}");
                if !view.closed {
                    view.closed = true;
                    queue.push_back(Input::Closed { conn });
                }
                for slot in &mut self.slots {
                    if slot.conn == Some(conn) {
                        *slot = Slot::default();
                    }
                }
            }
            Output::Execute(job) => self.jobs.push(job),
            Output::Wake { at } => {
                self.wakes.insert(at);
            }
            Output::Reply { call, outcome } => {
                assert!(self.calls.remove(&call), "HTTP call {call} answered twice, or never made");
                if let Ok(value) = outcome {
                    self.harvest(&value);
                }
            }
        }
    }

    /// Checks one frame the core sent, as a client would read it.
    fn sent(&mut self, conn: ConnId, frame: Frame, queue: &mut VecDeque<Input>) {
        let text = frame.encode(self.now);
        if let Err(e) = wire::parse_server_message(&text) {
            panic!("the core sent connection {conn} a frame clients cannot read ({e}): {text}");
        }
        if let Err(e) = wire::peek(&text) {
            panic!("the core sent connection {conn} a frame `peek` cannot read ({e}): {text}");
        }
        let mut harvested = Vec::new();
        let view = self.views.entry(conn).or_default();
        match &frame {
            Frame::Transition(t, _) => {
                assert_eq!(t.start, view.end, "connection {conn}'s transitions do not chain: {text}");
                assert!(t.end.ts >= t.start.ts, "connection {conn} sent a transition back in time: {text}");
                view.end = t.end;
                view.undelivered += 1;
                for m in &t.modifications {
                    if let Modification::Updated { value, .. } = m {
                        harvested.push(json::decode_str(value).expect("the core's own encoding decodes"));
                    }
                }
            }
            Frame::MutationResponse { outcome, .. } => {
                view.mutation_responses += 1;
                if let Ok((value, _)) = outcome {
                    harvested.push(value.clone());
                }
            }
            Frame::ActionResponse { outcome, .. } => {
                view.action_responses += 1;
                if let Ok(value) = outcome {
                    harvested.push(value.clone());
                }
            }
            Frame::Fatal(message) => view.fatal = Some(message.clone()),
            Frame::AuthError { .. } | Frame::Ping => {}
        }
        if conn == BYSTANDER {
            if let Frame::Fatal(message) = &frame {
                panic!("the bystander was sent a FatalError: {message}");
            }
            if matches!(frame, Frame::Transition(..)) {
                view.undelivered -= 1;
                queue.push_back(Input::Delivered { conn });
            }
            view.frames.push(frame);
        }
        for value in &harvested {
            self.harvest(value);
        }
    }

    /// Keeps the ids and cursors in `value`, for later arguments to name.
    fn harvest(&mut self, value: &Value) {
        match value {
            Value::String(s) if s.len() <= 64 && self.handed_out.len() < 64 && !self.handed_out.contains(s) => {
                self.handed_out.push(s.clone());
            }
            Value::Array(items) => items.iter().take(8).for_each(|v| self.harvest(v)),
            Value::Object(fields) => fields.values().take(8).for_each(|v| self.harvest(v)),
            _ => {}
        }
    }

    /// Sends `text` as a connection's socket reader would pass it on.
    fn text(&mut self, conn: ConnId, text: &str) {
        let input = match wire::parse_client_message(text) {
            Ok(ClientMessage::Authenticate { base_version, token }) => {
                Input::Authenticated { conn, base_version, outcome: Verifier::none().identity(&token) }
            }
            Ok(message) => self.message(conn, message),
            Err(e) => Input::BadFrame { conn, code: e.code(), detail: e.to_string() },
        };
        self.input(input);
    }

    /// A message for the core, counted as the client's request.
    fn message(&mut self, conn: ConnId, message: ClientMessage) -> Input {
        let view = self.views.entry(conn).or_default();
        match message {
            ClientMessage::Mutation { .. } => view.mutations += 1,
            ClientMessage::Action { .. } => view.actions += 1,
            _ => {}
        }
        Input::Message { conn, message: message.into() }
    }

    /// Sends a frame a writer of `wire` wrote to `conn`, if the slot it
    /// was written for is open: as a message, straight to the core (an
    /// `Authenticate` too), or as a `BadFrame` when a fuzzed field (a path
    /// that names no module, say) makes the frame one the parser refuses.
    fn written(&mut self, conn: Option<ConnId>, text: &str) {
        let Some(conn) = conn else { return };
        let input = match wire::parse_client_message(text) {
            Ok(message) => self.message(conn, message),
            Err(e) => Input::BadFrame { conn, code: e.code(), detail: e.to_string() },
        };
        self.input(input);
    }

    fn bystander_joins(&mut self) {
        self.input(Input::Open { conn: BYSTANDER });
        let connect = Connect {
            session_id: BYSTANDER_SESSION,
            connection_count: 0,
            last_close_reason: "InitialConnect",
            max_observed_timestamp: None,
            client_ts: None,
        };
        self.written(Some(BYSTANDER), &wire::write_connect(&connect));
        let args = Value::object([("name", Value::from(BYSTANDER_COUNTER))]);
        let add = QuerySetChange::Add { query_id: 0, udf_path: "counters:get", args: &args, journal: None };
        self.written(Some(BYSTANDER), &wire::write_modify_query_set(0, 1, &[add]));
    }

    /// The bystander's increment, once everything else has settled: its
    /// response, the value it was last shown plus one (others may have
    /// incremented its counter, but nothing runs beside it now), then a
    /// transition showing that value. A counter the script's clients took
    /// to the top of int64 may refuse it, as it would anyone.
    fn bystander_increments(&mut self) {
        let shown = |frames: &[Frame]| {
            frames.iter().rev().find_map(|f| match f {
                Frame::Transition(t, _) => t.modifications.iter().find_map(|m| match m {
                    Modification::Updated { query_id: 0, value, .. } => json::decode_str(value).ok(),
                    _ => None,
                }),
                _ => None,
            })
        };
        let before = self.views[&BYSTANDER].frames.len();
        let Some(Value::Int64(last)) = shown(&self.views[&BYSTANDER].frames) else {
            panic!("the bystander was never shown its counter: {:?}", self.views[&BYSTANDER].frames)
        };
        let args = Value::object([("name", Value::from(BYSTANDER_COUNTER))]);
        self.written(Some(BYSTANDER), &wire::write_mutation(0, "counters:increment", &args));
        self.settle(10_000);
        let frames = &self.views[&BYSTANDER].frames[before..];
        let Some(answer) = frames.iter().position(|f| matches!(f, Frame::MutationResponse { request_id: 0, .. }))
        else {
            panic!("the bystander's increment was never answered; it was sent {frames:?}")
        };
        let Some(expected) = last.checked_add(1) else { return };
        let Frame::MutationResponse { outcome: Ok((value, ts)), .. } = &frames[answer] else {
            panic!("the bystander's increment of {last} failed: {:?}", frames[answer])
        };
        assert_eq!(value, &Value::Int64(expected), "the bystander's increment of {last}");
        let covered = frames[answer..].iter().any(|f| matches!(f, Frame::Transition(t, _) if t.end.ts >= *ts));
        assert!(covered, "no transition reached the bystander's commit at {ts}: {frames:?}");
        assert_eq!(shown(frames), Some(value.clone()), "the bystander was not shown its increment: {frames:?}");
    }

    /// Runs every job and reaches every time the core asked for, until it
    /// asks for nothing more or `budget` inputs have gone.
    fn settle(&mut self, budget: usize) {
        for _ in 0..budget {
            if let Some(job) = self.jobs.pop() {
                self.done.push(core::execute(&job));
            } else if let Some(executed) = self.done.pop() {
                self.input(Input::Executed(executed));
            } else if let Some(at) = self.wakes.pop_first() {
                self.now = self.now.max(at);
                self.input(Input::Wake);
            } else {
                return;
            }
        }
        panic!("the core did not settle in {budget} steps: {} jobs, {} wakes", self.jobs.len(), self.wakes.len());
    }

    /// Once settled: every HTTP call answered, every open connection's
    /// requests answered, every `FatalError` followed by a close.
    fn check_answers(&self) {
        assert!(self.calls.is_empty(), "HTTP calls {:?} were never answered", self.calls);
        for (conn, view) in &self.views {
            if let Some(message) = &view.fatal {
                assert!(view.closed, "connection {conn} was sent FatalError {message:?} and not closed");
            }
            if view.closed {
                continue;
            }
            assert_eq!(view.mutations, view.mutation_responses, "connection {conn}'s mutations and their responses");
            assert_eq!(view.actions, view.action_responses, "connection {conn}'s actions and their responses");
        }
    }

    /// Reads one operation from `b` and carries it out. An operation reads
    /// the same fields whatever the state (a frame for a closed slot is
    /// written and dropped), so a mutation of one operation's bytes leaves
    /// the rest of the script as it was.
    fn step(&mut self, b: &mut Bytes<'_>) {
        let opcode = b.byte() % op::COUNT;
        let slot = b.below(SLOTS);
        let conn = self.slots[slot].conn;
        match opcode {
            op::OPEN if conn.is_none() => {
                let conn = self.next_conn;
                self.next_conn += 1;
                self.slots[slot] = Slot { conn: Some(conn), ..Slot::default() };
                self.input(Input::Open { conn });
            }
            op::CLOSE => {
                if let Some(conn) = conn {
                    self.slots[slot] = Slot::default();
                    self.views.entry(conn).or_default().closed = true;
                    self.input(Input::Closed { conn });
                }
            }
            op::CONNECT => {
                let text = self.connect(b);
                self.written(conn, &text);
            }
            op::MODIFY_QUERY_SET => {
                let text = self.modify_query_set(slot, b);
                self.written(conn, &text);
            }
            op::MUTATION | op::ACTION => {
                let (kind, write): (_, fn(u32, &str, &Value) -> String) = if opcode == op::MUTATION {
                    (Kind::Mutation, wire::write_mutation)
                } else {
                    (Kind::Action, wire::write_action)
                };
                let request_id = self.request_id(slot, b);
                let (path, args) = self.call(Some(kind), b);
                self.written(conn, &write(request_id, &path, &args));
            }
            op::AUTHENTICATE => self.authenticate(slot, conn, b),
            op::TEXT => {
                let len = usize::from(b.u16());
                let text = String::from_utf8_lossy(b.take(len)).into_owned();
                if let Some(conn) = conn {
                    self.text(conn, &text);
                }
            }
            op::EVENT => {
                let kind = self.string(b);
                let event = self.value(b, 0);
                let mut text = String::from(r#"{"type":"Event","eventType":"#);
                text.push_str(&json::encode(&Value::String(kind)));
                text.push_str(r#","event":"#);
                text.push_str(&json::encode(&event));
                text.push('}');
                if let Some(conn) = conn {
                    self.text(conn, &text);
                }
            }
            op::BINARY => {
                if let Some(conn) = conn {
                    self.input(Input::BadFrame {
                        conn,
                        code: "WSMessageInvalid",
                        detail: "expected text frames, got a binary frame".into(),
                    });
                }
            }
            op::CALL => {
                let route = [None, Some(Kind::Query), Some(Kind::Mutation), Some(Kind::Action)][b.below(4)];
                let (path, args) = self.call(route, b);
                let args = match args {
                    Value::Object(fields) => Value::Object(fields),
                    other => Value::object([("value", other)]),
                };
                let caller = b.coin().then(|| self.identity(b));
                let id = self.next_call;
                self.next_call += 1;
                self.calls.insert(id);
                self.input(Input::Call(Box::new(Call { id, route, path, args, caller })));
            }
            op::RUN_JOB => {
                let index = usize::from(b.u16());
                if !self.jobs.is_empty() {
                    let job = self.jobs.remove(index % self.jobs.len());
                    self.done.push(core::execute(&job));
                }
            }
            op::REPORT => {
                let index = usize::from(b.u16());
                if !self.done.is_empty() {
                    let executed = self.done.remove(index % self.done.len());
                    self.input(Input::Executed(executed));
                }
            }
            op::RUN_ALL => {
                while let Some(job) = self.jobs.pop() {
                    let executed = core::execute(&job);
                    self.input(Input::Executed(executed));
                }
            }
            op::DELIVER => {
                if let Some(conn) = conn {
                    let view = self.views.entry(conn).or_default();
                    if view.undelivered > 0 {
                        view.undelivered -= 1;
                        self.input(Input::Delivered { conn });
                    }
                }
            }
            op::TICK => {
                self.pass(b);
                self.input(Input::Tick);
            }
            op::WAKE => {
                if let Some(at) = self.wakes.pop_first() {
                    self.now = self.now.max(at);
                    self.input(Input::Wake);
                }
            }
            op::PASS => self.pass(b),
            _ => {}
        }
    }

    /// Lets time pass: a millisecond, up to a quarter second, a minute, or
    /// up to seven weeks.
    fn pass(&mut self, b: &mut Bytes<'_>) {
        let ms = match b.below(4) {
            0 => 1,
            1 => u64::from(b.byte()),
            2 => u64::from(b.u16()),
            _ => u64::from(b.u32()),
        };
        self.now += ms * 1_000_000;
    }

    fn connect(&mut self, b: &mut Bytes<'_>) -> String {
        let session_id = SESSIONS[b.below(SESSIONS.len())];
        let served = self.views.values().map(|v| v.end.ts).max().unwrap_or(0);
        let max_observed_timestamp = match b.below(5) {
            0 => None,
            1 => Some(served),
            2 => Some(self.now + u64::from(b.u32())),
            3 => Some(self.now.saturating_sub(u64::from(b.u32()))),
            _ => Some(b.u64()),
        };
        let last_close_reason = self.string(b);
        let connect = Connect {
            session_id,
            connection_count: u32::from(b.byte()),
            last_close_reason: &last_close_reason,
            max_observed_timestamp,
            client_ts: b.coin().then(|| self.now / 1_000_000 + u64::from(b.u16())),
        };
        wire::write_connect(&connect)
    }

    fn modify_query_set(&mut self, slot: usize, b: &mut Bytes<'_>) -> String {
        let (base, new) = if b.below(8) == 0 {
            (u32::from(b.byte() % 4), u32::from(b.byte() % 4))
        } else {
            let base = self.slots[slot].query_set;
            self.slots[slot].query_set = base + 1;
            (base, base + 1)
        };
        let mut adds = Vec::new();
        let mut removes = Vec::new();
        for _ in 0..b.below(4) {
            let query_id = b.below(6) as u32;
            if b.below(3) == 0 {
                removes.push(query_id);
            } else {
                let (path, args) = self.call(Some(Kind::Query), b);
                let journal = (b.below(4) == 0).then(|| self.string(b));
                adds.push((query_id, path, args, journal));
            }
        }
        let mut changes: Vec<QuerySetChange<'_>> = adds
            .iter()
            .map(|(query_id, path, args, journal)| QuerySetChange::Add {
                query_id: *query_id,
                udf_path: path,
                args,
                journal: journal.as_deref(),
            })
            .collect();
        changes.extend(removes.iter().map(|&query_id| QuerySetChange::Remove { query_id }));
        wire::write_modify_query_set(base, new, &changes)
    }

    fn authenticate(&mut self, slot: usize, conn: Option<ConnId>, b: &mut Bytes<'_>) {
        let base = if b.below(8) == 0 {
            u32::from(b.byte() % 4)
        } else {
            let base = self.slots[slot].identity;
            self.slots[slot].identity = base + 1;
            base
        };
        let jwt = self.string(b);
        let token = if b.below(3) == 0 { AuthToken::None } else { AuthToken::User(&jwt) };
        let text = wire::write_authenticate(base, token);
        if b.coin() {
            // Straight to the core, which can only take it as anonymous.
            self.written(conn, &text);
        } else {
            // As the tokio shell sends it: the token checked against keys
            // the core never holds, here whichever outcome the bytes say.
            let outcome = match b.below(3) {
                0 => Ok(None),
                1 => Ok(Some(self.identity(b))),
                _ => Err(self.string(b)),
            };
            if let Some(conn) = conn {
                self.input(Input::Authenticated { conn, base_version: base, outcome });
            }
        }
    }

    /// A request id: usually the next, sometimes the last again (a
    /// replay), sometimes any.
    fn request_id(&mut self, slot: usize, b: &mut Bytes<'_>) -> u32 {
        let next = &mut self.slots[slot].next_request;
        match b.below(8) {
            0 => next.saturating_sub(1),
            1 => b.u32(),
            _ => {
                *next += 1;
                *next - 1
            }
        }
    }

    /// A function path and its arguments: usually a catalogue function of
    /// `kind` with arguments near what its validator wants.
    fn call(&mut self, kind: Option<Kind>, b: &mut Bytes<'_>) -> (String, Value) {
        let of_kind: Vec<Function> =
            Function::ALL.iter().copied().filter(|f| kind.is_none_or(|k| f.kind() == k)).collect();
        let function = match b.below(16) {
            0 => Function::ALL[b.below(Function::ALL.len())],
            _ => of_kind[b.below(of_kind.len())],
        };
        let path = match b.below(16) {
            0 => self.string(b),
            1 => {
                let (module, name) = function.path().split_once(':').expect("module:name");
                format!("{module}.js:{name}")
            }
            _ => function.path().to_owned(),
        };
        let mut fields = Object::new();
        for spec in function.args() {
            let value = match b.below(10) {
                0 => continue,
                1 => self.value(b, 1),
                _ => self.typed(spec.name, spec.ty, b),
            };
            fields.insert(spec.name.into(), value);
        }
        if b.below(10) == 0 {
            let name = self.string(b);
            let value = self.value(b, 1);
            fields.insert(name.into(), value);
        }
        let args = if b.below(20) == 0 { self.value(b, 0) } else { Value::Object(fields) };
        (path, args)
    }

    /// A value of the type a validator wants.
    fn typed(&mut self, name: &str, ty: ArgType, b: &mut Bytes<'_>) -> Value {
        match ty {
            ArgType::String => Value::String(self.string(b)),
            ArgType::Number => Value::Float64(number(b)),
            ArgType::Int64 => Value::Int64(integer(b)),
            ArgType::Any if name == "paginationOpts" => {
                let mut opts = Object::new();
                opts.insert("numItems".into(), Value::Float64(number(b)));
                let cursor = if b.below(3) == 0 { Value::Null } else { Value::String(self.string(b)) };
                opts.insert("cursor".into(), cursor);
                if b.below(3) == 0 {
                    opts.insert("endCursor".into(), Value::String(self.string(b)));
                }
                Value::Object(opts)
            }
            ArgType::Any => self.value(b, 1),
        }
    }

    /// Any value, nested at most four deep.
    fn value(&mut self, b: &mut Bytes<'_>, depth: u32) -> Value {
        match b.below(if depth < 4 { 10 } else { 8 }) {
            0 => Value::Null,
            1 => Value::Int64(integer(b)),
            2 => Value::Float64(number(b)),
            3 => Value::Boolean(b.coin()),
            4 | 5 => Value::String(self.string(b)),
            6 => {
                let len = b.below(16);
                Value::Bytes(b.take(len).to_vec())
            }
            7 => Value::String("\u{e9}".repeat(usize::from(b.u16() % 5000))),
            8 => {
                let len = b.below(4);
                Value::Array((0..len).map(|_| self.value(b, depth + 1)).collect())
            }
            _ => {
                let mut fields = Object::new();
                for _ in 0..b.below(4) {
                    let name = self.string(b);
                    let value = self.value(b, depth + 1);
                    fields.insert(name.into(), value);
                }
                Value::Object(fields)
            }
        }
    }

    /// A string: a word the catalogue's rows share, one the core handed
    /// out, or up to 32 fuzzed bytes.
    fn string(&mut self, b: &mut Bytes<'_>) -> String {
        match b.below(4) {
            0 => WORDS[b.below(WORDS.len())].to_owned(),
            1 => {
                let index = usize::from(b.byte());
                match self.handed_out.len() {
                    0 => WORDS[index % WORDS.len()].to_owned(),
                    len => self.handed_out[index % len].clone(),
                }
            }
            _ => {
                let len = b.below(33);
                String::from_utf8_lossy(b.take(len)).into_owned()
            }
        }
    }

    fn identity(&mut self, b: &mut Bytes<'_>) -> Identity {
        let subject: Arc<str> = Arc::from(self.string(b));
        let name = b.coin().then(|| Arc::from(self.string(b)));
        Identity { subject, issuer: Arc::from("https://issuer.example"), name }
    }
}

/// A float64: one the catalogue's rules turn on, or any bits.
fn number(b: &mut Bytes<'_>) -> f64 {
    const NUMBERS: [f64; 16] =
        [0.0, 1.0, 2.0, 3.0, -1.0, 0.5, 10.0, 100.0, 1e3, 1e4, 10_001.0, 1e12, -0.0, f64::NAN, f64::INFINITY, 1e300];
    match b.below(4) {
        0 => f64::from_bits(b.u64()),
        1 => f64::from(b.byte()),
        _ => NUMBERS[b.below(NUMBERS.len())],
    }
}

/// An int64: small, at the ends, or any.
fn integer(b: &mut Bytes<'_>) -> i64 {
    match b.below(4) {
        0 => b.u64() as i64,
        1 => [i64::MIN, i64::MAX, -1, 0][b.below(4)],
        _ => i64::from(b.byte()) - 16,
    }
}
