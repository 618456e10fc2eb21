//! Reading a client's arguments costs memory in proportion to the frame and
//! to Convex's value limits, never to the number of elements an attacker can
//! pack into a frame: an over-limit array is refused after its 8193rd
//! element, and a frame's `args` is never turned into a `serde_json` tree.

use allocation_counter::measure;
use convex_sync_types::{ClientMessage, QuerySetModification};
use syncspec_protocol::json::MAX_ARRAY_LEN;
use syncspec_protocol::value::Value;
use syncspec_protocol::wire::{self, ArgsError};

/// `[{"a":[0,0,…]}]` with `zeros` zeros: two bytes of text per element.
fn zeros_args(zeros: usize) -> String {
    let mut args = String::with_capacity(2 * zeros + 16);
    args.push_str(r#"[{"a":["#);
    args.push_str(&"0,".repeat(zeros - 1));
    args.push_str("0]}]");
    args
}

/// Parses `frame`, asserting it held less than twice its length at peak.
fn parse_within_twice(frame: &str) -> Result<ClientMessage, wire::WireError> {
    let mut parsed = None;
    let info = measure(|| parsed = Some(wire::parse_client_message(frame)));
    assert!(
        info.bytes_max < 2 * frame.len() as u64,
        "{} bytes held at peak for a {}-byte frame",
        info.bytes_max,
        frame.len()
    );
    parsed.expect("measured")
}

#[test]
fn an_array_over_the_limit_is_refused_while_parsing() {
    // Eight million elements, just inside the 16 MiB argument limit, so only
    // the array limit can refuse it.
    let args = zeros_args(8_000_000);
    assert!(args.len() <= wire::MAX_ARGS_BYTES);
    let mut result = None;
    let info = measure(|| result = Some(wire::decode_args(&args)));
    let e = match result {
        Some(Err(ArgsError::Value(e))) => e,
        Some(Ok(_)) => panic!("expected the array limit, got the arguments accepted"),
        other => panic!("expected the array limit, got {other:?}"),
    };
    assert_eq!(e.path, "/0/a");
    assert!(e.message.contains(&format!("at most {MAX_ARRAY_LEN} elements")), "{e}");
    // Held at once: one array at the limit (and its last doubling), not
    // anything in proportion to the eight million elements.
    let bound = 2 * MAX_ARRAY_LEN * size_of::<Value>() + 64 * 1024;
    assert!(info.bytes_max < bound as u64, "{} bytes held at peak, over {bound}", info.bytes_max);
}

#[test]
fn an_array_at_the_limit_is_accepted() {
    let args = zeros_args(MAX_ARRAY_LEN);
    let Value::Object(fields) = wire::decode_args(&args).unwrap() else { panic!("expected an object") };
    assert!(matches!(&fields["a"], Value::Array(items) if items.len() == MAX_ARRAY_LEN));
}

/// A frame near the 24 MiB frame limit whose arguments are over 16 MiB: the
/// frame is read holding one copy of the arguments' text, and the arguments
/// are refused by their length alone.
#[test]
fn an_oversize_mutation_frame_costs_one_copy_of_its_args() {
    let args = zeros_args(11_500_000);
    let frame = format!(r#"{{"type":"Mutation","requestId":0,"udfPath":"counters:increment","args":{args}}}"#);
    let message = parse_within_twice(&frame);
    let Ok(ClientMessage::Mutation { args: sent, .. }) = message else { panic!("expected a Mutation") };
    assert_eq!(sent.get(), args);
    let info = measure(|| assert_eq!(wire::decode_args(sent.get()), Err(ArgsError::TooLarge(args.len()))));
    assert!(info.bytes_max < 1024, "{} bytes to refuse by length", info.bytes_max);
}

#[test]
fn an_oversize_query_costs_one_copy_of_its_args() {
    let args = zeros_args(11_500_000);
    let frame = format!(
        r#"{{"type":"ModifyQuerySet","baseVersion":0,"newVersion":1,"modifications":[{{"type":"Remove","queryId":0}},{{"type":"Add","queryId":1,"udfPath":"counters:get","args":{args}}}]}}"#
    );
    let message = parse_within_twice(&frame);
    let Ok(ClientMessage::ModifyQuerySet { modifications, .. }) = message else { panic!("expected a ModifyQuerySet") };
    let [QuerySetModification::Remove { .. }, QuerySetModification::Add(query)] = &modifications[..] else {
        panic!("expected a Remove and an Add, got {} modifications", modifications.len())
    };
    assert_eq!(query.args.get(), args);
}

/// A field that is not arguments (an `Event`'s payload, an unknown field) is
/// refused by its length before it is read into a tree: 23 MB of it cost
/// gigabytes when it was read first.
#[test]
fn an_oversize_field_other_than_args_is_refused_by_its_length() {
    let payload = zeros_args(11_500_000);
    for frame in [
        format!(r#"{{"type":"Event","eventType":"x","event":{payload}}}"#),
        format!(
            r#"{{"type":"Mutation","requestId":0,"udfPath":"counters:increment","args":[{{}}],"extra":{payload}}}"#
        ),
    ] {
        let parsed = parse_within_twice(&frame);
        match parsed {
            Err(e) => {
                assert_eq!(e.code(), "WSMessageInvalid");
                assert!(e.to_string().contains(&format!("at most {}", wire::MAX_OTHER_FIELD_BYTES)), "{e}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}
