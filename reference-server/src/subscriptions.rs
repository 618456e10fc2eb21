//! The shared query cache and the read-set index that invalidates it.
//!
//! Every distinct (function, args) that any session subscribes to has one
//! entry here, holding its subscribers and, while valid, its latest result
//! encoded once. A commit invalidates exactly the entries whose read set
//! contains a key it touched; sessions then re-read the entry, so a room of
//! fifty subscribers costs one evaluation and one encoding per commit.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use syncspec_protocol::catalogue::Function;
use syncspec_protocol::json;
use syncspec_protocol::value::{Object, Value};
use syncspec_protocol::wire::{Encoded, QueryId, Ts};

use crate::auth::Identity;
use crate::functions;
use crate::store::{IndexId, Snapshot, TouchedKey};
use crate::txn::{ReadSet, Txn};

/// Which connection a session lives on (assigned by the shell).
pub type ConnId = u64;
/// An interned (function, args) pair.
pub type KeyId = u64;

/// A subscribed query's identity: the function, its canonical args and,
/// for a function that reads it, the caller.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueryKey {
    /// A query of the catalogue.
    pub function: Function,
    /// Validated arguments.
    pub args: Arc<Object>,
    /// The caller, only for functions that `uses_identity`: every other
    /// query is shared by all callers, whoever they are.
    pub caller: Option<Identity>,
}

impl QueryKey {
    /// The key of `function(args)` called by `caller`.
    pub fn new(function: Function, args: Arc<Object>, caller: Option<&Identity>) -> QueryKey {
        let caller = caller.filter(|_| function.uses_identity()).cloned();
        QueryKey { function, args, caller }
    }
}

/// A query's result at one ts, encoded once for every subscriber.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Evaluated {
    /// The ts it was evaluated at.
    pub ts: Ts,
    /// The encoded value, or the failure (message and encoded `errorData`).
    pub outcome: Result<Encoded, (Arc<str>, Encoded)>,
    /// A hash of the encoded outcome, to skip re-sending an unchanged result.
    pub hash: u64,
    /// What the evaluation read.
    pub reads: ReadSet,
    /// A paginated query's journal: the end cursor of its page.
    pub journal: Option<Arc<str>>,
}

/// Evaluates a query against a snapshot.
pub fn evaluate(snapshot: &Snapshot, key: &QueryKey) -> Evaluated {
    let mut txn = Txn::new(snapshot, 0);
    let result = functions::run(key.function, &key.args, key.caller.as_ref(), &mut txn);
    let (reads, _) = txn.finish();
    let journal = match &result {
        Ok(Value::Object(page)) if key.function.is_paginated() => {
            page.get("continueCursor").and_then(Value::as_str).map(Arc::from)
        }
        _ => None,
    };
    let outcome = match result {
        Ok(value) => Ok(Encoded::from(json::encode(&value))),
        Err(e) => Err((Arc::from(e.message.as_str()), Encoded::from(json::encode(&e.data())))),
    };
    let mut hasher = DefaultHasher::new();
    outcome.hash(&mut hasher);
    Evaluated { ts: snapshot.ts, outcome, hash: hasher.finish(), reads, journal }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Entry {
    key: QueryKey,
    /// Invariant: non-empty; an entry without subscribers is dropped.
    subscribers: BTreeSet<(ConnId, QueryId)>,
    /// `Some` while no commit since its ts touched its read set.
    result: Option<Arc<Evaluated>>,
}

/// The cache and its invalidation index.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Subscriptions {
    ids: BTreeMap<QueryKey, KeyId>,
    entries: BTreeMap<KeyId, Entry>,
    next_id: KeyId,
    /// Valid results indexed by the first component of each read prefix.
    by_first: BTreeMap<IndexId, BTreeMap<Value, BTreeSet<KeyId>>>,
    /// Valid results that read a whole index (an empty prefix).
    by_index: BTreeMap<IndexId, BTreeSet<KeyId>>,
    /// Evaluations run, for benchmarks and tests.
    evaluations: u64,
}

impl Subscriptions {
    /// Adds a subscriber, returning the key's id.
    pub fn subscribe(&mut self, key: QueryKey, who: (ConnId, QueryId)) -> KeyId {
        let id = match self.ids.get(&key) {
            Some(&id) => id,
            None => {
                let id = self.next_id;
                self.next_id += 1;
                self.ids.insert(key.clone(), id);
                self.entries.insert(id, Entry { key, subscribers: BTreeSet::new(), result: None });
                id
            }
        };
        if let Some(entry) = self.entries.get_mut(&id) {
            entry.subscribers.insert(who);
        }
        id
    }

    /// The key an entry caches.
    pub fn key_of(&self, id: KeyId) -> Option<&QueryKey> {
        self.entries.get(&id).map(|e| &e.key)
    }

