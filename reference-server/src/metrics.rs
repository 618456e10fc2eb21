//! What an operator sees at `GET /metrics`: Prometheus counters and gauges
//! (OpenMetrics text) for connections, sessions, frames and bytes, commits
//! and conflicts, queue depths, memory, and every refusal and server-side
//! close by its reason.
//!
//! Counters on the hot paths are atomics the shell bumps as things happen;
//! everything the core already counts or holds (commits, conflicts,
//! sessions, queued mutations) is read from it when the endpoint is scraped,
//! so the core stays free of metrics and its state stays what the models
//! check.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::core::{Load, Stats};

/// A label set of one `reason`.
type Reason = [(&'static str, String); 1];

/// The server's metrics and the registry that names them.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    /// One scrape at a time, so two cannot both catch a counter up.
    scrape: std::sync::Mutex<()>,
    /// TCP connections admitted.
    pub(crate) connections_accepted: Counter,
    /// TCP connections turned away, by the limit they met.
    pub(crate) connections_refused: Family<Reason, Counter>,
    /// Sync sockets opened.
    pub(crate) sessions_opened: Counter,
    /// Sync sockets the server closed, by the reason its close frame gave.
    pub(crate) sessions_closed: Family<Reason, Counter>,
    /// Text frames read from sync sockets, and their bytes.
    pub(crate) frames_received: Counter,
    pub(crate) bytes_received: Counter,
    /// Frames written to sync sockets, and their bytes.
    pub(crate) frames_sent: Counter,
    pub(crate) bytes_sent: Counter,
    /// HTTP function calls answered.
    pub(crate) http_calls: Counter,
    // Read from the core and the shell at each scrape.
    commits: Counter,
    conflicts: Counter,
    fallbacks: Counter,
    replays: Counter,
    trimmed: Counter,
    connections_open: Gauge,
    sessions_open: Gauge,
    queries: Gauge,
    mutations_queued: Gauge,
    executions_in_flight: Gauge,
    unsent_frames: Gauge,
    idempotency_records: Gauge,
    documents: Gauge,
    resident_memory: Gauge,
}

impl Metrics {
    /// Every metric at zero, registered under `syncspec_`.
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::with_prefix("syncspec");
        let mut counter = |name: &str, help: &str| {
            let c = Counter::default();
            registry.register(name, help, c.clone());
            c
        };
        let connections_accepted = counter("connections_accepted", "TCP connections admitted");
        let sessions_opened = counter("sessions_opened", "Sync sockets opened");
        let frames_received = counter("frames_received", "Text frames read from sync sockets");
        let bytes_received = counter("received_bytes", "Bytes of text frames read from sync sockets");
        let frames_sent = counter("frames_sent", "Frames written to sync sockets");
        let bytes_sent = counter("sent_bytes", "Bytes of frames written to sync sockets");
        let http_calls = counter("http_calls", "HTTP function calls answered");
        let commits = counter("commits", "Commits (mutations, scheduled functions, sweeps, trims)");
        let conflicts = counter("conflicts", "Executions whose read set conflicted at commit (OCC)");
        let fallbacks = counter("occ_fallbacks", "Mutations that ran out of OCC retries and ran at the head");
        let replays = counter("replays", "Mutations answered from an idempotency record");
        let trimmed = counter("messages_trimmed", "Messages deleted past --retain-messages");
        let mut gauge = |name: &str, help: &str| {
            let g = Gauge::default();
            registry.register(name, help, g.clone());
            g
        };
        let connections_open = gauge("connections_open", "TCP connections open (HTTP and WebSocket)");
        let sessions_open = gauge("sessions_open", "Sync sessions open");
        let queries = gauge("queries", "Queries in the sessions' query sets");
        let mutations_queued = gauge("mutations_queued", "Socket mutations waiting for their turn");
        let executions_in_flight = gauge("executions_in_flight", "Mutation executions dispatched and not committed");
        let unsent_frames = gauge("unsent_frames", "Frames queued for sockets and not yet written");
        let idempotency_records = gauge("idempotency_records", "Idempotency records kept for replays");
        let documents = gauge("documents", "Documents in the store");
        let resident_memory = gauge("process_resident_memory_bytes", "Resident memory of the server process");
        let connections_refused = Family::<Reason, Counter>::default();
        registry.register(
            "connections_refused",
            "TCP connections turned away with a 503, by the limit they met",
            connections_refused.clone(),
        );
        let sessions_closed = Family::<Reason, Counter>::default();
        registry.register(
            "sessions_closed",
            "Sync sockets the server closed, by the reason in its close frame",
            sessions_closed.clone(),
        );
        Metrics {
            registry,
            scrape: std::sync::Mutex::new(()),
            connections_accepted,
            connections_refused,
            sessions_opened,
            sessions_closed,
            frames_received,
            bytes_received,
            frames_sent,
            bytes_sent,
            http_calls,
            commits,
            conflicts,
            fallbacks,
            replays,
            trimmed,
            connections_open,
            sessions_open,
            queries,
            mutations_queued,
            executions_in_flight,
            unsent_frames,
            idempotency_records,
            documents,
            resident_memory,
        }
    }

    /// Counts one refusal or server-side close under `reason`.
    pub(crate) fn count(family: &Family<Reason, Counter>, reason: &str) {
        family.get_or_create(&[("reason", reason.to_owned())]).inc();
    }

    /// The text a scrape gets, with what the core and shell hold right now.
    pub(crate) fn render(&self, stats: Stats, load: Load, connections_open: usize, unsent_frames: usize) -> String {
        let _one_at_a_time = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        catch_up(&self.commits, stats.commits);
        catch_up(&self.conflicts, stats.conflicts);
        catch_up(&self.fallbacks, stats.fallbacks);
        catch_up(&self.replays, stats.replays);
        catch_up(&self.trimmed, stats.trimmed);
        let set = |g: &Gauge, n: usize| g.set(i64::try_from(n).unwrap_or(i64::MAX));
        set(&self.connections_open, connections_open);
        set(&self.sessions_open, load.sessions);
        set(&self.queries, load.queries);
        set(&self.mutations_queued, load.queued_mutations);
        set(&self.executions_in_flight, load.in_flight);
        set(&self.unsent_frames, unsent_frames);
        set(&self.idempotency_records, load.idempotency_records);
        set(&self.documents, load.documents);
        if let Some(bytes) = resident_bytes() {
            set(&self.resident_memory, bytes);
        }
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

/// Moves a counter up to `total`, a count kept elsewhere that only grows.
fn catch_up(counter: &Counter, total: u64) {
    let now = counter.get();
    if total > now {
        counter.inc_by(total - now);
    }
}

/// The process's resident set, from `/proc/self/status` (Linux); `None` elsewhere.
fn resident_bytes() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scrape_shows_the_shells_counts_and_what_the_core_holds() {
        let metrics = Metrics::new();
        metrics.connections_accepted.inc();
        Metrics::count(&metrics.connections_refused, "max_connections");
        Metrics::count(&metrics.sessions_closed, "TooManyUnsentMessages");
        Metrics::count(&metrics.sessions_closed, "TooManyUnsentMessages");
        let stats = Stats { commits: 7, conflicts: 2, ..Stats::default() };
        let load = Load { sessions: 3, queued_mutations: 5, ..Load::default() };
        let text = metrics.render(stats, load, 4, 11);
        for line in [
            "syncspec_connections_accepted_total 1",
            "syncspec_connections_refused_total{reason=\"max_connections\"} 1",
            "syncspec_sessions_closed_total{reason=\"TooManyUnsentMessages\"} 2",
            "syncspec_commits_total 7",
            "syncspec_conflicts_total 2",
            "syncspec_sessions_open 3",
            "syncspec_mutations_queued 5",
            "syncspec_connections_open 4",
            "syncspec_unsent_frames 11",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "OpenMetrics text ends with # EOF");
        // A later scrape counts on from the core's totals, never back.
        let text = metrics.render(Stats { commits: 9, ..stats }, load, 4, 0);
        assert!(text.lines().any(|l| l == "syncspec_commits_total 9"), "{text}");
    }
}
