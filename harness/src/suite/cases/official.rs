//! Category 10, HTTP API, keepalive, time and identity (10.1 to 10.5; the
//! identity cases are in `identity.rs`): what the official clients rely on
//! around the sync protocol. `ConvexHttpClient`'s calls and their statuses,
//! WebSocket pings that keep an idle client alive, and transition timestamps
//! that are the server's clock. Bodies are written and read through
//! `protocol::wire::http`; the HTTP helpers here serve `identity.rs` too.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt as _, StreamExt as _};
use syncspec_protocol::client::Client;
use syncspec_protocol::value::Value;
use syncspec_protocol::wire;
use syncspec_protocol::wire::http::{self, Response};
use tokio_tungstenite::tungstenite::Message;

use super::case;
use super::handshake::{raw_socket, read_until};
use crate::checkers::field;
use crate::suite::{answered, connect, obj, rows, transitions, value_in, wait_view, Case, CaseResult, Ctx, Judge};

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!(
            "10.1",
            "HTTP calls answer in the HTTP clients' shapes",
            "POST /api/query, /api/mutation and /api/function answer 200 with status success, and a function's failure 200 with status error (as Convex answers; the Python client reads nothing else)",
            http_shapes
        ),
        case!(
            "10.2",
            "an HTTP mutation reaches socket subscribers",
            "an HTTP mutation is a commit like any other: subscribers see it, a later HTTP query reads it",
            http_write_reaches_sockets
        ),
        case!(
            "10.3",
            "other requests get a proper HTTP status",
            "unknown paths 404 and other bad requests a 4xx, never a dropped connection; short of 405 with Allow, 400 and 413 with a JSON reason, NonStrict",
            http_statuses
        ),
        case!(
            "10.4",
            "an idle client outlives the idle timeout (server pings)",
            "the server pings an idle socket and keeps it open while its pongs arrive",
            idle_client_survives
        ),
        case!(
            "10.5",
            "transitions carry the current time",
            "the first transition carries the server's clock, never 0, and idle transitions move with the clock",
            transitions_carry_now
        ),
    ]
}

/// How far a transition's ts may be from this machine's clock: generous,
/// since the backend's clock and ours need not agree closely.
const CLOCK_BOUND: Duration = Duration::from_secs(300);
/// How long case 10.5 leaves the backend without commits.
const IDLE_CLOCK: Duration = Duration::from_millis(1500);
/// How far the ts must have moved after `IDLE_CLOCK`.
const CLOCK_ADVANCE: Duration = Duration::from_secs(1);
/// A body over the reference server's limit, and every Convex limit on calls.
const TOO_LARGE: usize = syncspec_server::server::MAX_FRAME_BYTES + 1;

// ---------------------------------------------------------------- HTTP

/// One HTTP answer as a case saw it.
pub(super) struct Answer {
    pub(super) status: u16,
    allow: Option<String>,
    body: String,
}

impl Answer {
    /// The body's start, for evidence.
    pub(super) fn snippet(&self) -> String {
        let cut: String = self.body.chars().take(200).collect();
        if cut.len() < self.body.len() {
            format!("{cut}…")
        } else {
            cut
        }
    }
}

/// Sends one request; `Err` says why no answer came: a dropped connection,
/// or nothing within the run's patience.
pub(super) async fn request(
    ctx: &Ctx,
    method: reqwest::Method,
    path: &str,
    body: Option<String>,
    bearer: Option<&str>,
) -> Result<Answer, String> {
    let client = reqwest::Client::builder().build().map_err(|e| format!("could not make an HTTP client: {e}"))?;
    let mut builder = client.request(method, format!("{}{path}", ctx.url.trim_end_matches('/')));
    if let Some(body) = body {
        builder = builder.header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
    }
    if let Some(token) = bearer {
        builder = builder.bearer_auth(token);
    }
    let exchange = async {
        let response = builder.send().await?;
        let status = response.status().as_u16();
        let allow = response.headers().get(reqwest::header::ALLOW).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = response.text().await?;
        Ok::<_, reqwest::Error>(Answer { status, allow, body })
    };
    match ctx.patience.wait(exchange).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(format!("no answer, the connection failed: {}", causes(&e))),
        Err(waited) => Err(format!("no answer within {waited:?}")),
    }
}

