//! Category 11, Convex app patterns: actions (11.4 and 11.5).
//! `messages:streamReply`, the AI-reply pattern, runs outside any
//! transaction and calls mutations, each a commit of its own: a subscriber
//! is pushed each commit once and in order, and a failure part-way leaves
//! what the action committed, since an action is not a transaction. Actions
//! are called over the socket (`Action`, answered by `ActionResponse`) and
//! over HTTP (`POST /api/action`).
//!
//! Each case streams into a fresh channel and knows the text it asked for,
//! so it judges every pushed result itself. No replay checker runs here:
//! the oracle runs no actions, and an action's commits are not in the
//! history as mutations a client invoked. A backend without
//! `messages:streamReply` gets Unimplemented, not a failure.

use syncspec_protocol::client::{ActionOutcome, Client, MutationOutcome, View};
use syncspec_protocol::history::{History, RecordedModification};
use syncspec_protocol::json;
use syncspec_protocol::value::Value;
use syncspec_protocol::wire::http;
use syncspec_protocol::wire::QueryId;

use super::case;
use super::official::{call, function_error, success};
use crate::checkers::{field, order};
use crate::suite::{
    answered, connect, connect_many, missing_function, obj, quiesce, rows, text, transitions, wait_view, Case,
    CaseResult, Ctx, Judge,
};

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!(
            "11.4",
            "a streamed reply reaches a subscriber one commit at a time, in order",
            "each mutation an action calls commits once: every body a subscriber is pushed for the reply extends the one before (coalescing allowed, going back or doubling not), the last is the text, exactly one reply exists, and the ActionResponse names it and the message it answers",
            streamed_reply
        ),
        case!(
            "11.5",
            "a failed action keeps what it committed, over the socket and HTTP",
            "an action is not a transaction: streamReply told to fail after n tokens fails with UpstreamFailed and its message stays, still streaming, with exactly those n tokens; over POST /api/action a reply returns its result and a failure answers status error with the same code",
            failed_reply_keeps_commits
        ),
    ]
}

/// The action under test.
const REPLY: &str = "messages:streamReply";
/// The author of every reply, so a reply is told from the question.
const BOT: &str = "syncspec-bot";
/// 11.4's reply: seven tokens, split after each space.
const REPLY_TEXT: &str = "Streams arrive one token at a time";
/// How far apart 11.4's tokens are committed, so a subscriber can be pushed each.
const TOKEN_INTERVAL_MS: f64 = 30.0;
/// The reply 11.5 asks to fail part-way, and after how many tokens.
const FAILING_TEXT: &str = "alpha beta gamma delta epsilon";
const KEPT_TOKENS: usize = 2;
/// The reply streamed over HTTP.
const HTTP_TEXT: &str = "answered over http";

/// The bodies a reply to `text` may show, in order: empty (just started),
/// then the text up to each token's end (tokens split after each space).
fn token_prefixes(text: &str) -> Vec<&str> {
    let mut end = 0;
    std::iter::once("")
        .chain(text.split_inclusive(' ').map(|token| {
            end += token.len();
            &text[..end]
        }))
        .collect()
}

/// Calls `messages:streamReply` on `client`: its outcome, or `None` with the
/// reason recorded (no answer; Unimplemented when the backend has no such action).
async fn stream_reply(judge: &mut Judge, client: &Client, args: Value, what: &str) -> Option<ActionOutcome> {
    let r = client.action(REPLY, args).await;
    if !answered(judge, || what.to_owned(), &r) {
        return None;
    }
    match r {
        Ok(ActionOutcome::Failed { message, data }) if missing_function(&message, data.as_ref()) => {
            judge.unimplemented(format!("the backend has no {REPLY} ({message:?}): {what} was not made"));
            None
        }
        r => r.ok(),
    }
}

