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

use std::sync::Arc;

use convex_sync_types::ClientMessage;
use futures_util::{Sink, SinkExt as _, Stream, StreamExt as _};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tracing::debug;

use syncspec_protocol::wire;

use crate::core::{Fault, Frame, Input};
use crate::server::{wall_now, Outbound, Shared};

/// Serves one sync socket until either side ends it.
pub(crate) async fn serve<Si, St>(mut sink: Si, mut stream: St, shared: Arc<Shared>)
where
    Si: Sink<Message, Error = WsError> + Unpin,
    St: Stream<Item = Result<Message, WsError>> + Unpin,
{
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let conn = shared.open(tx);
    let keepalive = shared.config.keepalive;
    let reader = async {
        loop {
            let message = match tokio::time::timeout(keepalive.idle_timeout, stream.next()).await {
                Ok(Some(Ok(message))) => message,
                Ok(Some(Err(e))) => {
                    debug!(conn, "read failed: {e}");
                    if matches!(e, WsError::Capacity(_)) {
                        return Some((CloseCode::Size, "MessageTooLarge"));
                    }
                    return None;
                }
                Ok(None) => return None,
                Err(_) => return Some((CloseCode::Away, "ClientTimeout")),
            };
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
                            message => Input::Message { conn, message },
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
                    if sink.send(Message::Ping(Default::default())).await.is_err() {
                        return;
                    }
                    continue;
                }
            };
            if received == 0 {
                return;
            }
            // Everything the core produced in one step (a response and the
            // transition after it, say) goes out in one write.
            let mut transitions = 0;
            for outbound in batch.drain(..) {
                match outbound {
                    Outbound::Frame(frame) => {
                        transitions += usize::from(matches!(frame, Frame::Transition(..)));
                        let text = frame.encode(wall_now());
                        if sink.feed(Message::text(text)).await.is_err() {
                            return;
                        }
                    }
                    Outbound::Close(code, reason) => {
                        let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
                        let _ = sink.send(Message::Close(Some(frame))).await;
                        return;
                    }
                    Outbound::Drop => return,
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
            for _ in 0..transitions {
                shared.step(Input::Delivered { conn });
            }
        }
    };
    tokio::select! {
        closing = reader => {
            if let Some((code, reason)) = closing {
                let _ = sink.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
            }
        }
        () = writer => {}
    }
    shared.close(conn);
}
