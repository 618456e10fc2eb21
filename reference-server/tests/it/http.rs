//! The HTTP API and keepalive at the byte level: every request gets an HTTP
//! answer (never a dropped connection), calls answer in the shapes the
//! official HTTP clients read, an HTTP write reaches socket subscribers, a
//! bearer token is verified, pings go out and a silent socket is closed.

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use syncspec_server::auth::{self, Claims, Verifier};
use syncspec_server::core::{Config, Fault};
use syncspec_server::server::{self, Keepalive, ServerConfig};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

const DEADLINE: Duration = Duration::from_secs(20);
const SECRET: &[u8] = b"http test secret";

/// Starts a server with `config` on a free port; it stops when the returned sender drops.
pub(crate) async fn start(config: ServerConfig) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server::run(listener, config, async move {
        let _ = stopped.await;
    }));
    (addr.to_string(), stop)
}

fn with_secret() -> ServerConfig {
    ServerConfig { auth: Verifier::shared_secret(SECRET), ..ServerConfig::standard() }
}

/// An HTTP answer: status, headers (lowercased names), body.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Sends one raw HTTP/1.1 request (closing the connection after it) and
/// reads the whole answer; `None` when the connection ended with no answer.
async fn raw(addr: &str, request: String) -> Option<Answer> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The server may answer (413) and close before the whole body is sent.
    let _ = stream.write_all(request.as_bytes()).await;
    let mut bytes = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut bytes)).await.expect("an answer in time").ok()?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some(Answer { status, headers, body: body.to_owned() })
}

