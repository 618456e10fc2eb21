//! 9.11 to 9.14, limits and bad input continued: what any backend must
//! survive from a hostile client. A frame over its size limit, a client
//! that pipelines mutations and never reads, connections that send half an
//! upgrade request and then nothing, and a query set of a hundred thousand
//! queries.
//!
//! Each is judged on the protocol's answer to the hostile session and on a
//! bystander: another session of the same case that keeps calling while the
//! hostile client does its worst, and once more afterwards. The bystander is
//! judged on behaviour, not speed: each of its calls must be answered within
//! the run's patience ("still answered within seconds").
//!
//! The hostile client speaks WebSocket at the byte level over plain TCP
//! (`hostile/raw.rs`: a small receive window, half an HTTP request, and reading
//! exactly what the backend sent, pings unanswered), so against an
//! `https://` target these cases are Unimplemented.

mod raw;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt as _;
use syncspec_protocol::client::{self, Client, MutationOutcome, Patience};
use syncspec_protocol::value::Value;
use syncspec_protocol::wire::{self, ModificationKind, QueryId, QuerySetChange, ServerFrameKind};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::case;
use super::handshake::{plain_tcp_addr, uuid_like};
use crate::suite::{obj, value_in, wait_view, Case, CaseResult, Ctx, Judge};

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!(
            "9.11",
            "a frame over the size limit is refused with a close code",
            "an oversize message gets the protocol's answer (close 1009, or FatalError and a close), never a bare \
             TCP close, and other sessions are served throughout",
            oversize_frame
        ),
        case!(
            "9.12",
            "a client that never reads is cut off",
            "a backend bounds what it keeps for a client that does not read: it ends that session, and other \
             sessions are served throughout",
            never_reads
        ),
        case!(
            "9.13",
            "connections that send half an upgrade request are closed",
            "a connection that sends part of its HTTP request and then nothing is closed within 35 s, and others \
             connect and are served meanwhile",
            half_open_handshakes
        ),
        case!(
            "9.14",
            "a query set of 100,000 queries is refused or served whole",
            "a query set too large to serve ends the session with FatalError, never silent partial service, and \
             other sessions are served throughout",
            huge_query_set
        ),
    ]
}

/// 9.11's arguments: twice Convex's 16 MiB limit on function arguments, and
/// past the reference's 24 MiB frame limit, so a backend refuses the frame
/// itself. (A frame under the frame limit gets 9.5's failed call.)
const OVERSIZE_BYTES: usize = 32 * 1024 * 1024;

/// 9.12's pipelined mutations: three times the reference's bound of 10,000
/// unsent frames, so a backend that bounds a session's output must act.
const NEVER_READ_MUTATIONS: u32 = 30_000;
/// How long 9.12's client reads nothing after pipelining them. Under the
/// reference's 30 s write timeout, so only a bound on what the backend keeps
/// can end the session by then, not a write that stalled too long.
const NEVER_READ_FOR: Duration = Duration::from_secs(5);
/// How often 9.12's client sends one more mutation after the first ones. It
/// never reads, but it does not go quiet either: a quiet client would meet
/// an idle timeout (3 s on the suite's reference server) instead of a bound
/// on what is kept for it.
const KEEP_WRITING_EVERY: Duration = Duration::from_millis(200);
/// The receive buffer 9.12's client asks for (the kernel doubles it).
const SMALL_RECEIVE_BUFFER: u32 = 4096;
/// The segment size 9.12's client advertises. A backend's kernel sizes its
/// send buffer from the segment size, so small segments keep the backend's
/// output in the backend, where its bound can see it, instead of megabytes
/// of it in the kernel (about 4 MB on loopback with full-size segments).
const SMALL_SEGMENT: u32 = 536;
/// How long 9.12's client reads, once it reads again, before it judges.
const DRAIN_FOR: Duration = Duration::from_secs(10);

/// 9.13's connections that send half an upgrade request.
const HALF_OPEN: usize = 20;
/// How soon 9.13's connections must be closed: 30 s, a common header-read
/// timeout (hyper's default), and 5 s for a busy machine.
const HALF_OPEN_BOUND: Duration = Duration::from_secs(35);
/// Half an upgrade request: the request line and some headers, no blank line.
const HALF_REQUEST: &str = "GET /api/sync HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n";

