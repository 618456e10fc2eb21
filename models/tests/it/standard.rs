//! The default configurations explore their whole state space and pass.

use syncspec_models::report;
use syncspec_models::sync::SyncModel;

/// Unique states per configuration: a change to the model or to the core's
/// state space shows here first.
const PINNED: &[(&str, usize)] = &[
    ("two subscribers increment", 810),
    ("three writers contend", 28_032),
    ("a reconnect replays a mutation", 30_758),
    ("two transfers race under a watcher of two queries", 26_523),
    ("two cursor moves in one instant", 29),
    ("two withdrawals from a joint pair race", 150),
    ("a subscriber resubscribes while another writes", 156),
    ("two pages while messages arrive and leave", 543),
    ("two sendLaters and a direct send to one inbox", 15_181),
];

#[test]
fn standard_configurations_pass() {
    for (name, model) in SyncModel::standard() {
        let r = report::check(name, model);
        println!("{name}: {} states, {} unique, depth {}, {:?}", r.states, r.unique_states, r.max_depth, r.elapsed_ms);
        let pinned = PINNED.iter().find(|(n, _)| *n == name).map(|(_, count)| *count);
        assert_eq!(Some(r.unique_states), pinned, "{name}: the state space changed");
        for p in &r.properties {
            assert!(p.holds, "{name}: {} {} failed: {:#?}", p.expectation.name(), p.name, p.trace);
        }
    }
}
