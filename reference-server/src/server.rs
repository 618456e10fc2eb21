//! The tokio shell around the core: it owns sockets, time, keys and threads.
//!
//! The accept loop hands every connection to `http`, which answers the HTTP
//! API and upgrades `/api/sync` and `/api/{version}/sync` to
//! `connection::serve`; `/_syncspec/control` (only with test hooks on) lets
//! tests drop sockets at chosen moments and read counters. A ticker feeds
//! `Input::Tick` once a second. With `workers > 0`, mutations execute on that
//! many threads with no lock held, so commits can land between a mutation's
//! execution and its own commit and OCC conflicts happen for real.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpListener;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tracing::{info, warn};

use syncspec_protocol::value::Value;

use crate::admission::{Admission, Limits, LogGate};
use crate::auth::Verifier;
use crate::core::{self, Call, CallId, Core, Failure, Fault, Frame, Input, Job, Output};
use crate::http;
use crate::metrics::Metrics;
use crate::subscriptions::ConnId;

/// The largest frame accepted by default (`Limits::max_frame_bytes`): room
/// for 16 MiB of arguments and the envelope.
pub const MAX_FRAME_BYTES: usize = 24 * 1024 * 1024;
/// Per-connection read buffer (tungstenite's default is 128 KiB, allocated
/// eagerly, which costs over a GiB at ten thousand connections).
pub const READ_BUFFER_BYTES: usize = 4 * 1024;
/// Frames queue in the write buffer up to this size before a write; the
/// writer flushes after each batch, so this only lets a batch go out in one
/// write. The buffer grows on demand rather than being allocated up front.
pub const WRITE_BUFFER_BYTES: usize = 16 * 1024;

/// How the server runs.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The core's settings.
    pub core: core::Config,
    /// Threads executing mutations; 0 executes them inside the core's step.
    pub workers: usize,
    /// Whether `/_syncspec/control` accepts test commands.
    pub test_hooks: bool,
    /// WebSocket pings and the idle timeout.
    pub keepalive: Keepalive,
    /// The keys `User` tokens are verified with.
    pub auth: Verifier,
    /// What clients may hold open.
    pub limits: Limits,
}

impl ServerConfig {
    /// The catalogue's defaults, two workers, Convex's keepalive, no keys.
    pub fn standard() -> ServerConfig {
        ServerConfig {
            core: core::Config::standard(),
            workers: 2,
            test_hooks: false,
            keepalive: Keepalive::default(),
            auth: Verifier::none(),
            limits: Limits::default(),
        }
    }
}

/// Keepalive as Convex does it: a WebSocket ping frame to every socket at a
/// fixed interval (the official clients answer with pongs and send nothing
/// else while idle), and a socket closed once nothing at all (no frame, no
/// pong) has arrived from it for the idle timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keepalive {
    /// How often a ping frame goes out.
    pub ping_interval: Duration,
    /// How long a socket may stay silent before it is closed (`1001 ClientTimeout`).
    pub idle_timeout: Duration,
}

