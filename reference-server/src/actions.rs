//! What the catalogue's actions do: step by step, outside any transaction.
//!
//! An action is a small state machine. The core asks it for its next step
//! (run a query at the head, run a mutation through the usual execute and
//! commit path, wait a while, or finish) and feeds back each step's outcome,
//! so every query and mutation an action calls is a transaction of its own,
//! and whatever an action committed stays committed if it fails later, as
//! in Convex. Like functions, actions read no clock: a wait is a step the
//! core times with the clock it is given.

use syncspec_protocol::catalogue::{ErrorCode, Function};
use syncspec_protocol::value::{Object, Value};

use crate::core::Failure;
use crate::functions::UserError;

/// The longest wait between two tokens of `messages:streamReply`.
pub const MAX_TOKEN_INTERVAL_MS: f64 = 10_000.0;
/// The most tokens one `messages:streamReply` writes.
pub const MAX_REPLY_TOKENS: usize = 4096;

/// What an action asks for next.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Run a query at the latest snapshot and report its result.
    Query(Function, Object),
    /// Run a mutation (its own transaction, OCC and all) and report its result.
    Mutation(Function, Object),
    /// Wait until this many nanoseconds after the action began, then ask
    /// again (at once if that time has passed). Offsets from the start, not
    /// from the last step, keep a paced stream on its schedule however long
    /// each commit takes, as a generator producing at a steady rate would.
    Wait(u64),
    /// The action's result, or its failure.
    Done(Result<Value, Failure>),
}

