//! Reading server frames fast: one flat struct that borrows from the text,
//! for clients that read many frames and need few of their fields.
//!
//! `parse_server_message` goes through `convex_sync_types`' internally
//! tagged enum and builds an order-preserving JSON tree of every frame;
//! measured under load that was the load client's largest cost. `peek`
//! reads every message type into one struct instead, leaves values as raw
//! JSON for the caller to read (or not), and ignores fields it does not
//! name. It checks no more than it reads: the conformance client, which
//! must judge what a backend sends, keeps the general parser.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::{decode_ts, QueryId, RequestId, Ts, Version, WireError};

/// A server message's `type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
pub enum ServerFrameKind {
    /// `Transition`.
    Transition,
    /// `TransitionChunk`: one piece of a large transition.
    TransitionChunk,
    /// `MutationResponse`.
    MutationResponse,
    /// `ActionResponse`.
    ActionResponse,
    /// `AuthError`.
    AuthError,
    /// `FatalError`.
    FatalError,
    /// `Ping`.
    Ping,
    /// A type this protocol version does not name.
    #[serde(other)]
    Other,
}

/// A state modification's `type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
pub enum ModificationKind {
    /// `QueryUpdated`.
    QueryUpdated,
    /// `QueryFailed`.
    QueryFailed,
    /// `QueryRemoved`.
    QueryRemoved,
    /// A type this protocol version does not name.
    #[serde(other)]
    Other,
}

/// The fields of any server message, borrowed from its text. Which are
/// present depends on `kind`; a raw value field is `Some` whenever the
/// field is present, even when it holds `null`.
#[derive(Debug, Deserialize)]
pub struct ServerFrameRef<'a> {
    /// The message type.
    #[serde(rename = "type")]
    pub kind: ServerFrameKind,
    /// `Transition`: where the client's version must be.
    #[serde(rename = "startVersion", borrow)]
    pub start_version: Option<VersionRef<'a>>,
    /// `Transition`: the version it brings the client to.
    #[serde(rename = "endVersion", borrow)]
    pub end_version: Option<VersionRef<'a>>,
    /// `Transition`: the query changes.
    #[serde(default, borrow)]
    pub modifications: Vec<ModificationRef<'a>>,
    /// `MutationResponse`, `ActionResponse`.
    #[serde(rename = "requestId")]
    pub request_id: Option<RequestId>,
    /// `MutationResponse`, `ActionResponse`.
    pub success: Option<bool>,
    /// `MutationResponse`, `ActionResponse`: the value, or on failure the message string.
    #[serde(default, borrow, deserialize_with = "present")]
    pub result: Option<&'a RawValue>,
    /// `MutationResponse`: the commit ts, encoded (`None` on failure).
    #[serde(borrow)]
    pub ts: Option<Cow<'a, str>>,
    /// A failed `MutationResponse` or `ActionResponse`: `errorData`.
    #[serde(rename = "errorData", default, borrow, deserialize_with = "present")]
    pub error_data: Option<&'a RawValue>,
    /// `FatalError`, `AuthError`: the message.
    #[serde(borrow)]
    pub error: Option<Cow<'a, str>>,
    /// `AuthError`: the identity version the refused `Authenticate` started from.
    #[serde(rename = "baseVersion")]
    pub base_version: Option<u32>,
}

/// A `StateVersion`, its ts still encoded.
#[derive(Debug, Deserialize)]
pub struct VersionRef<'a> {
    /// The query-set version.
    #[serde(rename = "querySet")]
    pub query_set: u32,
    /// The identity version.
    pub identity: u32,
    /// The ts, as the wire's base64.
    #[serde(borrow)]
    pub ts: Cow<'a, str>,
}

