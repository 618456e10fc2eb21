//! Frames, both directions, read and written in one place: every client and
//! server writes and reads them through here, so a protocol change is one
//! edit and one test.
//!
//! Message types come from `convex_sync_types`; this module adds what that
//! crate leaves to the ends: the argument envelope rules, the timestamp
//! encoding, writers for every client frame our clients send (fast,
//! straight into a `String`, as the npm client sends them), writers for
//! the server frames with a `Transition` writer that splices query results
//! encoded once and shared by every session holding that query, and
//! (`peek`) a flat, borrowing reader of server frames for clients that read
//! many of them. `http` holds the bodies of the HTTP function calls.
//! Sockets, sessions and what a frame means to a backend live elsewhere.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use convex_sync_types::types::SerializedArgs;
use convex_sync_types::{
    ClientMessage, ErrorPayload, LogLinesMessage, QuerySetModification, ServerMessage, StateVersion,
};
use serde_json::value::RawValue;
use serde_json::Value as Json;

use crate::json::{self, DecodeError};
use crate::value::Value;

pub mod http;
mod peek;

pub use peek::{error_code, peek, ModificationKind, ModificationRef, ServerFrameKind, ServerFrameRef, VersionRef};

/// A commit timestamp: nanoseconds since the Unix epoch.
pub type Ts = u64;
/// A client-chosen query id, unique within one client.
pub type QueryId = u32;
/// A client-chosen mutation or action id, unique within one session.
pub type RequestId = u32;

/// The largest argument object a function accepts (Convex's 16 MiB).
pub const MAX_ARGS_BYTES: usize = 16 * 1024 * 1024;

/// A frame or message the server cannot accept.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The text is not JSON.
    #[error("expected a JSON text frame, got invalid JSON: {0}")]
    InvalidJson(serde_json::Error),
    /// The JSON is not a client message.
    #[error("expected a client message, got {0}")]
    InvalidMessage(String),
}

impl WireError {
    /// The short error code the server sends in `FatalError` and close reasons.
    pub fn code(&self) -> &'static str {
        match self {
            WireError::InvalidJson(_) => "WSMessageInvalidJson",
            WireError::InvalidMessage(_) => "WSMessageInvalid",
        }
    }
}

/// Arguments that are not a one-element array holding a valid Convex object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    /// Over `MAX_ARGS_BYTES`.
    #[error("arguments of {0} bytes are over the {MAX_ARGS_BYTES}-byte limit")]
    TooLarge(usize),
    /// Not `[ {…} ]`.
    #[error("expected arguments as a one-element array holding an object, got {0}")]
    BadEnvelope(String),
    /// A value the codec rejects, or one over Convex's limits on array
    /// length, object fields or nesting (the error names the limit and the
    /// path to the part over it).
    #[error(transparent)]
    Value(#[from] DecodeError),
}

/// Parses one text frame into a client message.
///
/// Arguments (a `Mutation`'s or `Action`'s, and each added query's) stay the
/// frame's own text, checked only as JSON: read into a `serde_json` tree, as
/// `convex_sync_types` alone would, 24 MiB of `0,` costs gigabytes before
/// `decode_args` can refuse it. The rest of the frame goes through
/// `convex_sync_types` as before, with a stand-in for each argument array.
pub fn parse_client_message(text: &str) -> Result<ClientMessage, WireError> {
    let fields: RawFields<'_> = serde_json::from_str(text).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => WireError::InvalidMessage(format!("a frame that is not an object: {e}")),
        _ => WireError::InvalidJson(e),
    })?;
    // Fields other than arguments and modifications are read as trees: all
    // of them together are held to the limit `tree` holds each to, before
    // any is read (a frame of many fields, each just under it, held a
    // hundred times its size).
    let others: usize = fields
        .iter()
        .filter(|(key, _)| !matches!(key.as_ref(), "args" | "modifications"))
        .map(|(_, raw)| raw.get().len())
        .sum();
    if others > MAX_OTHER_FIELD_BYTES {
        return Err(WireError::InvalidMessage(format!(
            "{others} bytes of fields other than arguments and modifications; a frame holds at most \
             {MAX_OTHER_FIELD_BYTES}"
        )));
    }
    let mut args = None;
    // One entry per modification, in order: the added query's raw arguments.
    let mut query_args = Vec::new();
    let mut json = serde_json::Map::new();
    for (key, raw) in fields {
        let value = match key.as_ref() {
            "args" => lift_args(raw, &mut args),
            "modifications" => lift_query_args(raw, &mut query_args)?,
            _ => tree(&key, raw)?,
        };
        json.insert(key.into_owned(), value);
    }
    ascii_path(&json)?;
    let mut message =
        ClientMessage::try_from(Json::Object(json)).map_err(|e| WireError::InvalidMessage(format!("{e:#}")))?;
    let restore = |raw: &RawValue| SerializedArgs::from_raw(raw.to_owned());
    match &mut message {
        ClientMessage::Mutation { args: sent, .. } | ClientMessage::Action { args: sent, .. } => {
            if let Some(raw) = args {
                *sent = restore(raw);
            }
        }
        ClientMessage::ModifyQuerySet { modifications, .. } => {
            for (m, raw) in modifications.iter_mut().zip(query_args) {
                if let (QuerySetModification::Add(query), Some(raw)) = (m, raw) {
                    query.args = restore(raw);
                }
            }
        }
        _ => {}
    }
    Ok(message)
}

