//! The raw floor: a plain WebSocket echo on loopback, measured in the same
//! run as the load, with frames the size of the scenario's pushes. Latency
//! is then shown both in microseconds and as a multiple of what the machine
//! and the socket stack alone cost.

use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use syncspec_reports::hist::Hist;

/// Bursts the round trips come in; the floor is the quietest burst's.
const BURSTS: usize = 5;

/// Round trips of one frame of `size` bytes over a loopback WebSocket, for
/// at most `budget` or `rounds` round trips, whichever ends first, in
/// [`BURSTS`] bursts; returns the burst with the lowest median.
///
/// The echo server runs on a thread and runtime of its own, as a backend
/// does: sharing the caller's runtime, a round trip could stay on one
/// worker thread and measure 10 µs one run and 70 µs the next.
pub async fn floor(size: usize, rounds: usize, budget: Duration) -> std::io::Result<Hist> {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let server = std::thread::Builder::new().name("echo-floor".into()).spawn(move || {
        runtime.block_on(async move {
            let Ok(listener) = TcpListener::from_std(std_listener) else { return };
            let Ok((stream, _)) = listener.accept().await else { return };
            let _ = stream.set_nodelay(true);
            let Ok(mut ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else { return };
            while let Some(Ok(message)) = ws.next().await {
                if message.is_text() && ws.send(message).await.is_err() {
                    return;
                }
            }
        });
    })?;
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(format!("ws://{addr}/"), Some(config), true)
        .await
        .map_err(std::io::Error::other)?;
    let payload: String = "x".repeat(size);
    // The round trips come in bursts, and the floor is the burst with the
    // lowest median: on a shared machine one burst can run into other work
    // (a backend still settling after the previous phase, a waking core) and
    // measure several times the stack's cost, which would make every ratio
    // to the floor move with what else the machine was doing.
    let mut best: Option<Hist> = None;
    let deadline = Instant::now() + budget;
    'bursts: for _ in 0..BURSTS {
        let mut h = Hist::new();
        for _ in 0..rounds.div_ceil(BURSTS) {
            if Instant::now() >= deadline {
                if best.is_none() {
                    best = Some(h);
                }
                break 'bursts;
            }
            let sent = Instant::now();
            ws.send(Message::text(payload.clone())).await.map_err(std::io::Error::other)?;
            match ws.next().await {
                Some(Ok(_)) => h.record(sent.elapsed().as_micros() as u64),
                _ => return Err(std::io::Error::other("the echo server went away")),
            }
        }
        if best.as_ref().is_none_or(|b| h.quantile(0.5) < b.quantile(0.5)) {
            best = Some(h);
        }
    }
    let h = best.unwrap_or_default();
    // The server thread ends when the socket does.
    let _ = ws.close(None).await;
    drop(ws);
    let _ = tokio::task::spawn_blocking(move || server.join()).await;
    Ok(h)
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_floor_is_measured_in_microseconds_round_trip() {
        let h = super::floor(600, 200, std::time::Duration::from_secs(5)).await.unwrap();
        assert_eq!(h.len(), 40, "the quietest of five bursts of 40");
        // A loopback round trip takes at least a microsecond and far less than a second.
        assert!(h.inner().min() >= 1 && h.quantile(0.5) < 1_000_000);
    }
}
