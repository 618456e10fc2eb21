//! The official crates.io `convex` client against the reference server.
//!
//! The Rust client opens a new session id on every socket, so the server
//! cannot deduplicate a mutation it re-sends after a reconnect; the drop test
//! therefore drops the socket before the mutation is read (the client
//! re-sends it, and it applies once). Same-session replay is covered by the
//! npm client's tests in `tests/node`.
//!
//! Identity: `set_auth` with HS256 tokens minted by `auth::mint_hs256` for a
//! server started with the same shared secret. Keepalive: an idle client
//! with a live subscription outlives a 1 s idle timeout because the server
//! pings it every 200 ms; the server's `Stats` hook shows it kept its socket.

use std::collections::BTreeMap;
use std::time::Duration;

use convex::{ConvexClient, ConvexClientBuilder, FunctionResult, Value, WebSocketState};
use futures_util::{FutureExt as _, SinkExt as _, StreamExt as _};
use syncspec_server::auth::{self, Claims, Verifier};
use syncspec_server::server::{self, Keepalive, ServerConfig};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

const DEADLINE: Duration = Duration::from_secs(20);

/// The shared secret of the servers that verify tokens.
const SECRET: &[u8] = b"convex-rs-client-test-secret";
/// The issuer of every token minted here.
const ISSUER: &str = "https://syncspec-convex-rs-tests.invalid";

/// A server that runs until the test's runtime ends. It never closes its
/// sockets itself: convex 0.10.4's socket manager, once its socket fails
/// after its client handles are gone, polls a closed channel in a loop that
/// never yields, so a server closing sockets at the end of a test could
/// leave a runtime worker spinning and the test binary unable to exit.
/// Dropped with the runtime instead, the tasks of both ends are cancelled
/// where they wait.
struct TestServer {
    addr: String,
}

impl TestServer {
    async fn start() -> TestServer {
        TestServer::with(ServerConfig { test_hooks: true, ..ServerConfig::standard() }).await
    }

    /// A server verifying HS256 tokens signed with [`SECRET`].
    async fn with_auth() -> TestServer {
        TestServer::with(ServerConfig {
            test_hooks: true,
            auth: Verifier::shared_secret(SECRET),
            ..ServerConfig::standard()
        })
        .await
    }

    async fn with(config: ServerConfig) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(server::run(listener, config, std::future::pending::<()>()));
        TestServer { addr }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn client(&self) -> ConvexClient {
        ConvexClient::new(&self.url()).await.unwrap()
    }