/// One running action.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Action {
    stage: Stage,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Stage {
    /// `messages:streamReply`: read the message it replies to, start a
    /// streaming message, append each token, finish.
    Reply(Reply),
    /// Finished; asking again is a bug in the caller, answered with an error.
    Over,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Reply {
    channel: Value,
    author: Value,
    tokens: Vec<String>,
    interval_ns: u64,
    fail_after: Option<usize>,
    /// The message replied to (the channel's latest when the action began).
    in_reply_to: Value,
    /// The streaming message, once started.
    id: Option<Value>,
    /// Tokens committed so far.
    sent: usize,
    /// Whether the wait before the next token is over.
    waited: bool,
    phase: Phase,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Phase {
    ReadContext,
    Start,
    Tokens,
    Finish,
}

impl Action {
    /// Starts `function` (an action of the catalogue) with validated `args`,
    /// or refuses arguments its validator cannot express.
    pub fn start(function: Function, args: &Object) -> Result<Action, UserError> {
        match function {
            Function::MessagesStreamReply => {
                let text = args.get("text").and_then(Value::as_str).unwrap_or("");
                let tokens: Vec<String> = text.split_inclusive(' ').map(str::to_owned).collect();
                if tokens.len() > MAX_REPLY_TOKENS {
                    return Err(invalid(
                        "text",
                        format!("a reply of {} tokens is over the {MAX_REPLY_TOKENS} limit", tokens.len()),
                    ));
                }
                let interval = match args.get("tokenIntervalMs") {
                    None => 0.0,
                    Some(Value::Float64(ms)) if (0.0..=MAX_TOKEN_INTERVAL_MS).contains(ms) => *ms,
                    Some(other) => {
                        return Err(invalid(
                            "tokenIntervalMs",
                            format!("expected milliseconds from 0 to {MAX_TOKEN_INTERVAL_MS}, got {other}"),
                        ))
                    }
                };
                let fail_after = match args.get("failAfterTokens") {
                    None => None,
                    Some(Value::Float64(n)) if *n >= 0.0 && n.fract() == 0.0 && *n < 1e9 => Some(*n as usize),
                    Some(other) => {
                        return Err(invalid("failAfterTokens", format!("expected a whole number, got {other}")))
                    }
                };
                Ok(Action {
                    stage: Stage::Reply(Reply {
                        channel: args.get("channel").cloned().unwrap_or(Value::Null),
                        author: args.get("author").cloned().unwrap_or(Value::Null),
                        tokens,
                        interval_ns: (interval * 1e6) as u64,
                        fail_after,
                        in_reply_to: Value::Null,
                        id: None,
                        sent: 0,
                        waited: false,
                        phase: Phase::ReadContext,
                    }),
                })
            }
            other => Err(UserError::new(
                ErrorCode::InvalidArguments,
                format!("{} is not an action of the catalogue", other.path()),
            )),
        }
    }

    /// The next step, given the outcome of the last one (`None` at the start
    /// and after a wait). A failed query or mutation fails the action.
    pub fn next(&mut self, last: Option<Result<Value, Failure>>) -> Step {
        let last = match last.transpose() {
            Ok(value) => value,
            Err(error) => return self.finish(Err(error)),
        };
        let Stage::Reply(reply) = &mut self.stage else {
            return Step::Done(Err(UserError::new(ErrorCode::InvalidArguments, "the action already finished").into()));
        };
        match reply.phase {
            Phase::ReadContext => {
                reply.phase = Phase::Start;
                let args = object([("channel", reply.channel.clone()), ("limit", Value::Float64(1.0))]);
                Step::Query(Function::MessagesList, args)
            }
            Phase::Start => {
                if let Some(Value::Array(latest)) = &last {
                    if let Some(id) = latest.last().and_then(|m| m.get("_id")) {
                        reply.in_reply_to = id.clone();
                    }
                }
                reply.phase = Phase::Tokens;
                let args = object([("channel", reply.channel.clone()), ("author", reply.author.clone())]);
                Step::Mutation(Function::MessagesStartStream, args)
            }
            Phase::Tokens => {
                match (&reply.id, last) {
                    (None, Some(id)) => reply.id = Some(id),
                    (Some(_), Some(_)) => {
                        reply.sent += 1;
                        reply.waited = false;
                    }
                    (_, None) => {}
                }
                if reply.fail_after.is_some_and(|n| reply.sent >= n) {
                    let sent = reply.sent;
                    let message = format!("the reply's source failed after {sent} tokens");
                    let error =
                        UserError::new(ErrorCode::UpstreamFailed, message).with("tokens", Value::Float64(sent as f64));
                    return self.finish(Err(error.into()));
                }
                if reply.sent == reply.tokens.len() {
                    reply.phase = Phase::Finish;
                    let id = reply.id.clone().unwrap_or(Value::Null);
                    return Step::Mutation(Function::MessagesFinishStream, object([("id", id)]));
                }
                if reply.sent > 0 && reply.interval_ns > 0 && !reply.waited {
                    reply.waited = true;
                    return Step::Wait(reply.interval_ns.saturating_mul(reply.sent as u64));
                }
                let id = reply.id.clone().unwrap_or(Value::Null);
                let token = Value::from(reply.tokens[reply.sent].as_str());
                Step::Mutation(Function::MessagesAppendToken, object([("id", id), ("token", token)]))
            }
            Phase::Finish => {
                let result = object([
                    ("id", reply.id.clone().unwrap_or(Value::Null)),
                    ("inReplyTo", reply.in_reply_to.clone()),
                    ("tokens", Value::Float64(reply.tokens.len() as f64)),
                ]);
                self.finish(Ok(Value::Object(result)))
            }
        }
    }

    fn finish(&mut self, outcome: Result<Value, Failure>) -> Step {
        self.stage = Stage::Over;
        Step::Done(outcome)
    }
}

fn object<const N: usize>(fields: [(&'static str, Value); N]) -> Object {
    let mut object = Object::new();
    for (k, v) in fields {
        object.insert(k.into(), v);
    }
    object
}

fn invalid(field: &'static str, message: String) -> UserError {
    UserError::new(ErrorCode::InvalidArguments, message).with("field", Value::from(field))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(text: &str, extra: &[(&'static str, Value)]) -> Action {
        let mut args = object([("channel", "c".into()), ("author", "bot".into()), ("text", text.into())]);
        for (k, v) in extra {
            args.insert((*k).into(), v.clone());
        }
        Action::start(Function::MessagesStreamReply, &args).unwrap()
    }

    /// Drives an action, answering each mutation with `answer` (None: a null result).
    fn drive(mut action: Action, answer: impl Fn(&Function, &Object) -> Value) -> (Vec<Step>, Result<Value, Failure>) {
        let mut steps = Vec::new();
        let mut last = None;
        loop {
            let step = action.next(last.take());
            match &step {
                Step::Query(..) => last = Some(Ok(Value::Array(vec![Value::object([("_id", Value::from("m1"))])]))),
                Step::Mutation(f, args) => last = Some(Ok(answer(f, args))),
                Step::Wait(_) => {}
                Step::Done(outcome) => return (steps, outcome.clone()),
            }
            steps.push(step);
        }
    }

    fn id_for_start(f: &Function, _: &Object) -> Value {
        if *f == Function::MessagesStartStream {
            Value::from("m2")
        } else {
            Value::Null
        }
    }

    #[test]
    fn a_reply_reads_its_context_then_streams_each_token_then_finishes() {
        let (steps, outcome) = drive(reply("Hello brave world", &[]), id_for_start);
        let tokens: Vec<&str> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Mutation(Function::MessagesAppendToken, args) => args.get("token").and_then(Value::as_str),
                _ => None,
            })
            .collect();
        assert_eq!(tokens, ["Hello ", "brave ", "world"]);
        assert!(matches!(&steps[0], Step::Query(Function::MessagesList, _)));
        assert!(matches!(&steps[1], Step::Mutation(Function::MessagesStartStream, _)));
        assert!(matches!(steps.last(), Some(Step::Mutation(Function::MessagesFinishStream, _))));
        let result = outcome.unwrap();
        assert_eq!(result.get("id"), Some(&Value::from("m2")));
        assert_eq!(result.get("inReplyTo"), Some(&Value::from("m1")));
    }

    #[test]
    fn tokens_are_paced_by_waits_between_them() {
        let (steps, _) = drive(reply("a b c", &[("tokenIntervalMs", Value::Float64(50.0))]), id_for_start);
        let waits: Vec<u64> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Wait(ns) => Some(*ns),
                _ => None,
            })
            .collect();
        assert_eq!(waits, [50_000_000, 100_000_000], "token k waits for k intervals after the start: {steps:?}");
    }

    #[test]
    fn a_failure_part_way_keeps_what_it_committed_and_stops() {
        let (steps, outcome) = drive(reply("a b c d", &[("failAfterTokens", Value::Float64(2.0))]), id_for_start);
        let appended = steps.iter().filter(|s| matches!(s, Step::Mutation(Function::MessagesAppendToken, _))).count();
        assert_eq!(appended, 2);
        assert!(!steps.iter().any(|s| matches!(s, Step::Mutation(Function::MessagesFinishStream, _))));
        let data = outcome.unwrap_err().data.unwrap();
        assert_eq!(data.get("code"), Some(&Value::from("UpstreamFailed")));
    }

    #[test]
    fn a_failed_mutation_fails_the_action() {
        let mut action = reply("a b", &[]);
        action.next(None);
        action.next(Some(Ok(Value::Array(vec![]))));
        let step = action.next(Some(Err(UserError::new(ErrorCode::TooLarge, "too big").into())));
        assert!(matches!(step, Step::Done(Err(e)) if e.message == "too big"));
    }

    #[test]
    fn bad_pacing_arguments_are_refused() {
        for (field, value) in [("tokenIntervalMs", -1.0), ("tokenIntervalMs", 1e9), ("failAfterTokens", 1.5)] {
            let mut args = object([("channel", "c".into()), ("author", "a".into()), ("text", "t".into())]);
            args.insert(field.into(), Value::Float64(value));
            let error = Action::start(Function::MessagesStreamReply, &args).unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidArguments, "{field} = {value}");
        }
    }
}
