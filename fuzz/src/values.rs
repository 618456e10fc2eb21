//! The `values` target: any bytes as Convex JSON, through both decoders and
//! the argument envelope.
//!
//! Properties: nothing panics; a decoded value encodes to text that decodes
//! to an equal value (`Value`'s own equality: NaN equals NaN, -0 only -0)
//! and encodes to the same text again; `decode_str_limited` accepts exactly
//! what `decode_str` accepts within Convex's limits, as the same value;
//! `decode_args` accepts exactly a limited one-element array holding an
//! object; and decoding holds memory in proportion to the text. The
//! encoder is a parameter so a negative control can plant a bug in it.

use syncspec_protocol::json::{self, MAX_ARRAY_LEN, MAX_NESTING, MAX_OBJECT_FIELDS};
use syncspec_protocol::value::Value;
use syncspec_protocol::wire;

/// The most memory a decode may hold at once: 128 bytes per byte of text
/// (a one-field object, `{"":0},`, is 7 bytes of text and one B-tree leaf
/// of about 630 bytes), plus a constant for nesting up to `serde`'s
/// recursion limit.
pub fn memory_bound(text_len: usize) -> u64 {
    128 * text_len as u64 + 256 * 1024
}

/// Runs the codec over `data`; panics on a broken property.
pub fn run(data: &[u8]) {
    check(data, json::encode);
}

/// `run`, with `encode` standing in for `json::encode`.
pub fn check(data: &[u8], encode: fn(&Value) -> String) {
    let text = String::from_utf8_lossy(data);
    let unlimited = measured(|| json::decode_str(&text), text.len());
    let limited = measured(|| json::decode_str_limited(&text), text.len());
    match (&unlimited, &limited) {
        (Ok(value), Ok(within)) => {
            assert_eq!(value, within, "the decoders disagree on {text:?}");
            assert!(fits(within, 1), "decode_str_limited accepted {text:?}, which is over Convex's limits");
        }
        (Ok(value), Err(e)) => {
            assert!(!fits(value, 1), "decode_str_limited refused {text:?}, which is within the limits: {e}")
        }
        (Err(e), Ok(_)) => panic!("decode_str_limited accepted {text:?}, which decode_str refuses: {e}"),
        (Err(a), Err(b)) => assert!(!a.message.is_empty() && !b.message.is_empty(), "a refusal that says nothing"),
    }
    if let Ok(value) = &unlimited {
        round_trip(value, encode);
    }
    let args = wire::decode_args(&text);
    match (&args, limited) {
        (Ok(object), Ok(Value::Array(items))) => {
            assert!(matches!(object, Value::Object(_)), "arguments accepted as {}", object.type_name());
            assert_eq!(items, std::slice::from_ref(object), "decode_args changed the object");
        }
        (Ok(_), _) => panic!("decode_args accepted {text:?}, which is no limited array"),
        (Err(_), Ok(Value::Array(items))) if items.len() == 1 => {
            assert!(!matches!(items[0], Value::Object(_)), "decode_args refused {text:?}, an array of one object")
        }
        (Err(e), _) => assert!(!e.to_string().is_empty(), "a refusal that says nothing"),
    }
}

/// Runs one decode, asserting the memory it held at peak.
fn measured<T>(decode: impl FnOnce() -> T, text_len: usize) -> T {
    let mut decoded = None;
    let held = allocation_counter::measure(|| decoded = Some(decode())).bytes_max;
    assert!(
        held <= memory_bound(text_len),
        "{held} bytes held at peak to decode {text_len} bytes of text, over {}",
        memory_bound(text_len)
    );
    decoded.expect("measured")
}

fn round_trip(value: &Value, encode: fn(&Value) -> String) {
    let text = encode(value);
    let back =
        json::decode_str(&text).unwrap_or_else(|e| panic!("{value:?} encoded as {text:?}, which does not decode: {e}"));
    assert_eq!(&back, value, "{value:?} encoded as {text:?} came back different");
    assert_eq!(encode(&back), text, "{value:?} encodes two ways");
}

/// Whether `value`, at nesting level `level` (1 for the outermost), is
/// within Convex's limits, counted as `decode_str_limited` counts them.
fn fits(value: &Value, level: usize) -> bool {
    match value {
        Value::Array(items) => {
            level <= MAX_NESTING && items.len() <= MAX_ARRAY_LEN && items.iter().all(|v| fits(v, level + 1))
        }
        Value::Object(fields) => {
            level <= MAX_NESTING && fields.len() <= MAX_OBJECT_FIELDS && fields.values().all(|v| fits(v, level + 1))
        }
        _ => true,
    }
}
