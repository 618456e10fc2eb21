//! The raw floor: a plain WebSocket echo on loopback, measured in the same
//! run as the load, with frames the size of the scenario's pushes. Latency
//! is then shown both in microseconds and as a multiple of what the machine
//! and the socket stack alone cost.
//!
//! Both ends poll their sockets without sleeping, so the floor is the cost
//! of the socket stack and WebSocket framing alone. Ends that sleep between
//! frames measured about 10 µs in one run and 50–80 µs in the next on this
//! two-core virtual machine (a sleeping core's wake-up, which depends on what
//! else the machine does), and every ratio to the floor moved fivefold with
//! it; a floor that moves with the weather cannot judge a regression.

use std::io::ErrorKind;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use syncspec_reports::hist::Hist;
use tokio_tungstenite::tungstenite::{self, Message, WebSocket};

/// Round trips of one frame of `size` bytes over a loopback WebSocket, for
/// at most `budget` or `rounds` round trips, whichever ends first.
///
/// The echo server runs on a thread of its own, as a backend does; the
/// client on a blocking thread of the caller's runtime.
pub async fn floor(size: usize, rounds: usize, budget: Duration) -> std::io::Result<Hist> {
    tokio::task::spawn_blocking(move || measure(size, rounds, budget)).await.map_err(std::io::Error::other)?
}

fn measure(size: usize, rounds: usize, budget: Duration) -> std::io::Result<Hist> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = std::thread::Builder::new().name("echo-floor".into()).spawn(move || -> std::io::Result<()> {
        let (stream, _) = listener.accept()?;
        stream.set_nodelay(true)?;
        let mut ws = tungstenite::accept(stream).map_err(std::io::Error::other)?;
        ws.get_ref().set_nonblocking(true)?;
        loop {
            match spin_read(&mut ws)? {
                Some(message) if message.is_text() => spin_send(&mut ws, message)?,
                Some(_) => {}
                None => return Ok(()),
            }
        }
    })?;
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let (mut ws, _) = tungstenite::client(format!("ws://{addr}/"), stream).map_err(std::io::Error::other)?;
    ws.get_ref().set_nonblocking(true)?;
    let payload: String = "x".repeat(size);
    let mut h = Hist::new();
    let deadline = Instant::now() + budget;
    for _ in 0..rounds {
        if Instant::now() >= deadline {
            break;
        }
        let sent = Instant::now();
        spin_send(&mut ws, Message::text(payload.clone()))?;
        match spin_read(&mut ws)? {
            Some(_) => h.record(sent.elapsed().as_micros() as u64),
            None => return Err(std::io::Error::other("the echo server went away")),
        }
    }
    // The server thread ends when the socket does.
    let _ = ws.close(None);
    let _ = ws.flush();
    drop(ws);
    let _ = server.join();
    Ok(h)
}

/// The next message, polling without sleeping; `None` once the socket closed.
fn spin_read(ws: &mut WebSocket<TcpStream>) -> std::io::Result<Option<Message>> {
    loop {
        match ws.read() {
            Ok(message) => return Ok(Some(message)),
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => return Ok(None),
            Err(tungstenite::Error::Io(e)) => return Err(e),
            Err(e) => return Err(std::io::Error::other(e)),
        }
    }
}

/// Sends a message, polling without sleeping until it has left.
fn spin_send(ws: &mut WebSocket<TcpStream>, message: Message) -> std::io::Result<()> {
    let mut pending = Some(message);
    loop {
        let result = match pending.take() {
            Some(m) => ws.send(m),
            None => ws.flush(),
        };
        match result {
            Ok(()) => return Ok(()),
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(tungstenite::Error::Io(e)) => return Err(e),
            Err(e) => return Err(std::io::Error::other(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_floor_is_measured_in_microseconds_round_trip() {
        let h = super::floor(600, 200, std::time::Duration::from_secs(5)).await.unwrap();
        assert_eq!(h.len(), 200);
        // A loopback round trip takes far less than a second. (Samples are
        // clamped to at least 1 µs when recorded, so no lower bound is asserted.)
        assert!(h.quantile(0.5) < 1_000_000);
    }
}