/// An error with its causes, which say what happened to the connection.
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `POST route` with a function call's body.
pub(super) async fn call(ctx: &Ctx, route: &str, body: String, bearer: Option<&str>) -> Result<Answer, String> {
    request(ctx, reqwest::Method::POST, route, Some(body), bearer).await
}

/// The body a call's answer must have, besides its status: a JSON object
/// whose `logLines`, if present, is an array of strings. Convex leaves
/// `logLines` out when a function logged nothing, and the clients read it
/// as empty then.
fn check_log_lines(judge: &mut Judge, what: &str, answer: &Answer) {
    let json: Option<serde_json::Value> = serde_json::from_str(&answer.body).ok();
    let fits = json.as_ref().and_then(serde_json::Value::as_object).is_some_and(|o| match o.get("logLines") {
        None => true,
        Some(serde_json::Value::Array(lines)) => lines.iter().all(serde_json::Value::is_string),
        Some(_) => false,
    });
    judge.expect(fits, || {
        format!(
            "{what}: expected a JSON object whose logLines, if any, is an array of strings; got {}",
            answer.snippet()
        )
    });
}

/// The value of a successful call (200, `status: "success"`), or `None`
/// with the failure recorded as `what`.
pub(super) fn success(judge: &mut Judge, what: &str, answer: &Result<Answer, String>) -> Option<Value> {
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => {
            judge.fail(format!("{what}: {e}"));
            return None;
        }
    };
    if answer.status != 200 {
        judge.fail(format!("{what}: expected status 200, got {}: {}", answer.status, answer.snippet()));
        return None;
    }
    check_log_lines(judge, what, answer);
    match http::parse_response(&answer.body) {
        Ok(Response::Success { value, .. }) => Some(value),
        Ok(Response::Error { message, .. }) => {
            judge.fail(format!("{what}: expected status \"success\", got \"error\": {message}"));
            None
        }
        Err(e) => {
            judge.fail(format!("{what}: the body is not a call's answer ({e}): {}", answer.snippet()));
            None
        }
    }
}

/// Expects a function's failure as Convex answers it: status 200 (the
/// Python `ConvexHttpClient` reads no other), `status: "error"` with a
/// message, and `errorData.code == code` when one is named.
pub(super) fn function_error(judge: &mut Judge, what: &str, answer: &Result<Answer, String>, code: Option<&str>) {
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => return judge.fail(format!("{what}: {e}")),
    };
    judge.expect(answer.status == 200, || {
        format!(
            "{what}: a function's failure must be status 200 with status \"error\" in the body, got {}: {}",
            answer.status,
            answer.snippet()
        )
    });
    check_log_lines(judge, what, answer);
    match http::parse_response(&answer.body) {
        Ok(Response::Error { message, data, .. }) => {
            judge.expect(!message.is_empty(), || format!("{what}: the errorMessage is empty"));
            if let Some(code) = code {
                let got = data.as_ref().and_then(Value::as_object).and_then(|o| o.get("code")).cloned();
                judge.expect(got.as_ref().and_then(Value::as_str) == Some(code), || {
                    format!("{what}: expected errorData.code {code}, got {got:?}")
                });
            }
        }
        Ok(Response::Success { value, .. }) => {
            judge.fail(format!("{what}: expected status \"error\", got success with {value}"))
        }
        Err(e) => judge.fail(format!("{what}: the body is not a call's answer ({e}): {}", answer.snippet())),
    }
}