async fn request(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Option<Answer> {
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    raw(addr, text).await
}

async fn post(addr: &str, path: &str, body: &str) -> Answer {
    request(addr, "POST", path, &[("Content-Type", "application/json")], body).await.expect("an HTTP answer")
}

#[tokio::test]
async fn calls_answer_in_the_http_clients_shapes() {
    let (addr, _stop) = start(ServerConfig::standard()).await;
    let ok = post(&addr, "/api/mutation", r#"{"path":"counters:increment","args":{"name":"h"},"format":"json"}"#).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ok.json(), serde_json::json!({"status":"success","value":{"$integer":"AQAAAAAAAAA="},"logLines":[]}));
    // The npm client's shape: args as a one-element array.
    let read =
        post(&addr, "/api/query", r#"{"path":"counters:get","args":[{"name":"h"}],"format":"convex_encoded_json"}"#)
            .await;
    assert_eq!(read.json()["value"], serde_json::json!({"$integer":"AQAAAAAAAAA="}));
    let failed =
        post(&addr, "/api/mutation", r#"{"path":"messages:send","args":{"channel":"c","author":"a","body":"  "}}"#)
            .await;
    assert_eq!(failed.status, 200, "{failed:?}");
    let body = failed.json();
    assert_eq!(body["status"], "error");
    assert_eq!(body["errorData"]["code"], "EmptyMessage");
    assert!(body["errorMessage"].as_str().is_some_and(|m| !m.is_empty()));
    let wrong_kind = post(&addr, "/api/query", r#"{"path":"counters:increment","args":{"name":"h"}}"#).await;
    assert_eq!((wrong_kind.status, wrong_kind.json()["status"].as_str()), (200, Some("error")));
    let any_kind = post(&addr, "/api/function", r#"{"path":"counters:get","args":{"name":"h"}}"#).await;
    assert_eq!(any_kind.status, 200);
    let action = post(&addr, "/api/action", r#"{"path":"messages:send","args":{}}"#).await;
    assert_eq!((action.status, action.json()["status"].as_str()), (200, Some("error")));
    assert_eq!(ok.header("access-control-allow-origin"), Some("*"));
}

#[tokio::test]
async fn every_other_request_gets_a_proper_status() {
    let (addr, _stop) = start(ServerConfig::standard()).await;
    let version = request(&addr, "GET", "/version", &[], "").await.unwrap();
    assert_eq!(version.status, 200);
    assert!(version.body.starts_with("syncspec-server "));
    let missing = request(&addr, "GET", "/nope", &[], "").await.unwrap();
    assert_eq!((missing.status, missing.json()["code"].as_str()), (404, Some("NotFound")));
    let wrong = request(&addr, "GET", "/api/query", &[], "").await.unwrap();
    assert_eq!((wrong.status, wrong.header("allow")), (405, Some("POST")));
    let not_json = post(&addr, "/api/query", "{nope").await;
    assert_eq!(not_json.status, 400);
    let no_path = post(&addr, "/api/query", r#"{"args":{}}"#).await;
    assert_eq!(no_path.status, 400);
    assert!(no_path.json()["message"].as_str().unwrap().contains("path"), "{no_path:?}");
    let no_upgrade = request(&addr, "GET", "/api/sync", &[], "").await.unwrap();
    assert_eq!(no_upgrade.status, 400);
    let too_big = post(&addr, "/api/query", &"a".repeat(server::MAX_FRAME_BYTES + 1)).await;
    assert_eq!(too_big.status, 413);
    let garbage = raw(&addr, "NOT HTTP AT ALL\r\n\r\n".into()).await;
    assert!(garbage.is_some_and(|a| a.status == 400), "a request line that is not HTTP gets a 400");
    // The server still serves.
    assert_eq!(post(&addr, "/api/query", r#"{"path":"counters:get","args":{"name":"x"}}"#).await.status, 200);
}

#[tokio::test]
async fn an_unknown_route_is_dropped_only_under_the_fault() {
    let faulty = ServerConfig {
        core: Config { faults: [Fault::HttpDropUnknown].into(), ..Config::standard() },
        ..ServerConfig::standard()
    };
    let (addr, _stop) = start(faulty).await;
    assert!(request(&addr, "GET", "/nope", &[], "").await.is_none());
}

#[tokio::test]
async fn an_http_write_reaches_socket_subscribers() {
    let (addr, _stop) = start(ServerConfig::standard()).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/api/sync")).await.unwrap();
    for frame in [
        r#"{"type":"Connect","sessionId":"00000000-0000-4000-8000-000000000001","connectionCount":0,"lastCloseReason":"InitialConnect"}"#,
        r#"{"type":"ModifyQuerySet","baseVersion":0,"newVersion":1,"modifications":[{"type":"Add","queryId":0,"udfPath":"counters:get","args":[{"name":"seen"}]}]}"#,
    ] {
        ws.send(Message::text(frame)).await.unwrap();
    }
    let first = tokio::time::timeout(DEADLINE, ws.next()).await.unwrap().unwrap().unwrap();
    assert!(first.to_text().unwrap().contains("AAAAAAAAAAA="), "counter starts at 0: {first}");
    post(&addr, "/api/mutation", r#"{"path":"counters:increment","args":{"name":"seen"}}"#).await;
    let pushed = tokio::time::timeout(DEADLINE, ws.next()).await.unwrap().unwrap().unwrap();
    assert!(pushed.to_text().unwrap().contains("AQAAAAAAAAA="), "the HTTP increment is pushed: {pushed}");
}

#[tokio::test]
async fn a_bearer_token_is_verified() {
    let (addr, _stop) = start(with_secret()).await;
    let good = auth::mint_hs256(SECRET, &Claims::new("ada", "https://issuer.test", auth::now_s()).named("Ada"));
    let forged = auth::mint_hs256(b"not the secret", &Claims::new("ada", "https://issuer.test", auth::now_s()));
    let body = r#"{"path":"users:me","args":{}}"#;
    let json = ("Content-Type", "application/json");
    let me = request(&addr, "POST", "/api/query", &[json, ("Authorization", &format!("Bearer {good}"))], body).await;
    let me = me.unwrap().json();
    assert_eq!(me["value"]["subject"], "ada");
    assert_eq!(me["value"]["name"], "Ada");
    assert_eq!(me["value"]["tokenIdentifier"], "https://issuer.test|ada");
    let refused =
        request(&addr, "POST", "/api/query", &[json, ("Authorization", &format!("Bearer {forged}"))], body).await;
    assert_eq!(refused.unwrap().status, 401);
    let anonymous = post(&addr, "/api/query", body).await.json();
    assert_eq!(anonymous["value"], serde_json::Value::Null);
    let unauthenticated =
        post(&addr, "/api/mutation", r#"{"path":"messages:sendAsMe","args":{"channel":"c","body":"hi"}}"#).await;
    assert_eq!(
        (unauthenticated.status, unauthenticated.json()["errorData"]["code"].as_str()),
        (200, Some("Unauthenticated"))
    );
}

fn short_keepalive(faults: &[Fault]) -> ServerConfig {
    ServerConfig {
        core: Config { faults: faults.iter().copied().collect(), ..Config::standard() },
        keepalive: Keepalive { ping_interval: Duration::from_millis(100), idle_timeout: Duration::from_millis(500) },
        ..ServerConfig::standard()
    }
}

/// Keeps reading (so tungstenite answers pings) for `for_how_long`; returns
/// the pings seen and whether the socket is still open.
async fn idle(
    ws: &mut tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
    for_how_long: Duration,
) -> (u32, Option<Option<CloseCode>>) {
    let mut pings = 0;
    let deadline = tokio::time::Instant::now() + for_how_long;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return (pings, None),
            Ok(Some(Ok(Message::Ping(_)))) => pings += 1,
            Ok(Some(Ok(Message::Close(frame)))) => return (pings, Some(frame.map(|f| f.code))),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) => return (pings, Some(None)),
        }
    }
}

#[tokio::test]
async fn an_idle_socket_that_answers_pings_outlives_the_idle_timeout() {
    let (addr, _stop) = start(short_keepalive(&[])).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/api/sync")).await.unwrap();
    let (pings, closed) = idle(&mut ws, Duration::from_millis(1500)).await;
    assert_eq!(closed, None, "closed after {pings} pings");
    assert!(pings >= 5, "pings every 100 ms, saw {pings} in 1.5 s");
}

#[tokio::test]
async fn a_silent_socket_is_closed_and_without_pings_an_idle_one_is_too() {
    let (addr, _stop) = start(short_keepalive(&[])).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/api/sync")).await.unwrap();
    // Not reading: no pong goes out, so nothing arrives from this client.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (_, closed) = idle(&mut ws, Duration::from_secs(5)).await;
    // The close frame (1001) may be lost to the reset of the pongs written
    // after it; either way the server ended the socket.
    assert!(closed.is_some(), "a silent socket is closed");

    let (addr, _stop) = start(short_keepalive(&[Fault::NoWsPing])).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/api/sync")).await.unwrap();
    let (pings, closed) = idle(&mut ws, Duration::from_secs(5)).await;
    assert_eq!((pings, closed), (0, Some(Some(CloseCode::Away))));
}

#[tokio::test]
async fn metrics_count_connections_refusals_frames_commits_and_closes_by_reason() {
    let limits = syncspec_server::admission::Limits { max_connections: 3, ..Default::default() };
    let (addr, _stop) = start(ServerConfig { limits, ..ServerConfig::standard() }).await;
    let scrape = |addr: String| async move {
        let answer = request(&addr, "GET", "/metrics", &[], "").await.expect("a metrics answer");
        assert_eq!(answer.status, 200);
        assert!(answer.header("content-type").is_some_and(|t| t.starts_with("application/openmetrics-text")));
        answer.body
    };
    let value = |text: &str, name: &str| -> f64 {
        let line =
            text.lines().find(|l| l.split(' ').next() == Some(name)).unwrap_or_else(|| panic!("no {name}:\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let before = scrape(addr.clone()).await;
    assert_eq!(value(&before, "syncspec_commits_total"), 0.0);
    // A socket: one mutation, then a frame that is not JSON, which ends it.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/api/sync")).await.unwrap();
    let connect = r#"{"type":"Connect","sessionId":"00000000-0000-4000-8000-0000000000aa","connectionCount":0,"lastCloseReason":"InitialConnect"}"#;
    let mutation = r#"{"type":"Mutation","requestId":0,"udfPath":"counters:increment","args":[{"name":"m"}]}"#;
    for frame in [connect, mutation] {
        ws.send(Message::text(frame)).await.unwrap();
    }
    while let Some(Ok(message)) = ws.next().await {
        if message.to_text().is_ok_and(|t| t.contains("MutationResponse")) {
            break;
        }
    }
    ws.send(Message::text("not json")).await.unwrap();
    while let Some(Ok(_)) = ws.next().await {}
    // Three idle connections fill the server; the fourth gets a 503.
    let idle: Vec<TcpStream> = futures_util::future::join_all((0..3).map(|_| TcpStream::connect(&addr)))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(request(&addr, "GET", "/version", &[], "").await.map(|a| a.status), Some(503));
    drop(idle);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let after = scrape(addr.clone()).await;
    assert_eq!(value(&after, "syncspec_commits_total"), 1.0);
    assert_eq!(value(&after, "syncspec_sessions_opened_total"), 1.0);
    assert_eq!(value(&after, "syncspec_frames_received_total"), 3.0);
    assert_eq!(value(&after, "syncspec_received_bytes_total"), (connect.len() + mutation.len() + 8) as f64);
    assert!(value(&after, "syncspec_frames_sent_total") >= 2.0, "a response and a transition at least");
    assert_eq!(value(&after, "syncspec_connections_refused_total{reason=\"max_connections\"}"), 1.0);
    assert!(
        after
            .lines()
            .any(|l| l.starts_with("syncspec_sessions_closed_total{reason=\"WSMessageInvalidJson\"}")
                && l.ends_with(" 1")),
        "{after}"
    );
    assert_eq!(value(&after, "syncspec_sessions_open"), 0.0);
    assert!(value(&after, "syncspec_process_resident_memory_bytes") > 1e6);
}