/// An object's fields, each left as raw JSON borrowed from the frame.
type RawFields<'a> = BTreeMap<Cow<'a, str>, &'a RawValue>;

/// Keeps `raw` arguments aside and returns their stand-in: `null` stays
/// `null` (which `convex_sync_types` refuses or defaults as it always has),
/// anything else becomes `[]`, replaced by `raw` once the message is built.
fn lift_args<'a>(raw: &'a RawValue, kept: &mut Option<&'a RawValue>) -> Json {
    *kept = Some(raw);
    if raw.get() == "null" {
        Json::Null
    } else {
        Json::Array(Vec::new())
    }
}

/// A `modifications` list with each added query's arguments lifted out as
/// `lift_args` does, one entry in `kept` per modification.
fn lift_query_args<'a>(raw: &'a RawValue, kept: &mut Vec<Option<&'a RawValue>>) -> Result<Json, WireError> {
    let modifications: Option<Vec<RawFields<'a>>> = serde_json::from_str(raw.get())
        .map_err(|e| WireError::InvalidMessage(format!("modifications that are not objects: {e}")))?;
    let Some(modifications) = modifications else { return Ok(Json::Null) };
    let mut out = Vec::with_capacity(modifications.len());
    for modification in modifications {
        let mut args = None;
        let mut json = serde_json::Map::new();
        for (key, raw) in modification {
            let value = if key == "args" { lift_args(raw, &mut args) } else { tree(&key, raw)? };
            json.insert(key.into_owned(), value);
        }
        ascii_path(&json)?;
        kept.push(args);
        out.push(Json::Object(json));
    }
    Ok(Json::Array(out))
}

/// The most text one field other than arguments may hold (an `Event`'s
/// payload, say), and all of a frame's fields but its arguments and
/// modifications together: such fields are read as a `serde_json` tree,
/// which costs up to about 130 bytes per byte of text (`[[0],[0],…]`), and
/// no client sends more than a few KiB.
pub const MAX_OTHER_FIELD_BYTES: usize = 1024 * 1024;

/// A field other than arguments, as the tree `convex_sync_types` reads.
fn tree(key: &str, raw: &RawValue) -> Result<Json, WireError> {
    let len = raw.get().len();
    if len > MAX_OTHER_FIELD_BYTES {
        return Err(WireError::InvalidMessage(format!(
            "a `{key}` field of {len} bytes; fields other than arguments hold at most {MAX_OTHER_FIELD_BYTES}"
        )));
    }
    serde_json::from_str(raw.get()).map_err(WireError::InvalidJson)
}

/// Refuses a `Mutation`, `Action` or added query whose `udfPath` holds
/// anything but ASCII, before `convex_sync_types` reads it.
///
/// `convex_sync_types` 0.10.4 panics on a path component of more than 64
/// bytes whose 64th byte falls inside a character: it cuts the component
/// there for its error message (`check_valid_path_component`). Every valid
/// path is ASCII (components and function names are ASCII letters,
/// digits, `_` and `.`, joined by `/` and `:`), so this refuses nothing it
/// would accept. Other messages ignore a `udfPath`, as they always have.
/// Found by the `frames` fuzz target.
fn ascii_path(object: &serde_json::Map<String, Json>) -> Result<(), WireError> {
    let calls = matches!(object.get("type").and_then(Json::as_str), Some("Mutation" | "Action" | "Add"));
    match object.get("udfPath") {
        Some(Json::String(path)) if calls && !path.is_ascii() => Err(WireError::InvalidMessage(format!(
            "a `udfPath` of {} bytes with characters other than ASCII; a path is ASCII letters, digits, \
             `_`, `.`, `/` and `:`",
            path.len()
        ))),
        _ => Ok(()),
    }
}

