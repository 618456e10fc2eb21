//! The `frames` target: any bytes as a frame, both directions, and as an
//! HTTP call's body.
//!
//! A client frame goes through `wire::parse_client_message`, and the
//! arguments of what it accepts through `wire::decode_args`, as the server
//! reads them; the same text goes through both server-frame readers
//! (`wire::peek` and `wire::parse_server_message`), and the bytes through
//! the HTTP body readers. Properties: nothing panics; a refusal has one of
//! the protocol's codes and says something; reading a client frame holds
//! memory in proportion to the frame. Bytes that are not UTF-8 are read as
//! the lossy text, which is valid UTF-8 as a WebSocket text frame must be.
//! What the server then does with a frame is the `core` target's.

use syncspec_protocol::convex_sync_types::{ClientMessage, QuerySetModification};
use syncspec_protocol::value::Value;
use syncspec_protocol::wire;

/// The most memory reading a client frame may hold at once: 160 bytes per
/// byte of text, plus a constant for what nesting costs before `serde`'s
/// recursion limit (128 levels) stops it. Arguments stay text, but the
/// rest of a frame is read as `serde_json` trees, which hold up to about
/// 130 bytes per byte (an `Event` payload of `[[0],[0],…]`, a
/// `ModifyQuerySet` of many small modifications); the bound catches what
/// grows faster than the frame, not that constant.
pub fn memory_bound(text_len: usize) -> u64 {
    160 * text_len as u64 + 256 * 1024
}

/// Runs every frame reader over `data`; panics on a broken property.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    client(&text);
    server(&text);
    http(data, &text);
}

fn client(text: &str) {
    let mut parsed = None;
    let held = allocation_counter::measure(|| parsed = Some(wire::parse_client_message(text))).bytes_max;
    assert!(
        held <= memory_bound(text.len()),
        "{held} bytes held at peak to read a {}-byte frame, over {}",
        text.len(),
        memory_bound(text.len())
    );
    match parsed.expect("measured") {
        Ok(ClientMessage::Mutation { args, .. } | ClientMessage::Action { args, .. }) => arguments(args.get()),
        Ok(ClientMessage::ModifyQuerySet { modifications, .. }) => {
            for modification in modifications {
                if let QuerySetModification::Add(query) = modification {
                    arguments(query.args.get());
                }
            }
        }
        Ok(_) => {}
        Err(e) => {
            assert!(matches!(e.code(), "WSMessageInvalidJson" | "WSMessageInvalid"), "unknown code {}", e.code());
            assert!(!e.to_string().is_empty(), "a refusal that says nothing");
        }
    }
}

/// A frame's arguments, as the core reads them: an accepted one is an
/// object, a refused one says why.
fn arguments(raw: &str) {
    match wire::decode_args(raw) {
        Ok(args) => assert!(matches!(args, Value::Object(_)), "arguments accepted as {}", args.type_name()),
        Err(e) => assert!(!e.to_string().is_empty(), "a refusal that says nothing"),
    }
}

fn server(text: &str) {
    if let Ok(frame) = wire::peek(text) {
        let _ = frame.commit_ts();
        for version in [&frame.start_version, &frame.end_version].into_iter().flatten() {
            let _ = version.version();
        }
        let query_errors = frame.modifications.iter().filter_map(|m| m.error_data);
        for data in frame.error_data.into_iter().chain(query_errors) {
            let _ = wire::error_code(data);
        }
    }
    if let Err(e) = wire::parse_server_message(text) {
        assert!(!e.to_string().is_empty(), "a refusal that says nothing");
    }
    let _ = wire::decode_ts(text);
}

fn http(data: &[u8], text: &str) {
    if let Err(e) = wire::http::parse_request(data) {
        let _ = e.code();
        assert!(!e.to_string().is_empty(), "a refusal that says nothing");
    }
    if let Err(e) = wire::http::parse_response(text) {
        assert!(!e.to_string().is_empty(), "a refusal that says nothing");
    }
}
