//! A lean protocol client for load: one task owns the socket, sends writes
//! as soon as they are due (pipelined, as the official clients send
//! mutations), and turns what arrives into samples.
//!
//! The conformance suite's client keeps a full history and a cloned view
//! per transition; that is right for judging a backend and far too heavy
//! for thousands of clients, so load uses this one. It speaks the same
//! protocol: `Connect`, `Authenticate` when the run has a token, a
//! `ModifyQuerySet` for its query (and one more per older page a history
//! client loads), `Mutation`s and `Action`s, all written by `wire`'s
//! writers; it reads `Transition`s, `MutationResponse`s, `ActionResponse`s,
//! `AuthError`s and `FatalError`s with `wire::peek`, the flat borrowing
//! reader, and only the results it watches in full (the typed rows below).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use syncspec_protocol::client::{self, Socket};
use syncspec_protocol::json;
use syncspec_protocol::value::Value;
use syncspec_protocol::wire::{self, ModificationKind, ModificationRef, QueryId, ServerFrameKind};
use syncspec_reports::load::Metric;

use crate::metrics::{Counters, Recorder};
use crate::plan::Kind;
use crate::room::Room;

/// How long connecting and the first answer to the subscription may take.
pub(crate) const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A sample for goose, which can only be recorded with the user in hand.
#[derive(Clone, Debug)]
pub(crate) struct Sample {
    pub(crate) metric: Metric,
    pub(crate) latency: Duration,
    /// `None` for a success; the error code or message otherwise.
    pub(crate) failure: Option<String>,
}

/// Who a connection belongs to and where its samples go.
#[derive(Clone, Debug)]
pub(crate) struct Owner {
    pub(crate) kind: Kind,
    pub(crate) room: Arc<Room>,
    pub(crate) member: usize,
    pub(crate) recorder: Arc<Recorder>,
    pub(crate) samples: flume::Sender<Sample>,
}

impl Owner {
    fn counters(&self) -> &Counters {
        self.recorder.counters(self.kind)
    }

    fn sample(&self, metric: Metric, stamp: u64, now: u64, failure: Option<String>) {
        let latency = now.saturating_sub(stamp);
        if failure.is_none() {
            self.recorder.sample(self.kind, metric, stamp, latency);
        }
        let _ = self.samples.send(Sample { metric, latency: Duration::from_micros(latency), failure });
    }

    /// A reader saw a change written at `stamp`.
    fn deliver(&self, stamp: u64, now: u64, ready: u64) {
        if stamp < ready {
            return;
        }
        Counters::add(&self.counters().received, 1);
        self.room.note_received(self.member);
        self.sample(Metric::Sync, stamp, now, None);
    }
}

/// A write to send.
#[derive(Debug)]
pub(crate) struct Write {
    /// The intended send instant.
    pub(crate) stamp: u64,
    pub(crate) function: &'static str,
    pub(crate) args: Value,
    /// Whether readers should see it as an update (a leave or a stream's
    /// start and finish are not counted).
    pub(crate) update: bool,
    /// Where the outcome goes, for writers that need the returned value.
    pub(crate) reply: Option<oneshot::Sender<Result<Value, String>>>,
}

/// An action to call: it writes `updates` (their intended instants) itself,
/// each in a transaction of its own, and answers once at the end.
#[derive(Debug)]
pub(crate) struct Call {
    /// The intended send instant.
    pub(crate) stamp: u64,
    pub(crate) function: &'static str,
    pub(crate) args: Value,
    /// The intended instants of the updates readers should see, in the
    /// order the action writes them. All are owed once it succeeds; when it
    /// fails, the first `errorData.tokens` (what it committed before failing).
    pub(crate) updates: Vec<u64>,
}

/// An older page to subscribe to; its first result is the answer.
#[derive(Debug)]
pub(crate) struct PageLoad {
    /// The intended instant of the load.
    pub(crate) stamp: u64,
    pub(crate) function: &'static str,
    pub(crate) args: Value,
    /// The page's first result (raw JSON), or why it failed.
    pub(crate) reply: oneshot::Sender<Result<String, String>>,
}

enum Command {
    Write(Write),
    Call(Call),
    Subscribe(PageLoad),
    Close(oneshot::Sender<()>),
}

