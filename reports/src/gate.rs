//! `syncspec gate`: threshold rules over a report (`sync.p95<50ms`,
//! `conformance.failed==0`), and a regression check against a baseline
//! report judged on ratios to each run's own echo floor (absolute times are
//! noise on shared machines) and on counts that must not rise.
//!
//! A rule whose metric the report does not hold fails: a gate that cannot
//! see what it guards must not pass. In a report of several backends a rule
//! holds only where it holds for every backend, unless one is named.

use std::fmt;

use crate::assessment::{group, ms};
use crate::conformance::Outcome;
use crate::load::{LoadResult, Metric};
use crate::report::{Backend, Report};

/// A comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl Op {
    fn holds(self, observed: f64, limit: f64) -> bool {
        match self {
            Op::Lt => observed < limit,
            Op::Le => observed <= limit,
            Op::Gt => observed > limit,
            Op::Ge => observed >= limit,
            Op::Eq => observed == limit,
            Op::Ne => observed != limit,
        }
    }
}

/// What kind of quantity a metric is, which decides its units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantity {
    /// Microseconds; written with `us`, `µs`, `ms` or `s` (a bare number is milliseconds, as in k6).
    Latency,
    /// A count; a bare number.
    Count,
    /// A rate or ratio; a bare number (`x` allowed after a ratio).
    Number,
}

/// One threshold rule, parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    /// The rule as written.
    pub text: String,
    /// The metric's path (`sync.p95`, `chat.errors`).
    pub metric: String,
    /// The comparison.
    pub op: Op,
    /// The limit, in the metric's base unit (µs for latencies).
    pub limit: f64,
    quantity: Quantity,
}

/// A rule that could not be read, with where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// The rule as written.
    pub expr: String,
    /// Column (0-based, in characters) where the problem starts.
    pub at: usize,
    /// How many characters it spans (at least 1).
    pub len: usize,
    /// What was expected and what came.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "bad threshold at column {}: {}", self.at + 1, self.message)?;
        writeln!(f, "  {}", self.expr)?;
        write!(f, "  {}{}", " ".repeat(self.at), "^".repeat(self.len.max(1)))
    }
}

const STATS: [&str; 6] = ["p50", "p95", "p99", "max", "mean", "count"];
const COUNTERS: [&str; 13] = [
    "errors",
    "updates_sent",
    "updates_accepted",
    "updates_received",
    "updates_expected",
    "updates_missing",
    "stale_views",
    "rate_limited",
    "departures_seen",
    "accepted_per_user",
    "attempted_per_user",
    "users",
    "users_ready",
];
const KINDS: [&str; 6] = ["chat", "presence", "cursors", "stream", "history", "reply"];
const CONFORMANCE: [&str; 6] = ["failed", "passed", "non_strict", "unimplemented", "info", "cases"];
const SWEEP: [&str; 5] = ["accepted_per_user", "attempted_per_user", "rate_limited", "errors", "sync.p95"];
const MODEL: [&str; 3] = ["failed", "properties", "states"];

