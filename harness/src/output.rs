//! Writing a finished report: `report.json` (the data model), `index.html`,
//! `report.md` and `junit.xml`, all from the one `Report`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use syncspec_reports::gate::RuleResult;
use syncspec_reports::report::{Report, FILE_NAME};

/// Writes every rendering of `report` into `dir`; returns the path of `index.html`.
pub(crate) fn write(report: &Report, dir: &Path, gate: Option<&[RuleResult]>) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("while creating {}", dir.display()))?;
    report.write(&dir.join(FILE_NAME))?;
    let files = [
        ("index.html", syncspec_reports::html::render(report)),
        ("report.md", syncspec_reports::markdown::render(report)),
        ("junit.xml", syncspec_reports::junit::render(report, gate)),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("while writing {}", path.display()))?;
    }
    Ok(dir.join("index.html"))
}