async fn http_shapes(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let name = ctx.fresh("http");
    let counter = || obj([("name", name.as_str().into())]);
    let by_two = obj([("name", name.as_str().into()), ("by", Value::Int64(2))]);
    // The npm client's shapes: args in a one-element array on the kind's
    // route, the bare object on /api/function.
    let m = call(&ctx, "/api/mutation", http::write_request("counters:increment", &by_two), None).await;
    let value = success(&mut judge, "POST /api/mutation counters:increment {by: 2}", &m);
    judge.expect(value.is_none() || value == Some(Value::Int64(2)), || {
        format!("the increment returned {value:?}, expected 2")
    });
    if m.is_err() {
        // The backend has no HTTP API to speak of: every further call would fail the same way.
        return judge.finish();
    }
    let q = call(&ctx, "/api/query", http::write_request("counters:get", &counter()), None).await;
    let value = success(&mut judge, "POST /api/query counters:get", &q);
    judge.expect(value.is_none() || value == Some(Value::Int64(2)), || {
        format!("counters:get returned {value:?}, expected 2")
    });
    let f = call(&ctx, "/api/function", http::write_function_request("counters:get", &counter()), None).await;
    let value = success(&mut judge, "POST /api/function counters:get", &f);
    judge.expect(value.is_none() || value == Some(Value::Int64(2)), || {
        format!("/api/function counters:get returned {value:?}, expected 2")
    });

    // A function's failures, each 200 with status "error".
    let empty = obj([("channel", ctx.fresh("c").into()), ("author", "a".into()), ("body", " ".into())]);
    let r = call(&ctx, "/api/mutation", http::write_request("messages:send", &empty), None).await;
    function_error(&mut judge, "an empty message over /api/mutation", &r, Some("EmptyMessage"));
    let r = call(&ctx, "/api/query", http::write_request("nope:nothing", &obj([])), None).await;
    function_error(&mut judge, "an unknown query over /api/query", &r, None);
    let bad = obj([("name", Value::Float64(1.0))]);
    let r = call(&ctx, "/api/mutation", http::write_request("counters:increment", &bad), None).await;
    function_error(&mut judge, "a mistyped argument over /api/mutation", &r, None);
    let r = call(&ctx, "/api/query", http::write_request("counters:increment", &counter()), None).await;
    function_error(&mut judge, "a mutation sent to /api/query", &r, None);
    let r = call(&ctx, "/api/action", http::write_request("nope:action", &obj([])), None).await;
    function_error(&mut judge, "an action the backend does not have, over /api/action", &r, None);
    // The mutation sent to the query route must not have run.
    let q = call(&ctx, "/api/query", http::write_request("counters:get", &counter()), None).await;
    let value = success(&mut judge, "POST /api/query counters:get after the failures", &q);
    judge.expect(value.is_none() || value == Some(Value::Int64(2)), || {
        format!("counters:get returned {value:?} after the failures, expected 2: a failed call wrote")
    });
    judge.finish()
}

async fn http_write_reaches_sockets(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(client) = connect(&ctx, &mut judge).await else { return judge.finish() };
    let name = ctx.fresh("http-counter");
    let channel = ctx.fresh("http-chan");
    let counter = obj([("name", name.as_str().into())]);
    let q = client.subscribe("counters:get", counter.clone());
    let list = client.subscribe("messages:list", obj([("channel", channel.as_str().into())]));
    wait_view(&mut judge, &client, "the initial results", |v| {
        v.results.contains_key(&q) && v.results.contains_key(&list)
    })
    .await;

    let m = call(&ctx, "/api/mutation", http::write_request("counters:increment", &counter), None).await;
    if success(&mut judge, "POST /api/mutation counters:increment", &m).is_some() {
        wait_view(&mut judge, &client, "the HTTP increment in the socket's subscription", |v| {
            value_in(v, q) == Some(&Value::Int64(1))
        })
        .await;
    }
    let body = "sent over HTTP";
    let message = obj([("channel", channel.as_str().into()), ("author", "http".into()), ("body", body.into())]);
    let m = call(&ctx, "/api/mutation", http::write_request("messages:send", &message), None).await;
    if let Some(id) = success(&mut judge, "POST /api/mutation messages:send", &m) {
        wait_view(&mut judge, &client, "the HTTP message in the socket's messages:list", |v| {
            rows(v, list).iter().any(|row| field(row, "_id") == Some(&id))
        })
        .await;
    }
    // A socket's write, and then an HTTP query reading both.
    let r = client.mutation("counters:increment", counter.clone()).await;
    if answered(&mut judge, || "the socket's increment".to_owned(), &r) {
        let q = call(&ctx, "/api/query", http::write_request("counters:get", &counter), None).await;
        let value = success(&mut judge, "POST /api/query counters:get after both increments", &q);
        judge.expect(value.is_none() || value == Some(Value::Int64(2)), || {
            format!("an HTTP query after the HTTP and the socket increment read {value:?}, expected 2")
        });
    }
    judge.finish()
}