/// Reads one rule, e.g. `sync.p95<50ms`, `conformance.failed==0`, `sweep.accepted_per_user<=20.5`.
pub fn parse(expr: &str) -> Result<Threshold, ParseError> {
    let err = |at: usize, len: usize, message: String| ParseError { expr: expr.to_owned(), at, len, message };
    let chars: Vec<char> = expr.chars().collect();
    let Some(op_at) = chars.iter().position(|c| matches!(c, '<' | '>' | '=' | '!')) else {
        return Err(err(
            chars.len(),
            1,
            "expected a comparison (<, <=, >, >=, ==, !=) after the metric, as in sync.p95<50ms".into(),
        ));
    };
    let two: String = chars[op_at..chars.len().min(op_at + 2)].iter().collect();
    let (op, op_len) = match two.as_str() {
        "<=" => (Op::Le, 2),
        ">=" => (Op::Ge, 2),
        "==" => (Op::Eq, 2),
        "!=" => (Op::Ne, 2),
        _ => match chars[op_at] {
            '<' => (Op::Lt, 1),
            '>' => (Op::Gt, 1),
            '=' => return Err(err(op_at, 1, "expected == for equality, got a single =".into())),
            _ => return Err(err(op_at, 1, "expected != after !".into())),
        },
    };
    let left: String = chars[..op_at].iter().collect();
    let metric = left.trim().to_owned();
    let metric_at = left.len() - left.trim_start().len();
    let metric_at = chars[..op_at].iter().take_while(|c| c.is_whitespace()).count().min(metric_at);
    if metric.is_empty() {
        return Err(err(0, op_at.max(1), "expected a metric before the comparison, as in sync.p95".into()));
    }
    let quantity = quantity_of(&metric).map_err(|(offset, len, message)| err(metric_at + offset, len, message))?;

    let right_at = op_at + op_len;
    let right: String = chars[right_at..].iter().collect();
    let value_at = right_at + right.chars().take_while(|c| c.is_whitespace()).count();
    let value = right.trim();
    if value.is_empty() {
        return Err(err(chars.len(), 1, "expected a number after the comparison".into()));
    }
    let split = value.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+')).unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let n: f64 =
        number.parse().ok().filter(|n: &f64| n.is_finite()).ok_or_else(|| {
            err(value_at, number.chars().count().max(1), format!("expected a number, got {number:?}"))
        })?;
    let unit_at = value_at + number.chars().count();
    let unit = unit.trim();
    let limit = match (quantity, unit) {
        (Quantity::Latency, "" | "ms") => n * 1000.0,
        (Quantity::Latency, "us" | "µs") => n,
        (Quantity::Latency, "s") => n * 1e6,
        (Quantity::Latency, other) => {
            return Err(err(unit_at, other.chars().count(), format!("expected a time unit (us, ms, s), got {other:?}")))
        }
        (Quantity::Number, "" | "x" | "×") => n,
        (Quantity::Count, "") => n,
        (_, other) => {
            return Err(err(
                unit_at,
                other.chars().count(),
                format!("{metric} is a plain number and takes no unit, got {other:?}"),
            ))
        }
    };
    if limit < 0.0 {
        return Err(err(value_at, number.chars().count().max(1), format!("{metric} is never negative; got {number}")));
    }
    if quantity == Quantity::Count && limit.fract() != 0.0 {
        return Err(err(value_at, number.chars().count().max(1), format!("{metric} is a count; got {number}")));
    }
    Ok(Threshold { text: expr.trim().to_owned(), metric, op, limit, quantity })
}

