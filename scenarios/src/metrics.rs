//! The kit's own recording: HdrHistograms in microseconds per kind and
//! metric, over the steady part of the run and per second over all of it,
//! plus the counters a load result reports.
//!
//! Every sample is also handed to goose (see `run`), but goose's histograms
//! use their own bucket scheme and cannot be merged across processes; these
//! can: they travel in `report.json` (`syncspec_reports::hist::Hist`) and as
//! the V2 interval logs written at the end.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;
use syncspec_reports::hist::Hist;
use syncspec_reports::load::Metric;

use crate::plan::Kind;

/// Microseconds on the run's one monotonic clock: writers stamp intended
/// send instants with it, readers subtract.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    epoch: Instant,
}

impl Clock {
    /// A clock whose zero is now.
    pub fn start() -> Clock {
        Clock { epoch: Instant::now() }
    }

    /// Microseconds since the epoch.
    pub fn now(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// The instant of a stamp.
    pub fn instant(&self, stamp: u64) -> Instant {
        self.epoch + Duration::from_micros(stamp)
    }
}

/// Per-kind counters.
#[derive(Debug, Default)]
pub struct Counters {
    /// Writes attempted (mutations sent).
    pub sent: AtomicU64,
    /// Writes the backend accepted.
    pub accepted: AtomicU64,
    /// Changes seen by a reader (one per reader per change).
    pub received: AtomicU64,
    /// Writes refused with `RateLimited`.
    pub rate_limited: AtomicU64,
    /// Rows readers saw disappear (presence leaves and time-outs).
    pub departures: AtomicU64,
    /// Everything else that went wrong: failed writes, lost sockets, connects that failed.
    pub errors: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// One finished second of one (kind, metric).
#[derive(Debug)]
struct Interval {
    start_s: u64,
    kind: Kind,
    histogram: Hist,
}

/// The kit's histograms and counters for one run (or one sweep step).
#[derive(Debug)]
pub struct Recorder {
    clock: Clock,
    /// Samples whose intended instant is before this are left out of the
    /// steady totals (they were taken while users were still joining);
    /// `u64::MAX` until every user has joined.
    steady_from: AtomicU64,
    totals: Vec<Mutex<Hist>>,
    current: Vec<Mutex<Hist>>,
    /// Per metric, every finished second.
    intervals: Vec<Mutex<Vec<Interval>>>,
    counters: Vec<Counters>,
    /// The first few error messages, for the result.
    error_samples: Mutex<Vec<String>>,
    started_wall: SystemTime,
}

const ERROR_SAMPLES: usize = 20;

fn slot(kind: Kind, metric: Metric) -> usize {
    kind.index() * Metric::ALL.len() + metric.index()
}

impl Recorder {
    /// Empty recorder on `clock`.
    pub fn new(clock: Clock) -> Recorder {
        let n = Kind::ALL.len() * Metric::ALL.len();
        Recorder {
            clock,
            steady_from: AtomicU64::new(u64::MAX),
            totals: (0..n).map(|_| Mutex::new(Hist::new())).collect(),
            current: (0..n).map(|_| Mutex::new(Hist::new())).collect(),
            intervals: Metric::ALL.iter().map(|_| Mutex::new(Vec::new())).collect(),
            counters: Kind::ALL.iter().map(|_| Counters::default()).collect(),
            error_samples: Mutex::new(Vec::new()),
            started_wall: SystemTime::now(),
        }
    }

    /// The run's clock.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Counts from here on into the steady totals.
    pub fn set_steady_from(&self, stamp: u64) {
        self.steady_from.fetch_min(stamp, Ordering::SeqCst);
    }

    /// When the steady part began, if it has.
    pub fn steady_from(&self) -> Option<u64> {
        Some(self.steady_from.load(Ordering::SeqCst)).filter(|s| *s != u64::MAX)
    }

