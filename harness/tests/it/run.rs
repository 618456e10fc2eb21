//! `syncspec run` end to end, and `report` and `gate` on what it wrote: a
//! faulty backend beside the reference shows its failed case, and the gate
//! fails on it and passes on the reference.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::{report, scratch, text, turn, Server};

const BIN: &str = env!("CARGO_BIN_EXE_syncspec");

fn syncspec(args: &[&str], out: Option<&Path>) -> Output {
    let mut command = Command::new(BIN);
    command.args(args);
    if let Some(out) = out {
        command.arg(out);
    }
    command.output().expect("run syncspec")
}

#[test]
fn a_torn_backend_beside_the_reference_fails_its_case_and_the_gate() {
    let _turn = turn();
    let torn = Server::start(&["torn-transition"]);
    let out = scratch("run-torn");
    let run = Command::new(BIN)
        .args([
            "run",
            "--target",
            &torn.url,
            "--phases",
            "conformance,model",
            "--cases",
            "1.1",
            "--cases",
            "3.3",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    // A backend failed the suite: exit 1, and the report's path is the last line.
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(stdout.lines().last().map(Path::new), Some(out.join("index.html").as_path()));
    for file in ["index.html", "report.md", "junit.xml", "report.json"] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let r = report(&out);
    let backends = r["backends"].as_array().unwrap();
    assert_eq!(backends.len(), 2);
    assert_eq!((backends[0]["name"].as_str(), backends[0]["reference"].as_bool()), (Some("reference"), Some(true)));
    let outcome = |b: usize, id: &str| {
        let cases = backends[b]["conformance"]["cases"].as_array().unwrap();
        cases.iter().find(|c| c["id"] == id).map(|c| c["outcome"].as_str().unwrap().to_owned()).unwrap()
    };
    assert_eq!((outcome(0, "3.3"), outcome(1, "3.3")), ("Pass".into(), "Fail".into()));
    assert!(backends[0]["model"]["configurations"].as_array().is_some_and(|c| !c.is_empty()));
    assert!(backends[1]["model"].is_null(), "the model check is the reference's alone");
    // The failed case's history travels with it, for the timeline.
    let failed = backends[1]["conformance"]["cases"].as_array().unwrap().iter().find(|c| c["id"] == "3.3").unwrap();
    assert!(failed["history"]["events"].as_array().is_some_and(|e| !e.is_empty()));
    let file = failed["history_file"].as_str().expect("the failed case's history file is named");
    assert!(out.join(file).is_file(), "{file} is not where the report says");
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.contains("<td class=\"cell outcome-fail\" data-case=\"3.3\""));

    // A target given twice would share a column and a directory: refused.
    let twice = Command::new(BIN).args(["run", "--target", &torn.url, "--target", &torn.url]).output().unwrap();
    assert_eq!(twice.status.code(), Some(2), "{}", text(&twice));
    assert!(String::from_utf8_lossy(&twice.stderr).contains("is given twice"), "{}", text(&twice));

    // The gate fails on the pair and passes on the reference alone.
    let gate = syncspec(&["gate", "--threshold", "conformance.failed==0"], Some(&out));
    assert_eq!(gate.status.code(), Some(1), "{}", text(&gate));
    assert!(String::from_utf8_lossy(&gate.stdout).contains("✗ conformance.failed==0"), "{}", text(&gate));
    let gate = syncspec(&["gate", "--threshold", "conformance.failed==0", "--backend", "reference"], Some(&out));
    assert_eq!(gate.status.code(), Some(0), "{}", text(&gate));
    assert!(String::from_utf8_lossy(&gate.stdout).contains("✓ conformance.failed==0  failed=0"), "{}", text(&gate));
}

#[test]
fn a_short_load_and_sweep_on_the_reference() {
    let _turn = turn();
    let out = scratch("run-load");
    let args = ["run", "--phases", "load,sweep", "--users", "40", "--run-time", "2s", "--sweep", "5,40"];
    let run = Command::new(BIN)
        .args(args)
        .args(["--sweep-users", "10", "--sweep-time", "2s", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("[1/2] load") && stderr.contains("[2/2] sweep"), "phases are shown:\n{stderr}");
    let r = report(&out);
    let reference = &r["backends"][0];
    assert!(reference["load"]["sync_latency_us"]["count"].as_u64().is_some_and(|n| n > 0));
    assert!(reference["load"]["histograms"]["seconds"].as_array().is_some_and(|s| !s.is_empty()));
    let steps = reference["sweep"]["steps"].as_array().unwrap();
    assert_eq!(steps.iter().map(|s| s["rate_hz"].as_f64().unwrap()).collect::<Vec<_>>(), [5.0, 40.0]);
    // Over 2 s at most 20 a second plus one second's burst: 30 a second.
    let accepted = steps[1]["accepted_per_user_s"].as_f64().unwrap();
    assert!(accepted > 5.0 && accepted <= 30.5, "accepted {accepted} per user per second at 40 Hz offered");

    // Rendered again from the saved result, alone, it says the same.
    let again = scratch("run-load-again");
    let rendered = syncspec(&["report", "--out"], Some(&again));
    assert_eq!(rendered.status.code(), Some(2), "a report needs results: {}", text(&rendered));
    let rendered = Command::new(BIN).args(["report"]).arg(&out).arg("--out").arg(&again).output().unwrap();
    assert_eq!(rendered.status.code(), Some(0), "{}", text(&rendered));
    assert_eq!(report(&again)["backends"], r["backends"]);
}

#[test]
fn gate_refuses_bad_rules_and_files_with_the_position() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../reports/tests/data/two_backends.json");
    let bad = syncspec(&["gate", "--threshold", "sync.p9<50ms"], Some(&fixture));
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("column 6") && stderr.contains("  sync.p9<50ms\n       ^^"), "{stderr}");
    let missing = syncspec(&["gate", "--threshold", "errors==0"], Some(Path::new("/nonexistent/report.json")));
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/report.json"));
    let nothing = syncspec(&["gate"], Some(&fixture));
    assert_eq!(nothing.status.code(), Some(2));
    // A baseline of the same run: no regression.
    let same = Command::new(BIN)
        .args(["gate", "--baseline"])
        .arg(&fixture)
        .arg("--max-regression")
        .arg("5%")
        .arg(&fixture)
        .output()
        .unwrap();
    assert_eq!(same.status.code(), Some(0), "{}", text(&same));
    assert!(String::from_utf8_lossy(&same.stdout).contains("regression: sync.p95 over the echo floor"));
}

#[test]
fn an_unreachable_target_is_could_not_run_before_any_phase() {
    let out = scratch("run-unreachable");
    let started = std::time::Instant::now();
    let run = Command::new(BIN).args(["run", "--target", "http://127.0.0.1:1", "--out"]).arg(&out).output().unwrap();
    assert_eq!(run.status.code(), Some(2), "{}", text(&run));
    assert!(String::from_utf8_lossy(&run.stderr).contains("http://127.0.0.1:1 is unreachable"), "{}", text(&run));
    assert!(!out.join("report.json").exists(), "nothing ran, so nothing is reported");
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "took {:?}", started.elapsed());
}
