//! Markdown sized for a pull-request comment: the verdict per backend, the
//! cases whose outcome differs between backends (or that failed), and the
//! load figures side by side. No charts; the HTML report has them.

use std::fmt::Write as _;

use crate::assessment::{ms, Assessment, Mark};
use crate::conformance::Outcome;
use crate::report::Report;

/// Evidence shown per differing case, at most this many characters.
const EVIDENCE_CHARS: usize = 160;

/// The report as Markdown.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let names: Vec<&str> = report.backends.iter().map(|b| b.name.as_str()).collect();
    let _ = writeln!(out, "## syncspec: {}\n", names.join(" · "));
    if report.backends.is_empty() {
        out.push_str("The report has no backend.\n");
        return out;
    }
    let verdicts: Vec<Assessment> = report.backends.iter().map(Assessment::of).collect();
    row(&mut out, "", names.iter().map(|n| format!("**{n}**")));
    row(&mut out, "---", names.iter().map(|_| "---".to_owned()));
    row(&mut out, "Correct?", verdicts.iter().map(|v| cell(v.conformance, &v.conformance_text)));
    row(&mut out, "Sync latency (claim: P95 < 100 ms)", verdicts.iter().map(|v| cell(v.latency, &v.latency_text)));
    row(&mut out, "Highest accepted rate", verdicts.iter().map(|v| cell(v.rate, &v.rate_text)));
    row(&mut out, "Model check", verdicts.iter().map(|v| cell(v.model, &v.model_text)));
    if report.backends.iter().any(|b| !b.problems.is_empty()) {
        row(&mut out, "Could not run", report.backends.iter().map(|b| escape(&b.problems.join("; "))));
    }

    // Cases that differ between backends, or failed anywhere.
    let mut ids: Vec<&str> = Vec::new();
    for b in &report.backends {
        for c in b.conformance.iter().flat_map(|c| &c.cases) {
            if !ids.contains(&c.id.as_str()) {
                ids.push(&c.id);
            }
        }
    }
    let differing: Vec<&str> = ids
        .into_iter()
        .filter(|id| {
            // Only the backends whose suite ran are compared.
            let outcomes: Vec<Option<Outcome>> = report
                .backends
                .iter()
                .filter_map(|b| b.conformance.as_ref())
                .map(|c| c.case(id).map(|c| c.outcome))
                .collect();
            outcomes.contains(&Some(Outcome::Fail)) || outcomes.windows(2).any(|w| w[0] != w[1])
        })
        .collect();
    if !differing.is_empty() {
        let _ = writeln!(out, "\n### Cases that differ or failed\n");
        row(&mut out, "case", names.iter().map(|n| (*n).to_owned()));
        row(&mut out, "---", names.iter().map(|_| "---".to_owned()));
        for id in differing {
            let title = report
                .backends
                .iter()
                .find_map(|b| b.conformance.as_ref().and_then(|c| c.case(id)))
                .map_or("", |c| c.title.as_str());
            row(
                &mut out,
                &format!("{id} {}", escape(title)),
                report.backends.iter().map(|b| match b.conformance.as_ref().and_then(|c| c.case(id)) {
                    Some(c) if c.outcome == Outcome::Fail => {
                        let why = c.evidence.first().map_or(String::new(), |e| shorten(&e.message));
                        format!("❌ FAIL: {}", code(&why))
                    }
                    Some(c) => c.outcome.label().to_owned(),
                    None => "not run".to_owned(),
                }),
            );
        }
    }

    if report.backends.iter().any(|b| b.load.is_some()) {
        let _ = writeln!(out, "\n### Load\n");
        row(&mut out, "", names.iter().map(|n| (*n).to_owned()));
        row(&mut out, "---", names.iter().map(|_| "---".to_owned()));
        let load = |f: &dyn Fn(&crate::load::LoadResult) -> String| {
            report.backends.iter().map(move |b| b.load.as_ref().map_or("–".to_owned(), f)).collect::<Vec<_>>()
        };
        row(
            &mut out,
            "scenario",
            load(&|l| format!("{} · {} users · {:.0} s", l.scenario, l.figures.users, l.run_time_s)),
        );
        let s = |x: &crate::hist::Summary| format!("{} / {} / {}", ms(x.p50), ms(x.p95), ms(x.p99));
        row(&mut out, "sync p50 / p95 / p99", load(&|l| s(&l.figures.sync_latency_us)));
        row(&mut out, "mutation p50 / p95 / p99", load(&|l| s(&l.figures.mutation_latency_us)));
        row(
            &mut out,
            "echo floor p50 / p95",
            load(&|l| format!("{} / {}", ms(l.echo.rtt_us.p50), ms(l.echo.rtt_us.p95))),
        );
        row(
            &mut out,
            "sync over the floor at p95",
            load(&|l| l.sync_over_echo_p95.map_or("–".to_owned(), |x| format!("{x}×"))),
        );
        row(
            &mut out,
            "writes accepted / sent",
            load(&|l| format!("{} / {}", l.figures.updates_accepted, l.figures.updates_sent)),
        );
        row(
            &mut out,
            "errors · missing · stale",
            load(&|l| format!("{} · {} · {}", l.figures.errors, l.figures.updates_missing, l.figures.stale_views)),
        );
    }
    out.push_str("\n<sub>syncspec report · the full HTML report has the evidence, timelines and charts</sub>\n");
    out
}

fn cell(mark: Mark, text: &str) -> String {
    let icon = match mark {
        Mark::Good => "✅ ",
        Mark::Bad => "❌ ",
        Mark::Absent => "",
    };
    format!("{icon}{}", escape(text))
}

fn row(out: &mut String, first: &str, rest: impl IntoIterator<Item = String>) {
    let cells: Vec<String> = rest.into_iter().collect();
    let _ = writeln!(out, "| {first} | {} |", cells.join(" | "));
}

fn escape(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// Text a backend chose (evidence quotes its answers) as an inline code
/// span, so a pull-request comment renders no link, image or markup from it.
fn code(text: &str) -> String {
    let text = text.replace('\n', " ").replace('|', "\\|");
    let ticks = "`".repeat(longest_run(&text, '`') + 1);
    format!("{ticks} {text} {ticks}")
}

fn longest_run(text: &str, c: char) -> usize {
    text.split(|x| x != c).map(str::len).max().unwrap_or(0)
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= EVIDENCE_CHARS {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(EVIDENCE_CHARS).collect();
        format!("{cut}…")
    }
}