/// Decodes a message's `args` field: a one-element array holding an object.
///
/// The text is held to Convex's value limits while it is parsed
/// (`json::decode_str_limited`), so arguments over a limit are refused after
/// reading little more than the limit, whatever the length of the text.
pub fn decode_args(raw: &str) -> Result<Value, ArgsError> {
    if raw.len() > MAX_ARGS_BYTES {
        return Err(ArgsError::TooLarge(raw.len()));
    }
    match json::decode_str_limited(raw)? {
        Value::Array(mut items) if items.len() == 1 && matches!(items[0], Value::Object(_)) => Ok(items.remove(0)),
        Value::Array(items) if items.len() == 1 => {
            Err(ArgsError::BadEnvelope(format!("an array holding {}", items[0].type_name())))
        }
        Value::Array(items) => Err(ArgsError::BadEnvelope(format!("an array of {} elements", items.len()))),
        other => Err(ArgsError::BadEnvelope(other.type_name().to_owned())),
    }
}

/// A server-message value left as JSON: `convex_sync_types` needs a value type
/// whose conversion error is `anyhow::Error`, which plain `serde_json::Value`
/// (infallible) does not have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonPayload(pub Json);

impl TryFrom<Json> for JsonPayload {
    type Error = anyhow::Error;

    fn try_from(json: Json) -> Result<Self, Self::Error> {
        Ok(JsonPayload(json))
    }
}

impl From<JsonPayload> for Json {
    fn from(p: JsonPayload) -> Json {
        p.0
    }
}

/// Parses one text frame from a server.
pub fn parse_server_message(text: &str) -> Result<ServerMessage<JsonPayload>, WireError> {
    let json: Json = serde_json::from_str(text).map_err(WireError::InvalidJson)?;
    ServerMessage::try_from(json).map_err(|e| WireError::InvalidMessage(format!("{e:#}")))
}

/// Encodes a timestamp as the wire's base64 of 8 little-endian bytes.
pub fn encode_ts(ts: Ts) -> String {
    BASE64.encode(ts.to_le_bytes())
}

/// Decodes a wire timestamp.
pub fn decode_ts(text: &str) -> Option<Ts> {
    let bytes = BASE64.decode(text).ok()?;
    let le: [u8; 8] = bytes.try_into().ok()?;
    Some(u64::from_le_bytes(le))
}

/// A query-set, identity and timestamp triple: one end of a `Transition`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version {
    /// The last `ModifyQuerySet.newVersion` applied.
    pub query_set: u32,
    /// The identity version (bumped by each `Authenticate`).
    pub identity: u32,
    /// The snapshot timestamp.
    pub ts: Ts,
}

impl Version {
    /// Converts to the `convex_sync_types` form.
    pub fn to_state_version(self) -> StateVersion {
        StateVersion {
            query_set: self.query_set,
            identity: self.identity,
            ts: convex_sync_types::Timestamp::try_from(self.ts.min(i64::MAX as u64))
                .unwrap_or(convex_sync_types::Timestamp::MAX),
        }
    }

    /// Converts from the `convex_sync_types` form.
    pub fn from_state_version(v: &StateVersion) -> Version {
        Version { query_set: v.query_set, identity: v.identity, ts: u64::from(v.ts) }
    }
}

/// A query result encoded once and shared by every session that holds it.
pub type Encoded = Arc<str>;

/// One entry of a `Transition`'s `modifications`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Modification {
    /// `QueryUpdated` with the value's encoded JSON.
    Updated {
        /// The client's query id.
        query_id: QueryId,
        /// The value, already in Convex JSON.
        value: Encoded,
        /// The query's journal (a paginated query's fixed end cursor), which
        /// the client echoes when it re-adds the query after a reconnect.
        journal: Option<Arc<str>>,
    },
    /// `QueryFailed`.
    Failed {
        /// The client's query id.
        query_id: QueryId,
        /// The error message.
        message: Arc<str>,
        /// `errorData`, already in Convex JSON.
        data: Option<Encoded>,
    },
    /// `QueryRemoved`.
    Removed {
        /// The client's query id.
        query_id: QueryId,
    },
}

/// The parts of a `Transition` frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// Must equal the previous transition's `end` on this socket.
    pub start: Version,
    /// The version this transition brings the client to.
    pub end: Version,
    /// Query changes, in query id order.
    pub modifications: Vec<Modification>,
}

