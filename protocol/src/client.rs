//! A protocol client that behaves like the official clients and records a
//! history of everything it sees.
//!
//! One background task per client owns the socket. It keeps one version
//! chain per socket, resolves a successful mutation only once a transition
//! at or past its commit ts has arrived (read-your-writes, as the npm client
//! does), and after a lost socket reconnects under the same session id,
//! re-adds every query and re-sends every unresolved mutation with its
//! original request id, echoing each query's last journal (as the npm client
//! does). An action is sent once and waited for until its `ActionResponse`;
//! one in flight when the socket is lost fails, as in the npm client. It
//! never refuses what a server sends: a broken chain or a regressing ts is
//! recorded for the checkers to judge, not hidden.
//!
//! How long the client waits for an answer is a [`Patience`], which clients
//! of one run can share, so that a backend that left one question unanswered
//! is not waited on as long again. When to give up on a whole case is the
//! suite runner's business, not the client's.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use convex_sync_types::{ServerMessage, StateModification};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::history::{ClientId, EventKind, RecordedModification, RecordedVersion, Recorder};
use crate::json;
use crate::value::Value;
use crate::wire::{self, QueryId, RequestId, Ts, Version};

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Reconnect attempts after a lost socket, 100 ms apart at first, doubling to 1 s.
const RECONNECT_ATTEMPTS: u32 = 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_urls_map_to_the_sync_socket() {
        assert_eq!(socket_url("http://127.0.0.1:3210").unwrap(), "ws://127.0.0.1:3210/api/sync");
        assert_eq!(
            socket_url("https://happy-otter-123.convex.cloud/").unwrap(),
            "wss://happy-otter-123.convex.cloud/api/sync"
        );
        assert!(socket_url("ftp://x").is_err());
        assert!(socket_url("http://").is_err());
    }

    #[tokio::test]
    async fn a_wait_that_runs_out_shortens_every_clones_patience() {
        let (generous, short) = (Duration::from_millis(200), Duration::from_millis(20));
        let patience = Patience::new(generous, short);
        let shared = patience.clone();
        assert_eq!(patience.wait(async { 7 }).await, Ok(7));
        assert_eq!((shared.lapses(), shared.current()), (0, generous), "an answered wait costs no patience");
        assert_eq!(patience.wait(std::future::pending::<()>()).await, Err(generous));
        assert_eq!((shared.lapses(), shared.current()), (1, short));
        assert_eq!(shared.wait(async { 7 }).await, Ok(7));
        assert_eq!(patience.current(), short, "patience never grows back");
        assert_eq!(shared.wait(std::future::pending::<()>()).await, Err(short));
        assert_eq!(patience.lapses(), 2);

        let fixed = Patience::fixed(short);
        assert_eq!(fixed.wait(std::future::pending::<()>()).await, Err(short));
        assert_eq!((fixed.lapses(), fixed.current()), (1, short));
    }
}

/// Where and how to connect.
#[derive(Clone, Debug)]
pub struct Options {
    /// The deployment URL, `http://HOST:PORT` or `https://HOST` (`ws://` and `wss://` work too).
    pub url: String,
    /// This client's id in the history.
    pub client: ClientId,
    /// Where events go.
    pub recorder: Recorder,
    /// Reconnect by itself after a lost socket, as the official clients do.
    pub reconnect: bool,
    /// How long `mutation` and [`Client::wait_until`] wait before giving up
    /// (the history then records a mutation's outcome as unknown); clients
    /// given clones of one [`Patience`] shorten each other's waits.
    pub patience: Patience,
}

/// How long to wait for an answer before giving up: `generous` until a wait
/// runs out, `short` from then on. Clones share that state, so every client
/// and raw socket of a run can consult one.
///
/// Patience is generous so that a slow moment of a noisy machine never
/// reads as a lost answer. Once a wait has run out, though, the backend has
/// shown that it can leave a question unanswered (a transition it never
/// sends, a response it drops), and each further unanswered question would
/// cost the generous patience again: a broken backend would take minutes
/// per case. A short patience is still many times a loopback round trip.
/// It never grows back, because a backend that answers most questions and
/// drops some (a fault that skips only empty transitions) would otherwise
/// cost the generous patience again at every drop.
#[derive(Clone, Debug)]
pub struct Patience {
    generous: Duration,
    short: Duration,
    /// How many waits have run out so far, over all clones. Only a count:
    /// a wait that starts just as another runs out may still get the
    /// generous patience, which costs time once and changes no verdict, so
    /// `Relaxed` is enough.
    lapses: Arc<AtomicU32>,
}

