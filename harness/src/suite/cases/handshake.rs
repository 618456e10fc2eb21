//! 1. Handshake and framing: routes, the first transition, identity
//! versions, and frames that are not client messages.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use syncspec_protocol::client::{self, ClientError, MutationOutcome, Patience};
use syncspec_protocol::history::EventKind;
use tokio_tungstenite::tungstenite::Message;

use super::case;
use crate::checkers::order;
use crate::suite::{connect, obj, wait_view, Case, CaseResult, Ctx, Judge};

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!(
            "1.1",
            "the version chain starts at the initial version and has no gaps",
            "each socket's chain starts at {0, 0, ts 0}, links end to start, and ts never decreases",
            first_transition
        ),
        case!(
            "1.2",
            "the versioned route /api/{version}/sync serves",
            "the socket lives at /api/sync and /api/{version}/sync",
            versioned_route
        ),
        case!(
            "1.3",
            "Authenticate with no token bumps the identity version",
            "an identity change is confirmed by a transition",
            authenticate_none
        ),
        case!("1.4", "Event messages are ignored", "telemetry events get no answer and harm nothing", events_ignored),
        case!(
            "1.5",
            "an action fails cleanly",
            "an Action the backend cannot run gets a failed ActionResponse",
            action_fails
        ),
        case!(
            "1.6",
            "a binary frame ends the session with FatalError",
            "only JSON text frames are client messages",
            binary_frame
        ),
        case!(
            "1.7",
            "invalid JSON ends the session with FatalError",
            "a frame that is not JSON is a protocol violation",
            invalid_json
        ),
        case!(
            "1.8",
            "a wrong baseVersion ends the session with FatalError",
            "ModifyQuerySet must continue the query-set version chain",
            wrong_base_version
        ),
    ]
}

pub(super) type RawSocket = client::Socket;

/// The URL of the socket at `path` (`/api/sync`, say) on the backend at
/// `url`, as [`client::socket_url`] names the sync socket: `ws://` for an
/// `http://` deployment, `wss://` for an `https://` one.
fn socket_url_at(url: &str, path: &str) -> Result<String, ClientError> {
    let sync = client::socket_url(url)?;
    let origin = sync.strip_suffix("/api/sync").unwrap_or(&sync);
    Ok(format!("{origin}{path}"))
}

/// The backend's address, for a case that needs a plain TCP connection of
/// its own (`needs` says what for: a proxy in front of the backend, socket
/// options, half an HTTP request). Against an `https://` deployment such a
/// case could only fail for reasons of its own, so it is not asked, and
/// says so as Unimplemented rather than failing the backend.
pub(super) async fn plain_tcp_addr(ctx: &Ctx, judge: &mut Judge, needs: &str) -> Option<SocketAddr> {
    if let Some(scheme) = ["https", "wss"].into_iter().find(|s| ctx.url.starts_with(&format!("{s}://"))) {
        judge.unimplemented(format!("needs {needs}; {} is {scheme}", ctx.url));
        return None;
    }
    let host = ctx.url.trim_start_matches("http://").trim_start_matches("ws://").trim_end_matches('/');
    match tokio::net::lookup_host(host).await.ok().and_then(|mut a| a.next()) {
        Some(addr) => Some(addr),
        None => {
            judge.fail(format!("could not resolve {host}"));
            None
        }
    }
}

/// Opens a bare socket at `path`, over TLS when the backend is `https://`,
/// and sends nothing; if it cannot, records the failure, and the case has
/// nothing left to do but finish.
pub(super) async fn open_raw(ctx: &Ctx, judge: &mut Judge, path: &str) -> Option<RawSocket> {
    let opened = match socket_url_at(&ctx.url, path) {
        Ok(url) => client::open_socket(&url).await,
        Err(e) => Err(e),
    };
    match opened {
        Ok(ws) => Some(ws),
        Err(e) => {
            judge.fail(format!("could not open {path}: {e}"));
            None
        }
    }
}

/// Opens a bare socket at `path` and sends `Connect`; if it cannot, records
/// the failure, and the case has nothing left to do but finish.
pub(super) async fn raw_socket(ctx: &Ctx, judge: &mut Judge, path: &str) -> Option<RawSocket> {
    let mut ws = open_raw(ctx, judge, path).await?;
    let connect = serde_json::json!({"type": "Connect", "sessionId": uuid_like(), "connectionCount": 0, "lastCloseReason": "InitialConnect"});
    match ws.send(Message::text(connect.to_string())).await {
        Ok(()) => Some(ws),
        Err(e) => {
            judge.fail(format!("could not send Connect on {path}: {e}"));
            None
        }
    }
}

/// A session id no other socket of the run uses.
pub(super) fn uuid_like() -> String {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("00000000-0000-4000-8000-{:012x}", n & 0xffff_ffff_ffff)
}