/// The kind of quantity a metric path names, or where the path goes wrong.
fn quantity_of(path: &str) -> Result<Quantity, (usize, usize, String)> {
    let parts: Vec<&str> = path.split('.').collect();
    let offset_of = |i: usize| parts[..i].iter().map(|p| p.chars().count() + 1).sum::<usize>();
    let unknown = |i: usize, expected: &str| {
        (offset_of(i), parts[i].chars().count().max(1), format!("unknown {:?}; expected {expected}", parts[i]))
    };
    let stat = |i: usize| -> Result<Quantity, (usize, usize, String)> {
        match parts.get(i) {
            Some(&"count") if parts.len() == i + 1 => Ok(Quantity::Count),
            Some(s) if STATS.contains(s) && parts.len() == i + 1 => Ok(Quantity::Latency),
            Some(_) if parts.len() == i + 1 => Err(unknown(i, &format!("a statistic: {}", STATS.join(", ")))),
            Some(_) => Err(unknown(i + 1, "nothing after the statistic")),
            None => Err((path.chars().count(), 1, format!("expected a statistic after the dot: {}", STATS.join(", ")))),
        }
    };
    let load_metric = |i: usize| -> Result<Quantity, (usize, usize, String)> {
        let Some(first) = parts.get(i) else {
            return Err((path.chars().count(), 1, "expected a metric after the kind".into()));
        };
        if Metric::from_name(first).is_some() || *first == "echo" {
            return stat(i + 1);
        }
        if COUNTERS.contains(first) {
            if parts.len() > i + 1 {
                return Err(unknown(i + 1, "nothing after a counter"));
            }
            return Ok(if first.ends_with("per_user") { Quantity::Number } else { Quantity::Count });
        }
        Err(unknown(
            i,
            &format!(
                "a latency (sync, mutation, visible, send_lag, page, action, echo) with a statistic, or a counter ({})",
                COUNTERS.join(", ")
            ),
        ))
    };
    let rest = |i: usize| parts[i..].join(".");
    match parts[0] {
        "conformance" => match parts.get(1) {
            Some(p) if CONFORMANCE.contains(p) && parts.len() == 2 => Ok(Quantity::Count),
            _ if parts.len() < 2 => {
                Err((path.chars().count(), 1, format!("expected conformance.{}", CONFORMANCE.join("|"))))
            }
            _ => Err(unknown(1, &CONFORMANCE.join(", "))),
        },
        "sweep" => match rest(1).as_str() {
            "sync.p95" => Ok(Quantity::Latency),
            "rate_limited" | "errors" => Ok(Quantity::Count),
            "accepted_per_user" | "attempted_per_user" => Ok(Quantity::Number),
            _ if parts.len() < 2 => Err((path.chars().count(), 1, format!("expected sweep.{}", SWEEP.join("|")))),
            _ => Err(unknown(1, &SWEEP.join(", "))),
        },
        "model" => match parts.get(1) {
            Some(p) if MODEL.contains(p) && parts.len() == 2 => Ok(Quantity::Count),
            _ if parts.len() < 2 => Err((path.chars().count(), 1, format!("expected model.{}", MODEL.join("|")))),
            _ => Err(unknown(1, &MODEL.join(", "))),
        },
        "sync_over_echo" => match parts.get(1) {
            Some(&"p50" | &"p95") if parts.len() == 2 => Ok(Quantity::Number),
            _ => Err(unknown(1.min(parts.len() - 1), "p50 or p95")),
        },
        k if KINDS.contains(&k) => load_metric(1),
        _ => load_metric(0).map_err(|(at, len, message)| {
            if at == 0 {
                (
                    at,
                    len,
                    format!(
                        "{message}; or conformance.*, sweep.*, model.*, sync_over_echo.*, or a kind ({})",
                        KINDS.join(", ")
                    ),
                )
            } else {
                (at, len, message)
            }
        }),
    }
}

/// A value a rule observed, in the metric's base unit.
fn observe(backend: &Backend, metric: &str) -> Option<f64> {
    let parts: Vec<&str> = metric.split('.').collect();
    match parts[0] {
        "conformance" => {
            let c = backend.conformance.as_ref()?;
            Some(match parts[1] {
                "failed" => c.failed,
                "passed" => c.passed,
                "non_strict" => c.count(Outcome::NonStrict),
                "unimplemented" => c.count(Outcome::Unimplemented),
                "info" => c.count(Outcome::Info),
                _ => c.cases.len(),
            } as f64)
        }
        "sweep" => {
            let s = backend.sweep.as_ref()?;
            let steps = s.steps.iter().map(|s| &s.figures);
            match parts[1..].join(".").as_str() {
                "accepted_per_user" => steps.map(|f| f.accepted_per_user_s).reduce(f64::max),
                "attempted_per_user" => steps.map(|f| f.attempted_per_user_s).reduce(f64::max),
                "rate_limited" => Some(steps.map(|f| f.rate_limited).sum::<u64>() as f64),
                "errors" => Some(steps.map(|f| f.errors).sum::<u64>() as f64),
                _ => steps.map(|f| f.sync_latency_us.p95 as f64).reduce(f64::max),
            }
        }
        "model" => {
            let m = backend.model.as_ref()?;
            Some(match parts[1] {
                "failed" => m.failed(),
                "properties" => m.checked(),
                _ => m.unique_states(),
            } as f64)
        }
        "sync_over_echo" => {
            let l = backend.load.as_ref()?;
            if parts[1] == "p50" {
                l.sync_over_echo_p50
            } else {
                l.sync_over_echo_p95
            }
        }
        k if KINDS.contains(&k) => {
            let l = backend.load.as_ref()?;
            let kind = l.kinds.get(k)?;
            load_value(l, &kind.figures, &parts[1..])
        }
        _ => {
            let l = backend.load.as_ref()?;
            load_value(l, &l.figures, &parts)
        }
    }
}

