//! `syncspec serve`: run the reference server until Ctrl-C.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use syncspec_server::admission::Limits;
use syncspec_server::auth::Verifier;
use syncspec_server::core::Config;
use syncspec_server::server::{self, Keepalive, ServerConfig};

use crate::cli::ServeArgs;

pub(crate) fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    if args.list_faults {
        for fault in syncspec_server::core::Fault::ALL {
            println!("{:<24} {}", fault.name(), fault.description());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let faults = crate::cli::parse_faults(&args.faults).map_err(anyhow::Error::msg)?;
    if args.idle_timeout <= args.ping_interval {
        anyhow::bail!(
            "--idle-timeout ({:?}) must be longer than --ping-interval ({:?}), or every idle client is cut",
            args.idle_timeout,
            args.ping_interval
        );
    }
    let auth = verifier(&args)?;
    let runtime = tokio::runtime::Runtime::new().context("while starting the tokio runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("could not listen on {}", args.listen))?;
        let addr = listener.local_addr().context("while reading the bound address")?;
        // The first line of stdout is the URL, for scripts and tests to read.
        println!("listening on http://{addr}");
        std::io::stdout().flush().ok();
        let config = ServerConfig {
            core: Config {
                presence_ttl_ns: args.presence_ttl.as_nanos() as u64,
                faults,
                max_queries_per_session: args.max_queries_per_session,
                query_changes: Config::query_changes_per_second(args.max_query_changes_per_second as u64),
                idempotency_retention_ns: args.idempotency_retention.as_nanos() as u64,
                retain_messages: args.retain_messages,
                max_queued_mutations: args.max_queued_mutations,
                max_queued_argument_bytes: args.max_queued_argument_bytes,
                ..Config::standard()
            },
            workers: args.workers,
            test_hooks: args.test_hooks,
            keepalive: Keepalive { ping_interval: args.ping_interval, idle_timeout: args.idle_timeout },
            auth,
            limits: Limits {
                max_connections: args.max_connections,
                max_connections_per_address: args.max_connections_per_address,
                handshake_timeout: args.handshake_timeout,
                max_unsent_frames: args.max_unsent_frames,
                write_timeout: args.write_timeout,
                max_frame_bytes: args.max_frame_bytes,
                max_large_parses: args.max_large_parses,
            },
        };
        server::run(listener, config, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// The keys `User` tokens are checked against: a JWKS file, a shared secret, or none.
fn verifier(args: &ServeArgs) -> anyhow::Result<Verifier> {
    let verifier = match (&args.auth_jwks, &args.auth_secret) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("could not read {}", path.display()))?;
            Verifier::from_jwks(&text).with_context(|| format!("{} is not a usable JWKS", path.display()))?
        }
        (None, Some(secret)) if secret.is_empty() => anyhow::bail!("--auth-secret must not be empty"),
        (None, Some(secret)) => Verifier::shared_secret(secret.as_bytes()),
        (None, None) => Verifier::none(),
    };
    Ok(verifier.with_issuer(args.auth_issuer.clone()).with_audience(args.auth_audience.clone()))
}