/// 9.14's queries, in one `ModifyQuerySet`: ten times the reference's
/// 10,000 a session.
const HUGE_QUERY_SET: QueryId = 100_000;
/// How long 9.14 reads on after a transition that answered only some of
/// the queries, for the rest or an error.
const REST_OF_QUERY_SET: Duration = Duration::from_secs(2);

/// How long a raw connection may take to open.
const CONNECT: Duration = Duration::from_secs(5);

/// How often the bystander calls while a hostile client is at work.
const BYSTANDER_PACE: Duration = Duration::from_millis(100);

/// Another session of the case, calling while a hostile client does its
/// worst. It does not reconnect, so a backend that drops it shows.
#[derive(Debug)]
struct Bystander {
    client: Client,
    name: String,
    query: QueryId,
    /// Increments answered so far: its subscription must reach this count.
    count: i64,
}

impl Bystander {
    /// Connects and subscribes to a counter of its own.
    async fn start(ctx: &Ctx, judge: &mut Judge) -> Option<Bystander> {
        let client = match ctx.client_once().await {
            Ok(client) => client,
            Err(e) => {
                judge.fail(format!("the bystander could not connect: {e}"));
                return None;
            }
        };
        let name = ctx.fresh("bystander");
        let query = client.subscribe("counters:get", obj([("name", name.as_str().into())]));
        wait_view(judge, &client, "the bystander's first result", |v| v.results.contains_key(&query)).await?;
        Some(Bystander { client, name, query, count: 0 })
    }

    async fn increment(&self) -> Result<MutationOutcome, client::ClientError> {
        self.client.mutation("counters:increment", obj([("name", self.name.as_str().into())])).await
    }

    /// Runs `hostile` while incrementing every [`BYSTANDER_PACE`], at least
    /// once; a call that is not answered with success fails the case, as
    /// being served `what` (`"while …"`), and ends the bystander's calls.
    async fn during<T>(&mut self, judge: &mut Judge, what: &str, hostile: impl std::future::Future<Output = T>) -> T {
        let finished = AtomicBool::new(false);
        let hostile = async {
            let out = hostile.await;
            finished.store(true, Ordering::Relaxed);
            out
        };
        let calls = async {
            let mut answered = 0;
            loop {
                match self.increment().await {
                    Ok(MutationOutcome::Ok { .. }) => answered += 1,
                    other => return (answered, Some(other)),
                }
                if finished.load(Ordering::Relaxed) {
                    return (answered, None);
                }
                tokio::time::sleep(BYSTANDER_PACE).await;
            }
        };
        let (out, (answered, stopped)) = tokio::join!(hostile, calls);
        self.count += answered;
        if let Some(outcome) = stopped {
            judge.fail(format!("the bystander's increment {} {what} was not served: {outcome:?}", answered + 1));
        }
        out
    }

    /// One more increment `what` (`"after …"`), and its subscription showing every one.
    async fn after(&mut self, judge: &mut Judge, what: &str) {
        match self.increment().await {
            Ok(MutationOutcome::Ok { .. }) => self.count += 1,
            other => return judge.fail(format!("the bystander's increment {what} was not served: {other:?}")),
        }
        let (query, count) = (self.query, self.count);
        wait_view(judge, &self.client, &format!("the bystander's count of {count} {what}"), |v| {
            value_in(v, query) == Some(&Value::Int64(count))
        })
        .await;
    }
}

/// How a raw socket's session ended, as its client saw it.
#[derive(Debug, PartialEq)]
enum End {
    /// A close frame, with its code and reason if it had a code.
    Close(Option<(u16, String)>),
    /// The connection ended with no close frame (a reset, or the end of the
    /// stream): what the client saw. Its application sees 1006.
    Bare(String),
    /// A frame the client could not read (over its own size limit).
    Unreadable(String),
    /// Still open: the reader had what it waited for.
    Open,
    /// Still open, and nothing it waited for came within this long.
    Silent(Duration),
}

/// Reads messages, handing each to `read`, until `read` says it has what
/// it waited for, the session ends, or `patience` runs out.
async fn watch(reader: &mut raw::Reader, patience: &Patience, mut read: impl FnMut(&str) -> bool) -> End {
    let reading = async {
        loop {
            match reader.next().await {
                raw::Received::Text(text) if read(&text) => return End::Open,
                raw::Received::Text(_) => {}
                raw::Received::Close(close) => return End::Close(close),
                raw::Received::Ended(how) => return End::Bare(how),
                raw::Received::Unreadable(why) => return End::Unreadable(why),
            }
        }
    };
    patience.wait(reading).await.unwrap_or_else(End::Silent)
}

