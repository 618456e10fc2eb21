//! Tidy checks over the workspace's Rust sources: every file opens with a
//! `//!` comment saying what lives there, no test is skipped or expects a
//! panic, and no line ends in whitespace.

use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            if !matches!(name.as_ref(), "target" | "node_modules" | ".git") {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

/// What is wrong with one file's text, one line per problem.
fn problems(shown: &str, text: &str) -> Vec<String> {
    let banned = [concat!("#[", "ignore"), concat!("#[", "should_panic")];
    let mut problems = Vec::new();
    if !text.starts_with("//!") {
        problems.push(format!("{shown}: does not open with a `//!` comment"));
    }
    for (n, line) in text.lines().enumerate() {
        if line.ends_with(' ') || line.ends_with('\t') {
            problems.push(format!("{shown}:{}: trailing whitespace", n + 1));
        }
        if banned.iter().any(|b| line.contains(b)) {
            problems.push(format!("{shown}:{}: skipped or panic-expecting test", n + 1));
        }
    }
    problems
}

#[test]
fn sources_follow_the_house_rules() {
    let mut files = Vec::new();
    rust_files(&workspace_root(), &mut files);
    assert!(files.len() > 10, "found only {} Rust files; is the root right?", files.len());
    let mut all = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let shown = file.strip_prefix(workspace_root()).unwrap_or(file).display().to_string();
        all.extend(problems(&shown, &text));
    }
    assert!(all.is_empty(), "tidy problems:\n{}", all.join("\n"));
}

#[test]
fn tidy_catches_each_rule() {
    let skipped = concat!("//! ok\n#[", "ignore]\nfn t() {}\n");
    assert_eq!(problems("a.rs", "fn main() {}\n").len(), 1);
    assert_eq!(problems("b.rs", "//! ok \n").len(), 1);
    assert_eq!(problems("c.rs", skipped).len(), 1);
    assert!(problems("d.rs", "//! ok\nfn main() {}\n").is_empty());
}
