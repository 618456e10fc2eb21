//! Every request on the server's port: the HTTP API, and the WebSocket
//! upgrades to the sync socket and the test hooks.
//!
//! One HTTP/1 server (hyper) per connection. `route` decides what a request
//! is from its method and path alone, so every request gets an answer: a
//! function call (`POST /api/query|mutation|action|function`) runs through
//! the core like a socket's and answers in the shape the official
//! `ConvexHttpClient`s read (200 with `status: "success"`, or 200 with
//! `status: "error"` for a function's failure, as Convex answers: the npm
//! client would also read 560, the Python client reads only 200);
//! `GET /version` names the
//! server; an unknown path is 404, a known one with the wrong method 405
//! with `Allow`, a body that is not a call 400 with the reason, a body over
//! the frame limit 413. A sync path upgrades to `connection::serve` with
//! tungstenite's framing over the upgraded stream.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use convex_sync_types::AuthenticationToken;
use futures_util::StreamExt as _;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use syncspec_protocol::catalogue::Kind;
use syncspec_protocol::wire;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::server::create_response_with_body;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;
use tracing::debug;

use crate::admission::{Refusal, Slot};
use crate::auth::Identity;
use crate::core::{Call, Fault};
use crate::server::{self, Shared};

/// The server's WebSocket settings with messages of at most `max` bytes.
fn frames_up_to(max: usize) -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    server::websocket_config().max_message_size(Some(max)).max_frame_size(Some(max))
}

/// The status the npm client also accepts for a function's failure (and the
/// `http-error-status-560` fault answers with); Convex answers 200.
pub const FUNCTION_ERROR_560: u16 = 560;
/// How long writing a refusal may take before the connection is dropped.
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

type Body = Full<Bytes>;

/// What a request asks for, from its method and path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    /// The sync socket (an upgrade).
    Sync,
    /// The test hooks' socket (an upgrade; only with test hooks on).
    Control,
    /// A function call; the kind its path demands (`None`: any).
    Call(Option<Kind>),
    /// `GET /version`.
    Version,
    /// `GET /metrics`: Prometheus metrics (OpenMetrics text).
    Metrics,
    /// A CORS preflight for the call routes.
    Preflight,
    /// A known path, the wrong method; the methods it takes.
    WrongMethod(&'static str),
    /// No such path.
    NotFound,
}

fn route(method: &Method, path: &str, test_hooks: bool) -> Route {
    let expect = |allowed: &'static str, route: Route| {
        if method == allowed {
            route
        } else if method == Method::OPTIONS && allowed == "POST" {
            Route::Preflight
        } else {
            Route::WrongMethod(allowed)
        }
    };
    match path {
        "/api/query" => expect("POST", Route::Call(Some(Kind::Query))),
        "/api/mutation" => expect("POST", Route::Call(Some(Kind::Mutation))),
        "/api/function" => expect("POST", Route::Call(None)),
        "/api/action" => expect("POST", Route::Call(Some(Kind::Action))),
        "/version" => expect("GET", Route::Version),
        "/metrics" => expect("GET", Route::Metrics),
        "/_syncspec/control" if test_hooks => expect("GET", Route::Control),
        _ => match path.strip_prefix("/api/").map(|rest| rest.split('/').collect::<Vec<_>>()).as_deref() {
            Some(["sync"]) => expect("GET", Route::Sync),
            Some([version, "sync"]) if !version.is_empty() => expect("GET", Route::Sync),
            _ => Route::NotFound,
        },
    }
}

