//! The Convex JSON encoding of values, both directions, with the official
//! clients' validation rules.
//!
//! Special values travel as one-key objects: `{"$integer": b64}` (8 bytes,
//! little-endian two's complement), `{"$float": b64}` (8 bytes, little-endian
//! IEEE-754, only for NaN, the infinities and -0), `{"$bytes": b64}`. Any
//! other plain JSON number decodes to a float64. Legacy `$set` and `$map` are
//! rejected, as both official clients reject them.
//!
//! Text is decoded straight into a `Value` by a `serde` visitor, never
//! through a `serde_json` tree. `decode_str_limited`, for what clients send,
//! also holds the value to Convex's limits on array length, object fields
//! and nesting while it parses, so an over-limit value costs no more than the
//! limit to refuse. `decode` reads a `serde_json` tree someone else parsed.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::de::DeserializeSeed as _;
use serde_json::Value as Json;

use crate::value::Value;

/// The longest field name the official clients accept.
pub const MAX_FIELD_NAME_LEN: usize = 1024;

/// The most elements an array may hold: Convex's backend refuses more
/// (`MAX_ARRAY_LEN` in its `value` crate), as its documentation says:
/// "Arrays can have at most 8192 values" (<https://docs.convex.dev/database/types>).
pub const MAX_ARRAY_LEN: usize = 8192;

/// The most fields an object may hold: "Objects can have at most 1024
/// entries" (same page; `MAX_OBJECT_FIELDS` in Convex's backend).
pub const MAX_OBJECT_FIELDS: usize = 1024;

/// How deeply arrays and objects may nest in a value, `[[0]]` being two
/// levels and a `$integer`, `$float` or `$bytes` object none: Convex's backend
/// refuses a deeper value (`MAX_NESTING` in its `value` crate). A stored
/// document is held to 16 levels (<https://docs.convex.dev/production/state/limits>);
/// that is the store's rule, not the codec's.
pub const MAX_NESTING: usize = 64;

/// Why a JSON value is not a valid Convex value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid convex value at {path}: {message}")]
pub struct DecodeError {
    /// Where in the value the problem is, as a JSON-pointer-like path.
    pub path: String,
    /// What was expected and what came.
    pub message: String,
}

/// Encodes a value as Convex JSON text.
pub fn encode(value: &Value) -> String {
    let mut out = String::with_capacity(64);
    encode_into(value, &mut out);
    out
}

/// Appends the Convex JSON text of `value` to `out`.
pub fn encode_into(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Boolean(true) => out.push_str("true"),
        Value::Boolean(false) => out.push_str("false"),
        Value::Int64(i) => special(out, "$integer", &i.to_le_bytes()),
        Value::Float64(f) => {
            if is_plain_float(*f) {
                if f.fract() == 0.0 && f.abs() < 9.0e15 {
                    // Whole numbers print as Convex's backend prints them,
                    // `3.0`: the Python HTTP client reads a bare `3` as an
                    // int, which it refuses as a Convex value.
                    out.push_str(itoa::Buffer::new().format(*f as i64));
                    out.push_str(".0");
                } else {
                    // The shortest text that round-trips.
                    out.push_str(ryu::Buffer::new().format_finite(*f));
                }
            } else {
                special(out, "$float", &f.to_le_bytes());
            }
        }
        Value::String(s) => write_json_string(s, out),
        Value::Bytes(b) => special(out, "$bytes", b),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                encode_into(item, out);
            }
            out.push(']');
        }
        Value::Object(fields) => {
            out.push('{');
            for (i, (k, v)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(k, out);
                out.push(':');
                encode_into(v, out);
            }
            out.push('}');
        }
    }
}

/// Converts a value to a `serde_json` tree in Convex JSON form.
pub fn to_json(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Int64(i) => special_json("$integer", &i.to_le_bytes()),
        Value::Float64(f) => match serde_json::Number::from_f64(*f) {
            Some(n) if is_plain_float(*f) => Json::Number(n),
            _ => special_json("$float", &f.to_le_bytes()),
        },
        Value::String(s) => Json::String(s.clone()),
        Value::Bytes(b) => special_json("$bytes", b),
        Value::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Object(fields) => Json::Object(fields.iter().map(|(k, v)| (k.to_string(), to_json(v))).collect()),
    }
}

