//! The HTML report: one self-contained file (styles inline, charts as inline
//! SVG, no script and no fetch of any kind), readable from disk and in a CI
//! artefact viewer. First the verdict per backend, then the conformance
//! matrix in the Autobahn testsuite's shape with each failure's evidence and
//! timeline, the latency charts, the sweep, the model check and the
//! environment.
//!
//! The DOM keeps stable ids for tests and links: `#verdict`, `#matrix`,
//! `#evidence`, `#latency`, `#chart-percentiles`, `#chart-p95-per-second`,
//! `#sweep`, `#chart-sweep-accepted`, `#chart-sweep-p95`, `#model`, `#environment`.

mod charts;
mod timeline;

use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::assessment::{group, ms, Assessment, Mark, CLAIM_P95_US};
use crate::conformance::{CaseReport, Outcome};
use crate::hist::Summary;
use crate::load::Metric;
use crate::report::{Backend, Report};

const STYLE: &str = include_str!("html/report.css");

/// The report as one HTML page.
pub fn render(report: &Report) -> String {
    let names: Vec<&str> = report.backends.iter().map(|b| b.name.as_str()).collect();
    let title = format!("syncspec report: {}", names.join(" vs "));
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    h1 { "syncspec report" }
                    p.sub {
                        (names.join(" · ")) " · rendered " (report.created) " (measured: see Environment)"
                    }
                    nav {
                        a href="#verdict" { "Assessment" }
                        a href="#matrix" { "Conformance" }
                        a href="#latency" { "Latency" }
                        a href="#sweep" { "Rate sweep" }
                        a href="#model" { "Model check" }
                        a href="#environment" { "Environment" }
                    }
                }
                main {
                    (verdict(report))
                    (matrix(report))
                    (evidence(report))
                    (latency(report))
                    (sweep(report))
                    (model(report))
                    (environment(report))
                }
                footer { "Written by syncspec. Latencies are measured across clients from each write's intended send instant (open schedule); the echo floor is a plain loopback WebSocket round trip measured in the same run." }
            }
        }
    };
    page.into_string()
}

fn mark_class(mark: Mark) -> &'static str {
    match mark {
        Mark::Good => "good",
        Mark::Bad => "bad",
        Mark::Absent => "absent",
    }
}

fn mark_word(mark: Mark) -> &'static str {
    match mark {
        Mark::Good => "✓",
        Mark::Bad => "✗",
        Mark::Absent => "–",
    }
}

fn backend_head(report: &Report) -> Markup {
    html! {
        @for b in &report.backends {
            th.backend data-backend=(b.name) title=(b.url) {
                (b.name)
                @if b.reference { span.tag { "reference" } }
            }
        }
    }
}

/// A verdict row: its name, what it means, and how to read it off a verdict.
type VerdictRow = (&'static str, &'static str, fn(&Assessment) -> (Mark, &str));

