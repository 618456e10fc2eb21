//! The command line, as clap derive types, and the small value parsers it uses.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use syncspec_server::admission::Limits;

/// Conformance and load testing for reactive backends that speak the Convex sync protocol.
#[derive(Debug, Parser)]
#[command(name = "syncspec", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the reference server: an in-memory backend speaking the Convex sync protocol.
    ///
    /// Point an official Convex client at the printed URL, e.g.
    /// `new ConvexClient("http://127.0.0.1:3210")`. The socket lives at
    /// `/api/sync` and `/api/{version}/sync`; the HTTP API the official
    /// `ConvexHttpClient`s call at `POST /api/query`, `/api/mutation`,
    /// `/api/action` and `/api/function`, and `GET /version` names the server.
    Serve(ServeArgs),
    /// Run the conformance suite against a backend and judge each guarantee.
    ///
    /// Without --target, an embedded reference server is started on a free
    /// loopback port and tested. Prints one line per case and closes with
    /// `N passed, N unimplemented, N failed`. Exit code 0 when no case
    /// failed, 1 when one did, 2 when the suite could not run (bad
    /// arguments, unreachable target).
    Check(CheckArgs),
    /// Model-check the reference server's own core with stateright.
    ///
    /// Explores every interleaving of client steps, deliveries, executions
    /// and commits for small configurations, breadth first, and prints per
    /// configuration the states explored, the depth, the time and each
    /// property's result, with the shortest counterexample as a trace.
    /// Exit code 0 when every property holds, 1 when one does not.
    Model(ModelArgs),
    /// Drive thousands of simulated chat, presence, cursor, streaming, paging and
    /// AI-reply clients with goose and measure cross-client sync latency.
    ///
    /// Each simulated client is a goose user with one sync-protocol connection. Writers
    /// stamp every write with its intended send instant on a fixed schedule (open loop);
    /// every other client of the room that sees the change records the delay. Before the
    /// scenario, a plain WebSocket echo on loopback measures the floor, and results show
    /// latency in microseconds and as a multiple of that floor.
    ///
    /// Without --target, an embedded reference server is started on a free loopback
    /// port. Goose options go after `--` (e.g. `-- --threshold 'p95<50ms' --report-file
    /// r.json`). Exit code 0 when the run completed, 1 when a goose threshold failed, 2
    /// when it could not run (bad arguments, unreachable target).
    Load(LoadArgs),
    /// The main job: conformance, the standard load mix, the cursor rate sweep and the
    /// model check, then one report (HTML, Markdown, JUnit XML, JSON).
    ///
    /// Runs against the embedded reference server and, side by side, every --target.
    /// Writes DIR/index.html (one self-contained file), report.md (for a pull-request
    /// comment), junit.xml and report.json, and prints the path of index.html last.
    /// Exit code 0 when every backend passed the suite and the model check, 1 when one
    /// did not, 2 when it could not run (bad arguments, an unreachable target, a load
    /// phase that could not run: the report is still written).
    Run(RunArgs),
    /// Render saved results side by side (HTML, Markdown, JUnit XML, JSON), or merge shards.
    ///
    /// Each RESULT is a run's output directory or its report.json (from `run`, `check
    /// --out`, `load --out` or `model --out`); parts of one backend join one column.
    /// `syncspec report merge SHARD... --out DIR` combines the shards of one load run
    /// (`load --shard I/N --out DIR`) by adding their histograms and counters exactly.
    Report(ReportArgs),
    /// Judge a saved result against thresholds and a baseline, for CI.
    ///
    /// Rules look like `sync.p95<50ms`, `mutation.p99<=100ms`, `errors==0`,
    /// `conformance.failed==0`, `sweep.accepted_per_user<=20.5`, `chat.sync.p50<5ms`,
    /// `sync_over_echo.p95<300`, `model.failed==0`. Latencies take us, ms or s (a bare
    /// number is ms). A rule whose metric the result does not hold fails. With several
    /// backends a rule must hold for each, unless --backend names one. --baseline judges
    /// latencies as multiples of each run's own echo floor (allowed to grow by
    /// --max-regression) and failure counts, which must not rise.
    /// Exit code 0 when every rule held, 1 when one failed, 2 on a bad rule or file.
    Gate(GateArgs),
}

