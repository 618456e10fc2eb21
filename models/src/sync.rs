//! The sync model: clients running small scripts against the reference
//! server's own `Core`, over one ordered network per connection, with
//! mutation execution and commit as separate steps.
//!
//! Every interleaving of client steps, deliveries in either direction,
//! executions, commits and the passing of time is explored. Frames travel
//! as the text the real server would send and are read back with the
//! protocol's own parser, so the model checks what crosses the wire.
//!
//! Time starts at one instant and moves only to a time the core asked for
//! with `Output::Wake`, the earliest first (`Action::Wake`): while nothing
//! is scheduled, as in every configuration but the scheduling one, it
//! never moves, so the core's commit timestamps follow commit order and
//! states reached along different paths compare equal. A scheduled
//! function's due time is a wake, so the clock moves at most once per
//! scheduled function, and exactly to the boundary an early run would cross.
//!
//! What is abstracted away: the socket (a connection is a pair of FIFO
//! queues that never lose a frame while open), the clock between the times
//! the core asks for (no ticks, so no pings, presence sweep or rate-limit
//! refill), and the catalogue beyond a small slice: one counter (the
//! smallest workload on which lost updates, stale or torn pushes, broken
//! chains and double replays show), a bank of two accounts, cursor moves,
//! one chat channel read a page at a time (`pages`), and one inbox written
//! now and later (`schedule`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use convex_sync_types::{ServerMessage, StateModification};
use stateright::{Model, Property};
use syncspec_protocol::json;
use syncspec_protocol::value::Value;
use syncspec_protocol::wire::{self, Ts, Version};
use syncspec_server::core::{execute, Config, Core, Executed, Fault, Frame, Input, Job, Output};
use syncspec_server::store::IndexId;
use syncspec_server::subscriptions::ConnId;

use self::frames::{connect_frame, frame_type, mutation_frame, resubscribe_frame, subscribe_frame, watch_bank_frame};
use self::pages::PageSub;
use self::schedule::Scheduling;

mod frames;
mod pages;
mod properties;
mod schedule;

/// The instant the model starts at (and stays at, unless the core asks to
/// be woken later).
const NOW: Ts = 1_000_000_000;
/// How often the clock may move: once for each of the two scheduled sends
/// a scheduling configuration makes. More would let a faulty scheduler's
/// extra runs (each due at a time of its own) grow the space without
/// showing anything new; fewer would leave a healthy run's second send unrun.
const MAX_WAKES: u8 = 2;
/// The counter every script reads and increments.
const COUNTER: &str = "c";

/// One step of a client's script.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// Subscribe to `counters:get` (query id 0).
    Subscribe,
    /// Send `counters:increment`.
    Increment,
    /// Drop the socket and reconnect under the same session, re-adding the
    /// query set and re-sending every unresolved mutation.
    Reconnect,
    /// Remove the counter query and add it again under a new id (2).
    Resubscribe,
    /// Subscribe to `accounts:balances` of the model's bank (query id 1).
    WatchBank,
    /// Send `accounts:transfer` of `amount` from one account to another.
    Transfer(u8, u8, i64),
    /// Send `cursors:move` as this client's user.
    Move,
    /// Send `accounts:withdrawJoint` of `amount` from one account of the
    /// bank's pair, allowed while the pair together holds it.
    Withdraw(u8, i64),
    /// Subscribe to the first page of the seeded channel (`messages:page`
    /// from a null cursor, query id 3).
    FirstPage,
    /// Once the last page's result is in, subscribe to the page after it
    /// from its `continueCursor` (the next query id), as `usePaginatedQuery`'s
    /// `loadMore` does; if that page is done there is nothing to load.
    LoadMore,
    /// Send `messages:send` of a new message to the channel.
    Send,
    /// Send `messages:remove` of the seeded message at this index (0 the oldest).
    Remove(u8),
    /// Send `notifications:sendLater` to the model's inbox, due this many
    /// milliseconds after it commits, titled after its request.
    SendLater(u32),
    /// Send `notifications:send` to the model's inbox directly.
    Notify,
}

/// The bank the bank steps use: two accounts of 10 each.
const BANK: &str = "b";
const OPENING_BALANCE: i64 = 10;
const ACCOUNTS: usize = 2;

