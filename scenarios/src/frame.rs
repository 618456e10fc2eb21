//! Reading server frames quickly: one flat, borrowing struct for every
//! message type the load client needs, and typed rows for the results.
//!
//! The general parser (`wire::parse_server_message`) goes through an
//! internally tagged enum and builds an order-preserving JSON tree per
//! frame; measured under load that was the client's largest cost. The
//! conformance client keeps the general parser, which accepts everything.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

/// The fields of a server message that load needs.
#[derive(Debug, Deserialize)]
pub(crate) struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    pub(crate) kind: Cow<'a, str>,
    #[serde(default, borrow)]
    pub(crate) modifications: Vec<Modification<'a>>,
    #[serde(rename = "endVersion", borrow)]
    pub(crate) end_version: Option<EndVersion<'a>>,
    #[serde(rename = "requestId")]
    pub(crate) request_id: Option<u32>,
    pub(crate) success: Option<bool>,
    #[serde(borrow)]
    pub(crate) result: Option<&'a RawValue>,
    #[serde(borrow)]
    pub(crate) ts: Option<Cow<'a, str>>,
    #[serde(rename = "errorData", borrow)]
    pub(crate) error_data: Option<&'a RawValue>,
    #[serde(rename = "error", borrow)]
    pub(crate) error: Option<Cow<'a, str>>,
}

/// A transition's end version; only its ts matters here.
#[derive(Debug, Deserialize)]
pub(crate) struct EndVersion<'a> {
    #[serde(borrow)]
    pub(crate) ts: Cow<'a, str>,
}

/// One state modification.
#[derive(Debug, Deserialize)]
pub(crate) struct Modification<'a> {
    #[serde(rename = "type", borrow)]
    pub(crate) kind: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) value: Option<&'a RawValue>,
    #[serde(rename = "errorMessage", borrow)]
    pub(crate) error_message: Option<Cow<'a, str>>,
}

/// A `presence:list` or `cursors:list` row.
#[derive(Debug, Deserialize)]
pub(crate) struct Row<'a> {
    #[serde(borrow)]
    pub(crate) user: Cow<'a, str>,
    pub(crate) x: Option<f64>,
    #[serde(borrow)]
    pub(crate) name: Option<Cow<'a, str>>,
}

/// A `messages:list` message.
#[derive(Debug, Deserialize)]
pub(crate) struct Message<'a> {
    #[serde(rename = "_id", borrow)]
    pub(crate) id: Cow<'a, str>,
    #[serde(rename = "_creationTime")]
    pub(crate) creation_time: f64,
    #[serde(borrow)]
    pub(crate) author: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) body: Cow<'a, str>,
}

/// The `code` of an `errorData` object, if it has one.
pub(crate) fn error_code(data: Option<&RawValue>) -> Option<String> {
    #[derive(Deserialize)]
    struct Data<'a> {
        #[serde(borrow)]
        code: Option<Cow<'a, str>>,
    }
    let data: Data<'_> = serde_json::from_str(data?.get()).ok()?;
    data.code.map(Cow::into_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use syncspec_protocol::value::Value;
    use syncspec_protocol::wire;

    #[test]
    fn reads_what_the_reference_server_writes() {
        let ok = wire::mutation_success(7, &Value::Null, 42);
        let f: Frame<'_> = serde_json::from_str(&ok).unwrap();
        assert_eq!((f.kind.as_ref(), f.request_id, f.success), ("MutationResponse", Some(7), Some(true)));
        assert_eq!(wire::decode_ts(f.ts.as_deref().unwrap()), Some(42));
        let data = Value::Object([("code".into(), Value::from("RateLimited"))].into_iter().collect());
        let failed = wire::mutation_failure(8, "slow down", Some(&data));
        let f: Frame<'_> = serde_json::from_str(&failed).unwrap();
        assert_eq!(f.success, Some(false));
        assert_eq!(error_code(f.error_data).as_deref(), Some("RateLimited"));
        assert_eq!(f.result.map(|r| r.get()), Some("\"slow down\""));
    }
}
