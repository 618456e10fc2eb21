//! The bodies of HTTP function calls: the request of `POST /api/query`,
//! `/api/mutation`, `/api/action` and `/api/function`, and the response,
//! each parsed and written.
//!
//! A request is `{"path", "args", "format"?}`. The npm `ConvexHttpClient`
//! sends `args` as a one-element array holding the encoded argument object
//! on the first three routes and as the bare object on `/api/function`; a
//! backend accepts both everywhere, and so does `parse_request`. A response
//! is `{"status":"success","value","logLines"}` or
//! `{"status":"error","errorMessage","errorData"?,"logLines"}`. Responses
//! are written in Convex JSON whatever `format` a request names: every value
//! then reads back exactly, and the official clients ask for nothing else.
//!
//! Routes, methods, headers, status codes and body limits are the server's
//! business, not this module's: it only says what a body means, and why it
//! means nothing (`HttpBodyError`, whose messages become a 400's reason).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use super::MAX_ARGS_BYTES;
use crate::json::{self, DecodeError};
use crate::value::Value;

/// How a response writes its value: a request's `format` field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Format {
    /// `"convex_encoded_json"` (legacy alias `"convex_json"`): Convex JSON,
    /// as on the socket, so every value reads back exactly. The npm and
    /// Python HTTP clients always ask for it.
    ConvexEncodedJson,
    /// `"json"` (legacy alias `"convex_clean_json"`): readable and lossy;
    /// an int64 is a decimal string, bytes are a base64 string, NaN and the
    /// infinities are the strings `"NaN"`, `"Infinity"` and `"-Infinity"`.
    /// What a current backend answers when a request names no format.
    #[default]
    Json,
}