impl Patience {
    /// Waits `generous` until a wait runs out, then `short`.
    pub fn new(generous: Duration, short: Duration) -> Patience {
        Patience { generous, short, lapses: Arc::new(AtomicU32::new(0)) }
    }

    /// Always waits `patience`, however many waits ran out.
    pub fn fixed(patience: Duration) -> Patience {
        Patience::new(patience, patience)
    }

    /// How long a wait that starts now may take.
    pub fn current(&self) -> Duration {
        if self.lapses() == 0 {
            self.generous
        } else {
            self.short
        }
    }

    /// How many waits have run out so far.
    pub fn lapses(&self) -> u32 {
        self.lapses.load(Ordering::Relaxed)
    }

    /// Runs `future` for at most the current patience; if it runs out,
    /// counts a lapse and returns how long it waited.
    pub async fn wait<F: Future>(&self, future: F) -> Result<F::Output, Duration> {
        let limit = self.current();
        match tokio::time::timeout(limit, future).await {
            Ok(output) => Ok(output),
            Err(_) => {
                self.lapses.fetch_add(1, Ordering::Relaxed);
                Err(limit)
            }
        }
    }
}

/// Why the client could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The URL is not one the client can use.
    #[error("expected a URL like http://127.0.0.1:3210 or https://NAME.convex.cloud, got {0:?}")]
    BadUrl(String),
    /// The backend could not be reached.
    #[error("could not connect to {url}: {detail}")]
    Connect {
        /// The socket URL tried.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// The client was closed or its socket is gone for good.
    #[error("the client is closed")]
    Closed,
    /// The outcome did not arrive in time; it is unknown.
    #[error("no outcome within {0:?}")]
    Timeout(Duration),
}

/// A query's latest result as the client holds it.
#[derive(Clone, Debug, PartialEq)]
pub enum QueryResult {
    /// `QueryUpdated`.
    Value(Value),
    /// `QueryFailed`.
    Failed {
        /// The message.
        message: String,
        /// `errorData`.
        data: Option<Value>,
    },
}

/// A mutation's outcome, once the client resolved it.
#[derive(Clone, Debug, PartialEq)]
pub enum MutationOutcome {
    /// Committed at `ts`, and a transition at or past `ts` has arrived.
    Ok {
        /// The return value.
        value: Value,
        /// The commit ts.
        ts: Ts,
    },
    /// A failed `MutationResponse`.
    Failed {
        /// The message.
        message: String,
        /// `errorData`, for user errors.
        data: Option<Value>,
    },
}

impl MutationOutcome {
    /// The `errorData.code` of a failure, if it has one.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            MutationOutcome::Failed { data: Some(Value::Object(o)), .. } => o.get("code").and_then(Value::as_str),
            _ => None,
        }
    }

    /// The value of a success.
    pub fn value(&self) -> Option<&Value> {
        match self {
            MutationOutcome::Ok { value, .. } => Some(value),
            MutationOutcome::Failed { .. } => None,
        }
    }
}

/// An action's outcome: the `ActionResponse` that answered it.
#[derive(Clone, Debug, PartialEq)]
pub enum ActionOutcome {
    /// A successful `ActionResponse`: the action's return value.
    Ok(Value),
    /// A failed `ActionResponse`, or the socket lost while the action ran
    /// (actions are not re-sent, as the official clients do not re-send them).
    Failed {
        /// The message.
        message: String,
        /// `errorData`, for user errors.
        data: Option<Value>,
    },
}

