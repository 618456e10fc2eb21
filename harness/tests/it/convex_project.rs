//! Type-checks the catalogue's Convex project (`backends/convex`) against
//! its pinned `convex` package, and runs its functions under `convex-test`
//! through the same expectation scripts the reference functions meet
//! (`protocol/tests/data/catalogue`, run for the reference by the server's
//! `catalogue` test).

use std::path::{Path, PathBuf};
use std::process::Command;

fn project_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../backends/convex")
}

/// How many scripts the shared expectation files hold.
fn script_count() -> usize {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../protocol/tests/data/catalogue");
    std::fs::read_dir(&dir)
        .expect("the catalogue's scripts")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let file: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&p).expect("a script file"))
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            file["scripts"].as_array().map_or(0, Vec::len)
        })
        .sum()
}

fn npm(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("npm")
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("CI", "true")
        .output()
        .unwrap_or_else(|e| panic!("npm must be on the PATH to run `npm {}`: {e}", args.join(" ")));
    let text = crate::support::text(&output);
    assert!(output.status.success(), "`npm {}` failed in {}:\n{text}", args.join(" "), dir.display());
    text
}

#[test]
fn the_convex_project_type_checks_and_meets_the_shared_expectations() {
    let dir = project_dir();
    crate::support::npm_ci(&dir, "convex-test");
    npm(&dir, &["run", "typecheck"]);
    let text = npm(&dir, &["test"]);
    // vitest's summary: "Tests  63 passed (63)". One test per script, one
    // that the files are there, and the runner's own negative controls.
    let passed = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Tests"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0);
    let scripts = script_count();
    assert!(scripts >= 40, "only {scripts} scripts in the shared expectations");
    assert!(
        passed > scripts,
        "expected every one of the {scripts} scripts to pass under convex-test, vitest said:\n{text}"
    );
}