/// Serves one TCP connection until the client closes it or it upgrades.
pub(crate) async fn serve(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>, slot: Arc<Slot>) {
    // Nagle would hold small frames back for tens of milliseconds.
    if let Err(e) = stream.set_nodelay(true) {
        debug!(%peer, "could not set TCP_NODELAY: {e}");
    }
    // hyper closes a connection whose headers take longer than this (its
    // own default is 30 s); the fault turns both off.
    let handshake_timeout =
        if shared.has(Fault::NoHandshakeTimeout) { None } else { Some(shared.config.limits.handshake_timeout) };
    let service = hyper::service::service_fn(move |request| {
        let (shared, slot) = (shared.clone(), slot.clone());
        async move { answer(request, shared, slot).await }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(handshake_timeout)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await;
    if let Err(e) = served {
        debug!(%peer, "connection ended: {e}");
    }
}

/// Why a request got no answer at all: only the `http-drop-unknown` fault.
#[derive(Debug, thiserror::Error)]
#[error("dropped without an answer (http-drop-unknown)")]
struct Dropped;

/// Turns a connection away with a `503` saying why (written at once, with no
/// request read), then closes it.
pub(crate) async fn refuse(mut stream: TcpStream, refusal: Refusal) {
    use tokio::io::AsyncWriteExt as _;
    let body = format!(r#"{{"code":"TooManyConnections","message":"{refusal}"}}"#);
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

async fn answer(request: Request<Incoming>, shared: Arc<Shared>, slot: Arc<Slot>) -> Result<Response<Body>, Dropped> {
    let route = route(request.method(), request.uri().path(), shared.config.test_hooks);
    let response = match route {
        Route::Sync | Route::Control => upgrade(request, route, shared, slot),
        Route::Call(kind) => call(request, kind, &shared).await,
        Route::Version => text(StatusCode::OK, format!("syncspec-server {}\n", env!("CARGO_PKG_VERSION"))),
        Route::Metrics => with_type(
            StatusCode::OK,
            shared.metrics_text(),
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
        Route::Preflight => {
            let mut response = empty(StatusCode::NO_CONTENT);
            let h = response.headers_mut();
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST, OPTIONS"));
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("*"));
            h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
            response
        }
        Route::WrongMethod(allowed) => {
            let mut response = problem(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                &format!("{} takes {allowed}, not {}", request.uri().path(), request.method()),
            );
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allowed));
            response
        }
        Route::NotFound if shared.has(Fault::HttpDropUnknown) => return Err(Dropped),
        Route::NotFound => problem(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("no route for {} {}", request.method(), request.uri().path()),
        ),
    };
    Ok(with_cors(response))
}

/// Answers a WebSocket upgrade and serves the socket once hyper lets go of it.
/// Upgrades to a WebSocket, which holds the connection's `slot` while it lives.
fn upgrade(mut request: Request<Incoming>, route: Route, shared: Arc<Shared>, slot: Arc<Slot>) -> Response<Body> {
    // tungstenite checks the handshake (GET, HTTP/1.1, `Upgrade: websocket`,
    // version 13, a key) and builds the 101 with its accept key.
    let response = match create_response_with_body(&request, Body::default) {
        Ok(response) => response,
        Err(e) => {
            let message = format!("{} is a WebSocket endpoint: {e}", request.uri().path());
            return problem(StatusCode::BAD_REQUEST, "WebSocketUpgradeExpected", &message);
        }
    };
    let upgrading = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        let _slot = slot;
        let upgraded = match upgrading.await {
            Ok(upgraded) => upgraded,
            Err(e) => return debug!("upgrade failed: {e}"),
        };
        let ws = WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            Role::Server,
            Some(frames_up_to(shared.config.limits.max_frame_bytes)),
        )
        .await;
        let (sink, stream) = ws.split();
        match route {
            Route::Control => server::control(sink, stream, shared).await,
            _ => crate::connection::serve(sink, stream, shared).await,
        }
    });
    response
}

/// A function call: verify the caller, read the body, run it, answer.
async fn call(request: Request<Incoming>, kind: Option<Kind>, shared: &Shared) -> Response<Body> {
    let caller = match caller(&request, shared) {
        Ok(caller) => caller,
        Err(message) => return problem(StatusCode::UNAUTHORIZED, "Unauthenticated", &message),
    };
    let body = match read_call(request, shared.config.limits.max_frame_bytes).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let call = Call { id: 0, route: kind, path: body.path, args: body.args, caller };
    match shared.call(call).await {
        Ok(value) => json(StatusCode::OK, wire::http::write_success(&value)),
        Err(failure) => function_failed(shared, &failure.message, failure.data.as_ref()),
    }
}