impl ActionOutcome {
    /// The `errorData.code` of a failure, if it has one.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            ActionOutcome::Failed { data: Some(Value::Object(o)), .. } => o.get("code").and_then(Value::as_str),
            _ => None,
        }
    }

    /// The value of a success.
    pub fn value(&self) -> Option<&Value> {
        match self {
            ActionOutcome::Ok(value) => Some(value),
            ActionOutcome::Failed { .. } => None,
        }
    }
}

/// The failure an action in flight gets when its socket is lost: the npm
/// client's words, since it fails such an action rather than re-sending it.
pub const ACTION_LOST: &str = "Connection lost while action was in flight";

/// What the client currently holds: a consistent view at one version.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct View {
    /// Latest result per query (cleared when a socket is replaced).
    pub results: BTreeMap<QueryId, QueryResult>,
    /// The last `endVersion` on the current socket.
    pub version: Option<Version>,
    /// Whether a socket is open.
    pub connected: bool,
    /// Transitions received, over all sockets.
    pub transitions: u64,
    /// Sockets opened so far.
    pub connections: u32,
    /// The last `FatalError`, if any.
    pub fatal: Option<String>,
    /// The identity version of the last transition on the current socket:
    /// how many of this socket's `Authenticate`s the backend has confirmed.
    pub identity: u32,
    /// The last `AuthError`'s message, over all sockets.
    pub auth_error: Option<String>,
    /// The journal last received for each live query (a paginated query's
    /// end, say), kept across sockets and echoed when the query is re-added
    /// after a reconnect, as the npm client does. Queries whose results
    /// carried no journal are absent.
    pub journals: BTreeMap<QueryId, String>,
}

enum Command {
    Subscribe { id: QueryId, function: String, args: Value },
    Unsubscribe { id: QueryId },
    Mutation { request_id: RequestId, function: String, args: Value, reply: oneshot::Sender<MutationOutcome> },
    Action { request_id: RequestId, function: String, args: Value, reply: oneshot::Sender<ActionOutcome> },
    Raw { text: Message },
    DropSocket,
    Authenticate { token: Option<String> },
}

/// A handle to one simulated client; clones share it.
#[derive(Clone, Debug)]
pub struct Client {
    commands: mpsc::UnboundedSender<Command>,
    view: watch::Receiver<View>,
    next_query: Arc<AtomicU32>,
    /// Request ids are chosen here, so a caller that gives up can name its request.
    next_request: Arc<AtomicU32>,
    recorder: Recorder,
    id: ClientId,
    patience: Patience,
}

impl Client {
    /// Opens the socket, sends `Connect`, and starts the client's task.
    pub async fn connect(options: Options) -> Result<Client, ClientError> {
        let url = socket_url(&options.url)?;
        let session_id = uuid::Uuid::new_v4();
        let mut task = Task {
            url,
            session_id,
            options,
            ws: None,
            connections: 0,
            queries: BTreeMap::new(),
            pending: BTreeMap::new(),
            actions: BTreeMap::new(),
            max_observed: 0,
            sent_query_set: 0,
            token: None,
            sent_identity: 0,
            view: View::default(),
            view_tx: watch::channel(View::default()).0,
        };
        task.open().await?;
        let (commands, rx) = mpsc::unbounded_channel();
        let view = task.view_tx.subscribe();
        let (recorder, id, patience) =
            (task.options.recorder.clone(), task.options.client, task.options.patience.clone());
        tokio::spawn(task.run(rx));
        Ok(Client {
            commands,
            view,
            next_query: Arc::new(AtomicU32::new(0)),
            next_request: Arc::new(AtomicU32::new(0)),
            recorder,
            id,
            patience,
        })
    }

    /// Adds a query to the query set and returns its id.
    pub fn subscribe(&self, function: &str, args: Value) -> QueryId {
        let id = self.next_query.fetch_add(1, Ordering::Relaxed);
        let _ = self.commands.send(Command::Subscribe { id, function: function.to_owned(), args });
        id
    }

    /// Removes a query from the query set.
    pub fn unsubscribe(&self, id: QueryId) {
        let _ = self.commands.send(Command::Unsubscribe { id });
    }

