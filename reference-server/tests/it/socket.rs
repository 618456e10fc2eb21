//! The server at the socket level, with a raw WebSocket client: routing,
//! keepalive, bad frames, oversize input, and a client that stops reading.

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use syncspec_server::admission::Limits;
use syncspec_server::server::{self, ServerConfig};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const DEADLINE: Duration = Duration::from_secs(20);

/// Starts a server on a free port; it stops when the returned sender drops.
async fn start() -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = ServerConfig::standard();
    tokio::spawn(server::run(listener, config, async move {
        let _ = stopped.await;
    }));
    (addr.to_string(), stop)
}

async fn open(addr: &str, path: &str, session: u32) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}{path}")).await.unwrap();
    let connect = format!(
        r#"{{"type":"Connect","sessionId":"00000000-0000-4000-8000-{session:012}","connectionCount":0,"lastCloseReason":"InitialConnect"}}"#
    );
    ws.send(Message::text(connect)).await.unwrap();
    ws
}

/// Reads text frames until one contains `needle`, within the deadline.
async fn until(ws: &mut Ws, needle: &str) -> String {
    let wait = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.contains(needle) => return t.to_string(),
                Some(Ok(_)) => {}
                other => panic!("expected a frame containing {needle}, got {other:?}"),
            }
        }
    };
    tokio::time::timeout(DEADLINE, wait).await.unwrap_or_else(|_| panic!("no frame containing {needle} in time"))
}

/// Reads until the server closes, returning the close code.
async fn close_code(ws: &mut Ws) -> Option<CloseCode> {
    let wait = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            }
        }
    };
    tokio::time::timeout(DEADLINE, wait).await.expect("the server should close the socket")
}