/// A handle to one connection; clones share it.
#[derive(Clone, Debug)]
pub(crate) struct Conn {
    commands: mpsc::UnboundedSender<Command>,
}

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    #[error("{0}")]
    Url(String),
    #[error("{0}")]
    Connect(String),
    #[error("no answer to the subscription within {0:?}")]
    NoAnswer(Duration),
    #[error("the subscription failed: {0}")]
    QueryFailed(String),
    #[error("the backend refused the token: {0}")]
    AuthRefused(String),
    #[error("the backend sent FatalError: {0}")]
    Fatal(String),
}

/// A connection whose subscription answered.
#[derive(Debug)]
pub(crate) struct Joined {
    pub(crate) conn: Conn,
    /// The ready instant: writes from here on are owed to this client.
    pub(crate) ready: u64,
    /// The subscription's first result (raw JSON): the client's baseline.
    pub(crate) first: String,
}

impl Conn {
    /// Connects, authenticates with `token` if given, subscribes to
    /// `(function, args)`, waits for the first answer (the client is then
    /// ready: that answer is its baseline, not a sample), and starts the
    /// connection's task.
    pub(crate) async fn open(
        url: &str,
        function: &str,
        args: Value,
        token: Option<&str>,
        owner: Owner,
    ) -> Result<Joined, ConnectError> {
        let socket = client::socket_url(url).map_err(|e| ConnectError::Url(e.to_string()))?;
        let joined = tokio::time::timeout(JOIN_TIMEOUT, async {
            let mut ws = client::open_socket(&socket).await.map_err(|e| ConnectError::Connect(e.to_string()))?;
            let mut frames = opening_frames(token);
            let add = wire::QuerySetChange::Add { query_id: 0, udf_path: function, args: &args, journal: None };
            frames.push(wire::write_modify_query_set(0, 1, &[add]));
            for frame in frames {
                ws.send(Message::text(frame)).await.map_err(|e| ConnectError::Connect(format!("{socket}: {e}")))?;
            }
            loop {
                let frame = match ws.next().await {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(ConnectError::Connect(format!("{socket}: {e}"))),
                    None => return Err(ConnectError::Connect(format!("{socket}: closed before answering"))),
                };
                let Ok(parsed) = wire::peek(&frame) else { continue };
                match parsed.kind {
                    ServerFrameKind::Transition => {}
                    ServerFrameKind::AuthError => {
                        return Err(ConnectError::AuthRefused(parsed.error.unwrap_or_default().into_owned()))
                    }
                    ServerFrameKind::FatalError => {
                        return Err(ConnectError::Fatal(parsed.error.unwrap_or_default().into_owned()))
                    }
                    _ => continue,
                }
                for m in parsed.modifications {
                    match (m.kind, m.value) {
                        (ModificationKind::QueryUpdated, Some(value)) => return Ok((ws, value.get().to_owned())),
                        (ModificationKind::QueryFailed, _) => {
                            return Err(ConnectError::QueryFailed(m.error_message.unwrap_or_default().into_owned()))
                        }
                        _ => {}
                    }
                }
            }
        })
        .await;
        let (ws, first) = joined.map_err(|_| ConnectError::NoAnswer(JOIN_TIMEOUT))??;
        let ready = owner.recorder.clock().now();
        let mut observer = Observer::new(owner.kind, owner.room.members);
        observer.observe(&first, &owner, None);
        owner.room.set_ready(owner.member, ready);
        let (commands, rx) = mpsc::unbounded_channel();
        let task = Task {
            ws,
            owner,
            observer,
            ready,
            pending: HashMap::new(),
            calls: HashMap::new(),
            pages: HashMap::new(),
            next_request: 0,
            query_set: 1,
            latest_ts: 0,
        };
        tokio::spawn(task.run(rx));
        Ok(Joined { conn: Conn { commands }, ready, first })
    }

    /// Queues a write; it is sent at once (writes are pipelined).
    pub(crate) fn write(&self, write: Write) -> bool {
        self.commands.send(Command::Write(write)).is_ok()
    }

    /// Queues an action call; it is sent at once, like a write.
    pub(crate) fn call(&self, call: Call) -> bool {
        self.commands.send(Command::Call(call)).is_ok()
    }

    /// Subscribes to one more query (an older page) at once.
    pub(crate) fn load_page(&self, load: PageLoad) -> bool {
        self.commands.send(Command::Subscribe(load)).is_ok()
    }

    /// Closes the socket cleanly (a close handshake, bounded in time).
    pub(crate) async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.commands.send(Command::Close(done)).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(3), closed).await;
        }
    }
}

struct Pending {
    stamp: u64,
    update: bool,
    /// Set by a successful response: wait for a transition at or past it.
    committed: Option<u64>,
    reply: Option<oneshot::Sender<Result<Value, String>>>,
}