fn load_value(l: &LoadResult, f: &crate::load::Figures, parts: &[&str]) -> Option<f64> {
    let summary = match parts[0] {
        "echo" => Some(&l.echo.rtt_us),
        name => Metric::from_name(name).map(|m| f.latency(m)),
    };
    if let Some(s) = summary {
        if s.count == 0 && parts[1] != "count" {
            return None;
        }
        return Some(match parts[1] {
            "p50" => s.p50 as f64,
            "p95" => s.p95 as f64,
            "p99" => s.p99 as f64,
            "max" => s.max as f64,
            "mean" => s.mean,
            _ => s.count as f64,
        });
    }
    Some(match parts[0] {
        "errors" => f.errors as f64,
        "updates_sent" => f.updates_sent as f64,
        "updates_accepted" => f.updates_accepted as f64,
        "updates_received" => f.updates_received as f64,
        "updates_expected" => f.updates_expected as f64,
        "updates_missing" => f.updates_missing as f64,
        "stale_views" => f.stale_views as f64,
        "rate_limited" => f.rate_limited as f64,
        "departures_seen" => f.departures_seen as f64,
        "accepted_per_user" => f.accepted_per_user_s,
        "attempted_per_user" => f.attempted_per_user_s,
        "users" => f.users as f64,
        _ => l.users_ready as f64,
    })
}

/// One rule's outcome over the backends it was judged on.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleResult {
    /// The rule as shown (`sync.p95<50ms`, `regression: sync.p95 over the echo floor`).
    pub rule: String,
    /// Whether it held for every backend judged.
    pub passed: bool,
    /// Per backend: its name and what was observed, in words (`p95=24.9ms`).
    pub observed: Vec<(String, String)>,
}

/// Which backends a gate judges: one named, or all.
fn judged<'r>(report: &'r Report, backend: Option<&str>) -> Result<Vec<&'r Backend>, String> {
    match backend {
        Some(name) => report.backend(name).map(|b| vec![b]).ok_or_else(|| {
            let names: Vec<&str> = report.backends.iter().map(|b| b.name.as_str()).collect();
            format!("no backend named {name:?} in the report; it has {}", names.join(", "))
        }),
        None if report.backends.is_empty() => Err("the report has no backend".into()),
        None => Ok(report.backends.iter().collect()),
    }
}

/// Judges each threshold on each backend (or the one named).
pub fn evaluate(report: &Report, thresholds: &[Threshold], backend: Option<&str>) -> Result<Vec<RuleResult>, String> {
    let backends = judged(report, backend)?;
    Ok(thresholds
        .iter()
        .map(|t| {
            let mut passed = true;
            let observed = backends
                .iter()
                .map(|b| {
                    let shown = match observe(b, &t.metric) {
                        Some(v) => {
                            passed &= t.op.holds(v, t.limit);
                            format!("{}={}", t.metric.rsplit('.').next().unwrap_or(&t.metric), show(t.quantity, v))
                        }
                        None => {
                            passed = false;
                            format!("{} not measured", t.metric)
                        }
                    };
                    (b.name.clone(), shown)
                })
                .collect();
            RuleResult { rule: t.text.clone(), passed, observed }
        })
        .collect())
}

fn show(q: Quantity, v: f64) -> String {
    match q {
        Quantity::Latency => ms(v.round() as u64).replace(' ', ""),
        Quantity::Count => group(v),
        Quantity::Number => format!("{v:.2}"),
    }
}