impl Default for Keepalive {
    /// Convex's intervals: a ping every 5 s, closed after 120 s of silence.
    fn default() -> Keepalive {
        Keepalive { ping_interval: Duration::from_secs(5), idle_timeout: Duration::from_secs(120) }
    }
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listener failed.
    #[error("could not accept connections on {addr}: {source}")]
    Accept {
        /// The listener's address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// A message from the core (or a hook) to one connection's writer.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// Encode and send a frame.
    Frame(Frame),
    /// Send a close frame and end.
    Close(u16, String),
    /// End at once without a close frame (a dropped socket).
    Drop,
}

/// One socket's writer, as the core's steps reach it.
#[derive(Debug)]
struct Conn {
    tx: UnboundedSender<Outbound>,
    backlog: Arc<Backlog>,
}

/// What a socket's writer has not written yet, and the signal that it is
/// too much.
#[derive(Debug, Default)]
pub(crate) struct Backlog {
    /// Frames queued for the writer and not yet flushed to the socket.
    pub(crate) unsent: std::sync::atomic::AtomicUsize,
    /// Raised once when `unsent` passes the limit; the connection ends.
    pub(crate) overflowed: tokio::sync::Notify,
}

/// The core and the way to reach each connection and HTTP call, under one lock.
#[derive(Debug)]
struct Inner {
    core: Core,
    conns: HashMap<ConnId, Conn>,
    calls: HashMap<CallId, oneshot::Sender<Result<Value, Failure>>>,
}

/// What every task of one server shares.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The core and the connection table. A `std` mutex, not tokio's: it is
    /// held only for synchronous core steps, never across an `.await`, and
    /// worker threads outside the runtime take it too.
    inner: Mutex<Inner>,
    /// Hands jobs to the worker threads; `None` executes inline, or after shutdown.
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    /// Ids for new connections.
    next_conn: AtomicU64,
    /// Ids for HTTP calls.
    next_call: AtomicU64,
    /// The server's settings, for the shell's parts.
    pub(crate) config: ServerConfig,
    /// What checks tokens: the configured keys, or under the
    /// `accept-any-token` fault a verifier that believes anything.
    pub(crate) verifier: Verifier,
    /// Times the core asked to be woken at (`Output::Wake`), for the timer task.
    wakes: UnboundedSender<u64>,
    /// Test hook: drop the socket of the next mutation that commits, before its response.
    drop_after_next_commit: AtomicBool,
    /// Test hook: drop the socket that sends the next mutation, unread.
    drop_on_next_mutation: AtomicBool,
    /// The open connections, against `config.limits`.
    pub(crate) admission: Arc<Admission>,
    /// One line a second about refused connections.
    pub(crate) refusals: LogGate,
    /// One line a second about sockets cut off for not reading.
    pub(crate) slow_readers: LogGate,
    /// One line a second about sessions ended with a `FatalError`.
    fatal_log: LogGate,
    /// What `GET /metrics` shows.
    pub(crate) metrics: Metrics,
    /// Permits to decode a frame over `connection::LARGE_FRAME_BYTES`
    /// (`Limits::max_large_parses`), so a flood of large frames costs
    /// bounded memory and CPU and queues on its own sockets.
    pub(crate) large_parses: tokio::sync::Semaphore,
}

/// Wall-clock nanoseconds since the epoch: the one clock the server reads.
pub(crate) fn wall_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

