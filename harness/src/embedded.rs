//! The embedded reference server that `check`, `run` and `load` test when
//! no `--target` is given, and how a run is a caller it trusts.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Context as _;
use syncspec::suite::Auth;
use syncspec_server::admission::Limits;
use syncspec_server::auth::Verifier;
use syncspec_server::core::{Config, Fault};
use syncspec_server::server::{self, Keepalive, ServerConfig};

/// The embedded server's keepalive for the suite: short, so that case 10.4
/// (idle for 8 s by default) proves a client outlives the idle timeout.
const SUITE_KEEPALIVE: Keepalive =
    Keepalive { ping_interval: Duration::from_secs(1), idle_timeout: Duration::from_secs(3) };

/// A backend to test: its URL, how to be a caller it trusts, and for the
/// embedded server the sender that keeps it running (dropping it stops it).
#[derive(Debug)]
pub(crate) struct Tested {
    pub(crate) url: String,
    pub(crate) auth: Auth,
    pub(crate) stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Starts the reference server on its own runtime and threads, as if it
/// were another process: sharing the caller's runtime, its sockets would wait
/// behind thousands of simulated clients' tasks, and a load run would
/// measure its own scheduler. Stops when the returned sender is dropped.
fn start(
    faults: BTreeSet<Fault>,
    keepalive: Keepalive,
    auth: Verifier,
) -> anyhow::Result<(String, tokio::sync::oneshot::Sender<()>)> {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").context("while binding the embedded server")?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("embedded-server")
        .enable_all()
        .build()
        .context("while starting the embedded server's runtime")?;
    std::thread::Builder::new().name("embedded-server".into()).spawn(move || {
        runtime.block_on(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else { return };
            let config = ServerConfig {
                core: Config { faults, ..Config::standard() },
                keepalive,
                auth,
                // Every client of the embedded server is this process, from
                // one address: a share per address would only cap the run.
                limits: Limits { max_connections_per_address: Limits::default().max_connections, ..Limits::default() },
                ..ServerConfig::standard()
            };
            let _ = server::run(listener, config, async move {
                let _ = stopped.await;
            })
            .await;
        });
    })?;
    Ok((format!("http://{addr}"), stop))
}

/// The target's URL, or without one an embedded server's (with Convex's
/// keepalive, verifying tokens with `secret` if given, else with no keys),
/// with the sender that keeps it running.
pub(crate) fn target_or_start(
    target: Option<&str>,
    faults: BTreeSet<Fault>,
    secret: Option<&[u8]>,
) -> anyhow::Result<(String, Option<tokio::sync::oneshot::Sender<()>>)> {
    match target {
        Some(url) => Ok((url.trim_end_matches('/').to_owned(), None)),
        None => {
            let auth = secret.map_or_else(Verifier::none, Verifier::shared_secret);
            start(faults, Keepalive::default(), auth).map(|(url, stop)| (url, Some(stop)))
        }
    }
}

/// What the suite tests: the target, called with `auth` (the run's
/// `--auth-secret` or `--auth-token`), or without one an embedded server
/// with a secret of its own that the suite mints with, and a short
/// keepalive (ping 1 s, idle timeout 3 s).
pub(crate) fn suite_target(target: Option<&str>, faults: BTreeSet<Fault>, auth: Auth) -> anyhow::Result<Tested> {
    if let Some(url) = target {
        return Ok(Tested { url: url.trim_end_matches('/').to_owned(), auth, stop: None });
    }
    let secret = random_secret();
    let (url, stop) = start(faults, SUITE_KEEPALIVE, Verifier::shared_secret(secret.as_bytes()))?;
    let auth = Auth::Mint { secret: secret.into_bytes(), issuer: syncspec::suite::DEFAULT_ISSUER.to_owned() };
    Ok(Tested { url, auth, stop: Some(stop) })
}

/// The run's auth material for a target, from `--auth-secret`,
/// `--auth-token` and `--auth-issuer`.
pub(crate) fn given_auth(secret: Option<&str>, token: Option<&str>, issuer: &str) -> Auth {
    match (secret, token) {
        (Some(secret), _) => Auth::Mint { secret: secret.as_bytes().to_vec(), issuer: issuer.to_owned() },
        (None, Some(token)) => Auth::Token(token.to_owned()),
        (None, None) => Auth::None,
    }
}

/// 256 bits as hex, so the secret could be given on a command line. The
/// standard library's hasher keys are random per process (from the OS), which
/// is all a secret that lives as long as one test server needs.
fn random_secret() -> String {
    use std::hash::BuildHasher as _;
    let state = std::collections::hash_map::RandomState::new();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    (0..4u8).map(|i| format!("{:016x}", state.hash_one((i, nanos, std::process::id())))).collect()
}
