//! Helpers the integration tests share: taking turns on the two cores,
//! scratch directories, a `syncspec serve` child process, a run's
//! `report.json`, a child's output for messages, and installing a test
//! folder's pinned npm packages.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_syncspec");

/// The suite runs below measure timing-sensitive behaviour (rate limits,
/// deadlines), so they take turns rather than share two cores at once.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub(crate) fn turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("syncspec-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The secret every test server verifies tokens with; `check --auth-secret` mints with it.
pub(crate) const AUTH_SECRET: &str = "syncspec-it-secret";

/// `syncspec serve` with faults on a free port; killed when dropped. Like the
/// embedded server of `check` and `run`, it trusts tokens signed with
/// [`AUTH_SECRET`] and pings every second with a 3 s idle timeout, so the
/// identity and keepalive cases (10.4 to 10.8) can run against it.
pub(crate) struct Server {
    child: Child,
    pub(crate) url: String,
}

impl Server {
    pub(crate) fn start(faults: &[&str]) -> Server {
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--auth-secret", AUTH_SECRET])
            .args(["--ping-interval", "1s", "--idle-timeout", "3s"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for fault in faults {
            command.args(["--fault", fault]);
        }
        let mut child = command.spawn().expect("start syncspec serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line).expect("read the address");
        let url = line.trim().strip_prefix("listening on ").expect("the first line names the URL").to_owned();
        Server { child, url }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A run directory's `report.json`.
pub(crate) fn report(dir: &Path) -> serde_json::Value {
    let bytes = std::fs::read(dir.join("report.json")).expect("report.json written");
    serde_json::from_slice(&bytes).expect("report.json is JSON")
}

/// A child's stdout and stderr, for an assertion's message.
pub(crate) fn text(output: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// How to get the pinned Python tools; every message about a missing one names it.
pub(crate) const INSTALL: &str = "python3 -m pip install -r tests/python/requirements.txt";

/// Installs `dir`'s npm packages from its lockfile unless `package` is there already.
pub(crate) fn npm_ci(dir: &Path, package: &str) {
    if dir.join("node_modules").join(package).exists() {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .status()
        .unwrap_or_else(|e| panic!("npm must be on the PATH to install {package} in {}: {e}", dir.display()));
    assert!(status.success(), "npm ci failed in {}", dir.display());
}