/// An action sent and not yet answered.
struct PendingCall {
    stamp: u64,
    updates: Vec<u64>,
}

/// A page subscribed to whose first result has not come.
struct PendingPage {
    stamp: u64,
    reply: oneshot::Sender<Result<String, String>>,
}

struct Task {
    ws: Socket,
    owner: Owner,
    observer: Observer,
    ready: u64,
    /// Mutations by request id.
    pending: HashMap<u32, Pending>,
    /// Actions by request id (the same id space as mutations, as in the official clients).
    calls: HashMap<u32, PendingCall>,
    /// Page loads by query id (the watched query is 0).
    pages: HashMap<QueryId, PendingPage>,
    next_request: u32,
    /// The query set's version: one `ModifyQuerySet` per query added.
    query_set: u32,
    /// The highest `endVersion.ts` seen: a response whose commit it already
    /// covers is visible at once (the transition can arrive first).
    latest_ts: u64,
}

impl Task {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Write(write)) => {
                        if let Err(e) = self.send(write).await {
                            self.owner.recorder.error(self.owner.kind, format!("send failed: {e}"));
                            return;
                        }
                    }
                    Some(Command::Call(call)) => {
                        if let Err(e) = self.send_call(call).await {
                            self.owner.recorder.error(self.owner.kind, format!("send failed: {e}"));
                            return;
                        }
                    }
                    Some(Command::Subscribe(load)) => {
                        if let Err(e) = self.subscribe(load).await {
                            self.owner.recorder.error(self.owner.kind, format!("send failed: {e}"));
                            return;
                        }
                    }
                    Some(Command::Close(done)) => {
                        // Page loads stop with the writes, seconds before
                        // clients close: one still unanswered was never answered.
                        for _ in self.pages.drain() {
                            let owner = &self.owner;
                            owner.recorder.error(owner.kind, "a page load got no answer before the client left");
                        }
                        let _ = tokio::time::timeout(Duration::from_secs(2), async {
                            let _ = self.ws.close(None).await;
                            while let Some(Ok(_)) = self.ws.next().await {}
                        })
                        .await;
                        let _ = done.send(());
                        return;
                    }
                    None => return,
                },
                frame = self.ws.next() => {
                    let now = self.owner.recorder.clock().now();
                    match frame {
                        Some(Ok(Message::Text(text))) => self.on_frame(&text, now),
                        Some(Ok(Message::Close(_))) | None => {
                            self.owner.recorder.error(self.owner.kind, "the backend closed the socket");
                            return;
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => {
                            self.owner.recorder.error(self.owner.kind, format!("socket error: {e}"));
                            return;
                        }
                    }
                }
            }
        }
    }

    async fn send(&mut self, write: Write) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        let request_id = self.next_request;
        self.next_request += 1;
        let frame = wire::write_mutation(request_id, write.function, &write.args);
        Counters::add(&self.owner.counters().sent, 1);
        let lag = self.owner.recorder.clock().now().saturating_sub(write.stamp);
        self.owner.recorder.sample(self.owner.kind, Metric::SendLag, write.stamp, lag);
        self.pending.insert(
            request_id,
            Pending { stamp: write.stamp, update: write.update, committed: None, reply: write.reply },
        );
        self.ws.send(Message::text(frame)).await
    }

    async fn send_call(&mut self, call: Call) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        let request_id = self.next_request;
        self.next_request += 1;
        let frame = wire::write_action(request_id, call.function, &call.args);
        // An action's writes are the updates it makes.
        Counters::add(&self.owner.counters().sent, call.updates.len() as u64);
        let lag = self.owner.recorder.clock().now().saturating_sub(call.stamp);
        self.owner.recorder.sample(self.owner.kind, Metric::SendLag, call.stamp, lag);
        self.calls.insert(request_id, PendingCall { stamp: call.stamp, updates: call.updates });
        self.ws.send(Message::text(frame)).await
    }

    async fn subscribe(&mut self, load: PageLoad) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        // The watched query is 0; each page gets the next id, as the query set grows.
        let query_id = self.query_set;
        let add = wire::QuerySetChange::Add { query_id, udf_path: load.function, args: &load.args, journal: None };
        let frame = wire::write_modify_query_set(self.query_set, self.query_set + 1, &[add]);
        self.query_set += 1;
        self.pages.insert(query_id, PendingPage { stamp: load.stamp, reply: load.reply });
        self.ws.send(Message::text(frame)).await
    }

    /// A result or failure of a loaded page: its first is the load's answer;
    /// later ones (an older page re-sent unchanged, or grown) are not read.
    fn on_page(
        pages: &mut HashMap<QueryId, PendingPage>,
        owner: &Owner,
        query_id: QueryId,
        m: &ModificationRef<'_>,
        now: u64,
    ) {
        let outcome = match (m.kind, m.value) {
            (ModificationKind::QueryUpdated, Some(value)) => Ok(value.get().to_owned()),
            (ModificationKind::QueryFailed, _) => {
                let message = m.error_message.as_deref().unwrap_or("").to_owned();
                owner.recorder.error(owner.kind, format!("a page failed: {message}"));
                Err(message)
            }
            _ => return,
        };
        let Some(page) = pages.remove(&query_id) else { return };
        let failure = outcome.as_ref().err().map(|_| "QueryFailed".to_owned());
        owner.sample(Metric::Page, page.stamp, now, failure);
        let _ = page.reply.send(outcome);
    }

    fn on_action_response(&mut self, frame: &wire::ServerFrameRef<'_>, now: u64) {
        let owner = &self.owner;
        let request_id = frame.request_id.unwrap_or(u32::MAX);
        let Some(call) = self.calls.remove(&request_id) else {
            owner.recorder.error(owner.kind, format!("an action response to unknown request {request_id}"));
            return;
        };
        let committed = if frame.success == Some(true) {
            owner.sample(Metric::Action, call.stamp, now, None);
            call.updates.len()
        } else {
            let message = frame.result.and_then(|r| serde_json::from_str::<String>(r.get()).ok()).unwrap_or_default();
            let code = frame.error_data.and_then(wire::error_code);
            owner.recorder.error(owner.kind, format!("{} failed: {message}", code.as_deref().unwrap_or("action")));
            owner.sample(Metric::Action, call.stamp, now, Some(code.unwrap_or_else(|| "failed".into())));
            // What a failed action committed stays: `errorData.tokens` says how much.
            let data = frame.error_data.and_then(|d| serde_json::from_str::<FailedCall>(d.get()).ok());
            data.and_then(|d| d.tokens).map_or(0, |n| (n.max(0.0) as usize).min(call.updates.len()))
        };
        Counters::add(&owner.counters().accepted, committed as u64);
        for stamp in &call.updates[..committed] {
            owner.room.note_accepted(owner.member, *stamp);
        }
    }

    fn on_frame(&mut self, text: &str, now: u64) {
        let owner = &self.owner;
        let frame = match wire::peek(text) {
            Ok(frame) => frame,
            Err(e) => {
                owner.recorder.error(owner.kind, format!("unreadable frame: {e}"));
                return;
            }
        };
        match frame.kind {
            ServerFrameKind::Transition => {
                for m in &frame.modifications {
                    let query_id = m.query_id.unwrap_or(0);
                    if query_id != 0 {
                        Task::on_page(&mut self.pages, owner, query_id, m, now);
                        continue;
                    }
                    match (m.kind, m.value) {
                        (ModificationKind::QueryUpdated, Some(value)) => {
                            self.observer.observe(value.get(), owner, Some((now, self.ready)))
                        }
                        (ModificationKind::QueryFailed, _) => {
                            let message = m.error_message.as_deref().unwrap_or("");
                            owner.recorder.error(owner.kind, format!("query failed: {message}"));
                        }
                        _ => {}
                    }
                }
                let Some(end) = frame.end_version.as_ref().and_then(|v| wire::decode_ts(&v.ts)) else {
                    owner.recorder.error(owner.kind, "a transition without a readable end ts");
                    return;
                };
                self.latest_ts = self.latest_ts.max(end);
                self.pending.retain(|_, p| {
                    let reached = p.committed.is_some_and(|ts| ts <= end);
                    if reached {
                        owner.sample(Metric::Visible, p.stamp, now, None);
                    }
                    !reached
                });
            }
            ServerFrameKind::MutationResponse => {
                let request_id = frame.request_id.unwrap_or(u32::MAX);
                let Some(p) = self.pending.get_mut(&request_id) else {
                    owner.recorder.error(owner.kind, format!("a response to unknown request {request_id}"));
                    return;
                };
                match frame.success {
                    Some(true) => {
                        Counters::add(&owner.counters().accepted, 1);
                        if p.update {
                            owner.room.note_accepted(owner.member, p.stamp);
                        }
                        owner.sample(Metric::Mutation, p.stamp, now, None);
                        if let Some(reply) = p.reply.take() {
                            let value =
                                frame.result.and_then(|r| json::decode_str(r.get()).ok()).unwrap_or(Value::Null);
                            let _ = reply.send(Ok(value));
                        }
                        let ts = frame.commit_ts().unwrap_or(0);
                        p.committed = Some(ts);
                        if ts <= self.latest_ts {
                            let stamp = p.stamp;
                            self.pending.remove(&request_id);
                            owner.sample(Metric::Visible, stamp, now, None);
                        }
                    }
                    _ => {
                        let p = self.pending.remove(&request_id).expect("looked up above");
                        let message =
                            frame.result.and_then(|r| serde_json::from_str::<String>(r.get()).ok()).unwrap_or_default();
                        let code = frame.error_data.and_then(wire::error_code);
                        if code.as_deref() == Some("RateLimited") {
                            Counters::add(&owner.counters().rate_limited, 1);
                        } else {
                            owner.recorder.error(
                                owner.kind,
                                format!("{} failed: {message}", code.as_deref().unwrap_or("mutation")),
                            );
                        }
                        owner.sample(Metric::Mutation, p.stamp, now, Some(code.unwrap_or_else(|| "failed".into())));
                        if let Some(reply) = p.reply {
                            let _ = reply.send(Err(message));
                        }
                    }
                }
            }
            ServerFrameKind::ActionResponse => self.on_action_response(&frame, now),
            ServerFrameKind::FatalError | ServerFrameKind::AuthError => {
                let message = frame.error.as_deref().unwrap_or("");
                owner.recorder.error(owner.kind, format!("{:?}: {message}", frame.kind));
            }
            _ => {}
        }
    }
}

