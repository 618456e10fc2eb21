//! Runs the Node test suite in `tests/node`, which drives the official npm
//! `convex` client against this build's `syncspec serve`.
//!
//! The Node packages are pinned by `tests/node/package-lock.json`; when they
//! are not installed yet this runs `npm ci` first, so a fresh clone needs
//! only Node and npm on the PATH.

use std::path::PathBuf;
use std::process::Command;

fn node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/node")
}

#[test]
fn npm_convex_client_passes_against_the_reference_server() {
    let dir = node_dir();
    crate::support::npm_ci(&dir, "convex");
    let output = Command::new("npm")
        .arg("test")
        .current_dir(&dir)
        .env("SYNCSPEC_BIN", env!("CARGO_BIN_EXE_syncspec"))
        .output()
        .expect("npm must be on the PATH to run the official client tests");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the npm convex client tests failed:\n{stdout}\n{stderr}");
    // Guard against a runner that found nothing to run.
    let passed =
        stdout.lines().find_map(|l| l.strip_prefix("# pass ")).and_then(|n| n.trim().parse::<u32>().ok()).unwrap_or(0);
    assert!(passed >= 30, "expected at least 30 passing Node tests, the runner said:\n{stdout}");
}
