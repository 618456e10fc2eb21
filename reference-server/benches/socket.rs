//! The whole server over WebSocket: mutation round trips per second from 100
//! clients, as a ratio to a raw tokio-tungstenite echo of a frame of the same
//! size, both measured in the same run on the same machine.
//!
//! A mutation round trip is what a client waits for before its mutation
//! resolves: the `MutationResponse` and the `Transition` that covers its ts.
//! Run with `cargo bench -p syncspec-server --bench socket`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use futures_util::{SinkExt as _, StreamExt as _};
use syncspec_protocol::wire;
use syncspec_server::server::{self, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CLIENTS: usize = 100;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Round trips per second of every sample, per benchmark, for the ratio.
static RATES: Mutex<Vec<(&'static str, f64)>> = Mutex::new(Vec::new());

fn mutation_frame(client: usize, request_id: u32) -> String {
    format!(
        r#"{{"type":"Mutation","requestId":{request_id},"udfPath":"counters:increment","args":[{{"name":"bench-{client:04}"}}]}}"#
    )
}

async fn connect(url: &str) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(server::websocket_config()), true)
        .await
        .expect("the bench server accepts connections");
    ws
}

/// The fields of a server frame this client needs; serde skips the rest
/// without building it, so the client spends little of the shared CPU.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head {
    r#type: String,
    request_id: Option<u32>,
    ts: Option<String>,
    end_version: Option<VersionTs>,
}

#[derive(serde::Deserialize)]
struct VersionTs {
    ts: String,
}

/// One mutation, waiting for its response and the transition covering it.
async fn mutation_round_trip(ws: &mut Ws, client: usize, request_id: u32) {
    ws.send(Message::text(mutation_frame(client, request_id))).await.expect("send");
    let mut committed_at = None;
    while let Some(Ok(Message::Text(text))) = ws.next().await {
        let head: Head = serde_json::from_str(&text).expect("server frames parse");
        match head.r#type.as_str() {
            "MutationResponse" if head.request_id == Some(request_id) => {
                committed_at = Some(head.ts.as_deref().and_then(wire::decode_ts).expect("success carries a ts"));
            }
            "Transition" => {
                let end = head.end_version.as_ref().and_then(|v| wire::decode_ts(&v.ts)).expect("end ts");
                if committed_at.is_some_and(|ts| end >= ts) {
                    return;
                }
            }
            _ => {}
        }
    }
    panic!("the socket closed mid round trip");
}

async fn echo_round_trip(ws: &mut Ws, frame: &str) {
    ws.send(Message::text(frame.to_owned())).await.expect("send");
    match ws.next().await {
        Some(Ok(Message::Text(_))) => {}
        other => panic!("expected an echo, got {other:?}"),
    }
}

async fn echo_server(listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { return };
        stream.set_nodelay(true).ok();
        tokio::spawn(async move {
            let Ok(mut ws) =
                tokio_tungstenite::accept_async_with_config(stream, Some(server::websocket_config())).await
            else {
                return;
            };
            while let Some(Ok(message)) = ws.next().await {
                if message.is_text() && ws.send(message).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Runs `iters` round trips spread over the clients and returns the wall time.
fn drive<F, Fut>(
    runtime: &tokio::runtime::Runtime,
    clients: &mut Vec<Ws>,
    iters: u64,
    name: &'static str,
    trip: F,
) -> Duration
where
    F: Fn(Ws, usize, u64) -> Fut + Copy,
    Fut: std::future::Future<Output = Ws> + Send + 'static,
{
    let per_client = iters.div_ceil(CLIENTS as u64);
    let taken: Vec<Ws> = std::mem::take(clients);
    let (elapsed, back) = runtime.block_on(async move {
        let start = Instant::now();
        let tasks: Vec<_> =
            taken.into_iter().enumerate().map(|(i, ws)| tokio::spawn(trip(ws, i, per_client))).collect();
        let mut back = Vec::with_capacity(CLIENTS);
        for task in tasks {
            back.push(task.await.expect("client task"));
        }
        (start.elapsed(), back)
    });
    *clients = back;
    let done = per_client * CLIENTS as u64;
    RATES.lock().unwrap().push((name, done as f64 / elapsed.as_secs_f64()));
    // Report time for the `iters` asked, scaled from the round trips made.
    elapsed.mul_f64(iters as f64 / done as f64)
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let (server_url, echo_url) = runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let config = ServerConfig::standard();
        tokio::spawn(server::run(listener, config, std::future::pending::<()>()));
        let echo = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let echo_addr = echo.local_addr().expect("addr");
        tokio::spawn(echo_server(echo));
        (format!("ws://{addr}/api/sync"), format!("ws://{echo_addr}/"))
    });
    let mut sync_clients: Vec<Ws> = runtime.block_on(async {
        let mut clients = Vec::new();
        for i in 0..CLIENTS {
            let mut ws = connect(&server_url).await;
            let connect = format!(
                r#"{{"type":"Connect","sessionId":"00000000-0000-4000-8000-{i:012}","connectionCount":0,"lastCloseReason":"InitialConnect"}}"#
            );
            ws.send(Message::text(connect)).await.expect("connect");
            clients.push(ws);
        }
        clients
    });
    let mut echo_clients: Vec<Ws> =
        runtime.block_on(async { futures_util::future::join_all((0..CLIENTS).map(|_| connect(&echo_url))).await });
    let frame_len = mutation_frame(0, 0).len();
    let echo_frame: &'static str = Box::leak("x".repeat(frame_len).into_boxed_str());

    let mut group = c.benchmark_group("socket_100_clients");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("mutation_round_trip", |b| {
        let mut next_request = 0u32;
        b.iter_custom(|iters| {
            let base = next_request;
            next_request += iters.div_ceil(CLIENTS as u64) as u32;
            drive(&runtime, &mut sync_clients, iters, "mutation", move |mut ws, client, n| async move {
                for k in 0..n as u32 {
                    mutation_round_trip(&mut ws, client, base + k).await;
                }
                ws
            })
        })
    });
    group.bench_function("echo_round_trip", |b| {
        b.iter_custom(|iters| {
            drive(&runtime, &mut echo_clients, iters, "echo", move |mut ws, _, n| async move {
                for _ in 0..n {
                    echo_round_trip(&mut ws, echo_frame).await;
                }
                ws
            })
        })
    });
    group.finish();
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
    let rates = RATES.lock().unwrap().clone();
    let of = |name| median(rates.iter().filter(|(n, _)| *n == name).map(|(_, r)| *r).collect());
    let (mutation, echo) = (of("mutation"), of("echo"));
    println!(
        "100 clients back to back: {mutation:.0} mutation round trips/s, {echo:.0} echo round trips/s, ratio {:.2} (medians of all samples, this run)",
        mutation / echo
    );
}