/// Decodes Convex JSON into a value, rejecting what the official clients reject.
pub fn decode(json: &Json) -> Result<Value, DecodeError> {
    decode_at(json, &mut String::new())
}

/// Decodes Convex JSON text into a value, with no limits on its size: for
/// what a server sends, which the official clients read whatever its size.
///
/// The text is read straight into a `Value`, with no intermediate JSON tree,
/// and an error names the path to the bad part.
pub fn decode_str(text: &str) -> Result<Value, DecodeError> {
    decode_text(text, NO_LIMITS)
}

/// Decodes Convex JSON text that a client sent, holding it to Convex's value
/// limits ([`MAX_ARRAY_LEN`], [`MAX_OBJECT_FIELDS`], [`MAX_NESTING`]) as it
/// parses: the first part over a limit stops the parse, so the work done is
/// bounded by the limits, not by how many elements the text packs in.
pub fn decode_str_limited(text: &str) -> Result<Value, DecodeError> {
    decode_text(text, CONVEX_LIMITS)
}

/// What one decode holds values to.
#[derive(Clone, Copy)]
struct Limits {
    array_len: usize,
    object_fields: usize,
    nesting: usize,
}

const CONVEX_LIMITS: Limits =
    Limits { array_len: MAX_ARRAY_LEN, object_fields: MAX_OBJECT_FIELDS, nesting: MAX_NESTING };

/// No limits of ours; `serde_json`'s recursion limit of 128 levels still holds.
const NO_LIMITS: Limits = Limits { array_len: usize::MAX, object_fields: usize::MAX, nesting: usize::MAX };

fn decode_text(text: &str, limits: Limits) -> Result<Value, DecodeError> {
    let mut reader = Reader { limits, path: Vec::new(), refusal: None };
    let mut de = serde_json::Deserializer::from_str(text);
    let value = Level { reader: &mut reader, depth: 1 }.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    value.map_err(|e| {
        let path: String = reader.path.iter().rev().flat_map(|segment| ["/", segment.as_str()]).collect();
        let message = reader.refusal.unwrap_or_else(|| format!("expected JSON, got a parse error: {e}"));
        error(&path, message)
    })
}

/// The state of one decode: its limits and, once it fails, where and why.
struct Reader {
    limits: Limits,
    /// The path to the part that failed, innermost segment first: each level
    /// adds its segment as the error passes out through it, so a decode that
    /// succeeds never builds a path.
    path: Vec<String>,
    /// Why the codec refused the value; `None` when the JSON itself is bad.
    refusal: Option<String>,
}

impl Reader {
    /// Records why the value is refused and returns the error that stops the
    /// parse (its own text is never shown: `decode_text` uses `refusal`).
    fn refuse<E: serde::de::Error>(&mut self, message: String) -> E {
        self.refusal = Some(message);
        E::custom("refused")
    }

    fn check_nesting<E: serde::de::Error>(&mut self, depth: usize) -> Result<(), E> {
        if depth <= self.limits.nesting {
            return Ok(());
        }
        let limit = self.limits.nesting;
        Err(self.refuse(format!(
            "expected arrays and objects nested at most {limit} levels deep (Convex's limit), got deeper"
        )))
    }
}

/// One array or object level of a decode (1 for the outermost), as both the
/// seed that reads a value there and the visitor that builds it.
struct Level<'r> {
    reader: &'r mut Reader,
    depth: usize,
}