    /// Runs a mutation; resolves as the official clients do.
    pub async fn mutation(&self, function: &str, args: Value) -> Result<MutationOutcome, ClientError> {
        let (reply, rx) = oneshot::channel();
        let request_id = self.next_request.fetch_add(1, Ordering::Relaxed);
        self.commands
            .send(Command::Mutation { request_id, function: function.to_owned(), args, reply })
            .map_err(|_| ClientError::Closed)?;
        match self.patience.wait(rx).await {
            Ok(outcome) => outcome.map_err(|_| ClientError::Closed),
            Err(waited) => {
                let note = format!("no outcome within {waited:?}");
                self.recorder.record(self.id, EventKind::Info { request_id, note });
                Err(ClientError::Timeout(waited))
            }
        }
    }

    /// Runs an action: sends `Action` and waits, as long as the client's
    /// patience says, for the `ActionResponse`. An action is never re-sent:
    /// if the socket is lost first, it fails with [`ACTION_LOST`], as in the
    /// official clients.
    pub async fn action(&self, function: &str, args: Value) -> Result<ActionOutcome, ClientError> {
        let (reply, rx) = oneshot::channel();
        let request_id = self.next_request.fetch_add(1, Ordering::Relaxed);
        self.commands
            .send(Command::Action { request_id, function: function.to_owned(), args, reply })
            .map_err(|_| ClientError::Closed)?;
        match self.patience.wait(rx).await {
            Ok(outcome) => outcome.map_err(|_| ClientError::Closed),
            Err(waited) => {
                let note = format!("no ActionResponse within {waited:?}");
                self.recorder.record(self.id, EventKind::Info { request_id, note });
                Err(ClientError::Timeout(waited))
            }
        }
    }

    /// Sends a frame as it is, for bad-input cases.
    pub fn send_raw(&self, frame: Message) {
        let _ = self.commands.send(Command::Raw { text: frame });
    }

    /// Drops the socket abruptly; the client reconnects if so configured.
    pub fn drop_socket(&self) {
        let _ = self.commands.send(Command::DropSocket);
    }

    /// Sends `Authenticate` with the socket's next identity version: a
    /// `User` token, or `None` for no identity. A token is remembered and
    /// sent again right after `Connect` on every new socket (from identity
    /// version 0), as the official clients do; [`View::identity`] shows
    /// how many of the socket's `Authenticate`s the backend has confirmed.
    pub fn set_auth(&self, token: Option<String>) {
        let _ = self.commands.send(Command::Authenticate { token });
    }

    /// This client's id in the history.
    pub fn id(&self) -> ClientId {
        self.id
    }

    /// The current view.
    pub fn view(&self) -> View {
        self.view.borrow().clone()
    }

    /// Waits until `ready` holds for the view, or the deadline passes;
    /// returns the last view either way. For waits whose length the
    /// protocol sets (a presence TTL), not the backend's promptness.
    pub async fn wait_for(&self, deadline: Duration, ready: impl Fn(&View) -> bool) -> Result<View, View> {
        match tokio::time::timeout(deadline, self.watch(&ready)).await {
            Ok(view) if ready(&view) => Ok(view),
            Ok(view) => Err(view),
            Err(_) => Err(self.view()),
        }
    }

    /// Waits until `ready` holds for the view, as long as the client's
    /// patience says; returns the last view either way, and when the
    /// patience ran out, how long it waited.
    pub async fn wait_until(&self, ready: impl Fn(&View) -> bool) -> Result<View, (View, Option<Duration>)> {
        match self.patience.wait(self.watch(&ready)).await {
            Ok(view) if ready(&view) => Ok(view),
            // The client's task ended: no answer can come, whatever the patience.
            Ok(view) => Err((view, None)),
            Err(waited) => Err((self.view(), Some(waited))),
        }
    }

    /// Resolves with the first view for which `ready` holds, or with the
    /// last view once the client's task has ended.
    async fn watch(&self, ready: &impl Fn(&View) -> bool) -> View {
        let mut rx = self.view.clone();
        loop {
            {
                let view = rx.borrow_and_update();
                if ready(&view) {
                    return view.clone();
                }
            }
            if rx.changed().await.is_err() {
                return rx.borrow().clone();
            }
        }
    }

