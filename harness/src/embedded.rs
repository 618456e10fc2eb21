//! The embedded reference server that `check` and `load` test when no
//! `--target` is given.

use anyhow::Context as _;
use syncspec_server::core::Config;
use syncspec_server::server::{self, ServerConfig};

/// Starts the reference server on its own runtime and threads, as if it
/// were another process: sharing the caller's runtime, its sockets would wait
/// behind thousands of simulated clients' tasks, and a load run would
/// measure its own scheduler. Stops when the returned sender is dropped.
fn start(
    faults: std::collections::BTreeSet<syncspec_server::core::Fault>,
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
            let config = ServerConfig { core: Config { faults, ..Config::standard() }, workers: 2, test_hooks: false };
            let _ = server::run(listener, config, async move {
                let _ = stopped.await;
            })
            .await;
        });
    })?;
    Ok((format!("http://{addr}"), stop))
}

/// The target's URL, or without one an embedded server's, with the sender
/// that keeps it running.
pub(crate) fn target_or_start(
    target: Option<&str>,
    faults: std::collections::BTreeSet<syncspec_server::core::Fault>,
) -> anyhow::Result<(String, Option<tokio::sync::oneshot::Sender<()>>)> {
    match target {
        Some(url) => Ok((url.trim_end_matches('/').to_owned(), None)),
        None => start(faults).map(|(url, stop)| (url, Some(stop))),
    }
}
