//! The verdict per backend, the first thing every renderer shows: is it
//! correct (the suite, the model check) and how fast is it (P95 sync latency
//! against the 100 ms Convex claim and over the echo floor, the highest
//! accepted rate per user). Worked out here once, so the HTML and Markdown
//! reports cannot disagree.

use crate::report::Backend;

/// Convex's published claim: P95 sync latency under 100 ms.
pub(crate) const CLAIM_P95_US: u64 = 100_000;

/// How one part of a verdict came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// Good.
    Good,
    /// Bad.
    Bad,
    /// Not measured for this backend.
    Absent,
}

/// One backend's verdict, as figures and marks.
#[derive(Clone, Debug, PartialEq)]
pub struct Assessment {
    /// Conformance: good when no case failed.
    pub conformance: Mark,
    /// `70 passed, 2 unimplemented, 0 failed` or why it is absent.
    pub conformance_text: String,
    /// The failed case ids.
    pub failed_cases: Vec<String>,
    /// Latency: good when the P95 is under the claim and the run saw no errors and lost nothing.
    pub latency: Mark,
    /// `P95 24.9 ms (251× the echo floor)`.
    pub latency_text: String,
    /// Rate: good when the highest accepted rate stays within what the limit allows over a step (2% slack).
    pub rate: Mark,
    /// `20.5 accepted per user per second`.
    pub rate_text: String,
    /// Model check: good when every property held.
    pub model: Mark,
    /// `12 of 12 properties hold over 109,216 states`.
    pub model_text: String,
}

impl Assessment {
    /// The verdict of one backend.
    pub fn of(b: &Backend) -> Assessment {
        let (conformance, conformance_text, failed_cases) = match &b.conformance {
            Some(c) => (
                if c.failed == 0 { Mark::Good } else { Mark::Bad },
                c.summary(),
                c.cases
                    .iter()
                    .filter(|c| c.outcome == crate::conformance::Outcome::Fail)
                    .map(|c| c.id.clone())
                    .collect(),
            ),
            None => (Mark::Absent, "not run".to_owned(), Vec::new()),
        };
        let (latency, latency_text) = match &b.load {
            Some(l) if l.figures.sync_latency_us.count > 0 => {
                let p95 = l.figures.sync_latency_us.p95;
                let losses = l.figures.errors + l.figures.updates_missing + l.figures.stale_views;
                let mark = if p95 < CLAIM_P95_US && losses == 0 { Mark::Good } else { Mark::Bad };
                let over = l.sync_over_echo_p95.map_or(String::new(), |x| format!(", {}× the echo floor", group(x)));
                let lost = if losses > 0 {
                    format!(
                        "; {} errors, {} updates missing, {} stale views",
                        l.figures.errors, l.figures.updates_missing, l.figures.stale_views
                    )
                } else {
                    String::new()
                };
                (mark, format!("P95 {}{over}{lost}", ms(p95)))
            }
            Some(_) => (Mark::Bad, "no sync sample was measured".to_owned()),
            None => (Mark::Absent, "not run".to_owned()),
        };
        let (rate, rate_text) = match &b.sweep {
            Some(s) => rate(s),
            None => (Mark::Absent, "not run".to_owned()),
        };
        let (model, model_text) = match &b.model {
            Some(m) => (
                if m.failed() == 0 && m.checked() > 0 { Mark::Good } else { Mark::Bad },
                format!(
                    "{} of {} properties hold over {} states",
                    m.checked() - m.failed(),
                    m.checked(),
                    group(m.unique_states() as f64)
                ),
            ),
            None if b.reference => (Mark::Absent, "not run".to_owned()),
            None => (Mark::Absent, "not applicable (the model checks the reference core)".to_owned()),
        };
        Assessment {
            conformance,
            conformance_text,
            failed_cases,
            latency,
            latency_text,
            rate,
            rate_text,
            model,
            model_text,
        }
    }
}

/// The sweep's verdict: good when no step accepted more than the limit
/// allows over a step (2% slack), every step offered at or under the limit
/// had at least 90% of its writes accepted (a backend that accepts nothing is
/// not keeping a rate limit), and nothing errored.
fn rate(s: &crate::load::Sweep) -> (Mark, String) {
    let (Some(highest), Some(allowed)) = (s.highest_accepted(), s.allowed_per_user_s()) else {
        return (Mark::Bad, "the sweep has no step with a length".to_owned());
    };
    let starved = s
        .steps
        .iter()
        .find(|step| step.rate_hz <= s.limit_per_user_s && step.figures.accepted_per_user_s < 0.9 * step.rate_hz);
    let errors: u64 = s.steps.iter().map(|step| step.figures.errors).sum();
    let allowance = format!(
        "{}/s plus a one-second burst allows {allowed:.1} over {:.0} s steps",
        s.limit_per_user_s, s.step_run_time_s
    );
    if let Some(step) = starved {
        let text = format!(
            "refuses writes under the limit: {:.2} of {} offered per user per second accepted",
            step.figures.accepted_per_user_s, step.rate_hz
        );
        (Mark::Bad, text)
    } else if errors > 0 {
        (Mark::Bad, format!("{errors} errors over the sweep; highest {highest:.2} accepted per user per second"))
    } else if highest <= allowed * 1.02 {
        (Mark::Good, format!("within the allowance: highest {highest:.2} accepted per user per second ({allowance})"))
    } else {
        (Mark::Bad, format!("over the allowance: {highest:.2} accepted per user per second ({allowance})"))
    }
}

/// Microseconds as milliseconds for people: `24.9 ms`, `1.25 ms`, `0.086 ms`.
pub fn ms(us: u64) -> String {
    let ms = us as f64 / 1000.0;
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else if ms >= 1.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.3} ms")
    }
}

/// A number with thousands separators, to at most one decimal: `109,216`, `251.1`.
pub fn group(x: f64) -> String {
    let whole = x.trunc() as u64;
    let mut digits = whole.to_string();
    let mut i = digits.len() as isize - 3;
    while i > 0 {
        digits.insert(i as usize, ',');
        i -= 3;
    }
    let tenth = ((x - x.trunc()) * 10.0).round() as u64;
    match tenth {
        0 => digits,
        10 => group(x.trunc() + 1.0),
        t => format!("{digits}.{t}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(group(109_216.0), "109,216");
        assert_eq!(group(251.14), "251.1");
        assert_eq!(group(999.97), "1,000");
        assert_eq!(ms(24_912), "24.9 ms");
        assert_eq!(ms(2_100), "2.10 ms");
        assert_eq!(ms(86), "0.086 ms");
        assert_eq!(ms(138_100), "138 ms");
    }
}
