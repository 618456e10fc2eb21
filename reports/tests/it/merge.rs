//! Shards merge exactly (the merged percentiles are those of one histogram
//! holding every sample), and shards that do not make one run are refused.

use std::path::PathBuf;

use proptest::prelude::*;
use syncspec_reports::hist::{Hist, Summary};
use syncspec_reports::load::{Metric, Shards};
use syncspec_reports::merge::merge;
use syncspec_reports::report::Report;

use crate::support::two_backends;

/// The fixture's reference load run, cut down to one shard holding `samples`.
fn shard(index: u32, of: u32, samples: &[u64]) -> (PathBuf, Report) {
    let mut report = two_backends();
    report.backends.truncate(1);
    let backend = &mut report.backends[0];
    backend.conformance = None;
    backend.sweep = None;
    backend.model = None;
    let load = backend.load.as_mut().unwrap();
    load.shards = Shards::one(index, of);
    let mut h = Hist::new();
    for s in samples {
        h.record(*s);
    }
    load.histograms.totals.clear();
    load.histograms.totals.insert("cursors".into(), [(Metric::Sync, h)].into_iter().collect());
    load.kinds.retain(|k, _| k == "cursors");
    load.finish();
    (PathBuf::from(format!("shard-{index}")), report)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn merged_percentiles_are_those_of_every_sample(
        parts in prop::collection::vec(prop::collection::vec(1u64..5_000_000, 0..300), 1..5)
    ) {
        let of = parts.len() as u32;
        let shards: Vec<_> = parts.iter().enumerate().map(|(i, s)| shard(i as u32 + 1, of, s)).collect();
        let merged = merge(shards).unwrap();
        let load = merged.backends[0].load.as_ref().unwrap();
        let mut all = Hist::new();
        for s in parts.iter().flatten() {
            all.record(*s);
        }
        prop_assert_eq!(load.figures.sync_latency_us, Summary::of(&all));
        prop_assert_eq!(&load.kinds["cursors"].figures.sync_latency_us, &Summary::of(&all));
        prop_assert!(load.shards.complete());
    }
}

#[test]
fn counters_add_up() {
    let one = shard(1, 2, &[1_000]);
    let two = shard(2, 2, &[2_000]);
    let sent = one.1.backends[0].load.as_ref().unwrap().kinds["cursors"].figures.updates_sent;
    let merged = merge(vec![one, two]).unwrap();
    let load = merged.backends[0].load.as_ref().unwrap();
    assert_eq!(load.kinds["cursors"].figures.updates_sent, 2 * sent);
    assert_eq!(load.figures.updates_sent, 2 * sent);
    assert_eq!(load.shards.held, [1, 2]);
}

#[test]
fn a_missing_shard_is_refused() {
    let e = merge(vec![shard(1, 3, &[1]), shard(3, 3, &[1])]).unwrap_err().to_string();
    assert!(e.contains("shard 2/3 missing"), "{e}");
}

#[test]
fn a_shard_outside_the_run_is_refused() {
    for (index, of) in [(0, 2), (3, 2), (1, 0)] {
        let e = merge(vec![shard(index, of, &[1])]).unwrap_err().to_string();
        assert!(e.contains("is not a shard of the run"), "{index}/{of}: {e}");
    }
}

#[test]
fn a_shard_given_twice_is_refused() {
    let e = merge(vec![shard(1, 2, &[1]), shard(2, 2, &[1]), shard(2, 2, &[1])]).unwrap_err().to_string();
    assert!(e.contains("shard 2/2 is in both shard-2 and shard-2"), "{e}");
}

#[test]
fn shards_of_another_run_are_refused() {
    let (path, mut other) = shard(2, 2, &[1]);
    other.backends[0].load.as_mut().unwrap().users_total += 1;
    let e = merge(vec![shard(1, 2, &[1]), (path, other)]).unwrap_err().to_string();
    assert!(e.contains("not shards of one run") && e.contains("users"), "{e}");
    let (path, mut stale) = shard(2, 2, &[1]);
    let load = stale.backends[0].load.as_mut().unwrap();
    load.started_unix_ms -= 3_600_000;
    let e = merge(vec![shard(1, 2, &[1]), (path, stale)]).unwrap_err().to_string();
    assert!(e.contains("did not run at the same time"), "{e}");
    let (path, mut no_load) = shard(1, 1, &[1]);
    no_load.backends[0].load = None;
    let e = merge(vec![(path, no_load)]).unwrap_err().to_string();
    assert!(e.contains("expected the result of one load run"), "{e}");
}
