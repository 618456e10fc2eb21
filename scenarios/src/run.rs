//! One load run: plan the rooms, measure the echo floor, hand the users to
//! goose, record, and put the result together.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use goose::config::{GooseConfiguration, GooseDefault, GooseDefaultType as _};
use goose::prelude::*;
use syncspec_reports::load::{Echo, Figures, Histograms, KindResult, LoadResult, Memory, Metric, Shards, Step, Sweep};

use crate::conn::{Conn, Joined, Owner, Sample};
use crate::echo;
use crate::metrics::{Clock, Counters, Recorder};
use crate::plan::{self, Kind, ScenarioName, Shard};
use crate::room::{Delivery, Room};
use crate::writer::{self, Schedule};

/// After the writers stop, how long readers keep listening before goose stops them.
const DRAIN: Duration = Duration::from_secs(4);
/// The most clients one process plans for (each is a socket, and with the
/// embedded server two); beyond that, shard the load over processes.
pub const MAX_USERS: usize = 200_000;
/// How long a user gathers samples before handing them to goose.
const DELIVER_EVERY: Duration = Duration::from_millis(200);
/// How long users leaving as the writers stop keep listening.
const LEAVE_GRACE: Duration = Duration::from_secs(2);
/// How often the progress line is printed.
const PROGRESS_EVERY: u64 = 5;
/// The catalogue's promise for high-frequency functions: accepted updates per user per second.
pub(crate) const RATE_LIMIT_PER_USER_S: f64 = 20.0;

/// What a load run is asked to do.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// Which clients.
    pub scenario: ScenarioName,
    /// The backend, named like a deployment (`http://127.0.0.1:3210`).
    pub url: String,
    /// Simulated clients over all shards.
    pub users: usize,
    /// Cursor moves per client per second.
    pub rate_hz: f64,
    /// How long the writers write once every client has joined.
    pub run_time: Duration,
    /// Clients started per second while ramping up.
    pub increase_rate: f64,
    /// Which part of the load this process runs.
    pub shard: Shard,
    /// Where the interval logs go (the caller writes `report.json` beside them).
    pub out: Option<PathBuf>,
    /// Options for goose, as on its own command line.
    pub goose_args: Vec<String>,
    /// Print a progress line every few seconds (to stderr).
    pub progress: bool,
    /// Open (the default) or the closed-loop negative control.
    pub schedule: Schedule,
    /// How each connection authenticates; `None` for no `Authenticate`.
    pub auth: Option<LoadAuth>,
}

/// The token each load connection sends in `Authenticate`, right after
/// `Connect`.
#[derive(Clone)]
pub enum LoadAuth {
    /// The same token on every connection.
    Token(String),
    /// A token per simulated user, made from the user's name (which the
    /// caller makes its subject): minting needs the secret's owner's code,
    /// which this crate does not depend on.
    PerUser(Arc<dyn Fn(&str) -> String + Send + Sync>),
}

impl LoadAuth {
    /// The token for the user named `user`.
    pub(crate) fn token_for(&self, user: &str) -> String {
        match self {
            LoadAuth::Token(token) => token.clone(),
            LoadAuth::PerUser(mint) => mint(user),
        }
    }
}

impl std::fmt::Debug for LoadAuth {
    // Tokens are credentials: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadAuth::Token(_) => f.write_str("LoadAuth::Token(..)"),
            LoadAuth::PerUser(_) => f.write_str("LoadAuth::PerUser(..)"),
        }
    }
}