    /// The latest value of a query, if it has one.
    pub fn value_of(&self, id: QueryId) -> Option<Value> {
        match self.view.borrow().results.get(&id) {
            Some(QueryResult::Value(v)) => Some(v.clone()),
            _ => None,
        }
    }
}

/// Makes `wss://` work when more than one rustls provider is compiled in
/// (goose's HTTP client brings aws-lc-rs; ours is ring): installs ring as
/// the process default unless one is installed already.
pub fn ensure_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The socket WebSocket type the clients use.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens a sync socket (a `ws://` or `wss://` URL from [`socket_url`]) as
/// the official clients do, with the settings every syncspec client uses:
/// `TCP_NODELAY`, a 4 KiB read buffer, each frame written at once, and at
/// most 5 s to connect.
pub async fn open_socket(url: &str) -> Result<Socket, ClientError> {
    ensure_tls_provider();
    let failed = |detail: String| ClientError::Connect { url: url.to_owned(), detail };
    let mut request = url.into_client_request().map_err(|e| failed(e.to_string()))?;
    request
        .headers_mut()
        .insert("Convex-Client", HeaderValue::from_static(concat!("syncspec-", env!("CARGO_PKG_VERSION"))));
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let connecting = tokio_tungstenite::connect_async_with_config(request, Some(config), true);
    let (ws, _) = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
        .await
        .map_err(|_| failed("timed out".into()))?
        .map_err(|e| failed(e.to_string()))?;
    Ok(ws)
}

/// Turns a deployment URL into the sync socket's URL.
pub fn socket_url(url: &str) -> Result<String, ClientError> {
    let url = url.trim_end_matches('/');
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://").or_else(|| url.strip_prefix("ws://")) {
        ("ws", rest)
    } else if let Some(rest) = url.strip_prefix("https://").or_else(|| url.strip_prefix("wss://")) {
        ("wss", rest)
    } else {
        return Err(ClientError::BadUrl(url.to_owned()));
    };
    if rest.is_empty() || rest.contains(char::is_whitespace) {
        return Err(ClientError::BadUrl(url.to_owned()));
    }
    Ok(format!("{scheme}://{rest}/api/sync"))
}

struct Pending {
    function: String,
    args: Value,
    /// The success and its ts, while waiting for a covering transition.
    committed: Option<(Value, Ts)>,
    reply: oneshot::Sender<MutationOutcome>,
}

struct Task {
    url: String,
    session_id: uuid::Uuid,
    options: Options,
    ws: Option<Socket>,
    connections: u32,
    /// Every live query, re-added after a reconnect.
    queries: BTreeMap<QueryId, (String, Value)>,
    /// Mutations not yet resolved, re-sent after a reconnect.
    pending: BTreeMap<RequestId, Pending>,
    /// Actions waiting for their `ActionResponse`; failed, not re-sent, when
    /// the socket is lost.
    actions: BTreeMap<RequestId, oneshot::Sender<ActionOutcome>>,
    max_observed: Ts,
    /// The last query-set version sent on this socket.
    sent_query_set: u32,
    /// The `User` token to present, sent again on every new socket.
    token: Option<String>,
    /// The last identity version sent on this socket.
    sent_identity: u32,
    view: View,
    view_tx: watch::Sender<View>,
}

impl Task {
    fn record(&self, kind: EventKind) {
        self.options.recorder.record(self.options.client, kind);
    }

    fn publish(&self) {
        self.view_tx.send_replace(self.view.clone());
    }

