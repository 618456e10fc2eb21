//! A load run's results: one figures type shared by the whole run, each kind
//! of client and each sweep step; the HdrHistograms behind every latency
//! (steady totals per kind and metric, and every second of the run); and the
//! echo floor measured in the same run.
//!
//! **Every latency figure of a load run is derived from a histogram the
//! result carries**, in one place ([`LoadResult::finish`]), when the run ends,
//! when shards merge and whenever a report is read, so a result read back
//! from disk or merged gives the figures of the samples, whatever its summary
//! fields say. A sweep step keeps only its summaries.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::hist::{Hist, Summary};

/// What a latency sample measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// From a writer's intended send instant until another client's
    /// subscription shows the change.
    Sync,
    /// From the intended send instant until the writer's `MutationResponse`.
    Mutation,
    /// From the intended send instant until a transition covering the
    /// mutation's commit reached the writer (the official clients resolve then).
    Visible,
    /// From the intended send instant until the write left for the socket:
    /// the load generator's own lateness, part of the three above.
    SendLag,
    /// From a page load's intended instant (the `ModifyQuerySet` adding an
    /// older page of `messages:page`) until the page's first result.
    Page,
    /// From an action's intended send instant until its `ActionResponse`.
    Action,
}

impl Metric {
    /// Every metric, in report order.
    pub const ALL: [Metric; 6] =
        [Metric::Sync, Metric::Mutation, Metric::Visible, Metric::SendLag, Metric::Page, Metric::Action];

    /// The name in files, request names and gate expressions.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Sync => "sync",
            Metric::Mutation => "mutation",
            Metric::Visible => "visible",
            Metric::SendLag => "send_lag",
            Metric::Page => "page",
            Metric::Action => "action",
        }
    }

    /// The position in [`Metric::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The metric with this name.
    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// The figures of a whole run, of one kind of client, or of a sweep step.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Clients.
    pub users: usize,
    /// Writer's intended send instant to another client seeing it.
    pub sync_latency_us: Summary,
    /// Writer's intended send instant to its `MutationResponse`.
    pub mutation_latency_us: Summary,
    /// Writer's intended send instant to a transition covering the commit.
    pub visible_latency_us: Summary,
    /// Writer's intended send instant to the write leaving for the socket.
    pub send_lag_us: Summary,
    /// A page load's intended instant to the page's first result (`history`).
    #[serde(default)]
    pub page_latency_us: Summary,
    /// An action's intended send instant to its `ActionResponse` (`reply`).
    #[serde(default)]
    pub action_latency_us: Summary,
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
    /// Latest-wins kinds: (reader, writer) pairs not ending on the writer's latest write.
    pub stale_views: u64,
    /// Writes refused with `RateLimited`.
    pub rate_limited: u64,
    /// Rows readers saw disappear (presence leaves and time-outs).
    pub departures_seen: u64,
    /// Everything else that went wrong.
    pub errors: u64,
    /// Writes sent while every client was in.
    pub steady_sent: u64,
    /// Writes accepted while every client was in.
    pub steady_accepted: u64,
    /// Clients times seconds while every client was in.
    pub steady_user_seconds: f64,
    /// Writes attempted per client per second while every client was in.
    pub attempted_per_user_s: f64,
    /// Writes accepted per client per second while every client was in.
    pub accepted_per_user_s: f64,
}

impl Figures {
    /// Adds another's counters (not its summaries, which come from histograms).
    pub(crate) fn add_counts(&mut self, other: &Figures) {
        self.users += other.users;
        self.updates_sent += other.updates_sent;
        self.updates_accepted += other.updates_accepted;
        self.updates_received += other.updates_received;
        self.updates_expected += other.updates_expected;
        self.updates_missing += other.updates_missing;
        self.stale_views += other.stale_views;
        self.rate_limited += other.rate_limited;
        self.departures_seen += other.departures_seen;
        self.errors += other.errors;
        self.steady_sent += other.steady_sent;
        self.steady_accepted += other.steady_accepted;
        self.steady_user_seconds += other.steady_user_seconds;
    }

