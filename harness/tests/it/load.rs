//! `syncspec load` measures what it claims: a backend that delays pushes
//! by a known amount shows that delay, and a backend that stalls shows the
//! stall in every write scheduled during it, not once per client (no
//! coordinated omission). The closed-loop schedule, the classic mistake,
//! is run as the negative control the stall check must catch. The
//! history and reply clients run briefly against the reference and owe
//! their readers every message and token.

// Each test holds the suite-wide turn (a std mutex shared with the sync
// tests of `check.rs`) for its whole run, awaits included: that is the point.
#![allow(clippy::await_holding_lock)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use syncspec::proxy::{Direction, Proxy};
use syncspec_server::server::{self, ServerConfig};

use crate::support::{report, scratch, turn};

const BIN: &str = env!("CARGO_BIN_EXE_syncspec");

/// A reference server on a free loopback port, for the life of the test.
async fn server() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = ServerConfig { workers: 0, ..ServerConfig::standard() };
    tokio::spawn(server::run(listener, config, std::future::pending::<()>()));
    addr
}

/// Runs `syncspec load` with `users` clients in this process (`--users`
/// unless `extra` names it) and returns the load result from its `report.json`.
async fn load(
    scenario: &str,
    users: u64,
    target: &str,
    out: &Path,
    run_time: &str,
    extra: &[&str],
) -> serde_json::Value {
    // syncspec's options, then goose's after `--`.
    let split = extra.iter().position(|a| *a == "--").unwrap_or(extra.len());
    let (ours, goose) = (&extra[..split], extra.get(split + 1..).unwrap_or(&[]));
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(["load", "--scenario", scenario, "--rate", "10", "--quiet", "--run-time", run_time]);
    if !ours.contains(&"--users") {
        cmd.args(["--users", &users.to_string()]);
    }
    cmd.args(["--target", target, "--out"])
        .arg(out)
        .args(ours)
        .args(["--", "--no-print-metrics"])
        .args(goose)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output =
        tokio::time::timeout(Duration::from_secs(90), cmd.output()).await.expect("the run ends by itself").unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}\n{stdout}\n{}", output.status, String::from_utf8_lossy(&output.stderr));
    let result = load_result(out);
    assert_eq!(result["errors"], 0, "{stdout}");
    assert_eq!(result["users_ready"], users, "{stdout}");
    result
}

/// The load run inside a run directory's `report.json`.
fn load_result(out: &Path) -> serde_json::Value {
    let report = report(out);
    assert_eq!(report["schema_version"], 1);
    report["backends"][0]["load"].clone()
}

fn p50_ms(result: &serde_json::Value) -> f64 {
    result["sync_latency_us"]["p50"].as_f64().unwrap() / 1000.0
}

