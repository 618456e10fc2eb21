//! One sync socket: frames in, frames out, pings.
//!
//! `serve` is generic over any `Sink` and `Stream` of WebSocket messages, so
//! tests can drive it with channels. Parsing happens here, outside the core's
//! lock; the core sees only parsed messages or a `BadFrame`, and an
//! `Authenticate` arrives as `Authenticated` with its token already checked
//! against the server's keys. Encoding happens in the writer, also outside
//! the lock, with `serverTs` stamped just before the frame is written. The
//! writer also sends a WebSocket ping every `ping_interval`; the reader closes
//! the socket once nothing (no frame, no pong) has arrived for `idle_timeout`.
//! A client that does not read is bounded twice: a write that takes longer
//! than `write_timeout` drops the socket, and a backlog of more than
//! `max_unsent_frames` frames ends the session with 1013. The core forgets
//! such a session at once and the frames still queued for it are dropped;
//! its close frame waits behind what the socket already holds, for up to
//! `write_timeout`, while what the client still sends is read and dropped,
//! so a client that is busy writing gets to read why it was cut off.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use convex_sync_types::ClientMessage;
use futures_util::{Sink, SinkExt as _, Stream, StreamExt as _};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tracing::{debug, info};

use syncspec_protocol::wire;

use crate::core::{Fault, Frame, Input};
use crate::metrics::Metrics;
use crate::server::{wall_now, Outbound, Shared};

/// Frames above this size are decoded under `Shared::large_parses`.
pub const LARGE_FRAME_BYTES: usize = 1024 * 1024;

/// How long, after the server's close frame, it keeps reading (and
/// dropping) what the client still sends, waiting for its close. Closing a
/// socket with unread input sends a reset, which can beat the close frame
/// to the client and lose its code (RFC 6455 §7.1.1: the server closes the
/// TCP connection after the closing handshake). A stream that cannot be
/// read on (the rest of an oversize frame) is kept this long unread: the
/// reset then comes long after the close frame.
const CLOSE_LINGER: std::time::Duration = std::time::Duration::from_secs(2);