    /// Opens a socket and replays the session onto it.
    async fn open(&mut self) -> Result<(), ClientError> {
        let mut ws = open_socket(&self.url).await?;
        let connect = wire::write_connect(&wire::Connect {
            session_id: &self.session_id.to_string(),
            connection_count: self.connections,
            last_close_reason: if self.connections == 0 { "InitialConnect" } else { "SocketLost" },
            max_observed_timestamp: (self.max_observed > 0).then_some(self.max_observed),
            client_ts: None,
        });
        let mut frames = vec![connect];
        if let Some(token) = &self.token {
            frames.push(wire::write_authenticate(0, wire::AuthToken::User(token)));
        }
        if !self.queries.is_empty() {
            let adds: Vec<wire::QuerySetChange<'_>> =
                self.queries.iter().map(|(id, (f, a))| add_query(*id, f, a, self.journal(*id))).collect();
            frames.push(wire::write_modify_query_set(0, 1, &adds));
        }
        for (request_id, p) in &self.pending {
            frames.push(wire::write_mutation(*request_id, &p.function, &p.args));
        }
        for frame in frames {
            ws.send(Message::text(frame))
                .await
                .map_err(|e| ClientError::Connect { url: self.url.clone(), detail: e.to_string() })?;
        }
        self.record(EventKind::Connect { session_id: self.session_id.to_string(), connection_count: self.connections });
        for (request_id, p) in &self.pending {
            self.record(EventKind::Invoke {
                request_id: *request_id,
                function: p.function.clone(),
                args: json::to_json(&p.args),
                replay: true,
            });
        }
        self.connections += 1;
        self.sent_query_set = u32::from(!self.queries.is_empty());
        self.sent_identity = u32::from(self.token.is_some());
        self.view.identity = 0;
        self.ws = Some(ws);
        self.view.results.clear();
        self.view.version = None;
        self.view.connected = true;
        self.view.connections = self.connections;
        self.publish();
        Ok(())
    }

    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        loop {
            let frame = async {
                match self.ws.as_mut() {
                    Some(ws) => ws.next().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.on_command(command).await,
                    None => {
                        if let Some(mut ws) = self.ws.take() {
                            let _ = ws.close(None).await;
                        }
                        return;
                    }
                },
                frame = frame => match frame {
                    Some(Ok(Message::Text(text))) => self.on_frame(&text),
                    Some(Ok(Message::Close(close))) => {
                        let reason = close.map_or("closed".to_owned(), |c| format!("closed {} {}", u16::from(c.code), c.reason));
                        self.lost(reason).await;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => self.lost(format!("socket error: {e}")).await,
                    None => self.lost("socket ended".to_owned()).await,
                },
            }
        }
    }

    async fn send(&mut self, text: String) {
        if let Some(ws) = self.ws.as_mut() {
            if let Err(e) = ws.send(Message::text(text)).await {
                self.lost(format!("send failed: {e}")).await;
            }
        }
    }

    async fn on_command(&mut self, command: Command) {
        match command {
            Command::Subscribe { id, function, args } => {
                self.record(EventKind::Subscribe {
                    query_id: id,
                    function: function.clone(),
                    args: json::to_json(&args),
                });
                let frame = self.next_query_set().map(|(base, new)| {
                    wire::write_modify_query_set(base, new, &[add_query(id, &function, &args, None)])
                });
                self.queries.insert(id, (function, args));
                if let Some(frame) = frame {
                    self.send(frame).await;
                }
            }
            Command::Unsubscribe { id } => {
                if self.queries.remove(&id).is_some() {
                    if self.view.journals.remove(&id).is_some() {
                        self.publish();
                    }
                    self.record(EventKind::Unsubscribe { query_id: id });
                    if let Some((base, new)) = self.next_query_set() {
                        let remove = wire::QuerySetChange::Remove { query_id: id };
                        self.send(wire::write_modify_query_set(base, new, &[remove])).await;
                    }
                }
            }
            Command::Mutation { request_id, function, args, reply } => {
                self.record(EventKind::Invoke {
                    request_id,
                    function: function.clone(),
                    args: json::to_json(&args),
                    replay: false,
                });
                let frame = wire::write_mutation(request_id, &function, &args);
                self.pending.insert(request_id, Pending { function, args, committed: None, reply });
                self.send(frame).await;
            }
            Command::Action { request_id, function, args, reply } => {
                self.record(EventKind::Action { request_id, function: function.clone(), args: json::to_json(&args) });
                if self.ws.is_none() {
                    self.record(EventKind::Info { request_id, note: ACTION_LOST.to_owned() });
                    let _ = reply.send(ActionOutcome::Failed { message: ACTION_LOST.to_owned(), data: None });
                    return;
                }
                self.actions.insert(request_id, reply);
                self.send(wire::write_action(request_id, &function, &args)).await;
            }
            Command::Raw { text } => {
                if let Some(ws) = self.ws.as_mut() {
                    let _ = ws.send(text).await;
                }
            }
            Command::DropSocket => {
                self.ws = None;
                self.lost("dropped by the client".to_owned()).await;
            }
            Command::Authenticate { token } => {
                let frame = wire::write_authenticate(
                    self.sent_identity,
                    token.as_deref().map_or(wire::AuthToken::None, wire::AuthToken::User),
                );
                self.token = token;
                if self.ws.is_some() {
                    self.sent_identity += 1;
                    self.send(frame).await;
                }
            }
        }
    }