/// Upgrades a connection to the backend to a sync socket, and sends `Connect`.
async fn open_session(ctx: &Ctx, stream: TcpStream) -> Result<(raw::Reader, raw::Writer), String> {
    let host = ctx.url.trim_start_matches("http://").trim_start_matches("ws://").trim_end_matches('/');
    let (reader, mut writer) = raw::upgrade(stream, host, "/api/sync", CONNECT).await?;
    let session = uuid_like();
    let connect = wire::Connect {
        session_id: &session,
        connection_count: 0,
        last_close_reason: "InitialConnect",
        max_observed_timestamp: None,
        client_ts: None,
    };
    writer.texts(&[wire::write_connect(&connect)]).await.map_err(|e| format!("could not send Connect: {e}"))?;
    Ok((reader, writer))
}

/// Connects to `addr` and opens a sync session there; a failure to is the case's.
async fn plain_session(ctx: &Ctx, judge: &mut Judge, addr: SocketAddr) -> Option<(raw::Reader, raw::Writer)> {
    let opened = match tokio::time::timeout(CONNECT, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => open_session(ctx, stream).await,
        Ok(Err(e)) => Err(format!("could not connect to {addr}: {e}")),
        Err(_) => Err(format!("could not connect to {addr} within {CONNECT:?}")),
    };
    opened.map_err(|e| judge.fail(e)).ok()
}

/// Judges how a session that was refused ended: a close frame with a code
/// (`expected`, if given, or any code after a `FatalError`) passes; one
/// with another code or none, or a `FatalError` and then no close frame, is
/// NonStrict; no close frame and no `FatalError` fails.
fn judge_end(judge: &mut Judge, what: &str, fatal: bool, end: &End, expected: Option<u16>) {
    match end {
        End::Close(Some((code, _))) if fatal || expected.is_none_or(|e| e == *code) => {}
        End::Close(Some((code, reason))) => judge.non_strict(format!(
            "{what}: closed with {code} {reason:?} and no FatalError; RFC 6455 §7.4.1 names {} for it",
            expected.unwrap_or_default()
        )),
        End::Close(None) => {
            judge.non_strict(format!("{what}: a close frame with no code, so the client cannot say why"))
        }
        End::Bare(how) if fatal => {
            judge.non_strict(format!("{what}: a FatalError, then the connection ended with no close frame ({how})"))
        }
        End::Bare(how) => judge.fail(format!(
            "{what}: the connection ended with no close frame and no FatalError ({how}); the client sees 1006 and \
             cannot tell it from a network failure"
        )),
        End::Unreadable(e) => judge.fail(format!("{what}: the backend sent a frame the client could not read: {e}")),
        End::Open => judge.fail(format!("{what}: the session went on")),
        End::Silent(waited) => judge.fail(format!("{what}: no answer within {waited:?}")),
    }
}

/// What a server frame is, read with the flat reader.
fn kind(text: &str) -> Option<ServerFrameKind> {
    wire::peek(text).ok().map(|f| f.kind)
}

/// What the hostile client of every case here needs, against an `https://` target.
const NEEDS: &str = "a plain-TCP connection whose WebSocket bytes the case writes and reads itself";