fn verdict(report: &Report) -> Markup {
    let verdicts: Vec<Assessment> = report.backends.iter().map(Assessment::of).collect();
    let rows: [VerdictRow; 4] = [
        ("Correct?", "the conformance suite: every numbered case", |v| (v.conformance, &v.conformance_text)),
        (
            "How fast?",
            "P95 sync latency from one client's write to another's screen, against Convex's claim of under 100 ms",
            |v| (v.latency, &v.latency_text),
        ),
        (
            "Rate limit",
            "the rates the backend accepted per user over the cursor sweep, against the catalogue's limit",
            |v| (v.rate, &v.rate_text),
        ),
        ("Model check", "stateright over every interleaving of small configurations of the reference core", |v| {
            (v.model, &v.model_text)
        }),
    ];
    html! {
        section #verdict {
            h2 { "Assessment" }
            @if report.backends.is_empty() {
                p { "The report has no backend." }
            } @else {
                table.verdict {
                    thead { tr { th {} (backend_head(report)) } }
                    tbody {
                        @for (name, help, pick) in rows {
                            tr {
                                th scope="row" title=(help) { (name) }
                                @for (b, v) in report.backends.iter().zip(&verdicts) {
                                    @let (mark, text) = pick(v);
                                    td class=(format!("verdict-cell {}", mark_class(mark))) data-backend=(b.name) {
                                        span.mark { (mark_word(mark)) } " " (text)
                                        @if name == "Correct?" && !v.failed_cases.is_empty() {
                                            div.failed-list {
                                                "failed: "
                                                @for (i, id) in v.failed_cases.iter().enumerate() {
                                                    @if i > 0 { ", " }
                                                    a href=(format!("#ev-{}-{}", b.slug(), id)) { (id) }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        @if report.backends.iter().any(|b| !b.problems.is_empty()) {
                            tr {
                                th scope="row" { "Could not run" }
                                @for b in &report.backends {
                                    td class=(if b.problems.is_empty() { "verdict-cell absent" } else { "verdict-cell bad" }) data-backend=(b.name) {
                                        (b.problems.join("; "))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn matrix(report: &Report) -> Markup {
    let with: Vec<&Backend> = report.backends.iter().filter(|b| b.conformance.is_some()).collect();
    // Every case id in suite order, with its category.
    let mut cases: Vec<&CaseReport> = Vec::new();
    for b in &with {
        for c in b.conformance.iter().flat_map(|c| &c.cases) {
            if !cases.iter().any(|x| x.id == c.id) {
                cases.push(c);
            }
        }
    }
    let category_name = |n: u32| {
        with.iter().find_map(|b| b.conformance.as_ref().and_then(|c| c.categories.get(&n).cloned())).unwrap_or_default()
    };
    let categories: std::collections::BTreeSet<u32> = cases.iter().map(|c| c.category()).collect();
    html! {
        section #matrix {
            h2 { "Conformance" }
            @if with.is_empty() {
                p.absent { "The conformance suite did not run." }
            } @else {
                p.legend {
                    @for o in [Outcome::Pass, Outcome::NonStrict, Outcome::Fail, Outcome::Info, Outcome::Unimplemented] {
                        span class=(format!("cell outcome-{}", o.slug())) { (o.label()) }
                    }
                    " Hover a case for the guarantee it checks; a failed cell links to its evidence."
                }
                table.matrix {
                    thead {
                        tr {
                            th { "Case" }
                            @for b in &with {
                                th.backend data-backend=(b.name) { (b.name) }
                            }
                        }
                    }
                    @for n in &categories {
                        tbody {
                            tr.category { th colspan=(with.len() + 1) { (n) " " (category_name(*n)) } }
                            @for c in cases.iter().filter(|c| c.category() == *n) {
                                tr {
                                    th.case scope="row" title=(c.guarantee) { span.id { (c.id) } " " (c.title) }
                                    @for b in &with {
                                        @match b.conformance.as_ref().and_then(|x| x.case(&c.id)) {
                                            Some(r) => {
                                                td class=(format!("cell outcome-{}", r.outcome.slug())) data-case=(c.id) data-backend=(b.name)
                                                    title=(r.evidence.first().map_or(String::new(), |e| e.message.clone())) {
                                                    @if r.outcome == Outcome::Fail {
                                                        a href=(format!("#ev-{}-{}", b.slug(), c.id)) { (r.outcome.label()) }
                                                    } @else {
                                                        (r.outcome.label())
                                                    }
                                                    span.ms { (r.duration_ms) " ms" }
                                                }
                                            }
                                            None => { td.cell.not-run data-case=(c.id) data-backend=(b.name) { "not run" } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn evidence(report: &Report) -> Markup {
    let failures: Vec<(&Backend, &CaseReport)> = report
        .backends
        .iter()
        .flat_map(|b| b.conformance.iter().flat_map(move |c| c.cases.iter().map(move |case| (b, case))))
        .filter(|(_, c)| c.outcome == Outcome::Fail)
        .collect();
    html! {
        @if !failures.is_empty() {
            section #evidence {
                h2 { "Evidence" }
                @for (b, c) in failures {
                    article.failure id=(format!("ev-{}-{}", b.slug(), c.id)) {
                        h3 { span.id { (c.id) } " " (c.title) " " span.on { "on " (b.name) } }
                        p.guarantee { "Guarantee: " (c.guarantee) }
                        @for e in c.evidence.iter().take(EVIDENCE_SHOWN) {
                            (why(e, c))
                        }
                        @if c.evidence.len() > EVIDENCE_SHOWN {
                            details.more {
                                summary { (c.evidence.len() - EVIDENCE_SHOWN) " more of the same kind" }
                                @for e in c.evidence.iter().skip(EVIDENCE_SHOWN) {
                                    (why(e, c))
                                }
                            }
                        }
                        @if let Some(h) = &c.history {
                            @let named: Vec<usize> = c.evidence.iter().flat_map(|e| e.events.iter().copied()).collect();
                            @let (rows, total) = timeline::window(h, &named);
                            details.timeline open[named.len() <= 12] {
                                summary { "Timeline around it (" (rows.len()) " of " (total) " events)" }
                                table.timeline {
                                    thead { tr { th { "#" } th { "ms" } th { "client" } th { "event" } } }
                                    tbody {
                                        @for r in rows {
                                            tr class=(if r.named { "named" } else { "" }) {
                                                td { (r.index) } td { (format!("{:.3}", r.at_ms)) } td { (r.client) } td { (r.text) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        @if let Some(file) = &c.history_file {
                            p.small { "Whole history: " code { (file) } }
                        }
                    }
                }
            }
        }
    }
}

/// Pieces of evidence shown in full per failure; the rest fold away.
const EVIDENCE_SHOWN: usize = 3;

/// One piece of evidence in words, then the events it names in the order they were recorded.
fn why(e: &crate::conformance::Evidence, c: &CaseReport) -> Markup {
    html! {
        div.why {
            p { (e.message) }
            @if let (false, Some(h)) = (e.events.is_empty(), &c.history) {
                p.small { "The events, in the order they were recorded:" }
                ol.events {
                    @for i in &e.events {
                        @if let Some(ev) = h.get(*i) {
                            li { "#" (i) " at " (format!("{:.3}", ev.at_us as f64 / 1000.0)) " ms, client " (ev.client) ": " (timeline::describe(ev)) }
                        }
                    }
                }
            }
        }
    }
}

fn color(i: usize) -> plotters::style::RGBColor {
    charts::PALETTE[i % charts::PALETTE.len()]
}

fn figure(id: &str, caption: &str, svg: Result<String, String>) -> Markup {
    html! {
        figure id=(id) {
            @match svg {
                Ok(svg) => { (PreEscaped(svg)) }
                Err(e) => { p.absent { "The chart could not be drawn: " (e) } }
            }
            figcaption { (caption) }
        }
    }
}

fn latency(report: &Report) -> Markup {
    let loads: Vec<(usize, &Backend, &crate::load::LoadResult)> =
        report.backends.iter().enumerate().filter_map(|(i, b)| b.load.as_ref().map(|l| (i, b, l))).collect();
    let totals: Vec<crate::hist::Hist> = loads.iter().map(|(_, _, l)| l.histograms.total(Metric::Sync)).collect();
    let series: Vec<charts::Series<'_, &crate::hist::Hist>> = loads
        .iter()
        .zip(&totals)
        .map(|((i, b, _), h)| charts::Series { name: &b.name, color: color(*i), points: h })
        .collect();
    let per_second = charts::Lines {
        series: loads
            .iter()
            .map(|(i, b, l)| charts::Series {
                name: &b.name,
                color: color(*i),
                points: l
                    .histograms
                    .per_second(Metric::Sync)
                    .into_iter()
                    .map(|(s, h)| (s as f64, h.quantile(0.95) as f64 / 1000.0))
                    .collect(),
            })
            .collect(),
        x_desc: "seconds since the run started",
        y_desc: "sync P95 in that second (ms)",
        horizontal: vec![],
        vertical: loads
            .first()
            .and_then(|(_, _, l)| l.ramp_s)
            .map(|r| (r, "every client in".to_owned()))
            .into_iter()
            .collect(),
        diagonal: None,
        points: false,
    };
    let summary_cells = |f: &dyn Fn(&crate::load::LoadResult) -> Summary| {
        html! { @for (_, _, l) in &loads { @let s = f(l); td { (ms(s.p50)) " / " (ms(s.p95)) " / " (ms(s.p99)) " / " (ms(s.max)) } } }
    };
    html! {
            section #latency {
                h2 { "Sync latency" }
                @if loads.is_empty() {
                    p.absent { "No load run." }
                } @else {
                    table.figures {
                        thead { tr { th {} @for (_, b, _) in &loads { th.backend data-backend=(b.name) { (b.name) } } } }
                        tbody {
                            tr { th scope="row" { "run" } @for (_, _, l) in &loads { td { (l.scenario) ", " (l.figures.users) " clients, " (format!("{:.0}", l.run_time_s)) " s steady, shards " (l.shards) } } }
                            tr { th scope="row" { "sync p50 / p95 / p99 / max" } (summary_cells(&|l| l.figures.sync_latency_us)) }
                            tr { th scope="row" { "mutation response" } (summary_cells(&|l| l.figures.mutation_latency_us)) }
                            tr { th scope="row" { "mutation visible" } (summary_cells(&|l| l.figures.visible_latency_us)) }
                            tr { th scope="row" { "send lag (load generator)" } (summary_cells(&|l| l.figures.send_lag_us)) }
                            tr { th scope="row" { "echo floor" } (summary_cells(&|l| l.echo.rtt_us)) }
                            tr { th scope="row" { "sync over the floor (p50 · p95)" } @for (_, _, l) in &loads { td { (l.sync_over_echo_p50.map_or("–".into(), |x| format!("{}×", group(x)))) " · " (l.sync_over_echo_p95.map_or("–".into(), |x| format!("{}×", group(x)))) } } }
                            tr { th scope="row" { "writes accepted / sent" } @for (_, _, l) in &loads { td { (group(l.figures.updates_accepted as f64)) " / " (group(l.figures.updates_sent as f64)) } } }
                            tr { th scope="row" { "changes owed / missing" } @for (_, _, l) in &loads { td class=(if l.figures.updates_missing > 0 { "bad" } else { "" }) { (group(l.figures.updates_expected as f64)) " / " (group(l.figures.updates_missing as f64)) } } }
                            tr { th scope="row" { "stale cursor views · errors" } @for (_, _, l) in &loads { td class=(if l.figures.errors + l.figures.stale_views > 0 { "bad" } else { "" }) { (l.figures.stale_views) " · " (l.figures.errors) } } }
                            tr { th scope="row" { "peak memory" } @for (_, _, l) in &loads { td { (format!("{:.0} MiB", l.memory.rss_peak_bytes as f64 / 1048576.0)) } } }
                        }
                    }
    div.pair {
                    (figure("chart-percentiles", "Sync latency by percentile over the steady part of the run (HdrHistogram's log 1/(1−p) axis): every sample, every backend overlaid.", charts::percentiles(&series, Some(CLAIM_P95_US as f64 / 1000.0))))
                    (figure("chart-p95-per-second", "Sync P95 second by second over the whole run, ramp included.", charts::lines(&per_second)))
                    }
                }
            }
        }
}

fn sweep(report: &Report) -> Markup {
    let sweeps: Vec<(usize, &Backend, &crate::load::Sweep)> =
        report.backends.iter().enumerate().filter_map(|(i, b)| b.sweep.as_ref().map(|s| (i, b, s))).collect();
    let limit = sweeps.first().map_or(20.0, |(_, _, s)| s.limit_per_user_s);
    let make = |y: fn(&crate::load::Step) -> f64| -> Vec<charts::Series<'_, Vec<(f64, f64)>>> {
        sweeps
            .iter()
            .map(|(i, b, s)| charts::Series {
                name: &b.name,
                color: color(*i),
                points: s.steps.iter().map(|step| (step.rate_hz, y(step))).collect(),
            })
            .collect()
    };
    let accepted = charts::Lines {
        series: make(|s| s.figures.accepted_per_user_s),
        x_desc: "offered updates per user per second",
        y_desc: "accepted per user per second",
        horizontal: {
            let mut lines = vec![(limit, format!("limit: {limit} per second"))];
            if let Some(allowed) = sweeps.first().and_then(|(_, _, s)| s.allowed_per_user_s()) {
                let step = sweeps.first().map_or(0.0, |(_, _, s)| s.step_run_time_s);
                lines.push((allowed, format!("limit plus one second's burst over {step:.0} s")));
            }
            lines
        },
        vertical: vec![],
        diagonal: Some("offered"),
        points: true,
    };
    let p95 = charts::Lines {
        series: make(|s| s.figures.sync_latency_us.p95 as f64 / 1000.0),
        x_desc: "offered updates per user per second",
        y_desc: "sync P95 (ms)",
        horizontal: vec![],
        vertical: vec![(limit, format!("{limit} Hz"))],
        diagonal: None,
        points: true,
    };
    html! {
        section #sweep {
            h2 { "Rate sweep" }
            @if sweeps.is_empty() {
                p.absent { "No rate sweep." }
            } @else {
                div.pair {
                    (figure("chart-sweep-accepted", "Accepted cursor moves per user per second against the offered rate; above the limit, the rest must be refused with RateLimited.", charts::lines(&accepted)))
                    (figure("chart-sweep-p95", "Sync P95 against the offered rate.", charts::lines(&p95)))
                }
                @for (_, b, s) in &sweeps {
                    table.figures {
                        caption { (b.name) ": " (s.users) " cursor clients, " (format!("{:.0}", s.step_run_time_s)) " s a step" }
                        thead { tr { th { "offered Hz" } th { "attempted / user / s" } th { "accepted / user / s" } th { "RateLimited" } th { "sync p50 / p95 / p99" } th { "errors" } } }
                        tbody {
                            @for step in &s.steps {
                                tr {
                                    td { (step.rate_hz) }
                                    td { (format!("{:.2}", step.figures.attempted_per_user_s)) }
                                    td class=(if s.allowed_per_user_s().is_none_or(|a| step.figures.accepted_per_user_s > a * 1.02) { "bad" } else { "" }) { (format!("{:.2}", step.figures.accepted_per_user_s)) }
                                    td { (group(step.figures.rate_limited as f64)) }
                                    td { (ms(step.figures.sync_latency_us.p50)) " / " (ms(step.figures.sync_latency_us.p95)) " / " (ms(step.figures.sync_latency_us.p99)) }
                                    td { (step.figures.errors) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn model(report: &Report) -> Markup {
    let checks: Vec<(&Backend, &crate::model::ModelCheck)> =
        report.backends.iter().filter_map(|b| b.model.as_ref().map(|m| (b, m))).collect();
    html! {
        section #model {
            h2 { "Model check" }
            @if checks.is_empty() {
                p.absent { "No model check (it explores the reference server's own core, so it runs with the reference)." }
            }
            @for (b, m) in checks {
                p { (b.name) ": " (m.checked() - m.failed()) " of " (m.checked()) " properties hold over " (group(m.unique_states() as f64)) " distinct states"
                    @if !m.faults.is_empty() { " (faults on: " (m.faults.join(", ")) ")" } "." }
                table.figures {
                    thead { tr { th { "configuration" } th { "distinct states" } th { "depth" } th { "time" } th { "properties" } } }
                    tbody {
                        @for c in &m.configurations {
                            tr {
                                td { (c.name) }
                                td { (group(c.unique_states as f64)) }
                                td { (c.max_depth) }
                                td { (group(c.elapsed_ms.round())) " ms" }
                                td class=(if c.passed() { "good" } else { "bad" }) {
                                    (c.properties.iter().filter(|p| p.holds).count()) " of " (c.properties.len()) " hold"
                                }
                            }
                        }
                    }
                }
                @for c in &m.configurations {
                    @for p in c.properties.iter().filter(|p| !p.holds) {
                        article.failure {
                            h3 { (p.expectation.name()) " " (p.name) " " span.on { "fails in " (c.name) } }
                            @match &p.trace {
                                Some(trace) => {
                                    p.small { "Shortest counterexample, " (trace.len()) " steps:" }
                                    ol.trace { @for step in trace { li { code { (step) } } } }
                                }
                                None => { p.small { "No example state was reached." } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn environment(report: &Report) -> Markup {
    html! {
        section #environment {
            h2 { "Environment" }
            table.figures {
                thead { tr { th {} (backend_head(report)) } }
                tbody {
                    tr { th scope="row" { "URL" } @for b in &report.backends { td { code { (b.url) } } } }
                    tr { th scope="row" { "says about itself" } @for b in &report.backends { td { (b.about.as_deref().unwrap_or("nothing (no answer to GET /version)")) } } }
                    tr { th scope="row" { "syncspec" } @for b in &report.backends { td { (b.environment.syncspec_version) } } }
                    tr { th scope="row" { "measured" } @for b in &report.backends { td { (b.environment.date) } } }
                    tr { th scope="row" { "machine" } @for b in &report.backends { td { (b.environment.cores) " cores, " (format!("{:.1} GiB", b.environment.memory_bytes as f64 / 1073741824.0)) ", " (b.environment.os) " (" (b.environment.arch) ")" } } }
                }
            }
        }
    }
}
