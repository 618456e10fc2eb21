//! `Report`, the one data model every renderer reads: one column per backend,
//! each with the environment it was measured in and whichever of the
//! conformance suite, load run, rate sweep and model check it ran. Saved as
//! `report.json` with a schema version, read back by `syncspec report`,
//! `syncspec gate` and `report merge`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::conformance::Conformance;
use crate::load::{LoadResult, Sweep};
use crate::model::ModelCheck;

/// The version of `report.json`'s shape. A reader refuses any other.
pub const SCHEMA_VERSION: u32 = 1;

/// The file name a report directory holds.
pub const FILE_NAME: &str = "report.json";

/// Everything a report shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`] when written.
    pub schema_version: u32,
    /// When this report was put together (RFC 3339, UTC).
    pub created: String,
    /// Backends side by side; the reference first when there is one.
    pub backends: Vec<Backend>,
}

/// One backend's column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Backend {
    /// A short unique label (`reference`, `127.0.0.1:3211`).
    pub name: String,
    /// The deployment URL it was reached at.
    pub url: String,
    /// Whether this is syncspec's own reference server with no fault switched on.
    pub reference: bool,
    /// What the backend says about itself (`GET /version`), when it answers.
    pub about: Option<String>,
    /// Where and when it was measured.
    pub environment: Environment,
    /// The conformance suite, if it ran.
    pub conformance: Option<Conformance>,
    /// The standard load run, if it ran.
    pub load: Option<LoadResult>,
    /// The cursor rate sweep, if it ran.
    pub sweep: Option<Sweep>,
    /// The model check, for the reference (the model drives the reference's own core).
    pub model: Option<ModelCheck>,
    /// Phases that could not run against it, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// The machine and software a backend was measured with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    /// The syncspec that measured it.
    pub syncspec_version: String,
    /// When (RFC 3339, UTC).
    pub date: String,
    /// Logical cores of the measuring machine.
    pub cores: usize,
    /// Its memory.
    pub memory_bytes: u64,
    /// Its operating system (`Debian GNU/Linux 12 (bookworm)`, or the OS family).
    pub os: String,
    /// Its architecture.
    pub arch: String,
}

impl Environment {
    /// This machine, now, measured by `syncspec_version`.
    pub fn here(syncspec_version: &str) -> Environment {
        Environment {
            syncspec_version: syncspec_version.to_owned(),
            date: now_rfc3339(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_bytes: memory_bytes().unwrap_or(0),
            os: os_name(),
            arch: std::env::consts::ARCH.to_owned(),
        }
    }
}

/// Why a report could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// Which file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a report.
    #[error("{path}: not a syncspec report: {detail}")]
    Json {
        /// Which file.
        path: PathBuf,
        /// What the parser said, with the line and column.
        detail: String,
    },
    /// A report of another schema version.
    #[error("{path}: report schema version {found}; this syncspec reads version {SCHEMA_VERSION}")]
    Schema {
        /// Which file.
        path: PathBuf,
        /// The version it has.
        found: u64,
    },
    /// Anything else that makes the input unusable (a merge's shards that do not belong together).
    #[error("{0}")]
    Invalid(String),
}

impl Report {
    /// A report of these backends, dated now, the reference first.
    pub fn new(mut backends: Vec<Backend>) -> Report {
        backends.sort_by_key(|b| !b.reference);
        Report { schema_version: SCHEMA_VERSION, created: now_rfc3339(), backends }
    }

    /// Reads a `report.json`, or the one inside a run's output directory.
    pub fn read(path: &Path) -> Result<Report, ReportError> {
        let file = if path.is_dir() { path.join(FILE_NAME) } else { path.to_owned() };
        let text = std::fs::read_to_string(&file).map_err(|source| ReportError::Io { path: file.clone(), source })?;
        Report::parse(&text).map_err(|e| match e {
            ReportError::Json { detail, .. } => ReportError::Json { path: file.clone(), detail },
            ReportError::Schema { found, .. } => ReportError::Schema { path: file.clone(), found },
            other => other,
        })
    }

    /// Parses a report's text, checking the schema version first so an old
    /// or newer file gets that reason rather than a missing field.
    pub fn parse(text: &str) -> Result<Report, ReportError> {
        /// Only the version, read first so that another version's file gets
        /// that reason rather than a missing field.
        #[derive(Deserialize)]
        struct Head {
            schema_version: Option<u64>,
        }
        let json = |e: serde_json::Error| ReportError::Json { path: PathBuf::new(), detail: e.to_string() };
        let head: Head = serde_json::from_str(text).map_err(json)?;
        match head.schema_version {
            Some(v) if v == u64::from(SCHEMA_VERSION) => {}
            Some(found) => return Err(ReportError::Schema { path: PathBuf::new(), found }),
            None => {
                return Err(ReportError::Json {
                    path: PathBuf::new(),
                    detail: "no schema_version field (is this a report.json?)".into(),
                })
            }
        }
        let mut report: Report = serde_json::from_str(text).map_err(json)?;
        // A load run's figures are derived from the histograms it carries,
        // never taken from the file, so an edited summary cannot pass a gate.
        for load in report.backends.iter_mut().filter_map(|b| b.load.as_mut()) {
            load.finish();
        }
        Ok(report)
    }

