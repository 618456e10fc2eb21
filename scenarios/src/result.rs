//! `load.json`: what one load run (or sweep) measured.

use std::collections::BTreeMap;

use crate::metrics::Summary;

/// Process memory over the run.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Memory {
    /// Resident set before any user joined.
    pub rss_before_bytes: u64,
    /// The highest resident set seen (sampled once a second).
    pub rss_peak_bytes: u64,
    /// `(peak - before) / users`: what one simulated client costs this process
    /// (with the embedded server, its share of the server too).
    pub per_client_bytes: u64,
}

/// The figures of one kind of client.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct KindResult {
    /// Clients of this kind.
    pub users: usize,
    /// Their rooms.
    pub rooms: usize,
    /// Writer's send instant to another client seeing it.
    pub sync_latency_us: Summary,
    /// Writer's send instant to its `MutationResponse`.
    pub mutation_latency_us: Summary,
    /// Writer's send instant to a transition covering the commit.
    pub visible_latency_us: Summary,
    /// Writes sent.
    pub updates_sent: u64,
    /// Writes accepted.
    pub updates_accepted: u64,
    /// Changes readers saw.
    pub updates_received: u64,
    /// Changes readers were owed (kinds where every update counts).
    pub updates_expected: Option<u64>,
    /// Owed and not seen.
    pub updates_missing: Option<u64>,
    /// Latest-wins kinds: (reader, writer) pairs not ending on the writer's latest write.
    pub stale_views: Option<u64>,
    /// Writes attempted per client per second while every client was in.
    pub attempted_per_user_s: f64,
    /// Writes accepted per client per second while every client was in.
    pub accepted_per_user_s: f64,
    /// Writes refused with `RateLimited`.
    pub rate_limited: u64,
    /// Rows readers saw disappear (presence leaves and time-outs).
    pub departures_seen: u64,
    /// Everything else that went wrong.
    pub errors: u64,
}

/// One step of a rate sweep.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Step {
    /// Cursor moves per client per second offered.
    pub rate_hz: f64,
    /// Clients.
    pub users: usize,
    /// Moves attempted per client per second.
    pub attempted_per_user_s: f64,
    /// Moves accepted per client per second.
    pub accepted_per_user_s: f64,
    /// Moves refused with `RateLimited`.
    pub rate_limited: u64,
    /// Sync latency.
    pub sync_latency_us: Summary,
    /// Mutation round trip.
    pub mutation_latency_us: Summary,
    /// Sync latency over the echo floor's, at the median.
    pub sync_over_echo_p50: Option<f64>,
    /// Errors.
    pub errors: u64,
}

impl Step {
    /// The step's row, from its run's result.
    pub fn of(r: &LoadResult) -> Step {
        let (attempted, accepted) = r.kinds.values().fold((0.0, 0.0), |(a, b), k| {
            (a + k.attempted_per_user_s * k.users as f64, b + k.accepted_per_user_s * k.users as f64)
        });
        let users = r.users.max(1) as f64;
        Step {
            rate_hz: r.rate_hz,
            users: r.users,
            attempted_per_user_s: (attempted / users * 100.0).round() / 100.0,
            accepted_per_user_s: (accepted / users * 100.0).round() / 100.0,
            rate_limited: r.rate_limited,
            sync_latency_us: r.sync_latency_us,
            mutation_latency_us: r.mutation_latency_us,
            sync_over_echo_p50: r.sync_over_echo_p50,
            errors: r.errors,
        }
    }
}

/// Everything a load run measured; written as `load.json`.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct LoadResult {
    /// `chat`, `presence`, `cursors`, `stream` or `mix`.
    pub scenario: String,
    /// The backend.
    pub target: String,
    /// Clients this process ran (its shard's).
    pub users: usize,
    /// `--users`: clients over every shard.
    pub users_total: usize,
    /// Clients that joined (connected and got their first answer).
    pub users_ready: usize,
    /// `I/N`.
    pub shard: String,
    /// Cursor moves per client per second.
    pub rate_hz: f64,
    /// `open`, or `closed` for the negative control.
    pub schedule: String,
    /// How long writers wrote once every client was in (measured; normally `--run-time`).
    pub run_time_s: f64,
    /// The whole run, ramp and drain included.
    pub wall_time_s: f64,
    /// Seconds until every client was in (samples before are in the logs, not the totals).
    pub ramp_s: Option<f64>,
    /// Writer's send instant to another client seeing it, every kind.
    pub sync_latency_us: Summary,
    /// Writer's send instant to its `MutationResponse`.
    pub mutation_latency_us: Summary,
    /// Writer's send instant to a transition covering the commit.
    pub visible_latency_us: Summary,
    /// Writer's send instant to the write leaving for the socket: the load
    /// generator's own lateness, part of every latency above.
    pub send_lag_us: Summary,
    /// The raw floor: loopback WebSocket echo round trips, same run.
    pub echo_rtt_us: Summary,
    /// The echo frame's size (a typical push of the scenario).
    pub echo_frame_bytes: usize,
    /// Sync latency over the echo floor, at the median.
    pub sync_over_echo_p50: Option<f64>,
    /// ... and at the 95th percentile.
    pub sync_over_echo_p95: Option<f64>,
    /// Writes sent.
    pub updates_sent: u64,
    /// Writes accepted.
    pub updates_accepted: u64,
    /// Changes readers saw.
    pub updates_received: u64,
    /// Changes readers were owed (kinds where every update counts).
    pub updates_expected: u64,
    /// Owed and not seen.
    pub updates_missing: u64,
    /// Latest-wins kinds: (reader, writer) pairs not ending on the latest write.
    pub stale_views: u64,
    /// Writes refused with `RateLimited`.
    pub rate_limited: u64,
    /// Everything else that went wrong.
    pub errors: u64,
    /// The first few error messages.
    pub error_samples: Vec<String>,
    /// goose `--threshold` rules that failed.
    pub failed_thresholds: Vec<String>,
    /// Process memory.
    pub memory: Memory,
    /// Per kind of client.
    pub kinds: BTreeMap<String, KindResult>,
    /// Files written beside `load.json`.
    pub files: Vec<String>,
    /// A sweep's steps, one per rate (the figures above are then the last step's).
    pub steps: Vec<Step>,
}

impl LoadResult {
    /// Writes the result as pretty JSON.
    pub fn write(&self, path: &std::path::Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, text + "\n")
    }
}