/// Writes a `Transition` frame. `server_ts` is stamped by the caller just
/// before sending; values are spliced in without re-encoding.
pub fn write_transition(t: &Transition, client_clock_skew: Option<i64>, server_ts: Ts, out: &mut String) {
    use std::fmt::Write as _;
    let version = |out: &mut String, v: &Version| {
        let _ = write!(out, r#"{{"querySet":{},"identity":{},"ts":"{}"}}"#, v.query_set, v.identity, encode_ts(v.ts));
    };
    out.push_str(r#"{"type":"Transition","startVersion":"#);
    version(out, &t.start);
    out.push_str(r#","endVersion":"#);
    version(out, &t.end);
    out.push_str(r#","modifications":["#);
    for (i, m) in t.modifications.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match m {
            Modification::Updated { query_id, value, journal } => {
                let _ = write!(out, r#"{{"type":"QueryUpdated","queryId":{query_id},"value":"#);
                out.push_str(value);
                out.push_str(r#","logLines":[],"journal":"#);
                match journal {
                    Some(journal) => json::write_json_string(journal, out),
                    None => out.push_str("null"),
                }
                out.push('}');
            }
            Modification::Failed { query_id, message, data } => {
                let _ = write!(out, r#"{{"type":"QueryFailed","queryId":{query_id},"errorMessage":"#);
                json::encode_into(&Value::String(message.to_string()), out);
                out.push_str(r#","logLines":[],"journal":null"#);
                if let Some(data) = data {
                    out.push_str(r#","errorData":"#);
                    out.push_str(data);
                }
                out.push('}');
            }
            Modification::Removed { query_id } => {
                let _ = write!(out, r#"{{"type":"QueryRemoved","queryId":{query_id}}}"#);
            }
        }
    }
    out.push_str(r#"],"clientClockSkew":"#);
    match client_clock_skew {
        Some(skew) => {
            let _ = write!(out, "{skew}");
        }
        None => out.push_str("null"),
    }
    let _ = write!(out, r#","serverTs":{server_ts}}}"#);
}

/// A successful `MutationResponse`.
pub fn mutation_success(request_id: RequestId, result: &Value, ts: Ts) -> String {
    let msg = ServerMessage::MutationResponse {
        request_id,
        result: Ok(json::to_json(result)),
        ts: convex_sync_types::Timestamp::try_from(ts).ok(),
        log_lines: LogLinesMessage(vec![]),
    };
    Json::from(msg).to_string()
}

/// A failed `MutationResponse`; `data` becomes `errorData`.
pub fn mutation_failure(request_id: RequestId, message: &str, data: Option<&Value>) -> String {
    let msg = ServerMessage::MutationResponse {
        request_id,
        result: Err(error_payload(message, data)),
        ts: None,
        log_lines: LogLinesMessage(vec![]),
    };
    Json::from(msg).to_string()
}

/// A successful `ActionResponse`.
pub fn action_success(request_id: RequestId, result: &Value) -> String {
    let msg = ServerMessage::ActionResponse {
        request_id,
        result: Ok(json::to_json(result)),
        log_lines: LogLinesMessage(vec![]),
    };
    Json::from(msg).to_string()
}

/// A failed `ActionResponse`; `data` becomes `errorData`.
pub fn action_failure(request_id: RequestId, message: &str, data: Option<&Value>) -> String {
    let msg: ServerMessage<Json> = ServerMessage::ActionResponse {
        request_id,
        result: Err(error_payload(message, data)),
        log_lines: LogLinesMessage(vec![]),
    };
    Json::from(msg).to_string()
}

/// A `FatalError`.
pub fn fatal_error(message: &str) -> String {
    Json::from(ServerMessage::<Json>::FatalError { error_message: message.to_owned() }).to_string()
}

/// An `AuthError`.
pub fn auth_error(message: &str, base_version: Option<u32>, update_attempted: bool) -> String {
    Json::from(ServerMessage::<Json>::AuthError {
        error_message: message.to_owned(),
        base_version,
        auth_update_attempted: Some(update_attempted),
    })
    .to_string()
}

/// The protocol-level keepalive.
pub fn ping() -> String {
    Json::from(ServerMessage::<Json>::Ping).to_string()
}

/// A `Connect` frame: always the first on a socket.
#[derive(Clone, Copy, Debug)]
pub struct Connect<'a> {
    /// The session (a UUID): kept across reconnects, it keys mutation replay.
    pub session_id: &'a str,
    /// How many sockets this client opened before this one.
    pub connection_count: u32,
    /// `"InitialConnect"` first; after a drop, why the last socket closed.
    pub last_close_reason: &'a str,
    /// The largest ts this client has seen; `None` on the first connect.
    pub max_observed_timestamp: Option<Ts>,
    /// The client's wall clock in milliseconds (the server echoes the skew).
    pub client_ts: Option<u64>,
}

/// One change in a `ModifyQuerySet`.
#[derive(Clone, Copy, Debug)]
pub enum QuerySetChange<'a> {
    /// `Add`: subscribe to `udf_path` with `args`.
    Add {
        /// The client's id for the query.
        query_id: QueryId,
        /// The function, canonical `"module:name"`.
        udf_path: &'a str,
        /// The argument object.
        args: &'a Value,
        /// The journal last received for this query, echoed on a re-add.
        journal: Option<&'a str>,
    },
    /// `Remove`: unsubscribe.
    Remove {
        /// The client's id for the query.
        query_id: QueryId,
    },
}

/// The credential an `Authenticate` frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthToken<'a> {
    /// `tokenType: "User"` with a JWT.
    User(&'a str),
    /// `tokenType: "None"`: drop the identity.
    None,
}

/// Writes a `Connect` frame, its fields in the order the npm client sends them.
pub fn write_connect(c: &Connect<'_>) -> String {
    let mut out = String::with_capacity(160);
    out.push_str(r#"{"connectionCount":"#);
    out.push_str(itoa::Buffer::new().format(c.connection_count));
    out.push_str(r#","lastCloseReason":"#);
    json::write_json_string(c.last_close_reason, &mut out);
    if let Some(ms) = c.client_ts {
        out.push_str(r#","clientTs":"#);
        out.push_str(itoa::Buffer::new().format(ms));
    }
    out.push_str(r#","type":"Connect","sessionId":"#);
    json::write_json_string(c.session_id, &mut out);
    if let Some(ts) = c.max_observed_timestamp {
        out.push_str(r#","maxObservedTimestamp":""#);
        out.push_str(&encode_ts(ts));
        out.push('"');
    }
    out.push('}');
    out
}

/// Writes a `ModifyQuerySet` frame from `base_version` to `new_version`.
pub fn write_modify_query_set(base_version: u32, new_version: u32, changes: &[QuerySetChange<'_>]) -> String {
    let mut out = String::with_capacity(96 + 96 * changes.len());
    out.push_str(r#"{"type":"ModifyQuerySet","baseVersion":"#);
    out.push_str(itoa::Buffer::new().format(base_version));
    out.push_str(r#","newVersion":"#);
    out.push_str(itoa::Buffer::new().format(new_version));
    out.push_str(r#","modifications":["#);
    for (i, change) in changes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match change {
            QuerySetChange::Add { query_id, udf_path, args, journal } => {
                out.push_str(r#"{"type":"Add","queryId":"#);
                out.push_str(itoa::Buffer::new().format(*query_id));
                out.push_str(r#","udfPath":"#);
                json::write_json_string(udf_path, &mut out);
                write_args(args, &mut out);
                if let Some(journal) = journal {
                    out.push_str(r#","journal":"#);
                    json::write_json_string(journal, &mut out);
                }
                out.push('}');
            }
            QuerySetChange::Remove { query_id } => {
                out.push_str(r#"{"type":"Remove","queryId":"#);
                out.push_str(itoa::Buffer::new().format(*query_id));
                out.push('}');
            }
        }
    }
    out.push_str("]}");
    out
}

/// Writes a `Mutation` frame.
pub fn write_mutation(request_id: RequestId, udf_path: &str, args: &Value) -> String {
    write_call("Mutation", request_id, udf_path, args)
}

/// Writes an `Action` frame (answered by an `ActionResponse`).
pub fn write_action(request_id: RequestId, udf_path: &str, args: &Value) -> String {
    write_call("Action", request_id, udf_path, args)
}

/// Writes a `Mutation` or `Action` frame: the two differ only in their type.
fn write_call(kind: &str, request_id: RequestId, udf_path: &str, args: &Value) -> String {
    let mut out = String::with_capacity(64 + udf_path.len() + args.size());
    out.push_str(r#"{"type":""#);
    out.push_str(kind);
    out.push_str(r#"","requestId":"#);
    out.push_str(itoa::Buffer::new().format(request_id));
    out.push_str(r#","udfPath":"#);
    json::write_json_string(udf_path, &mut out);
    write_args(args, &mut out);
    out.push('}');
    out
}

/// Writes an `Authenticate` frame moving the identity from `base_version`.
pub fn write_authenticate(base_version: u32, token: AuthToken<'_>) -> String {
    let mut out = String::with_capacity(64);
    match token {
        AuthToken::User(jwt) => {
            out.push_str(r#"{"type":"Authenticate","baseVersion":"#);
            out.push_str(itoa::Buffer::new().format(base_version));
            out.push_str(r#","tokenType":"User","value":"#);
            json::write_json_string(jwt, &mut out);
            out.push('}');
        }
        AuthToken::None => {
            out.push_str(r#"{"type":"Authenticate","tokenType":"None","baseVersion":"#);
            out.push_str(itoa::Buffer::new().format(base_version));
            out.push('}');
        }
    }
    out
}

/// Appends `,"args":[…]`: the argument object in its one-element envelope.
fn write_args(args: &Value, out: &mut String) {
    out.push_str(r#","args":["#);
    json::encode_into(args, out);
    out.push(']');
}

fn error_payload(message: &str, data: Option<&Value>) -> ErrorPayload<Json> {
    match data {
        Some(data) => ErrorPayload::ErrorData { message: message.to_owned(), data: json::to_json(data) },
        None => ErrorPayload::Message(message.to_owned()),
    }
}

/// A read error payload's message and `errorData`, if it has one.
pub(crate) fn payload_parts(payload: ErrorPayload<JsonPayload>) -> (String, Option<Json>) {
    match payload {
        ErrorPayload::Message(m) => (m, None),
        ErrorPayload::ErrorData { message, data } => (message, Some(data.0)),
    }
}

#[cfg(test)]
mod tests {
    use convex_sync_types::StateModification;

    use super::*;

    /// Our shared-encoding writer must produce what `convex_sync_types` reads.
    #[test]
    fn transition_writer_matches_convex_sync_types() {
        let value = Value::object([("n", Value::Int64(3)), ("s", Value::from("x\"y"))]);
        let t = Transition {
            start: Version { query_set: 0, identity: 0, ts: 0 },
            end: Version { query_set: 2, identity: 1, ts: 1_760_000_000_123_456_789 },
            modifications: vec![
                Modification::Updated { query_id: 0, value: json::encode(&value).into(), journal: Some("j\"1".into()) },
                Modification::Failed {
                    query_id: 1,
                    message: "boom".into(),
                    data: Some(json::encode(&Value::object([("code", Value::from("NotFound"))])).into()),
                },
                Modification::Removed { query_id: 7 },
            ],
        };
        let mut text = String::new();
        write_transition(&t, Some(-3), 42, &mut text);
        let parsed = parse_server_message(&text).unwrap();
        let ServerMessage::Transition { start_version, end_version, modifications, client_clock_skew, server_ts } =
            parsed
        else {
            panic!("not a transition: {text}");
        };
        assert_eq!(Version::from_state_version(&start_version), t.start);
        assert_eq!(Version::from_state_version(&end_version), t.end);
        assert_eq!(client_clock_skew, Some(-3));
        assert_eq!(server_ts.map(u64::from), Some(42));
        assert_eq!(modifications.len(), 3);
        match &modifications[0] {
            StateModification::QueryUpdated { value: v, journal, .. } => {
                assert_eq!(json::decode(&v.0).unwrap(), value);
                assert_eq!(journal.as_deref(), Some("j\"1"));
            }
            other => panic!("expected QueryUpdated, got {other:?}"),
        }
        assert!(matches!(&modifications[1], StateModification::QueryFailed { error_data: Some(_), .. }));
        assert!(matches!(&modifications[2], StateModification::QueryRemoved { .. }));
    }

    /// Every client writer's output is a client message the general parser
    /// reads back field for field.
    #[test]
    fn client_writers_round_trip() {
        use convex_sync_types::{AuthenticationToken, QuerySetModification};
        let args = Value::object([("name", Value::from("c\"1")), ("n", Value::Int64(2))]);
        let decoded = |raw: &str| decode_args(raw).unwrap();

        let session = "6f2a7b43-9c1d-4e5f-8a6b-0c1d2e3f4a5b";
        let first = Connect {
            session_id: session,
            connection_count: 0,
            last_close_reason: "InitialConnect",
            max_observed_timestamp: None,
            client_ts: Some(1_760_000_000_000),
        };
        let text = write_connect(&first);
        assert_eq!(
            text,
            format!(
                r#"{{"connectionCount":0,"lastCloseReason":"InitialConnect","clientTs":1760000000000,"type":"Connect","sessionId":"{session}"}}"#
            )
        );
        let again = Connect {
            connection_count: 3,
            last_close_reason: "SocketLost",
            max_observed_timestamp: Some(77),
            client_ts: None,
            ..first
        };
        for (c, text) in [(first, text), (again, write_connect(&again))] {
            let ClientMessage::Connect {
                session_id,
                connection_count,
                last_close_reason,
                max_observed_timestamp,
                client_ts,
            } = parse_client_message(&text).unwrap()
            else {
                panic!("not a Connect: {text}");
            };
            assert_eq!(uuid::Uuid::from(session_id).to_string(), c.session_id);
            assert_eq!((connection_count, last_close_reason.as_str()), (c.connection_count, c.last_close_reason));
            assert_eq!(max_observed_timestamp.map(u64::from), c.max_observed_timestamp);
            assert_eq!(client_ts, c.client_ts);
        }

        let text = write_modify_query_set(
            4,
            5,
            &[
                QuerySetChange::Remove { query_id: 1 },
                QuerySetChange::Add { query_id: 2, udf_path: "counters:get", args: &args, journal: None },
                QuerySetChange::Add { query_id: 3, udf_path: "messages:list", args: &args, journal: Some("j") },
            ],
        );
        let ClientMessage::ModifyQuerySet { base_version, new_version, modifications } =
            parse_client_message(&text).unwrap()
        else {
            panic!("not a ModifyQuerySet: {text}");
        };
        assert_eq!((base_version, new_version, modifications.len()), (4, 5, 3));
        assert!(matches!(&modifications[0], QuerySetModification::Remove { query_id } if query_id.get_id() == 1));
        for (m, (id, path, journal)) in
            modifications[1..].iter().zip([(2, "counters:get", None), (3, "messages:list", Some("j"))])
        {
            let QuerySetModification::Add(q) = m else { panic!("not an Add: {m:?}") };
            assert_eq!((q.query_id.get_id(), String::from(q.udf_path.clone()).as_str()), (id, path));
            assert_eq!(decoded(q.args.get()), args);
            assert_eq!(q.journal.clone().flatten().as_deref(), journal);
        }

        let text = write_mutation(9, "counters:increment", &args);
        assert_eq!(
            text,
            r#"{"type":"Mutation","requestId":9,"udfPath":"counters:increment","args":[{"n":{"$integer":"AgAAAAAAAAA="},"name":"c\"1"}]}"#
        );
        let ClientMessage::Mutation { request_id, udf_path, args: sent, .. } = parse_client_message(&text).unwrap()
        else {
            panic!("not a Mutation: {text}");
        };
        assert_eq!(
            (request_id, String::from(udf_path).as_str(), decoded(sent.get())),
            (9, "counters:increment", args.clone())
        );

        let text = write_authenticate(0, AuthToken::User("a.b.c"));
        assert_eq!(text, r#"{"type":"Authenticate","baseVersion":0,"tokenType":"User","value":"a.b.c"}"#);
        let ClientMessage::Authenticate { base_version, token } = parse_client_message(&text).unwrap() else {
            panic!("not an Authenticate: {text}");
        };
        assert_eq!((base_version, token), (0, AuthenticationToken::User("a.b.c".into())));
        let text = write_authenticate(1, AuthToken::None);
        assert_eq!(text, r#"{"type":"Authenticate","tokenType":"None","baseVersion":1}"#);
        let ClientMessage::Authenticate { base_version, token } = parse_client_message(&text).unwrap() else {
            panic!("not an Authenticate: {text}");
        };
        assert_eq!((base_version, token), (1, AuthenticationToken::None));
    }

    /// The `Action` writer's output is an `Action` the general parser reads back.
    #[test]
    fn action_writer_round_trips() {
        let args = Value::object([("channel", Value::from("c\"1")), ("tokenIntervalMs", Value::Float64(20.0))]);
        let text = write_action(11, "messages:streamReply", &args);
        assert_eq!(
            text,
            r#"{"type":"Action","requestId":11,"udfPath":"messages:streamReply","args":[{"channel":"c\"1","tokenIntervalMs":20.0}]}"#
        );
        let ClientMessage::Action { request_id, udf_path, args: sent, .. } = parse_client_message(&text).unwrap()
        else {
            panic!("not an Action: {text}");
        };
        assert_eq!(
            (request_id, String::from(udf_path).as_str(), decode_args(sent.get()).unwrap()),
            (11, "messages:streamReply", args)
        );
    }

    /// The frame reader agrees with reading the whole frame as a tree and
    /// handing it to `convex_sync_types`, as it used to: the same message, or
    /// an error of the same kind.
    #[test]
    fn client_frames_read_as_convex_sync_types_reads_them() {
        let tree_reader = |text: &str| -> Result<ClientMessage, WireError> {
            let json: Json = serde_json::from_str(text).map_err(WireError::InvalidJson)?;
            ClientMessage::try_from(json).map_err(|e| WireError::InvalidMessage(format!("{e:#}")))
        };
        let args = Value::object([("name", Value::from("c")), ("n", Value::Int64(2))]);
        let add = |id: u32| QuerySetChange::Add { query_id: id, udf_path: "counters:get", args: &args, journal: None };
        for text in [
            write_mutation(1, "counters:increment", &args),
            write_action(2, "messages:streamReply", &args),
            write_modify_query_set(0, 1, &[QuerySetChange::Remove { query_id: 0 }, add(1), add(2)]),
            r#"{"type":"Mutation","requestId":1,"udfPath":"a:b","args":5,"extra":[1,{"x":null}]}"#.to_owned(),
            r#"{"type":"ModifyQuerySet","baseVersion":0,"newVersion":1,"modifications":[{"type":"Add","queryId":1,"udfPath":"a:b"},{"type":"Add","queryId":2,"udfPath":"a:b","args":null}]}"#.to_owned(),
            r#"{"type":"Event","eventType":"x","event":{"a":[1,2]},"args":[{}]}"#.to_owned(),
            r#"{"type":"Mutation","requestId":1,"udfPath":"a:b","args":null}"#.to_owned(),
            r#"{"type":"Mutation","requestId":1,"udfPath":"a:b"}"#.to_owned(),
            r#"{"type":"Mutation","requestId":1,"udfPath":"a:b","args":[{}],"modifications":null}"#.to_owned(),
            r#"{"type":"Mutation","requestId":1,"udfPath":"a:b","args":[{}],"modifications":5}"#.to_owned(),
            r#"{"type":"ModifyQuerySet","baseVersion":0,"newVersion":1,"modifications":[1]}"#.to_owned(),
            r#"{"type":"ModifyQuerySet","baseVersion":0,"newVersion":1}"#.to_owned(),
            r#"{"type":"Nope"}"#.to_owned(),
            "[1]".to_owned(),
            "{".to_owned(),
            r#"{"type":"Mutation"} x"#.to_owned(),
        ] {
            match (parse_client_message(&text), tree_reader(&text)) {
                (Ok(ours), Ok(theirs)) => assert_eq!(ours, theirs, "{text}"),
                (Err(ours), Err(theirs)) => assert_eq!(ours.code(), theirs.code(), "{text}: {ours} / {theirs}"),
                (ours, theirs) => panic!("{text}: read as {ours:?}, but as a tree {theirs:?}"),
            }
        }
        // Arguments keep their own text, spaces and all.
        let text = r#"{"type":"Mutation","requestId":1,"udfPath":"a:b","args": [ {"n" : 1.50} ] }"#;
        let ClientMessage::Mutation { args, .. } = parse_client_message(text).unwrap() else {
            panic!("not a Mutation")
        };
        assert_eq!(args.get(), r#"[ {"n" : 1.50} ]"#);
    }

    /// `convex_sync_types` panicked on these (a path component over 64
    /// bytes with a character across its 64th byte); the `frames` fuzz
    /// target found it. Any path with other than ASCII is refused by its
    /// code, as `convex_sync_types` refuses every such path it survives.
    #[test]
    fn a_path_that_is_not_ascii_is_refused_not_a_panic() {
        let args = Value::Object(Default::default());
        let paths =
            [format!("{}\u{e9}:f", "m".repeat(63)), format!("a/{}\u{fffd}.js:f", "m".repeat(62)), "\u{e9}".into()];
        for path in paths {
            let add = QuerySetChange::Add { query_id: 0, udf_path: &path, args: &args, journal: None };
            let frames =
                [write_mutation(1, &path, &args), write_action(2, &path, &args), write_modify_query_set(0, 1, &[add])];
            for text in frames {
                let e = parse_client_message(&text).unwrap_err();
                assert_eq!(e.code(), "WSMessageInvalid", "{text}: {e}");
                assert!(e.to_string().contains("other than ASCII"), "{text}: {e}");
            }
        }
        // What is ASCII still gets `convex_sync_types`' own verdict, and
        // a message that takes no path still ignores one.
        let text = write_mutation(1, &format!("{}:f", "m".repeat(65)), &args);
        assert!(parse_client_message(&text).unwrap_err().to_string().contains("too long"));
        let text = write_authenticate(0, AuthToken::None).replace('}', r#","udfPath":"\u00e9"}"#);
        assert!(matches!(parse_client_message(&text), Ok(ClientMessage::Authenticate { .. })), "{text}");
    }

    /// Fields other than arguments are held to `MAX_OTHER_FIELD_BYTES`
    /// together, not only each: a frame of many fields, each under it, held
    /// about a hundred times its size as trees (found by measuring what the
    /// `frames` fuzz target's inputs cost).
    #[test]
    fn fields_other_than_arguments_are_limited_together() {
        let field = format!("[{}]", vec!["0"; MAX_OTHER_FIELD_BYTES / 4].join(","));
        let frame = |fields: usize| {
            let extra: String = (0..fields).map(|i| format!(r#","x{i}":{field}"#)).collect();
            format!(r#"{{"type":"Event","eventType":"x","event":null{extra}}}"#)
        };
        assert!(matches!(parse_client_message(&frame(1)), Ok(ClientMessage::Event(_))));
        let e = parse_client_message(&frame(3)).unwrap_err();
        assert_eq!(e.code(), "WSMessageInvalid");
        assert!(e.to_string().contains("bytes of fields other than arguments and modifications"), "{e}");
        // Arguments and modifications are not counted: they are not trees.
        let args = format!(r#"[{{"a":{field}}}]"#);
        let text = format!(r#"{{"type":"Mutation","requestId":1,"udfPath":"a:b","args":{args},"x":{field}}}"#);
        assert!(parse_client_message(&text).is_ok());
    }

    #[test]
    fn timestamps_round_trip() {
        assert_eq!(encode_ts(0), "AAAAAAAAAAA=");
        assert_eq!(decode_ts(&encode_ts(1_760_000_000_000_000_001)), Some(1_760_000_000_000_000_001));
        assert_eq!(decode_ts("AAAA"), None);
    }

    #[test]
    fn args_envelope_is_enforced() {
        assert!(decode_args(r#"[{"a":1}]"#).is_ok());
        for bad in [r#"{"a":1}"#, "[]", r#"[{"a":1},{}]"#, "[1]", "null", r#"[{"$set":[]}]"#] {
            assert!(decode_args(bad).is_err(), "{bad} should be rejected");
        }
    }
}