    /// Sets the summaries from per-metric histograms and the per-user rates from the steady counts.
    fn derive(&mut self, metrics: &BTreeMap<Metric, Hist>) {
        let of = |m: Metric| metrics.get(&m).map(Summary::of).unwrap_or_default();
        self.sync_latency_us = of(Metric::Sync);
        self.mutation_latency_us = of(Metric::Mutation);
        self.visible_latency_us = of(Metric::Visible);
        self.send_lag_us = of(Metric::SendLag);
        self.page_latency_us = of(Metric::Page);
        self.action_latency_us = of(Metric::Action);
        let per =
            |n: u64| if self.steady_user_seconds > 0.0 { round2(n as f64 / self.steady_user_seconds) } else { 0.0 };
        self.attempted_per_user_s = per(self.steady_sent);
        self.accepted_per_user_s = per(self.steady_accepted);
    }

    /// The summary of a metric.
    pub fn latency(&self, metric: Metric) -> &Summary {
        match metric {
            Metric::Sync => &self.sync_latency_us,
            Metric::Mutation => &self.mutation_latency_us,
            Metric::Visible => &self.visible_latency_us,
            Metric::SendLag => &self.send_lag_us,
            Metric::Page => &self.page_latency_us,
            Metric::Action => &self.action_latency_us,
        }
    }
}

/// The figures of one kind of client.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KindResult {
    /// Rooms (or channels) of this kind.
    pub rooms: usize,
    /// Its figures.
    #[serde(flatten)]
    pub figures: Figures,
}

/// Process memory over a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    /// Resident set before any user joined.
    pub rss_before_bytes: u64,
    /// The highest resident set seen (sampled once a second); a merged
    /// result adds the shards' processes.
    pub rss_peak_bytes: u64,
    /// `(peak - before) / users`: what one simulated client costs (with the
    /// embedded server, its share of the server too).
    pub per_client_bytes: u64,
}

/// The raw floor: a plain WebSocket echo on loopback, same run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Echo {
    /// The frame's size (a typical push of the scenario).
    pub frame_bytes: usize,
    /// Round trips.
    pub rtt_us: Summary,
}

/// One second of one kind and metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Second {
    /// Seconds since the run started.
    pub start_s: u64,
    /// The kind of client.
    pub kind: String,
    /// What was measured.
    pub metric: Metric,
    /// The samples.
    pub histogram: Hist,
}

/// The histograms behind a result's latencies.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Histograms {
    /// Steady totals (every client in) per kind, then per metric.
    pub totals: BTreeMap<String, BTreeMap<Metric, Hist>>,
    /// Every second of the whole run, ramp and drain included.
    pub seconds: Vec<Second>,
    /// The echo floor's round trips.
    pub echo: Hist,
}

impl Histograms {
    /// A metric's steady total over every kind.
    pub fn total(&self, metric: Metric) -> Hist {
        let mut h = Hist::new();
        for per_metric in self.totals.values() {
            if let Some(k) = per_metric.get(&metric) {
                h.add(k);
            }
        }
        h
    }

    /// A metric over every kind, second by second (`(start_s, histogram)`, in order).
    pub fn per_second(&self, metric: Metric) -> Vec<(u64, Hist)> {
        let mut by_second: BTreeMap<u64, Hist> = BTreeMap::new();
        for s in self.seconds.iter().filter(|s| s.metric == metric) {
            by_second.entry(s.start_s).or_default().add(&s.histogram);
        }
        by_second.into_iter().collect()
    }
}

/// Which shards of a run a result holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shards {
    /// The shard numbers held, 1-based, ascending.
    pub held: Vec<u32>,
    /// How many shards the run had.
    pub of: u32,
}

impl Shards {
    /// The one shard `index` of `of`.
    pub fn one(index: u32, of: u32) -> Shards {
        Shards { held: vec![index], of }
    }

    /// Whether every shard is here.
    pub fn complete(&self) -> bool {
        self.held.len() == self.of as usize
    }
}

impl std::fmt::Display for Shards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.held.as_slice() {
            [one] => write!(f, "{one}/{}", self.of),
            held if self.complete() => write!(f, "all {} shards", held.len()),
            held => {
                let list: Vec<String> = held.iter().map(u32::to_string).collect();
                write!(f, "{} of {}", list.join(","), self.of)
            }
        }
    }
}

