//! Every gate rule has a negative control: a result on which it must fail.

use syncspec_reports::gate::{self, RuleResult};
use syncspec_reports::report::Report;

use crate::support::two_backends;

fn judge(report: &Report, rule: &str, backend: Option<&str>) -> RuleResult {
    gate::evaluate(report, &[gate::parse(rule).unwrap()], backend).unwrap().remove(0)
}

#[test]
fn conformance_failed_catches_the_torn_backend_only() {
    let report = two_backends();
    assert!(!judge(&report, "conformance.failed==0", None).passed);
    assert!(!judge(&report, "conformance.failed==0", Some("127.0.0.1:3211")).passed);
    assert!(judge(&report, "conformance.failed==0", Some("reference")).passed);
}

#[test]
fn a_metric_the_result_lacks_fails_the_rule() {
    let mut report = two_backends();
    for b in &mut report.backends {
        b.load = None;
    }
    let r = judge(&report, "sync.p95<50ms", None);
    assert!(!r.passed);
    assert!(r.observed.iter().all(|(_, o)| o.contains("not measured")), "{r:?}");
    // The model check is the reference's alone: a rule on it fails for the other backend.
    assert!(!judge(&two_backends(), "model.failed==0", None).passed);
    assert!(judge(&two_backends(), "model.failed==0", Some("reference")).passed);
}

#[test]
fn latency_rules_fail_above_their_limit() {
    let report = two_backends();
    let p95 = report.backends[0].load.as_ref().unwrap().figures.sync_latency_us.p95;
    let just_above = format!("sync.p95<{}us", p95 + 1);
    let at = format!("sync.p95<{p95}us");
    assert!(judge(&report, &just_above, Some("reference")).passed);
    assert!(!judge(&report, &at, Some("reference")).passed);
}

#[test]
fn the_sweep_rule_catches_a_backend_without_a_rate_limit() {
    let mut report = two_backends();
    let sweep = report.backends[1].sweep.as_mut().unwrap();
    for step in &mut sweep.steps {
        step.figures.accepted_per_user_s = step.rate_hz;
    }
    assert!(judge(&report, "sweep.accepted_per_user<=30.5", Some("reference")).passed);
    assert!(!judge(&report, "sweep.accepted_per_user<=30.5", Some("127.0.0.1:3211")).passed);
}

#[test]
fn an_unknown_backend_is_an_error_not_a_pass() {
    let e = gate::evaluate(&two_backends(), &[gate::parse("errors==0").unwrap()], Some("nope")).unwrap_err();
    assert!(e.contains("no backend named \"nope\"") && e.contains("reference"), "{e}");
}

#[test]
fn a_regression_over_the_echo_floor_fails_and_the_same_run_passes() {
    let baseline = two_backends();
    let same = gate::regression(&baseline, &baseline, 0.10, None).unwrap();
    assert!(same.iter().all(|r| r.passed), "{same:#?}");
    assert!(same.iter().any(|r| r.rule.contains("sync.p95 over the echo floor")));

    // Twice the sync latency on the same floor: a regression.
    let mut slower = two_backends();
    let load = slower.backends[0].load.as_mut().unwrap();
    load.figures.sync_latency_us.p95 *= 2;
    let judged = gate::regression(&slower, &baseline, 0.10, Some("reference")).unwrap();
    let p95 = judged.iter().find(|r| r.rule.contains("sync.p95 over")).unwrap();
    assert!(!p95.passed, "{p95:?}");

    // Twice the latency on twice the floor (a slower machine): no regression.
    let mut both = two_backends();
    let load = both.backends[0].load.as_mut().unwrap();
    load.figures.sync_latency_us.p95 *= 2;
    load.echo.rtt_us.p95 *= 2;
    let judged = gate::regression(&both, &baseline, 0.10, Some("reference")).unwrap();
    assert!(judged.iter().find(|r| r.rule.contains("sync.p95 over")).unwrap().passed);

    // A failed case that the baseline did not have.
    let mut broken = two_backends();
    broken.backends[0].conformance.as_mut().unwrap().failed += 1;
    let judged = gate::regression(&broken, &baseline, 0.10, Some("reference")).unwrap();
    assert!(!judged.iter().find(|r| r.rule.contains("conformance.failed")).unwrap().passed);
}

#[test]
fn a_regression_check_with_nothing_to_compare_fails() {
    let mut conformance_only = two_backends();
    for b in &mut conformance_only.backends {
        (b.load, b.sweep, b.model) = (None, None, None);
    }
    let mut load_only = two_backends();
    for b in &mut load_only.backends {
        (b.conformance, b.sweep, b.model) = (None, None, None);
    }
    let judged = gate::regression(&load_only, &conformance_only, 0.10, None).unwrap();
    assert!(!judged.is_empty() && judged.iter().all(|r| !r.passed), "{judged:#?}");
}

#[test]
fn a_backend_is_judged_against_its_own_baseline_column_only() {
    let mut target_only = two_backends();
    target_only.backends.remove(0);
    let judged = gate::regression(&two_backends(), &target_only, 0.10, Some("reference")).unwrap();
    let missing = judged.iter().find(|r| r.rule.contains("the baseline has this backend")).unwrap();
    assert!(!missing.passed && missing.observed[0].1.contains("127.0.0.1:3211"), "{missing:?}");
}

#[test]
fn a_baseline_that_accepted_nothing_is_no_division_by_zero() {
    let mut nothing = two_backends();
    for step in &mut nothing.backends[0].sweep.as_mut().unwrap().steps {
        step.figures.accepted_per_user_s = 0.0;
    }
    let same = gate::regression(&nothing, &nothing, 0.10, Some("reference")).unwrap();
    let rule = same.iter().find(|r| r.rule.contains("sweep.accepted_per_user")).unwrap();
    assert!(rule.passed && !rule.observed[0].1.contains("NaN"), "{rule:?}");
    let judged = gate::regression(&two_backends(), &nothing, 0.10, Some("reference")).unwrap();
    assert!(!judged.iter().find(|r| r.rule.contains("sweep.accepted_per_user")).unwrap().passed);
}

#[test]
fn an_edited_summary_in_the_file_does_not_pass_a_gate() {
    let text = crate::support::TWO_BACKENDS;
    let mut json: serde_json::Value = serde_json::from_str(text).unwrap();
    let true_p95 = json["backends"][0]["load"]["sync_latency_us"]["p95"].as_u64().unwrap();
    json["backends"][0]["load"]["sync_latency_us"]["p95"] = 1.into();
    let report = Report::parse(&json.to_string()).unwrap();
    assert_eq!(report.backends[0].load.as_ref().unwrap().figures.sync_latency_us.p95, true_p95);
    assert!(!judge(&report, "sync.p95<1ms", Some("reference")).passed);
}

#[test]
fn the_rate_verdict_fails_a_backend_that_accepts_nothing() {
    use syncspec_reports::assessment::{Assessment, Mark};
    let mut report = two_backends();
    assert_eq!(Assessment::of(&report.backends[0]).rate, Mark::Good);
    for step in &mut report.backends[0].sweep.as_mut().unwrap().steps {
        step.figures.accepted_per_user_s = 0.0;
    }
    let v = Assessment::of(&report.backends[0]);
    assert_eq!(v.rate, Mark::Bad, "{}", v.rate_text);
    assert!(v.rate_text.contains("refuses writes under the limit"), "{}", v.rate_text);
}
