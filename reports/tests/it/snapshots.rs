//! Snapshots of what a person or a CI system reads, from the fixed result.
//! `UPDATE_EXPECT=1 cargo test -p syncspec-reports` refreshes them.

use expect_test::{expect, expect_file, Expect, ExpectFile};
use syncspec_reports::gate;

use crate::support::two_backends;

/// The one place the renderers are called from.
fn check_markdown(expect: ExpectFile) {
    expect.assert_eq(&syncspec_reports::markdown::render(&two_backends()));
}

fn check_junit(rules: &[&str], expect: ExpectFile) {
    let report = two_backends();
    let thresholds: Vec<_> = rules.iter().map(|r| gate::parse(r).unwrap()).collect();
    let results = gate::evaluate(&report, &thresholds, None).unwrap();
    expect.assert_eq(&syncspec_reports::junit::render(&report, Some(&results)));
}

fn check_gate(rules: &[&str], backend: Option<&str>, expect: Expect) {
    let thresholds: Vec<_> = rules.iter().map(|r| gate::parse(r).unwrap()).collect();
    let results = gate::evaluate(&two_backends(), &thresholds, backend).unwrap();
    expect.assert_eq(&gate::render(&results));
}

#[test]
fn markdown() {
    check_markdown(expect_file!["../data/two_backends.md"]);
}

#[test]
fn junit() {
    check_junit(&["conformance.failed==0", "sync.p95<100ms"], expect_file!["../data/two_backends.junit.xml"]);
}

#[test]
fn gate_over_both_backends() {
    check_gate(
        &[
            "conformance.failed==0",
            "sync.p95<50ms",
            "mutation.p99<=100ms",
            "errors==0",
            "sweep.accepted_per_user<=30.5",
            "model.failed==0",
        ],
        None,
        expect![[r#"
            ✗ conformance.failed==0          reference: failed=0 · 127.0.0.1:3211: failed=1
            ✓ sync.p95<50ms                  reference: p95=5.30ms · 127.0.0.1:3211: p95=6.49ms
            ✓ mutation.p99<=100ms            reference: p99=6.39ms · 127.0.0.1:3211: p99=6.28ms
            ✓ errors==0                      reference: errors=0 · 127.0.0.1:3211: errors=0
            ✓ sweep.accepted_per_user<=30.5  reference: accepted_per_user=29.35 · 127.0.0.1:3211: accepted_per_user=29.50
            ✗ model.failed==0                reference: failed=0 · 127.0.0.1:3211: model.failed not measured
            4 passed, 2 failed
        "#]],
    );
}

#[test]
fn gate_on_the_reference_alone() {
    check_gate(
        &["conformance.failed==0", "chat.sync.p50<5ms", "sync_over_echo.p95<100"],
        Some("reference"),
        expect![[r#"
        ✓ conformance.failed==0   failed=0
        ✓ chat.sync.p50<5ms       p50=4.23ms
        ✓ sync_over_echo.p95<100  p95=47.74
        3 passed, 0 failed
    "#]],
    );
}
