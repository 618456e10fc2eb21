//! The negative control: the `frames` body with a bug planted in it, which
//! the fuzzers must find.
//!
//! The bug is an unchecked copy, as a handler keeping function paths in
//! fixed buffers might make: the path of a `Mutation` goes into 32 bytes,
//! and a longer one (which the protocol allows, up to 64 bytes a
//! component) panics. Random bytes almost never make a frame that parses
//! as a `Mutation`, and no corpus path is that long: the fuzzers get there
//! by lengthening a path inside a frame that still parses (libFuzzer's
//! inserted and copied runs of bytes, the stable mutator's repetitions and
//! splices). CI runs the libFuzzer target and requires the crash.

use syncspec_protocol::convex_sync_types::ClientMessage;
use syncspec_protocol::wire;

/// The planted buffer's size.
const PATH_BUFFER: usize = 32;

/// `frames::run`, then the planted bug.
pub fn frames(data: &[u8]) {
    super::frames::run(data);
    let text = String::from_utf8_lossy(data);
    if let Ok(ClientMessage::Mutation { udf_path, .. }) = wire::parse_client_message(&text) {
        let path = String::from(udf_path);
        let mut buffer = [0u8; PATH_BUFFER];
        buffer[..path.len()].copy_from_slice(path.as_bytes());
        std::hint::black_box(buffer);
    }
}
