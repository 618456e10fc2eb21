//! A fault-injecting TCP proxy on loopback, for the suite's fault cases.
//!
//! It forwards bytes between each accepted client connection and a new
//! connection to the upstream backend, without parsing WebSocket frames,
//! and on command drops every connection, stalls one direction, delays it,
//! or forwards exactly N more bytes and then cuts the connection (a frame
//! cut in half). A stalled direction stops reading from its source, so TCP
//! backpressure applies and nothing is buffered without bound. Every task
//! ends when the `Proxy` is dropped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};

/// One direction of a proxied connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the client to the backend.
    ClientToServer,
    /// From the backend to the client.
    ServerToClient,
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
#[error("could not start the proxy: {0}")]
pub struct ProxyError(#[from] std::io::Error);

/// Counts since the proxy started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Connections accepted.
    pub connections: u64,
    /// Bytes forwarded to the backend.
    pub to_server: u64,
    /// Bytes forwarded to clients.
    pub to_client: u64,
}

/// The settings of one direction, shared by every connection.
#[derive(Debug, Default)]
struct Lane {
    /// Whether forwarding is held.
    stalled: AtomicBool,
    /// Delay before each forwarded chunk, in microseconds.
    delay_us: AtomicU64,
    /// Bytes still to forward before cutting; `usize::MAX` means no cut.
    cut_after: AtomicUsize,
    /// Bytes forwarded.
    bytes: AtomicU64,
}

#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    to_server: Lane,
    to_client: Lane,
    /// Wakes stalled forwarders when a stall is lifted.
    unstalled: Notify,
    refuse: AtomicBool,
    connections: AtomicU64,
    /// Bumped by `drop_all`; connection tasks end when it changes.
    generation: watch::Sender<u64>,
    /// How many connections are open now.
    open: AtomicUsize,
}

impl Shared {
    fn lane(&self, direction: Direction) -> &Lane {
        match direction {
            Direction::ClientToServer => &self.to_server,
            Direction::ServerToClient => &self.to_client,
        }
    }
}

/// A running proxy; dropping it stops every task.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
    /// Ended when the proxy is dropped, which ends every connection task.
    _alive: watch::Sender<()>,
    connections: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        for task in self.connections.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
            task.abort();
        }
    }
}

impl Proxy {
    /// Listens on 127.0.0.1 at a free port and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Result<Proxy, ProxyError> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let no_cut = |lane: Lane| {
            lane.cut_after.store(usize::MAX, Ordering::SeqCst);
            lane
        };
        let shared = Arc::new(Shared {
            upstream,
            to_server: no_cut(Lane::default()),
            to_client: no_cut(Lane::default()),
            unstalled: Notify::new(),
            refuse: AtomicBool::new(false),
            connections: AtomicU64::new(0),
            generation: watch::channel(0).0,
            open: AtomicUsize::new(0),
        });
        let connections: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let accept = {
            let (shared, connections) = (shared.clone(), connections.clone());
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    if shared.refuse.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    shared.connections.fetch_add(1, Ordering::SeqCst);
                    let task = tokio::spawn(serve(client, shared.clone()));
                    let mut tasks = connections.lock().unwrap_or_else(|p| p.into_inner());
                    tasks.retain(|t| !t.is_finished());
                    tasks.push(task);
                }
            })
        };
        Ok(Proxy { addr, shared, accept, _alive: watch::channel(()).0, connections })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every proxied connection at once, both sides; returns how many.
    pub fn drop_all(&self) -> usize {
        let open = self.shared.open.load(Ordering::SeqCst);
        self.shared.generation.send_modify(|g| *g += 1);
        open
    }

    /// Holds (or releases) everything flowing one way; nothing is lost.
    pub fn stall(&self, direction: Direction, on: bool) {
        self.shared.lane(direction).stalled.store(on, Ordering::SeqCst);
        if !on {
            self.shared.unstalled.notify_waiters();
        }
    }

    /// Delays every chunk forwarded one way.
    pub fn set_delay(&self, direction: Direction, delay: Duration) {
        self.shared.lane(direction).delay_us.store(delay.as_micros() as u64, Ordering::SeqCst);
    }

    /// Forwards exactly `bytes` more bytes one way, then cuts that connection.
    pub fn cut_after(&self, direction: Direction, bytes: usize) {
        self.shared.lane(direction).cut_after.store(bytes, Ordering::SeqCst);
    }

    /// Refuses (closes at once) new connections, or accepts them again.
    pub fn refuse(&self, on: bool) {
        self.shared.refuse.store(on, Ordering::SeqCst);
    }

    /// Counts so far.
    pub fn stats(&self) -> ProxyStats {
        ProxyStats {
            connections: self.shared.connections.load(Ordering::SeqCst),
            to_server: self.shared.to_server.bytes.load(Ordering::SeqCst),
            to_client: self.shared.to_client.bytes.load(Ordering::SeqCst),
        }
    }
}