async fn increment(ws: &mut Ws, request_id: u32, name: &str) -> String {
    let m = format!(
        r#"{{"type":"Mutation","requestId":{request_id},"udfPath":"counters:increment","args":[{{"name":"{name}"}}]}}"#
    );
    ws.send(Message::text(m)).await.unwrap();
    until(ws, &format!(r#""requestId":{request_id}"#)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_sync_routes_serve_and_others_are_refused() {
    let (addr, _stop) = start().await;
    for path in ["/api/sync", "/api/1.48.0/sync"] {
        let mut ws = open(&addr, path, 1).await;
        assert!(increment(&mut ws, 0, "routes").await.contains(r#""success":true"#), "{path}");
    }
    let refused = tokio_tungstenite::connect_async(format!("ws://{addr}/nope")).await;
    assert!(refused.is_err(), "a WebSocket at /nope should be refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_pings_are_answered() {
    let (addr, _stop) = start().await;
    let mut ws = open(&addr, "/api/sync", 1).await;
    ws.send(Message::Ping(b"are you there".to_vec().into())).await.unwrap();
    let pong = tokio::time::timeout(DEADLINE, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Pong(payload))) => return payload,
                Some(Ok(_)) => {}
                other => panic!("expected a pong, got {other:?}"),
            }
        }
    })
    .await
    .expect("a pong in time");
    assert_eq!(&pong[..], b"are you there");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_get_a_fatal_error_and_a_close_and_harm_no_one_else() {
    let (addr, _stop) = start().await;
    let mut bystander = open(&addr, "/api/sync", 100).await;
    let cases: [(Message, &str); 3] = [
        (Message::text("{not json"), "WSMessageInvalidJson"),
        (Message::Binary(vec![1, 2, 3].into()), "WSMessageInvalid"),
        (
            Message::text(r#"{"type":"ModifyQuerySet","baseVersion":5,"newVersion":6,"modifications":[]}"#),
            "BaseVersionMismatch",
        ),
    ];
    for (i, (frame, code)) in cases.into_iter().enumerate() {
        let mut ws = open(&addr, "/api/sync", i as u32 + 1).await;
        ws.send(frame).await.unwrap();
        let fatal = until(&mut ws, "FatalError").await;
        assert!(fatal.contains(code), "expected {code} in {fatal}");
        assert_eq!(close_code(&mut ws).await, Some(CloseCode::Protocol));
        assert!(increment(&mut bystander, i as u32, "bystander").await.contains(r#""success":true"#));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_arguments_fail_the_call_and_oversize_frames_close() {
    let (addr, _stop) = start().await;
    let mut ws = open(&addr, "/api/sync", 1).await;
    let big = "x".repeat(16 * 1024 * 1024 + 1);
    let m = format!(
        r#"{{"type":"Mutation","requestId":0,"udfPath":"messages:send","args":[{{"channel":"c","author":"a","body":"{big}"}}]}}"#
    );
    ws.send(Message::text(m)).await.unwrap();
    let response = until(&mut ws, r#""requestId":0"#).await;
    assert!(
        response.contains(r#""success":false"#) && response.contains("TooLarge"),
        "{}",
        &response[..200.min(response.len())]
    );
    assert!(increment(&mut ws, 1, "after-big").await.contains(r#""success":true"#));
    let huge = "x".repeat(server::MAX_FRAME_BYTES + 1);
    let _ = ws.send(Message::text(huge)).await;
    assert_eq!(close_code(&mut ws).await, Some(CloseCode::Size));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_does_not_hold_up_others() {
    let (addr, _stop) = start().await;
    // The stalled client subscribes to a channel that will carry large
    // results, then never reads again.
    let mut stalled = open(&addr, "/api/sync", 1).await;
    stalled
        .send(Message::text(
            r#"{"type":"ModifyQuerySet","baseVersion":0,"newVersion":1,"modifications":[{"type":"Add","queryId":0,"udfPath":"messages:list","args":[{"channel":"flood"}]}]}"#,
        ))
        .await
        .unwrap();
    let mut writer = open(&addr, "/api/sync", 2).await;
    let filler = "y".repeat(3990);
    // Each write changes a ~400 KB result for the stalled client: far more
    // than its socket buffers hold.
    for i in 0..200u32 {
        let m = format!(
            r#"{{"type":"Mutation","requestId":{i},"udfPath":"messages:send","args":[{{"channel":"flood","author":"w","body":"m{i:03}{filler}"}}]}}"#
        );
        writer.send(Message::text(m)).await.unwrap();
        let response = until(&mut writer, &format!(r#""requestId":{i}"#)).await;
        assert!(response.contains(r#""success":true"#));
    }
    // A newcomer is served promptly too.
    let mut newcomer = open(&addr, "/api/sync", 3).await;
    assert!(increment(&mut newcomer, 0, "newcomer").await.contains(r#""success":true"#));
    // When the stalled client reads again it catches up through coalesced
    // transitions, far fewer than the 200 commits it missed.
    let mut transitions = 0;
    let caught_up = tokio::time::timeout(DEADLINE, async {
        loop {
            match stalled.next().await {
                Some(Ok(Message::Text(t))) if t.contains(r#""type":"Transition""#) => {
                    transitions += 1;
                    if t.contains("m199y") {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("the stalled client lost its socket: {other:?}"),
            }
        }
    })
    .await;
    assert!(caught_up.is_ok(), "the stalled client never saw the last message");
    assert!(transitions < 100, "{transitions} transitions for 200 commits: not coalesced");
}

/// A WebSocket client at the byte level: its handshake done, frames written
/// as given, and the server's frames read back.
struct RawWs(tokio::net::TcpStream);

impl RawWs {
    async fn open(addr: &str) -> RawWs {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "GET /api/sync HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            stream.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
        RawWs(stream)
    }

    /// Writes one frame: `first` is the FIN/RSV/opcode byte; masked with a
    /// zero key (so the payload goes as is) unless `masked` is false.
    async fn frame(&mut self, first: u8, payload: &[u8], masked: bool) {
        use tokio::io::AsyncWriteExt as _;
        self.0.write_all(&RawWs::encode(first, payload, masked)).await.unwrap();
    }

    /// Writes many masked text frames in one write.
    async fn texts(&mut self, payloads: &[String]) {
        use tokio::io::AsyncWriteExt as _;
        let bytes: Vec<u8> = payloads.iter().flat_map(|p| RawWs::encode(0x81, p.as_bytes(), true)).collect();
        self.0.write_all(&bytes).await.unwrap();
    }

    fn encode(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
        let mask_bit = if masked { 0x80 } else { 0 };
        let mut bytes = vec![first];
        match u16::try_from(payload.len()).expect("a short frame") {
            n @ 0..=125 => bytes.push(n as u8 | mask_bit),
            n => {
                bytes.push(126 | mask_bit);
                bytes.extend(n.to_be_bytes());
            }
        }
        if masked {
            bytes.extend([0, 0, 0, 0]);
        }
        bytes.extend(payload);
        bytes
    }

    fn text(payload: &str) -> Vec<u8> {
        payload.as_bytes().to_vec()
    }

    /// Reads server frames until a close frame, returning its code, or
    /// `Err` with what ended the stream instead.
    async fn close_code(&mut self) -> Result<u16, String> {
        use tokio::io::AsyncReadExt as _;
        let read = async {
            loop {
                let mut head = [0u8; 2];
                self.0.read_exact(&mut head).await.map_err(|e| format!("no close frame: {e}"))?;
                let len = match head[1] & 0x7f {
                    126 => u64::from(self.0.read_u16().await.map_err(|e| e.to_string())?),
                    127 => self.0.read_u64().await.map_err(|e| e.to_string())?,
                    n => u64::from(n),
                };
                let mut payload = vec![0u8; len as usize];
                self.0.read_exact(&mut payload).await.map_err(|e| format!("a cut frame: {e}"))?;
                if head[0] & 0x0f == 0x8 {
                    return payload
                        .get(..2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]))
                        .ok_or("a close without a code".into());
                }
            }
        };
        tokio::time::timeout(DEADLINE, read).await.map_err(|_| "no close in time".to_owned())?
    }
}

#[tokio::test]
async fn framing_violations_get_the_rfc_6455_close_code() {
    let (addr, _stop) = start().await;
    let connect = r#"{"type":"Connect","sessionId":"00000000-0000-4000-8000-000000000009","connectionCount":0,"lastCloseReason":"InitialConnect"}"#;
    // A text frame that is not UTF-8: 1007.
    let mut ws = RawWs::open(&addr).await;
    ws.frame(0x81, &RawWs::text(connect), true).await;
    ws.frame(0x81, &[0xff, 0xfe, 0x22], true).await;
    assert_eq!(ws.close_code().await, Ok(1007));
    // A frame the client did not mask: 1002.
    let mut ws = RawWs::open(&addr).await;
    ws.frame(0x81, &RawWs::text(connect), false).await;
    assert_eq!(ws.close_code().await, Ok(1002));
    // A reserved bit with no extension to give it meaning: 1002.
    let mut ws = RawWs::open(&addr).await;
    ws.frame(0x81 | 0x40, &RawWs::text(connect), true).await;
    assert_eq!(ws.close_code().await, Ok(1002));
    // A reserved opcode: 1002.
    let mut ws = RawWs::open(&addr).await;
    ws.frame(0x83, b"x", true).await;
    assert_eq!(ws.close_code().await, Ok(1002));
    // And the server serves on.
    let mut ws = open(&addr, "/api/sync", 10).await;
    increment(&mut ws, 0, "after-framing").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_cut_off_for_not_reading_is_told_why_when_it_reads_again() {
    let limits = Limits { max_unsent_frames: 500, ..Limits::default() };
    let (addr, _stop) = crate::http::start(ServerConfig { workers: 0, limits, ..ServerConfig::standard() }).await;
    let mut ws = RawWs::open(&addr).await;
    let connect = r#"{"type":"Connect","sessionId":"00000000-0000-4000-8000-000000000011","connectionCount":0,"lastCloseReason":"InitialConnect"}"#;
    // Calls refused at once (no `name`), so only their answers pile up: far
    // more than the bound and the socket buffers hold, written in one go
    // without reading, so the server must keep reading (and dropping) what
    // comes after the cut-off for the client to finish writing.
    let mut frames = vec![connect.to_owned()];
    frames.extend(
        (0..60_000u32)
            .map(|i| format!(r#"{{"type":"Mutation","requestId":{i},"udfPath":"counters:increment","args":[{{}}]}}"#)),
    );
    ws.texts(&frames).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // What the socket held comes first, then why the session ended.
    assert_eq!(ws.close_code().await, Ok(1013));
}

#[tokio::test]
async fn a_close_the_server_starts_reaches_a_client_that_is_still_sending() {
    let (addr, _stop) = start().await;
    let mut ws = RawWs::open(&addr).await;
    // A message that ends the session (not JSON), with half a megabyte of
    // mutations behind it in the same write: the server closes with unread
    // input, which must not turn into a reset that loses the close frame.
    let mut frames = vec!["not json".to_owned()];
    frames.extend((0..5000u32).map(|i| {
        format!(r#"{{"type":"Mutation","requestId":{i},"udfPath":"counters:increment","args":[{{"name":"never"}}]}}"#)
    }));
    ws.texts(&frames).await;
    // The client is busy elsewhere for a moment before it reads, as one that
    // is still sending would be: by then the server has closed its end.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ws.close_code().await, Ok(1002));
}
