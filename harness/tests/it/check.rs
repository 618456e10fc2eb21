//! `syncspec check` end to end: every case passes against the reference
//! server, every fault switch is caught by a case of the category guarding
//! it, and an unreachable target is "could not run".

use std::path::Path;
use std::process::Command;

use syncspec::suite::{PATIENCE, SHORT_PATIENCE};

use crate::support::{report, scratch, turn, Server, AUTH_SECRET};

const BIN: &str = env!("CARGO_BIN_EXE_syncspec");

/// Which cases catch which fault: (fault, the cases run, their category).
/// The README's fault table shows the same rows.
const FAULT_TABLE: &[(&str, &str, &str)] = &[
    ("skip-occ-validation", "5.1", "5"),
    ("torn-transition", "3.3", "3"),
    ("stale-results", "3.2", "3"),
    ("skip-empty-transition", "4.2", "4"),
    ("break-version-chain", "1.1", "1"),
    ("ts-regress", "1.1", "1"),
    ("replay-twice", "8.1", "8"),
    ("lose-invalidation", "3.7", "3"),
    ("no-rate-limit", "7.1", "7"),
    ("non-atomic-mutation", "5.6", "5"),
    ("http-error-status-560", "10.1", "10"),
    ("http-writes-unseen", "10.2", "10"),
    ("http-drop-unknown", "10.3", "10"),
    ("no-ws-ping", "10.4", "10"),
    ("commit-ts-only", "10.5", "10"),
    ("ignore-identity", "10.6", "10"),
    ("stale-identity-queries", "10.7", "10"),
    ("accept-any-token", "10.8", "10"),
    ("snapshot-isolation", "5.7", "5"),
    ("page-end-moves", "11.1", "11"),
    ("action-mutation-twice", "11.4", "11"),
    ("action-rollback", "11.5", "11"),
    ("schedule-despite-abort", "11.7", "11"),
    ("scheduled-twice", "11.6", "11"),
    ("scheduled-early", "11.6", "11"),
    ("bare-close-on-bad-frame", "9.11", "9"),
    ("unbounded-backlog", "9.12", "9"),
    ("no-handshake-timeout", "9.13", "9"),
    ("truncate-query-set", "9.14", "9"),
];

/// The conformance results inside a run directory's `report.json`.
fn results(dir: &Path) -> serde_json::Value {
    report(dir)["backends"][0]["conformance"].clone()
}

#[test]
fn every_case_passes_against_the_reference_server() {
    let _turn = turn();
    let out = scratch("all");
    let run = Command::new(BIN).args(["check", "--out"]).arg(&out).output().expect("run syncspec check");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(0), "syncspec check failed:\n{stdout}");
    let report = results(&out);
    let cases = report["cases"].as_array().expect("cases");
    assert!(cases.len() >= 60, "only {} cases ran", cases.len());
    for case in cases {
        assert_ne!(case["outcome"], "Fail", "{case}");
        assert!(case["id"].is_string() && case["title"].is_string() && case["duration_ms"].is_u64());
        let history = case["history_file"].as_str().expect("a history file per case");
        assert!(out.join(history).exists(), "missing {history}");
    }
    assert!(stdout.lines().any(|l| l == format!("{} passed, 0 unimplemented, 0 failed", cases.len())), "{stdout}");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn every_fault_switch_is_caught_by_its_category() {
    let _turn = turn();
    let listed = Command::new(BIN).args(["serve", "--list-faults"]).output().expect("list faults");
    let names: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    let mut table: Vec<&str> = FAULT_TABLE.iter().map(|(f, _, _)| *f).collect();
    table.sort_unstable();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, table, "the table must cover every fault `serve --list-faults` lists");
    // Half the faults at a time: each run mostly waits on a deadline.
    for batch in FAULT_TABLE.chunks(5) {
        let runs: Vec<_> = batch
            .iter()
            .map(|&(fault, cases, category)| {
                std::thread::spawn(move || {
                    let server = Server::start(&[fault]);
                    let out = scratch(fault);
                    let run = Command::new(BIN)
                        .args([
                            "check",
                            "--target",
                            &server.url,
                            "--auth-secret",
                            AUTH_SECRET,
                            "--cases",
                            cases,
                            "--out",
                        ])
                        .arg(&out)
                        .output()
                        .expect("run syncspec check");
                    let report = results(&out);
                    let failed: Vec<String> = report["cases"]
                        .as_array()
                        .expect("cases")
                        .iter()
                        .filter(|c| c["outcome"] == "Fail")
                        .filter_map(|c| c["id"].as_str().map(str::to_owned))
                        .collect();
                    let _ = std::fs::remove_dir_all(&out);
                    (fault, category, run.status.code(), failed, String::from_utf8_lossy(&run.stdout).into_owned())
                })
            })
            .collect();
        for run in runs {
            let (fault, category, code, failed, stdout) = run.join().expect("fault run");
            assert_eq!(code, Some(1), "{fault}: syncspec check should exit 1:\n{stdout}");
            assert!(
                failed.iter().any(|id| id.split('.').next() == Some(category)),
                "{fault}: no case of category {category} failed (failed: {failed:?}):\n{stdout}"
            );
        }
    }
}

