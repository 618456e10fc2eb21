//! The sync model's properties: which ones a configuration gets (from
//! the steps its scripts take), and what each reads from a state. Most
//! read the auxiliary `History` that delivery and commits keep in
//! `sync.rs`; the paging and scheduling ones are `pages`' and `schedule`'s
//! business, and only registered here.

use stateright::Property;

use super::{balances, counter_value, schedule, Step, SyncModel, SyncState, ACCOUNTS, MODEL_RATE, OPENING_BALANCE};

/// The properties `model` is checked against.
pub(super) fn of(model: &SyncModel) -> Vec<Property<SyncModel>> {
    let mut properties = vec![
        Property::always("pushed results equal the state at their ts", |_, s: &SyncState| !s.history.stale_push),
        Property::always("each socket's version chain has no gaps", |_, s: &SyncState| !s.history.chain_broken),
        Property::always("a client's ts never goes backwards", |_, s: &SyncState| !s.history.ts_regressed),
        Property::always("a transition carries the time it was built at, never 0", |_, s: &SyncState| {
            !s.history.ts_behind_clock
        }),
        Property::always("read-your-writes", |_, s: &SyncState| !s.history.ryw_broken),
        Property::always("no lost update (committed increments return distinct values)", |_, s: &SyncState| {
            !s.history.lost_update
        }),
        Property::always("a replayed mutation applies at most once", |_, s: &SyncState| {
            !s.history.answered_twice_differently && counter_value(&s.core) <= s.history.invoked.len() as i64
        }),
        Property::always("quiet means converged and resolved", |m: &SyncModel, s: &SyncState| {
            !s.quiet(m)
                || s.clients.iter().all(|c| {
                    c.pending.is_empty()
                        && (!c.subscribed || c.view == Some(counter_value(&s.core)))
                        && (!c.watching_bank || c.bank_view.as_ref() == Some(&balances(&s.core)))
                })
        }),
    ];
    let writers = model
        .scripts
        .iter()
        .filter(|s| s.iter().any(|step| matches!(step, Step::Increment | Step::Transfer(..) | Step::Withdraw(..))))
        .count();
    if writers >= 2 {
        properties
            .push(Property::sometimes("an OCC conflict is retried", |_, s: &SyncState| s.core.stats().conflicts > 0));
    }
    if model.scripts.iter().flatten().any(|step| *step == Step::Subscribe)
        && model.scripts.iter().flatten().any(|step| *step == Step::Increment)
    {
        properties.push(Property::sometimes("a push shows another client's write", |_, s: &SyncState| {
            s.history.saw_other_write
        }));
    }
    let has = |wanted: fn(&Step) -> bool| model.scripts.iter().flatten().any(wanted);
    if has(|step| *step == Step::Reconnect) {
        properties.push(Property::sometimes("a reconnect replays a mutation", |_, s: &SyncState| s.history.replayed));
    }
    if has(|step| matches!(step, Step::Transfer(..))) {
        properties.push(Property::always("every pushed bank total equals the opening total", |_, s: &SyncState| {
            !s.history.bank_total_changed
        }));
        properties.push(Property::always(
            "the committed transfers account for every balance (serializable)",
            |m: &SyncModel, s: &SyncState| {
                // Once every answer is in, replaying the transfers that
                // succeeded, one at a time, must give the balances the store holds.
                if !s.quiet(m) {
                    return true;
                }
                let mut expected = vec![OPENING_BALANCE; ACCOUNTS];
                for &(from, to, amount) in s.history.transfers.values() {
                    expected[usize::from(from)] -= amount;
                    expected[usize::from(to)] += amount;
                }
                expected == balances(&s.core)
            },
        ));
    }
    if has(|step| matches!(step, Step::Withdraw(..))) {
        properties
            .push(Property::always("joint withdrawals never overdraw the pair (no write skew)", |_, s: &SyncState| {
                balances(&s.core).iter().sum::<i64>() >= 0
            }));
    }
    if has(|step| *step == Step::LoadMore) {
        // Judged after every transition a client takes in, against the
        // channel at that transition's ts (every query in one transition
        // is read at one ts): see `pages::pages_agree` for the rule.
        properties.push(Property::always("consecutive pages never overlap or leave a gap", |_, s: &SyncState| {
            !s.history.pages_disagree
        }));
        properties.push(Property::sometimes(
            "a client holds two pages after a message arrived and one left",
            |_, s: &SyncState| s.history.two_pages_after_change,
        ));
    }
    if has(|step| matches!(step, Step::SendLater(_))) {
        properties.extend(schedule::properties());
    }
    if has(|step| *step == Step::Move) {
        properties.push(Property::always("the rate limit holds", |_, s: &SyncState| {
            s.history.moves_accepted.values().all(|&n| u64::from(n) <= MODEL_RATE.burst)
        }));
    }
    properties
}