/// The caller an `Authorization` header names: none, a verified `Bearer`
/// token, or the reason it is refused.
fn caller(request: &Request<Incoming>, shared: &Shared) -> Result<Option<Identity>, String> {
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| "the Authorization header is not text".to_owned())?;
    let token = match value.split_once(' ') {
        Some(("Bearer", jwt)) => AuthenticationToken::User(jwt.trim().to_owned()),
        Some(("Convex", key)) => AuthenticationToken::Admin(key.trim().to_owned(), None),
        _ => return Err("expected `Authorization: Bearer <JWT>`".into()),
    };
    shared.verifier.identity(&token)
}

/// Reads and parses a call's body, or the response refusing it.
async fn read_call(request: Request<Incoming>, max_body: usize) -> Result<wire::http::Request, Response<Body>> {
    let bytes = match Limited::new(request.into_body(), max_body).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            let message = format!("the body is over the {max_body}-byte limit");
            return Err(problem(StatusCode::PAYLOAD_TOO_LARGE, "BodyTooLarge", &message));
        }
        Err(e) => return Err(problem(StatusCode::BAD_REQUEST, "BodyUnreadable", &e.to_string())),
    };
    wire::http::parse_request(&bytes)
        .map_err(|e| problem(StatusCode::BAD_REQUEST, "BadJsonBody", &format!("not a function call: {e}")))
}

/// A function's failure: 200 with `status: "error"`, or 560 under the
/// `http-error-status-560` fault.
fn function_failed(shared: &Shared, message: &str, data: Option<&syncspec_protocol::value::Value>) -> Response<Body> {
    let status = if shared.has(Fault::HttpErrorStatus560) {
        StatusCode::from_u16(FUNCTION_ERROR_560).expect("560 is a valid status")
    } else {
        StatusCode::OK
    };
    json(status, wire::http::write_error(message, data))
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::default());
    *response.status_mut() = status;
    response
}

fn with_type(status: StatusCode, body: String, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn json(status: StatusCode, body: String) -> Response<Body> {
    with_type(status, body, "application/json")
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    with_type(status, body, "text/plain; charset=utf-8")
}

/// An error that is not a function's: `{code, message}`, as Convex writes them.
fn problem(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    json(status, serde_json::json!({"code": code, "message": message}).to_string())
}

fn with_cors(mut response: Response<Body>) -> Response<Body> {
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let (get, post) = (Method::GET, Method::POST);
        assert_eq!(route(&get, "/api/sync", false), Route::Sync);
        assert_eq!(route(&get, "/metrics", false), Route::Metrics);
        assert_eq!(route(&post, "/metrics", false), Route::WrongMethod("GET"));
        assert_eq!(route(&get, "/api/1.29.0/sync", false), Route::Sync);
        assert_eq!(route(&post, "/api/sync", false), Route::WrongMethod("GET"));
        assert_eq!(route(&get, "/api//sync", false), Route::NotFound);
        assert_eq!(route(&get, "/api/1/2/sync", false), Route::NotFound);
        assert_eq!(route(&get, "/sync", false), Route::NotFound);
        assert_eq!(route(&get, "/_syncspec/control", false), Route::NotFound);
        assert_eq!(route(&get, "/_syncspec/control", true), Route::Control);
        assert_eq!(route(&post, "/api/query", false), Route::Call(Some(Kind::Query)));
        assert_eq!(route(&post, "/api/mutation", false), Route::Call(Some(Kind::Mutation)));
        assert_eq!(route(&post, "/api/function", false), Route::Call(None));
        assert_eq!(route(&post, "/api/action", false), Route::Call(Some(Kind::Action)));
        assert_eq!(route(&get, "/api/query", false), Route::WrongMethod("POST"));
        assert_eq!(route(&Method::OPTIONS, "/api/query", false), Route::Preflight);
        assert_eq!(route(&get, "/version", false), Route::Version);
        assert_eq!(route(&post, "/version", false), Route::WrongMethod("GET"));
    }
}
