//! The scheduling steps' side of the sync model: the inbox the steps write
//! to, the `notifications:sendLater` and `notifications:send` arguments,
//! and what the properties about scheduled functions read.
//!
//! A scheduled function's run answers nobody, so its effect is judged by
//! the notifications it leaves in the store, counted by title: each
//! `sendLater` names its notification after the request that scheduled it
//! (`later_title`), and the direct send uses a title no `sendLater` uses.
//! What the store held is read after every input the core takes
//! (`Scheduling::after_input`), because a `Scheduled` document is gone once
//! its function has run and its due time with it. When time passes and how
//! the core is told stays in `sync.rs`.

use std::collections::BTreeMap;

use stateright::Property;
use syncspec_protocol::catalogue::Function;
use syncspec_protocol::value::Value;
use syncspec_protocol::wire::Ts;
use syncspec_server::core::{Core, Job};
use syncspec_server::store::IndexId;

use super::{SyncModel, SyncState};

/// The user whose inbox every scheduling step writes to.
const USER: &str = "n";
/// The title of the notification `Step::Notify` sends directly.
const DIRECT: &str = "now";

/// The title the `sendLater` of `request_id` on `session` schedules.
pub(super) fn later_title(session: u128, request_id: u32) -> String {
    format!("later {session}.{request_id}")
}

/// `notifications:sendLater`'s arguments: `title` to the inbox, `delay_ms` from its commit.
pub(super) fn send_later_args(title: &str, delay_ms: u32) -> Value {
    Value::object([
        ("user", Value::from(USER)),
        ("title", Value::from(title)),
        ("delayMs", Value::Float64(delay_ms.into())),
    ])
}

/// `notifications:send`'s arguments: the direct notification to the inbox.
pub(super) fn send_args() -> Value {
    Value::object([("user", Value::from(USER)), ("title", Value::from(DIRECT))])
}

/// The properties of a configuration that schedules: two `always` ones
/// that each scheduling fault breaks one of, and a `sometimes` one showing
/// that the path where scheduling can go wrong (a `sendLater` retried
/// after a conflict, its send run later) is reached.
pub(super) fn properties() -> Vec<Property<SyncModel>> {
    vec![
        Property::always(
            "a scheduled function runs exactly once, and only if its scheduling mutation committed",
            |m: &SyncModel, s: &SyncState| s.history.scheduling.exactly_once(&s.core, s.quiet(m)),
        ),
        Property::always("a scheduled function never runs before its time", |_, s: &SyncState| {
            s.history.scheduling.never_early()
        }),
        Property::sometimes("a sendLater retried after a conflict has its scheduled send run", |_, s: &SyncState| {
            s.history.scheduling.retried_and_ran(&s.core)
        }),
    ]
}

/// What the scheduling properties need beyond the store at hand.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(super) struct Scheduling {
    /// When each title's scheduled send is due (commit ts plus `delayMs`),
    /// the earliest of its `Scheduled` documents: one, unless a fault
    /// committed an aborted attempt's document too.
    due: BTreeMap<String, Ts>,
    /// `sendLater` attempts the core dispatched, per title: a second is an
    /// OCC retry.
    attempts: BTreeMap<String, u32>,
    /// The titles whose `sendLater` was answered with success, once each.
    committed: BTreeMap<String, usize>,
    /// A scheduled send committed before its due time.
    ran_early: bool,
}

impl Scheduling {
    /// Notes a job the core dispatched (a `sendLater` attempt counts).
    pub(super) fn dispatched(&mut self, job: &Job) {
        if job.function != Function::NotificationsSendLater {
            return;
        }
        if let Some(title) = job.args.get("title").and_then(Value::as_str) {
            *self.attempts.entry(title.to_owned()).or_default() += 1;
        }
    }

    /// Notes what the store holds after an input: each `Scheduled`
    /// document's due time, and whether a scheduled send landed before it.
    pub(super) fn after_input(&mut self, core: &Core) {
        for doc in core.head().scan(IndexId::ScheduledByDue, &[]) {
            let Some(title) = doc.get("args").get("title").and_then(Value::as_str) else { continue };
            let due = self.due.entry(title.to_owned()).or_insert(Ts::MAX);
            *due = (*due).min(doc.due());
        }
        for (title, created) in scheduled_sends(core) {
            // A send whose document was never seen is judged by the
            // exactly-once property, not here.
            self.ran_early |= self.due.get(&title).is_some_and(|&due| created < due);
        }
    }

    /// Notes a successful answer to the `sendLater` that scheduled `title`.
    pub(super) fn answered(&mut self, title: String) {
        self.committed.insert(title, 1);
    }

    /// No scheduled send ever committed before its due time.
    pub(super) fn never_early(&self) -> bool {
        !self.ran_early
    }

    /// No scheduled function has run more than once, nor run while a
    /// schedule of its title is still pending (it would run again); and once
    /// all is quiet (every `sendLater` answered, every asked-for time come),
    /// each `sendLater` answered with success has run once and no other has.
    pub(super) fn exactly_once(&self, core: &Core, quiet: bool) -> bool {
        !ran_again(core) && (!quiet || sent(core) == self.committed)
    }

    /// A `sendLater` was retried after a conflict, and the send it
    /// scheduled has run.
    pub(super) fn retried_and_ran(&self, core: &Core) -> bool {
        scheduled_sends(core).any(|(title, _)| self.attempts.get(&title).is_some_and(|&n| n >= 2))
    }
}

/// Whether some scheduled function has run more than once, or has run and
/// is scheduled still: the first state where a function runs twice or its
/// schedule outlives its run (both need a fault). The model expands no
/// state past it (see `SyncModel::actions`).
pub(super) fn ran_again(core: &Core) -> bool {
    let sent = sent(core);
    sent.values().any(|&n| n >= 2)
        || core.head().scan(IndexId::ScheduledByDue, &[]).any(|doc| {
            doc.get("args").get("title").and_then(Value::as_str).is_some_and(|title| sent.contains_key(title))
        })
}

/// How many notifications each scheduled title has in the inbox.
fn sent(core: &Core) -> BTreeMap<String, usize> {
    let mut sent = BTreeMap::new();
    for (title, _) in scheduled_sends(core) {
        *sent.entry(title).or_default() += 1;
    }
    sent
}

/// The inbox's notifications a `sendLater` scheduled: (title, creation ts).
fn scheduled_sends(core: &Core) -> impl Iterator<Item = (String, Ts)> + '_ {
    core.head().scan(IndexId::NotificationsByUserRead, &[Value::from(USER)]).filter_map(|doc| {
        let title = doc.get("title").as_str()?;
        (title != DIRECT).then(|| (title.to_owned(), doc.created))
    })
}