impl Format {
    /// Reads a `format` field's value, with Convex's legacy aliases.
    pub fn parse(name: &str) -> Option<Format> {
        match name {
            "convex_encoded_json" | "convex_json" => Some(Format::ConvexEncodedJson),
            "json" | "convex_clean_json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// A function call's request body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The function, as sent (`"module:name"`); the server resolves it.
    pub path: String,
    /// The decoded argument object (always a `Value::Object`).
    pub args: Value,
    /// How the response should write its value; `Format::Json` when absent.
    pub format: Format,
}

/// A function call's response body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// `status: "success"`.
    Success {
        /// The function's result, read as Convex JSON.
        value: Value,
        /// `logLines`, empty when absent.
        log_lines: Vec<String>,
    },
    /// `status: "error"`: the function failed (HTTP status 560).
    Error {
        /// `errorMessage`.
        message: String,
        /// `errorData`, present for a `ConvexError`.
        data: Option<Value>,
        /// `logLines`, empty when absent.
        log_lines: Vec<String>,
    },
}

/// A body that is not a well-formed request or response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpBodyError {
    /// Not JSON at all.
    #[error("expected a JSON body, got invalid JSON: {0}")]
    NotJson(String),
    /// JSON, but not an object.
    #[error("expected the body to be a JSON object, got {0}")]
    NotAnObject(&'static str),
    /// A required field is absent.
    #[error("expected a field `{0}`, got none")]
    MissingField(&'static str),
    /// A field holds the wrong kind of JSON.
    #[error("expected `{field}` to be {expected}, got {got}")]
    WrongType {
        /// The field's name.
        field: &'static str,
        /// What it must hold.
        expected: &'static str,
        /// What it held.
        got: String,
    },
    /// A `format` this protocol does not name.
    #[error(r#"expected `format` to be "json" or "convex_encoded_json", got {0:?}"#)]
    UnknownFormat(String),
    /// A response `status` other than `"success"` or `"error"`.
    #[error(r#"expected `status` to be "success" or "error", got {0:?}"#)]
    UnknownStatus(String),
    /// `args` over `MAX_ARGS_BYTES`.
    #[error("expected `args` of at most {MAX_ARGS_BYTES} bytes, got {0} bytes")]
    TooLarge(usize),
    /// A field that is JSON but not a valid Convex value.
    #[error("invalid `{field}`: {error}")]
    Value {
        /// The field's name.
        field: &'static str,
        /// What the codec rejected, and where.
        error: DecodeError,
    },
}

impl HttpBodyError {
    /// A short code for the server's `{"code", "message"}` error body.
    pub fn code(&self) -> &'static str {
        match self {
            HttpBodyError::NotJson(_) | HttpBodyError::NotAnObject(_) => "BadJsonBody",
            HttpBodyError::MissingField(_) => "MissingField",
            HttpBodyError::WrongType { .. } => "BadFieldType",
            HttpBodyError::UnknownFormat(_) => "BadFormat",
            HttpBodyError::UnknownStatus(_) => "BadStatus",
            HttpBodyError::TooLarge(_) => "ArgsTooLarge",
            HttpBodyError::Value { .. } => "BadConvexValue",
        }
    }
}

/// What `args` must hold, as error messages say it.
const ARGS_SHAPE: &str = "an object or a one-element array holding an object";

/// Parses a request body, accepting `args` as an object or as a
/// one-element array holding one.
pub fn parse_request(body: &[u8]) -> Result<Request, HttpBodyError> {
    let fields = fields(body)?;
    let path = typed(&fields, "path", "a string")?.ok_or(HttpBodyError::MissingField("path"))?;
    let args = match fields.get("args") {
        None => return Err(HttpBodyError::MissingField("args")),
        Some(raw) if raw.get().len() > MAX_ARGS_BYTES => return Err(HttpBodyError::TooLarge(raw.get().len())),
        Some(raw) => {
            let wrong = |got: String| HttpBodyError::WrongType { field: "args", expected: ARGS_SHAPE, got };
            match json::decode_str_limited(raw.get()).map_err(|error| HttpBodyError::Value { field: "args", error })? {
                object @ Value::Object(_) => object,
                Value::Array(mut items) if items.len() == 1 && matches!(items[0], Value::Object(_)) => items.remove(0),
                Value::Array(items) if items.len() == 1 => {
                    return Err(wrong(format!("an array holding {}", items[0].type_name())))
                }
                Value::Array(items) => return Err(wrong(format!("an array of {} elements", items.len()))),
                other => return Err(wrong(other.type_name().to_owned())),
            }
        }
    };
    let format = match typed::<String>(&fields, "format", "a string")? {
        None => Format::default(),
        Some(name) => Format::parse(&name).ok_or(HttpBodyError::UnknownFormat(name))?,
    };
    Ok(Request { path, args, format })
}

/// Writes the body the npm `ConvexHttpClient` sends to `/api/query`,
/// `/api/mutation` and `/api/action`: `args` as a one-element array.
pub fn write_request(path: &str, args: &Value) -> String {
    let mut out = request_head(path, args);
    out.push('[');
    json::encode_into(args, &mut out);
    out.push_str("]}");
    out
}

/// Writes the body the npm `ConvexHttpClient` sends to `/api/function`:
/// `args` as the bare object.
pub fn write_function_request(path: &str, args: &Value) -> String {
    let mut out = request_head(path, args);
    json::encode_into(args, &mut out);
    out.push('}');
    out
}

fn request_head(path: &str, args: &Value) -> String {
    let mut out = String::with_capacity(64 + path.len() + args.size());
    out.push_str(r#"{"path":"#);
    json::write_json_string(path, &mut out);
    out.push_str(r#","format":"convex_encoded_json","args":"#);
    out
}

/// Writes a success response with the value in Convex JSON
/// (`Format::ConvexEncodedJson`, what the official clients ask for).
pub fn write_success(value: &Value) -> String {
    let mut out = String::with_capacity(48 + value.size());
    out.push_str(r#"{"status":"success","value":"#);
    json::encode_into(value, &mut out);
    out.push_str(r#","logLines":[]}"#);
    out
}

/// Writes an error response; `data` becomes `errorData` in Convex JSON.
pub fn write_error(message: &str, data: Option<&Value>) -> String {
    let mut out = String::with_capacity(64 + message.len() + data.map_or(0, Value::size));
    out.push_str(r#"{"status":"error","errorMessage":"#);
    json::write_json_string(message, &mut out);
    if let Some(data) = data {
        out.push_str(r#","errorData":"#);
        json::encode_into(data, &mut out);
    }
    out.push_str(r#","logLines":[]}"#);
    out
}

/// Parses a response body, reading `value` and `errorData` as Convex JSON.
pub fn parse_response(body: &str) -> Result<Response, HttpBodyError> {
    let fields = fields(body.as_bytes())?;
    let status: String = typed(&fields, "status", "a string")?.ok_or(HttpBodyError::MissingField("status"))?;
    let log_lines = typed(&fields, "logLines", "an array of strings")?.unwrap_or_default();
    let value = |field: &'static str| -> Result<Option<Value>, HttpBodyError> {
        fields
            .get(field)
            .map(|raw| json::decode_str(raw.get()).map_err(|error| HttpBodyError::Value { field, error }))
            .transpose()
    };
    match status.as_str() {
        "success" => {
            Ok(Response::Success { value: value("value")?.ok_or(HttpBodyError::MissingField("value"))?, log_lines })
        }
        "error" => {
            let message =
                typed(&fields, "errorMessage", "a string")?.ok_or(HttpBodyError::MissingField("errorMessage"))?;
            Ok(Response::Error { message, data: value("errorData")?, log_lines })
        }
        _ => Err(HttpBodyError::UnknownStatus(status)),
    }
}

/// A body's top-level fields, each left as raw JSON.
type Fields<'a> = BTreeMap<Cow<'a, str>, &'a RawValue>;

fn fields(body: &[u8]) -> Result<Fields<'_>, HttpBodyError> {
    serde_json::from_slice::<Fields<'_>>(body).map_err(|e| match e.classify() {
        // Valid JSON of another kind: say which.
        serde_json::error::Category::Data => match serde_json::from_slice::<&RawValue>(body) {
            Ok(raw) => HttpBodyError::NotAnObject(json_type(raw)),
            Err(e) => HttpBodyError::NotJson(e.to_string()),
        },
        _ => HttpBodyError::NotJson(e.to_string()),
    })
}

/// A field read as a `T` if present, or why it is not one (`expected`
/// says what a `T` is, for the message).
fn typed<T: DeserializeOwned>(
    fields: &Fields<'_>,
    field: &'static str,
    expected: &'static str,
) -> Result<Option<T>, HttpBodyError> {
    let Some(raw) = fields.get(field) else { return Ok(None) };
    serde_json::from_str(raw.get()).map(Some).map_err(|_| HttpBodyError::WrongType {
        field,
        expected,
        got: json_type(raw).to_owned(),
    })
}

/// The kind of JSON a raw value holds, from its first character.
fn json_type(raw: &RawValue) -> &'static str {
    match raw.get().trim_start().as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> Value {
        Value::object([("name", Value::from("a\"b")), ("n", Value::Int64(-3)), ("f", Value::Float64(1.5))])
    }

    fn error(body: &str) -> String {
        parse_request(body.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn the_npm_clients_bodies_parse() {
        let body = r#"{"path":"counters:get","format":"convex_encoded_json","args":[{"name":"c"}]}"#;
        let request = parse_request(body.as_bytes()).unwrap();
        assert_eq!(request.path, "counters:get");
        assert_eq!(request.args, Value::object([("name", Value::from("c"))]));
        assert_eq!(request.format, Format::ConvexEncodedJson);

        // `/api/function`, and a hand-written call with no format.
        let body = r#"{"path":"counters:get","args":{"name":"c"}}"#;
        let request = parse_request(body.as_bytes()).unwrap();
        assert_eq!(request.args, Value::object([("name", Value::from("c"))]));
        assert_eq!(request.format, Format::Json);
        assert_eq!(
            parse_request(br#"{"path":"f:g","args":{},"format":"convex_json"}"#).unwrap().format,
            Format::ConvexEncodedJson
        );
        assert_eq!(parse_request(br#"{"path":"f:g","args":{},"format":"json"}"#).unwrap().format, Format::Json);
    }

    #[test]
    fn written_requests_read_back() {
        let written = write_request("counters:get", &args());
        assert_eq!(
            written,
            r#"{"path":"counters:get","format":"convex_encoded_json","args":[{"f":1.5,"n":{"$integer":"/f////////8="},"name":"a\"b"}]}"#
        );
        let function = write_function_request("counters:get", &args());
        assert!(function.ends_with(r#""args":{"f":1.5,"n":{"$integer":"/f////////8="},"name":"a\"b"}}"#));
        for body in [written, function] {
            let request = parse_request(body.as_bytes()).unwrap();
            assert_eq!(
                request,
                Request { path: "counters:get".into(), args: args(), format: Format::ConvexEncodedJson }
            );
        }
    }

    #[test]
    fn malformed_requests_say_what_is_wrong() {
        assert!(error("{").starts_with("expected a JSON body, got invalid JSON: "));
        assert_eq!(error("[1]"), "expected the body to be a JSON object, got an array");
        assert_eq!(error(r#"{"args":{}}"#), "expected a field `path`, got none");
        assert_eq!(error(r#"{"path":3,"args":{}}"#), "expected `path` to be a string, got a number");
        assert_eq!(error(r#"{"path":"f:g"}"#), "expected a field `args`, got none");
        let shape = "expected `args` to be an object or a one-element array holding an object, got";
        assert_eq!(error(r#"{"path":"f:g","args":"x"}"#), format!("{shape} string"));
        assert_eq!(error(r#"{"path":"f:g","args":[]}"#), format!("{shape} an array of 0 elements"));
        assert_eq!(error(r#"{"path":"f:g","args":[{},{}]}"#), format!("{shape} an array of 2 elements"));
        assert_eq!(error(r#"{"path":"f:g","args":[1]}"#), format!("{shape} an array holding float64"));
        assert_eq!(error(r#"{"path":"f:g","args":null}"#), format!("{shape} null"));
        assert!(error(r#"{"path":"f:g","args":[{"$set":[]}]}"#).starts_with("invalid `args`: invalid convex value at"));
        assert_eq!(
            error(r#"{"path":"f:g","args":{},"format":"xml"}"#),
            r#"expected `format` to be "json" or "convex_encoded_json", got "xml""#
        );
        assert_eq!(error(r#"{"path":"f:g","args":{},"format":1}"#), "expected `format` to be a string, got a number");
        let codes: Vec<&str> =
            ["{", "1", r#"{"args":{}}"#, r#"{"path":1,"args":{}}"#, r#"{"path":"f","args":{},"format":"x"}"#]
                .iter()
                .map(|b| parse_request(b.as_bytes()).unwrap_err().code())
                .collect();
        assert_eq!(codes, ["BadJsonBody", "BadJsonBody", "MissingField", "BadFieldType", "BadFormat"]);
    }

    #[test]
    fn responses_round_trip() {
        let value = Value::object([("n", Value::Int64(7)), ("b", Value::Bytes(vec![1, 2])), ("x", Value::Null)]);
        let success = write_success(&value);
        assert_eq!(
            success,
            r#"{"status":"success","value":{"b":{"$bytes":"AQI="},"n":{"$integer":"BwAAAAAAAAA="},"x":null},"logLines":[]}"#
        );
        assert_eq!(parse_response(&success).unwrap(), Response::Success { value, log_lines: vec![] });

        let data = Value::object([("code", Value::from("RateLimited"))]);
        let failed = write_error("slow \"down\"", Some(&data));
        assert_eq!(
            failed,
            r#"{"status":"error","errorMessage":"slow \"down\"","errorData":{"code":"RateLimited"},"logLines":[]}"#
        );
        assert_eq!(
            parse_response(&failed).unwrap(),
            Response::Error { message: "slow \"down\"".into(), data: Some(data), log_lines: vec![] }
        );
        let plain = write_error("boom", None);
        assert_eq!(plain, r#"{"status":"error","errorMessage":"boom","logLines":[]}"#);
        assert_eq!(
            parse_response(&plain).unwrap(),
            Response::Error { message: "boom".into(), data: None, log_lines: vec![] }
        );
        assert_eq!(
            parse_response(r#"{"status":"success","value":1,"logLines":["a"]}"#).unwrap(),
            Response::Success { value: Value::Float64(1.0), log_lines: vec!["a".into()] }
        );
    }

    #[test]
    fn malformed_responses_say_what_is_wrong() {
        let error = |body: &str| parse_response(body).unwrap_err().to_string();
        assert_eq!(error(r#"{"value":1}"#), "expected a field `status`, got none");
        assert_eq!(error(r#"{"status":"ok"}"#), r#"expected `status` to be "success" or "error", got "ok""#);
        assert_eq!(error(r#"{"status":"success"}"#), "expected a field `value`, got none");
        assert_eq!(error(r#"{"status":"error"}"#), "expected a field `errorMessage`, got none");
        assert_eq!(
            error(r#"{"status":"success","value":1,"logLines":"x"}"#),
            "expected `logLines` to be an array of strings, got a string"
        );
        assert!(error(r#"{"status":"success","value":{"$integer":"AA=="}}"#).starts_with("invalid `value`: "));
    }
}
