//! Who may open a connection, and how long a new one may take to say what
//! it wants: bounds on open connections, in total and per IP address, so one
//! client cannot take every file descriptor, and a rate-limited log line for
//! what was refused, so a flood cannot flood the log either.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a server lets clients hold open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Open TCP connections in total (HTTP and WebSocket alike).
    pub max_connections: usize,
    /// Open TCP connections from one IP address.
    pub max_connections_per_address: usize,
    /// How long a new connection may take to send a request's headers (for
    /// a socket, its upgrade request) before it is closed.
    pub handshake_timeout: Duration,
    /// Frames a socket may have waiting to be written; past it the session
    /// is closed (1013, `TooManyUnsentMessages`): a client that does not
    /// read cannot make the server hold its output without bound.
    pub max_unsent_frames: usize,
    /// How long one write to a socket may take; a client that lets its
    /// receive window stay full for longer is dropped.
    pub write_timeout: Duration,
    /// The largest WebSocket message (and HTTP body) read; a larger one
    /// closes the socket with 1009 (a body gets 413) before it is parsed.
    pub max_frame_bytes: usize,
    /// Messages over `connection::LARGE_FRAME_BYTES` decoded at once across
    /// the server; the rest wait on their own sockets.
    pub max_large_parses: usize,
}

impl Default for Limits {
    /// 16,384 connections, 8,192 from one address (a load run on loopback
    /// comes from one), 10 s for the headers, 10,000 unsent frames (a
    /// mutation response is about 150 bytes; transitions wait for the one
    /// before to be written, so few are ever queued), 30 s for a write,
    /// messages of 24 MiB (16 MiB of arguments and the envelope) and two
    /// large ones decoded at once.
    /// A process under the usual limit of 20,000 open files keeps room for
    /// its own.
    fn default() -> Limits {
        Limits {
            max_connections: 16_384,
            max_connections_per_address: 8_192,
            handshake_timeout: Duration::from_secs(10),
            max_unsent_frames: 10_000,
            write_timeout: Duration::from_secs(30),
            max_frame_bytes: crate::server::MAX_FRAME_BYTES,
            max_large_parses: 2,
        }
    }
}

/// Why a connection was turned away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The server holds its most connections.
    Total(usize),
    /// The client's address holds its most connections.
    Address(usize),
}

impl Refusal {
    /// The limit met, as the `serve` option names it (a metrics label).
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Total(_) => "max_connections",
            Refusal::Address(_) => "max_connections_per_address",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Total(n) => write!(f, "the server holds its limit of {n} open connections"),
            Refusal::Address(n) => write!(f, "this address holds its limit of {n} open connections"),
        }
    }
}

/// The open connections, counted in total and by address.
#[derive(Debug)]
pub struct Admission {
    limits: Limits,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

impl Admission {
    /// No connections open yet.
    pub fn new(limits: Limits) -> Arc<Admission> {
        Arc::new(Admission { limits, open: Mutex::new(Open::default()) })
    }

    /// A slot for one more connection from `address`, held until dropped,
    /// or why there is none.
    pub fn admit(self: &Arc<Self>, address: IpAddr) -> Result<Slot, Refusal> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.total >= self.limits.max_connections {
            return Err(Refusal::Total(self.limits.max_connections));
        }
        let mine = open.by_address.entry(address).or_default();
        if *mine >= self.limits.max_connections_per_address {
            return Err(Refusal::Address(self.limits.max_connections_per_address));
        }
        *mine += 1;
        open.total += 1;
        Ok(Slot { admission: self.clone(), address })
    }

    /// Open connections in total.
    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).total
    }
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Slot {
    admission: Arc<Admission>,
    address: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.admission.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                open.by_address.remove(&self.address);
            }
        }
    }
}

/// Lets one log line through a second, counting the ones held back.
#[derive(Debug)]
pub struct LogGate {
    last: Mutex<Option<Instant>>,
    held: AtomicU64,
}

impl LogGate {
    /// A gate that lets the first line through.
    pub const fn new() -> LogGate {
        LogGate { last: Mutex::new(None), held: AtomicU64::new(0) }
    }

    /// Whether this line may be logged; if so, how many were held back
    /// since the last one that was.
    pub fn pass(&self) -> Option<u64> {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|at| now.duration_since(at) < Duration::from_secs(1)) {
            self.held.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *last = Some(now);
        Some(self.held.swap(0, Ordering::Relaxed))
    }
}

impl Default for LogGate {
    fn default() -> LogGate {
        LogGate::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per_address: usize) -> Limits {
        Limits { max_connections: total, max_connections_per_address: per_address, ..Limits::default() }
    }

    #[test]
    fn each_address_and_the_total_are_bounded_and_a_dropped_slot_frees_its_place() {
        let (a, b, c): (IpAddr, IpAddr, IpAddr) =
            ("127.0.0.1".parse().unwrap(), "::1".parse().unwrap(), "10.0.0.1".parse().unwrap());
        let admission = Admission::new(limits(5, 2));
        let a1 = admission.admit(a).expect("first from a");
        let _a2 = admission.admit(a).expect("second from a");
        assert_eq!(admission.admit(a).unwrap_err(), Refusal::Address(2));
        let _b1 = admission.admit(b).expect("b has its own share");
        let _b2 = admission.admit(b).expect("b has its own share");
        let _c1 = admission.admit(c).expect("fifth in total");
        assert_eq!(admission.admit(c).unwrap_err(), Refusal::Total(5));
        drop(a1);
        assert_eq!(admission.open(), 4);
        let _a3 = admission.admit(a).expect("a's freed place");
        assert_eq!(admission.admit(c).unwrap_err(), Refusal::Total(5));
    }

    #[test]
    fn the_log_gate_lets_one_line_a_second_through_and_counts_the_rest() {
        let gate = LogGate::new();
        assert_eq!(gate.pass(), Some(0));
        assert_eq!(gate.pass(), None);
        assert_eq!(gate.pass(), None);
        *gate.last.lock().unwrap() = Some(Instant::now() - Duration::from_secs(2));
        assert_eq!(gate.pass(), Some(2));
    }
}