    /// Sends one test-hook command, checks the server accepted it, and
    /// returns the reply.
    async fn control(&self, command: &str) -> serde_json::Value {
        within("a control command", async {
            let (mut ws, _) =
                tokio_tungstenite::connect_async(format!("ws://{}/_syncspec/control", self.addr)).await.unwrap();
            ws.send(Message::text(format!(r#"{{"type":"{command}"}}"#))).await.unwrap();
            let reply = ws.next().await.unwrap().unwrap();
            let reply: serde_json::Value = serde_json::from_str(reply.to_text().unwrap()).unwrap();
            assert_eq!(reply["ok"], true, "control {command}: {reply}");
            reply
        })
        .await
    }

    /// The `Stats` hook: sync sockets opened since start, and open now.
    async fn stats(&self) -> (u64, u64) {
        let reply = self.control("Stats").await;
        (reply["opened"].as_u64().unwrap(), reply["open"].as_u64().unwrap())
    }
}

/// A token for `subject`, named `name` if given, that [`SECRET`] verifies.
fn token(subject: &str, name: Option<&str>) -> String {
    let claims = Claims::new(subject, ISSUER, auth::now_s());
    auth::mint_hs256(SECRET, &name.map_or(claims.clone(), |n| claims.named(n)))
}

/// What `users:me` returns for a token from [`token`].
fn identity(subject: &str, name: Option<&str>) -> Value {
    let mut fields = args([
        ("subject", subject.into()),
        ("issuer", ISSUER.into()),
        ("tokenIdentifier", format!("{ISSUER}|{subject}").into()),
    ]);
    if let Some(name) = name {
        fields.insert("name".to_owned(), name.into());
    }
    Value::Object(fields)
}

fn args<const N: usize>(fields: [(&str, Value); N]) -> BTreeMap<String, Value> {
    fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// A fresh name, so tests never share state.
fn fresh(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4())
}

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, f).await.unwrap_or_else(|_| panic!("timed out: {what}"))
}

fn value(result: FunctionResult) -> Value {
    match result {
        FunctionResult::Value(v) => v,
        other => panic!("expected a value, got {other:?}"),
    }
}

fn error_code(result: &FunctionResult) -> Option<String> {
    match result {
        FunctionResult::ConvexError(e) => match &e.data {
            Value::Object(o) => match o.get("code") {
                Some(Value::String(code)) => Some(code.clone()),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

fn bodies(messages: &Value) -> Vec<String> {
    let Value::Array(rows) = messages else { panic!("expected an array, got {messages:?}") };
    rows.iter()
        .map(|row| match row {
            Value::Object(o) => match o.get("body") {
                Some(Value::String(b)) => b.clone(),
                other => panic!("no body in {other:?}"),
            },
            other => panic!("expected a row, got {other:?}"),
        })
        .collect()
}

/// On one thread the client's worker publishes the results of the
/// transition that resolves a mutation before the mutation's caller runs
/// again, so the latest result already available must show the write.
#[tokio::test(flavor = "current_thread")]
async fn a_resolved_mutation_is_visible_in_the_callers_subscription() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let channel = fresh("rw");
    let mut sub = client.subscribe("messages:list", args([("channel", channel.as_str().into())])).await.unwrap();
    assert_eq!(bodies(&value(within("first result", sub.next()).await.unwrap())), Vec::<String>::new());
    let sent = client
        .mutation(
            "messages:send",
            args([("channel", channel.as_str().into()), ("author", "me".into()), ("body", "hello".into())]),
        )
        .await
        .unwrap();
    assert!(matches!(value(sent), Value::String(_)));
    let mut latest = None;
    while let Some(Some(result)) = sub.next().now_or_never() {
        latest = Some(result);
    }
    let latest = latest.expect("the resolving transition's results were published");
    assert_eq!(bodies(&value(latest)), vec!["hello".to_owned()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_sees_another_clients_write() {
    let server = TestServer::start().await;
    let (mut reader, mut writer) = (server.client().await, server.client().await);
    let channel = fresh("other");
    let mut sub = reader.subscribe("messages:list", args([("channel", channel.as_str().into())])).await.unwrap();
    within("first result", sub.next()).await;
    writer
        .mutation(
            "messages:send",
            args([("channel", channel.as_str().into()), ("author", "w".into()), ("body", "from afar".into())]),
        )
        .await
        .unwrap();
    within("the other client's write", async {
        loop {
            let result = sub.next().await.unwrap();
            if bodies(&value(result)) == ["from afar"] {
                return;
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_increments_lose_nothing() {
    let server = TestServer::start().await;
    let name = fresh("counter");
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let client = server.client().await;
        for _ in 0..40 {
            let (mut client, name) = (client.clone(), name.clone());
            tasks.push(tokio::spawn(async move {
                match value(
                    client.mutation("counters:increment", args([("name", name.as_str().into())])).await.unwrap(),
                ) {
                    Value::Int64(n) => n,
                    other => panic!("expected an int64, got {other:?}"),
                }
            }));
        }
    }
    let mut got = Vec::new();
    for task in tasks {
        got.push(within("an increment", task).await.unwrap());
    }
    got.sort_unstable();
    assert_eq!(got, (1..=200).collect::<Vec<i64>>());
    let mut client = server.client().await;
    let total = value(client.query("counters:get", args([("name", name.as_str().into())])).await.unwrap());
    assert!(matches!(total, Value::Int64(200)), "{total:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_value_type_round_trips() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let nested = Value::Object(
        [
            ("list".to_owned(), Value::Array(vec![Value::Int64(-1), Value::Null, Value::Boolean(true)])),
            ("text".to_owned(), Value::String("ünïcødé \" \\ \n".to_owned())),
        ]
        .into_iter()
        .collect(),
    );
    let cases = [
        Value::Int64(i64::MAX),
        Value::Int64(i64::MIN),
        Value::Int64(-1),
        Value::Bytes(vec![0, 1, 2, 255]),
        Value::Bytes(vec![]),
        Value::Float64(f64::NAN),
        Value::Float64(-0.0),
        Value::Float64(f64::NEG_INFINITY),
        Value::Float64(f64::INFINITY),
        Value::Float64(0.1),
        nested,
    ];
    for case in cases {
        let back = value(client.query("values:echo", args([("value", case.clone())])).await.unwrap());
        let same = match (&case, &back) {
            (Value::Float64(a), Value::Float64(b)) => a.to_bits() == b.to_bits(),
            _ => case == back,
        };
        assert!(same, "sent {case:?}, got {back:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_errors_carry_their_code() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let empty = client
        .mutation("messages:send", args([("channel", "c".into()), ("author", "a".into()), ("body", "   ".into())]))
        .await
        .unwrap();
    assert_eq!(error_code(&empty).as_deref(), Some("EmptyMessage"), "{empty:?}");
    let missing = client.mutation("messages:send", args([("channel", "c".into())])).await.unwrap();
    assert_eq!(error_code(&missing).as_deref(), Some("InvalidArguments"), "{missing:?}");
    let unknown = client.mutation("nope:nothing", args([])).await.unwrap();
    assert!(matches!(unknown, FunctionResult::ErrorMessage(_)), "{unknown:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_moves_are_limited_to_twenty_a_second() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let (room, user) = (fresh("room"), fresh("user"));
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let (mut client, room, user) = (client.clone(), room.clone(), user.clone());
            tokio::spawn(async move {
                client
                    .mutation(
                        "cursors:move",
                        args([
                            ("room", room.as_str().into()),
                            ("user", user.as_str().into()),
                            ("x", f64::from(i).into()),
                            ("y", 0.0.into()),
                        ]),
                    )
                    .await
                    .unwrap()
            })
        })
        .collect();
    let (mut accepted, mut limited) = (0, 0);
    for task in tasks {
        let result = within("a cursor move", task).await.unwrap();
        match error_code(&result).as_deref() {
            None if matches!(result, FunctionResult::Value(Value::Null)) => accepted += 1,
            Some("RateLimited") => limited += 1,
            _ => panic!("unexpected {result:?}"),
        }
    }
    assert!((18..=22).contains(&accepted), "{accepted} accepted, {limited} limited");
    assert_eq!(accepted + limited, 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_totals_hold_in_every_pushed_result() {
    let server = TestServer::start().await;
    let bank = fresh("bank");
    let mut opener = server.client().await;
    let opened = opener
        .mutation(
            "accounts:open",
            args([("bank", bank.as_str().into()), ("accounts", 5.0.into()), ("balance", Value::Int64(100))]),
        )
        .await
        .unwrap();
    assert!(matches!(opened, FunctionResult::Value(_)), "{opened:?}");
    let mut watcher = server.client().await;
    let mut sub = watcher.subscribe("accounts:balances", args([("bank", bank.as_str().into())])).await.unwrap();
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let collector = tokio::spawn(async move {
        let mut totals = Vec::new();
        loop {
            let result = tokio::select! {
                result = sub.next() => result.expect("the subscription ended"),
                _ = &mut stopped => return totals,
            };
            let Value::Array(rows) = value(result) else { panic!("expected rows") };
            let total: i64 = rows
                .iter()
                .map(|row| match row {
                    Value::Object(o) => match o.get("balance") {
                        Some(Value::Int64(b)) => *b,
                        other => panic!("bad balance {other:?}"),
                    },
                    other => panic!("bad row {other:?}"),
                })
                .sum();
            totals.push(total);
        }
    });
    let mut workers = Vec::new();
    for w in 0..3u64 {
        let (mut client, bank) = (server.client().await, bank.clone());
        workers.push(tokio::spawn(async move {
            for i in 0..30u64 {
                let (from, to) = ((w + i) % 5, (w * 7 + i * 3 + 1) % 5);
                let result = client
                    .mutation(
                        "accounts:transfer",
                        args([
                            ("bank", bank.as_str().into()),
                            ("from", (from as f64).into()),
                            ("to", (to as f64).into()),
                            ("amount", Value::Int64(((i * 13) % 40) as i64)),
                        ]),
                    )
                    .await
                    .unwrap();
                match &result {
                    FunctionResult::Value(_) => {}
                    other if error_code(other).as_deref() == Some("InsufficientFunds") => {}
                    other => panic!("unexpected transfer result {other:?}"),
                }
            }
        }));
    }
    for worker in workers {
        within("a transferring client", worker).await.unwrap();
    }
    // A last write through the watcher's own client: once it resolves, the
    // watcher has been pushed every transfer before it.
    watcher
        .mutation(
            "accounts:transfer",
            args([
                ("bank", bank.as_str().into()),
                ("from", 0.0.into()),
                ("to", 0.0.into()),
                ("amount", Value::Int64(0)),
            ]),
        )
        .await
        .unwrap();
    stop.send(()).unwrap();
    let totals = within("the collector", collector).await.unwrap();
    assert!(totals.len() >= 2, "the watcher saw only {} results", totals.len());
    assert!(totals.iter().all(|&t| t == 500), "totals pushed: {totals:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_socket_loses_no_mutation_and_applies_it_once() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let name = fresh("dropped");
    let mut sub = client.subscribe("counters:get", args([("name", name.as_str().into())])).await.unwrap();
    within("first result", sub.next()).await;
    server.control("DropOnNextMutation").await;
    let result =
        within("the re-sent mutation", client.mutation("counters:increment", args([("name", name.as_str().into())])))
            .await;
    match result {
        Ok(result) => assert!(matches!(value(result), Value::Int64(1))),
        // When the socket fails while the client is still sending, the
        // crates.io client (0.10.4) drops the caller's channel, though it
        // keeps the mutation and re-sends it after reconnecting. That is the
        // client's doing; what the server owes is below: applied once.
        Err(e) => assert!(e.to_string().contains("channel closed"), "unexpected client error: {e:#}"),
    }
    within("the counter to reach 1", async {
        loop {
            if matches!(value(sub.next().await.unwrap()), Value::Int64(1)) {
                return;
            }
        }
    })
    .await;
    let applied = value(client.mutation("counters:increment", args([("name", name.as_str().into())])).await.unwrap());
    assert!(matches!(applied, Value::Int64(2)), "the dropped mutation applied more than once: next value {applied:?}");
    // After every socket drops, the subscription resumes on the new one.
    server.control("DropConnections").await;
    let mut writer = server.client().await;
    writer.mutation("counters:increment", args([("name", name.as_str().into())])).await.unwrap();
    within("the subscription after the reconnect", async {
        loop {
            if matches!(value(sub.next().await.unwrap()), Value::Int64(3)) {
                return;
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_auth_identity_reaches_users_me_and_send_as_me() {
    let server = TestServer::with_auth().await;
    let mut client = server.client().await;
    let (subject, channel) = (fresh("alice"), fresh("as-me"));
    let me = within("users:me without auth", client.query("users:me", args([]))).await.unwrap();
    assert!(matches!(value(me), Value::Null));
    let refused = within(
        "sendAsMe without auth",
        client.mutation("messages:sendAsMe", args([("channel", channel.as_str().into()), ("body", "x".into())])),
    )
    .await
    .unwrap();
    assert_eq!(error_code(&refused).as_deref(), Some("Unauthenticated"), "{refused:?}");

    // The Authenticate frame goes out before the query's, so the query's
    // first result already runs as the token's identity.
    client.set_auth(Some(token(&subject, Some("Alice")))).await;
    let me = value(within("users:me with auth", client.query("users:me", args([]))).await.unwrap());
    assert_eq!(me, identity(&subject, Some("Alice")));
    let id = value(
        within(
            "sendAsMe",
            client
                .mutation("messages:sendAsMe", args([("channel", channel.as_str().into()), ("body", "signed".into())])),
        )
        .await
        .unwrap(),
    );
    let list = value(
        within("messages:list", client.query("messages:list", args([("channel", channel.as_str().into())])))
            .await
            .unwrap(),
    );
    let Value::Array(rows) = &list else { panic!("expected rows, got {list:?}") };
    let [Value::Object(row)] = rows.as_slice() else { panic!("expected one row, got {list:?}") };
    assert_eq!(row.get("_id"), Some(&id));
    assert_eq!(row.get("author"), Some(&Value::from("Alice")), "sendAsMe must sign with the token's name: {row:?}");

    // Another identity on the same client: without a name, the subject signs.
    let bare = fresh("bob");
    client.set_auth(Some(token(&bare, None))).await;
    let me = value(within("users:me as bob", client.query("users:me", args([]))).await.unwrap());
    assert_eq!(me, identity(&bare, None));
    within(
        "sendAsMe as bob",
        client.mutation("messages:sendAsMe", args([("channel", channel.as_str().into()), ("body", "bare".into())])),
    )
    .await
    .unwrap();
    let list = value(
        within("messages:list", client.query("messages:list", args([("channel", channel.as_str().into())])))
            .await
            .unwrap(),
    );
    assert_eq!(bodies(&list), ["signed", "bare"]);
    let Value::Array(rows) = &list else { unreachable!() };
    let Value::Object(last) = &rows[1] else { panic!("expected a row, got {:?}", rows[1]) };
    assert_eq!(last.get("author"), Some(&Value::from(bare.as_str())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_subscribed_client_outlives_the_idle_timeout() {
    let keepalive = Keepalive { ping_interval: Duration::from_millis(200), idle_timeout: Duration::from_secs(1) };
    let server = TestServer::with(ServerConfig { test_hooks: true, keepalive, ..ServerConfig::standard() }).await;
    let (states_tx, mut states) = tokio::sync::mpsc::channel(64);
    let mut client = within("connect", ConvexClientBuilder::new(&server.url()).with_on_state_change(states_tx).build())
        .await
        .unwrap();
    let name = fresh("idle");
    let mut sub = client.subscribe("counters:get", args([("name", name.as_str().into())])).await.unwrap();
    assert!(matches!(value(within("first result", sub.next()).await.unwrap()), Value::Int64(0)));
    assert_eq!(server.stats().await, (1, 1));

    // Three idle timeouts with nothing to send: only the server's pings
    // (and the client's pongs) cross the socket.
    tokio::time::sleep(Duration::from_secs(3)).await;

    assert_eq!(server.stats().await, (1, 1), "the idle client lost its socket and opened another");
    let mut connected = 0;
    while let Ok(state) = states.try_recv() {
        if matches!(state, WebSocketState::Connected) {
            connected += 1;
        }
    }
    assert_eq!(connected, 1, "the idle client connected more than once");
    // Still live: another client's write reaches the idle subscription.
    let mut writer = server.client().await;
    within("increment", writer.mutation("counters:increment", args([("name", name.as_str().into())]))).await.unwrap();
    within("the write in the idle subscription", async {
        loop {
            if matches!(value(sub.next().await.unwrap()), Value::Int64(1)) {
                return;
            }
        }
    })
    .await;
    assert!(states.try_recv().is_err(), "the idle client's connection changed state after the write");
}

/// The Rust client's `action`: a streamed reply lands token by token in a
/// subscriber's view, and a failed one keeps what it wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_streams_a_reply_and_a_failed_one_keeps_its_tokens() {
    let server = TestServer::start().await;
    let (mut reader, mut caller) = (server.client().await, server.client().await);
    let channel = fresh("reply");
    let mut sub = reader.subscribe("messages:list", args([("channel", channel.as_str().into())])).await.unwrap();
    within("first result", sub.next()).await;
    let reply = args([
        ("channel", channel.as_str().into()),
        ("author", "bot".into()),
        ("text", "one two three".into()),
        ("tokenIntervalMs", 5.0.into()),
    ]);
    let result = value(within("the action", caller.action("messages:streamReply", reply)).await.unwrap());
    let Value::Object(result) = result else { panic!("expected an object, got {result:?}") };
    assert_eq!(result.get("tokens"), Some(&Value::Float64(3.0)));
    let mut seen: Vec<String> = Vec::new();
    within("the finished reply", async {
        while seen.last().map(String::as_str) != Some("one two three") {
            let result = value(sub.next().await.unwrap());
            if let Some(body) = bodies(&result).pop() {
                seen.push(body);
            }
        }
    })
    .await;
    for pair in seen.windows(2) {
        assert!(pair[1].starts_with(&pair[0]), "the reply only grows: {seen:?}");
    }
    let failing = args([
        ("channel", channel.as_str().into()),
        ("author", "bot".into()),
        ("text", "a b c d".into()),
        ("failAfterTokens", 2.0.into()),
    ]);
    let failed = within("the failing action", caller.action("messages:streamReply", failing)).await.unwrap();
    assert_eq!(error_code(&failed).as_deref(), Some("UpstreamFailed"), "{failed:?}");
    within("the partial reply", async {
        loop {
            if bodies(&value(sub.next().await.unwrap())).last().map(String::as_str) == Some("a b ") {
                return;
            }
        }
    })
    .await;
}
