//! A room's shared bookkeeping: who is ready since when, which writes the
//! backend accepted, what each reader received. At the end it says how many
//! updates every reader should have seen, so a backend that drops pushes
//! cannot look fast by delivering less.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::plan::{Kind, RoomPlan};

/// One room of the run.
#[derive(Debug)]
pub(crate) struct Room {
    pub(crate) kind: Kind,
    /// The channel or room argument the functions get.
    pub(crate) name: String,
    pub(crate) members: usize,
    /// Per member: the stamp at which its subscription first answered, plus one (0: not yet).
    ready: Vec<AtomicU64>,
    /// Per member: changes received from others, counted from its ready stamp.
    received: Vec<AtomicU64>,
    /// Accepted writes `(member, intended stamp)`, for kinds where every update counts.
    writes: Mutex<Vec<(u32, u64)>>,
    /// Per member: the stamp of its latest accepted write (latest-wins kinds).
    last_accepted: Vec<AtomicU64>,
    /// `reader * members + author`: the latest stamp of `author` that `reader` holds.
    seen: Vec<AtomicU64>,
}

/// What a room's readers were owed and got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Delivery {
    /// Updates readers should have seen.
    pub(crate) expected: u64,
    /// Updates they saw, among those.
    pub(crate) received: u64,
    /// For latest-wins rooms: (reader, author) pairs whose final view is not the author's latest write.
    pub(crate) stale_views: u64,
}

impl std::iter::Sum for Delivery {
    fn sum<I: Iterator<Item = Delivery>>(rooms: I) -> Delivery {
        rooms.fold(Delivery::default(), |a, b| Delivery {
            expected: a.expected + b.expected,
            received: a.received + b.received,
            stale_views: a.stale_views + b.stale_views,
        })
    }
}

impl Room {
    pub(crate) fn new(plan: &RoomPlan, run_id: &str) -> Room {
        let n = plan.members;
        let latest_wins = !plan.kind.every_update_counts();
        Room {
            kind: plan.kind,
            name: format!("load-{run_id}-{}-{}", plan.kind.name(), plan.number),
            members: n,
            ready: (0..n).map(|_| AtomicU64::new(0)).collect(),
            received: (0..n).map(|_| AtomicU64::new(0)).collect(),
            writes: Mutex::new(Vec::new()),
            last_accepted: (0..n).map(|_| AtomicU64::new(0)).collect(),
            seen: (0..if latest_wins { n * n } else { 0 }).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub(crate) fn set_ready(&self, member: usize, stamp: u64) {
        self.ready[member].store(stamp + 1, Ordering::SeqCst);
    }

    /// The member's ready stamp, if it is ready.
    pub(crate) fn ready_at(&self, member: usize) -> Option<u64> {
        self.ready[member].load(Ordering::SeqCst).checked_sub(1)
    }

    pub(crate) fn note_received(&self, member: usize) {
        self.received[member].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn note_accepted(&self, member: usize, stamp: u64) {
        if self.kind.every_update_counts() {
            self.writes.lock().unwrap_or_else(|p| p.into_inner()).push((member as u32, stamp));
        }
        self.last_accepted[member].fetch_max(stamp, Ordering::Relaxed);
    }

    pub(crate) fn note_seen(&self, reader: usize, author: usize, stamp: u64) {
        if let Some(cell) = self.seen.get(reader * self.members + author) {
            cell.fetch_max(stamp, Ordering::Relaxed);
        }
    }

    /// What readers were owed: every accepted write by another member whose
    /// intended instant is at or after the reader's ready instant (a write
    /// sent after a reader's first answer can only reach it as a change).
    /// For latest-wins rooms, whether each reader ends holding each
    /// author's latest accepted write.
    pub(crate) fn delivery(&self) -> Delivery {
        let mut d = Delivery::default();
        if self.kind.every_update_counts() {
            let writes = self.writes.lock().unwrap_or_else(|p| p.into_inner());
            for reader in 0..self.members {
                let Some(ready) = self.ready_at(reader) else { continue };
                d.expected +=
                    writes.iter().filter(|(author, stamp)| *author as usize != reader && *stamp >= ready).count()
                        as u64;
                d.received += self.received[reader].load(Ordering::Relaxed);
            }
        } else {
            for reader in 0..self.members {
                if self.ready_at(reader).is_none() {
                    continue;
                }
                d.received += self.received[reader].load(Ordering::Relaxed);
                for author in (0..self.members).filter(|a| *a != reader) {
                    let latest = self.last_accepted[author].load(Ordering::Relaxed);
                    if latest != 0 && self.seen[reader * self.members + author].load(Ordering::Relaxed) != latest {
                        d.stale_views += 1;
                    }
                }
            }
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_are_owed_only_writes_after_they_were_ready_and_not_their_own() {
        let room = Room::new(&RoomPlan { kind: Kind::Chat, number: 0, members: 3 }, "t");
        room.set_ready(0, 100);
        room.set_ready(1, 200);
        // member 2 never became ready: owed nothing
        room.note_accepted(0, 150);
        room.note_accepted(1, 250);
        room.note_accepted(2, 300);
        // reader 0: writes by 1 at 250 and by 2 at 300; reader 1: by 2 at 300
        room.note_received(0);
        room.note_received(0);
        let d = room.delivery();
        assert_eq!((d.expected, d.received), (3, 2));
    }

    #[test]
    fn latest_wins_rooms_judge_the_final_view() {
        let room = Room::new(&RoomPlan { kind: Kind::Cursors, number: 0, members: 2 }, "t");
        room.set_ready(0, 0);
        room.set_ready(1, 0);
        room.note_accepted(0, 10);
        room.note_accepted(0, 20);
        room.note_seen(1, 0, 10);
        assert_eq!(room.delivery().stale_views, 1);
        room.note_seen(1, 0, 20);
        assert_eq!(room.delivery().stale_views, 0);
    }
}