impl Shared {
    /// Feeds one input to the core and carries out everything it asks.
    pub(crate) fn step(&self, input: Input) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        inner.core.handle(wall_now(), input, &mut out);
        let mut queue: std::collections::VecDeque<Output> = out.into();
        while let Some(output) = queue.pop_front() {
            match output {
                Output::Send { conn, frame } => {
                    if let Frame::Fatal(reason) = &frame {
                        if let Some(held) = self.fatal_log.pass() {
                            info!(conn, also_ended = held, "ended a session for a protocol violation: {reason}");
                        }
                    }
                    let success = matches!(frame, Frame::MutationResponse { outcome: Ok(_), .. });
                    let message = if success && self.drop_after_next_commit.swap(false, Ordering::SeqCst) {
                        Outbound::Drop
                    } else {
                        Outbound::Frame(frame)
                    };
                    self.deliver(&mut inner.conns, conn, message);
                }
                Output::Close { conn, code, reason } => {
                    Metrics::count(&self.metrics.sessions_closed, &reason);
                    self.deliver(&mut inner.conns, conn, Outbound::Close(code, reason));
                }
                Output::Reply { call, outcome } => {
                    if let Some(tx) = inner.calls.remove(&call) {
                        let _ = tx.send(outcome);
                    }
                }
                Output::Wake { at } => {
                    let _ = self.wakes.send(at);
                }
                Output::Execute(job) => {
                    let workers = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
                    match workers.as_ref() {
                        Some(tx) => {
                            let _ = tx.send(job);
                        }
                        None => {
                            let executed = core::execute(&job);
                            // Release the snapshot before the commit, so the
                            // store need not copy the paths it writes.
                            drop(job);
                            let mut more = Vec::new();
                            inner.core.handle(wall_now(), Input::Executed(executed), &mut more);
                            queue.extend(more);
                        }
                    }
                }
            }
        }
    }

    /// Queues `message` for `conn`'s writer, unless its backlog is full: then
    /// the connection is cut off from the core (nothing more is queued for
    /// it) and its socket told to end.
    fn deliver(&self, conns: &mut HashMap<ConnId, Conn>, conn: ConnId, message: Outbound) {
        let Some(c) = conns.get(&conn) else { return };
        let unsent = c.backlog.unsent.fetch_add(1, Ordering::Relaxed) + 1;
        if unsent > self.config.limits.max_unsent_frames && !self.has(Fault::UnboundedBacklog) {
            c.backlog.overflowed.notify_one();
            conns.remove(&conn);
            return;
        }
        let _ = c.tx.send(message);
    }

    /// Runs one HTTP call through the core and waits for its outcome.
    pub(crate) async fn call(&self, mut call: Call) -> Result<Value, Failure> {
        call.id = self.next_call.fetch_add(1, Ordering::Relaxed);
        self.metrics.http_calls.inc();
        let (tx, rx) = oneshot::channel();
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).calls.insert(call.id, tx);
        self.step(Input::Call(Box::new(call)));
        rx.await.unwrap_or_else(|_| Err(Failure { message: "the server stopped before answering".into(), data: None }))
    }

    /// Whether a fault is on.
    pub(crate) fn has(&self, fault: Fault) -> bool {
        self.config.core.has(fault)
    }

    /// Registers a connection and its writer channel; the backlog is the
    /// writer's to count down as it writes.
    pub(crate) fn open(&self, tx: UnboundedSender<Outbound>) -> (ConnId, Arc<Backlog>) {
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        self.metrics.sessions_opened.inc();
        let backlog = Arc::new(Backlog::default());
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.conns.insert(conn, Conn { tx, backlog: backlog.clone() });
        let mut out = Vec::new();
        inner.core.handle(wall_now(), Input::Open { conn }, &mut out);
        debug_assert!(out.is_empty());
        (conn, backlog)
    }

    /// The text of `GET /metrics`, with what the core and the sockets hold now.
    pub(crate) fn metrics_text(&self) -> String {
        let (stats, load, unsent) = {
            let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            let unsent = inner.conns.values().map(|c| c.backlog.unsent.load(Ordering::Relaxed)).sum();
            (inner.core.stats(), inner.core.load(), unsent)
        };
        self.metrics.render(stats, load, self.admission.open(), unsent)
    }

    /// Forgets a connection.
    pub(crate) fn close(&self, conn: ConnId) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).conns.remove(&conn);
        self.step(Input::Closed { conn });
    }

    /// Whether the next mutation from any socket should drop it (test hook).
    pub(crate) fn take_drop_on_next_mutation(&self) -> bool {
        self.drop_on_next_mutation.swap(false, Ordering::SeqCst)
    }

    fn broadcast(&self, make: impl Fn() -> Outbound) -> usize {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for c in inner.conns.values() {
            c.backlog.unsent.fetch_add(1, Ordering::Relaxed);
            let _ = c.tx.send(make());
        }
        inner.conns.len()
    }
}