    /// The journal to echo when query `id` is re-added.
    fn journal(&self, id: QueryId) -> Option<&str> {
        self.view.journals.get(&id).map(String::as_str)
    }

    /// Keeps the journal a modification of a live query carried; a `null`
    /// one replaces the last (the npm client keeps whatever it got last).
    fn keep_journal(&mut self, id: QueryId, journal: Option<String>) {
        if !self.queries.contains_key(&id) {
            return;
        }
        match journal {
            Some(journal) => {
                self.view.journals.insert(id, journal);
            }
            None => {
                self.view.journals.remove(&id);
            }
        }
    }

    /// Takes the versions of the next `ModifyQuerySet`: `None` with no socket
    /// open, since the whole query set goes out with the next socket.
    fn next_query_set(&mut self) -> Option<(u32, u32)> {
        self.ws.as_ref()?;
        let base = self.sent_query_set;
        self.sent_query_set = base + 1;
        Some((base, base + 1))
    }

    fn on_frame(&mut self, text: &str) {
        let message = match wire::parse_server_message(text) {
            Ok(m) => m,
            Err(e) => {
                self.record(EventKind::Unreadable { error: e.to_string() });
                return;
            }
        };
        match message {
            ServerMessage::Transition { start_version, end_version, modifications, .. } => {
                let start = Version::from_state_version(&start_version);
                let end = Version::from_state_version(&end_version);
                let mut recorded = Vec::with_capacity(modifications.len());
                for m in modifications {
                    match m {
                        StateModification::QueryUpdated { query_id, value, journal, .. } => {
                            let id = query_id.get_id();
                            self.keep_journal(id, journal);
                            match json::decode(&value.0) {
                                Ok(v) => {
                                    self.view.results.insert(id, QueryResult::Value(v));
                                }
                                Err(e) => self.record(EventKind::Unreadable { error: format!("query {id}: {e}") }),
                            }
                            recorded.push(RecordedModification::Updated { query_id: id, value: value.0 });
                        }
                        StateModification::QueryFailed { query_id, error_message, error_data, journal, .. } => {
                            let id = query_id.get_id();
                            self.keep_journal(id, journal);
                            let data = error_data.as_ref().and_then(|d| json::decode(&d.0).ok());
                            self.view.results.insert(id, QueryResult::Failed { message: error_message.clone(), data });
                            recorded.push(RecordedModification::Failed {
                                query_id: id,
                                message: error_message,
                                data: error_data.map(|d| d.0),
                            });
                        }
                        StateModification::QueryRemoved { query_id } => {
                            self.view.results.remove(&query_id.get_id());
                            recorded.push(RecordedModification::Removed { query_id: query_id.get_id() });
                        }
                    }
                }
                self.record(EventKind::Transition {
                    start: recorded_version(start),
                    end: recorded_version(end),
                    modifications: recorded,
                });
                self.view.version = Some(end);
                self.view.identity = end.identity;
                self.view.transitions += 1;
                self.max_observed = self.max_observed.max(end.ts);
                // Resolve, after the view holds this transition, every
                // committed mutation the transition reached.
                let reached: Vec<RequestId> = self
                    .pending
                    .iter()
                    .filter(|(_, p)| p.committed.as_ref().is_some_and(|(_, ts)| *ts <= end.ts))
                    .map(|(id, _)| *id)
                    .collect();
                self.publish();
                for request_id in reached {
                    if let Some(p) = self.pending.remove(&request_id) {
                        self.record(EventKind::Resolved { request_id });
                        if let Some((value, ts)) = p.committed {
                            let _ = p.reply.send(MutationOutcome::Ok { value, ts });
                        }
                    }
                }
            }
            ServerMessage::MutationResponse { request_id, result, ts, .. } => match result {
                Ok(value) => {
                    let ts = ts.map(u64::from).unwrap_or(0);
                    self.record(EventKind::Ok { request_id, result: value.0.clone(), ts });
                    self.max_observed = self.max_observed.max(ts);
                    let decoded = json::decode(&value.0).unwrap_or(Value::Null);
                    if let Some(p) = self.pending.get_mut(&request_id) {
                        p.committed = Some((decoded, ts));
                    }
                }
                Err(payload) => {
                    let (message, data) = wire::payload_parts(payload);
                    self.record(EventKind::Fail { request_id, message: message.clone(), data: data.clone() });
                    if let Some(p) = self.pending.remove(&request_id) {
                        let data = data.as_ref().and_then(|d| json::decode(d).ok());
                        let _ = p.reply.send(MutationOutcome::Failed { message, data });
                    }
                }
            },
            ServerMessage::ActionResponse { request_id, result, .. } => {
                self.record(EventKind::ActionResponse { request_id, success: result.is_ok() });
                if let Some(reply) = self.actions.remove(&request_id) {
                    let outcome = match result {
                        Ok(value) => ActionOutcome::Ok(json::decode(&value.0).unwrap_or(Value::Null)),
                        Err(payload) => {
                            let (message, data) = wire::payload_parts(payload);
                            ActionOutcome::Failed { message, data: data.as_ref().and_then(|d| json::decode(d).ok()) }
                        }
                    };
                    let _ = reply.send(outcome);
                }
            }
            ServerMessage::AuthError { error_message, .. } => {
                self.record(EventKind::AuthError { message: error_message.clone() });
                // The token is not presented again on the next socket: the JS
                // client, unable to fetch a better one, clears its auth too.
                self.token = None;
                self.view.auth_error = Some(error_message);
                self.publish();
            }
            ServerMessage::FatalError { error_message } => {
                self.record(EventKind::Fatal { message: error_message.clone() });
                self.view.fatal = Some(error_message);
                self.publish();
            }
            ServerMessage::Ping => {}
            ServerMessage::TransitionChunk { .. } => {
                self.record(EventKind::Unreadable { error: "TransitionChunk is not supported".into() });
            }
        }
    }

