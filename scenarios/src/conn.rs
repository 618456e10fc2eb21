//! A lean protocol client for load: one task owns the socket, sends writes
//! as soon as they are due (pipelined, as the official clients send
//! mutations), and turns what arrives into samples.
//!
//! The conformance suite's client keeps a full history and a cloned view
//! per transition; that is right for judging a backend and far too heavy
//! for thousands of clients, so load uses this one. It speaks the same
//! protocol: `Connect`, one `ModifyQuerySet`, `Mutation`s; it reads
//! `Transition`s, `MutationResponse`s and `Ping`s.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::Value as Json;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use syncspec_protocol::client::{self, Socket};
use syncspec_protocol::wire;
use syncspec_reports::load::Metric;

use crate::frame::{error_code, Frame, Message as Msg, Row};
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
    pub(crate) args: Json,
    /// Whether readers should see it as an update (a leave or a stream's
    /// start and finish are not counted).
    pub(crate) update: bool,
    /// Where the outcome goes, for writers that need the returned value.
    pub(crate) reply: Option<oneshot::Sender<Result<Json, String>>>,
}

enum Command {
    Write(Write),
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
}

impl Conn {
    /// Connects, subscribes to `(function, args)`, waits for the first
    /// answer (the client is then ready: that answer is its baseline, not a
    /// sample), and starts the connection's task.
    pub(crate) async fn open(url: &str, function: &str, args: Json, owner: Owner) -> Result<(Conn, u64), ConnectError> {
        let socket = client::socket_url(url).map_err(|e| ConnectError::Url(e.to_string()))?;
        let joined = tokio::time::timeout(JOIN_TIMEOUT, async {
            let mut ws = client::open_socket(&socket).await.map_err(|e| ConnectError::Connect(e.to_string()))?;
            let hello = serde_json::json!({
                "type": "Connect", "sessionId": uuid::Uuid::new_v4().to_string(),
                "connectionCount": 0, "lastCloseReason": "InitialConnect",
            });
            let add = serde_json::json!({
                "type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1,
                "modifications": [{"type": "Add", "queryId": 0, "udfPath": function, "args": [args]}],
            });
            for frame in [hello, add] {
                ws.send(Message::text(frame.to_string()))
                    .await
                    .map_err(|e| ConnectError::Connect(format!("{socket}: {e}")))?;
            }
            loop {
                let frame = match ws.next().await {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(ConnectError::Connect(format!("{socket}: {e}"))),
                    None => return Err(ConnectError::Connect(format!("{socket}: closed before answering"))),
                };
                let Ok(parsed) = serde_json::from_str::<Frame<'_>>(&frame) else { continue };
                if parsed.kind != "Transition" {
                    continue;
                }
                for m in parsed.modifications {
                    match (m.kind.as_ref(), m.value) {
                        ("QueryUpdated", Some(value)) => return Ok((ws, value.get().to_owned())),
                        ("QueryFailed", _) => {
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
        let task = Task { ws, owner, observer, ready, pending: HashMap::new(), next_request: 0, latest_ts: 0 };
        tokio::spawn(task.run(rx));
        Ok((Conn { commands }, ready))
    }

    /// Queues a write; it is sent at once (writes are pipelined).
    pub(crate) fn write(&self, write: Write) -> bool {
        self.commands.send(Command::Write(write)).is_ok()
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
    reply: Option<oneshot::Sender<Result<Json, String>>>,
}

struct Task {
    ws: Socket,
    owner: Owner,
    observer: Observer,
    ready: u64,
    pending: HashMap<u32, Pending>,
    next_request: u32,
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
                    Some(Command::Close(done)) => {
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
        let frame = serde_json::json!({
            "type": "Mutation", "requestId": request_id, "udfPath": write.function, "args": [write.args],
        });
        Counters::add(&self.owner.counters().sent, 1);
        let lag = self.owner.recorder.clock().now().saturating_sub(write.stamp);
        self.owner.recorder.sample(self.owner.kind, Metric::SendLag, write.stamp, lag);
        self.pending.insert(
            request_id,
            Pending { stamp: write.stamp, update: write.update, committed: None, reply: write.reply },
        );
        self.ws.send(Message::text(frame.to_string())).await
    }

    fn on_frame(&mut self, text: &str, now: u64) {
        let owner = &self.owner;
        let frame = match serde_json::from_str::<Frame<'_>>(text) {
            Ok(frame) => frame,
            Err(e) => {
                owner.recorder.error(owner.kind, format!("unreadable frame: {e}"));
                return;
            }
        };
        match frame.kind.as_ref() {
            "Transition" => {
                for m in &frame.modifications {
                    match (m.kind.as_ref(), m.value) {
                        ("QueryUpdated", Some(value)) => {
                            self.observer.observe(value.get(), owner, Some((now, self.ready)))
                        }
                        ("QueryFailed", _) => {
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
            "MutationResponse" => {
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
                                frame.result.and_then(|r| serde_json::from_str(r.get()).ok()).unwrap_or(Json::Null);
                            let _ = reply.send(Ok(value));
                        }
                        let ts = frame.ts.as_deref().and_then(wire::decode_ts).unwrap_or(0);
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
                        let code = error_code(frame.error_data);
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
            "FatalError" => {
                let message = frame.error.as_deref().unwrap_or("");
                owner.recorder.error(owner.kind, format!("FatalError: {message}"));
            }
            _ => {}
        }
    }
}

/// What a reader remembers of its query's results, to find what is new.
#[derive(Debug)]
enum Observer {
    /// Rows keyed by member (`presence:list`, `cursors:list`): the stamp each row last carried.
    Rows { last: Vec<u64>, present: Vec<bool> },
    /// `messages:list`: the newest `_creationTime` seen.
    Messages { newest: f64 },
    /// A streamed message: characters of each message's body already read.
    Stream { read: HashMap<String, usize> },
}

impl Observer {
    fn new(kind: Kind, members: usize) -> Observer {
        match kind {
            Kind::Presence | Kind::Cursors => Observer::Rows { last: vec![0; members], present: vec![false; members] },
            Kind::Chat => Observer::Messages { newest: f64::NEG_INFINITY },
            Kind::Stream => Observer::Stream { read: HashMap::new() },
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
            Observer::Messages { newest } => {
                let messages: Vec<Msg<'_>> = match serde_json::from_str(value) {
                    Ok(m) => m,
                    Err(e) => return unreadable(e),
                };
                let mut top = *newest;
                for message in &messages {
                    if message.creation_time <= *newest {
                        continue;
                    }
                    top = top.max(message.creation_time);
                    let stamp = stamps(&message.body).next();
                    if let (Some((now, ready)), Some(stamp), true) =
                        (arrival, stamp, member_of(&message.author) != Some(me))
                    {
                        owner.deliver(stamp, now, ready);
                    }
                }
                *newest = top;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Clock;
    use crate::plan::RoomPlan;

    fn transition(from: u64, to: u64, value: &str) -> String {
        let v = |ts| format!(r#"{{"querySet":1,"identity":0,"ts":"{}"}}"#, wire::encode_ts(ts));
        format!(
            r#"{{"type":"Transition","startVersion":{},"endVersion":{},"modifications":[{{"type":"QueryUpdated","queryId":0,"value":{value},"logLines":[],"journal":null}}]}}"#,
            v(from),
            v(to)
        )
    }

    /// A backend that answers the subscription, then answers one cursor
    /// move with its transition first (showing it as member 1's row) and its
    /// response second.
    async fn backend(reader: String) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
            let mut frames = 0;
            while let Some(Ok(Message::Text(text))) = ws.next().await {
                frames += 1;
                let out = match frames {
                    2 => vec![transition(0, 5, "[]")],
                    3 => {
                        let mutation: serde_json::Value = serde_json::from_str(&text).unwrap();
                        assert_eq!(mutation["type"], "Mutation");
                        let x = mutation["args"][0]["x"].clone();
                        let row = serde_json::json!({"user": reader, "x": x, "y": 0.0, "updatedAt": 0.0});
                        vec![
                            transition(5, 10, &format!("[{row}]")),
                            format!(
                                r#"{{"type":"MutationResponse","requestId":0,"success":true,"result":null,"ts":"{}","logLines":[]}}"#,
                                wire::encode_ts(10)
                            ),
                        ]
                    }
                    _ => vec![],
                };
                for frame in out {
                    ws.send(Message::text(frame)).await.unwrap();
                }
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_transition_before_its_response_makes_the_write_visible_at_once_and_readers_see_others() {
        let recorder = Arc::new(Recorder::new(Clock::start()));
        recorder.set_steady_from(0);
        let room = Arc::new(Room::new(&RoomPlan { kind: Kind::Cursors, number: 0, members: 2 }, "t"));
        let addr = backend(member_name(&room.name, 1)).await;
        let (tx, rx) = flume::unbounded();
        let owner =
            Owner { kind: Kind::Cursors, room: room.clone(), member: 0, recorder: recorder.clone(), samples: tx };
        let (conn, _) = Conn::open(&format!("http://{addr}"), "cursors:list", serde_json::json!({"room": "t"}), owner)
            .await
            .unwrap();
        let stamp = recorder.clock().now();
        let args = serde_json::json!({"room": "t", "user": "x", "x": stamp as f64, "y": 0.0});
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
