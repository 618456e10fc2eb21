//! `report merge`: the shards of one load run made into one result, by
//! adding their histograms and counters, so the merged percentiles are those
//! of one histogram holding every sample. Shards that do not make one whole
//! run (one missing, one given twice, another run's) are refused by name.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::load::{LoadResult, Second};
use crate::report::{Backend, Report, ReportError};

/// Error samples a merged result keeps.
const ERROR_SAMPLES: usize = 20;

/// Merges the shards of one load run, each a report read from `path`.
pub fn merge(shards: Vec<(PathBuf, Report)>) -> Result<Report, ReportError> {
    let invalid = |m: String| ReportError::Invalid(m);
    if shards.is_empty() {
        return Err(invalid("report merge needs the shards' results".into()));
    }
    let mut loads: Vec<(PathBuf, Backend, LoadResult)> = Vec::new();
    for (path, report) in shards {
        let mut with_load: Vec<Backend> = report.backends.into_iter().filter(|b| b.load.is_some()).collect();
        if with_load.len() != 1 {
            return Err(invalid(format!(
                "{}: expected the result of one load run (`syncspec load --shard I/N --out DIR`), found {} backends with a load run",
                path.display(),
                with_load.len()
            )));
        }
        let mut backend = with_load.remove(0);
        let load = backend.load.take().expect("filtered on load");
        loads.push((path, backend, load));
    }

    // Every shard must come from the same run plan.
    let (first_path, _, first) = &loads[0];
    for (path, _, load) in &loads[1..] {
        let differs: Vec<String> = [
            ("scenario", first.scenario.clone(), load.scenario.clone()),
            ("target", first.target.clone(), load.target.clone()),
            ("users", first.users_total.to_string(), load.users_total.to_string()),
            ("rate", first.rate_hz.to_string(), load.rate_hz.to_string()),
            ("schedule", first.schedule.clone(), load.schedule.clone()),
            ("shard count", first.shards.of.to_string(), load.shards.of.to_string()),
        ]
        .into_iter()
        .filter(|(_, a, b)| a != b)
        .map(|(what, a, b)| format!("{what} {a} in {} but {b} in {}", first_path.display(), path.display()))
        .collect();
        if !differs.is_empty() {
            return Err(invalid(format!("these are not shards of one run: {}", differs.join("; "))));
        }
    }

    // Each shard exactly once.
    let count = first.shards.of;
    for (path, _, load) in &loads {
        if let Some(bad) = load.shards.held.iter().find(|i| **i == 0 || **i > count) {
            return Err(invalid(format!("{}: shard {bad} of {count} is not a shard of the run", path.display())));
        }
    }
    let mut seen: BTreeMap<u32, &PathBuf> = BTreeMap::new();
    for (path, _, load) in &loads {
        for index in &load.shards.held {
            if let Some(before) = seen.insert(*index, path) {
                return Err(invalid(format!(
                    "shard {index}/{count} is in both {} and {}: a shard run twice would count its clients twice",
                    before.display(),
                    path.display()
                )));
            }
        }
    }
    let missing: Vec<String> = (1..=count).filter(|i| !seen.contains_key(i)).map(|i| format!("{i}/{count}")).collect();
    if !missing.is_empty() {
        return Err(invalid(format!(
            "shard{} {} missing: the merged percentiles would leave out {} rooms",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", "),
            if missing.len() == 1 { "its" } else { "their" }
        )));
    }

    // Shards of one load ran at the same time: one that ran at another time
    // (a leftover of an earlier run with the same plan) would add load that
    // was never offered together.
    let latest_start = loads.iter().max_by_key(|(_, _, l)| l.started_unix_ms).expect("at least one shard");
    let earliest_end = loads
        .iter()
        .min_by_key(|(_, _, l)| l.started_unix_ms.saturating_add((l.wall_time_s * 1000.0) as u64))
        .expect("at least one shard");
    let end_ms = |l: &LoadResult| l.started_unix_ms.saturating_add((l.wall_time_s * 1000.0) as u64);
    if latest_start.2.started_unix_ms > end_ms(&earliest_end.2) {
        return Err(invalid(format!(
            "these shards did not run at the same time: {} started {} s after {} ended",
            latest_start.0.display(),
            (latest_start.2.started_unix_ms - end_ms(&earliest_end.2)) / 1000,
            earliest_end.0.display()
        )));
    }
    let start = loads.iter().map(|(_, _, l)| l.started_unix_ms).min().unwrap_or(0);
    let mut backends = loads.iter().map(|(_, b, _)| b.clone());
    let mut backend = backends.next().expect("at least one shard");
    let mut merged = loads[0].2.clone();
    merged.kinds.clear();
    merged.histograms = Default::default();
    merged.users_ready = 0;
    merged.memory = Default::default();
    merged.error_samples.clear();
    merged.failed_thresholds.clear();
    merged.files.clear();
    merged.started_unix_ms = start;
    let mut held = Vec::new();
    let mut seconds: BTreeMap<(u64, String, crate::load::Metric), Second> = BTreeMap::new();
    for (_, _, load) in &loads {
        held.extend(load.shards.held.iter().copied());
        merged.users_ready += load.users_ready;
        merged.run_time_s = merged.run_time_s.min(load.run_time_s);
        merged.wall_time_s = merged.wall_time_s.max(load.wall_time_s);
        merged.ramp_s = match (merged.ramp_s, load.ramp_s) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
        merged.memory.rss_before_bytes += load.memory.rss_before_bytes;
        merged.memory.rss_peak_bytes += load.memory.rss_peak_bytes;
        for e in &load.error_samples {
            if merged.error_samples.len() < ERROR_SAMPLES {
                merged.error_samples.push(e.clone());
            }
        }
        merged.failed_thresholds.extend(load.failed_thresholds.iter().cloned());
        for (name, kind) in &load.kinds {
            let into = merged.kinds.entry(name.clone()).or_default();
            into.rooms += kind.rooms;
            into.figures.add_counts(&kind.figures);
        }
        for (kind, metrics) in &load.histograms.totals {
            let into = merged.histograms.totals.entry(kind.clone()).or_default();
            for (metric, h) in metrics {
                into.entry(*metric).or_default().add(h);
            }
        }
        merged.histograms.echo.add(&load.histograms.echo);
        // Line the shards' seconds up on the wall clock.
        let offset = (load.started_unix_ms - start + 500) / 1000;
        for s in &load.histograms.seconds {
            let start_s = s.start_s + offset;
            seconds
                .entry((start_s, s.kind.clone(), s.metric))
                .or_insert_with(|| Second {
                    start_s,
                    kind: s.kind.clone(),
                    metric: s.metric,
                    histogram: Default::default(),
                })
                .histogram
                .add(&s.histogram);
        }
    }
    held.sort_unstable();
    merged.shards.held = held;
    merged.histograms.seconds = seconds.into_values().collect();
    merged.finish();
    for other in backends {
        backend.about = backend.about.or(other.about);
    }
    backend.load = Some(merged);
    Ok(Report::new(vec![backend]))
}