/// One state modification of a `Transition`.
#[derive(Debug, Deserialize)]
pub struct ModificationRef<'a> {
    /// The modification type.
    #[serde(rename = "type")]
    pub kind: ModificationKind,
    /// The client's query id.
    #[serde(rename = "queryId")]
    pub query_id: Option<QueryId>,
    /// `QueryUpdated`: the result, in Convex JSON.
    #[serde(default, borrow, deserialize_with = "present")]
    pub value: Option<&'a RawValue>,
    /// `QueryFailed`: the message.
    #[serde(rename = "errorMessage", borrow)]
    pub error_message: Option<Cow<'a, str>>,
    /// `QueryFailed`: `errorData`, for a `ConvexError`.
    #[serde(rename = "errorData", default, borrow, deserialize_with = "present")]
    pub error_data: Option<&'a RawValue>,
}

/// Reads one server frame's fields without building a tree.
pub fn peek(text: &str) -> Result<ServerFrameRef<'_>, WireError> {
    serde_json::from_str(text).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => WireError::InvalidMessage(e.to_string()),
        _ => WireError::InvalidJson(e),
    })
}

impl ServerFrameRef<'_> {
    /// A `MutationResponse`'s commit ts, decoded.
    pub fn commit_ts(&self) -> Option<Ts> {
        decode_ts(self.ts.as_deref()?)
    }
}

impl VersionRef<'_> {
    /// The version, with its ts decoded; `None` if the ts is not 8 bytes of base64.
    pub fn version(&self) -> Option<Version> {
        Some(Version { query_set: self.query_set, identity: self.identity, ts: decode_ts(&self.ts)? })
    }
}

/// The `code` of an `errorData` object, if it is an object with a string `code`.
pub fn error_code(data: &RawValue) -> Option<String> {
    #[derive(Deserialize)]
    struct Data<'a> {
        #[serde(borrow)]
        code: Option<Cow<'a, str>>,
    }
    let data: Data<'_> = serde_json::from_str(data.get()).ok()?;
    data.code.map(Cow::into_owned)
}

