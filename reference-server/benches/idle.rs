//! Memory of the server holding many idle sessions: 10,000 WebSocket
//! connections, each with one live subscription.
//!
//! The server runs in a child process (this same binary, started with
//! `SYNCSPEC_IDLE_SERVER=1`) so that its resident set size is not mixed with
//! the clients'. Run with `cargo bench -p syncspec-server --bench idle`;
//! `SYNCSPEC_IDLE_CONNECTIONS` changes the count.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use syncspec_server::server::{self, ServerConfig};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Connections opening at once, so the listen backlog never overflows.
const CONNECTING_AT_ONCE: usize = 200;

fn main() {
    if std::env::var_os("SYNCSPEC_IDLE_SERVER").is_some() {
        return serve();
    }
    // `cargo bench` passes flags meant for criterion; with a filter that
    // names another bench, stay out of the way.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    if !args.is_empty() && !args.iter().any(|a| "idle_connections".contains(a.as_str())) {
        return;
    }
    let connections: usize =
        std::env::var("SYNCSPEC_IDLE_CONNECTIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .env("SYNCSPEC_IDLE_SERVER", "1")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server process");
    let pid = child.id();
    let mut first_line = String::new();
    BufReader::new(child.stdout.take().expect("piped")).read_line(&mut first_line).expect("read the address");
    let url = format!("ws://{}/api/sync", first_line.trim());
    let baseline = rss_kib(pid);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let started = Instant::now();
    let clients = runtime.block_on(open_all(&url, connections));
    let opened_in = started.elapsed();
    // Let the server settle (tick, allocator) before reading its memory.
    std::thread::sleep(Duration::from_secs(2));
    let loaded = rss_kib(pid);
    println!(
        "idle_connections: {connections} connections with one subscription each (opened in {:.1} s): server RSS {:.0} MiB, {:.0} MiB before them, {:.1} KiB per connection",
        opened_in.as_secs_f64(),
        loaded as f64 / 1024.0,
        baseline as f64 / 1024.0,
        (loaded.saturating_sub(baseline)) as f64 / connections as f64,
    );
    drop(clients);
    let _ = child.kill();
    let _ = child.wait();
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens every connection, subscribes, and waits for each first transition.
async fn open_all(url: &str, connections: usize) -> Vec<Ws> {
    let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(CONNECTING_AT_ONCE));
    let tasks: Vec<_> = (0..connections)
        .map(|i| {
            let (url, semaphore) = (url.to_owned(), semaphore.clone());
            tokio::spawn(async move {
                let _permit = semaphore.acquire().await.expect("semaphore");
                let (mut ws, _) = tokio_tungstenite::connect_async_with_config(&url, Some(server::websocket_config()), true)
                    .await
                    .expect("connect");
                let connect = format!(
                    r#"{{"type":"Connect","sessionId":"00000000-0000-4000-8000-{i:012}","connectionCount":0,"lastCloseReason":"InitialConnect"}}"#
                );
                // Rooms of ten: a thousand distinct queries, each shared by ten sessions.
                let subscribe = format!(
                    r#"{{"type":"ModifyQuerySet","baseVersion":0,"newVersion":1,"modifications":[{{"type":"Add","queryId":0,"udfPath":"presence:list","args":[{{"room":"room-{}"}}]}}]}}"#,
                    i / 10
                );
                ws.send(Message::text(connect)).await.expect("send");
                ws.send(Message::text(subscribe)).await.expect("send");
                match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
                    Ok(Some(Ok(Message::Text(t)))) if t.contains("\"Transition\"") => ws,
                    other => panic!("expected the first transition, got {other:?}"),
                }
            })
        })
        .collect();
    let mut clients = Vec::with_capacity(connections);
    for task in tasks {
        clients.push(task.await.expect("client"));
    }
    clients
}

fn serve() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        println!("{}", listener.local_addr().expect("addr"));
        let config = ServerConfig::standard();
        // Runs until the parent kills this process.
        let _ = server::run(listener, config, std::future::pending::<()>()).await;
    });
}

/// The resident set size of a process, from `/proc`.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
