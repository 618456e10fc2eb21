//! `syncspec load`: run a goose load scenario (or a rate sweep) and report.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use syncspec::suite::Auth;
use syncspec_reports::assessment::group;
use syncspec_reports::hist::Summary;
use syncspec_reports::load::{LoadResult, Sweep};
use syncspec_reports::report::Report;
use syncspec_scenarios::{Kind, LoadAuth, LoadConfig, LoadError, ScenarioName, Schedule};

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
        let secret = args.auth_secret.as_deref().map(str::as_bytes);
        let (url, _stop) = crate::embedded::target_or_start(args.target.as_deref(), faults, secret)?;
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
            auth: load_auth(&args),
        };
        eprintln!(
            "syncspec load: {} with {} users (shard {}) against {url}{}",
            config.scenario,
            config.users,
            config.shard,
            if args.target.is_none() { " (embedded reference server)" } else { "" }
        );
        let embedded = args.target.is_none().then_some(args.faults.as_slice());
        let mut backend = crate::column::new(&url, embedded).await;
        let failed_thresholds = if sweeping {
            match syncspec_scenarios::sweep(&config, &args.sweep).await {
                Ok((sweep, failed)) => {
                    print_sweep(&sweep);
                    backend.sweep = Some(sweep);
                    failed
                }
                Err(e) => return could_not_run(e),
            }
        } else {
            match syncspec_scenarios::run(&config).await {
                Ok(result) => {
                    print_summary(&result);
                    let failed = result.failed_thresholds.clone();
                    backend.load = Some(result);
                    failed
                }
                Err(e) => return could_not_run(e),
            }
        };
        if let Some(out) = &args.out {
            let index = crate::output::write(&Report::new(vec![backend]), out, None)?;
            println!("report in {}", index.display());
        }
        if failed_thresholds.is_empty() {
            Ok(ExitCode::SUCCESS)
        } else {
            for f in &failed_thresholds {
                println!("threshold failed: {f}");
            }
            Ok(ExitCode::from(1))
        }
    })
}

/// How the load's connections authenticate: one given token, or a token
/// minted per simulated user whose subject is the user's name.
fn load_auth(args: &LoadArgs) -> Option<LoadAuth> {
    match crate::embedded::given_auth(args.auth_secret.as_deref(), args.auth_token.as_deref(), &args.auth_issuer) {
        Auth::None => None,
        Auth::Token(token) => Some(LoadAuth::Token(token)),
        mint @ Auth::Mint { .. } => {
            Some(LoadAuth::PerUser(Arc::new(move |user: &str| mint.mint(user, None).unwrap_or_default())))
        }
    }
}

/// Bad settings, an unreachable target and history that could not be
/// seeded exit 2 with the reason; anything else is an error.
fn could_not_run(e: LoadError) -> anyhow::Result<ExitCode> {
    match e {
        LoadError::Unreachable { .. } | LoadError::Invalid(_) | LoadError::Goose(_) | LoadError::Seed { .. } => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(2))
        }
        other => Err(other.into()),
    }
}

/// Milliseconds to two places, for aligned columns.
fn fixed_ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

fn line(name: &str, s: &Summary) -> String {
    format!(
        "{name:<26} p50 {:>8} ms  p95 {:>8} ms  p99 {:>8} ms  max {:>8} ms  n={}",
        fixed_ms(s.p50),
        fixed_ms(s.p95),
        fixed_ms(s.p99),
        fixed_ms(s.max),
        s.count
    )
}

pub(crate) fn print_sweep(sweep: &Sweep) {
    println!("rate sweep, {} cursor clients per step", sweep.users);
    println!(
        "{:>8} {:>12} {:>12} {:>12} {:>10} {:>10} {:>10} {:>8}",
        "Hz", "attempted/s", "accepted/s", "limited", "p50 ms", "p95 ms", "p99 ms", "errors"
    );
    for s in &sweep.steps {
        let f = &s.figures;
        println!(
            "{:>8} {:>12.2} {:>12.2} {:>12} {:>10} {:>10} {:>10} {:>8}",
            s.rate_hz,
            f.attempted_per_user_s,
            f.accepted_per_user_s,
            f.rate_limited,
            fixed_ms(f.sync_latency_us.p50),
            fixed_ms(f.sync_latency_us.p95),
            fixed_ms(f.sync_latency_us.p99),
            f.errors
        );
    }
    println!("(attempted and accepted are per client per second)");
}

pub(crate) fn print_summary(r: &LoadResult) {
    let f = &r.figures;
    println!(
        "{} · {} users ({} ready) · {} s steady after {} s ramp",
        r.scenario,
        f.users,
        r.users_ready,
        r.run_time_s,
        r.ramp_s.unwrap_or(0.0)
    );
    println!("{}", line("sync latency", &f.sync_latency_us));
    if r.kinds.len() > 1 {
        for (name, k) in &r.kinds {
            println!("{}", line(&format!("  {name} sync"), &k.figures.sync_latency_us));
        }
    }
    println!("{}", line("mutation response", &f.mutation_latency_us));
    println!("{}", line("mutation visible", &f.visible_latency_us));
    // The kinds' own round trips, when the run had such clients.
    if r.kinds.contains_key(Kind::History.name()) {
        println!("{}", line("older page loaded", &f.page_latency_us));
    }
    if r.kinds.contains_key(Kind::Reply.name()) {
        println!("{}", line("action response", &f.action_latency_us));
    }
    println!("{}", line("send lag (load generator)", &f.send_lag_us));
    println!("{}", line(&format!("echo floor ({} B frames)", r.echo.frame_bytes), &r.echo.rtt_us));
    println!(
        "sync over echo floor: {}x at p50, {}x at p95",
        r.sync_over_echo_p50.map_or("-".into(), |x| x.to_string()),
        r.sync_over_echo_p95.map_or("-".into(), |x| x.to_string())
    );
    println!(
        "writes: {} sent, {} accepted, {} rate-limited, {} errors; changes seen by readers: {}",
        f.updates_sent, f.updates_accepted, f.rate_limited, f.errors, f.updates_received
    );
    println!(
        "delivery: {} changes owed to readers where every update counts, {} missing; {} cursor views not ending on the writer's latest",
        f.updates_expected, f.updates_missing, f.stale_views
    );
    for (name, k) in &r.kinds {
        println!(
            "  {name}: {} users in {} rooms, {:.2} writes attempted and {:.2} accepted per user per second",
            k.figures.users, k.rooms, k.figures.attempted_per_user_s, k.figures.accepted_per_user_s
        );
    }
    println!(
        "memory: {:.1} MiB peak, {} KiB per simulated client",
        r.memory.rss_peak_bytes as f64 / 1048576.0,
        group(r.memory.per_client_bytes as f64 / 1024.0)
    );
    for e in &r.error_samples {
        println!("  error: {e}");
    }
}