#[test]
fn the_same_server_without_faults_passes_those_cases() {
    let _turn = turn();
    let server = Server::start(&[]);
    let patterns: Vec<&str> = FAULT_TABLE.iter().map(|(_, cases, _)| *cases).collect();
    let mut args = vec!["check", "--target", &server.url, "--auth-secret", AUTH_SECRET];
    for p in &patterns {
        args.extend(["--cases", p]);
    }
    let run = Command::new(BIN).args(&args).output().expect("run syncspec check");
    assert_eq!(run.status.code(), Some(0), "{}", String::from_utf8_lossy(&run.stdout));
}

/// Once the backend has left one wait unanswered, the run waits only the
/// short patience, and every case still fails with its own evidence: a
/// broken backend costs seconds per case, not minutes.
#[test]
fn a_backend_that_stopped_answering_is_waited_on_briefly() {
    let _turn = turn();
    // Under this fault no mutation of a client without subscriptions resolves.
    let server = Server::start(&["skip-empty-transition"]);
    let out = scratch("patience");
    let run = Command::new(BIN)
        .args(["check", "--target", &server.url, "--cases", "4.2", "--cases", "4.11", "--cases", "5.1", "--out"])
        .arg(&out)
        .output()
        .expect("run syncspec check");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(1), "{stdout}");
    let report = results(&out);
    let _ = std::fs::remove_dir_all(&out);
    let evidence = |id: &str| -> String {
        let cases = report["cases"].as_array().expect("cases");
        let case = cases.iter().find(|c| c["id"] == id).unwrap_or_else(|| panic!("case {id} did not run:\n{stdout}"));
        assert_eq!(case["outcome"], "Fail", "{case}");
        let messages: Vec<&str> =
            case["evidence"].as_array().expect("evidence").iter().filter_map(|e| e["message"].as_str()).collect();
        messages.join("\n")
    };
    // The first unanswered wait gets the whole patience; every later one the short one.
    let (generous, short) = (format!("{PATIENCE:?}"), format!("{SHORT_PATIENCE:?}"));
    assert!(evidence("4.2").contains(&format!("the mutation never resolved: Err(Timeout({generous}))")), "{stdout}");
    assert!(evidence("4.11").contains(&format!("mutation 0 got no answer (no outcome within {short})")), "{stdout}");
    // Twenty clients, each stopping at its first unanswered increment.
    assert!(evidence("5.1").contains(&format!("an increment got no answer (no outcome within {short})")), "{stdout}");
}

#[test]
fn an_unreachable_target_is_exit_code_2() {
    let run =
        Command::new(BIN).args(["check", "--target", "http://127.0.0.1:9", "--cases", "1.1"]).output().expect("run");
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("could not connect"));
    let bad = Command::new(BIN).args(["check", "--cases", "99.*"]).output().expect("run");
    assert_eq!(bad.status.code(), Some(2));
    // An https target speaks TLS (here to a plain server, so the handshake fails).
    let server = Server::start(&[]);
    let https = server.url.replace("http://", "https://");
    let run = Command::new(BIN).args(["check", "--target", &https, "--cases", "1.1"]).output().expect("run");
    assert_eq!(run.status.code(), Some(2));
    // The plain server answers the TLS ClientHello with an HTTP 400, which
    // rustls reads as a record of an invalid content type.
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("tls") || stderr.contains("InvalidContentType"), "{stderr}");
}