/// A phase of `syncspec run`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub(crate) enum Phase {
    /// The conformance suite.
    Conformance,
    /// The standard load mix.
    Load,
    /// The cursor rate sweep.
    Sweep,
    /// The model check (the reference only).
    Model,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// A backend to put beside the reference, named like a Convex deployment; repeatable.
    #[arg(long = "target", id = "target", value_name = "URL")]
    pub(crate) targets: Vec<String>,
    /// Where the report goes.
    #[arg(long, value_name = "DIR", default_value = "syncspec-out")]
    pub(crate) out: std::path::PathBuf,
    /// Leave the embedded reference server out: only the --target backends (halves a CI run).
    #[arg(long, requires = "target")]
    pub(crate) no_reference: bool,
    /// Which phases to run.
    #[arg(long, value_name = "PHASE,...", value_delimiter = ',', default_value = "conformance,load,sweep,model")]
    pub(crate) phases: Vec<Phase>,
    /// Conformance cases to run, by id pattern (`4.3`, `5.*`); repeatable. Default: all.
    #[arg(long = "cases", value_name = "PATTERN")]
    pub(crate) cases: Vec<String>,
    /// Simulated clients in the standard mix (60% chat, 30% presence, 10% cursors).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub(crate) users: usize,
    /// How long the mix writes once every client has joined.
    #[arg(long, value_name = "DUR", default_value = "45s", value_parser = parse_positive_duration)]
    pub(crate) run_time: Duration,
    /// Cursor rates offered per client in the sweep.
    #[arg(long, value_name = "HZ,...", value_delimiter = ',', default_value = "5,10,20,40")]
    pub(crate) sweep: Vec<f64>,
    /// Cursor clients in each sweep step.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub(crate) sweep_users: usize,
    /// How long each sweep step writes.
    #[arg(long, value_name = "DUR", default_value = "5s", value_parser = parse_positive_duration)]
    pub(crate) sweep_time: Duration,
    #[command(flatten)]
    pub(crate) suite: SuiteArgs,
}

/// How the conformance suite calls a `--target` (`check` and `run`): the
/// identity cases' tokens, and how long case 10.4 stays idle. Both commands
/// name their target option `target`, so `requires` means the same in each.
#[derive(Debug, Args)]
pub(crate) struct SuiteArgs {
    /// Mint the identity cases' tokens as HS256 JWTs with this secret, which --target
    /// verifies with (`serve --auth-secret`). The embedded reference server makes its own.
    #[arg(long, value_name = "SECRET", requires = "target", conflicts_with = "auth_token")]
    pub(crate) auth_secret: Option<String>,
    /// A token --target trusts, for the identity cases when minting is not possible
    /// (one caller; an expired one cannot be made).
    #[arg(long, value_name = "JWT", requires = "target")]
    pub(crate) auth_token: Option<String>,
    /// The `iss` claim of tokens minted for --target.
    #[arg(long, value_name = "ISS", default_value = syncspec::suite::DEFAULT_ISSUER)]
    pub(crate) auth_issuer: String,
    /// How long case 10.4 keeps a socket idle: longer than --target's ping interval.
    #[arg(long, value_name = "DUR", default_value = "8s", value_parser = parse_positive_duration)]
    pub(crate) idle_for: Duration,
}