/// Sync samples at or above `at_least_us`, from the run's whole interval log.
fn sync_samples_above(out: &Path, at_least_us: u64) -> u64 {
    let log = std::fs::read(out.join("sync.hlog")).unwrap();
    let mut total = 0;
    for (_, h) in syncspec_scenarios::metrics::read_log(&log).unwrap() {
        total += h.count_between(at_least_us, u64::MAX);
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_push_delay_is_recorded() {
    let _turn = turn();
    let upstream = server().await;
    let proxy = Proxy::start(upstream).await.unwrap();
    // Cursors: rooms of 5, 10 moves a second each.
    let direct = load("cursors", 10, &format!("http://{upstream}"), &scratch("load-direct"), "3s", &[]).await;
    proxy.set_delay(Direction::ServerToClient, Duration::from_millis(100));
    let delayed = load("cursors", 10, &format!("http://{}", proxy.addr()), &scratch("load-delayed"), "3s", &[]).await;
    let added = p50_ms(&delayed) - p50_ms(&direct);
    eprintln!("sync p50: direct {} ms, through a 100 ms push delay {} ms", p50_ms(&direct), p50_ms(&delayed));
    // Every push crossed the 100 ms link once: the median moves by that much,
    // give or take scheduling on a shared machine.
    assert!((95.0..=160.0).contains(&added), "direct p50 {} ms, delayed p50 {} ms", p50_ms(&direct), p50_ms(&delayed));
    assert!(delayed["sync_latency_us"]["count"].as_u64().unwrap() > 500);
    assert_eq!(delayed["updates_missing"], 0);
}

/// Runs a load through a proxy that stalls both ways for 1.5 s in the middle,
/// and returns how many sync samples were 750 ms or more.
async fn stalled_run(name: &str, extra: &[&str]) -> u64 {
    let upstream = server().await;
    let proxy = Proxy::start(upstream).await.unwrap();
    let out = scratch(name);
    let target = format!("http://{}", proxy.addr());
    // A stream: one writer, 50 tokens a second, 20 readers; every token
    // counts (a cursor would rightly be coalesced to its latest position).
    let run = load("stream", 21, &target, &out, "6s", extra);
    let stall = async {
        // Once the writer is busy, stall for 1.5 s.
        while proxy.stats().to_server < 20_000 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        proxy.stall(Direction::ClientToServer, true);
        proxy.stall(Direction::ServerToClient, true);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        proxy.stall(Direction::ClientToServer, false);
        proxy.stall(Direction::ServerToClient, false);
    };
    let (_, _) = tokio::join!(run, stall);
    sync_samples_above(&out, 750_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_shows_in_every_write_scheduled_during_it() {
    let _turn = turn();
    // 50 tokens a second stalled for 1.5 s: about 75 tokens, each seen by
    // 20 readers, waited from 0 to 1.5 s; about half of them (750 samples)
    // 750 ms or more.
    let open = stalled_run("load-stall-open", &[]).await;
    assert!(open >= 500, "only {open} sync samples of 750 ms or more: the stall was hidden");
    // The negative control: a closed loop stamps after each answer, so the
    // writer has about one slow token (20 samples); the same check must reject it.
    let closed = stalled_run("load-stall-closed", &["--closed-loop"]).await;
    assert!(closed < 500, "the closed-loop control recorded {closed} slow samples; the check cannot tell");
    eprintln!("sync samples of 750 ms or more: open schedule {open}, closed-loop control {closed}");
    assert!(open >= 3 * closed.max(1), "open {open} vs closed {closed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_clients_page_back_while_page_0_gets_every_message() {
    let _turn = turn();
    let upstream = server().await;
    let out = scratch("load-history");
    // One channel of 50, seeded with 200 messages: a message per 30 s and an
    // older page per 10 s per client on average, so about 10 messages and
    // 30 page loads in 6 s. A page that overlaps the last, comes out of
    // order or leaves a seeded message out is an error, which `load` refuses.
    let result = load("history", 50, &format!("http://{upstream}"), &out, "6s", &[]).await;
    assert!(result["page_latency_us"]["count"].as_u64().unwrap() > 0, "no older page loaded: {result}");
    // Page 0's end is pinned: every message sent after a client subscribed reaches it.
    assert!(result["sync_latency_us"]["count"].as_u64().unwrap() > 0);
    assert!(result["updates_expected"].as_u64().unwrap() > 0);
    assert_eq!(result["updates_missing"], 0);
    assert!(out.join("page.hlog").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_tokens_written_by_an_action_reach_every_reader() {
    let _turn = turn();
    let upstream = server().await;
    let out = scratch("load-reply");
    // One channel of 21: a 100-token reply every 2 s through
    // `messages:streamReply`, 20 readers; two replies fit in 4 s.
    let result = load("reply", 21, &format!("http://{upstream}"), &out, "4s", &[]).await;
    assert!(result["action_latency_us"]["count"].as_u64().unwrap() >= 1, "no ActionResponse: {result}");
    // At least one whole reply's tokens were owed to the 20 readers, and each arrived.
    assert!(result["updates_expected"].as_u64().unwrap() >= 2000, "{result}");
    assert_eq!(result["updates_missing"], 0);
    assert_eq!(result["updates_accepted"], result["updates_sent"]);
    assert!(out.join("action.hlog").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_goose_test_plan_shapes_the_run_and_stops_the_writers() {
    let _turn = turn();
    let upstream = server().await;
    let out = scratch("load-test-plan");
    // Up to 5 clients in 1 s, hold 3 s, down at once: goose's plan, not --run-time.
    let result =
        load("cursors", 5, &format!("http://{upstream}"), &out, "60s", &["--", "--test-plan", "5,1s;5,3s;0,0s"]).await;
    let steady = result["run_time_s"].as_f64().unwrap();
    assert!((1.0..10.0).contains(&steady), "the writers wrote for {steady} s, not goose's 3 s hold");
    assert!(result["sync_latency_us"]["count"].as_u64().unwrap() > 100);
    assert_eq!(result["stale_views"], 0);
}

#[test]
fn an_unreachable_target_is_could_not_run() {
    let output = std::process::Command::new(BIN)
        .args(["load", "--scenario", "chat", "--users", "5", "--target", "http://127.0.0.1:9", "--quiet"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("could not reach http://127.0.0.1:9"));
}

#[test]
fn bad_arguments_are_could_not_run_with_the_reason() {
    for (args, expect) in [
        (&["load", "--scenario", "chatty"][..], "unknown scenario"),
        (&["load", "--scenario", "chat", "--sweep", "5,10"][..], "only --scenario cursors"),
        (&["load", "--scenario", "chat", "--shard", "3/2"][..], "from 1 to the count"),
        (&["load", "--scenario", "chat", "--rate", "0"][..], "--rate must be above 0"),
        (&["load", "--scenario", "chat", "--", "-u", "7"][..], "give --users to syncspec"),
        (&["load", "--scenario", "chat", "--", "--no-such-goose-option"][..], "no-such-goose-option"),
    ] {
        let output = std::process::Command::new(BIN).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_goose_threshold_exits_1_with_every_file_written() {
    let _turn = turn();
    let upstream = server().await;
    let out = scratch("load-threshold");
    let output = tokio::process::Command::new(BIN)
        .args(["load", "--scenario", "cursors", "--users", "5", "--rate", "5", "--run-time", "2s", "--quiet"])
        .arg("--target")
        .arg(format!("http://{upstream}"))
        .arg("--out")
        .arg(&out)
        // No loopback push takes under a microsecond: this rule must fail.
        .args(["--", "--threshold", "p95<1us for WS cursors sync", "--no-threshold-abort", "--no-print-metrics"])
        .arg("--report-file")
        .arg(out.join("goose.html"))
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("threshold failed"), "{stdout}");
    let result = load_result(&out);
    assert_eq!(result["failed_thresholds"].as_array().map(Vec::len), Some(1));
    let files = ["sync.hlog", "mutation.hlog", "visible.hlog", "send_lag.hlog", "echo.hlog"];
    for file in files.into_iter().chain(["report.json", "index.html", "report.md", "junit.xml", "goose.html"]) {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    // goose saw the samples: its report names the request the rule judged.
    let report = std::fs::read_to_string(out.join("goose.html")).unwrap();
    assert!(report.contains("cursors sync"), "goose's report has no cursors sync requests");
    // The fields a load result promises.
    for field in ["scenario", "users", "run_time_s", "updates_sent", "updates_received", "rate_limited", "errors"] {
        assert!(!result[field].is_null(), "{field} missing");
    }
    for summary in [&result["sync_latency_us"], &result["mutation_latency_us"], &result["echo"]["rtt_us"]] {
        for figure in ["p50", "p95", "p99", "max", "count"] {
            assert!(summary[figure].is_u64(), "{figure} missing in {summary}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_split_whole_rooms_and_their_logs_merge() {
    let _turn = turn();
    let upstream = server().await;
    let target = format!("http://{upstream}");
    // 15 cursor clients are 3 rooms of 5: shard 1/2 runs rooms 0 and 2, shard 2/2 room 1.
    let (one, two) = (scratch("load-shard-1"), scratch("load-shard-2"));
    let (a, b) = tokio::join!(
        load("cursors", 10, &target, &one, "2s", &["--shard", "1/2", "--users", "15"]),
        load("cursors", 5, &target, &two, "2s", &["--shard", "2/2", "--users", "15"]),
    );
    assert_eq!((a["users"].as_u64(), b["users"].as_u64()), (Some(10), Some(5)));
    assert_eq!((a["shards"]["held"][0].as_u64(), b["shards"]["held"][0].as_u64()), (Some(1), Some(2)));
    // Each shard's interval log holds only its own samples; added up they are
    // the run's, exactly as each shard counted them.
    let count = |out: &Path| sync_samples_above(out, 0);
    let merged: u64 = count(&one) + count(&two);
    let reported = a["sync_latency_us"]["count"].as_u64().unwrap() + b["sync_latency_us"]["count"].as_u64().unwrap();
    assert!(merged >= reported && reported > 0, "merged {merged}, reported {reported}");

    // `report merge` adds them up: every client and every steady sample, once.
    let out = scratch("load-shards-merged");
    let merge = std::process::Command::new(BIN)
        .args(["report", "merge"])
        .arg(&one)
        .arg(&two)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(merge.status.success(), "{}", String::from_utf8_lossy(&merge.stderr));
    let whole = load_result(&out);
    assert_eq!(whole["users"].as_u64(), Some(15));
    assert_eq!(whole["sync_latency_us"]["count"].as_u64(), Some(reported));
    assert_eq!(whole["shards"]["held"], serde_json::json!([1, 2]));
    // A shard missing, or given twice, is refused by name.
    for (shards, says) in [(vec![&one], "shard 2/2 missing"), (vec![&one, &two, &two], "shard 2/2 is in both")] {
        let refused = std::process::Command::new(BIN)
            .args(["report", "merge"])
            .args(shards)
            .arg("--out")
            .arg(scratch("load-shards-refused"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
    }
}
