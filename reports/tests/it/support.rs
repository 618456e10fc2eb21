//! The fixture every test reads: a `syncspec run` of the reference beside a
//! reference server with `--fault torn-transition` (shortened: 13 cases, a
//! 3 s mix of 100 clients, a 3-step sweep of 10 clients).

use syncspec_reports::report::Report;

pub(crate) const TWO_BACKENDS: &str = include_str!("../data/two_backends.json");

static PARSED: std::sync::LazyLock<Report> =
    std::sync::LazyLock::new(|| Report::parse(TWO_BACKENDS).expect("the fixture is a report"));

pub(crate) fn two_backends() -> Report {
    PARSED.clone()
}
