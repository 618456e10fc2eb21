//! The HTML report in a real browser: `syncspec report` renders the
//! two-backend fixture, and `tests/browser/check-report.mjs` opens it from
//! disk in Debian's headless chromium with the network off and checks it
//! (no console or page error, no request but the file, the verdict, the
//! matrix's failed cell linking to its evidence, the four charts drawn, the
//! model check and environment), leaving a screenshot in
//! `target/ci-artifacts/report.png`. A negative control shows the script
//! fails a page that logs an error and fetches an image.
//!
//! What the report's HTML says is pinned in `reports/tests/it/html.rs`;
//! this checks what a browser makes of it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use crate::support::{npm_ci, scratch, text, turn};

const BIN: &str = env!("CARGO_BIN_EXE_syncspec");
const CHROMIUM: &str = "/usr/bin/chromium";
/// The fixture's columns, in order, and its one failed cell: case 3.3 on
/// the server with the torn-transition fault.
const BACKENDS: [&str; 2] = ["reference", "127.0.0.1:3211"];
const FAILURE: &str = "127.0.0.1:3211 3.3";
/// What the script checks of the fixture's report: sections, columns,
/// cells, the failed cell's link and target, the charts, console, network.
/// A pass with fewer checks would mean the script stopped looking.
const AT_LEAST_CHECKS: u32 = 38;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn browser_dir() -> PathBuf {
    workspace().join("tests/browser")
}

/// Chromium present and `playwright-core` installed, once for this binary
/// (two `npm ci` at once in one folder would trip over each other).
fn prepared() {
    static PREPARED: OnceLock<()> = OnceLock::new();
    PREPARED.get_or_init(|| {
        assert!(
            Path::new(CHROMIUM).is_file(),
            "{CHROMIUM} is missing: the HTML report's browser test needs Debian's chromium \
             (`apt-get install chromium`, as .ci/run does)"
        );
        npm_ci(&browser_dir(), "playwright-core");
    });
}

/// The fixture's report rendered into a fresh directory; returns its index.html.
fn render(name: &str) -> PathBuf {
    let out = scratch(name);
    let fixture = workspace().join("reports/tests/data/two_backends.json");
    let output =
        Command::new(BIN).args(["report", "--out"]).arg(&out).arg(&fixture).output().expect("run syncspec report");
    assert!(output.status.success(), "syncspec report failed on {}:\n{}", fixture.display(), text(&output));
    let index = out.join("index.html");
    assert!(index.is_file(), "syncspec report wrote no {}:\n{}", index.display(), text(&output));
    index
}

/// `check-report.mjs` on one page, expecting the fixture's columns and failure.
fn check_report(html: &Path, screenshot: &Path) -> Output {
    let mut command = Command::new("node");
    command.arg("check-report.mjs").arg(html).arg(screenshot);
    for backend in BACKENDS {
        command.args(["--backend", backend]);
    }
    command.args(["--failure", FAILURE]).env("SYNCSPEC_CHROMIUM", CHROMIUM).current_dir(browser_dir());
    command.output().expect("node must be on the PATH to run tests/browser/check-report.mjs")
}

#[test]
fn the_html_report_renders_in_headless_chromium_offline() {
    prepared();
    // Chromium takes both cores for a moment; let the timing-sensitive runs go first.
    let _turn = turn();
    let index = render("browser");
    let artifacts = workspace().join("target/ci-artifacts");
    std::fs::create_dir_all(&artifacts).expect("create target/ci-artifacts");
    let screenshot = artifacts.join("report.png");
    let _ = std::fs::remove_file(&screenshot);

    let output = check_report(&index, &screenshot);
    let all = text(&output);
    assert!(output.status.success(), "the report failed in chromium:\n{all}");
    // Guard against a vacuous pass: the summary must count what was checked.
    let checks = all
        .lines()
        .find_map(|l| l.strip_prefix("check-report: ok, "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(0);
    assert!(checks >= AT_LEAST_CHECKS, "expected at least {AT_LEAST_CHECKS} checks, the script said:\n{all}");
    let png = std::fs::read(&screenshot).unwrap_or_default();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "no screenshot at {}:\n{all}", screenshot.display());
}

#[test]
fn the_browser_check_fails_a_page_that_logs_an_error_or_fetches() {
    prepared();
    let _turn = turn();
    let index = render("browser-control");
    let html = std::fs::read_to_string(&index).expect("read index.html");
    let injected =
        r#"<script>console.error("negative control: x")</script><img src="http://127.0.0.1:9/x.png"></body>"#;
    assert!(html.contains("</body>"), "index.html has no </body> to inject before");
    let broken = index.with_file_name("broken.html");
    std::fs::write(&broken, html.replacen("</body>", injected, 1)).expect("write broken.html");

    let output = check_report(&broken, &index.with_file_name("broken.png"));
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "the script must fail the broken page (exit 1):\n{all}");
    assert!(all.contains("check-report: FAILED"), "no failure summary:\n{all}");
    let problem = |what: &str, needle: &str| {
        all.lines().any(|l| l.starts_with("problem: ") && l.contains(what) && l.contains(needle))
    };
    assert!(problem("console errors", "negative control: x"), "the console error is not named:\n{all}");
    assert!(
        problem("network requests other than the file: 1 attempt", "http://127.0.0.1:9/x.png"),
        "the image request is not named:\n{all}"
    );
}