/// Why a run could not happen or did not pass.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The target did not answer.
    #[error("could not reach {url}: {detail}")]
    Unreachable {
        /// The target.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// Bad settings.
    #[error("{0}")]
    Invalid(String),
    /// goose refused to run.
    #[error("goose: {0}")]
    Goose(String),
    /// The history channels could not be given their history.
    #[error("while seeding the history channels of {url}: {detail}")]
    Seed {
        /// The target.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// Writing the results failed.
    #[error("while writing results to {path}: {source}")]
    Write {
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Shared by every user of a run.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) url: String,
    pub(crate) recorder: Arc<Recorder>,
    pub(crate) rate_hz: f64,
    pub(crate) schedule: Schedule,
    auth: Option<LoadAuth>,
    run_time_us: u64,
    /// Per kind: the slots, `(room, member)`, users take in order.
    slots: Vec<Vec<(Arc<Room>, usize)>>,
    next: Vec<AtomicUsize>,
    planned: usize,
    /// Users whose join finished (well or not).
    joined: AtomicUsize,
    ready: AtomicUsize,
    /// Writes intended at or after this stamp are not sent (`u64::MAX` until known).
    stop_writes: AtomicU64,
    /// Per kind, the writes counted when the steady part began.
    steady_counters: std::sync::Mutex<Option<Vec<Written>>>,
    request_names: Vec<[String; Metric::ALL.len()]>,
}

impl Run {
    pub(crate) fn may_write(&self, stamp: u64) -> bool {
        stamp < self.stop_writes.load(Ordering::Relaxed)
    }

    /// One more user finished joining; the last one starts the steady part.
    fn joined(&self, ok: bool) {
        if ok {
            self.ready.fetch_add(1, Ordering::SeqCst);
        }
        if self.joined.fetch_add(1, Ordering::SeqCst) + 1 == self.planned {
            let now = self.recorder.clock().now();
            self.recorder.set_steady_from(now);
            self.stop_writes.store(now + self.run_time_us, Ordering::SeqCst);
            *self.steady_counters.lock().unwrap_or_else(|p| p.into_inner()) = Some(self.snapshot());
        }
    }

    fn snapshot(&self) -> Vec<Written> {
        Kind::ALL
            .iter()
            .map(|k| {
                let c = self.recorder.counters(*k);
                Written { sent: c.sent.load(Ordering::Relaxed), accepted: c.accepted.load(Ordering::Relaxed) }
            })
            .collect()
    }
}

/// Writes of one kind sent and accepted, at one moment or between two.
#[derive(Clone, Copy, Debug, Default)]
struct Written {
    sent: u64,
    accepted: u64,
}

impl Written {
    fn since(self, earlier: Written) -> Written {
        Written { sent: self.sent - earlier.sent, accepted: self.accepted - earlier.accepted }
    }
}

/// A user's session data: its connection and the samples waiting for goose.
#[derive(Clone, Debug)]
struct Session {
    conn: Conn,
    samples: flume::Receiver<Sample>,
    writer: Arc<AbortOnDrop>,
}

#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

type BoxFuture<'r> = std::pin::Pin<Box<dyn std::future::Future<Output = TransactionResult> + Send + 'r>>;

fn transaction<F>(f: F) -> Transaction
where
    F: for<'r> Fn(&'r mut GooseUser) -> BoxFuture<'r> + Send + Sync + 'static,
{
    Transaction::new(Arc::new(f))
}

/// Takes a slot, connects, subscribes, and starts writing.
async fn join(run: Arc<Run>, kind: Kind, user: &mut GooseUser) -> TransactionResult {
    let i = run.next[kind as usize].fetch_add(1, Ordering::SeqCst);
    let Some((room, member)) = run.slots[kind as usize].get(i).cloned() else {
        // More goose users than planned slots (a test plan above --users): idle.
        return Ok(());
    };
    let (tx, rx) = flume::unbounded();
    let owner = Owner { kind, room: room.clone(), member, recorder: run.recorder.clone(), samples: tx };
    let (function, args) = writer::subscription(kind, &room.name);
    let started = Instant::now();
    let name = format!("{} join", kind.name());
    let token = run.auth.as_ref().map(|auth| auth.token_for(&crate::conn::member_name(&room.name, member)));
    match Conn::open(&run.url, function, args, token.as_deref(), owner.clone()).await {
        Ok(Joined { conn, ready, first }) => {
            let writer = tokio::spawn(writer::write(run.clone(), owner, conn.clone(), ready, first));
            user.set_session_data(Session { conn, samples: rx, writer: Arc::new(AbortOnDrop(writer)) });
            run.joined(true);
            user.record_custom_request_duration("WS", &name, started.elapsed(), true, None, None).await?;
        }
        Err(e) => {
            run.recorder.error(kind, e.to_string());
            run.joined(false);
            user.record_custom_request_duration("WS", &name, started.elapsed(), false, None, Some(&e.to_string()))
                .await?;
        }
    }
    Ok(())
}