impl<'de> serde::de::DeserializeSeed<'de> for Level<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Level<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a Convex JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Boolean(b))
    }

    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Float64(i as f64))
    }

    fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
        Ok(Value::Float64(u as f64))
    }

    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Float64(f))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let Level { reader, depth } = self;
        reader.check_nesting(depth)?;
        let mut items = Vec::new();
        loop {
            let item = match seq.next_element_seed(Level { reader: &mut *reader, depth: depth + 1 }) {
                Ok(Some(item)) => item,
                Ok(None) => return Ok(Value::Array(items)),
                Err(e) => {
                    reader.path.push(items.len().to_string());
                    return Err(e);
                }
            };
            // Checked on the element past the limit, so that a huge array
            // costs one more element than the largest allowed.
            if items.len() == reader.limits.array_len {
                let limit = reader.limits.array_len;
                return Err(
                    reader.refuse(format!("expected an array of at most {limit} elements (Convex's limit), got more"))
                );
            }
            items.push(item);
        }
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let Level { reader, depth } = self;
        let Some(mut key) = map.next_key::<String>()? else {
            reader.check_nesting(depth)?;
            return Ok(Value::Object(BTreeMap::new()));
        };
        if key.starts_with('$') {
            return read_special(reader, depth, key, map);
        }
        // Only now is this known to be an object and not a special value,
        // which nests no deeper than the scalar it stands for.
        reader.check_nesting(depth)?;
        let mut fields = BTreeMap::new();
        loop {
            if key.starts_with('$') {
                let message = if SPECIAL_KEYS.contains(&key.as_str()) {
                    format!("expected `{key}` to be the only field of its object, got other fields beside it")
                } else {
                    format!("expected a field name not starting with `$`, got `{key}`")
                };
                return Err(reader.refuse(message));
            }
            if key.len() > MAX_FIELD_NAME_LEN {
                return Err(
                    reader.refuse(format!("field name of {} bytes is longer than {MAX_FIELD_NAME_LEN}", key.len()))
                );
            }
            if fields.len() == reader.limits.object_fields && !fields.contains_key(key.as_str()) {
                let limit = reader.limits.object_fields;
                return Err(
                    reader.refuse(format!("expected an object of at most {limit} fields (Convex's limit), got more"))
                );
            }
            match map.next_value_seed(Level { reader: &mut *reader, depth: depth + 1 }) {
                Ok(value) => {
                    fields.insert(key.into(), value);
                }
                Err(e) => {
                    reader.path.push(key);
                    return Err(e);
                }
            }
            match map.next_key::<String>()? {
                Some(next) => key = next,
                None => return Ok(Value::Object(fields)),
            }
        }
    }
}

/// The keys of the one-key objects that stand for values JSON lacks.
const SPECIAL_KEYS: [&str; 3] = ["$integer", "$float", "$bytes"];

/// Reads the rest of an object whose first key, `key`, starts with `$`.
fn read_special<'de, A: serde::de::MapAccess<'de>>(
    reader: &mut Reader,
    depth: usize,
    key: String,
    mut map: A,
) -> Result<Value, A::Error> {
    let payload = match map.next_value_seed(Level { reader: &mut *reader, depth }) {
        Ok(payload) => payload,
        Err(e) => {
            reader.path.push(key);
            return Err(e);
        }
    };
    if let Some(other) = map.next_key::<String>()? {
        return Err(reader.refuse(format!("expected `{key}` to be the only field of its object, got `{other}` too")));
    }
    let text = match &payload {
        Value::String(text) => Ok(text.as_str()),
        other => Err(format!("a value of type {}", other.type_name())),
    };
    decode_special(&key, text).map_err(|message| reader.refuse(message))
}

/// A finite float other than -0 travels as a plain JSON number.
fn is_plain_float(f: f64) -> bool {
    f.is_finite() && !(f == 0.0 && f.is_sign_negative())
}

fn special(out: &mut String, tag: &str, bytes: &[u8]) {
    out.push_str("{\"");
    out.push_str(tag);
    out.push_str("\":\"");
    BASE64.encode_string(bytes, out);
    out.push_str("\"}");
}

fn special_json(tag: &str, bytes: &[u8]) -> Json {
    let mut map = serde_json::Map::new();
    map.insert(tag.to_owned(), Json::String(BASE64.encode(bytes)));
    Json::Object(map)
}

/// Writes `s` as a JSON string literal, escaping as `JSON.stringify` does.
pub(crate) fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

