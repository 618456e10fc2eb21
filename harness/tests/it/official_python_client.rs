//! Runs the Python test suite in `tests/python`, which drives the official
//! PyPI `convex` client (`ConvexClient` over the sync socket and
//! `ConvexHttpClient` over the HTTP API) against this build's
//! `syncspec serve`.
//!
//! The package is pinned in `tests/python/requirements.txt` and installed by
//! `.ci/run`; when it is missing, or another version is installed, this
//! fails with the command that installs the pinned one (never a skip).

use std::path::PathBuf;
use std::process::Command;

use crate::support::INSTALL;

/// The unittest cases in `tests/python/test_official_client.py`.
const EXPECTED_TESTS: u32 = 15;

fn python_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/python")
}

/// The `convex==X` pin of the requirements file.
fn pinned_version() -> String {
    let path = python_dir().join("requirements.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines()
        .find_map(|line| line.trim().strip_prefix("convex=="))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("{} pins no `convex==` version", path.display()))
}

#[test]
fn pypi_convex_client_passes_against_the_reference_server() {
    let pinned = pinned_version();
    let probe = Command::new("python3")
        .args(["-c", "import convex; print(convex.__version__)"])
        .output()
        .unwrap_or_else(|e| panic!("could not run python3 ({e}); it runs the official Python client tests"));
    let installed = String::from_utf8_lossy(&probe.stdout).trim().to_owned();
    assert!(
        probe.status.success(),
        "the PyPI `convex` package is not installed; install it with `{INSTALL}`:\n{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    assert_eq!(installed, pinned, "python3 has `convex` {installed}, the tests pin {pinned}; run `{INSTALL}`");

    let output = Command::new("python3")
        .args(["-m", "unittest", "-v"])
        .current_dir(python_dir())
        .env("SYNCSPEC_BIN", env!("CARGO_BIN_EXE_syncspec"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python3 runs the official client tests");
    let stdout = String::from_utf8_lossy(&output.stdout);
    // unittest reports on stderr.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the PyPI convex client tests failed:\n{stdout}\n{stderr}");
    // Guard against a runner that found nothing (or less than it should) to run.
    let ran = stderr
        .lines()
        .find_map(|l| l.strip_prefix("Ran ")?.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(0);
    assert!(ran >= EXPECTED_TESTS, "expected at least {EXPECTED_TESTS} Python tests, unittest said:\n{stderr}");
}
