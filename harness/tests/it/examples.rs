//! `examples/`: the GitHub Actions workflow and the Kubernetes manifests
//! validate offline against their schemas (the Python tools pinned in
//! `tests/python/requirements.txt`), each with a broken copy that must be
//! refused; and the Kubernetes example's shard-then-merge runs here as three
//! local processes executing the Jobs' own container commands against a
//! local reference server. Nothing here reaches a cluster, GitHub or any
//! address but loopback.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::support::{report, scratch, text, turn, Server, INSTALL};

const BIN: &str = env!("CARGO_BIN_EXE_syncspec");

/// The shards of the local run; the manifests must plan the same number.
const SHARDS: usize = 3;

/// Users over all shards: 78 chat (2 channels), 39 presence (4 rooms) and
/// 13 cursors (3 rooms), so each of the 3 shards holds a cursor room with
/// readers, whose 20 moves a second give samples however short the run.
/// (Presence alone would not: its second heartbeat comes 5 s after the
/// first; and 30 users would leave shards 2 and 3 without a room.)
const USERS: u64 = 130;

/// Each local shard, and the merge, must finish within this.
const PROCESS_LIMIT: Duration = Duration::from_secs(60);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn examples() -> PathBuf {
    root().join("examples")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Runs one of the Python tools; a tool that is not installed fails the test
/// with the command that installs it (never a skip).
fn tool<S: AsRef<OsStr>>(program: &str, args: &[S]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("could not run `{program}` ({e}); install the pinned Python tools with `{INSTALL}`"))
}

/// Fails unless `program --version` shows the version pinned in the
/// requirements file: the bundled schemas change between versions.
fn assert_pinned(program: &str) {
    let requirements = read(&root().join("tests/python/requirements.txt"));
    let pin = requirements
        .lines()
        .find_map(|l| l.trim().strip_prefix(program).and_then(|rest| rest.strip_prefix("==")))
        .unwrap_or_else(|| panic!("tests/python/requirements.txt pins no {program}"))
        .trim();
    let version = tool(program, &["--version"]);
    assert!(
        version.status.success() && String::from_utf8_lossy(&version.stdout).contains(pin),
        "`{program} --version` does not show the pinned {pin}:\n{}\ninstall the pinned tools with `{INSTALL}`",
        text(&version)
    );
}

/// The one line `key: value` of a manifest or workflow, its value without
/// quotes. A plain text search: these files keep each such key on one line.
fn scalar<'a>(yaml: &'a str, key: &str) -> &'a str {
    let found: Vec<&str> = yaml
        .lines()
        .filter_map(|l| l.trim().strip_prefix(key).and_then(|rest| rest.strip_prefix(':')))
        .map(|v| v.trim().trim_matches('"'))
        .collect();
    assert_eq!(found.len(), 1, "expected one `{key}:` line, found {found:?}");
    found[0]
}

/// A broken copy of `original` in `dir`: `from` replaced by `to`, which must occur.
fn broken_copy(dir: &Path, original: &Path, from: &str, to: &str) -> PathBuf {
    let yaml = read(original);
    assert!(yaml.contains(from), "{} no longer holds {from:?}; update the negative control", original.display());
    std::fs::create_dir_all(dir).unwrap();
    let copy = dir.join(original.file_name().unwrap());
    std::fs::write(&copy, yaml.replacen(from, to, 1)).unwrap();
    copy
}