/// The arguments of a reply by `BOT` to `channel`.
fn reply_args(channel: &str, text: &str, extra: &[(&'static str, Value)]) -> Value {
    let mut args = obj([("channel", channel.into()), ("author", BOT.into()), ("text", text.into())]);
    if let Value::Object(fields) = &mut args {
        fields.extend(extra.iter().map(|(k, v)| ((*k).into(), v.clone())));
    }
    args
}

/// The replies (messages by `BOT`) among a `messages:list` result's rows.
fn replies(rows: &[Value]) -> Vec<&Value> {
    rows.iter().filter(|r| text(field(r, "author")) == BOT).collect()
}

/// Messages' bodies and streaming flags, for evidence.
fn bodies(messages: &[&Value]) -> String {
    let shown: Vec<String> = messages
        .iter()
        .map(|m| {
            format!(
                "{:?} (streaming {})",
                text(field(m, "body")),
                field(m, "streaming").map_or("?".into(), Value::to_string)
            )
        })
        .collect();
    format!("{} messages: {}", shown.len(), shown.join(", "))
}

/// Judges every `messages:list` result pushed to `client` for query `q`: at
/// most one reply, its body always one of `allowed` (a reply's token
/// prefixes), never shorter than the push before and never gone once shown,
/// and `streaming: false` only with the body `finished` (none: never).
/// Reports the first push that breaks each rule.
fn judge_pushes(
    judge: &mut Judge,
    history: &History,
    client: &Client,
    q: QueryId,
    allowed: &[&str],
    finished: Option<&str>,
) {
    let (mut doubled, mut wrong, mut back, mut gone, mut ended) = (false, false, false, false, false);
    let mut last: Option<String> = None;
    let mut pushes = 0;
    for (event, end, modifications) in transitions(history, client) {
        for m in modifications {
            let RecordedModification::Updated { query_id, value } = m else { continue };
            if *query_id != q {
                continue;
            }
            pushes += 1;
            let result = json::decode(value).unwrap_or(Value::Null);
            let all = match &result {
                Value::Array(rows) => rows.as_slice(),
                _ => &[],
            };
            let shown = replies(all);
            if shown.len() > 1 && !doubled {
                doubled = true;
                let bodies: Vec<&str> = shown.iter().map(|r| text(field(r, "body"))).collect();
                judge.fail_at(
                    format!(
                        "the push at ts {}: {} replies ({bodies:?}) where one action started one",
                        end.ts,
                        shown.len()
                    ),
                    vec![event],
                );
            }
            let Some(reply) = shown.first() else {
                if last.is_some() && !gone {
                    gone = true;
                    judge.fail_at(
                        format!("the push at ts {}: the reply, last shown as {last:?}, is gone", end.ts),
                        vec![event],
                    );
                }
                continue;
            };
            let body = text(field(reply, "body"));
            if !allowed.contains(&body) && !wrong {
                wrong = true;
                judge.fail_at(
                    format!(
                        "the push at ts {}: the reply's body {body:?} is not the text up to a token's end (one of {allowed:?}): a token was committed twice or out of order",
                        end.ts
                    ),
                    vec![event],
                );
            }
            if last.as_ref().is_some_and(|l| body.len() < l.len() || !body.starts_with(l.as_str())) && !back {
                back = true;
                judge.fail_at(
                    format!("the push at ts {}: the reply went from {last:?} back to {body:?}", end.ts),
                    vec![event],
                );
            }
            let streaming = field(reply, "streaming");
            let may_end = finished == Some(body);
            if streaming != Some(&Value::Boolean(true))
                && !(may_end && streaming == Some(&Value::Boolean(false)))
                && !ended
            {
                ended = true;
                judge.fail_at(
                    format!(
                        "the push at ts {}: the reply {body:?} has streaming {streaming:?}; it must be true until the whole text is in{}",
                        end.ts,
                        if finished.is_none() { " (and this reply never finishes)" } else { "" }
                    ),
                    vec![event],
                );
            }
            last = Some(body.to_owned());
        }
    }
    judge.expect(pushes > 0, || format!("no result of query {q} was ever pushed to client {}", client.id()));
}

async fn streamed_reply(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(c) = connect_many(&ctx, &mut judge, 2).await else { return judge.finish() };
    let (watcher, caller) = (&c[0], &c[1]);
    let channel = ctx.fresh("reply");
    let q = watcher.subscribe("messages:list", obj([("channel", channel.as_str().into())]));
    let question = "what streams?";
    let asked = caller
        .mutation(
            "messages:send",
            obj([("channel", channel.as_str().into()), ("author", "asker".into()), ("body", question.into())]),
        )
        .await;
    if !answered(&mut judge, || "the question".to_owned(), &asked) {
        return judge.finish();
    }
    let Ok(MutationOutcome::Ok { value: Value::String(question_id), .. }) = asked else {
        judge.fail(format!("messages:send of the question should return its id, got {asked:?}"));
        return judge.finish();
    };
    let args = reply_args(&channel, REPLY_TEXT, &[("tokenIntervalMs", Value::Float64(TOKEN_INTERVAL_MS))]);
    let Some(outcome) = stream_reply(&mut judge, caller, args, "the streamed reply").await else {
        return judge.finish();
    };
    let result = match outcome {
        ActionOutcome::Ok(result) => result,
        ActionOutcome::Failed { message, data } => {
            judge.fail(format!("{REPLY} failed: {message} (errorData {data:?})"));
            return judge.finish();
        }
    };
    let tokens = token_prefixes(REPLY_TEXT).len() - 1;
    let reply_id = field(&result, "id").and_then(Value::as_str).map(str::to_owned);
    judge.expect(reply_id.is_some(), || format!("the ActionResponse should name the reply's id: {result}"));
    judge.expect(field(&result, "inReplyTo") == Some(&Value::from(question_id.as_str())), || {
        format!("the reply answers the channel's latest message {question_id:?}, but the ActionResponse says {result}")
    });
    judge.expect(field(&result, "tokens") == Some(&Value::Float64(tokens as f64)), || {
        format!("the text has {tokens} tokens, but the ActionResponse says {result}")
    });
    let finished = |v: &View| replies(rows(v, q)).iter().any(|r| field(r, "streaming") == Some(&Value::Boolean(false)));
    if wait_view(&mut judge, watcher, "the finished reply", finished).await.is_some() {
        quiesce().await;
        let view = watcher.view();
        let all = rows(&view, q);
        let shown = replies(all);
        judge.expect(shown.len() == 1, || {
            format!("once the action finished the channel should hold one reply, not {}", bodies(&shown))
        });
        if let [reply] = shown[..] {
            judge.expect(text(field(reply, "body")) == REPLY_TEXT, || {
                format!("the finished reply should read {REPLY_TEXT:?}: {reply}")
            });
            judge.expect(field(reply, "_id").and_then(Value::as_str) == reply_id.as_deref(), || {
                format!("the ActionResponse named {reply_id:?}, but the reply is {reply}")
            });
        }
        judge.expect(
            all.first().is_some_and(|r| {
                field(r, "_id") == Some(&Value::from(question_id.as_str())) && text(field(r, "body")) == question
            }),
            || format!("the question should stay first, unchanged: {all:?}"),
        );
    }
    let h = ctx.history();
    judge_pushes(&mut judge, &h, watcher, q, &token_prefixes(REPLY_TEXT), Some(REPLY_TEXT));
    judge.verdict(order::version_chain(&h));
    judge.finish()
}

/// Expects `rows` (a channel that one failed reply wrote) to hold that
/// reply alone, streaming, with exactly `kept` as its body.
fn check_kept(judge: &mut Judge, what: &str, rows: &[Value], kept: &str) {
    match rows {
        [] => judge.fail(format!(
            "{what}: the channel is empty; what the action committed before it failed (its start and {kept:?}) was undone, as if an action were a transaction"
        )),
        [reply] => judge.expect(
            text(field(reply, "body")) == kept && field(reply, "streaming") == Some(&Value::Boolean(true)),
            || format!("{what}: the reply should stay as committed, body {kept:?} and streaming true: {reply}"),
        ),
        more => judge.fail(format!(
            "{what}: one failed action started one reply, but the channel holds {}",
            bodies(&more.iter().collect::<Vec<_>>())
        )),
    }
}

async fn failed_reply_keeps_commits(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(c) = connect_many(&ctx, &mut judge, 2).await else { return judge.finish() };
    let (watcher, caller) = (&c[0], &c[1]);
    let channel = ctx.fresh("failing-reply");
    let q = watcher.subscribe("messages:list", obj([("channel", channel.as_str().into())]));
    let args = reply_args(
        &channel,
        FAILING_TEXT,
        &[("tokenIntervalMs", Value::Float64(20.0)), ("failAfterTokens", Value::Float64(KEPT_TOKENS as f64))],
    );
    let what = format!("a reply told to fail after {KEPT_TOKENS} tokens");
    let Some(outcome) = stream_reply(&mut judge, caller, args, &what).await else { return judge.finish() };
    match &outcome {
        ActionOutcome::Ok(value) => judge.fail(format!("{what} succeeded with {value}")),
        failed => judge.expect(failed.error_code() == Some("UpstreamFailed"), || {
            format!("{what} should fail with errorData.code UpstreamFailed, got {failed:?}")
        }),
    }
    let prefixes = token_prefixes(FAILING_TEXT);
    let kept = prefixes[KEPT_TOKENS];
    // A client that subscribes once the failure is answered reads what stayed.
    if let Some(late) = connect(&ctx, &mut judge).await {
        let lq = late.subscribe("messages:list", obj([("channel", channel.as_str().into())]));
        let read = wait_view(&mut judge, &late, "the channel after the failure", |v| v.results.contains_key(&lq)).await;
        if let Some(view) = read {
            check_kept(&mut judge, "a client subscribing after the failure", rows(&view, lq), kept);
        }
    }
    quiesce().await;
    check_kept(&mut judge, "the subscriber's last view", rows(&watcher.view(), q), kept);
    let h = ctx.history();
    judge_pushes(&mut judge, &h, watcher, q, &prefixes[..=KEPT_TOKENS], None);
    judge.verdict(order::version_chain(&h));
    http_replies(&ctx, &mut judge).await;
    judge.finish()
}

/// `messages:list {channel}` over HTTP: its rows, or `None` with the
/// reason recorded (no answer, a failure, or a value that is not a list).
async fn http_list(ctx: &Ctx, judge: &mut Judge, channel: &str, what: &str) -> Option<Vec<Value>> {
    let list = http::write_request("messages:list", &obj([("channel", channel.into())]));
    match success(judge, what, &call(ctx, "/api/query", list, None).await)? {
        Value::Array(rows) => Some(rows),
        other => {
            judge.fail(format!("{what}: expected the channel's messages, got {other}"));
            None
        }
    }
}

/// `POST /api/action`: a reply returns its result and reads back over HTTP;
/// a reply told to fail answers status error with `UpstreamFailed` and its
/// first token stays.
async fn http_replies(ctx: &Ctx, judge: &mut Judge) {
    let channel = ctx.fresh("http-reply");
    let ask = obj([("channel", channel.as_str().into()), ("author", "asker".into()), ("body", "over http?".into())]);
    let asked = call(ctx, "/api/mutation", http::write_request("messages:send", &ask), None).await;
    let Some(question) = success(judge, "messages:send over HTTP", &asked) else { return };
    let args = reply_args(&channel, HTTP_TEXT, &[]);
    let answer = call(ctx, "/api/action", http::write_request(REPLY, &args), None).await;
    let Some(result) = success(judge, &format!("{REPLY} over POST /api/action"), &answer) else { return };
    let tokens = token_prefixes(HTTP_TEXT).len() - 1;
    judge.expect(
        field(&result, "inReplyTo") == Some(&question)
            && field(&result, "tokens") == Some(&Value::Float64(tokens as f64)),
        || format!("over HTTP the reply answers {question} with {tokens} tokens, but the result is {result}"),
    );
    if let Some(listed) = http_list(ctx, judge, &channel, "messages:list over HTTP after the reply").await {
        let done = listed.last().is_some_and(|r| {
            field(r, "_id") == field(&result, "id")
                && text(field(r, "body")) == HTTP_TEXT
                && field(r, "streaming") == Some(&Value::Boolean(false))
        });
        judge.expect(listed.len() == 2 && done, || {
            format!(
                "after the HTTP reply the channel should hold the question and the finished reply {result}, not {}",
                bodies(&listed.iter().collect::<Vec<_>>())
            )
        });
    }

    let channel = ctx.fresh("http-failing-reply");
    let args = reply_args(&channel, FAILING_TEXT, &[("failAfterTokens", Value::Float64(1.0))]);
    let answer = call(ctx, "/api/action", http::write_request(REPLY, &args), None).await;
    function_error(judge, "a reply told to fail after 1 token, over POST /api/action", &answer, Some("UpstreamFailed"));
    let what = "an HTTP query after the failed HTTP reply";
    if let Some(listed) = http_list(ctx, judge, &channel, what).await {
        check_kept(judge, what, &listed, token_prefixes(FAILING_TEXT)[1]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_may_show_its_text_up_to_each_token() {
        assert_eq!(token_prefixes("a b c"), ["", "a ", "a b ", "a b c"]);
        assert_eq!(token_prefixes("ends with space "), ["", "ends ", "ends with ", "ends with space "]);
        assert_eq!(token_prefixes(""), [""]);
    }
}
