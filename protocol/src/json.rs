//! The Convex JSON encoding of values, both directions, with the official
//! clients' validation rules.
//!
//! Special values travel as one-key objects: `{"$integer": b64}` (8 bytes,
//! little-endian two's complement), `{"$float": b64}` (8 bytes, little-endian
//! IEEE-754, only for NaN, the infinities and -0), `{"$bytes": b64}`. Any
//! other plain JSON number decodes to a float64. Legacy `$set` and `$map` are
//! rejected, as both official clients reject them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::Value as Json;

use crate::value::Value;

/// The longest field name the official clients accept.
pub const MAX_FIELD_NAME_LEN: usize = 1024;

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

/// Decodes Convex JSON text into a value.
///
/// The text is read straight into a `Value`, with no intermediate JSON tree;
/// only when that fails is it read again the slow way, for an error message
/// that names the path to the bad part.
pub fn decode_str(text: &str) -> Result<Value, DecodeError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let fast = serde::de::Deserializer::deserialize_any(&mut de, ValueVisitor).and_then(|v| de.end().map(|()| v));
    if let Ok(value) = fast {
        return Ok(value);
    }
    let json: Json = serde_json::from_str(text)
        .map_err(|e| DecodeError { path: "/".to_owned(), message: format!("expected JSON, got a parse error: {e}") })?;
    decode(&json)
}

/// Builds a `Value` while parsing; errors carry no path (see `decode_str`).
struct ValueVisitor;

impl<'de> serde::de::Visitor<'de> for ValueVisitor {
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
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element_seed(Seed)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        use serde::de::Error as _;
        let mut fields = BTreeMap::new();
        let mut special = false;
        while let Some(key) = map.next_key::<String>()? {
            if key.len() > MAX_FIELD_NAME_LEN {
                return Err(A::Error::custom("field name too long"));
            }
            special |= key.starts_with('$');
            let value = map.next_value_seed(Seed)?;
            fields.insert(key.into(), value);
        }
        if !special {
            return Ok(Value::Object(fields));
        }
        // Rebuild the JSON of the special object and let the checked path judge it.
        let Some((key, Value::String(text))) = fields.iter().next().filter(|_| fields.len() == 1) else {
            return Err(A::Error::custom("invalid special object"));
        };
        decode_special(key, &Json::String(text.clone()), "").map_err(A::Error::custom)
    }
}

struct Seed;

impl<'de> serde::de::DeserializeSeed<'de> for Seed {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
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
                return decode_special(key, inner, path);
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

fn decode_special(key: &str, inner: &Json, path: &str) -> Result<Value, DecodeError> {
    let bytes = |expected_len: Option<usize>| -> Result<Vec<u8>, DecodeError> {
        let Json::String(text) = inner else {
            return Err(error(path, format!("expected a base64 string in `{key}`, got {inner}")));
        };
        let bytes =
            BASE64.decode(text).map_err(|e| error(path, format!("expected base64 in `{key}`, got {text:?}: {e}")))?;
        match expected_len {
            Some(n) if bytes.len() != n => {
                Err(error(path, format!("expected {n} bytes in `{key}`, got {}", bytes.len())))
            }
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
                return Err(error(
                    path,
                    format!("expected `$float` only for NaN, ±Infinity or -0, got {f} which must be a plain number"),
                ));
            }
            Ok(Value::Float64(f))
        }
        "$bytes" => Ok(Value::Bytes(bytes(None)?)),
        other => Err(error(path, format!("expected a field name not starting with `$`, got `{other}`"))),
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
    }

    #[test]
    fn control_characters_are_escaped() {
        let v = Value::from("a\"b\\c\n\u{1}");
        assert_eq!(encode(&v), r#""a\"b\\c\n\u0001""#);
        assert_eq!(decode_str(&encode(&v)).unwrap(), v);
    }
}
