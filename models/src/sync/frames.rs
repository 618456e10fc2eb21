//! The frames the model's clients write, one writer per kind of step, all
//! through `wire`'s client writers (a page's own is `pages`'; the
//! scheduling steps' arguments are `schedule`'s), and the
//! `type` of any frame, for traces. When a client writes them is
//! `sync.rs`'s business.

use syncspec_protocol::value::Value;
use syncspec_protocol::wire::{self, QuerySetChange};

use super::{pages, schedule, Step, BANK, COUNTER};

/// The `type` of a frame, for traces.
pub(super) fn frame_type(frame: &str) -> &'static str {
    const TYPES: &[&str] =
        &["Connect", "ModifyQuerySet", "Mutation", "Transition", "MutationResponse", "FatalError", "Ping"];
    TYPES
        .iter()
        .copied()
        .filter(|t| frame.contains(&format!(r#""type":"{t}""#)))
        .max_by_key(|t| t.len())
        .unwrap_or("a frame")
}

pub(super) fn connect_frame(session: u128, count: u32) -> String {
    let id = format!("{:08x}-0000-4000-8000-{:012x}", (session >> 48) as u32, session & 0xffff_ffff_ffff);
    let reason = if count == 0 { "InitialConnect" } else { "SocketLost" };
    wire::write_connect(&wire::Connect {
        session_id: &id,
        connection_count: count,
        last_close_reason: reason,
        max_observed_timestamp: None,
        client_ts: None,
    })
}

fn counter_args() -> Value {
    Value::object([("name", Value::from(COUNTER))])
}

pub(super) fn subscribe_frame(base: u32, query_id: u32) -> String {
    let args = counter_args();
    let add = QuerySetChange::Add { query_id, udf_path: "counters:get", args: &args, journal: None };
    wire::write_modify_query_set(base, base + 1, &[add])
}

pub(super) fn resubscribe_frame(base: u32, old: u32, new: u32) -> String {
    let args = counter_args();
    let changes = [
        QuerySetChange::Remove { query_id: old },
        QuerySetChange::Add { query_id: new, udf_path: "counters:get", args: &args, journal: None },
    ];
    wire::write_modify_query_set(base, base + 1, &changes)
}

pub(super) fn watch_bank_frame(base: u32) -> String {
    let args = Value::object([("bank", Value::from(BANK))]);
    let add = QuerySetChange::Add { query_id: 1, udf_path: "accounts:balances", args: &args, journal: None };
    wire::write_modify_query_set(base, base + 1, &[add])
}

/// The `Mutation` frame for a mutating step; `seeded` names the messages `Remove` may remove.
pub(super) fn mutation_frame(request_id: u32, step: Step, session: u128, seeded: &[String]) -> String {
    let (path, args) = match step {
        Step::Transfer(from, to, amount) => (
            "accounts:transfer",
            Value::object([
                ("bank", Value::from(BANK)),
                ("from", Value::Float64(from.into())),
                ("to", Value::Float64(to.into())),
                ("amount", Value::Int64(amount)),
            ]),
        ),
        Step::Withdraw(account, amount) => (
            "accounts:withdrawJoint",
            Value::object([
                ("bank", Value::from(BANK)),
                ("account", Value::Float64(account.into())),
                ("partner", Value::Float64((1 - account).into())),
                ("amount", Value::Int64(amount)),
            ]),
        ),
        Step::Move => (
            "cursors:move",
            Value::object([
                ("room", Value::from("r")),
                ("user", Value::from(format!("u{session}"))),
                ("x", Value::Float64(1.0)),
                ("y", Value::Float64(1.0)),
            ]),
        ),
        Step::Send => ("messages:send", pages::send_args(&format!("u{session}"), pages::SENT)),
        Step::Remove(index) => {
            ("messages:remove", Value::object([("id", Value::from(seeded[usize::from(index)].as_str()))]))
        }
        Step::SendLater(delay_ms) => (
            "notifications:sendLater",
            schedule::send_later_args(&schedule::later_title(session, request_id), delay_ms),
        ),
        Step::Notify => ("notifications:send", schedule::send_args()),
        _ => ("counters:increment", counter_args()),
    };
    wire::write_mutation(request_id, path, &args)
}