    /// Records one latency sample, measured from the intended instant `stamp`.
    pub fn sample(&self, kind: Kind, metric: Metric, stamp: u64, latency_us: u64) {
        let i = slot(kind, metric);
        lock(&self.current[i]).record(latency_us);
        if stamp >= self.steady_from.load(Ordering::Relaxed) {
            lock(&self.totals[i]).record(latency_us);
        }
    }

    /// The counters of a kind.
    pub fn counters(&self, kind: Kind) -> &Counters {
        &self.counters[kind.index()]
    }

    /// Counts an error and keeps its message if it is among the first few.
    pub fn error(&self, kind: Kind, message: impl Into<String>) {
        Counters::add(&self.counters(kind).errors, 1);
        let mut samples = lock(&self.error_samples);
        if samples.len() < ERROR_SAMPLES {
            samples.push(format!("{}: {}", kind.name(), message.into()));
        }
    }

    /// The first few error messages.
    pub fn error_samples(&self) -> Vec<String> {
        lock(&self.error_samples).clone()
    }

    /// Closes the current second: moves each live histogram into the
    /// interval log and returns the second's sync histogram over all kinds
    /// (for the progress line).
    pub fn roll(&self) -> Hist {
        let start_s = self.clock.now() / 1_000_000;
        let mut sync = Hist::new();
        for metric in Metric::ALL {
            let mut finished = Vec::new();
            for kind in Kind::ALL {
                let h = std::mem::take(&mut *lock(&self.current[slot(kind, metric)]));
                if metric == Metric::Sync {
                    sync.add(&h);
                }
                if !h.is_empty() {
                    finished.push(Interval { start_s: start_s.saturating_sub(1), kind, histogram: h });
                }
            }
            lock(&self.intervals[metric.index()]).extend(finished);
        }
        sync
    }

    /// The steady total of one kind and metric; for a run that never had a
    /// steady part (a goose test plan that never reached every planned
    /// client), every sample, from the seconds already rolled.
    pub fn total(&self, kind: Kind, metric: Metric) -> Hist {
        let mut h = Hist::new();
        if self.steady_from().is_some() {
            h.add(&lock(&self.totals[slot(kind, metric)]));
        } else {
            for interval in lock(&self.intervals[metric.index()]).iter().filter(|i| i.kind == kind) {
                h.add(&interval.histogram);
            }
        }
        h
    }

    /// Every finished second of the given kinds, as the report keeps them.
    pub fn seconds(&self, kinds: &[Kind]) -> Vec<syncspec_reports::load::Second> {
        let mut out = Vec::new();
        for metric in Metric::ALL {
            for i in lock(&self.intervals[metric.index()]).iter().filter(|i| kinds.contains(&i.kind)) {
                out.push(syncspec_reports::load::Second {
                    start_s: i.start_s,
                    kind: i.kind.name().to_owned(),
                    metric,
                    histogram: i.histogram.clone(),
                });
            }
        }
        out.sort_by(|a, b| (a.start_s, &a.kind, a.metric).cmp(&(b.start_s, &b.kind, b.metric)));
        out
    }