/// Everything a load run measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadResult {
    /// `chat`, `presence`, `cursors`, `stream`, `history`, `reply` or `mix`.
    pub scenario: String,
    /// The backend.
    pub target: String,
    /// `--users`: clients over every shard.
    pub users_total: usize,
    /// Clients that joined (connected and got their first answer).
    pub users_ready: usize,
    /// Which shards this result holds.
    pub shards: Shards,
    /// Cursor moves per client per second.
    pub rate_hz: f64,
    /// `open`, or `closed` for the measuring's negative control.
    pub schedule: String,
    /// The run's wall-clock start, milliseconds since the Unix epoch (aligns shards' seconds).
    pub started_unix_ms: u64,
    /// How long writers wrote once every client was in (normally `--run-time`).
    pub run_time_s: f64,
    /// The whole run, ramp and drain included.
    pub wall_time_s: f64,
    /// Seconds until every client was in (samples before are in `seconds`, not the totals).
    pub ramp_s: Option<f64>,
    /// Every kind together.
    #[serde(flatten)]
    pub figures: Figures,
    /// The echo floor.
    pub echo: Echo,
    /// Sync latency over the echo floor, at the median.
    pub sync_over_echo_p50: Option<f64>,
    /// ... and at the 95th percentile.
    pub sync_over_echo_p95: Option<f64>,
    /// The first few error messages.
    pub error_samples: Vec<String>,
    /// goose `--threshold` rules that failed.
    pub failed_thresholds: Vec<String>,
    /// Process memory.
    pub memory: Memory,
    /// Per kind of client.
    pub kinds: BTreeMap<String, KindResult>,
    /// Files written beside the report (interval logs).
    pub files: Vec<String>,
    /// The samples behind every latency above.
    pub histograms: Histograms,
}

impl LoadResult {
    /// Derives every summary, total and ratio from the histograms and the
    /// per-kind counters: the one place a result's figures are computed.
    pub fn finish(&mut self) {
        let mut total = Figures::default();
        for (name, kind) in &mut self.kinds {
            let empty = BTreeMap::new();
            kind.figures.derive(self.histograms.totals.get(name).unwrap_or(&empty));
            total.add_counts(&kind.figures);
        }
        let merged: BTreeMap<Metric, Hist> = Metric::ALL.iter().map(|m| (*m, self.histograms.total(*m))).collect();
        total.derive(&merged);
        self.figures = total;
        self.echo.rtt_us = Summary::of(&self.histograms.echo);
        self.sync_over_echo_p50 = ratio(self.figures.sync_latency_us.p50, self.echo.rtt_us.p50);
        self.sync_over_echo_p95 = ratio(self.figures.sync_latency_us.p95, self.echo.rtt_us.p95);
        if self.figures.users > 0 {
            self.memory.per_client_bytes =
                self.memory.rss_peak_bytes.saturating_sub(self.memory.rss_before_bytes) / self.figures.users as u64;
        }
    }
}

/// A cursor rate sweep: one short run per offered rate.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sweep {
    /// Clients per step.
    pub users: usize,
    /// Each step's steady run time, seconds.
    pub step_run_time_s: f64,
    /// The limit the catalogue promises, accepted writes per client per second.
    pub limit_per_user_s: f64,
    /// One per offered rate, in the order run.
    pub steps: Vec<Step>,
}

/// One step of a rate sweep.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Cursor moves per client per second offered.
    pub rate_hz: f64,
    /// The step's figures.
    #[serde(flatten)]
    pub figures: Figures,
    /// The step's echo floor.
    pub echo: Echo,
    /// Sync latency over the echo floor, at the median.
    pub sync_over_echo_p50: Option<f64>,
}

impl Step {
    /// The step's row, from its run's result.
    pub fn of(r: &LoadResult) -> Step {
        Step {
            rate_hz: r.rate_hz,
            figures: r.figures.clone(),
            echo: r.echo.clone(),
            sync_over_echo_p50: r.sync_over_echo_p50,
        }
    }
}

impl Sweep {
    /// The most a backend keeping its promise can accept per client per
    /// second over one step: the limit, plus one second's worth spent at
    /// once. "At most `limit` in any one second" allows `limit × (T + 1)`
    /// over `T` seconds, so short steps show the burst (24 a second over 5 s).
    /// `None` for steps of no length, where no rate can be judged.
    pub fn allowed_per_user_s(&self) -> Option<f64> {
        (self.step_run_time_s > 0.0)
            .then(|| self.limit_per_user_s * (self.step_run_time_s + 1.0) / self.step_run_time_s)
    }

    /// The highest rate accepted per client per second at any step.
    pub fn highest_accepted(&self) -> Option<f64> {
        self.steps.iter().map(|s| s.figures.accepted_per_user_s).reduce(f64::max)
    }
}

/// `a / b` to two places, when both are measured.
pub(crate) fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0 && a > 0).then(|| round2(a as f64 / b as f64))
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