/// Runs the server on an already-bound listener until `shutdown` resolves.
pub async fn run(listener: TcpListener, config: ServerConfig, shutdown: impl Future) -> Result<(), ServerError> {
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let (wakes, mut wake_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let shared = Arc::new(Shared {
        wakes,
        inner: Mutex::new(Inner { core: Core::new(config.core.clone()), conns: HashMap::new(), calls: HashMap::new() }),
        jobs: Mutex::new(None),
        next_conn: AtomicU64::new(1),
        next_call: AtomicU64::new(1),
        drop_after_next_commit: AtomicBool::new(false),
        drop_on_next_mutation: AtomicBool::new(false),
        admission: Admission::new(config.limits),
        refusals: LogGate::new(),
        fatal_log: LogGate::new(),
        slow_readers: LogGate::new(),
        metrics: Metrics::new(),
        large_parses: tokio::sync::Semaphore::new(config.limits.max_large_parses.max(1)),
        verifier: if config.core.has(Fault::AcceptAnyToken) { Verifier::believing_any() } else { config.auth.clone() },
        config: config.clone(),
    });
    let mut threads = Vec::new();
    if config.workers > 0 {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..config.workers {
            let (shared, rx) = (shared.clone(), rx.clone());
            let thread = std::thread::Builder::new().name(format!("syncspec-worker-{i}")).spawn(move || loop {
                let job = match rx.lock().unwrap_or_else(|p| p.into_inner()).recv() {
                    Ok(job) => job,
                    Err(_) => return,
                };
                let executed = core::execute(&job);
                // Release the snapshot before the commit (see above).
                drop(job);
                shared.step(Input::Executed(executed));
            });
            match thread {
                Ok(handle) => threads.push(handle),
                Err(e) => warn!("could not start worker thread {i}: {e}; continuing with fewer"),
            }
        }
        if !threads.is_empty() {
            *shared.jobs.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
        }
    }
    let ticker = {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_secs(1));
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                shared.step(Input::Tick);
            }
        })
    };
    // Wakes the core at the times it asked for (an action's pause between
    // tokens, a scheduled function), to the millisecond of tokio's timer.
    let timer = {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut due = std::collections::BTreeSet::new();
            loop {
                let next = due.first().copied();
                let sleep = async move {
                    match next {
                        Some(at) => tokio::time::sleep(Duration::from_nanos(u64::saturating_sub(at, wall_now()))).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    at = wake_rx.recv() => match at {
                        Some(at) => {
                            due.insert(at);
                        }
                        None => return,
                    },
                    () = sleep => {
                        let now = wall_now();
                        while due.first().is_some_and(|&at| at <= now) {
                            due.pop_first();
                        }
                        shared.step(Input::Wake);
                    }
                }
            }
        })
    };
    info!(%addr, workers = config.workers, "serving the Convex sync protocol");
    tokio::pin!(shutdown);
    let accept_failures = LogGate::new();
    let result = loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match shared.admission.admit(peer.ip()) {
                    Ok(slot) => {
                        shared.metrics.connections_accepted.inc();
                        tokio::spawn(http::serve(stream, peer, shared.clone(), Arc::new(slot)));
                    }
                    Err(refusal) => {
                        Metrics::count(&shared.metrics.connections_refused, refusal.reason());
                        if let Some(held) = shared.refusals.pass() {
                            info!(%peer, also_refused = held, "connection refused: {refusal}");
                        }
                        tokio::spawn(http::refuse(stream, refusal));
                    }
                },
                Err(e) if is_transient(&e) => {
                    // Out of file descriptors, say: wait for some to close.
                    if let Some(held) = accept_failures.pass() {
                        warn!(also_failed = held, "accept failed, retrying: {e}");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(source) => break Err(ServerError::Accept { addr, source }),
            },
            _ = &mut shutdown => break Ok(()),
        }
    };
    ticker.abort();
    timer.abort();
    shared.broadcast(|| Outbound::Close(1001, "ServerShutdown".into()));
    *shared.jobs.lock().unwrap_or_else(|p| p.into_inner()) = None;
    let stats = shared.inner.lock().unwrap_or_else(|p| p.into_inner()).core.stats();
    info!(
        commits = stats.commits,
        occ_conflicts = stats.conflicts,
        fallbacks = stats.fallbacks,
        replays = stats.replays,
        "stopped"
    );
    result
}

fn is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted | WouldBlock | OutOfMemory)
        || e.raw_os_error().is_some_and(|code| code == 23 || code == 24)
}

/// The WebSocket settings every connection gets.
pub fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES))
}

/// The test-hook endpoint: one JSON command per text frame, one JSON reply.
pub(crate) async fn control<Si, St>(mut sink: Si, mut stream: St, shared: Arc<Shared>)
where
    Si: futures_util::Sink<Message> + Unpin,
    St: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    while let Some(Ok(message)) = stream.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        let command: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let reply = match command.get("type").and_then(|t| t.as_str()) {
            Some("DropConnections") => {
                let dropped = shared.broadcast(|| Outbound::Drop);
                serde_json::json!({"ok": true, "dropped": dropped})
            }
            Some("DropAfterNextCommit") => {
                shared.drop_after_next_commit.store(true, Ordering::SeqCst);
                serde_json::json!({"ok": true})
            }
            Some("DropOnNextMutation") => {
                shared.drop_on_next_mutation.store(true, Ordering::SeqCst);
                serde_json::json!({"ok": true})
            }
            Some("Stats") => {
                let open = shared.inner.lock().unwrap_or_else(|p| p.into_inner()).conns.len();
                // Connection ids start at 1 and go only to sync sockets.
                let opened = shared.next_conn.load(Ordering::Relaxed) - 1;
                serde_json::json!({"ok": true, "opened": opened, "open": open})
            }
            _ => {
                serde_json::json!({"ok": false, "error": format!("unknown control command: {text}")})
            }
        };
        if sink.send(Message::text(reply.to_string())).await.is_err() {
            return;
        }
    }
}