    /// Writes one HdrHistogram V2 interval log per metric the run's kinds
    /// measure (`sync.hlog`, `mutation.hlog`, `visible.hlog`,
    /// `send_lag.hlog`, and `page.hlog` with history clients, `action.hlog`
    /// with reply clients), one tagged histogram per kind per second,
    /// interval starts relative to the run's wall-clock start (`BaseTime`).
    pub fn write_logs(&self, dir: &std::path::Path, kinds: &[Kind]) -> std::io::Result<Vec<String>> {
        let mut names = Vec::new();
        for metric in Metric::ALL.into_iter().filter(|m| kinds.iter().any(|k| k.metrics().any(|km| km == *m))) {
            let intervals = lock(&self.intervals[metric.index()]);
            let name = format!("{}.hlog", metric.name());
            write_log(
                &dir.join(&name),
                self.started_wall,
                metric.name(),
                intervals.iter().map(|i| (i.start_s, i.kind.name(), i.histogram.inner())),
            )?;
            names.push(name);
        }
        Ok(names)
    }
}

/// Writes an interval log: `(start second, tag, histogram)` per line.
pub fn write_log<'a>(
    path: &std::path::Path,
    base: SystemTime,
    what: &str,
    intervals: impl Iterator<Item = (u64, &'a str, &'a Histogram<u64>)>,
) -> std::io::Result<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut serializer = V2DeflateSerializer::new();
    let mut log = IntervalLogWriterBuilder::new()
        .add_comment(&format!("syncspec {what} latency, microseconds"))
        .with_start_time(base)
        .with_base_time(base)
        .with_max_value_divisor(1000.0)
        .begin_log_with(&mut file, &mut serializer)
        .map_err(std::io::Error::other)?;
    for (start_s, tag, h) in intervals {
        log.write_histogram(h, Duration::from_secs(start_s), Duration::from_secs(1), Tag::new(tag))
            .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
    }
    drop(log);
    std::io::Write::flush(&mut file)
}

/// One histogram of an interval log, with its tag.
pub type Tagged = (Option<String>, Histogram<u64>);

/// Reads every histogram of an interval log, with its tag.
pub fn read_log(bytes: &[u8]) -> Result<Vec<Tagged>, String> {
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    use hdrhistogram::serialization::Deserializer;
    let mut out = Vec::new();
    let mut deserializer = Deserializer::new();
    for entry in IntervalLogIterator::new(bytes) {
        if let LogEntry::Interval(ilh) = entry.map_err(|e| format!("{e:?}"))? {
            let raw = base64_decode(ilh.encoded_histogram())?;
            let h: Histogram<u64> = deserializer.deserialize(&mut raw.as_slice()).map_err(|e| format!("{e:?}"))?;
            out.push((ilh.tag().map(|t| t.as_str().to_owned()), h));
        }
    }
    Ok(out)
}

fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).map_err(|e| e.to_string())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_before_the_steady_part_stay_out_of_the_totals_but_not_the_log() {
        let r = Recorder::new(Clock::start());
        r.sample(Kind::Chat, Metric::Sync, 10, 5_000);
        r.set_steady_from(100);
        r.sample(Kind::Chat, Metric::Sync, 99, 7_000);
        r.sample(Kind::Chat, Metric::Sync, 100, 9_000);
        assert_eq!(r.total(Kind::Chat, Metric::Sync).len(), 1);
        assert_eq!(r.roll().len(), 3);
    }

    #[test]
    fn interval_logs_round_trip_and_merge() {
        let r = Recorder::new(Clock::start());
        r.set_steady_from(0);
        for us in [1_000, 2_000, 40_000] {
            r.sample(Kind::Cursors, Metric::Sync, 0, us);
        }
        r.sample(Kind::Chat, Metric::Sync, 0, 3_000);
        r.roll();
        let dir = std::env::temp_dir().join(format!("syncspec-hlog-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let names = r.write_logs(&dir, &[Kind::Cursors, Kind::Chat]).unwrap();
        assert_eq!(names, vec!["sync.hlog", "mutation.hlog", "visible.hlog", "send_lag.hlog"]);
        let names = r.write_logs(&dir, &[Kind::Reply]).unwrap();
        assert_eq!(names, vec!["sync.hlog", "mutation.hlog", "visible.hlog", "send_lag.hlog", "action.hlog"]);
        let text = std::fs::read(dir.join("sync.hlog")).unwrap();
        let read = read_log(&text).unwrap();
        assert_eq!(read.len(), 2);
        let cursors = read.iter().find(|(t, _)| t.as_deref() == Some("cursors")).unwrap();
        assert_eq!(cursors.1.len(), 3);
        assert!(cursors.1.max() >= 40_000 && cursors.1.max() < 40_100);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
