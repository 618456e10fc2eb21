//! Frames on the socket: parsing client messages, encoding server messages,
//! and the shared-encoding `Transition` writer.
//!
//! Message types come from `convex_sync_types`; this module adds what that
//! crate leaves to the server: the argument envelope rules, the timestamp
//! encoding, and a `Transition` writer that splices query results encoded
//! once and shared by every session holding that query.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use convex_sync_types::{ClientMessage, ErrorPayload, LogLinesMessage, ServerMessage, StateVersion};
use serde_json::Value as Json;

use crate::json::{self, DecodeError};
use crate::value::Value;

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
    /// A value the codec rejects.
    #[error(transparent)]
    Value(#[from] DecodeError),
}

/// Parses one text frame into a client message.
pub fn parse_client_message(text: &str) -> Result<ClientMessage, WireError> {
    let json: Json = serde_json::from_str(text).map_err(WireError::InvalidJson)?;
    ClientMessage::try_from(json).map_err(|e| WireError::InvalidMessage(format!("{e:#}")))
}

/// Decodes a message's `args` field: a one-element array holding an object.
pub fn decode_args(raw: &str) -> Result<Value, ArgsError> {
    if raw.len() > MAX_ARGS_BYTES {
        return Err(ArgsError::TooLarge(raw.len()));
    }
    match json::decode_str(raw)? {
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
            Modification::Updated { query_id, value } => {
                let _ = write!(out, r#"{{"type":"QueryUpdated","queryId":{query_id},"value":"#);
                out.push_str(value);
                out.push_str(r#","logLines":[],"journal":null}"#);
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

/// A failed `ActionResponse`.
pub fn action_failure(request_id: RequestId, message: &str) -> String {
    let msg: ServerMessage<Json> = ServerMessage::ActionResponse {
        request_id,
        result: Err(ErrorPayload::Message(message.to_owned())),
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

fn error_payload(message: &str, data: Option<&Value>) -> ErrorPayload<Json> {
    match data {
        Some(data) => ErrorPayload::ErrorData { message: message.to_owned(), data: json::to_json(data) },
        None => ErrorPayload::Message(message.to_owned()),
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
                Modification::Updated { query_id: 0, value: json::encode(&value).into() },
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
            StateModification::QueryUpdated { value: v, .. } => {
                assert_eq!(json::decode(&v.0).unwrap(), value)
            }
            other => panic!("expected QueryUpdated, got {other:?}"),
        }
        assert!(matches!(&modifications[1], StateModification::QueryFailed { error_data: Some(_), .. }));
        assert!(matches!(&modifications[2], StateModification::QueryRemoved { .. }));
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