/// One request of case 10.3 and the status it must get.
struct Probe {
    what: &'static str,
    method: reqwest::Method,
    path: &'static str,
    body: Option<String>,
    status: u16,
    /// The method a 405's `Allow` must name.
    allow: Option<&'static str>,
}

fn probe(what: &'static str, method: reqwest::Method, path: &'static str, body: Option<String>, status: u16) -> Probe {
    Probe { what, method, path, body, status, allow: None }
}

async fn http_statuses(ctx: Ctx) -> CaseResult {
    use reqwest::Method;
    let mut judge = Judge::default();
    let a_call = Some(http::write_function_request("counters:get", &obj([])));
    let huge = Some(http::write_function_request("counters:get", &obj([("name", "x".repeat(TOO_LARGE).into())])));
    let probes = [
        probe("GET /version", Method::GET, "/version", None, 200),
        probe("an unknown path", Method::GET, "/syncspec/no/such/route", None, 404),
        probe("an unknown /api path", Method::POST, "/api/no-such-route", a_call.clone(), 404),
        Probe { allow: Some("POST"), ..probe("GET on a call route", Method::GET, "/api/query", None, 405) },
        Probe { allow: Some("GET"), ..probe("POST on the sync route", Method::POST, "/api/sync", a_call, 405) },
        probe("the sync route without an upgrade", Method::GET, "/api/sync", None, 400),
        probe("a body that is not JSON", Method::POST, "/api/query", Some("this is not json".to_owned()), 400),
        probe("a call without a path", Method::POST, "/api/query", Some(r#"{"args":{}}"#.to_owned()), 400),
        // Malformed on purpose, so written by hand.
        probe(
            "args that are not an object",
            Method::POST,
            "/api/query",
            Some(r#"{"path":"counters:get","args":5}"#.to_owned()),
            400,
        ),
        probe("a body over 24 MiB", Method::POST, "/api/query", huge, 413),
    ];
    for Probe { what, method, path, body, status, allow } in probes {
        let answer = match request(&ctx, method, path, body, None).await {
            Ok(answer) => answer,
            Err(e) => {
                judge.fail(format!("{what} ({path}): expected status {status}, got {e}"));
                continue;
            }
        };
        let mut loose = Vec::new();
        match status_fits(status, answer.status) {
            Fit::Exact => {}
            Fit::Near => loose.push(format!("status {} where {status} is the precise answer", answer.status)),
            Fit::Wrong => {
                judge.fail(format!(
                    "{what} ({path}): expected status {status}, got {}: {}",
                    answer.status,
                    answer.snippet()
                ));
                continue;
            }
        }
        if status == 200 {
            judge.expect(!answer.body.trim().is_empty(), || format!("{what}: an empty body"));
            continue;
        }
        let json: Option<serde_json::Value> = serde_json::from_str(&answer.body).ok();
        if !json.as_ref().is_some_and(|j| j["code"].is_string() && j["message"].is_string()) {
            loose.push(format!("a body that is not JSON {{code, message}}: {}", answer.snippet()));
        }
        if let Some(method) = allow.filter(|_| answer.status == 405) {
            if !answer.allow.as_deref().is_some_and(|a| a.contains(method)) {
                loose.push(format!("a 405 whose Allow does not name {method}: {:?}", answer.allow));
            }
        }
        if !loose.is_empty() {
            judge.non_strict(format!("{what} ({path}): {}", loose.join("; ")));
        }
    }
    judge.finish()
}

/// How an answer's status meets the status a probe of 10.3 asks for.
#[derive(Debug, PartialEq)]
enum Fit {
    /// The status asked for.
    Exact,
    /// Another status that refuses the request for the client's fault,
    /// as a deployment may answer: NonStrict.
    Near,
    /// A status that says something else: success, a server error, or
    /// found where nothing is.
    Wrong,
}

/// Judges a status against the one asked for. `GET /version` must succeed
/// and an unknown route must be 404, as on Convex. A wrong method, a missing
/// upgrade and a bad body may get any 4xx. A body over every limit gets 413,
/// or 400 from a backend that refuses it as a bad body.
fn status_fits(asked: u16, got: u16) -> Fit {
    match (asked, got) {
        _ if asked == got => Fit::Exact,
        (200 | 404, _) => Fit::Wrong,
        (413, 400) => Fit::Near,
        (413, _) => Fit::Wrong,
        (_, 400..=499) => Fit::Near,
        _ => Fit::Wrong,
    }
}

// ---------------------------------------------------------------- keepalive and time

async fn idle_client_survives(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(mut ws) = raw_socket(&ctx, &mut judge, "/api/sync").await else { return judge.finish() };
    let add = |base: u32, id: u32| {
        let args = obj([("name", Value::from(ctx.fresh("idle")))]);
        let change = wire::QuerySetChange::Add { query_id: id, udf_path: "counters:get", args: &args, journal: None };
        wire::write_modify_query_set(base, base + 1, &[change])
    };
    let _ = ws.send(Message::text(add(0, 0))).await;
    let first = read_until(&mut ws, "\"Transition\"", &ctx.patience).await;
    if !first.has("\"Transition\"") {
        judge.fail(format!("no first transition before going idle: {:?} (closed: {})", first.texts, first.closed));
        return judge.finish();
    }
    // Idle: send nothing, but keep reading, so the socket answers pings with pongs.
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + ctx.idle_for;
    let (mut pings, mut sync_pings, mut first_ping) = (0u32, 0u32, None);
    let mut closed = None;
    while let Ok(frame) = tokio::time::timeout_at(deadline, ws.next()).await {
        match frame {
            Some(Ok(Message::Ping(_))) => {
                pings += 1;
                first_ping.get_or_insert(started.elapsed());
            }
            Some(Ok(Message::Text(t))) if t.contains("\"Ping\"") => sync_pings += 1,
            Some(Ok(Message::Close(frame))) => {
                let why = frame
                    .map_or("no close frame payload".to_owned(), |f| format!("{} {}", u16::from(f.code), f.reason));
                closed = Some((started.elapsed(), why));
                break;
            }
            Some(Err(e)) => {
                closed = Some((started.elapsed(), format!("socket error: {e}")));
                break;
            }
            None => {
                closed = Some((started.elapsed(), "the stream ended".to_owned()));
                break;
            }
            Some(Ok(_)) => {}
        }
    }
    let first = first_ping.map(|t| format!(", the first after {t:?}")).unwrap_or_default();
    let seen = format!("{pings} WebSocket pings{first} and {sync_pings} sync Pings in {:?} idle", ctx.idle_for);
    if let Some((after, why)) = closed {
        judge.fail(format!(
            "the backend closed an idle client that answered every ping, after {after:?} ({why}); it saw {seen}"
        ));
        return judge.finish();
    }
    judge.expect(pings + sync_pings > 0, || {
        format!("the backend sent no ping to an idle client: {seen} (Convex pings every 5 s; --idle-for must exceed the target's ping interval)")
    });
    // Still open, and still served.
    let _ = ws.send(Message::text(add(1, 1))).await;
    let after = read_until(&mut ws, "\"Transition\"", &ctx.patience).await;
    judge.expect(after.has("\"Transition\""), || {
        format!("after {seen}, a new query got no transition: {:?} (closed: {})", after.texts, after.closed)
    });
    judge.finish()
}

/// This machine's wall clock in nanoseconds since the epoch.
fn wall_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// The history index and end ts of `client`'s first transition reaching `query_set`.
fn transition_to(ctx: &Ctx, client: &Client, query_set: u32) -> Option<(usize, u64)> {
    transitions(&ctx.history(), client).find(|(_, end, _)| end.query_set >= query_set).map(|(i, end, _)| (i, end.ts))
}

/// Expects a ts within [`CLOCK_BOUND`] of this machine's clock, and not 0.
fn near_now(judge: &mut Judge, what: &str, (event, ts): (usize, u64)) {
    let now = wall_ns();
    if ts == 0 {
        return judge.fail_at(format!("{what} carries ts 0, not the server's clock"), vec![event]);
    }
    let off = Duration::from_nanos(now.abs_diff(ts));
    if off > CLOCK_BOUND {
        judge.fail_at(format!("{what} carries ts {ts}, {off:?} away from this machine's clock ({now})"), vec![event]);
    }
}

async fn transitions_carry_now(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(a) = connect(&ctx, &mut judge).await else { return judge.finish() };
    let first = a.subscribe("counters:get", obj([("name", ctx.fresh("clock").into())]));
    if wait_view(&mut judge, &a, "the first transition", |v| v.results.contains_key(&first)).await.is_none() {
        return judge.finish();
    }
    let Some(start) = transition_to(&ctx, &a, 0) else {
        judge.fail("the first result arrived but no transition was recorded");
        return judge.finish();
    };
    near_now(&mut judge, "the first transition", start);
    // Nothing this case does commits from here on.
    tokio::time::sleep(IDLE_CLOCK).await;
    let second = a.subscribe("counters:get", obj([("name", ctx.fresh("clock").into())]));
    let Some(b) = connect(&ctx, &mut judge).await else { return judge.finish() };
    let other = b.subscribe("counters:get", obj([("name", ctx.fresh("clock").into())]));
    wait_view(&mut judge, &a, "the second query's transition", |v| v.results.contains_key(&second)).await;
    wait_view(&mut judge, &b, "a new socket's first transition", |v| v.results.contains_key(&other)).await;
    for (what, client, query_set) in
        [("the same socket's transition after the idle time", &a, 2), ("a new socket's first transition", &b, 1)]
    {
        let Some((event, ts)) = transition_to(&ctx, client, query_set) else { continue };
        near_now(&mut judge, what, (event, ts));
        let moved = Duration::from_nanos(ts.saturating_sub(start.1));
        judge.expect(ts >= start.1 && moved >= CLOCK_ADVANCE, || {
            format!(
                "{what} (event {event}) carries ts {ts}, {moved:?} after the first transition's {} although {IDLE_CLOCK:?} passed: \
                 transitions built while idle must carry the current time, not the last commit's",
                start.1
            )
        });
    }
    judge.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_route_must_be_404_and_the_rest_a_refusal() {
        assert_eq!(status_fits(404, 404), Fit::Exact);
        // The `http-drop-unknown` fault gets no status at all; a backend
        // that serves or errs on an unknown route is as wrong.
        for got in [200, 400, 405, 500] {
            assert_eq!(status_fits(404, got), Fit::Wrong, "404 asked, {got} got");
        }
        assert_eq!(status_fits(200, 404), Fit::Wrong);
        assert_eq!(status_fits(405, 405), Fit::Exact);
        assert_eq!(status_fits(405, 404), Fit::Near);
        assert_eq!(status_fits(400, 426), Fit::Near);
        assert_eq!(status_fits(400, 200), Fit::Wrong);
        assert_eq!(status_fits(405, 500), Fit::Wrong);
        assert_eq!(status_fits(413, 413), Fit::Exact);
        assert_eq!(status_fits(413, 400), Fit::Near);
        assert_eq!(status_fits(413, 404), Fit::Wrong);
        assert_eq!(status_fits(413, 200), Fit::Wrong);
    }
}
