//! Idempotency records: each committed socket mutation's outcome under its
//! (sessionId, requestId), kept for a bounded time after its last use so a
//! replay after a reconnect returns it instead of running again.
//!
//! Real Convex keeps these records two weeks, in its database. An in-memory
//! server cannot hold every mutation for that long, so records expire
//! `Config::idempotency_retention_ns` after their last use (15 minutes by
//! default, far past the clients' reconnect backoff, which tops out at
//! 16 s). An index by last use makes expiry cost what it removes, not a
//! pass over every record.

use std::collections::{BTreeMap, BTreeSet};

use syncspec_protocol::value::Value;
use syncspec_protocol::wire::{RequestId, Ts};

use crate::session::SessionId;

/// What a record is kept under.
pub(super) type Key = (SessionId, RequestId);

/// A committed mutation's outcome, kept so a replay returns it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Record {
    /// The call's fingerprint (`call_fingerprint`): a replay must repeat
    /// the call exactly, and a reused `requestId` that does not is refused.
    pub(super) call: u64,
    pub(super) result: Value,
    pub(super) ts: Ts,
    last_used: Ts,
}

impl Record {
    /// The outcome of `call`, committed at `ts`, first used at `now`.
    pub(super) fn new(call: u64, result: Value, ts: Ts, now: Ts) -> Record {
        Record { call, result, ts, last_used: now }
    }
}

/// The records, and the same keys in order of last use.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(super) struct Records {
    by_key: BTreeMap<Key, Record>,
    /// Invariant: holds `(record.last_used, key)` for every record, and nothing else.
    by_last_use: BTreeSet<(Ts, Key)>,
}

impl Records {
    /// The record under `key`.
    pub(super) fn get(&self, key: &Key) -> Option<&Record> {
        self.by_key.get(key)
    }

    /// The record under `key`, now used again at `now`.
    pub(super) fn touch(&mut self, key: Key, now: Ts) -> Option<&Record> {
        let record = self.by_key.get_mut(&key)?;
        self.by_last_use.remove(&(record.last_used, key));
        record.last_used = now;
        self.by_last_use.insert((now, key));
        Some(record)
    }

    /// Keeps `record` under `key`, replacing any record there.
    pub(super) fn insert(&mut self, key: Key, record: Record) {
        if let Some(old) = self.by_key.get(&key) {
            self.by_last_use.remove(&(old.last_used, key));
        }
        self.by_last_use.insert((record.last_used, key));
        self.by_key.insert(key, record);
    }

    /// Forgets every record last used `retention_ns` or longer before `now`.
    pub(super) fn expire(&mut self, now: Ts, retention_ns: u64) {
        while let Some(&(used, key)) = self.by_last_use.first() {
            if now.saturating_sub(used) < retention_ns {
                break;
            }
            self.by_last_use.pop_first();
            self.by_key.remove(&key);
        }
    }

    /// How many records are kept.
    pub(super) fn len(&self) -> usize {
        self.by_key.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_expire_by_last_use_and_a_touch_keeps_one_longer() {
        let mut records = Records::default();
        for request in 0..4 {
            records.insert((1, request), Record::new(7, Value::Null, 10, 100 + u64::from(request)));
        }
        assert!(records.touch((1, 0), 500).is_some(), "used again at 500");
        records.expire(402, 300);
        // 101 and 102 are 300 old at 402; 103 is not yet; 0 was touched.
        assert!(records.get(&(1, 1)).is_none() && records.get(&(1, 2)).is_none());
        assert!(records.get(&(1, 3)).is_some() && records.get(&(1, 0)).is_some());
        records.expire(800, 300);
        assert_eq!(records.len(), 0);
        assert!(records.by_last_use.is_empty(), "the index is emptied with the records");
        assert!(records.touch((1, 0), 900).is_none());
    }

    #[test]
    fn replacing_a_record_leaves_one_index_entry() {
        let mut records = Records::default();
        records.insert((2, 9), Record::new(1, Value::Null, 1, 10));
        records.insert((2, 9), Record::new(1, Value::Null, 1, 20));
        assert_eq!(records.by_last_use.len(), 1);
        records.expire(25, 10);
        assert_eq!(records.len(), 1, "last used at 20, kept until 30");
    }
}