/// A burst of one with no refill in the model's single instant: the second
/// move of a user is over the limit.
const MODEL_RATE: syncspec_server::ratelimit::Rate =
    syncspec_server::ratelimit::Rate { burst: 1, interval_ns: 1_000_000_000 };

/// A model configuration: one script per client, and the core's faults.
#[derive(Clone, Debug)]
pub struct SyncModel {
    /// Each client's script.
    pub scripts: Vec<Vec<Step>>,
    /// Faults switched on in the core.
    pub faults: BTreeSet<Fault>,
}

/// What one client knows.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientState {
    session: u128,
    conn: ConnId,
    pc: usize,
    next_request: u32,
    subscribed: bool,
    /// The counter query's current id (0, or 2 after a resubscribe).
    counter_query: u32,
    watching_bank: bool,
    sent_query_set: u32,
    /// Unresolved mutations: request id → (what it is, committed (value, ts) once answered).
    pending: BTreeMap<u32, (Step, Option<(i64, Ts)>)>,
    /// The counter as this client holds it (query 0), on this socket.
    view: Option<i64>,
    /// The balances as this client holds them (query 1), on this socket.
    bank_view: Option<Vec<i64>>,
    /// The channel's pages this client subscribed to, first page first.
    pages: Vec<PageSub>,
    /// The last end version on this socket.
    version: Option<Version>,
    /// The highest ts seen over all sockets.
    max_ts: Ts,
    /// Increments this client resolved.
    resolved: u32,
}

/// What the store held after one commit, as far as the properties look.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Committed {
    ts: Ts,
    counter: i64,
    balances: Vec<i64>,
    /// The channel's bodies, newest first.
    channel: Vec<String>,
}

/// The auxiliary history the properties read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct History {
    /// What the store held after each commit, by commit ts.
    commits: Vec<Committed>,
    /// Every successful answer: (session, request) → (value, ts).
    answers: BTreeMap<(u128, u32), (i64, Ts)>,
    /// Distinct increment requests ever sent.
    invoked: BTreeSet<(u128, u32)>,
    chain_broken: bool,
    /// A transition carried a ts before the instant it was built at
    /// (judged as the core emits it, since the clock may move before it arrives).
    ts_behind_clock: bool,
    ts_regressed: bool,
    stale_push: bool,
    ryw_broken: bool,
    answered_twice_differently: bool,
    lost_update: bool,
    saw_other_write: bool,
    replayed: bool,
    bank_total_changed: bool,
    /// Transfers answered with success: (session, request) → (from, to, amount).
    transfers: BTreeMap<(u128, u32), (u8, u8, i64)>,
    /// Cursor moves accepted, per session.
    moves_accepted: BTreeMap<u128, u32>,
    /// A client held pages that overlap, leave a gap or end short (`pages::pages_agree`).
    pages_disagree: bool,
    /// A client held two pages at a ts after a message arrived and a seeded one left.
    two_pages_after_change: bool,
    /// What the scheduling properties read (`schedule`).
    scheduling: Scheduling,
}

/// The whole system.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SyncState {
    core: Core,
    /// The model's clock, fed to the core with every input.
    now: Ts,
    /// Times the core asked to be woken at (`Output::Wake`) that have not come.
    wakes: BTreeSet<Ts>,
    /// How many times the clock has moved (at most `MAX_WAKES`).
    woken: u8,
    clients: Vec<ClientState>,
    to_server: BTreeMap<ConnId, VecDeque<String>>,
    to_client: BTreeMap<ConnId, VecDeque<String>>,
    jobs: Vec<Job>,
    executed: Vec<Executed>,
    next_conn: ConnId,
    /// The seeded messages' ids, oldest first (the same in every state).
    seeded: Vec<String>,
    history: History,
}