    /// Writes the report as pretty JSON.
    pub fn write(&self, path: &Path) -> Result<(), ReportError> {
        let text = serde_json::to_string_pretty(self).expect("a report always serializes");
        std::fs::write(path, text + "\n").map_err(|source| ReportError::Io { path: path.to_owned(), source })
    }

    /// Puts several reports side by side. Parts of one backend saved
    /// separately (a `check --out` and a `load --out` of the same URL) join
    /// one column; a backend measured twice gets a second column, labelled apart.
    pub fn combine(reports: Vec<Report>) -> Report {
        let mut backends: Vec<Backend> = Vec::new();
        for backend in reports.into_iter().flat_map(|r| r.backends) {
            // The embedded reference listens on a new port every time, so
            // its parts join on the name alone.
            let same =
                |b: &Backend| b.name == backend.name && (b.url == backend.url || (b.reference && backend.reference));
            match backends.iter_mut().find(|b| same(b) && !b.overlaps(&backend)) {
                Some(existing) => existing.absorb(backend),
                None => {
                    let mut backend = backend;
                    let base = backend.name.clone();
                    let mut n = 2;
                    while backends.iter().any(|b| b.name == backend.name) {
                        backend.name = format!("{base} ({n})");
                        n += 1;
                    }
                    backends.push(backend);
                }
            }
        }
        Report::new(backends)
    }

    /// The backend with this name.
    pub fn backend(&self, name: &str) -> Option<&Backend> {
        self.backends.iter().find(|b| b.name == name)
    }
}

impl Backend {
    /// An empty column for a backend measured here, now.
    pub fn new(name: &str, url: &str, reference: bool, syncspec_version: &str) -> Backend {
        Backend {
            name: name.to_owned(),
            url: url.to_owned(),
            reference,
            about: None,
            environment: Environment::here(syncspec_version),
            conformance: None,
            load: None,
            sweep: None,
            model: None,
            problems: Vec::new(),
        }
    }

    /// The name as an identifier for anchors, class names and directories:
    /// lowercase ASCII letters and digits, everything else `-`.
    pub fn slug(&self) -> String {
        self.name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect()
    }

    fn overlaps(&self, other: &Backend) -> bool {
        (self.conformance.is_some() && other.conformance.is_some())
            || (self.load.is_some() && other.load.is_some())
            || (self.sweep.is_some() && other.sweep.is_some())
            || (self.model.is_some() && other.model.is_some())
    }

    fn absorb(&mut self, other: Backend) {
        self.about = self.about.take().or(other.about);
        self.conformance = self.conformance.take().or(other.conformance);
        self.load = self.load.take().or(other.load);
        self.sweep = self.sweep.take().or(other.sweep);
        self.model = self.model.take().or(other.model);
        self.problems.extend(other.problems);
    }
}

/// Now, as RFC 3339 in UTC to the second.
pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn memory_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb * 1024)
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=")).map(|v| v.trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| std::env::consts::OS.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_schema_version_is_named() {
        let e = Report::parse(r#"{"schema_version": 7, "backends": []}"#).unwrap_err();
        assert!(e.to_string().contains("schema version 7"), "{e}");
        let e = Report::parse(r#"{"scenario": "mix"}"#).unwrap_err();
        assert!(e.to_string().contains("no schema_version"), "{e}");
        let e = Report::parse("{").unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
    }

    #[test]
    fn parts_of_one_backend_join_one_column_and_the_reference_comes_first() {
        let mut check = Backend::new("a", "http://a", false, "0");
        check.conformance = Some(Default::default());
        let mut load = Backend::new("a", "http://a", false, "0");
        load.sweep = Some(Default::default());
        let mut again = Backend::new("a", "http://a", false, "0");
        again.conformance = Some(Default::default());
        let reference = Backend::new("reference", "http://127.0.0.1:41000", true, "0");
        let mut reference_load = Backend::new("reference", "http://127.0.0.1:42000", true, "0");
        reference_load.sweep = Some(Default::default());
        let report = Report::combine(vec![
            Report::new(vec![check]),
            Report::new(vec![load, again]),
            Report::new(vec![reference]),
            Report::new(vec![reference_load]),
        ]);
        let names: Vec<&str> = report.backends.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["reference", "a", "a (2)"]);
        assert!(report.backends[0].sweep.is_some(), "the embedded reference's parts join on its name");
        assert!(report.backends[1].conformance.is_some() && report.backends[1].sweep.is_some());
    }
}