    /// Removes a subscriber; an entry left with none is dropped.
    pub fn unsubscribe(&mut self, id: KeyId, who: (ConnId, QueryId)) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        entry.subscribers.remove(&who);
        if entry.subscribers.is_empty() {
            self.unindex(id);
            if let Some(entry) = self.entries.remove(&id) {
                if self.ids.get(&entry.key) == Some(&id) {
                    self.ids.remove(&entry.key);
                }
            }
        }
    }

    /// The result of `id` at the snapshot's ts: cached if still valid,
    /// evaluated (once, for every subscriber) otherwise.
    ///
    /// A paginated query's first result fixes where its page ends: the entry
    /// becomes the same query with that end cursor (its journal), so later
    /// evaluations cover the same stretch of rows however many arrive or
    /// leave, and a new subscriber to the unpinned args gets a page of its
    /// own. With `pin_pages` false (the `page-end-moves` fault) every
    /// evaluation reads `numItems` rows afresh.
    pub fn result(&mut self, id: KeyId, snapshot: &Snapshot, pin_pages: bool) -> Option<Arc<Evaluated>> {
        let entry = self.entries.get(&id)?;
        if let Some(result) = &entry.result {
            return Some(result.clone());
        }
        let evaluated = Arc::new(evaluate(snapshot, &entry.key));
        self.evaluations += 1;
        for range in evaluated.reads.ranges() {
            match range.prefix.first() {
                Some(first) => {
                    self.by_first.entry(range.index).or_default().entry(first.clone()).or_default().insert(id);
                }
                None => {
                    self.by_index.entry(range.index).or_default().insert(id);
                }
            }
        }
        if let Some(entry) = self.entries.get_mut(&id) {
            entry.result = Some(evaluated.clone());
        }
        if let Some(end) = evaluated.journal.as_deref().filter(|_| pin_pages) {
            self.pin(id, end);
        }
        Some(evaluated)
    }

    /// Invalidates every valid result whose read set holds a touched key and
    /// returns the subscribers to notify.
    pub fn invalidate(&mut self, touched: &[TouchedKey]) -> Vec<(ConnId, QueryId)> {
        let mut hit = BTreeSet::new();
        for (index, key) in touched {
            let candidates = key
                .first()
                .and_then(|first| self.by_first.get(index)?.get(first))
                .into_iter()
                .chain(self.by_index.get(index))
                .flatten();
            for &id in candidates {
                let overlaps = self
                    .entries
                    .get(&id)
                    .and_then(|e| e.result.as_ref())
                    .is_some_and(|r| r.reads.ranges().iter().any(|range| range.covers(*index, key)));
                if overlaps {
                    hit.insert(id);
                }
            }
        }
        let mut notify = Vec::new();
        for id in hit {
            self.unindex(id);
            if let Some(entry) = self.entries.get_mut(&id) {
                entry.result = None;
                notify.extend(entry.subscribers.iter().copied());
            }
        }
        notify
    }

    /// Re-keys an unpinned paginated entry to its args with `end` fixed.
    /// Its subscribers keep the entry id; the unpinned key is free again
    /// for the next subscriber, and a pinned twin that already exists
    /// keeps its place in the lookup (the two hold the same query).
    fn pin(&mut self, id: KeyId, end: &str) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        let Some(pinned) = functions::pin_page_end(&entry.key.args, end) else {
            return;
        };
        let old = std::mem::replace(&mut entry.key.args, Arc::new(pinned));
        let new_key = entry.key.clone();
        let old_key = QueryKey { args: old, ..new_key.clone() };
        if self.ids.get(&old_key) == Some(&id) {
            self.ids.remove(&old_key);
        }
        self.ids.entry(new_key).or_insert(id);
    }

    /// Removes a result's read set from the index and forgets the result.
    fn unindex(&mut self, id: KeyId) {
        let Some(result) = self.entries.get_mut(&id).and_then(|e| e.result.take()) else {
            return;
        };
        for range in result.reads.ranges() {
            match range.prefix.first() {
                Some(first) => {
                    if let Some(by_value) = self.by_first.get_mut(&range.index) {
                        if let Some(set) = by_value.get_mut(first) {
                            set.remove(&id);
                            if set.is_empty() {
                                by_value.remove(first);
                            }
                        }
                    }
                }
                None => {
                    if let Some(set) = self.by_index.get_mut(&range.index) {
                        set.remove(&id);
                        if set.is_empty() {
                            self.by_index.remove(&range.index);
                        }
                    }
                }
            }
        }
    }

    /// How many distinct queries are subscribed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no query is subscribed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many evaluations have run.
    pub fn evaluations(&self) -> u64 {
        self.evaluations
    }
}
