//! JUnit XML (through `quick-junit`): one test suite per backend with one
//! test case per conformance case, and a `gate` suite with one test case per
//! gate rule, so any CI system's test view shows what failed by name.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Report as JunitReport, TestCase, TestCaseStatus, TestSuite};

use crate::conformance::Outcome;
use crate::gate::RuleResult;
use crate::report::Report;

/// The conformance cases of every backend, and the gate's rules when given, as JUnit XML.
pub fn render(report: &Report, gate: Option<&[RuleResult]>) -> String {
    let mut junit = JunitReport::new("syncspec");
    for backend in &report.backends {
        let Some(conformance) = &backend.conformance else { continue };
        let mut suite = TestSuite::new(format!("conformance: {}", backend.name));
        for case in &conformance.cases {
            let status = match case.outcome {
                Outcome::Pass | Outcome::NonStrict | Outcome::Info => TestCaseStatus::success(),
                Outcome::Fail => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message(case.evidence.first().map_or("failed", |e| e.message.as_str()));
                    s.set_type(case.guarantee.as_str());
                    let lines: Vec<&str> = case.evidence.iter().map(|e| e.message.as_str()).collect();
                    s.set_description(lines.join("\n"));
                    s
                }
                Outcome::Unimplemented => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(case.evidence.first().map_or("unimplemented", |e| e.message.as_str()));
                    s
                }
            };
            let mut test = TestCase::new(format!("{} {}", case.id, case.title), status);
            // CI tools split a class name on dots into packages: no dots from a host name.
            test.set_classname(format!("syncspec.conformance.{}", backend.slug()));
            test.set_time(Duration::from_millis(case.duration_ms));
            if matches!(case.outcome, Outcome::NonStrict | Outcome::Info) {
                let notes: Vec<&str> = case.evidence.iter().map(|e| e.message.as_str()).collect();
                test.set_system_out(format!("{}: {}", case.outcome.label(), notes.join("; ")));
            }
            suite.add_test_case(test);
        }
        junit.add_test_suite(suite);
    }
    if let Some(rules) = gate {
        let mut suite = TestSuite::new("gate");
        for rule in rules {
            let observed: Vec<String> = rule.observed.iter().map(|(b, o)| format!("{b}: {o}")).collect();
            let status = if rule.passed {
                TestCaseStatus::success()
            } else {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(observed.join("; "));
                s
            };
            let mut test = TestCase::new(rule.rule.as_str(), status);
            test.set_classname("syncspec.gate");
            if rule.passed {
                test.set_system_out(observed.join("\n"));
            }
            suite.add_test_case(test);
        }
        junit.add_test_suite(suite);
    }
    junit.to_string().expect("JUnit XML of strings always serializes")
}