impl SuiteArgs {
    /// The auth material given for the targets.
    pub(crate) fn auth(&self) -> syncspec::suite::Auth {
        crate::embedded::given_auth(self.auth_secret.as_deref(), self.auth_token.as_deref(), &self.auth_issuer)
    }
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct ReportArgs {
    #[command(subcommand)]
    pub(crate) command: Option<ReportCommand>,
    /// Saved results: run output directories or report.json files.
    #[arg(value_name = "RESULT", required = true)]
    pub(crate) results: Vec<std::path::PathBuf>,
    /// Where the report goes.
    #[arg(long, value_name = "DIR", default_value = "syncspec-out")]
    pub(crate) out: std::path::PathBuf,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ReportCommand {
    /// Combine the shards of one load run into one result, adding histograms and counters exactly.
    ///
    /// Every shard 1..N must be given once; a missing shard, a shard given twice, or a
    /// result of another run is refused with the reason (exit code 2).
    Merge(MergeArgs),
}

#[derive(Debug, Args)]
pub(crate) struct MergeArgs {
    /// The shards' results: output directories of `load --shard I/N --out DIR`, or their report.json.
    #[arg(value_name = "SHARD", required = true)]
    pub(crate) shards: Vec<std::path::PathBuf>,
    /// Where the merged report goes.
    #[arg(long, value_name = "DIR")]
    pub(crate) out: std::path::PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct GateArgs {
    /// A run's output directory or its report.json.
    #[arg(value_name = "RESULT")]
    pub(crate) result: std::path::PathBuf,
    /// A rule such as `sync.p95<50ms`; repeatable.
    #[arg(long = "threshold", value_name = "EXPR")]
    pub(crate) thresholds: Vec<String>,
    /// A stored result to judge regressions against (a run's output directory or its report.json).
    #[arg(long, value_name = "RESULT")]
    pub(crate) baseline: Option<std::path::PathBuf>,
    /// How much worse a latency over the echo floor may get than in the baseline.
    #[arg(long, value_name = "PERCENT", default_value = "10%", requires = "baseline")]
    pub(crate) max_regression: String,
    /// Judge only this backend (a column name from the report, e.g. `reference`).
    #[arg(long, value_name = "NAME")]
    pub(crate) backend: Option<String>,
    /// Also write the rules and the conformance cases as JUnit XML here.
    #[arg(long, value_name = "FILE")]
    pub(crate) junit: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct LoadArgs {
    /// chat (channels of 50, a message per 30 s), presence (rooms of 10, heartbeat per
    /// 5 s), cursors (rooms of 5 at --rate), stream (a writer streaming 50 tokens/s to 20
    /// readers), history (chat over `messages:page`, loading an older page per 10 s),
    /// reply (a `messages:streamReply` action streaming 50 tokens/s to 20 readers) or mix
    /// (60% chat, 30% presence, 10% cursors).
    #[arg(long, value_name = "NAME", required_unless_present = "sweep")]
    pub(crate) scenario: Option<syncspec_scenarios::ScenarioName>,
    /// The backend, named like a Convex deployment: http://HOST:PORT.
    #[arg(long)]
    pub(crate) target: Option<String>,
    /// Simulated clients, over all shards [default: 1000; 500 per step for --sweep].
    #[arg(long, value_name = "N")]
    pub(crate) users: Option<usize>,
    /// Cursor moves per client per second (the client-side throttle).
    #[arg(long, value_name = "HZ", default_value_t = 20.0)]
    pub(crate) rate: f64,
    /// How long clients write once all have joined (e.g. 60s, 2m); per step for --sweep.
    #[arg(long, value_name = "DUR", value_parser = parse_positive_duration)]
    pub(crate) run_time: Option<Duration>,
    /// Clients started per second while ramping up.
    #[arg(long, value_name = "N", default_value_t = 500.0)]
    pub(crate) increase_rate: f64,
    /// Run only shard I of N: whole rooms and channels, so writer and readers share a clock.
    #[arg(long, value_name = "I/N", default_value = "1/1")]
    pub(crate) shard: syncspec_scenarios::Shard,
    /// Write the report (report.json with every histogram, index.html, report.md,
    /// junit.xml) and the HdrHistogram interval logs here. goose's own HTML report
    /// only when asked for after `--` (`-- --report-file DIR/goose.html`).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<std::path::PathBuf>,
    /// Run cursors once per per-client rate (e.g. 5,10,20,40,80) and report each step.
    #[arg(long, value_name = "HZ,...", value_delimiter = ',')]
    pub(crate) sweep: Vec<f64>,
    /// No progress line.
    #[arg(long)]
    pub(crate) quiet: bool,
    /// Negative control for the measuring: cursor and stream writers wait for each answer
    /// and stamp the actual send (the coordinated-omission mistake).
    #[arg(long, hide = true)]
    pub(crate) closed_loop: bool,
    /// Break the embedded reference server with this fault (see `serve --list-faults`); repeatable.
    #[arg(long = "fault", value_name = "NAME", conflicts_with = "target")]
    pub(crate) faults: Vec<String>,
    /// Each connection sends `Authenticate` with this token right after `Connect`.
    #[arg(long, value_name = "JWT")]
    pub(crate) auth_token: Option<String>,
    /// Each connection authenticates as its own user, with an HS256 JWT minted with this
    /// secret (its subject the user's name); the target, or the embedded server, verifies
    /// with it (`serve --auth-secret`).
    #[arg(long, value_name = "SECRET", conflicts_with = "auth_token")]
    pub(crate) auth_secret: Option<String>,
    /// The `iss` claim of minted tokens.
    #[arg(long, value_name = "ISS", default_value = syncspec::suite::DEFAULT_ISSUER)]
    pub(crate) auth_issuer: String,
    /// Options passed to goose as they are (after `--`); `-- --help` lists them.
    #[arg(last = true, value_name = "GOOSE OPTIONS")]
    pub(crate) goose: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ModelArgs {
    /// Switch a fault on in the core (see `serve --list-faults`); repeatable.
    #[arg(long = "fault", value_name = "NAME")]
    pub(crate) faults: Vec<String>,
    /// Open stateright's Explorer on this loopback address (e.g. 127.0.0.1:3000) instead.
    #[arg(long, value_name = "ADDR")]
    pub(crate) explore: Option<SocketAddr>,
    /// Write the report (report.json, index.html, report.md, junit.xml) here.
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The backend to test, named like a Convex deployment: http://HOST:PORT.
    #[arg(long)]
    pub(crate) target: Option<String>,
    /// Cases to run, by id pattern (`4.3`, `5.*`); repeatable. Default: all.
    #[arg(long = "cases", value_name = "PATTERN")]
    pub(crate) cases: Vec<String>,
    /// Write the report (report.json, index.html, report.md, junit.xml) and one
    /// history per case (histories/ID.json) here.
    #[arg(long)]
    pub(crate) out: Option<std::path::PathBuf>,
    /// List the cases and exit.
    #[arg(long)]
    pub(crate) list: bool,
    /// Break the embedded reference server with this fault (see `serve --list-faults`); repeatable.
    #[arg(long = "fault", value_name = "NAME", conflicts_with = "target")]
    pub(crate) faults: Vec<String>,
    #[command(flatten)]
    pub(crate) suite: SuiteArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:3210")]
    pub(crate) listen: SocketAddr,
    /// Threads executing mutations, so OCC conflicts happen for real; 0 runs them inside the core's step.
    #[arg(long, default_value_t = 2)]
    pub(crate) workers: usize,
    /// How long a presence row lives without a heartbeat (e.g. 10s, 500ms).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub(crate) presence_ttl: Duration,
    /// Accept test commands at /_syncspec/control (drop sockets on demand, count them). Never in production.
    #[arg(long)]
    pub(crate) test_hooks: bool,
    /// Break one guarantee on purpose, as a negative control for the suite; repeatable.
    #[arg(long = "fault", value_name = "NAME")]
    pub(crate) faults: Vec<String>,
    /// List the fault switches, one per line, and exit.
    #[arg(long)]
    pub(crate) list_faults: bool,
    /// Send a WebSocket ping frame to every socket this often (Convex: 5s).
    #[arg(long, default_value = "5s", value_parser = parse_positive_duration)]
    pub(crate) ping_interval: Duration,
    /// Close a socket from which nothing, not even a pong, has arrived for this long (Convex: 120s).
    #[arg(long, default_value = "120s", value_parser = parse_positive_duration)]
    pub(crate) idle_timeout: Duration,
    /// Most TCP connections open at once (HTTP and WebSocket); beyond it a new one gets a 503 and is closed.
    #[arg(long, default_value_t = Limits::default().max_connections, value_parser = parse_positive_count)]
    pub(crate) max_connections: usize,
    /// Most TCP connections open at once from one IP address (a load run on loopback comes from one).
    #[arg(long, default_value_t = Limits::default().max_connections_per_address, value_parser = parse_positive_count)]
    pub(crate) max_connections_per_address: usize,
    /// How long a new connection may take to send its request headers (a socket's upgrade request) before it is closed.
    #[arg(long, default_value = "10s", value_parser = parse_positive_duration)]
    pub(crate) handshake_timeout: Duration,
    /// Frames a socket may have waiting to be written; past it the session is closed (1013 TooManyUnsentMessages).
    #[arg(long, default_value_t = Limits::default().max_unsent_frames, value_parser = parse_positive_count)]
    pub(crate) max_unsent_frames: usize,
    /// How long one write to a socket may take before the socket is dropped (a client that stopped reading).
    #[arg(long, default_value = "30s", value_parser = parse_positive_duration)]
    pub(crate) write_timeout: Duration,
    /// Largest WebSocket message (and HTTP body) in bytes; a larger one is refused unread (close 1009, or 413).
    #[arg(long, default_value_t = Limits::default().max_frame_bytes, value_parser = parse_positive_count)]
    pub(crate) max_frame_bytes: usize,
    /// Messages over 1 MiB decoded at once across the server; the rest wait on their own sockets.
    #[arg(long, default_value_t = Limits::default().max_large_parses, value_parser = parse_positive_count)]
    pub(crate) max_large_parses: usize,
    /// Mutations one session may have waiting for their turn; past it the session is closed (1013 TooManyConcurrentMutations).
    #[arg(long, default_value_t = syncspec_server::core::Config::standard().max_queued_mutations, value_parser = parse_positive_count)]
    pub(crate) max_queued_mutations: usize,
    /// Bytes of argument text one session's waiting mutations may hold; past it the session is closed (1013).
    #[arg(long, default_value_t = syncspec_server::core::Config::standard().max_queued_argument_bytes, value_parser = parse_positive_count)]
    pub(crate) max_queued_argument_bytes: usize,
    /// Most queries one session may hold; a query-set change past it ends the session (FatalError TooManyQueries).
    #[arg(long, default_value_t = syncspec_server::core::Config::standard().max_queries_per_session, value_parser = parse_positive_count)]
    pub(crate) max_queries_per_session: usize,
    /// Queries a session may add or remove a second (with a burst of twice as many); past it the session ends (FatalError TooManyQueryChanges, close 1013).
    #[arg(long, default_value_t = 10_000, value_parser = parse_positive_count)]
    pub(crate) max_query_changes_per_second: usize,
    /// How long a mutation's idempotency record (its result, for a replay after a reconnect) is kept after its last use; Convex keeps them 2 weeks on disk.
    #[arg(long, default_value = "15m", value_parser = parse_positive_duration)]
    pub(crate) idempotency_retention: Duration,
    /// Keep only the newest N messages of each chat channel, deleting older ones once a second, so a long run's memory levels off; every message is kept if unset.
    #[arg(long, value_name = "N", value_parser = parse_positive_count)]
    pub(crate) retain_messages: Option<usize>,
    /// Verify `User` tokens against the public keys of this JWKS file (RS256, ES256, EdDSA).
    #[arg(long, value_name = "FILE", conflicts_with = "auth_secret")]
    pub(crate) auth_jwks: Option<std::path::PathBuf>,
    /// Verify `User` tokens as HS256 JWTs signed with this shared secret (for tests).
    #[arg(long, value_name = "SECRET")]
    pub(crate) auth_secret: Option<String>,
    /// Accept only tokens with this `iss` claim.
    #[arg(long, value_name = "ISSUER")]
    pub(crate) auth_issuer: Option<String>,
    /// Accept only tokens with this `aud` claim (Convex's applicationID).
    #[arg(long, value_name = "AUDIENCE")]
    pub(crate) auth_audience: Option<String>,
}

/// Resolves fault names, or says which one is unknown and what exists.
pub(crate) fn parse_faults(
    names: &[String],
) -> Result<std::collections::BTreeSet<syncspec_server::core::Fault>, String> {
    use syncspec_server::core::Fault;
    names
        .iter()
        .map(|name| {
            Fault::from_name(name).ok_or_else(|| {
                let known: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
                format!("unknown fault {name:?}; expected one of: {}", known.join(", "))
            })
        })
        .collect()
}

/// A duration as people write it: `45s`, `1.5s`, `500ms`, `2m`.
pub(crate) fn show_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{} ms", d.as_millis())
    } else if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

/// A count of at least 1.
pub(crate) fn parse_positive_count(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{text:?} is not a count: {e}")),
    }
}

/// [`parse_duration`], refusing zero (a run of no length measures nothing).
pub(crate) fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        Duration::ZERO => Err(format!("expected a duration above zero, got {text:?}")),
        d => Ok(d),
    }
}

/// Parses `250ms`, `10s`, `2m` or a bare number of seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("expected a duration like 250ms, 10s or 2m, got {text:?}"))?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1e3,
        "us" | "µs" => value / 1e6,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("expected a duration unit of ms, s, m or h, got {other:?} in {text:?}")),
    };
    if !seconds.is_finite() || seconds < 0.0 || seconds > 1e9 {
        return Err(format!("expected a duration between 0 and 1e9 seconds, got {text:?}"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_positive_duration("0s").is_err());
        assert_eq!(show_duration(Duration::from_millis(500)), "500 ms");
        assert_eq!(show_duration(Duration::from_secs(45)), "45 s");
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }

    /// `check` and `run` share the suite's flags, and in both a token or a
    /// secret is for a `--target`: the embedded server makes its own.
    #[test]
    fn suite_flags_require_a_target_in_check_and_run() {
        use clap::Parser as _;
        for command in ["check", "run"] {
            for flag in ["--auth-secret", "--auth-token"] {
                let without = Cli::try_parse_from(["syncspec", command, flag, "x"]);
                assert!(without.is_err(), "{command} {flag} without --target was accepted");
                let with = Cli::try_parse_from(["syncspec", command, "--target", "http://h:1", flag, "x"]);
                assert!(with.is_ok(), "{command} --target {flag}: {:?}", with.err());
            }
        }
        let run = Cli::try_parse_from(["syncspec", "run", "--target", "http://a:1", "--target", "http://b:2"]);
        let Ok(Cli { command: Command::Run(args), .. }) = run else { panic!("two targets: {run:?}") };
        assert_eq!(args.targets, ["http://a:1", "http://b:2"]);
        assert_eq!(args.suite.idle_for, Duration::from_secs(8));
    }
}
