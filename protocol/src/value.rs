//! The Convex value model: the eight value types the sync protocol carries.
//!
//! `Value` is totally ordered and hashable (floats compare by their IEEE-754
//! total order and hash by their bits), so it can key ordered indexes and sit
//! inside model-checker states. The JSON form lives in `json.rs`, not here.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};

/// A field name: borrowed when it is a name the code spells out (`"user"`),
/// owned when it came off the wire, so building rows allocates no names.
pub type FieldName = Cow<'static, str>;

/// An object's fields, ordered by name as the JS encoder sorts them.
pub type Object = BTreeMap<FieldName, Value>;

/// One Convex value.
#[derive(Clone, Debug)]
pub enum Value {
    /// `null` (and a function's `undefined` result).
    Null,
    /// A 64-bit signed integer (`bigint` in JS, `$integer` on the wire).
    Int64(i64),
    /// A 64-bit float (`number` in JS).
    Float64(f64),
    /// `true` or `false`.
    Boolean(bool),
    /// A Unicode string.
    String(String),
    /// A byte string (`ArrayBuffer` in JS, `$bytes` on the wire).
    Bytes(Vec<u8>),
    /// An array of values.
    Array(Vec<Value>),
    /// An object with string field names.
    Object(Object),
}

impl Value {
    /// The type's rank in Convex's cross-type ordering.
    fn rank(&self) -> u8 {
        match self {
            Value::Null => 0,
            Value::Int64(_) => 1,
            Value::Float64(_) => 2,
            Value::Boolean(_) => 3,
            Value::String(_) => 4,
            Value::Bytes(_) => 5,
            Value::Array(_) => 6,
            Value::Object(_) => 7,
        }
    }

    /// The name of the value's type, as validators and error messages say it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Int64(_) => "int64",
            Value::Float64(_) => "float64",
            Value::Boolean(_) => "boolean",
            Value::String(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// An approximate size in bytes, used for the document and argument limits.
    pub fn size(&self) -> usize {
        match self {
            Value::Null | Value::Boolean(_) => 1,
            Value::Int64(_) | Value::Float64(_) => 8,
            Value::String(s) => s.len() + 2,
            Value::Bytes(b) => b.len() + 2,
            Value::Array(items) => 2 + items.iter().map(Value::size).sum::<usize>(),
            Value::Object(fields) => 2 + fields.iter().map(|(k, v)| k.len() + 2 + v.size()).sum::<usize>(),
        }
    }

    /// The string inside, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The object inside, if this is an object.
    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }

    /// A field of an object (`None` for a missing field or a non-object).
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.as_object()?.get(name)
    }

    /// Builds an object value from `(name, value)` pairs.
    pub fn object<I, K>(fields: I) -> Value
    where
        I: IntoIterator<Item = (K, Value)>,
        K: Into<FieldName>,
    {
        Value::Object(fields.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Value {}

impl PartialOrd for Value {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Value {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Value::Null, Value::Null) => Ordering::Equal,
            (Value::Int64(a), Value::Int64(b)) => a.cmp(b),
            (Value::Float64(a), Value::Float64(b)) => a.total_cmp(b),
            (Value::Boolean(a), Value::Boolean(b)) => a.cmp(b),
            (Value::String(a), Value::String(b)) => a.cmp(b),
            (Value::Bytes(a), Value::Bytes(b)) => a.cmp(b),
            (Value::Array(a), Value::Array(b)) => a.cmp(b),
            (Value::Object(a), Value::Object(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl Hash for Value {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.rank().hash(state);
        match self {
            Value::Null => {}
            Value::Int64(i) => i.hash(state),
            // Hash the bits so that equal floats (by total order) hash equally.
            Value::Float64(f) => f.to_bits().hash(state),
            Value::Boolean(b) => b.hash(state),
            Value::String(s) => s.hash(state),
            Value::Bytes(b) => b.hash(state),
            Value::Array(a) => a.hash(state),
            Value::Object(o) => o.hash(state),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::json::encode(self))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int64(i)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float64(f)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Boolean(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_type_order_follows_convex() {
        let ordered = [
            Value::Null,
            Value::Int64(5),
            Value::Float64(-1.0),
            Value::Boolean(false),
            Value::from("a"),
            Value::Bytes(vec![0]),
            Value::Array(vec![]),
            Value::object([("a", Value::Null)]),
        ];
        for pair in ordered.windows(2) {
            assert!(pair[0] < pair[1], "{:?} < {:?}", pair[0], pair[1]);
        }
    }

    #[test]
    fn floats_are_totally_ordered() {
        assert_eq!(Value::Float64(f64::NAN), Value::Float64(f64::NAN));
        assert_ne!(Value::Float64(0.0), Value::Float64(-0.0));
        assert!(Value::Float64(-0.0) < Value::Float64(0.0));
    }
}