async fn oversize_frame(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(addr) = plain_tcp_addr(&ctx, &mut judge, NEEDS).await else { return judge.finish() };
    let Some(mut bystander) = Bystander::start(&ctx, &mut judge).await else { return judge.finish() };
    let Some((mut reader, mut writer)) = plain_session(&ctx, &mut judge, addr).await else { return judge.finish() };
    let args = obj([
        ("channel", ctx.fresh("oversize").into()),
        ("author", "a".into()),
        ("body", "x".repeat(OVERSIZE_BYTES).into()),
    ]);
    let frame = wire::write_mutation(1, "messages:send", &args);
    drop(args);
    // Each frame the hostile session got: its type, `success`, and its start.
    let mut seen = Vec::new();
    let end = bystander
        .during(&mut judge, "while a 32 MiB frame arrived", async {
            // Sent from a task of its own: a backend that refuses the frame
            // stops reading it, and its answer must be read meanwhile.
            let sending = tokio::spawn(async move { writer.texts(&[frame]).await });
            let end = watch(&mut reader, &ctx.patience, |text| {
                let frame = wire::peek(text).ok();
                let kind = frame.as_ref().map(|f| f.kind);
                seen.push((kind, frame.and_then(|f| f.success), text.chars().take(300).collect::<String>()));
                kind == Some(ServerFrameKind::MutationResponse)
            })
            .await;
            sending.abort();
            end
        })
        .await;
    let fatal = seen.iter().any(|(kind, ..)| *kind == Some(ServerFrameKind::FatalError));
    match seen.iter().find(|(kind, ..)| *kind == Some(ServerFrameKind::MutationResponse)) {
        // The backend read the whole frame and refused the call: an answer too.
        Some((_, Some(false), _)) => {}
        Some((.., response)) => judge.fail(format!("a 32 MiB argument was not refused: {response}")),
        None => judge_end(&mut judge, "a 32 MiB frame", fatal, &end, Some(1009)),
    }
    bystander.after(&mut judge, "after the oversize frame").await;
    judge.finish()
}

/// Opens a sync socket that reads slowly: a small receive buffer and small
/// segments, asked for before connecting so the handshake advertises them.
async fn small_window_session(ctx: &Ctx, addr: SocketAddr) -> Result<(raw::Reader, raw::Writer), String> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4() } else { tokio::net::TcpSocket::new_v6() }
        .map_err(|e| format!("could not make a socket: {e}"))?;
    socket.set_recv_buffer_size(SMALL_RECEIVE_BUFFER).map_err(|e| format!("could not set SO_RCVBUF: {e}"))?;
    #[cfg(unix)]
    socket2::SockRef::from(&socket).set_mss(SMALL_SEGMENT).map_err(|e| format!("could not set TCP_MAXSEG: {e}"))?;
    let stream = tokio::time::timeout(CONNECT, socket.connect(addr))
        .await
        .map_err(|_| format!("could not connect to {addr} within {CONNECT:?}"))?
        .map_err(|e| format!("could not connect to {addr}: {e}"))?;
    open_session(ctx, stream).await
}

/// Reads what a socket holds until its session ends, counting the mutation
/// responses; once `expected` have come, waits a second more for the end,
/// and reads for at most [`DRAIN_FOR`] in all.
async fn drain(reader: &mut raw::Reader, expected: usize) -> (usize, End) {
    let mut responses = 0;
    let mut deadline = Instant::now() + DRAIN_FOR;
    let mut settling = false;
    loop {
        if responses >= expected && !settling {
            settling = true;
            deadline = deadline.min(Instant::now() + Duration::from_secs(1));
        }
        let end = match tokio::time::timeout_at(deadline, reader.next()).await {
            Ok(raw::Received::Text(text)) => {
                responses += usize::from(kind(&text) == Some(ServerFrameKind::MutationResponse));
                continue;
            }
            Ok(raw::Received::Close(close)) => End::Close(close),
            Ok(raw::Received::Ended(how)) => End::Bare(how),
            Ok(raw::Received::Unreadable(why)) => End::Unreadable(why),
            Err(_) if responses >= expected => End::Open,
            Err(_) => End::Silent(DRAIN_FOR),
        };
        return (responses, end);
    }
}