/// Serves one sync socket until either side ends it.
pub(crate) async fn serve<Si, St>(mut sink: Si, mut stream: St, shared: Arc<Shared>)
where
    Si: Sink<Message, Error = WsError> + Unpin,
    St: Stream<Item = Result<Message, WsError>> + Unpin,
{
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let (conn, backlog) = shared.open(tx);
    let keepalive = shared.config.keepalive;
    let write_timeout = shared.config.limits.write_timeout;
    // Whether the server sent a close frame, and so should wait for the client's.
    let we_closed = std::sync::atomic::AtomicBool::new(false);
    // Whether a read failed: the stream reads nothing after an error.
    let read_failed = std::sync::atomic::AtomicBool::new(false);
    // Whether the core was told the session is gone before the socket went.
    let mut forgotten = false;
    let reader = async {
        loop {
            let message = match tokio::time::timeout(keepalive.idle_timeout, stream.next()).await {
                Ok(Some(Ok(message))) => message,
                Ok(Some(Err(e))) => {
                    debug!(conn, "read failed: {e}");
                    read_failed.store(true, Ordering::Relaxed);
                    if shared.has(Fault::BareCloseOnBadFrame) {
                        return None;
                    }
                    // RFC 6455 §7.4.1: say why, with the code for the fault.
                    return match e {
                        WsError::Capacity(_) => Some((CloseCode::Size, "MessageTooLarge")),
                        WsError::Utf8(_) => Some((CloseCode::Invalid, "InvalidUtf8")),
                        WsError::Protocol(_) => Some((CloseCode::Protocol, "WebSocketProtocolError")),
                        _ => None,
                    };
                }
                Ok(None) => return None,
                Err(_) => return Some((CloseCode::Away, "ClientTimeout")),
            };
            // Large frames are read one or two at a time across the server:
            // what a frame's decoding holds is bounded by its size, and this
            // bounds how many such decodings run at once.
            let large = match &message {
                Message::Text(text) => {
                    shared.metrics.frames_received.inc();
                    shared.metrics.bytes_received.inc_by(text.len() as u64);
                    text.len() > LARGE_FRAME_BYTES
                }
                _ => false,
            };
            let permit = if large { shared.large_parses.acquire().await.ok() } else { None };
            let input = match message {
                Message::Text(text) => match wire::parse_client_message(&text) {
                    Ok(message) => {
                        if matches!(message, ClientMessage::Mutation { .. }) && shared.take_drop_on_next_mutation() {
                            return None;
                        }
                        match message {
                            ClientMessage::Authenticate { base_version, token } => {
                                Input::Authenticated { conn, base_version, outcome: shared.verifier.identity(&token) }
                            }
                            message => Input::Message { conn, message: message.into() },
                        }
                    }
                    Err(e) => Input::BadFrame { conn, code: e.code(), detail: e.to_string() },
                },
                Message::Binary(_) => Input::BadFrame {
                    conn,
                    code: "WSMessageInvalid",
                    detail: "expected text frames, got a binary frame".into(),
                },
                Message::Close(_) => return None,
                // tungstenite answers pings itself; pongs only prove liveness.
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            };
            drop(permit);
            shared.step(input);
        }
    };
    let writer = async {
        let mut batch = Vec::new();
        let pings = !shared.has(Fault::NoWsPing);
        let mut ping =
            tokio::time::interval_at(tokio::time::Instant::now() + keepalive.ping_interval, keepalive.ping_interval);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let received = tokio::select! {
                received = rx.recv_many(&mut batch, 64) => received,
                _ = ping.tick(), if pings => {
                    match tokio::time::timeout(write_timeout, sink.send(Message::Ping(Default::default()))).await {
                        Ok(Ok(())) => continue,
                        Ok(Err(_)) => return false,
                        Err(_) => return true,
                    }
                }
            };
            if received == 0 {
                // The channel closes only when the connection is cut off for
                // its backlog: the overflow branch ends the socket, with the
                // close frame saying why, even when this writer has caught up.
                return std::future::pending().await;
            }
            // Everything the core produced in one step (a response and the
            // transition after it, say) goes out in one write.
            let mut transitions = 0;
            for outbound in batch.drain(..) {
                match outbound {
                    Outbound::Frame(frame) => {
                        transitions += usize::from(matches!(frame, Frame::Transition(..)));
                        let text = frame.encode(wall_now());
                        shared.metrics.frames_sent.inc();
                        shared.metrics.bytes_sent.inc_by(text.len() as u64);
                        match tokio::time::timeout(write_timeout, sink.feed(Message::text(text))).await {
                            Ok(Ok(())) => {}
                            Ok(Err(_)) => return false,
                            Err(_) => return true,
                        }
                    }
                    Outbound::Close(code, reason) => {
                        let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
                        let sent = tokio::time::timeout(write_timeout, sink.send(Message::Close(Some(frame)))).await;
                        we_closed.store(matches!(sent, Ok(Ok(()))), Ordering::Relaxed);
                        return false;
                    }
                    Outbound::Drop => return false,
                }
            }
            match tokio::time::timeout(write_timeout, sink.flush()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return false,
                Err(_) => return true,
            }
            backlog.unsent.fetch_sub(received, Ordering::Relaxed);
            for _ in 0..transitions {
                shared.step(Input::Delivered { conn });
            }
        }
    };
    tokio::select! {
        closing = reader => {
            if let Some((code, reason)) = closing {
                Metrics::count(&shared.metrics.sessions_closed, reason);
                let close = Message::Close(Some(CloseFrame { code, reason: reason.into() }));
                let sent = tokio::time::timeout(write_timeout, sink.send(close)).await;
                we_closed.store(matches!(sent, Ok(Ok(()))), Ordering::Relaxed);
            }
        }
        timed_out = writer => {
            if timed_out {
                Metrics::count(&shared.metrics.sessions_closed, "WriteTimeout");
                if let Some(held) = shared.slow_readers.pass() {
                    info!(conn, also_dropped = held, "dropped a socket whose write took over {write_timeout:?}");
                }
            }
        }
        () = backlog.overflowed.notified() => {
            Metrics::count(&shared.metrics.sessions_closed, "TooManyUnsentMessages");
            let unsent = backlog.unsent.load(Ordering::Relaxed);
            if let Some(held) = shared.slow_readers.pass() {
                info!(conn, unsent, also_dropped = held, "closed a session that does not read its socket");
            }
            shared.close(conn);
            forgotten = true;
            rx.close();
            while rx.try_recv().is_ok() {}
            let close = CloseFrame { code: CloseCode::Again, reason: "TooManyUnsentMessages".into() };
            let sending = tokio::time::timeout(write_timeout, sink.send(Message::Close(Some(close))));
            let discarding = async { while let Some(Ok(_)) = stream.next().await {} };
            let sent = tokio::select! {
                sent = sending => matches!(sent, Ok(Ok(()))),
                () = discarding => false,
            };
            we_closed.store(sent, Ordering::Relaxed);
        }
    }
    if we_closed.load(Ordering::Relaxed) && read_failed.load(Ordering::Relaxed) {
        tokio::time::sleep(CLOSE_LINGER).await;
    } else if we_closed.load(Ordering::Relaxed) {
        let _ = tokio::time::timeout(CLOSE_LINGER, async { while let Some(Ok(_)) = stream.next().await {} }).await;
    }
    if !forgotten {
        shared.close(conn);
    }
}
