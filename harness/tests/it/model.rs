//! `syncspec model` end to end: the default check passes; a fault is named
//! with its counterexample and exit code 1.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_syncspec");

#[test]
fn the_default_check_passes() {
    let run = Command::new(BIN).arg("model").output().expect("run syncspec model");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(0), "{stdout}");
    assert!(
        [
            "(810 unique)",
            "(28032 unique)",
            "(30758 unique)",
            "(26523 unique)",
            "(29 unique)",
            "(150 unique)",
            "(156 unique)"
        ]
        .iter()
        .all(|n| stdout.contains(n)),
        "{stdout}"
    );
    assert!(stdout.trim_end().ends_with("0 properties failed"), "{stdout}");
}

#[test]
fn a_fault_is_named_with_a_counterexample() {
    let run = Command::new(BIN).args(["model", "--fault", "replay-twice"]).output().expect("run syncspec model");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAILS  always a replayed mutation applies at most once"), "{stdout}");
    assert!(stdout.contains("counterexample, "), "{stdout}");
    let bad = Command::new(BIN).args(["model", "--fault", "nope"]).output().expect("run");
    assert_eq!(bad.status.code(), Some(2));
}