async fn never_reads(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(addr) = plain_tcp_addr(&ctx, &mut judge, NEEDS).await else { return judge.finish() };
    let Some(mut bystander) = Bystander::start(&ctx, &mut judge).await else { return judge.finish() };
    let (mut reader, mut writer) = match small_window_session(&ctx, addr).await {
        Ok(halves) => halves,
        Err(e) => {
            judge.fail(e);
            return judge.finish();
        }
    };
    // Each mutation lacks its one required argument. Valid ones would run one
    // at a time, and a client this fast would meet a bound on queued
    // mutations first (Convex closes at 1,000 with 1013); refused ones are
    // answered at once, so only the answers pile up.
    let frames: Vec<String> =
        (0..NEVER_READ_MUTATIONS).map(|i| wire::write_mutation(i, "counters:increment", &obj([]))).collect();
    // Written from a task of its own: a backend that ends the session may
    // stop reading before all of it is written.
    let writing = tokio::spawn(async move {
        writer.texts(&frames).await?;
        for i in NEVER_READ_MUTATIONS.. {
            tokio::time::sleep(KEEP_WRITING_EVERY).await;
            writer.texts(&[wire::write_mutation(i, "counters:increment", &obj([]))]).await?;
        }
        Ok::<_, std::io::Error>(())
    });
    bystander.during(&mut judge, "while a client read nothing", tokio::time::sleep(NEVER_READ_FOR)).await;
    let (responses, end) = drain(&mut reader, NEVER_READ_MUTATIONS as usize).await;
    writing.abort();
    let what = format!(
        "a client that pipelined {NEVER_READ_MUTATIONS} mutations and then read nothing for {} s",
        NEVER_READ_FOR.as_secs()
    );
    match end {
        End::Close(Some(_)) => {}
        End::Close(None) => judge.non_strict(format!("{what} was closed with no code, so it cannot say why")),
        End::Bare(how) => judge.non_strict(format!(
            "{what} was cut off with no close frame ({how}, after {responses} responses): it sees 1006 and cannot \
             tell it from a network failure"
        )),
        End::Unreadable(e) => judge.fail(format!("{what} got a frame it could not read: {e}")),
        End::Open | End::Silent(_) => judge.fail(format!(
            "{what} still had its session when it read again: {responses} responses waited for it, and the socket \
             stayed open"
        )),
    }
    bystander.after(&mut judge, "after the client that never read").await;
    judge.finish()
}

async fn half_open_handshakes(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(addr) = plain_tcp_addr(&ctx, &mut judge, NEEDS).await else { return judge.finish() };
    let Some(mut bystander) = Bystander::start(&ctx, &mut judge).await else { return judge.finish() };
    let opened = Instant::now();
    let mut half = Vec::with_capacity(HALF_OPEN);
    for i in 0..HALF_OPEN {
        let sent = tokio::time::timeout(CONNECT, async {
            let mut stream = TcpStream::connect(addr).await?;
            stream.write_all(HALF_REQUEST.as_bytes()).await?;
            Ok::<_, std::io::Error>(stream)
        })
        .await;
        match sent {
            Ok(Ok(stream)) => half.push(stream),
            Ok(Err(e)) => {
                judge.fail(format!("could not open half-sent connection {i}: {e}"));
                return judge.finish();
            }
            Err(_) => {
                judge.fail(format!("could not open half-sent connection {i} within {CONNECT:?}"));
                return judge.finish();
            }
        }
    }
    // A newcomer connects and is served while they are held.
    match ctx.client_once().await {
        Ok(newcomer) => {
            let r = newcomer.mutation("counters:increment", obj([("name", ctx.fresh("newcomer").into())])).await;
            judge.expect(matches!(r, Ok(MutationOutcome::Ok { .. })), || {
                format!("a newcomer was not served while {HALF_OPEN} half-sent requests were held: {r:?}")
            });
        }
        Err(e) => {
            judge.fail(format!("a newcomer could not connect while {HALF_OPEN} half-sent requests were held: {e}"))
        }
    }
    let deadline = opened + HALF_OPEN_BOUND;
    let closed = bystander
        .during(&mut judge, "while half-sent requests were held", async {
            // Each connection is closed once a read sees its end (or a reset),
            // whatever the backend wrote first (a 408, say).
            let mut closing: FuturesUnordered<_> = half
                .into_iter()
                .map(|mut stream| async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = stream.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                    }
                })
                .collect();
            let mut closed = 0;
            while let Ok(Some(())) = tokio::time::timeout_at(deadline, closing.next()).await {
                closed += 1;
            }
            closed
        })
        .await;
    judge.expect(closed == HALF_OPEN, || {
        format!(
            "{} of {HALF_OPEN} connections that sent half an upgrade request and then nothing were still open {} s \
             after they opened",
            HALF_OPEN - closed,
            HALF_OPEN_BOUND.as_secs()
        )
    });
    bystander.after(&mut judge, "after the half-sent requests").await;
    judge.finish()
}