/// What a raw socket received until it closed or went quiet.
#[derive(Debug, Default)]
pub(super) struct Received {
    pub(super) texts: Vec<String>,
    pub(super) closed: bool,
}

impl Received {
    pub(super) fn has(&self, needle: &str) -> bool {
        self.texts.iter().any(|t| t.contains(needle))
    }
}

/// Reads frames until one contains `until`, the socket closes, or `patience` runs out.
pub(super) async fn read_until(ws: &mut RawSocket, until: &str, patience: &Patience) -> Received {
    let mut received = Received::default();
    let _ = patience
        .wait(async {
            loop {
                match ws.next().await {
                    Some(Ok(Message::Text(t))) => {
                        let done = t.contains(until);
                        received.texts.push(t.to_string());
                        if done {
                            return;
                        }
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                        received.closed = true;
                        return;
                    }
                    Some(Ok(_)) => {}
                }
            }
        })
        .await;
    received
}

async fn first_transition(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(client) = connect(&ctx, &mut judge).await else { return judge.finish() };
    let name = ctx.fresh("c");
    let q = client.subscribe("counters:get", obj([("name", name.as_str().into())]));
    wait_view(&mut judge, &client, "the first result", |v| v.results.contains_key(&q)).await;
    // A few more links, so the chain is a chain.
    for _ in 0..6 {
        let r = client.mutation("counters:increment", obj([("name", name.as_str().into())])).await;
        if !matches!(r, Ok(MutationOutcome::Ok { .. })) {
            judge.fail(format!("an increment did not resolve: {r:?}"));
            break;
        }
    }
    judge.verdict(order::version_chain(&ctx.history()));
    judge.finish()
}

async fn versioned_route(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(mut ws) = raw_socket(&ctx, &mut judge, "/api/1.48.0/sync").await else { return judge.finish() };
    let add = serde_json::json!({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1,
        "modifications": [{"type": "Add", "queryId": 0, "udfPath": "counters:get", "args": [{"name": ctx.fresh("v")}]}]});
    let _ = ws.send(Message::text(add.to_string())).await;
    let got = read_until(&mut ws, "\"Transition\"", &ctx.patience).await;
    judge.expect(got.has("\"Transition\""), || format!("no transition on the versioned route; got {:?}", got.texts));
    judge.finish()
}

async fn authenticate_none(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(mut ws) = raw_socket(&ctx, &mut judge, "/api/sync").await else { return judge.finish() };
    let auth = serde_json::json!({"type": "Authenticate", "baseVersion": 0, "tokenType": "None"});
    let _ = ws.send(Message::text(auth.to_string())).await;
    let add = serde_json::json!({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1,
        "modifications": [{"type": "Add", "queryId": 0, "udfPath": "counters:get", "args": [{"name": ctx.fresh("a")}]}]});
    let _ = ws.send(Message::text(add.to_string())).await;
    let got = read_until(&mut ws, "\"querySet\":1,\"identity\":1", &ctx.patience).await;
    let confirmed = got.texts.iter().any(|t| {
        serde_json::from_str::<serde_json::Value>(t)
            .ok()
            .is_some_and(|v| v["type"] == "Transition" && v["endVersion"]["identity"] == 1)
    });
    judge.expect(confirmed, || format!("no transition reached identity version 1: {:?}", got.texts));
    judge.finish()
}