/// Hands the samples the connection produced to goose.
async fn deliver(run: Arc<Run>, kind: Kind, user: &mut GooseUser) -> TransactionResult {
    let Some(session) = user.get_session_data::<Session>().cloned() else {
        tokio::time::sleep(Duration::from_secs(1)).await;
        return Ok(());
    };
    let mut batch = Vec::new();
    match tokio::time::timeout(Duration::from_millis(500), session.samples.recv_async()).await {
        Ok(Ok(sample)) => {
            batch.push(sample);
            // Gather for a moment: goose handles a batch far more cheaply
            // than a transaction per sample, and the samples' times were
            // taken when the changes arrived, not now.
            tokio::time::sleep(DELIVER_EVERY).await;
        }
        Ok(Err(_)) => tokio::time::sleep(Duration::from_secs(1)).await,
        Err(_) => {}
    }
    while batch.len() < 10_000 {
        match session.samples.try_recv() {
            Ok(sample) => batch.push(sample),
            Err(_) => break,
        }
    }
    for s in batch {
        let name = &run.request_names[kind as usize][s.metric.index()];
        user.record_custom_request_duration("WS", name, s.latency, s.failure.is_none(), None, s.failure.as_deref())
            .await?;
    }
    Ok(())
}

/// Stops writing and closes the connection cleanly. Normally the writers
/// stopped `DRAIN` before goose stops the users; when goose's own plan
/// (`--test-plan`, `--run-time`) ends the run first, the first user to leave
/// stops every writer, and users leaving right then keep listening for
/// what is still in flight.
async fn leave(run: Arc<Run>, user: &mut GooseUser) -> TransactionResult {
    if let Some(session) = user.get_session_data::<Session>().cloned() {
        let clock = run.recorder.clock();
        let now = clock.now();
        let stopped = run.stop_writes.fetch_min(now, Ordering::SeqCst).min(now);
        session.writer.0.abort();
        let listen_until = stopped + LEAVE_GRACE.as_micros() as u64;
        if now < listen_until {
            tokio::time::sleep_until(clock.instant(listen_until).into()).await;
        }
        session.conn.close().await;
    }
    Ok(())
}

fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb * 1024)
}

/// goose, set up for this run: one scenario per kind of client, syncspec's
/// ramp and run time unless goose was given its own, and the report file.
fn attack(config: &LoadConfig, goose_config: GooseConfiguration, run: &Arc<Run>) -> Result<GooseAttack, LoadError> {
    let goose_err = |e: GooseError| LoadError::Goose(goose_message(e));
    // One shared HTTP client (we make no HTTP requests): a client per user
    // would cost thousands of TLS configurations and connection pools.
    let mut attack = GooseAttack::initialize_with_config(goose_config)
        .map_err(goose_err)?
        .set_client_builder_without_cookies(goose::client::GooseClientBuilder::new().without_cookies())
        .map_err(goose_err)?;
    for kind in Kind::ALL {
        let users = run.slots[kind as usize].len();
        if users == 0 {
            continue;
        }
        let (r1, r2, r3) = (run.clone(), run.clone(), run.clone());
        let k = kind;
        let scenario = Scenario::new(kind.name())
            .set_weight(users)
            .map_err(goose_err)?
            .register_transaction(
                transaction(move |u| Box::pin(join(r1.clone(), k, u))).set_name("join").set_on_start(),
            )
            .register_transaction(transaction(move |u| Box::pin(deliver(r2.clone(), k, u))).set_name("deliver"))
            .register_transaction(transaction(move |u| Box::pin(leave(r3.clone(), u))).set_name("leave").set_on_stop());
        attack = attack.register_scenario(scenario);
    }
    let run_time_s = (config.run_time + DRAIN).as_secs_f64().ceil() as usize;
    let increase = format!("{}", config.increase_rate);
    // goose's own load shape, when given after `--`, wins over ours.
    let given = |names: &[&str]| goose_gives(&config.goose_args, names);
    let planned_by_goose = given(&["--test-plan", "--iterations"]);
    let mut attack = *attack.set_default(GooseDefault::Host, config.url.as_str()).map_err(goose_err)?;
    attack = *attack.set_default(GooseDefault::NoTelnet, true).map_err(goose_err)?;
    // Our transactions (join, deliver, leave) and scenario loops are plumbing,
    // and custom requests have no status codes: counting them would cost more
    // than the samples themselves.
    for off in [GooseDefault::NoTransactionMetrics, GooseDefault::NoScenarioMetrics, GooseDefault::NoStatusCodes] {
        attack = *attack.set_default(off, true).map_err(goose_err)?;
    }
    if !planned_by_goose {
        attack = *attack.set_default(GooseDefault::Users, run.planned).map_err(goose_err)?;
        attack = *attack.set_default(GooseDefault::RunTime, run_time_s).map_err(goose_err)?;
        if !given(&["-s", "--increase-time"]) {
            attack = *attack.set_default(GooseDefault::IncreaseRate, increase.as_str()).map_err(goose_err)?;
        }
    }
    // goose writes its own report files (`-- --report-file DIR/goose.html`) before we write ours.
    if let Some(out) = &config.out {
        std::fs::create_dir_all(out).map_err(|source| LoadError::Write { path: out.clone(), source })?;
    }
    Ok(attack)
}