fn error(path: &str, message: impl Into<String>) -> DecodeError {
    DecodeError { path: if path.is_empty() { "/".to_owned() } else { path.to_owned() }, message: message.into() }
}

fn decode_at(json: &Json, path: &mut String) -> Result<Value, DecodeError> {
    Ok(match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => match n.as_f64() {
            Some(f) => Value::Float64(f),
            None => return Err(error(path, format!("expected a float64, got {n}"))),
        },
        Json::String(s) => Value::String(s.clone()),
        Json::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                let _ = write!(path, "/{i}");
                out.push(decode_at(item, path)?);
                path.truncate(len);
            }
            Value::Array(out)
        }
        Json::Object(map) => {
            if let Some((key, inner)) = map.iter().find(|(k, _)| k.starts_with('$')) {
                if map.len() != 1 {
                    return Err(error(
                        path,
                        format!("expected `{key}` to be the only field of its object, got {} fields", map.len()),
                    ));
                }
                let text = match inner {
                    Json::String(text) => Ok(text.as_str()),
                    other => Err(other.to_string()),
                };
                return decode_special(key, text).map_err(|message| error(path, message));
            }
            let mut out = BTreeMap::new();
            for (key, inner) in map {
                if key.len() > MAX_FIELD_NAME_LEN {
                    return Err(error(
                        path,
                        format!("field name of {} bytes is longer than {MAX_FIELD_NAME_LEN}", key.len()),
                    ));
                }
                let len = path.len();
                let _ = write!(path, "/{key}");
                out.insert(key.clone().into(), decode_at(inner, path)?);
                path.truncate(len);
            }
            Value::Object(out)
        }
    })
}