/// What can happen next.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// A client runs the next step of its script.
    ClientStep(usize, Step),
    /// The next frame on a connection (of the named type) reaches the server.
    ToServer(ConnId, &'static str),
    /// The next frame on a connection (of the named type) reaches its client.
    ToClient(ConnId, &'static str),
    /// A dispatched mutation executes (at its snapshot).
    Execute(usize),
    /// An execution reaches the core's commit step.
    Commit(usize),
    /// The clock reaches the earliest time the core asked to be woken at.
    Wake(Ts),
}

impl SyncModel {
    /// The configurations the default check explores.
    pub fn standard() -> Vec<(&'static str, SyncModel)> {
        use Step::*;
        let none = BTreeSet::new();
        vec![
            (
                "two subscribers increment",
                SyncModel {
                    scripts: vec![vec![Subscribe, Increment], vec![Subscribe, Increment]],
                    faults: none.clone(),
                },
            ),
            (
                "three writers contend",
                SyncModel {
                    scripts: vec![vec![Increment], vec![Increment], vec![Subscribe, Increment]],
                    faults: none.clone(),
                },
            ),
            (
                "a reconnect replays a mutation",
                SyncModel {
                    scripts: vec![vec![Subscribe, Increment, Reconnect], vec![Subscribe, Increment]],
                    faults: none.clone(),
                },
            ),
            (
                "two transfers race under a watcher of two queries",
                SyncModel {
                    scripts: vec![
                        vec![Subscribe, WatchBank],
                        vec![Increment, Transfer(0, 1, 10)],
                        vec![Transfer(0, 1, 10)],
                    ],
                    faults: none.clone(),
                },
            ),
            ("two cursor moves in one instant", SyncModel { scripts: vec![vec![Move, Move]], faults: none.clone() }),
            (
                "two withdrawals from a joint pair race",
                SyncModel { scripts: vec![vec![Withdraw(0, 15)], vec![Withdraw(1, 15)]], faults: none.clone() },
            ),
            (
                "a subscriber resubscribes while another writes",
                SyncModel { scripts: vec![vec![Subscribe, Resubscribe], vec![Increment]], faults: none.clone() },
            ),
            (
                // Removing the newest message while both pages are held
                // shifts every row up one (an overlap if page ends move);
                // a message arriving after that shifts them down (a gap).
                "two pages while messages arrive and leave",
                SyncModel { scripts: vec![vec![FirstPage, LoadMore], vec![Remove(2), Send]], faults: none.clone() },
            ),
            (
                // Client 1's direct send lands in the inbox while client 0's
                // sendLater (which read it) executes, or client 0's scheduled
                // send lands while client 1's executes: that sendLater
                // conflicts and runs again. The 1 ms delay is not due until
                // the clock moves; the 0 ms one is due at its commit ts,
                // which runs ahead of the clock by a few ns once a commit or
                // a transition has taken the clock's instant, so it waits
                // for the clock too. The direct send is queued ahead of
                // client 1's sendLater rather than sent by a third client:
                // it still lands while the other sendLater executes, and a
                // third client would multiply the space by about twelve.
                "two sendLaters and a direct send to one inbox",
                SyncModel { scripts: vec![vec![SendLater(1)], vec![Notify, SendLater(0)]], faults: none },
            ),
        ]
    }

    /// The same configurations with faults switched on.
    pub fn with_faults(mut self, faults: &BTreeSet<Fault>) -> SyncModel {
        self.faults.extend(faults.iter().copied());
        self
    }
}

fn balances(core: &Core) -> Vec<i64> {
    core.head()
        .scan(IndexId::AccountsByBank, &[Value::from(BANK)])
        .map(|doc| match doc.get("balance") {
            Value::Int64(v) => *v,
            _ => 0,
        })
        .collect()
}

fn counter_value(core: &Core) -> i64 {
    core.head().scan(IndexId::CountersByName, &[Value::from(COUNTER)]).next().map_or(0, |doc| match doc.get("value") {
        Value::Int64(v) => *v,
        _ => 0,
    })
}

impl SyncState {
    /// Feeds one input to the core and routes what it asks for.
    fn feed(&mut self, input: Input) {
        let mut out = Vec::new();
        self.core.handle(self.now, input, &mut out);
        for output in out {
            match output {
                Output::Send { conn, frame } => {
                    if let Frame::Transition(transition, _) = &frame {
                        self.history.ts_behind_clock |= transition.end.ts < self.now;
                    }
                    if let Some(queue) = self.to_client.get_mut(&conn) {
                        queue.push_back(frame.encode(0));
                    }
                }
                // Scripts commit no protocol violations, so no close is asked for.
                Output::Close { .. } => {}
                Output::Execute(job) => {
                    self.history.scheduling.dispatched(&job);
                    self.jobs.push(job);
                }
                // Only scheduled functions ask for a time: the models make
                // no HTTP calls and call no actions.
                Output::Wake { at } => {
                    self.wakes.insert(at);
                }
                Output::Reply { .. } => {}
            }
        }
        self.history.scheduling.after_input(&self.core);
        let ts = self.core.head().ts;
        if self.history.commits.last().is_none_or(|last| last.ts < ts) && ts > 0 {
            self.history.commits.push(Committed {
                ts,
                counter: counter_value(&self.core),
                balances: balances(&self.core),
                channel: pages::channel(&self.core),
            });
        }
    }

    /// The last commit at or before `ts`, if any.
    fn committed_at(&self, ts: Ts) -> Option<&Committed> {
        self.history.commits.iter().take_while(|c| c.ts <= ts).last()
    }

    fn open(&mut self, c: usize) {
        let conn = self.next_conn;
        self.next_conn += 1;
        self.to_server.insert(conn, VecDeque::new());
        self.to_client.insert(conn, VecDeque::new());
        self.feed(Input::Open { conn });
        let client = &mut self.clients[c];
        client.conn = conn;
        client.version = None;
        client.view = None;
        client.bank_view = None;
        client.pages.iter_mut().for_each(|p| p.view = None);
        let mut frames = vec![connect_frame(client.session, conn as u32)];
        client.sent_query_set = 0;
        if client.subscribed {
            frames.push(subscribe_frame(client.sent_query_set, client.counter_query));
            client.sent_query_set += 1;
        }
        if client.watching_bank {
            frames.push(watch_bank_frame(client.sent_query_set));
            client.sent_query_set += 1;
        }
        // Each page goes back with its journal, so it keeps its end.
        for (query_id, page) in (pages::FIRST_PAGE_QUERY..).zip(&client.pages) {
            frames.push(page.add_frame(client.sent_query_set, query_id));
            client.sent_query_set += 1;
        }
        for (request_id, (step, _)) in &client.pending {
            frames.push(mutation_frame(*request_id, *step, client.session, &self.seeded));
        }
        let replays = !client.pending.is_empty();
        self.to_server.get_mut(&conn).expect("just opened").extend(frames);
        self.history.replayed |= replays && self.next_conn > self.clients.len() as u64 + 1;
    }

    fn client_step(&mut self, c: usize, step: Step) {
        let conn = self.clients[c].conn;
        match step {
            Step::Subscribe => {
                let client = &mut self.clients[c];
                client.subscribed = true;
                let frame = subscribe_frame(client.sent_query_set, client.counter_query);
                client.sent_query_set += 1;
                self.to_server.get_mut(&conn).expect("connected").push_back(frame);
            }
            Step::Resubscribe => {
                let client = &mut self.clients[c];
                let frame = resubscribe_frame(client.sent_query_set, client.counter_query, 2);
                client.counter_query = 2;
                client.sent_query_set += 1;
                self.to_server.get_mut(&conn).expect("connected").push_back(frame);
            }
            Step::WatchBank => {
                let client = &mut self.clients[c];
                client.watching_bank = true;
                let frame = watch_bank_frame(client.sent_query_set);
                client.sent_query_set += 1;
                self.to_server.get_mut(&conn).expect("connected").push_back(frame);
            }
            Step::FirstPage | Step::LoadMore => {
                let client = &mut self.clients[c];
                let page = match step {
                    Step::FirstPage => Some(PageSub::first()),
                    _ => client.pages.last().and_then(PageSub::next),
                };
                if let Some(page) = page {
                    let query_id = pages::FIRST_PAGE_QUERY + client.pages.len() as u32;
                    let frame = page.add_frame(client.sent_query_set, query_id);
                    client.sent_query_set += 1;
                    client.pages.push(page);
                    self.to_server.get_mut(&conn).expect("connected").push_back(frame);
                }
            }
            Step::Increment
            | Step::Transfer(..)
            | Step::Move
            | Step::Withdraw(..)
            | Step::Send
            | Step::Remove(_)
            | Step::SendLater(_)
            | Step::Notify => {
                let client = &mut self.clients[c];
                let request_id = client.next_request;
                client.next_request += 1;
                client.pending.insert(request_id, (step, None));
                if step == Step::Increment {
                    self.history.invoked.insert((client.session, request_id));
                }
                let frame = mutation_frame(request_id, step, client.session, &self.seeded);
                self.to_server.get_mut(&conn).expect("connected").push_back(frame);
            }
            Step::Reconnect => {
                self.to_server.remove(&conn);
                self.to_client.remove(&conn);
                self.feed(Input::Closed { conn });
                self.open(c);
            }
        }
        self.clients[c].pc += 1;
    }

    /// The next frame on `conn` reaches its client, which reads it and checks what it shows.
    fn deliver(&mut self, conn: ConnId) {
        let Some(text) = self.to_client.get_mut(&conn).and_then(VecDeque::pop_front) else { return };
        let Some(c) = self.clients.iter().position(|cl| cl.conn == conn) else { return };
        let Ok(message) = wire::parse_server_message(&text) else {
            self.history.chain_broken = true;
            return;
        };
        match message {
            ServerMessage::Transition { start_version, end_version, modifications, .. } => {
                let (start, end) =
                    (Version::from_state_version(&start_version), Version::from_state_version(&end_version));
                let client = &mut self.clients[c];
                if start != client.version.unwrap_or_default() {
                    self.history.chain_broken = true;
                }
                if end.ts < client.max_ts {
                    self.history.ts_regressed = true;
                }
                client.max_ts = client.max_ts.max(end.ts);
                client.version = Some(end);
                for m in modifications {
                    if let StateModification::QueryUpdated { query_id, value, journal, .. } = m {
                        let page = query_id.get_id().checked_sub(pages::FIRST_PAGE_QUERY);
                        if let Some(page) = page.and_then(|i| client.pages.get_mut(i as usize)) {
                            page.update(&json::decode(&value.0).unwrap_or(Value::Null), journal);
                            continue;
                        }
                        match (query_id.get_id(), json::decode(&value.0)) {
                            // The counter under its old id or its new one.
                            (0 | 2, Ok(Value::Int64(v))) => client.view = Some(v),
                            (1, Ok(Value::Array(rows))) => {
                                let balances = rows
                                    .iter()
                                    .map(|r| match r.as_object().and_then(|o| o.get("balance")) {
                                        Some(Value::Int64(b)) => *b,
                                        _ => 0,
                                    })
                                    .collect();
                                client.bank_view = Some(balances);
                            }
                            _ => {}
                        }
                    }
                }
                // Resolve what this transition reaches, after the view holds it.
                let reached: Vec<(u32, Step, i64)> = client
                    .pending
                    .iter()
                    .filter_map(|(r, (step, done))| done.filter(|(_, ts)| *ts <= end.ts).map(|(v, _)| (*r, *step, v)))
                    .collect();
                for (r, step, value) in reached {
                    client.pending.remove(&r);
                    if step == Step::Increment {
                        client.resolved += 1;
                        if client.subscribed && client.view.is_some_and(|v| v < value) {
                            self.history.ryw_broken = true;
                        }
                    }
                }
                let (view, bank_view, resolved) = (client.view, client.bank_view.clone(), client.resolved);
                let at = self.committed_at(end.ts);
                let (counter_at, balances_at, channel_at) =
                    at.map_or((0, &[][..], &[][..]), |at| (at.counter, &at.balances[..], &at.channel[..]));
                // The whole view must be the state at the transition's ts.
                let stale =
                    view.is_some_and(|v| v != counter_at) || bank_view.as_ref().is_some_and(|b| *b != balances_at);
                let held = &self.clients[c].pages;
                let disagree = !pages::pages_agree(held, channel_at);
                let two_after_change =
                    held.iter().filter(|p| p.view.is_some()).count() >= 2 && pages::arrived_and_left(channel_at);
                self.history.stale_push |= stale;
                self.history.pages_disagree |= disagree;
                self.history.two_pages_after_change |= two_after_change;
                if view.is_some_and(|v| v > i64::from(resolved)) {
                    self.history.saw_other_write = true;
                }
                if bank_view
                    .as_ref()
                    .is_some_and(|b| b.len() == ACCOUNTS && b.iter().sum::<i64>() != OPENING_BALANCE * ACCOUNTS as i64)
                {
                    self.history.bank_total_changed = true;
                }
                self.feed(Input::Delivered { conn });
            }
            ServerMessage::MutationResponse { request_id, result: Ok(value), ts, .. } => {
                let ts = ts.map(u64::from).unwrap_or(0);
                let v = match json::decode(&value.0) {
                    Ok(Value::Int64(v)) => v,
                    _ => 0,
                };
                let client = &mut self.clients[c];
                let key = (client.session, request_id);
                let step = client.pending.get(&request_id).map(|(step, _)| *step);
                if let Some((_, slot)) = client.pending.get_mut(&request_id) {
                    *slot = Some((v, ts));
                }
                if step == Some(Step::Move) {
                    *self.history.moves_accepted.entry(key.0).or_default() += 1;
                }
                if let Some(Step::Transfer(from, to, amount)) = step {
                    self.history.transfers.insert(key, (from, to, amount));
                }
                if let Some(Step::SendLater(_)) = step {
                    self.history.scheduling.answered(schedule::later_title(key.0, request_id));
                }
                match self.history.answers.get(&key) {
                    Some(&first) if first != (v, ts) => self.history.answered_twice_differently = true,
                    Some(_) => {}
                    None => {
                        let increments = self.history.invoked.contains(&key);
                        if increments
                            && self
                                .history
                                .answers
                                .iter()
                                .any(|(k, &(other, _))| self.history.invoked.contains(k) && other == v)
                        {
                            self.history.lost_update = true;
                        }
                        self.history.answers.insert(key, (v, ts));
                    }
                }
            }
            ServerMessage::MutationResponse { request_id, .. } => {
                self.clients[c].pending.remove(&request_id);
            }
            _ => {}
        }
    }

    /// Runs `calls` (mutations) before exploration starts, through the core
    /// itself on a connection of their own, one after another; returns what
    /// each answered, in order (`Null` for a failure).
    fn setup(&mut self, calls: &[(&str, Value)]) -> Vec<Value> {
        const SETUP: ConnId = 1_000;
        self.to_client.insert(SETUP, VecDeque::new());
        self.feed(Input::Open { conn: SETUP });
        let connect = wire::parse_client_message(&connect_frame(999, 0)).expect("a valid frame");
        self.feed(Input::Message { conn: SETUP, message: connect.into() });
        for (request_id, (path, args)) in (0..).zip(calls) {
            let call =
                wire::parse_client_message(&wire::write_mutation(request_id, path, args)).expect("a valid frame");
            self.feed(Input::Message { conn: SETUP, message: call.into() });
        }
        while let Some(job) = self.jobs.pop() {
            let executed = execute(&job);
            self.feed(Input::Executed(executed));
        }
        let mut answers = vec![Value::Null; calls.len()];
        for frame in self.to_client.remove(&SETUP).into_iter().flatten() {
            if let Ok(ServerMessage::MutationResponse { request_id, result: Ok(value), .. }) =
                wire::parse_server_message(&frame)
            {
                answers[request_id as usize] = json::decode(&value.0).unwrap_or(Value::Null);
            }
        }
        self.feed(Input::Closed { conn: SETUP });
        answers
    }

    /// The bank's opening and the channel's seeding, for the scripts that use them.
    fn seed(&mut self, scripts: &[Vec<Step>]) {
        let uses = |wanted: fn(&Step) -> bool| scripts.iter().flatten().any(wanted);
        let mut calls = Vec::new();
        if uses(|step| matches!(step, Step::Transfer(..) | Step::WatchBank | Step::Withdraw(..))) {
            let args = Value::object([
                ("bank", Value::from(BANK)),
                ("accounts", Value::Float64(ACCOUNTS as f64)),
                ("balance", Value::Int64(OPENING_BALANCE)),
            ]);
            calls.push(("accounts:open", args));
        }
        let seeds_from = calls.len();
        if uses(|step| matches!(step, Step::FirstPage | Step::LoadMore | Step::Send | Step::Remove(_))) {
            calls.extend(pages::SEEDED.iter().map(|body| ("messages:send", pages::send_args("seed", body))));
        }
        if calls.is_empty() {
            return;
        }
        let answers = self.setup(&calls);
        self.seeded =
            answers[seeds_from..].iter().map(|id| id.as_str().expect("a seeded message's id").to_owned()).collect();
    }

    /// Nothing in flight, no time asked for still to come, and every script done.
    fn quiet(&self, model: &SyncModel) -> bool {
        self.wakes.is_empty()
            && self.jobs.is_empty()
            && self.executed.is_empty()
            && self.to_server.values().all(VecDeque::is_empty)
            && self.to_client.values().all(VecDeque::is_empty)
            && self.clients.iter().zip(&model.scripts).all(|(c, s)| c.pc == s.len())
    }
}

impl Model for SyncModel {
    type State = SyncState;
    type Action = Action;

    fn init_states(&self) -> Vec<SyncState> {
        let config = Config { faults: self.faults.clone(), rate: MODEL_RATE, ..Config::standard() };
        let mut state = SyncState {
            core: Core::new(config),
            now: NOW,
            wakes: BTreeSet::new(),
            woken: 0,
            clients: (0..self.scripts.len())
                .map(|i| ClientState {
                    session: i as u128 + 1,
                    conn: 0,
                    pc: 0,
                    next_request: 0,
                    subscribed: false,
                    counter_query: 0,
                    watching_bank: false,
                    sent_query_set: 0,
                    pending: BTreeMap::new(),
                    view: None,
                    bank_view: None,
                    pages: Vec::new(),
                    version: None,
                    max_ts: 0,
                    resolved: 0,
                })
                .collect(),
            to_server: BTreeMap::new(),
            to_client: BTreeMap::new(),
            jobs: Vec::new(),
            executed: Vec::new(),
            next_conn: 1,
            seeded: Vec::new(),
            history: History::default(),
        };
        state.seed(&self.scripts);
        for c in 0..self.scripts.len() {
            state.open(c);
        }
        vec![state]
    }

    fn actions(&self, state: &SyncState, actions: &mut Vec<Action>) {
        // A state where a scheduled function has run and will run again
        // already breaks a property, and is not expanded: past it a faulty
        // scheduler's extra runs (under `scheduled-twice`, up to three of each
        // function in flight at once, in any order) multiply the space
        // without showing anything new.
        if schedule::ran_again(&state.core) {
            return;
        }
        for (c, client) in state.clients.iter().enumerate() {
            match self.scripts[c].get(client.pc) {
                // A client loads more only once it holds the last page loaded.
                Some(Step::LoadMore) if client.pages.last().is_none_or(|p| p.view.is_none()) => {}
                Some(&step) => actions.push(Action::ClientStep(c, step)),
                None => {}
            }
        }
        for (conn, queue) in &state.to_server {
            if let Some(frame) = queue.front() {
                actions.push(Action::ToServer(*conn, frame_type(frame)));
            }
        }
        for (conn, queue) in &state.to_client {
            if let Some(frame) = queue.front() {
                actions.push(Action::ToClient(*conn, frame_type(frame)));
            }
        }
        actions.extend((0..state.jobs.len()).map(Action::Execute));
        actions.extend((0..state.executed.len()).map(Action::Commit));
        if state.woken < MAX_WAKES {
            actions.extend(state.wakes.first().copied().map(Action::Wake));
        }
    }

    fn next_state(&self, last: &SyncState, action: Action) -> Option<SyncState> {
        let mut state = last.clone();
        match action {
            Action::ClientStep(c, step) => state.client_step(c, step),
            Action::ToServer(conn, _) => {
                let text = state.to_server.get_mut(&conn)?.pop_front()?;
                match wire::parse_client_message(&text) {
                    Ok(message) => state.feed(Input::Message { conn, message: message.into() }),
                    Err(e) => state.feed(Input::BadFrame { conn, code: e.code(), detail: e.to_string() }),
                }
            }
            Action::ToClient(conn, _) => state.deliver(conn),
            Action::Execute(i) => {
                let job = state.jobs.remove(i);
                state.executed.push(execute(&job));
            }
            Action::Commit(i) => {
                let executed = state.executed.remove(i);
                state.feed(Input::Executed(executed));
            }
            Action::Wake(at) => {
                state.now = state.now.max(at);
                state.woken += 1;
                state.wakes.retain(|&t| t > at);
                state.feed(Input::Wake);
            }
        }
        Some(state)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        properties::of(self)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::ClientStep(c, step) => write!(f, "client {c}: {step:?}"),
            Action::ToServer(conn, kind) => write!(f, "connection {conn}: {kind} reaches the server"),
            Action::ToClient(conn, kind) => write!(f, "connection {conn}: {kind} reaches the client"),
            Action::Execute(i) => write!(f, "mutation job {i} executes at its snapshot"),
            Action::Commit(i) => write!(f, "execution {i} reaches the commit step"),
            Action::Wake(at) => write!(f, "time passes to start + {} ns, as the core asked", at - NOW),
        }
    }
}