/// A failed action's `errorData`, as much as load reads of it.
#[derive(Debug, Deserialize)]
struct FailedCall {
    /// `messages:streamReply`: the tokens it committed before failing.
    tokens: Option<f64>,
}

/// A `presence:list` or `cursors:list` row, as much as load reads of it.
#[derive(Debug, Deserialize)]
struct Row<'a> {
    #[serde(borrow)]
    user: Cow<'a, str>,
    x: Option<f64>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
}

/// A `messages:list` message, as much as load reads of it.
#[derive(Debug, Deserialize)]
pub(crate) struct Msg<'a> {
    #[serde(rename = "_id", borrow)]
    pub(crate) id: Cow<'a, str>,
    #[serde(rename = "_creationTime")]
    pub(crate) creation_time: f64,
    #[serde(borrow)]
    pub(crate) author: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) body: Cow<'a, str>,
}

/// A `messages:page` result, as much as load reads of it.
#[derive(Debug, Deserialize)]
pub(crate) struct Page<'a> {
    /// Newest first.
    #[serde(borrow)]
    pub(crate) page: Vec<Msg<'a>>,
    #[serde(rename = "isDone")]
    pub(crate) is_done: bool,
    #[serde(rename = "continueCursor", borrow)]
    pub(crate) continue_cursor: Cow<'a, str>,
}