/// Regression rules: each backend of `report` against the backend of the
/// same name in `baseline` (or, when both hold one backend, against that one).
/// Latencies are judged as multiples of the echo floor measured in the same
/// run, allowed to grow by `max_regression` (0.10 for 10%); failure counts
/// must not rise at all.
pub fn regression(
    report: &Report,
    baseline: &Report,
    max_regression: f64,
    backend: Option<&str>,
) -> Result<Vec<RuleResult>, String> {
    let backends = judged(report, backend)?;
    let mut rules: Vec<RuleResult> = Vec::new();
    let mut push =
        |rule: String, name: &str, passed: bool, text: String| match rules.iter_mut().find(|r| r.rule == rule) {
            Some(r) => {
                r.passed &= passed;
                r.observed.push((name.to_owned(), text));
            }
            None => rules.push(RuleResult { rule, passed, observed: vec![(name.to_owned(), text)] }),
        };
    for b in backends {
        // The same column, or the one column of a one-column baseline for a one-column result.
        let base = baseline.backend(&b.name).or(match (baseline.backends.as_slice(), report.backends.len()) {
            ([only], 1) => Some(only),
            _ => None,
        });
        let Some(base) = base else {
            let names: Vec<&str> = baseline.backends.iter().map(|b| b.name.as_str()).collect();
            let text = format!("no backend {:?} in the baseline; it has {}", b.name, names.join(", "));
            push("regression: the baseline has this backend".into(), &b.name, false, text);
            continue;
        };
        for (metric, stat) in [("sync", "p50"), ("sync", "p95"), ("sync", "p99"), ("mutation", "p95")] {
            let rule = format!("regression: {metric}.{stat} over the echo floor");
            // A floor of 0 µs is not a measurement: no ratio.
            let ratio = |x: &Backend| -> Option<f64> {
                let echo = observe(x, &format!("echo.{stat}")).filter(|e| *e > 0.0)?;
                Some(observe(x, &format!("{metric}.{stat}"))? / echo)
            };
            match (ratio(base), ratio(b)) {
                (Some(before), Some(now)) if before > 0.0 => {
                    let change = now / before - 1.0;
                    push(
                        rule,
                        &b.name,
                        change <= max_regression,
                        format!(
                            "{}× → {}× ({:+.1}%, allowed +{:.0}%)",
                            group(before),
                            group(now),
                            change * 100.0,
                            max_regression * 100.0
                        ),
                    );
                }
                (Some(_), None) => push(rule, &b.name, false, "measured in the baseline, not now".into()),
                _ => {}
            }
        }
        for metric in ["conformance.failed", "model.failed", "errors", "updates_missing", "stale_views", "sweep.errors"]
        {
            let rule = format!("regression: {metric} does not rise");
            match (observe(base, metric), observe(b, metric)) {
                (Some(before), Some(now)) => {
                    push(rule, &b.name, now <= before, format!("{} → {}", group(before), group(now)));
                }
                (Some(_), None) => push(rule, &b.name, false, "measured in the baseline, not now".into()),
                (None, _) => {}
            }
        }
        let rule = "regression: sweep.accepted_per_user within the allowance".to_owned();
        if let (Some(before), Some(now)) =
            (observe(base, "sweep.accepted_per_user"), observe(b, "sweep.accepted_per_user"))
        {
            if before > 0.0 {
                let change = now / before - 1.0;
                let text = format!(
                    "{before:.2} → {now:.2} ({:+.1}%, allowed ±{:.0}%)",
                    change * 100.0,
                    max_regression * 100.0
                );
                push(rule, &b.name, change.abs() <= max_regression, text);
            } else {
                push(rule, &b.name, now == 0.0, format!("{before:.2} → {now:.2} (the baseline accepted nothing)"));
            }
        }
    }
    // A regression check that found nothing to compare must not pass.
    if rules.is_empty() {
        rules.push(RuleResult {
            rule: "regression: the baseline and the result share a measurement".into(),
            passed: false,
            observed: vec![("".into(), "nothing to compare (different phases?)".into())],
        });
    }
    Ok(rules)
}

