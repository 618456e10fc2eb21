//! The `reply` client: the AI-reply stream through an action. One member of
//! each channel calls `messages:streamReply` (100 tokens, `tokenIntervalMs`
//! 20: 50 tokens a second, as `stream` writes them through mutations); the
//! others watch `messages:list` (limit 5) and read the tokens as the
//! `stream` readers do (`conn::Observer::Stream`).
//!
//! Replies start on an open schedule, one every 100 × 20 ms = 2 s from the
//! writer's ready instant, never waiting for the last one's
//! `ActionResponse` (a backend slower than the schedule runs two replies at
//! once, as a channel does where a question comes while the last answer is
//! still streaming). Token k of a reply intended at t0 is intended at
//! t0 + k·20 ms and carries that instant as its text (`t<µs> `), so every
//! reader's sample counts from it: the action's own steps (reading the
//! context, starting the message, each commit and each wait) are part of
//! what a reader waits for. The `action` metric is the call's own round
//! trip, from t0 to the `ActionResponse`.

use syncspec_protocol::value::Value;

use crate::conn::{member_name, Call, Conn, Owner};
use crate::run::Run;
use crate::writer::TOKEN_GAP_US;

/// Tokens per reply.
pub(crate) const REPLY_TOKENS: u64 = 100;

/// The writer's replies, one every `REPLY_TOKENS` token gaps from `ready`,
/// while the whole reply fits before the run stops writing (so its
/// `ActionResponse` comes during the drain and its tokens are owed).
pub(crate) async fn write(run: &Run, owner: &Owner, conn: &Conn, ready: u64) {
    if owner.member != 0 {
        return; // readers only read
    }
    let clock = run.recorder.clock();
    let channel = Value::from(owner.room.name.as_str());
    let me = Value::from(member_name(&owner.room.name, owner.member));
    let mut start = ready;
    while run.may_write(start + (REPLY_TOKENS - 1) * TOKEN_GAP_US) {
        tokio::time::sleep_until(clock.instant(start).into()).await;
        let updates: Vec<u64> = (0..REPLY_TOKENS).map(|k| start + k * TOKEN_GAP_US).collect();
        let text: String = updates.iter().map(|stamp| format!("t{stamp} ")).collect();
        let args = Value::object([
            ("channel", channel.clone()),
            ("author", me.clone()),
            ("text", Value::from(text)),
            ("tokenIntervalMs", Value::Float64(TOKEN_GAP_US as f64 / 1000.0)),
        ]);
        if !conn.call(Call { stamp: start, function: "messages:streamReply", args, updates }) {
            return;
        }
        start += REPLY_TOKENS * TOKEN_GAP_US;
    }
}