/// What a reader remembers of its query's results, to find what is new.
#[derive(Debug)]
enum Observer {
    /// Rows keyed by member (`presence:list`, `cursors:list`): the stamp each row last carried.
    Rows { last: Vec<u64>, present: Vec<bool> },
    /// `messages:list`, or with `paged` the rows of a `messages:page`
    /// result: the newest `_creationTime` seen, and the ids seen at it.
    Messages { newest: f64, at_newest: Vec<String>, paged: bool },
    /// A streamed message: characters of each message's body already read.
    Stream { read: HashMap<String, usize> },
}

impl Observer {
    fn new(kind: Kind, members: usize) -> Observer {
        match kind {
            Kind::Presence | Kind::Cursors => Observer::Rows { last: vec![0; members], present: vec![false; members] },
            Kind::Chat => Observer::Messages { newest: f64::NEG_INFINITY, at_newest: Vec::new(), paged: false },
            Kind::History => Observer::Messages { newest: f64::NEG_INFINITY, at_newest: Vec::new(), paged: true },
            Kind::Stream | Kind::Reply => Observer::Stream { read: HashMap::new() },
        }
    }

    /// Takes in a new result (raw JSON); `arrival` is `(now, ready)` for
    /// changes, `None` for the baseline.
    fn observe(&mut self, value: &str, owner: &Owner, arrival: Option<(u64, u64)>) {
        let me = owner.member;
        let unreadable = |e: serde_json::Error| owner.recorder.error(owner.kind, format!("an unexpected result: {e}"));
        match self {
            Observer::Rows { last, present } => {
                let rows: Vec<Row<'_>> = match serde_json::from_str(value) {
                    Ok(rows) => rows,
                    Err(e) => return unreadable(e),
                };
                let mut now_present = vec![false; last.len()];
                for row in &rows {
                    let Some(author) = member_of(&row.user).filter(|a| *a < last.len()) else { continue };
                    let Some(stamp) = row_stamp(owner.kind, row) else { continue };
                    now_present[author] = true;
                    owner.room.note_seen(me, author, stamp);
                    if last[author] != stamp {
                        last[author] = stamp;
                        if let (Some((now, ready)), true) = (arrival, author != me) {
                            owner.deliver(stamp, now, ready);
                        }
                    }
                }
                if arrival.is_some() {
                    let gone = present.iter().zip(&now_present).filter(|(was, is)| **was && !**is).count();
                    Counters::add(&owner.counters().departures, gone as u64);
                }
                *present = now_present;
            }
            Observer::Messages { newest, at_newest, paged } => {
                let read = if *paged {
                    serde_json::from_str::<Page<'_>>(value).map(|p| p.page)
                } else {
                    serde_json::from_str::<Vec<Msg<'_>>>(value)
                };
                let messages = match read {
                    Ok(m) => m,
                    Err(e) => return unreadable(e),
                };
                // `_creationTime` is float milliseconds, so two commits less
                // than a quarter of a microsecond apart can share one: a
                // message at the watermark is new unless its id was seen there.
                let mut top = *newest;
                let mut at_top: Vec<String> = Vec::new();
                for message in &messages {
                    let seen = message.creation_time < *newest
                        || (message.creation_time == *newest && at_newest.iter().any(|id| *id == message.id));
                    if message.creation_time > top {
                        top = message.creation_time;
                        at_top.clear();
                    }
                    if message.creation_time == top {
                        at_top.push(message.id.clone().into_owned());
                    }
                    if seen {
                        continue;
                    }
                    let stamp = stamps(&message.body).next();
                    if let (Some((now, ready)), Some(stamp), true) =
                        (arrival, stamp, member_of(&message.author) != Some(me))
                    {
                        owner.deliver(stamp, now, ready);
                    }
                }
                if top == *newest {
                    for id in at_top {
                        if !at_newest.contains(&id) {
                            at_newest.push(id);
                        }
                    }
                } else {
                    *newest = top;
                    *at_newest = at_top;
                }
            }
            Observer::Stream { read } => {
                let messages: Vec<Msg<'_>> = match serde_json::from_str(value) {
                    Ok(m) => m,
                    Err(e) => return unreadable(e),
                };
                // Forget messages that scrolled out of the list.
                read.retain(|id, _| messages.iter().any(|m| m.id == id.as_str()));
                for message in &messages {
                    let body = message.body.as_ref();
                    let from = read.get(message.id.as_ref()).copied().unwrap_or(0).min(body.len());
                    // Tokens are whole once appended; read up to the last separator.
                    let upto = body.rfind(' ').map_or(from, |i| (i + 1).max(from));
                    if let (Some((now, ready)), false) = (arrival, member_of(&message.author) == Some(me)) {
                        for stamp in stamps(&body[from..upto]) {
                            owner.deliver(stamp, now, ready);
                        }
                    }
                    match read.get_mut(message.id.as_ref()) {
                        Some(done) => *done = upto,
                        None => {
                            read.insert(message.id.clone().into_owned(), upto);
                        }
                    }
                }
            }
        }
    }
}