/// A raw field that is present, `null` included (serde would read a bare
/// `Option` of `null` as absent).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use convex_sync_types::{ServerMessage, StateModification};
    use serde_json::Value as Json;

    use super::super::*;
    use super::*;
    use crate::value::Value;

    fn raw(r: Option<&RawValue>) -> Option<Json> {
        r.map(|r| serde_json::from_str(r.get()).unwrap())
    }

    /// Every frame the server writers produce reads the same through `peek`
    /// as through the general parser.
    #[test]
    fn peek_agrees_with_the_general_parser() {
        let data = Value::object([("code", Value::from("RateLimited"))]);
        let mut transition = String::new();
        write_transition(
            &Transition {
                start: Version { query_set: 1, identity: 0, ts: 5 },
                end: Version { query_set: 2, identity: 1, ts: 1_760_000_000_123_456_789 },
                modifications: vec![
                    Modification::Updated { query_id: 0, value: json::encode(&Value::Null).into(), journal: None },
                    Modification::Updated { query_id: 3, value: json::encode(&Value::Int64(4)).into(), journal: None },
                    Modification::Failed {
                        query_id: 1,
                        message: "bo\"om".into(),
                        data: Some(json::encode(&data).into()),
                    },
                    Modification::Failed { query_id: 4, message: "plain".into(), data: None },
                    Modification::Removed { query_id: 7 },
                ],
            },
            None,
            42,
            &mut transition,
        );
        let frames = [
            transition,
            mutation_success(7, &Value::Null, 42),
            mutation_success(8, &Value::from("k57"), 43),
            mutation_failure(9, "slow down", Some(&data)),
            mutation_failure(10, "no", None),
            action_failure(11, "no actions", None),
            action_success(12, &Value::from("m1")),
            fatal_error("bad \"frame\""),
            auth_error("bad token", Some(2), true),
            auth_error("bad token", None, false),
            ping(),
        ];
        for text in &frames {
            let flat = peek(text).unwrap();
            let general = parse_server_message(text).unwrap();
            match general {
                ServerMessage::Transition { start_version, end_version, modifications, .. } => {
                    assert_eq!(flat.kind, ServerFrameKind::Transition);
                    let version = |v: &Option<VersionRef<'_>>| v.as_ref().and_then(VersionRef::version);
                    assert_eq!(version(&flat.start_version), Some(Version::from_state_version(&start_version)));
                    assert_eq!(version(&flat.end_version), Some(Version::from_state_version(&end_version)));
                    assert_eq!(flat.modifications.len(), modifications.len());
                    for (f, g) in flat.modifications.iter().zip(modifications) {
                        match g {
                            StateModification::QueryUpdated { query_id, value, .. } => {
                                assert_eq!(f.kind, ModificationKind::QueryUpdated);
                                assert_eq!(f.query_id, Some(query_id.get_id()));
                                assert_eq!(raw(f.value), Some(value.0));
                            }
                            StateModification::QueryFailed { query_id, error_message, error_data, .. } => {
                                assert_eq!(f.kind, ModificationKind::QueryFailed);
                                assert_eq!(f.query_id, Some(query_id.get_id()));
                                assert_eq!(f.error_message.as_deref(), Some(error_message.as_str()));
                                assert_eq!(raw(f.error_data), error_data.map(|d| d.0));
                            }
                            StateModification::QueryRemoved { query_id } => {
                                assert_eq!(f.kind, ModificationKind::QueryRemoved);
                                assert_eq!(f.query_id, Some(query_id.get_id()));
                            }
                        }
                    }
                }
                ServerMessage::MutationResponse { request_id, result, ts, .. } => {
                    assert_eq!(flat.kind, ServerFrameKind::MutationResponse);
                    assert_eq!(flat.request_id, Some(request_id));
                    assert_eq!(flat.commit_ts(), ts.map(u64::from));
                    match result {
                        Ok(value) => {
                            assert_eq!(flat.success, Some(true));
                            assert_eq!(raw(flat.result), Some(value.0));
                        }
                        Err(payload) => {
                            assert_eq!(flat.success, Some(false));
                            let (message, data) = payload_parts(payload);
                            assert_eq!(raw(flat.result), Some(Json::String(message)));
                            assert_eq!(raw(flat.error_data), data);
                        }
                    }
                }
                ServerMessage::ActionResponse { request_id, result, .. } => {
                    assert_eq!(flat.kind, ServerFrameKind::ActionResponse);
                    assert_eq!(flat.request_id, Some(request_id));
                    match result {
                        Ok(value) => assert_eq!((flat.success, raw(flat.result)), (Some(true), Some(value.0))),
                        Err(payload) => {
                            let (message, data) = payload_parts(payload);
                            assert_eq!((flat.success, raw(flat.result)), (Some(false), Some(Json::String(message))));
                            assert_eq!(raw(flat.error_data), data);
                        }
                    }
                }
                ServerMessage::FatalError { error_message } => {
                    assert_eq!(flat.kind, ServerFrameKind::FatalError);
                    assert_eq!(flat.error.as_deref(), Some(error_message.as_str()));
                }
                ServerMessage::AuthError { error_message, base_version, .. } => {
                    assert_eq!(flat.kind, ServerFrameKind::AuthError);
                    assert_eq!(flat.error.as_deref(), Some(error_message.as_str()));
                    assert_eq!(flat.base_version, base_version);
                }
                ServerMessage::Ping => assert_eq!(flat.kind, ServerFrameKind::Ping),
                other => panic!("a writer produced an unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn error_codes_and_unknown_types() {
        let data = Value::object([("code", Value::from("RateLimited"))]);
        let failed = mutation_failure(8, "slow down", Some(&data));
        let flat = peek(&failed).unwrap();
        assert_eq!(flat.error_data.and_then(error_code).as_deref(), Some("RateLimited"));
        let other = peek(r#"{"type":"Hello","extra":[1,{"a":2}]}"#).unwrap();
        assert_eq!(other.kind, ServerFrameKind::Other);
        assert!(matches!(peek("{"), Err(WireError::InvalidJson(_))));
        assert!(matches!(peek(r#"{"kind":"Ping"}"#), Err(WireError::InvalidMessage(_))));
    }
}