/// Once a second: closes the second in the interval logs, samples the
/// memory peak, and every few seconds prints the progress line.
fn spawn_ticker(run: Arc<Run>, peak: Arc<AtomicU64>, progress: bool) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let mut last = (0u64, 0u64);
        let mut seconds = 0u64;
        loop {
            tick.tick().await;
            seconds += 1;
            let sync = run.recorder.roll();
            if let Some(rss) = rss_bytes() {
                peak.fetch_max(rss, Ordering::Relaxed);
            }
            if progress && seconds % PROGRESS_EVERY == 0 {
                let (sent, received, limited, errors) = totals(&run.recorder);
                let rate = |now: u64, before: u64| (now - before) / PROGRESS_EVERY;
                eprintln!(
                    "[{seconds:>4}s] users {}/{} ready · writes {}/s · changes seen {}/s · p95 sync {:.1} ms (last 1 s) · rate-limited {limited} · errors {errors}",
                    run.ready.load(Ordering::Relaxed),
                    run.planned,
                    rate(sent, last.0),
                    rate(received, last.1),
                    sync.quantile(0.95) as f64 / 1000.0,
                );
                last = (sent, received);
            }
        }
    })
}

/// Runs one load and returns what it measured.
pub async fn run(config: &LoadConfig) -> Result<LoadResult, LoadError> {
    if config.users == 0 || config.users > MAX_USERS {
        return Err(LoadError::Invalid(format!("--users must be from 1 to {MAX_USERS}, got {}", config.users)));
    }
    if !(config.rate_hz > 0.0 && config.rate_hz <= 1000.0) {
        return Err(LoadError::Invalid(format!("--rate must be above 0 and at most 1000 Hz, got {}", config.rate_hz)));
    }
    if config.increase_rate.is_nan() || config.increase_rate <= 0.0 {
        return Err(LoadError::Invalid("the increase rate must be above 0".into()));
    }
    let rooms = plan::rooms(config.scenario, config.users, config.shard);
    let planned: usize = rooms.iter().map(|r| r.members).sum();
    if planned == 0 {
        return Err(LoadError::Invalid(format!(
            "shard {} of {} users has no room; use fewer shards or more users",
            config.shard, config.users
        )));
    }
    // The plan and the target are syncspec's: goose must not size or aim the run.
    for (flags, instead, why) in [
        (["-u", "--users"], "--users", "the rooms are planned from it"),
        (["-H", "--host"], "--target", "every connection is aimed with it"),
    ] {
        if goose_gives(&config.goose_args, &flags) {
            return Err(LoadError::Invalid(format!("give {instead} to syncspec, before `--`: {why}")));
        }
    }
    // goose's options first: a typo should not wait for a connection.
    let goose_config =
        GooseConfiguration::parse_args_default(&config.goose_args).map_err(|e| LoadError::Goose(goose_message(e)))?;
    probe(&config.url).await?;

    let kinds: Vec<Kind> =
        plan::split(config.scenario, config.users).into_iter().filter(|(_, n)| *n > 0).map(|(k, _)| k).collect();
    // The floor, with frames the size of this scenario's pushes.
    let frame = kinds.iter().map(|k| writer::typical_push_bytes(*k)).max().unwrap_or(512);
    let echo = echo::floor(frame, 2_000, Duration::from_secs(3))
        .await
        .map_err(|e| LoadError::Invalid(format!("the echo floor could not be measured: {e}")))?;

    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let clock = Clock::start();
    let recorder = Arc::new(Recorder::new(clock));
    let mut slots: Vec<Vec<(Arc<Room>, usize)>> = Kind::ALL.iter().map(|_| Vec::new()).collect();
    let mut all_rooms = Vec::new();
    for plan in &rooms {
        let room = Arc::new(Room::new(plan, &run_id));
        for member in 0..plan.members {
            slots[plan.kind as usize].push((room.clone(), member));
        }
        all_rooms.push(room);
    }
    // History to page through, before any client subscribes.
    let history: Vec<&Room> = all_rooms.iter().filter(|r| r.kind == Kind::History).map(|r| &**r).collect();
    if !history.is_empty() {
        crate::history::seed(&config.url, &history, config.auth.as_ref())
            .await
            .map_err(|detail| LoadError::Seed { url: config.url.clone(), detail })?;
    }
    // Users take slots in order, so each room fills up member by member.
    let run = Arc::new(Run {
        url: config.url.clone(),
        recorder: recorder.clone(),
        rate_hz: config.rate_hz,
        schedule: config.schedule,
        auth: config.auth.clone(),
        run_time_us: config.run_time.as_micros() as u64,
        slots,
        next: Kind::ALL.iter().map(|_| AtomicUsize::new(0)).collect(),
        planned,
        joined: AtomicUsize::new(0),
        ready: AtomicUsize::new(0),
        stop_writes: AtomicU64::new(u64::MAX),
        steady_counters: std::sync::Mutex::new(None),
        request_names: Kind::ALL.iter().map(|k| Metric::ALL.map(|m| format!("{} {}", k.name(), m.name()))).collect(),
    });

    let attack = attack(config, goose_config, &run)?;

    let rss_before = rss_bytes();
    let peak = Arc::new(AtomicU64::new(rss_before.unwrap_or(0)));
    let ticker = spawn_ticker(run.clone(), peak.clone(), config.progress);

    let started = Instant::now();
    let started_wall = std::time::SystemTime::now();
    let executed = attack.execute().await;
    ticker.abort();
    recorder.roll();
    let elapsed = started.elapsed();
    let failed_thresholds = match executed {
        Ok(_) => Vec::new(),
        Err(GooseError::ThresholdsFailed { failed, .. }) => {
            failed.iter().map(|f| format!("{} (observed {})", f.rule, f.observed)).collect()
        }
        Err(e) => return Err(LoadError::Goose(goose_message(e))),
    };
    let steady_counters = run.steady_counters.lock().unwrap_or_else(|p| p.into_inner()).clone();
    // How long writers wrote with every client in: normally --run-time;
    // goose's own plan can end it sooner or later.
    let steady_s = recorder.steady_from().map_or(0.0, |from| {
        let until = run.stop_writes.load(Ordering::SeqCst).min(clock.now());
        until.saturating_sub(from) as f64 / 1e6
    });
    let end_counters = run.snapshot();

    // Put the result together: counters here, every latency figure derived
    // from the histograms by `LoadResult::finish`.
    let mut per_kind = std::collections::BTreeMap::new();
    let mut steady = std::collections::BTreeMap::new();
    for kind in &kinds {
        let users = run.slots[*kind as usize].len();
        let d: Delivery = all_rooms.iter().filter(|r| r.kind == *kind).map(|r| r.delivery()).sum();
        let c = recorder.counters(*kind);
        let written = match &steady_counters {
            Some(at_start) => end_counters[*kind as usize].since(at_start[*kind as usize]),
            None => Written::default(),
        };
        let figures = Figures {
            users,
            updates_sent: c.sent.load(Ordering::Relaxed),
            updates_accepted: c.accepted.load(Ordering::Relaxed),
            updates_received: c.received.load(Ordering::Relaxed),
            updates_expected: if kind.every_update_counts() { d.expected } else { 0 },
            updates_missing: if kind.every_update_counts() { d.expected.saturating_sub(d.received) } else { 0 },
            stale_views: if kind.every_update_counts() { 0 } else { d.stale_views },
            rate_limited: c.rate_limited.load(Ordering::Relaxed),
            departures_seen: c.departures.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            steady_sent: written.sent,
            steady_accepted: written.accepted,
            steady_user_seconds: steady_s * users as f64,
            ..Figures::default()
        };
        let rooms = all_rooms.iter().filter(|r| r.kind == *kind).count();
        per_kind.insert(kind.name().to_owned(), KindResult { rooms, figures });
        steady.insert(kind.name().to_owned(), kind.metrics().map(|m| (m, recorder.total(*kind, m))).collect());
    }
    let peak_rss = peak.load(Ordering::Relaxed);
    let started_unix_ms = started_wall.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let mut result = LoadResult {
        scenario: config.scenario.to_string(),
        target: config.url.clone(),
        users_total: config.users,
        users_ready: run.ready.load(Ordering::Relaxed),
        shards: Shards::one(config.shard.index as u32, config.shard.count as u32),
        rate_hz: config.rate_hz,
        schedule: format!("{:?}", config.schedule).to_lowercase(),
        started_unix_ms,
        run_time_s: round2(steady_s),
        wall_time_s: round2(elapsed.as_secs_f64()),
        ramp_s: recorder.steady_from().map(|s| round2(s as f64 / 1e6)),
        figures: Figures::default(),
        echo: Echo { frame_bytes: frame, rtt_us: Default::default() },
        sync_over_echo_p50: None,
        sync_over_echo_p95: None,
        error_samples: recorder.error_samples(),
        failed_thresholds,
        memory: Memory {
            rss_before_bytes: rss_before.unwrap_or(0),
            rss_peak_bytes: if rss_before.is_some() { peak_rss } else { 0 },
            per_client_bytes: 0,
        },
        kinds: per_kind,
        files: Vec::new(),
        histograms: Histograms { totals: steady, seconds: recorder.seconds(&kinds), echo: echo.clone() },
    };
    result.finish();
    if let Some(out) = &config.out {
        let w = |source| LoadError::Write { path: out.clone(), source };
        result.files = recorder.write_logs(out, &kinds).map_err(w)?;
        crate::metrics::write_log(
            &out.join("echo.hlog"),
            started_wall,
            "echo round trip",
            std::iter::once((0, "echo", echo.inner())),
        )
        .map_err(w)?;
        result.files.push("echo.hlog".into());
    }
    Ok(result)
}

