//! Actions in the core: `messages:streamReply` over the socket and HTTP.
//! Each of an action's mutations commits once, in order, and subscribers
//! see every one; a failure part-way leaves what it committed; waits
//! between tokens are timers the shell wakes the core for.

use syncspec_protocol::value::Value;

use super::tests::{args, Driver};
use super::*;

fn reply_args(text: &str, extra: &[(&'static str, Value)]) -> Value {
    let mut a = args([("channel", "c".into()), ("author", "bot".into()), ("text", text.into())]);
    if let Value::Object(o) = &mut a {
        for (k, v) in extra {
            o.insert((*k).into(), v.clone());
        }
    }
    a
}

fn action(d: &mut Driver, conn: ConnId, request_id: u32, path: &str, args: &Value) {
    let text = format!(
        r#"{{"type":"Action","requestId":{request_id},"udfPath":"{path}","args":[{}]}}"#,
        syncspec_protocol::json::encode(args)
    );
    d.send_text(conn, &text);
}

fn action_outcome(d: &Driver, conn: ConnId, request_id: u32) -> Option<Result<Value, Failure>> {
    d.frames.get(&conn)?.iter().find_map(|f| match f {
        Frame::ActionResponse { request_id: r, outcome } if *r == request_id => Some(outcome.clone()),
        _ => None,
    })
}

/// Every body of the channel's last message that connection `conn` was pushed, in order.
fn bodies_seen(d: &Driver, conn: ConnId) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for t in d.transitions(conn) {
        for m in &t.modifications {
            let Modification::Updated { value, .. } = m else { continue };
            let Ok(Value::Array(rows)) = syncspec_protocol::json::decode_str(value) else { continue };
            if let Some(body) = rows.last().and_then(|r| r.get("body")).and_then(Value::as_str) {
                if seen.last().map(String::as_str) != Some(body) {
                    seen.push(body.to_owned());
                }
            }
        }
    }
    seen
}

#[test]
fn a_streamed_reply_commits_each_token_once_in_order_and_subscribers_see_each() {
    let mut d = Driver::with_config(true, Config::standard());
    d.connect(1);
    d.mutate(1, 0, "messages:send", args([("channel", "c".into()), ("author", "ann".into()), ("body", "hi".into())]));
    d.connect(2);
    d.subscribe(2, 0, 0, "messages:list", args([("channel", "c".into()), ("limit", 1.0.into())]));
    action(&mut d, 1, 1, "messages:streamReply", &reply_args("one two three", &[]));
    let result = action_outcome(&d, 1, 1).expect("answered").expect("succeeded");
    let asked = d.responses(1)[0].1.clone().unwrap().0;
    assert_eq!(result.get("inReplyTo"), Some(&asked), "it read the message it replies to");
    assert_eq!(bodies_seen(&d, 2), ["hi", "", "one ", "one two ", "one two three"]);
    let commits = d.core.stats().commits;
    assert_eq!(commits, 1 + 1 + 3 + 1, "send, start, three tokens, finish: each once");
}

#[test]
fn a_failed_action_leaves_what_it_committed() {
    let mut d = Driver::with_config(true, Config::standard());
    d.connect(1);
    action(&mut d, 1, 0, "messages:streamReply", &reply_args("a b c d", &[("failAfterTokens", Value::Float64(2.0))]));
    let failure = action_outcome(&d, 1, 0).expect("answered").expect_err("failed");
    let data = failure.data.expect("a user error");
    assert_eq!(data.get("code"), Some(&Value::from("UpstreamFailed")));
    d.subscribe(1, 0, 0, "messages:list", args([("channel", "c".into())]));
    let rows = d.latest(1, 0).unwrap();
    let Value::Array(rows) = rows else { panic!() };
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get("body"), Some(&Value::from("a b ")));
    assert_eq!(rows[0].get("streaming"), Some(&Value::Boolean(true)), "never finished");
}

#[test]
fn waits_between_tokens_are_timers_on_the_given_clock() {
    let mut d = Driver::with_config(true, Config::standard());
    d.connect(1);
    let start = d.now();
    action(&mut d, 1, 0, "messages:streamReply", &reply_args("a b c", &[("tokenIntervalMs", Value::Float64(40.0))]));
    assert!(action_outcome(&d, 1, 0).is_none(), "waiting for the second token's time");
    d.wake_all();
    assert!(action_outcome(&d, 1, 0).expect("answered").is_ok());
    assert!(d.now() - start >= 80_000_000, "two waits of 40 ms passed on the core's clock");
}

#[test]
fn actions_run_over_http_and_refuse_what_is_not_an_action() {
    let mut d = Driver::with_config(true, Config::standard());
    d.connect(1);
    d.call(1, Some(Kind::Action), "messages:streamReply", reply_args("x y", &[]), None);
    let result = d.replies[&1].clone().expect("succeeded");
    assert_eq!(result.get("tokens"), Some(&Value::Float64(2.0)));
    d.call(2, Some(Kind::Action), "messages:send", args([]), None);
    assert!(d.replies[&2].as_ref().unwrap_err().message.contains("no action"));
    action(&mut d, 1, 7, "counters:increment", &args([("name", "c".into())]));
    let failure = action_outcome(&d, 1, 7).expect("answered").expect_err("not an action");
    assert!(failure.message.contains("no action"), "{}", failure.message);
    d.call(3, None, "messages:streamReply", reply_args("z", &[("tokenIntervalMs", Value::Float64(-1.0))]), None);
    assert!(d.replies[&3].as_ref().unwrap_err().data.is_some(), "a bad interval is a user error");
}

fn with_fault(fault: Fault) -> Driver {
    let mut config = Config::standard();
    config.faults.insert(fault);
    Driver::with_config(true, config)
}

#[test]
fn action_mutation_twice_fault_doubles_each_token() {
    let mut d = with_fault(Fault::ActionMutationTwice);
    d.connect(1);
    d.subscribe(1, 0, 0, "messages:list", args([("channel", "c".into())]));
    action(&mut d, 1, 0, "messages:streamReply", &reply_args("a b", &[]));
    let Some(Value::Array(rows)) = d.latest(1, 0) else { panic!() };
    assert_eq!(rows.len(), 2, "two streams started");
    assert!(rows.iter().any(|r| r.get("body") == Some(&Value::from("a a bb"))), "{rows:?}");
}

#[test]
fn action_rollback_fault_undoes_a_failed_reply() {
    let mut d = with_fault(Fault::ActionRollback);
    d.connect(1);
    d.subscribe(1, 0, 0, "messages:list", args([("channel", "c".into())]));
    action(&mut d, 1, 0, "messages:streamReply", &reply_args("a b c", &[("failAfterTokens", Value::Float64(2.0))]));
    assert!(action_outcome(&d, 1, 0).expect("answered").is_err());
    assert_eq!(d.latest(1, 0), Some(Value::Array(vec![])), "the half-streamed reply vanished");
    assert_eq!(bodies_seen(&d, 1)[..2], ["", "a "], "subscribers saw it stream before it vanished");
    // A successful action keeps everything even under the fault.
    action(&mut d, 1, 1, "messages:streamReply", &reply_args("x", &[]));
    let Some(Value::Array(rows)) = d.latest(1, 0) else { panic!() };
    assert_eq!(rows.len(), 1);
}