#[test]
fn the_kubernetes_manifests_validate_strictly_and_broken_copies_are_refused() {
    assert_pinned("kubernetes-validate");
    let dir = examples().join("kubernetes");
    let mut manifests: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples/kubernetes")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    manifests.sort();
    let names: Vec<String> = manifests.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for expected in ["config.yaml", "load-job.yaml", "merge-job.yaml", "results-pvc.yaml"] {
        assert!(names.iter().any(|n| n == expected), "examples/kubernetes has no {expected}: {names:?}");
    }
    let mut args: Vec<&OsStr> = vec![OsStr::new("--strict"), OsStr::new("--quiet")];
    args.extend(manifests.iter().map(|p| p.as_os_str()));
    let valid = tool("kubernetes-validate", &args);
    assert!(valid.status.success(), "the manifests do not validate:\n{}", text(&valid));

    // What the schema cannot see: the shard count is written three times.
    let job = read(&dir.join("load-job.yaml"));
    let config = read(&dir.join("config.yaml"));
    assert_eq!(scalar(&job, "completionMode"), "Indexed");
    let counts = [scalar(&job, "completions"), scalar(&job, "parallelism"), scalar(&config, "SHARDS")];
    assert_eq!(counts, [SHARDS.to_string().as_str(); 3], "completions, parallelism and SHARDS must agree");
    let pvc = read(&dir.join("results-pvc.yaml"));
    assert!(pvc.lines().any(|l| l.trim() == "- ReadWriteMany"), "the shards' pods share the volume across nodes");
    for manifest in ["load-job.yaml", "merge-job.yaml"] {
        assert_eq!(scalar(&read(&dir.join(manifest)), "mountPath"), "/results", "{manifest}");
    }

    // Negative controls: a wrong type, and a misspelt field that only
    // strict mode rejects (so strict mode is really on).
    let out = scratch("examples-k8s-broken");
    let wrong_type =
        broken_copy(&out.join("type"), &dir.join("load-job.yaml"), "completions: 3", "completions: \"three\"");
    let refused = tool("kubernetes-validate", &[OsStr::new("--strict"), OsStr::new("--quiet"), wrong_type.as_os_str()]);
    assert!(!refused.status.success(), "completions: \"three\" was accepted:\n{}", text(&refused));
    assert!(text(&refused).contains("spec.completions"), "{}", text(&refused));
    let misspelt = broken_copy(&out.join("misspelt"), &dir.join("load-job.yaml"), "parallelism: 3", "parallelsm: 3");
    let refused = tool("kubernetes-validate", &[OsStr::new("--strict"), OsStr::new("--quiet"), misspelt.as_os_str()]);
    assert!(!refused.status.success(), "a misspelt field passed --strict:\n{}", text(&refused));
    assert!(text(&refused).contains("'parallelsm' was unexpected"), "{}", text(&refused));
    let lenient = tool("kubernetes-validate", &[OsStr::new("--quiet"), misspelt.as_os_str()]);
    assert!(lenient.status.success(), "without --strict the misspelling should pass:\n{}", text(&lenient));
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn the_workflow_validates_and_a_broken_copy_is_refused() {
    assert_pinned("check-jsonschema");
    let workflow = examples().join("github-actions/syncspec.yml");
    let check = |file: &Path| {
        tool(
            "check-jsonschema",
            &[OsStr::new("--builtin-schema"), OsStr::new("vendor.github-workflows"), file.as_os_str()],
        )
    };
    let valid = check(&workflow);
    assert!(valid.status.success(), "the workflow does not validate:\n{}", text(&valid));

    // Negative control: the permission the comment step needs, misspelt.
    let out = scratch("examples-workflow-broken");
    let broken = broken_copy(&out, &workflow, "pull-requests: write", "pull-requests: writ");
    let refused = check(&broken);
    assert!(!refused.status.success(), "pull-requests: writ was accepted:\n{}", text(&refused));
    assert!(text(&refused).contains("pull-requests"), "{}", text(&refused));
    let _ = std::fs::remove_dir_all(&out);

    // What the schema cannot see: the gate names the column of the run's
    // target (host:port), and each threshold is a rule the gate parses
    // (exit 2 is a bad rule; 0 or 1 is a verdict on the fixture).
    let yaml = read(&workflow);
    let after = |flag: &str| -> Vec<String> {
        yaml.split(flag).skip(1).map(|rest| rest.split_whitespace().next().unwrap_or("").to_owned()).collect()
    };
    let target = after("--target ");
    let backend = after("--backend ");
    assert_eq!(target.len(), 1, "one `syncspec run --target` in the workflow");
    assert_eq!(backend, [target[0].trim_start_matches("http://")], "--backend must name --target's host:port");
    let rules: Vec<String> = after("--threshold ").iter().map(|r| r.trim_matches('\'').to_owned()).collect();
    assert_eq!(rules, ["conformance.failed==0", "sync.p95<100ms", "errors==0"]);
    let fixture = root().join("reports/tests/data/two_backends.json");
    for rule in &rules {
        let gate = Command::new(BIN).args(["gate", "--threshold", rule]).arg(&fixture).output().unwrap();
        assert!(matches!(gate.status.code(), Some(0 | 1)), "the gate refuses {rule:?}:\n{}", text(&gate));
    }
}

/// A Job's container command and arguments, as Kubernetes reads them: the
/// manifest parsed by PyYAML (a dependency of the pinned kubernetes-validate,
/// so no YAML crate is needed here).
fn container_command(manifest: &Path) -> Vec<String> {
    let script = "import json, sys, yaml\n\
                  job = yaml.safe_load(open(sys.argv[1]))\n\
                  (container,) = job['spec']['template']['spec']['containers']\n\
                  print(json.dumps(container['command'] + container['args']))";
    let parsed = tool("python3", &[OsStr::new("-c"), OsStr::new(script), manifest.as_os_str()]);
    assert!(
        parsed.status.success(),
        "could not read {}'s command with PyYAML (install the pinned tools with `{INSTALL}`):\n{}",
        manifest.display(),
        text(&parsed)
    );
    serde_json::from_slice(&parsed.stdout).expect("a JSON list of strings")
}

/// What one local "pod" did.
struct Ran {
    output: Output,
    took: Duration,
}

/// Runs a container command as a local process with `env`, the results
/// volume at `results` instead of `/results`, and `bin` first on the PATH.
/// coreutils' `timeout` bounds it, so a hung process ends the wait too.
fn run_container(command: &[String], results: &Path, bin: &Path, env: &[(&str, String)]) -> Ran {
    let [shell, flag, script] = command else { panic!("expected [shell, -c, script], got {command:?}") };
    assert_eq!((shell.as_str(), flag.as_str()), ("/bin/sh", "-c"), "the Jobs run their script with /bin/sh -c");
    assert!(script.contains("/results/"), "the script no longer writes under /results:\n{script}");
    let script = script.replace("/results/", &format!("{}/", results.display()));
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let started = Instant::now();
    let output = Command::new("timeout")
        .args(["--kill-after=5", &PROCESS_LIMIT.as_secs().to_string(), shell, flag, &script])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("PATH", path)
        .output()
        .expect("run coreutils timeout");
    Ran { output, took: started.elapsed() }
}

fn load_of(dir: &Path) -> serde_json::Value {
    report(dir)["backends"][0]["load"].clone()
}

#[test]
fn the_indexed_job_and_the_merge_job_run_as_local_processes() {
    let _turn = turn();
    let dir = examples().join("kubernetes");
    let load_command = container_command(&dir.join("load-job.yaml"));
    let merge_command = container_command(&dir.join("merge-job.yaml"));

    let server = Server::start(&[]);
    let results = scratch("examples-results");
    std::fs::create_dir_all(&results).unwrap();
    // Only `syncspec` is added to the PATH: the binary under test.
    let bin = scratch("examples-bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(BIN, bin.join("syncspec")).unwrap();
    let env = |index: Option<usize>| {
        let mut env = vec![
            ("TARGET", server.url.clone()),
            ("SHARDS", SHARDS.to_string()),
            ("USERS", USERS.to_string()),
            ("RUN_TIME", "2s".to_owned()),
        ];
        env.extend(index.map(|i| ("JOB_COMPLETION_INDEX", i.to_string())));
        env
    };

    // The Indexed Job: every shard at once, as parallelism = completions.
    let started = Instant::now();
    let shards: Vec<Ran> = std::thread::scope(|s| {
        let running: Vec<_> = (0..SHARDS)
            .map(|index| {
                let (command, results, bin, env) = (&load_command, &results, &bin, env(Some(index)));
                s.spawn(move || run_container(command, results, bin, &env))
            })
            .collect();
        running.into_iter().map(|r| r.join().expect("a shard thread")).collect()
    });
    let wall = started.elapsed();
    let mut counts = Vec::new();
    for (index, ran) in shards.iter().enumerate() {
        let shard = index + 1;
        assert!(ran.took < PROCESS_LIMIT, "shard {shard} ran {:?}, over the limit:\n{}", ran.took, text(&ran.output));
        assert!(ran.output.status.success(), "shard {shard} failed ({}):\n{}", ran.output.status, text(&ran.output));
        let load = load_of(&results.join(format!("shard-{shard}")));
        assert_eq!(load["shards"]["held"], serde_json::json!([shard]));
        assert_eq!(load["shards"]["of"], SHARDS);
        let count = load["sync_latency_us"]["count"].as_u64().unwrap();
        assert!(count > 0, "shard {shard} recorded no sync sample");
        eprintln!(
            "shard {shard}/{SHARDS}: {:.1} s, {} users, {count} sync samples",
            ran.took.as_secs_f64(),
            load["users"]
        );
        counts.push(count);
    }
    eprintln!("the three shards side by side: {:.1} s", wall.as_secs_f64());

    // The merge Job, once the Indexed Job completed.
    let merge = run_container(&merge_command, &results, &bin, &env(None));
    assert!(merge.took < PROCESS_LIMIT, "the merge ran {:?}:\n{}", merge.took, text(&merge.output));
    assert!(merge.output.status.success(), "the merge failed:\n{}", text(&merge.output));
    assert!(String::from_utf8_lossy(&merge.output.stdout).contains("## syncspec"), "report.md goes to the log");
    let merged = load_of(&results.join("merged"));
    assert_eq!(merged["shards"]["held"], serde_json::json!([1, 2, 3]));
    assert_eq!((merged["users"].as_u64(), merged["users_total"].as_u64()), (Some(USERS), Some(USERS)));
    let total = merged["sync_latency_us"]["count"].as_u64().unwrap();
    assert_eq!(total, counts.iter().sum::<u64>(), "merged sync samples against the shards' {counts:?}");
    eprintln!("merge: {:.1} s, {total} sync samples = {counts:?} summed", merge.took.as_secs_f64());

    // Negative control: with a shard's result gone, the same merge Job
    // fails and names the shard instead of merging two thirds of a run.
    std::fs::rename(results.join("shard-3"), results.join("held-back-3")).unwrap();
    let partial = run_container(&merge_command, &results, &bin, &env(None));
    assert_eq!(partial.output.status.code(), Some(2), "{}", text(&partial.output));
    assert!(text(&partial.output).contains("shard 3/3 missing"), "{}", text(&partial.output));

    drop(server);
    let _ = std::fs::remove_dir_all(&results);
    let _ = std::fs::remove_dir_all(&bin);
}