async fn events_ignored(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(client) = connect(&ctx, &mut judge).await else { return judge.finish() };
    client.send_raw(Message::text(r#"{"type":"Event","eventType":"ClientConnect","event":{"marks":[]}}"#));
    let r = client.mutation("counters:increment", obj([("name", ctx.fresh("after-event").into())])).await;
    judge.expect(matches!(r, Ok(MutationOutcome::Ok { .. })), || {
        format!("the session should go on after an Event: {r:?}")
    });
    judge.expect(client.view().fatal.is_none(), || "an Event must not end the session".to_owned());
    judge.finish()
}

async fn action_fails(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(client) = connect(&ctx, &mut judge).await else { return judge.finish() };
    client.send_raw(Message::text(r#"{"type":"Action","requestId":900000,"udfPath":"nope:action","args":[{}]}"#));
    // The answer changes no view, and a recorder cannot be waited on, so the
    // history is read every 20 ms until it shows the answer.
    let answer = || {
        ctx.history().events.iter().find_map(|e| match &e.kind {
            EventKind::ActionResponse { request_id: 900000, success } => Some(*success),
            _ => None,
        })
    };
    let answered = ctx
        .patience
        .wait(async {
            loop {
                if let Some(success) = answer() {
                    return success;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .ok();
    judge.expect(answered == Some(false), || format!("expected a failed ActionResponse, got {answered:?}"));
    let r = client.mutation("counters:increment", obj([("name", ctx.fresh("after").into())])).await;
    judge.expect(matches!(r, Ok(MutationOutcome::Ok { .. })), || {
        format!("the session should go on after an action: {r:?}")
    });
    judge.finish()
}

/// Sends one bad frame on a fresh socket and expects the session to end:
/// a `FatalError`, then the close. A close with no `FatalError` first (a
/// Convex deployment closes at a binary frame) ends the session too, without
/// saying why: NonStrict. A socket still open once the patience runs out, or
/// one that answers the frame with a transition, fails.
async fn expect_fatal(ctx: Ctx, frame: Message, what: &str) -> CaseResult {
    let mut judge = Judge::default();
    let Some(mut ws) = raw_socket(&ctx, &mut judge, "/api/sync").await else { return judge.finish() };
    let _ = ws.send(frame).await;
    let mut got = read_until(&mut ws, "FatalError", &ctx.patience).await;
    if got.has("FatalError") && !got.closed {
        let rest = read_until(&mut ws, "\u{0}never\u{0}", &ctx.patience).await;
        got.texts.extend(rest.texts);
        got.closed = rest.closed;
    }
    match ended(&got) {
        Ended::WithFatalError => {}
        Ended::Closed => judge.non_strict(format!(
            "{what}: the backend closed without a FatalError frame first, so the client cannot say why"
        )),
        Ended::No(why) => judge.fail(format!("{what}: {why}; got {:?}", got.texts)),
    }
    // The backend keeps serving everyone else.
    let Some(other) = connect(&ctx, &mut judge).await else { return judge.finish() };
    let r = other.mutation("counters:increment", obj([("name", ctx.fresh("bystander").into())])).await;
    judge.expect(matches!(r, Ok(MutationOutcome::Ok { .. })), || format!("another session failed after {what}: {r:?}"));
    judge.finish()
}

/// How a session met a protocol violation, from what its socket received after it.
#[derive(Debug, PartialEq)]
enum Ended {
    /// A `FatalError`, then the close: as the protocol asks.
    WithFatalError,
    /// The close alone.
    Closed,
    /// Not ended, or served on: why.
    No(&'static str),
}

fn ended(got: &Received) -> Ended {
    // Nothing the cases send after Connect asks for an answer but the bad
    // frame, so a transition says the backend took the frame as a request.
    let served = got.has("\"Transition\"");
    match (got.has("FatalError"), got.closed) {
        _ if served => Ended::No("the socket went on serving after it"),
        (true, true) => Ended::WithFatalError,
        (true, false) => Ended::No("a FatalError, but the socket stayed open"),
        (false, true) => Ended::Closed,
        (false, false) => Ended::No("the socket stayed open and sent no FatalError"),
    }
}

async fn binary_frame(ctx: Ctx) -> CaseResult {
    expect_fatal(ctx, Message::Binary(vec![0x7b, 0x7d].into()), "a binary frame").await
}

async fn invalid_json(ctx: Ctx) -> CaseResult {
    expect_fatal(ctx, Message::text("{\"type\": \"Mutation\", "), "invalid JSON").await
}

async fn wrong_base_version(ctx: Ctx) -> CaseResult {
    let frame = serde_json::json!({"type": "ModifyQuerySet", "baseVersion": 7, "newVersion": 8, "modifications": []});
    expect_fatal(ctx, Message::text(frame.to_string()), "a wrong baseVersion").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raw_socket_is_wss_for_an_https_target_and_keeps_its_path() {
        assert_eq!(socket_url_at("https://x.convex.cloud/", "/api/sync").unwrap(), "wss://x.convex.cloud/api/sync");
        assert_eq!(
            socket_url_at("http://127.0.0.1:3210", "/api/1.48.0/sync").unwrap(),
            "ws://127.0.0.1:3210/api/1.48.0/sync"
        );
        assert!(socket_url_at("x.convex.cloud", "/api/sync").is_err());
    }

    fn received(texts: &[&str], closed: bool) -> Received {
        Received { texts: texts.iter().map(|t| (*t).to_owned()).collect(), closed }
    }

    #[test]
    fn a_session_ends_with_a_fatal_error_or_at_least_a_close() {
        let fatal = r#"{"type":"FatalError","error":"binary frames are not client messages"}"#;
        assert_eq!(ended(&received(&[fatal], true)), Ended::WithFatalError);
        // A deployment closes at a binary frame without saying why.
        assert_eq!(ended(&received(&[], true)), Ended::Closed);
        assert!(matches!(ended(&received(&[fatal], false)), Ended::No(_)));
        assert!(matches!(ended(&received(&[], false)), Ended::No(_)));
        let transition = r#"{"type":"Transition","startVersion":{},"endVersion":{},"modifications":[]}"#;
        assert!(matches!(ended(&received(&[transition], true)), Ended::No(_)));
        assert!(matches!(ended(&received(&[transition, fatal], true)), Ended::No(_)));
    }
}
