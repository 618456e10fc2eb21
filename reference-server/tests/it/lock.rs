//! What the core does under the server's lock costs what a call is, not
//! what its arguments weigh: a frame's arguments are decoded and validated
//! by `Incoming::new` in the shell, so a mutation of megabytes stalls only
//! its own socket while it is read, never every other session.

use allocation_counter::measure;
use syncspec_protocol::wire;
use syncspec_server::core::{Config, Core, Incoming, Input};

const CONNECT: &str = r#"{"type":"Connect","sessionId":"00000000-0000-4000-8000-00000000f00d","connectionCount":0,"lastCloseReason":"InitialConnect"}"#;

/// A mutation with a `body` of `n` bytes.
fn mutation(n: usize) -> String {
    format!(
        r#"{{"type":"Mutation","requestId":1,"udfPath":"messages:send","args":[{{"channel":"c","author":"a","body":"{}"}}]}}"#,
        "x".repeat(n)
    )
}

#[test]
fn a_core_step_for_a_mutation_of_megabytes_allocates_no_more_than_for_a_small_one() {
    let step_cost = |body_bytes: usize| {
        let mut core = Core::new(Config::standard());
        let mut out = Vec::new();
        core.handle(1, Input::Open { conn: 1 }, &mut out);
        let connect = wire::parse_client_message(CONNECT).unwrap();
        core.handle(2, Input::Message { conn: 1, message: connect.into() }, &mut out);
        out.clear();
        // Read and resolved where the shell does it, outside the step.
        let incoming = Incoming::new(wire::parse_client_message(&mutation(body_bytes)).unwrap());
        let step = measure(|| core.handle(3, Input::Message { conn: 1, message: incoming }, &mut out));
        assert_eq!(out.len(), 1, "the step dispatched the mutation: {out:?}");
        step.bytes_total
    };
    let small = step_cost(10);
    let large = step_cost(4 * 1024 * 1024);
    assert!(large < small + 64 * 1024, "4 MiB of arguments cost the step {large} bytes, 10 bytes {small}");
}