/// Forwards one connection until either side ends, a cut, or `drop_all`.
async fn serve(client: TcpStream, shared: Arc<Shared>) {
    let Ok(server) = TcpStream::connect(shared.upstream).await else { return };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    shared.open.fetch_add(1, Ordering::SeqCst);
    let mut generation = shared.generation.subscribe();
    let born = *generation.borrow_and_update();
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::select! {
        _ = pump(client_read, server_write, &shared, Direction::ClientToServer, born) => {}
        _ = pump(server_read, client_write, &shared, Direction::ServerToClient, born) => {}
        _ = generation.changed() => {}
    }
    shared.open.fetch_sub(1, Ordering::SeqCst);
}

async fn wait_while_stalled(lane: &Lane, shared: &Shared) {
    while lane.stalled.load(Ordering::SeqCst) {
        let woken = shared.unstalled.notified();
        if !lane.stalled.load(Ordering::SeqCst) {
            break;
        }
        let _ = tokio::time::timeout(Duration::from_millis(50), woken).await;
    }
}

/// Chunks read but not yet forwarded, at most; reading pauses beyond it.
const IN_FLIGHT: usize = 64;

/// Copies one direction, honouring stalls, delays and cuts. A delay holds
/// each chunk for that long after it was read, without holding the chunks
/// behind it any longer (a link with latency, not one with less bandwidth).
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, shared: &Shared, direction: Direction, born: u64) {
    let lane = shared.lane(direction);
    let mut buf = vec![0u8; 16 * 1024];
    let mut queue: std::collections::VecDeque<(tokio::time::Instant, Vec<u8>)> = std::collections::VecDeque::new();
    loop {
        // While stalled, read nothing: the sender's TCP window fills up.
        wait_while_stalled(lane, shared).await;
        let due = queue.front().map(|(due, _)| *due);
        tokio::select! {
            read = from.read(&mut buf), if queue.len() < IN_FLIGHT => {
                let n = match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let delay = Duration::from_micros(lane.delay_us.load(Ordering::SeqCst));
                queue.push_back((tokio::time::Instant::now() + delay, buf[..n].to_vec()));
            }
            _ = tokio::time::sleep_until(due.unwrap_or_else(tokio::time::Instant::now)), if due.is_some() => {
                // A stall set while the chunk was held holds it too.
                wait_while_stalled(lane, shared).await;
                let Some((_, chunk)) = queue.pop_front() else { continue };
                // A connection dropped while its chunk was held forwards nothing more.
                if *shared.generation.borrow() != born {
                    return;
                }
                let budget = lane.cut_after.load(Ordering::SeqCst);
                let send = chunk.len().min(budget);
                if budget != usize::MAX {
                    lane.cut_after.store(budget - send, Ordering::SeqCst);
                }
                if send > 0 {
                    if to.write_all(&chunk[..send]).await.is_err() {
                        return;
                    }
                    lane.bytes.fetch_add(send as u64, Ordering::SeqCst);
                }
                if budget != usize::MAX && budget - send == 0 {
                    // The cut: forward no more and close this connection.
                    lane.cut_after.store(usize::MAX, Ordering::SeqCst);
                    let _ = to.shutdown().await;
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    const DEADLINE: Duration = Duration::from_secs(5);

    /// An upstream that echoes every byte back.
    async fn echo() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn read_exact(s: &mut TcpStream, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        tokio::time::timeout(DEADLINE, s.read_exact(&mut buf)).await.expect("in time").expect("read");
        buf
    }

    #[tokio::test]
    async fn bytes_pass_through_both_ways() {
        let proxy = Proxy::start(echo().await).await.unwrap();
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        s.write_all(b"hello proxy").await.unwrap();
        assert_eq!(read_exact(&mut s, 11).await, b"hello proxy");
        let stats = proxy.stats();
        assert_eq!((stats.connections, stats.to_server, stats.to_client), (1, 11, 11));
    }

    #[tokio::test]
    async fn drop_all_closes_connections() {
        let proxy = Proxy::start(echo().await).await.unwrap();
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        s.write_all(b"x").await.unwrap();
        read_exact(&mut s, 1).await;
        assert_eq!(proxy.drop_all(), 1);
        let mut buf = [0u8; 1];
        let n = tokio::time::timeout(DEADLINE, s.read(&mut buf)).await.expect("in time");
        assert!(matches!(n, Ok(0) | Err(_)), "the client side should be closed, read {n:?}");
    }

    #[tokio::test]
    async fn a_stall_holds_bytes_until_released() {
        let proxy = Proxy::start(echo().await).await.unwrap();
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        s.write_all(b"a").await.unwrap();
        read_exact(&mut s, 1).await;
        proxy.stall(Direction::ServerToClient, true);
        s.write_all(b"bcd").await.unwrap();
        let mut buf = [0u8; 3];
        let early = tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await;
        assert!(early.is_err(), "nothing should arrive while stalled");
        proxy.stall(Direction::ServerToClient, false);
        assert_eq!(read_exact(&mut s, 3).await, b"bcd");
    }

    #[tokio::test]
    async fn delay_adds_at_least_the_delay() {
        let proxy = Proxy::start(echo().await).await.unwrap();
        proxy.set_delay(Direction::ClientToServer, Duration::from_millis(80));
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        let start = Instant::now();
        s.write_all(b"slow").await.unwrap();
        read_exact(&mut s, 4).await;
        assert!(start.elapsed() >= Duration::from_millis(80));
    }

    #[tokio::test]
    async fn a_delay_holds_each_chunk_without_queueing_the_next_behind_it() {
        let proxy = Proxy::start(echo().await).await.unwrap();
        proxy.set_delay(Direction::ServerToClient, Duration::from_millis(200));
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        let start = Instant::now();
        for _ in 0..5 {
            s.write_all(b"x").await.unwrap();
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        read_exact(&mut s, 5).await;
        // Five chunks held 200 ms each, one after another, would take a second.
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(200) && took < Duration::from_millis(800), "{took:?}");
    }

    #[tokio::test]
    async fn a_cut_forwards_exactly_n_bytes_then_closes() {
        let proxy = Proxy::start(echo().await).await.unwrap();
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        proxy.cut_after(Direction::ServerToClient, 5);
        s.write_all(b"0123456789").await.unwrap();
        assert_eq!(read_exact(&mut s, 5).await, b"01234");
        let mut buf = [0u8; 8];
        let n = tokio::time::timeout(DEADLINE, s.read(&mut buf)).await.expect("in time");
        assert!(matches!(n, Ok(0) | Err(_)), "expected the cut, read {n:?}");
    }

    #[tokio::test]
    async fn refusing_closes_new_connections_only() {
        let proxy = Proxy::start(echo().await).await.unwrap();
        let mut old = TcpStream::connect(proxy.addr()).await.unwrap();
        old.write_all(b"o").await.unwrap();
        read_exact(&mut old, 1).await;
        proxy.refuse(true);
        let mut new = TcpStream::connect(proxy.addr()).await.unwrap();
        let mut buf = [0u8; 1];
        let n = tokio::time::timeout(DEADLINE, new.read(&mut buf)).await.expect("in time");
        assert!(matches!(n, Ok(0) | Err(_)));
        old.write_all(b"k").await.unwrap();
        assert_eq!(read_exact(&mut old, 1).await, b"k");
    }
}
