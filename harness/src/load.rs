//! `syncspec load`: run a goose load scenario (or a rate sweep) and report.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use syncspec_scenarios::metrics::Summary;
use syncspec_scenarios::{Kind, LoadConfig, LoadError, LoadResult, ScenarioName, Schedule};

use crate::cli::LoadArgs;

pub(crate) fn run(args: LoadArgs) -> anyhow::Result<ExitCode> {
    if args.goose.iter().any(|a| a == "--help" || a == "-h") {
        println!("{}", syncspec_scenarios::goose_help());
        return Ok(ExitCode::SUCCESS);
    }
    let faults = crate::cli::parse_faults(&args.faults).map_err(anyhow::Error::msg)?;
    let sweeping = !args.sweep.is_empty();
    let scenario = match (args.scenario, sweeping) {
        (Some(ScenarioName::Only(Kind::Cursors)) | None, true) => ScenarioName::Only(Kind::Cursors),
        (Some(other), true) => {
            anyhow::bail!("--sweep varies the cursor rate; it runs only --scenario cursors, not {other}")
        }
        (Some(s), false) => s,
        (None, false) => anyhow::bail!("--scenario is required"),
    };
    let runtime = tokio::runtime::Runtime::new().context("while starting the tokio runtime")?;
    runtime.block_on(async {
        let (url, _stop) = crate::embedded::target_or_start(args.target.as_deref(), faults)?;
        let config = LoadConfig {
            scenario,
            url: url.clone(),
            users: args.users.unwrap_or(if sweeping { 500 } else { 1000 }),
            rate_hz: args.rate,
            run_time: args.run_time.unwrap_or(if sweeping { Duration::from_secs(20) } else { Duration::from_secs(60) }),
            increase_rate: args.increase_rate,
            shard: args.shard,
            out: args.out.clone(),
            goose_args: args.goose.clone(),
            progress: !args.quiet,
            schedule: if args.closed_loop { Schedule::Closed } else { Schedule::Open },
        };
        eprintln!(
            "syncspec load: {} with {} users (shard {}) against {url}{}",
            config.scenario,
            config.users,
            config.shard,
            if args.target.is_none() { " (embedded reference server)" } else { "" }
        );
        let result = if sweeping {
            syncspec_scenarios::sweep(&config, &args.sweep).await
        } else {
            syncspec_scenarios::run(&config).await
        };
        let result = match result {
            Ok(r) => r,
            Err(e @ (LoadError::Unreachable { .. } | LoadError::Invalid(_) | LoadError::Goose(_))) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(2));
            }
            Err(e) => return Err(e.into()),
        };
        print_summary(&result);
        if let Some(out) = &args.out {
            println!("results in {}", out.join("load.json").display());
        }
        if result.failed_thresholds.is_empty() {
            Ok(ExitCode::SUCCESS)
        } else {
            for f in &result.failed_thresholds {
                println!("threshold failed: {f}");
            }
            Ok(ExitCode::from(1))
        }
    })
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

fn line(name: &str, s: &Summary) -> String {
    format!(
        "{name:<26} p50 {:>8} ms  p95 {:>8} ms  p99 {:>8} ms  max {:>8} ms  n={}",
        ms(s.p50),
        ms(s.p95),
        ms(s.p99),
        ms(s.max),
        s.count
    )
}

fn print_summary(r: &LoadResult) {
    if !r.steps.is_empty() {
        println!("rate sweep, {} cursor clients per step", r.users);
        println!(
            "{:>8} {:>12} {:>12} {:>12} {:>10} {:>10} {:>10} {:>8}",
            "Hz", "attempted/s", "accepted/s", "limited", "p50 ms", "p95 ms", "p99 ms", "errors"
        );
        for s in &r.steps {
            println!(
                "{:>8} {:>12.2} {:>12.2} {:>12} {:>10} {:>10} {:>10} {:>8}",
                s.rate_hz,
                s.attempted_per_user_s,
                s.accepted_per_user_s,
                s.rate_limited,
                ms(s.sync_latency_us.p50),
                ms(s.sync_latency_us.p95),
                ms(s.sync_latency_us.p99),
                s.errors
            );
        }
        println!("(attempted and accepted are per client per second)");
        return;
    }
    println!(
        "{} · {} users ({} ready) · {} s steady after {} s ramp",
        r.scenario,
        r.users,
        r.users_ready,
        r.run_time_s,
        r.ramp_s.unwrap_or(0.0)
    );
    println!("{}", line("sync latency", &r.sync_latency_us));
    for (name, k) in &r.kinds {
        if r.kinds.len() > 1 {
            println!("{}", line(&format!("  {name} sync"), &k.sync_latency_us));
        }
    }
    println!("{}", line("mutation response", &r.mutation_latency_us));
    println!("{}", line("mutation visible", &r.visible_latency_us));
    println!("{}", line("send lag (load generator)", &r.send_lag_us));
    println!("{}", line(&format!("echo floor ({} B frames)", r.echo_frame_bytes), &r.echo_rtt_us));
    println!(
        "sync over echo floor: {}x at p50, {}x at p95",
        r.sync_over_echo_p50.map_or("-".into(), |x| x.to_string()),
        r.sync_over_echo_p95.map_or("-".into(), |x| x.to_string())
    );
    println!(
        "writes: {} sent, {} accepted, {} rate-limited, {} errors; changes seen by readers: {}",
        r.updates_sent, r.updates_accepted, r.rate_limited, r.errors, r.updates_received
    );
    println!(
        "delivery: {} changes owed to readers where every update counts, {} missing; {} cursor views not ending on the writer's latest",
        r.updates_expected, r.updates_missing, r.stale_views
    );
    for (name, k) in &r.kinds {
        println!(
            "  {name}: {} users in {} rooms, {:.2} writes attempted and {:.2} accepted per user per second",
            k.users, k.rooms, k.attempted_per_user_s, k.accepted_per_user_s
        );
    }
    println!(
        "memory: {:.1} MiB peak, {:.1} KiB per simulated client",
        r.memory.rss_peak_bytes as f64 / 1048576.0,
        r.memory.per_client_bytes as f64 / 1024.0
    );
    for e in &r.error_samples {
        println!("  error: {e}");
    }
}