/// Which of 9.14's queries the backend has answered, read from its frames.
#[derive(Debug)]
struct Coverage {
    /// Per query id: answered (`QueryUpdated` or `QueryFailed`).
    answered: Vec<bool>,
    count: usize,
    /// Results that are not the query's own value: the first few.
    wrong: Vec<String>,
    /// A transition reached the query set's first version.
    reached: bool,
    /// A `FatalError` came.
    fatal: bool,
}

impl Coverage {
    fn new(queries: QueryId) -> Coverage {
        Coverage { answered: vec![false; queries as usize], count: 0, wrong: vec![], reached: false, fatal: false }
    }

    fn complete(&self) -> bool {
        self.count == self.answered.len()
    }

    /// Reads one server frame; query `i` echoes the float `i`.
    fn read(&mut self, text: &str) {
        let Ok(frame) = wire::peek(text) else { return };
        match frame.kind {
            ServerFrameKind::FatalError => self.fatal = true,
            ServerFrameKind::Transition => {
                self.reached |= frame.end_version.is_some_and(|v| v.query_set >= 1);
                for m in &frame.modifications {
                    let Some(id) = m.query_id.filter(|&id| (id as usize) < self.answered.len()) else { continue };
                    match m.kind {
                        ModificationKind::QueryUpdated => {
                            let value = m.value.map_or("", |v| v.get());
                            if value.parse::<f64>().ok() != Some(f64::from(id)) && self.wrong.len() < 3 {
                                self.wrong.push(format!("query {id} answered {value}"));
                            }
                        }
                        ModificationKind::QueryFailed => {}
                        _ => continue,
                    }
                    if !std::mem::replace(&mut self.answered[id as usize], true) {
                        self.count += 1;
                    }
                }
            }
            _ => {}
        }
    }

    /// The first query id with no answer.
    fn first_missing(&self) -> Option<usize> {
        self.answered.iter().position(|a| !a)
    }
}