/// Whether goose's options name one of `flags` (`--flag value` or `--flag=value`).
fn goose_gives(args: &[String], flags: &[&str]) -> bool {
    args.iter().any(|a| flags.iter().any(|f| a == f || a.strip_prefix(f).is_some_and(|rest| rest.starts_with('='))))
}

/// goose's error with the detail it carries (its `Display` names only the kind).
pub fn goose_message(e: GooseError) -> String {
    match e {
        GooseError::InvalidOption { option, value, detail } => {
            let detail = detail.trim();
            if detail.is_empty() {
                format!("invalid option {option} {value}")
            } else {
                detail.to_owned()
            }
        }
        other => format!("{other}: {other:?}"),
    }
}

/// goose's own `--help`, for `syncspec load -- --help`.
pub fn goose_help() -> String {
    <GooseConfiguration as clap::CommandFactory>::command().name("syncspec load [OPTIONS] --").render_help().to_string()
}

fn totals(recorder: &Recorder) -> (u64, u64, u64, u64) {
    let mut t = (0, 0, 0, 0);
    for kind in Kind::ALL {
        let c: &Counters = recorder.counters(kind);
        t.0 += c.sent.load(Ordering::Relaxed);
        t.1 += c.received.load(Ordering::Relaxed);
        t.2 += c.rate_limited.load(Ordering::Relaxed);
        t.3 += c.errors.load(Ordering::Relaxed);
    }
    t
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Checks the target answers a WebSocket handshake at its sync path.
async fn probe(url: &str) -> Result<(), LoadError> {
    let socket = syncspec_protocol::client::socket_url(url).map_err(|e| LoadError::Invalid(e.to_string()))?;
    let mut ws = syncspec_protocol::client::open_socket(&socket)
        .await
        .map_err(|e| LoadError::Unreachable { url: url.to_owned(), detail: e.to_string() })?;
    let _ = futures_util::SinkExt::close(&mut ws).await;
    Ok(())
}

/// `--sweep`: one cursors run per per-client rate, one after another; each
/// step's interval logs go to `DIR/RATEhz/`. Returns the sweep and the goose
/// thresholds that failed in any step.
pub async fn sweep(config: &LoadConfig, rates: &[f64]) -> Result<(Sweep, Vec<String>), LoadError> {
    if rates.is_empty() {
        return Err(LoadError::Invalid("--sweep needs at least one rate".into()));
    }
    let mut sweep = Sweep {
        users: config.users,
        step_run_time_s: config.run_time.as_secs_f64(),
        limit_per_user_s: RATE_LIMIT_PER_USER_S,
        steps: Vec::new(),
    };
    let mut failed = Vec::new();
    for rate in rates {
        let mut step = config.clone();
        step.rate_hz = *rate;
        step.out = config.out.as_ref().map(|o| o.join(format!("{rate}hz")));
        if config.progress {
            eprintln!("sweep step: {rate} Hz per client");
        }
        let result = run(&step).await?;
        failed.extend(result.failed_thresholds.iter().cloned());
        sweep.steps.push(Step::of(&result));
    }
    Ok((sweep, failed))
}
