//! The command line, as clap derive types, and the small value parsers it uses.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

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
    /// `/api/sync` and `/api/{version}/sync`.
    Serve(ServeArgs),
    /// Run the conformance suite against a backend and judge each guarantee.
    ///
    /// Without --target, an embedded reference server is started on a free
    /// loopback port and tested. Prints one line per case and closes with
    /// `N passed, N failed`. Exit code 0 when no case failed, 1 when one
    /// did, 2 when the suite could not run (bad arguments, unreachable target).
    Check(CheckArgs),
    /// Model-check the reference server's own core with stateright.
    ///
    /// Explores every interleaving of client steps, deliveries, executions
    /// and commits for small configurations, breadth first, and prints per
    /// configuration the states explored, the depth, the time and each
    /// property's result, with the shortest counterexample as a trace.
    /// Exit code 0 when every property holds, 1 when one does not.
    Model(ModelArgs),
    /// Drive thousands of simulated chat, presence and cursor clients with goose and
    /// measure cross-client sync latency.
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
}

#[derive(Debug, Args)]
pub(crate) struct LoadArgs {
    /// chat (channels of 50, a message per 30 s), presence (rooms of 10, heartbeat per
    /// 5 s), cursors (rooms of 5 at --rate), stream (a writer streaming 50 tokens/s to 20
    /// readers) or mix (60% chat, 30% presence, 10% cursors).
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
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub(crate) run_time: Option<Duration>,
    /// Clients started per second while ramping up.
    #[arg(long, value_name = "N", default_value_t = 500.0)]
    pub(crate) increase_rate: f64,
    /// Run only shard I of N: whole rooms and channels, so writer and readers share a clock.
    #[arg(long, value_name = "I/N", default_value = "1/1")]
    pub(crate) shard: syncspec_scenarios::Shard,
    /// Write load.json, the HdrHistogram interval logs and goose's HTML report here.
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
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The backend to test, named like a Convex deployment: http://HOST:PORT.
    #[arg(long)]
    pub(crate) target: Option<String>,
    /// Cases to run, by id pattern (`4.3`, `5.*`); repeatable. Default: all.
    #[arg(long = "cases", value_name = "PATTERN")]
    pub(crate) cases: Vec<String>,
    /// Write results.json and one history per case under this directory.
    #[arg(long)]
    pub(crate) out: Option<std::path::PathBuf>,
    /// List the cases and exit.
    #[arg(long)]
    pub(crate) list: bool,
    /// Break the embedded reference server with this fault (see `serve --list-faults`); repeatable.
    #[arg(long = "fault", value_name = "NAME", conflicts_with = "target")]
    pub(crate) faults: Vec<String>,
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
    /// Accept test commands at /_syncspec/control (drop sockets on demand). Never in production.
    #[arg(long)]
    pub(crate) test_hooks: bool,
    /// Break one guarantee on purpose, as a negative control for the suite; repeatable.
    #[arg(long = "fault", value_name = "NAME")]
    pub(crate) faults: Vec<String>,
    /// List the fault switches, one per line, and exit.
    #[arg(long)]
    pub(crate) list_faults: bool,
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
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }
}