async fn huge_query_set(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(addr) = plain_tcp_addr(&ctx, &mut judge, NEEDS).await else { return judge.finish() };
    let Some(mut bystander) = Bystander::start(&ctx, &mut judge).await else { return judge.finish() };
    let Some((mut reader, mut writer)) = plain_session(&ctx, &mut judge, addr).await else { return judge.finish() };
    let args: Vec<Value> = (0..HUGE_QUERY_SET).map(|i| obj([("value", Value::Float64(f64::from(i)))])).collect();
    let changes: Vec<QuerySetChange<'_>> = args
        .iter()
        .zip(0..)
        .map(|(args, query_id)| QuerySetChange::Add { query_id, udf_path: "values:echo", args, journal: None })
        .collect();
    let frame = wire::write_modify_query_set(0, 1, &changes);
    drop(changes);
    drop(args);
    let mut coverage = Coverage::new(HUGE_QUERY_SET);
    let end = bystander
        .during(&mut judge, "while a query set of 100,000 arrived", async {
            let sending = tokio::spawn(async move { writer.texts(&[frame]).await });
            let mut end = watch(&mut reader, &ctx.patience, |text| {
                coverage.read(text);
                coverage.fatal || coverage.reached
            })
            .await;
            if end == End::Open && !coverage.fatal && !coverage.complete() {
                // Served in part so far: the rest, or an error, may follow.
                end = watch(&mut reader, &Patience::fixed(REST_OF_QUERY_SET), |text| {
                    coverage.read(text);
                    coverage.fatal || coverage.complete()
                })
                .await;
            }
            if end == End::Open && coverage.fatal {
                // The close that should follow the FatalError.
                end = watch(&mut reader, &Patience::fixed(REST_OF_QUERY_SET), |_| false).await;
            }
            sending.abort();
            end
        })
        .await;
    let what = format!("a ModifyQuerySet adding {HUGE_QUERY_SET} queries");
    let served = coverage.reached && coverage.complete();
    if !coverage.wrong.is_empty() {
        judge.fail(format!("{what}: results for other queries' arguments: {}", coverage.wrong.join("; ")));
    }
    // Served whole is the other passing answer.
    if coverage.fatal || (!served && matches!(end, End::Close(_) | End::Bare(_))) {
        let what =
            if coverage.count > 0 { format!("{what} ({} of them answered first)", coverage.count) } else { what };
        match (coverage.fatal, &end) {
            (true, End::Silent(_)) => judge.fail(format!("{what}: a FatalError, but the socket stayed open")),
            _ => judge_end(&mut judge, &what, coverage.fatal, &end, None),
        }
    } else if coverage.reached && !served {
        judge.fail(format!(
            "{what}: silent partial service: {} of them answered, no answer or error for the rest (the first \
             unanswered is query {}) within {} s of the transition",
            coverage.count,
            coverage.first_missing().unwrap_or_default(),
            REST_OF_QUERY_SET.as_secs()
        ));
    } else if !served {
        judge_end(&mut judge, &what, false, &end, None);
    }
    bystander.after(&mut judge, "after the huge query set").await;
    judge.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkers::Outcome;
    use crate::suite::run::{Histories, RunConfig};
    use crate::suite::{run_patience, Auth};

    #[tokio::test]
    async fn the_cases_are_unimplemented_against_an_https_target() {
        let config = RunConfig {
            url: "https://syncspec.invalid".to_owned(),
            patterns: vec!["9.*".to_owned()],
            out: None,
            histories: Histories::All,
            verbose: false,
            auth: Auth::None,
            idle_for: Duration::ZERO,
        };
        for case in cases() {
            let result = (case.run)(Ctx::new(&config, case.id, &run_patience())).await;
            assert_eq!(result.outcome, Outcome::Unimplemented, "{}: {:?}", case.id, result.evidence);
            assert!(result.evidence[0].message.contains("https://syncspec.invalid is https"), "{:?}", result.evidence);
        }
    }

    fn outcome(fatal: bool, end: End, expected: Option<u16>) -> Outcome {
        let mut judge = Judge::default();
        judge_end(&mut judge, "x", fatal, &end, expected);
        judge.finish().outcome
    }

    #[test]
    fn a_refused_session_ends_with_a_close_code_and_never_bare() {
        let close = |code: u16| End::Close(Some((code, "r".to_owned())));
        assert_eq!(outcome(false, close(1009), Some(1009)), Outcome::Pass);
        assert_eq!(outcome(true, close(1002), Some(1009)), Outcome::Pass);
        assert_eq!(outcome(false, close(1002), None), Outcome::Pass);
        assert_eq!(outcome(false, close(1002), Some(1009)), Outcome::NonStrict);
        assert_eq!(outcome(false, End::Close(None), None), Outcome::NonStrict);
        assert_eq!(outcome(true, End::Bare("reset".into()), None), Outcome::NonStrict);
        assert_eq!(outcome(false, End::Bare("reset".into()), Some(1009)), Outcome::Fail);
        assert_eq!(outcome(false, End::Silent(Duration::from_secs(10)), None), Outcome::Fail);
        assert_eq!(outcome(false, End::Unreadable("too big".into()), None), Outcome::Fail);
    }

    #[test]
    fn coverage_counts_each_query_once_and_names_wrong_results() {
        let mut coverage = Coverage::new(3);
        let transition = |end_set: u32, modifications: &str| {
            format!(
                r#"{{"type":"Transition","startVersion":{{"querySet":0,"identity":0,"ts":"AAAAAAAAAAA="}},"endVersion":{{"querySet":{end_set},"identity":0,"ts":"AQAAAAAAAAA="}},"modifications":[{modifications}]}}"#
            )
        };
        coverage.read(&transition(
            1,
            r#"{"type":"QueryUpdated","queryId":0,"value":0.0,"logLines":[],"journal":null},{"type":"QueryUpdated","queryId":1,"value":1,"logLines":[],"journal":null}"#,
        ));
        assert!(coverage.reached && !coverage.complete() && coverage.wrong.is_empty());
        assert_eq!(coverage.first_missing(), Some(2));
        coverage.read(&transition(
            1,
            r#"{"type":"QueryUpdated","queryId":1,"value":1.0,"logLines":[],"journal":null},{"type":"QueryFailed","queryId":2,"errorMessage":"no","logLines":[],"journal":null}"#,
        ));
        assert!(coverage.complete() && coverage.count == 3);
        coverage
            .read(&transition(1, r#"{"type":"QueryUpdated","queryId":2,"value":7.0,"logLines":[],"journal":null}"#));
        assert_eq!(coverage.wrong, ["query 2 answered 7.0"]);
        coverage.read(r#"{"type":"FatalError","error":"TooManyQueries: no"}"#);
        assert!(coverage.fatal);
    }
}