/// The name of a room's member, as `user` or `author`: unique over the
/// run, since the backend rate-limits per user.
pub(crate) fn member_name(room: &str, member: usize) -> String {
    format!("{room}:m{member}")
}

/// The member number a row or message names (`"ROOM:m12"`).
fn member_of(name: &str) -> Option<usize> {
    name.rsplit_once(":m")?.1.parse().ok()
}

/// The write stamp a row carries: a presence row in its name (`"t123"`), a cursor in `x`.
fn row_stamp(kind: Kind, row: &Row<'_>) -> Option<u64> {
    match kind {
        Kind::Presence => stamps(row.name.as_deref()?).next(),
        Kind::Cursors => {
            let x = row.x?;
            (x >= 0.0 && x.fract() == 0.0).then_some(x as u64)
        }
        _ => None,
    }
}

/// Every `t<stamp>` word of a text.
pub(crate) fn stamps(text: &str) -> impl Iterator<Item = u64> + '_ {
    text.split(' ').filter_map(|w| w.strip_prefix('t')?.parse().ok())
}

/// The frames a new session opens with: `Connect`, then (as the official
/// clients do, before any query set) the identity if there is one.
pub(crate) fn opening_frames(token: Option<&str>) -> Vec<String> {
    let session = uuid::Uuid::new_v4().to_string();
    let mut frames = vec![wire::write_connect(&wire::Connect {
        session_id: &session,
        connection_count: 0,
        last_close_reason: "InitialConnect",
        max_observed_timestamp: None,
        client_ts: None,
    })];
    if let Some(token) = token {
        frames.push(wire::write_authenticate(0, wire::AuthToken::User(token)));
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Clock;
    use crate::plan::RoomPlan;

    fn transition(from: u64, to: u64, value: &str) -> String {
        let mut out = String::new();
        let version = |ts| wire::Version { query_set: 1, identity: 0, ts };
        let t = wire::Transition {
            start: version(from),
            end: version(to),
            modifications: vec![wire::Modification::Updated { query_id: 0, value: value.into(), journal: None }],
        };
        wire::write_transition(&t, None, 0, &mut out);
        out
    }

    /// A backend that reports the type of each frame it receives, answers
    /// the subscription (or refuses the token if told to), then answers one
    /// cursor move with its transition first (showing it as member 1's row)
    /// and its response second.
    async fn backend(reader: String, refuse_tokens: bool) -> (std::net::SocketAddr, flume::Receiver<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (types, received) = flume::unbounded();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
            while let Some(Ok(Message::Text(text))) = ws.next().await {
                let message = wire::parse_client_message(&text).unwrap();
                let frame: serde_json::Value = serde_json::from_str(&text).unwrap();
                let kind = frame["type"].as_str().unwrap().to_owned();
                let _ = types.send(kind);
                let out = match message {
                    convex_sync_types::ClientMessage::Authenticate { .. } if refuse_tokens => {
                        vec![wire::auth_error("bad signature", Some(0), true)]
                    }
                    convex_sync_types::ClientMessage::ModifyQuerySet { .. } => vec![transition(0, 5, "[]")],
                    convex_sync_types::ClientMessage::Mutation { args, .. } => {
                        let sent = wire::decode_args(args.get()).unwrap();
                        let x = sent.as_object().unwrap()["x"].clone();
                        let row = Value::object([
                            ("user", Value::from(reader.as_str())),
                            ("x", x),
                            ("y", Value::Float64(0.0)),
                            ("updatedAt", Value::Float64(0.0)),
                        ]);
                        vec![
                            transition(5, 10, &json::encode(&Value::Array(vec![row]))),
                            wire::mutation_success(0, &Value::Null, 10),
                        ]
                    }
                    _ => vec![],
                };
                for frame in out {
                    ws.send(Message::text(frame)).await.unwrap();
                }
            }
        });
        (addr, received)
    }

    fn owned(room: &Arc<Room>, recorder: &Arc<Recorder>) -> (Owner, flume::Receiver<Sample>) {
        let (tx, rx) = flume::unbounded();
        (Owner { kind: Kind::Cursors, room: room.clone(), member: 0, recorder: recorder.clone(), samples: tx }, rx)
    }

    fn cursors_room() -> Arc<Room> {
        Arc::new(Room::new(&RoomPlan { kind: Kind::Cursors, number: 0, members: 2 }, "t"))
    }

    #[tokio::test]
    async fn a_transition_before_its_response_makes_the_write_visible_at_once_and_readers_see_others() {
        let recorder = Arc::new(Recorder::new(Clock::start()));
        recorder.set_steady_from(0);
        let room = cursors_room();
        let (addr, types) = backend(member_name(&room.name, 1), false).await;
        let (owner, rx) = owned(&room, &recorder);
        let subscription = Value::object([("room", Value::from("t"))]);
        let conn = Conn::open(&format!("http://{addr}"), "cursors:list", subscription, None, owner).await.unwrap().conn;
        let stamp = recorder.clock().now();
        let args = Value::object([
            ("room", Value::from("t")),
            ("user", Value::from("x")),
            ("x", Value::Float64(stamp as f64)),
            ("y", Value::Float64(0.0)),
        ]);
        assert!(conn.write(Write { stamp, function: "cursors:move", args, update: true, reply: None }));
        let mut seen = Vec::new();
        while seen.len() < 3 {
            let sample =
                tokio::time::timeout(Duration::from_secs(5), rx.recv_async()).await.expect("samples arrive").unwrap();
            seen.push(sample.metric);
        }
        seen.sort_by_key(|m| m.name());
        assert_eq!(seen, vec![Metric::Mutation, Metric::Sync, Metric::Visible]);
        assert_eq!(recorder.total(Kind::Cursors, Metric::Visible).len(), 1);
        assert_eq!(recorder.counters(Kind::Cursors).received.load(std::sync::atomic::Ordering::Relaxed), 1);
        conn.close().await;
        assert_eq!(types.drain().collect::<Vec<_>>(), ["Connect", "ModifyQuerySet", "Mutation"]);
    }

    #[tokio::test]
    async fn a_token_is_sent_right_after_connect_and_a_refusal_fails_the_join() {
        let recorder = Arc::new(Recorder::new(Clock::start()));
        let room = cursors_room();
        let subscription = Value::object([("room", Value::from("t"))]);

        let (addr, types) = backend(member_name(&room.name, 1), false).await;
        let (owner, _rx) = owned(&room, &recorder);
        let url = format!("http://{addr}");
        let conn = Conn::open(&url, "cursors:list", subscription.clone(), Some("a.b.c"), owner).await.unwrap().conn;
        conn.close().await;
        assert_eq!(types.drain().collect::<Vec<_>>(), ["Connect", "Authenticate", "ModifyQuerySet"]);

        let (addr, _types) = backend(member_name(&room.name, 1), true).await;
        let (owner, _rx) = owned(&room, &recorder);
        let url = format!("http://{addr}");
        let refused = Conn::open(&url, "cursors:list", subscription, Some("a.b.c"), owner).await.unwrap_err();
        assert_eq!(refused.to_string(), "the backend refused the token: bad signature");
    }

    /// An action that fails after committing some of its updates: only
    /// those are owed to readers, and the failure is an error.
    #[tokio::test]
    async fn a_failed_action_owes_readers_only_what_it_committed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
            while let Some(Ok(Message::Text(text))) = ws.next().await {
                let out = match wire::parse_client_message(&text).unwrap() {
                    convex_sync_types::ClientMessage::ModifyQuerySet { .. } => transition(0, 5, "[]"),
                    convex_sync_types::ClientMessage::Action { request_id, .. } => {
                        let data =
                            Value::object([("code", Value::from("UpstreamFailed")), ("tokens", Value::Float64(2.0))]);
                        wire::action_failure(request_id, "the reply's source failed after 2 tokens", Some(&data))
                    }
                    _ => continue,
                };
                ws.send(Message::text(out)).await.unwrap();
            }
        });
        let recorder = Arc::new(Recorder::new(Clock::start()));
        let room = Arc::new(Room::new(&RoomPlan { kind: Kind::Reply, number: 0, members: 2 }, "t"));
        let (tx, rx) = flume::unbounded();
        let owner = Owner { kind: Kind::Reply, room: room.clone(), member: 0, recorder: recorder.clone(), samples: tx };
        let subscription = Value::object([("channel", Value::from("t"))]);
        let conn =
            Conn::open(&format!("http://{addr}"), "messages:list", subscription, None, owner).await.unwrap().conn;
        room.set_ready(1, 0);
        let stamp = recorder.clock().now();
        let updates = vec![stamp, stamp + 1, stamp + 2, stamp + 3];
        assert!(conn.call(Call {
            stamp,
            function: "messages:streamReply",
            args: Value::Object(Default::default()),
            updates
        }));
        let sample = tokio::time::timeout(Duration::from_secs(5), rx.recv_async()).await.expect("answered").unwrap();
        assert_eq!((sample.metric, sample.failure.as_deref()), (Metric::Action, Some("UpstreamFailed")));
        let counters = recorder.counters(Kind::Reply);
        let count = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!((count(&counters.sent), count(&counters.accepted), count(&counters.errors)), (4, 2, 1));
        // Reader 1 is owed the two committed tokens, not the two never written.
        assert_eq!(room.delivery().expected, 2);
        conn.close().await;
    }

    #[test]
    fn stamps_are_read_from_words_and_nothing_else() {
        assert_eq!(stamps("t12 hello t34 tx t").collect::<Vec<_>>(), vec![12, 34]);
        assert_eq!(member_of(&member_name("load-x-chat-3", 7)), Some(7));
        assert_eq!(member_of("7"), None);
        let row = |x: f64| Row { user: "r:m1".into(), x: Some(x), name: None };
        assert_eq!(row_stamp(Kind::Cursors, &row(1500.0)), Some(1500));
        assert_eq!(row_stamp(Kind::Cursors, &row(0.5)), None);
    }
}