/// Reads `10%` or `0.1` as a fraction.
pub fn parse_fraction(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let (number, scale) = match t.strip_suffix('%') {
        Some(n) => (n, 100.0),
        None => (t, 1.0),
    };
    match number.trim().parse::<f64>() {
        Ok(x) if scale == 1.0 && x > 1.0 => {
            Err(format!("{text} would allow {}% worse; did you mean {text}%?", x * 100.0))
        }
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x / scale),
        _ => Err(format!("expected a regression allowance like 10% or 0.1, got {text:?}")),
    }
}

/// The rules as k6 prints its checks: `✓ sync.p95<50ms  p95=24.9ms`.
pub fn render(results: &[RuleResult]) -> String {
    let width = results.iter().map(|r| r.rule.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for r in results {
        let mark = if r.passed { '✓' } else { '✗' };
        let observed = match r.observed.as_slice() {
            [(_, only)] => only.clone(),
            many => many.iter().map(|(name, o)| format!("{name}: {o}")).collect::<Vec<_>>().join(" · "),
        };
        out.push_str(&format!("{mark} {:<width$}  {observed}\n", r.rule));
    }
    let failed = results.iter().filter(|r| !r.passed).count();
    out.push_str(&format!("{} passed, {} failed\n", results.len() - failed, failed));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_into_base_units() {
        let t = parse("sync.p95<50ms").unwrap();
        assert_eq!((t.metric.as_str(), t.op, t.limit), ("sync.p95", Op::Lt, 50_000.0));
        assert_eq!(parse("mutation.p99 <= 100").unwrap().limit, 100_000.0);
        assert_eq!(parse("chat.sync.p50<1.5s").unwrap().limit, 1_500_000.0);
        assert_eq!(parse("errors==0").unwrap().op, Op::Eq);
        assert_eq!(parse("sweep.accepted_per_user<=20.5").unwrap().limit, 20.5);
        assert_eq!(parse("conformance.failed==0").unwrap().limit, 0.0);
        assert_eq!(parse("sync_over_echo.p95<300x").unwrap().limit, 300.0);
    }

    #[test]
    fn bad_rules_say_where() {
        let e = parse("sync.p9<50ms").unwrap_err();
        assert_eq!((e.at, e.len), (5, 2), "{e}");
        assert!(e.message.contains("p50, p95"), "{e}");
        let e = parse("sync.p95<50parsecs").unwrap_err();
        assert_eq!(e.at, 11, "{e}");
        let e = parse("errors=0").unwrap_err();
        assert_eq!(e.at, 6, "{e}");
        let e = parse("errors==0ms").unwrap_err();
        assert!(e.message.contains("takes no unit"), "{e}");
        let e = parse("latency.p95<5").unwrap_err();
        assert_eq!(e.at, 0, "{e}");
        let e = parse("sync.p95").unwrap_err();
        assert_eq!(e.at, 8, "{e}");
        let e = parse("sync.p95<-5ms").unwrap_err();
        assert!(e.message.contains("never negative"), "{e}");
        let e = parse("conformance.failed==0.5").unwrap_err();
        assert!(e.message.contains("is a count"), "{e}");
        let e = parse("conformance.broken==0").unwrap_err();
        assert_eq!(e.at, 12, "{e}");
        assert_eq!(e.to_string().lines().nth(2), Some("              ^^^^^^"));
    }

    #[test]
    fn fractions() {
        assert_eq!(parse_fraction("10%"), Ok(0.1));
        assert_eq!(parse_fraction("0.25"), Ok(0.25));
        assert!(parse_fraction("ten").is_err());
        assert!(parse_fraction("10").unwrap_err().contains("did you mean 10%"));
        assert!(parse_fraction("-5%").is_err());
    }
}