    /// The socket is gone: record it and, if configured, reconnect.
    async fn lost(&mut self, reason: String) {
        self.ws = None;
        self.sent_query_set = 0;
        self.sent_identity = 0;
        self.record(EventKind::Disconnect { reason });
        for (request_id, reply) in std::mem::take(&mut self.actions) {
            self.record(EventKind::Info { request_id, note: ACTION_LOST.to_owned() });
            let _ = reply.send(ActionOutcome::Failed { message: ACTION_LOST.to_owned(), data: None });
        }
        self.view.connected = false;
        self.view.version = None;
        self.view.identity = 0;
        self.publish();
        if !self.options.reconnect || self.view.fatal.is_some() {
            return;
        }
        let mut delay = Duration::from_millis(100);
        for _ in 0..RECONNECT_ATTEMPTS {
            tokio::time::sleep(delay).await;
            if self.open().await.is_ok() {
                return;
            }
            delay = (delay * 2).min(Duration::from_secs(1));
        }
    }
}

fn recorded_version(v: Version) -> RecordedVersion {
    RecordedVersion { query_set: v.query_set, identity: v.identity, ts: v.ts }
}

fn add_query<'a>(
    id: QueryId,
    function: &'a str,
    args: &'a Value,
    journal: Option<&'a str>,
) -> wire::QuerySetChange<'a> {
    wire::QuerySetChange::Add { query_id: id, udf_path: function, args, journal }
}