/// Decodes the value a special object stands for, from its key and its
/// payload: the payload's text, or what came instead of text. An `Err` is the
/// message for the caller to place.
fn decode_special(key: &str, payload: Result<&str, String>) -> Result<Value, String> {
    let bytes = |expected_len: Option<usize>| -> Result<Vec<u8>, String> {
        let text = payload.as_deref().map_err(|got| format!("expected a base64 string in `{key}`, got {got}"))?;
        let bytes = BASE64.decode(text).map_err(|e| format!("expected base64 in `{key}`, got {text:?}: {e}"))?;
        match expected_len {
            Some(n) if bytes.len() != n => Err(format!("expected {n} bytes in `{key}`, got {}", bytes.len())),
            _ => Ok(bytes),
        }
    };
    match key {
        "$integer" => {
            let b = bytes(Some(8))?;
            let mut le = [0u8; 8];
            le.copy_from_slice(&b);
            Ok(Value::Int64(i64::from_le_bytes(le)))
        }
        "$float" => {
            let b = bytes(Some(8))?;
            let mut le = [0u8; 8];
            le.copy_from_slice(&b);
            let f = f64::from_le_bytes(le);
            if is_plain_float(f) {
                return Err(format!(
                    "expected `$float` only for NaN, ±Infinity or -0, got {f} which must be a plain number"
                ));
            }
            Ok(Value::Float64(f))
        }
        "$bytes" => Ok(Value::Bytes(bytes(None)?)),
        other => Err(format!("expected a field name not starting with `$`, got `{other}`")),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::Int64),
            any::<f64>().prop_map(Value::Float64),
            prop_oneof![Just(f64::NAN), Just(-0.0), Just(f64::INFINITY), Just(f64::NEG_INFINITY)]
                .prop_map(Value::Float64),
            any::<bool>().prop_map(Value::Boolean),
            any::<String>().prop_map(Value::String),
            prop::collection::vec(any::<u8>(), 0..16).prop_map(Value::Bytes),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("[a-zA-Z_][a-zA-Z0-9_]{0,8}", inner, 0..6)
                    .prop_map(|fields| Value::Object(fields.into_iter().map(|(k, v)| (k.into(), v)).collect())),
            ]
        })
    }

    /// Bit-exact equality, so that NaN payloads and -0 are compared too.
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Float64(x), Value::Float64(y)) => x.to_bits() == y.to_bits(),
            (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b)),
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|((ka, a), (kb, b))| ka == kb && same(a, b))
            }
            _ => a == b,
        }
    }

    proptest! {
        #[test]
        fn text_round_trips(v in arb_value()) {
            let text = encode(&v);
            let back = decode_str(&text).unwrap();
            prop_assert!(same(&v, &back), "{v:?} -> {text} -> {back:?}");
        }

        #[test]
        fn tree_round_trips_and_matches_text(v in arb_value()) {
            let tree = to_json(&v);
            let back = decode(&tree).unwrap();
            prop_assert!(same(&v, &back));
            let reparsed: Json = serde_json::from_str(&encode(&v)).unwrap();
            prop_assert!(same(&decode(&reparsed).unwrap(), &back));
        }

        #[test]
        fn fast_and_checked_decoders_agree(v in arb_value()) {
            let text = encode(&v);
            let tree: Json = serde_json::from_str(&text).unwrap();
            prop_assert!(same(&decode_str(&text).unwrap(), &decode(&tree).unwrap()));
        }

        #[test]
        fn limited_and_unlimited_decoders_agree_within_the_limits(v in arb_value()) {
            let text = encode(&v);
            prop_assert!(same(&decode_str_limited(&text).unwrap(), &decode_str(&text).unwrap()));
        }

        #[test]
        fn integers_of_wrong_length_are_rejected(bytes in prop::collection::vec(any::<u8>(), 0..16)) {
            prop_assume!(bytes.len() != 8);
            let json = serde_json::json!({"$integer": BASE64.encode(&bytes)});
            prop_assert!(decode(&json).is_err());
            prop_assert!(decode_str(&json.to_string()).is_err());
        }

        #[test]
        fn plain_numbers_as_float_are_rejected(f in any::<f64>()) {
            prop_assume!(is_plain_float(f));
            let json = serde_json::json!({"$float": BASE64.encode(f.to_le_bytes())});
            let err = decode(&json).unwrap_err();
            prop_assert!(err.message.contains("plain number"));
            let err = decode_str(&json.to_string()).unwrap_err();
            prop_assert!(err.message.contains("plain number"));
        }

        #[test]
        fn dollar_fields_are_rejected(name in "\\$[a-z]{1,8}") {
            prop_assume!(!["$integer", "$float", "$bytes"].contains(&name.as_str()));
            let json = serde_json::json!({ name: 1 });
            prop_assert!(decode(&json).is_err());
            prop_assert!(decode_str(&json.to_string()).is_err());
        }
    }

    #[test]
    fn special_floats_use_float_tag() {
        assert_eq!(encode(&Value::Float64(-0.0)), r#"{"$float":"AAAAAAAAAIA="}"#);
        assert_eq!(encode(&Value::Float64(1.5)), "1.5");
        assert_eq!(encode(&Value::Float64(3.0)), "3.0");
        assert_eq!(encode(&Value::Float64(1e300)), "1e300");
        assert_eq!(encode(&Value::Int64(1)), r#"{"$integer":"AQAAAAAAAAA="}"#);
    }

    #[test]
    fn plain_integers_decode_as_float() {
        assert_eq!(decode_str("5").unwrap(), Value::Float64(5.0));
    }

    #[test]
    fn legacy_and_mixed_specials_are_rejected() {
        for bad in [
            r#"{"$set":[]}"#,
            r#"{"$map":[]}"#,
            r#"{"$integer":"AQAAAAAAAAA=","x":1}"#,
            r#"{"$bytes":"not base64!"}"#,
            r#"{"$integer":5}"#,
        ] {
            assert!(decode_str(bad).is_err(), "{bad} should be rejected");
        }
        assert!(decode_str(r#"{"x":1,"$integer":"AQAAAAAAAAA="}"#).unwrap_err().message.contains("only field"));
        assert!(decode_str(r#"{"x":1,"$foo":1}"#).unwrap_err().message.contains("not starting with `$`"));
    }

    /// `n` copies of `item` as a JSON array.
    fn array_of(item: &str, n: usize) -> String {
        format!("[{}]", vec![item; n].join(","))
    }

    /// `n` arrays nested around `inner`.
    fn nested(inner: &str, n: usize) -> String {
        format!("{}{inner}{}", "[".repeat(n), "]".repeat(n))
    }

    fn limit_error(text: &str) -> DecodeError {
        let err = decode_str_limited(text).unwrap_err();
        assert!(err.message.contains("(Convex's limit)"), "{err}");
        err
    }

    #[test]
    fn arrays_are_limited_to_8192_elements() {
        assert!(decode_str_limited(&array_of("0", MAX_ARRAY_LEN)).is_ok());
        let err = limit_error(&format!(r#"{{"a":[1,{}]}}"#, array_of("0", MAX_ARRAY_LEN + 1)));
        assert_eq!(err.path, "/a/1");
        assert_eq!(err.message, "expected an array of at most 8192 elements (Convex's limit), got more");
        // Values from a server are read whatever their size.
        assert!(decode_str(&array_of("0", MAX_ARRAY_LEN + 1)).is_ok());
    }

    #[test]
    fn objects_are_limited_to_1024_fields() {
        let object = |n: usize| format!("{{{}}}", (0..n).map(|i| format!(r#""f{i}":0"#)).collect::<Vec<_>>().join(","));
        assert!(decode_str_limited(&object(MAX_OBJECT_FIELDS)).is_ok());
        let err = limit_error(&format!("[0,{}]", object(MAX_OBJECT_FIELDS + 1)));
        assert_eq!(err.path, "/1");
        assert!(err.message.contains("at most 1024 fields"), "{err}");
        // A repeated name is one field, as the decoded object has it.
        let repeated = object(MAX_OBJECT_FIELDS).replace('}', r#","f0":1}"#);
        assert!(decode_str_limited(&repeated).is_ok());
        assert!(decode_str(&object(MAX_OBJECT_FIELDS + 1)).is_ok());
    }

    #[test]
    fn nesting_is_limited_to_64_levels() {
        assert!(decode_str_limited(&nested("0", MAX_NESTING)).is_ok());
        let err = limit_error(&nested("0", MAX_NESTING + 1));
        assert_eq!(err.path, format!("/{}", vec!["0"; MAX_NESTING].join("/")));
        assert!(err.message.contains("at most 64 levels"), "{err}");
        // An empty object is a level; a special value is a scalar and is not.
        assert!(decode_str_limited(&nested("{}", MAX_NESTING)).is_err());
        let int = encode(&Value::Int64(7));
        assert_eq!(decode_str_limited(&nested(&int, MAX_NESTING)).unwrap(), {
            (0..MAX_NESTING).fold(Value::Int64(7), |v, _| Value::Array(vec![v]))
        });
        assert!(decode_str(&nested("0", MAX_NESTING + 1)).is_ok());
    }

    #[test]
    fn errors_name_the_path_to_the_bad_part() {
        let err = decode_str(r#"{"a":[1,{"$integer":5}]}"#).unwrap_err();
        assert_eq!(err.path, "/a/1");
        assert_eq!(err.message, "expected a base64 string in `$integer`, got a value of type float64");
        let err = decode_str(r#"{"a":[1,2,x]}"#).unwrap_err();
        assert_eq!(err.path, "/a/2");
        assert!(err.message.starts_with("expected JSON, got a parse error"), "{err}");
        let err = decode_str("[1] 2").unwrap_err();
        assert_eq!(err.path, "/");
        let long = "x".repeat(MAX_FIELD_NAME_LEN + 1);
        assert_eq!(decode_str(&format!(r#"{{"a":{{"{long}":1}}}}"#)).unwrap_err().path, "/a");
    }

    #[test]
    fn control_characters_are_escaped() {
        let v = Value::from("a\"b\\c\n\u{1}");
        assert_eq!(encode(&v), r#""a\"b\\c\n\u0001""#);
        assert_eq!(decode_str(&encode(&v)).unwrap(), v);
    }
}
