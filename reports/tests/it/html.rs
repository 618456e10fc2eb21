//! The HTML report is one self-contained file: no script, no stylesheet or
//! image from elsewhere, every section and chart a reader looks for, and
//! each failed cell linked to its evidence.

use crate::support::two_backends;

fn page() -> String {
    syncspec_reports::html::render(&two_backends())
}

#[test]
fn nothing_is_fetched() {
    let html = page();
    for needle in ["<script", "src=\"http", "href=\"http", "@import", "url(", "<link", "<iframe"] {
        assert!(!html.contains(needle), "the report refers to something outside itself: {needle}");
    }
}

#[test]
fn every_section_and_chart_is_there() {
    let html = page();
    for id in [
        "verdict",
        "matrix",
        "evidence",
        "latency",
        "chart-percentiles",
        "chart-p95-per-second",
        "sweep",
        "chart-sweep-accepted",
        "chart-sweep-p95",
        "model",
        "environment",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "#{id} missing");
    }
    assert_eq!(html.matches("<svg").count(), 4, "four charts");
}

#[test]
fn the_failed_cell_links_to_its_evidence_with_the_timeline() {
    let html = page();
    assert!(html.contains(r##"<a href="#ev-127-0-0-1-3211-3.3">FAIL</a>"##));
    assert!(html.contains(r#"id="ev-127-0-0-1-3211-3.3""#));
    assert!(html.contains("Timeline around it"));
    assert_eq!(html.matches("<td class=\"cell outcome-fail\"").count(), 1, "one failed cell");
}

#[test]
fn text_from_a_backend_is_escaped() {
    let mut report = two_backends();
    report.backends[1].about = Some("<script>alert(1)</script>".into());
    let html = syncspec_reports::html::render(&report);
    assert!(!html.contains("<script>alert"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
}

#[test]
fn a_failed_model_property_shows_its_shortest_trace() {
    let mut report = two_backends();
    let model = report.backends[0].model.as_mut().unwrap();
    let property = &mut model.configurations[0].properties[0];
    property.holds = false;
    property.trace = Some(vec!["client 0 sends increment".into(), "the server commits ts 2".into()]);
    let name = property.name.clone();
    let html = syncspec_reports::html::render(&report);
    assert!(html.contains(&name) && html.contains("Shortest counterexample, 2 steps"), "no trace shown");
    assert!(html.contains("<code>the server commits ts 2</code>"));
}

#[test]
fn each_category_shows_once_whatever_order_the_columns_list_cases_in() {
    // A case only the second column ran, of a category the first column listed first.
    let mut report = two_backends();
    let cases = &mut report.backends[1].conformance.as_mut().unwrap().cases;
    let mut extra = cases[0].clone();
    extra.id = "1.9".into();
    cases.push(extra);
    let html = syncspec_reports::html::render(&report);
    assert_eq!(html.matches("<tr class=\"category\">").count(), 5, "categories 1, 2, 3, 4 and 7 once each");
    assert_eq!(html.matches("data-case=\"1.9\"").count(), 2, "1.9 in category 1: run on one column, not on the other");
}

#[test]
fn a_phase_that_could_not_run_is_shown_in_the_verdict() {
    let mut report = two_backends();
    report.backends[1].problems.push("the load run could not run: could not reach it".into());
    let html = syncspec_reports::html::render(&report);
    assert!(html.contains("Could not run") && html.contains("the load run could not run: could not reach it"));
    assert!(syncspec_reports::markdown::render(&report).contains("| Could not run |  | the load run could not run"));
}
