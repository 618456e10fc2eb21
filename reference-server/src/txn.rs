//! Transactions: a function's view of one snapshot, with the read set it
//! recorded and the writes it buffered.
//!
//! A transaction never touches the store. Its writes become visible only
//! when the core validates the read set (OCC) and applies them in a commit.
//! Reads see the transaction's own buffered writes.

use std::collections::BTreeMap;
use std::sync::Arc;

use syncspec_protocol::value::{Object, Value};

use crate::store::{Doc, DocData, DocId, IndexId, Snapshot, Table, TouchedKey, Write};

/// The catalogue's presence TTL unless the server is told otherwise.
pub const DEFAULT_PRESENCE_TTL_MS: f64 = 10_000.0;
/// The largest document the store accepts (Convex's 1 MiB).
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// One recorded read: every key of `index` starting with `prefix`.
/// A point read by id is the `ById` prefix `[id]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReadRange {
    /// The index scanned.
    pub index: IndexId,
    /// The equality prefix scanned.
    pub prefix: Vec<Value>,
}

impl ReadRange {
    /// Whether a write of `key` on `index` falls inside this range.
    pub fn covers(&self, index: IndexId, key: &[Value]) -> bool {
        self.index == index && key.starts_with(&self.prefix)
    }
}

/// Every range a transaction read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ReadSet {
    ranges: Vec<ReadRange>,
}

impl ReadSet {
    fn record(&mut self, index: IndexId, prefix: &[Value]) {
        if !self.ranges.iter().any(|r| r.index == index && prefix.starts_with(&r.prefix)) {
            self.ranges.push(ReadRange { index, prefix: prefix.to_vec() });
        }
    }

    /// The point keys of the documents `writes` writes: what a transaction
    /// validated only for write-write conflicts (snapshot isolation) checks.
    pub fn of_writes(writes: &WriteSet) -> ReadSet {
        let mut set = ReadSet::default();
        for id in writes.keys() {
            set.record(IndexId::ById, &[Value::Int64(id.0 as i64)]);
        }
        set
    }

    /// The ranges, in the order first read.
    pub fn ranges(&self) -> &[ReadRange] {
        &self.ranges
    }

    /// Whether any of `touched` falls inside a range of this set.
    pub fn overlaps(&self, touched: &[TouchedKey]) -> bool {
        touched.iter().any(|(index, key)| self.ranges.iter().any(|r| r.covers(*index, key)))
    }
}

/// The buffered writes of a transaction, by document.
pub type WriteSet = BTreeMap<DocId, Write>;

/// A document as a transaction sees it: stored, or written by itself.
#[derive(Clone, Debug)]
pub struct View {
    /// Its id.
    pub id: DocId,
    /// Its table.
    pub table: Table,
    /// The stored version, if it has one (its times); `None` for a new insert.
    pub stored: Option<Doc>,
    /// The fields as this transaction sees them.
    pub fields: Arc<Object>,
}

impl View {
    /// A user field, or `Null` when absent.
    pub fn get(&self, name: &str) -> &Value {
        static NULL: Value = Value::Null;
        self.fields.get(name).unwrap_or(&NULL)
    }

    /// `_creationTime` in float milliseconds (0 for an uncommitted insert).
    pub fn creation_time(&self) -> Value {
        self.stored.as_ref().map_or(Value::Float64(0.0), |d| d.creation_time())
    }

    /// The commit ts of the last write, in float milliseconds.
    pub fn updated_ms(&self) -> Value {
        Value::Float64(self.stored.as_ref().map_or(0, |d| d.updated) as f64 / 1e6)
    }
}

/// A document over the size limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TooLarge {
    /// Its size in bytes.
    pub bytes: usize,
}

/// A transaction in progress.
#[derive(Debug)]
pub struct Txn<'s> {
    /// How long a presence row lives without a heartbeat, in milliseconds
    /// (the server's `--presence-ttl`); `presence:heartbeat` schedules its
    /// expiry this far ahead.
    pub presence_ttl_ms: f64,
    snapshot: &'s Snapshot,
    reads: ReadSet,
    writes: WriteSet,
    /// Ids for inserts come from a range the core reserved for this execution,
    /// which keeps ids deterministic without a shared counter.
    next_id: u64,
}

impl<'s> Txn<'s> {
    /// Starts a transaction at `snapshot`, inserting with ids from `first_id`.
    pub fn new(snapshot: &'s Snapshot, first_id: u64) -> Txn<'s> {
        Txn {
            presence_ttl_ms: DEFAULT_PRESENCE_TTL_MS,
            snapshot,
            reads: ReadSet::default(),
            writes: WriteSet::new(),
            next_id: first_id,
        }
    }

    /// The snapshot this transaction reads.
    pub fn snapshot(&self) -> &'s Snapshot {
        self.snapshot
    }

    /// Reads one document by id.
    pub fn get(&mut self, id: DocId) -> Option<View> {
        self.reads.record(IndexId::ById, &[Value::Int64(id.0 as i64)]);
        self.view(id)
    }

    fn view(&self, id: DocId) -> Option<View> {
        let stored = self.snapshot.get(id).cloned();
        match self.writes.get(&id) {
            Some(Write { fields: None, .. }) => None,
            Some(Write { table, fields: Some(fields) }) => {
                Some(View { id, table: *table, stored, fields: fields.clone() })
            }
            None => stored.map(|d| View { id, table: d.table, fields: d.fields.clone(), stored: Some(d) }),
        }
    }

    /// Reads every document whose `index` key starts with `prefix`, in key order.
    pub fn scan(&mut self, index: IndexId, prefix: &[Value]) -> Vec<View> {
        self.reads.record(index, prefix);
        let mut found: Vec<View> = self
            .snapshot
            .scan(index, prefix)
            .filter(|d| !self.writes.contains_key(&d.id))
            .map(|d| View { id: d.id, table: d.table, fields: d.fields.clone(), stored: Some(d.clone()) })
            .collect();
        if self.writes.is_empty() {
            return found;
        }
        // Add this transaction's own writes that now fall in the range, then
        // restore key order (an uncommitted insert sorts as if committed last).
        for (&id, write) in &self.writes {
            let Some(fields) = &write.fields else {
                continue;
            };
            if !write.table.indexes().contains(&index) && index != IndexId::ById {
                continue;
            }
            let stored = self.snapshot.get(id).cloned();
            let data = DocData {
                id,
                table: write.table,
                created: stored.as_ref().map_or(u64::MAX >> 1, |d| d.created),
                updated: u64::MAX >> 1,
                fields: fields.clone(),
            };
            if index.key(&data).starts_with(prefix) {
                found.push(View { id, table: write.table, stored, fields: fields.clone() });
            }
        }
        let key_of = |v: &View| {
            let data = DocData {
                id: v.id,
                table: v.table,
                created: v.stored.as_ref().map_or(u64::MAX >> 1, |d| d.created),
                updated: v.stored.as_ref().map_or(u64::MAX >> 1, |d| d.updated),
                fields: v.fields.clone(),
            };
            (index.key(&data), v.id)
        };
        found.sort_by_cached_key(key_of);
        found
    }

    /// Inserts a new document and returns its id.
    pub fn insert(&mut self, table: Table, fields: Object) -> Result<DocId, TooLarge> {
        check_size(&fields)?;
        let id = DocId(self.next_id);
        self.next_id += 1;
        self.writes.insert(id, Write { table, fields: Some(Arc::new(fields)) });
        Ok(id)
    }

    /// Replaces a document's fields.
    pub fn replace(&mut self, id: DocId, table: Table, fields: Object) -> Result<(), TooLarge> {
        check_size(&fields)?;
        self.writes.insert(id, Write { table, fields: Some(Arc::new(fields)) });
        Ok(())
    }

    /// Deletes a document.
    pub fn delete(&mut self, id: DocId, table: Table) {
        self.writes.insert(id, Write { table, fields: None });
    }

    /// Schedules `function(args)` to run `delay_ms` after this transaction
    /// commits (Convex's `ctx.scheduler.runAfter`): a document like any
    /// other write, so it exists only if the transaction commits.
    pub fn schedule(&mut self, delay_ms: f64, function: &str, args: Object) -> Result<DocId, TooLarge> {
        let mut fields = Object::new();
        fields.insert("name".into(), Value::from(function));
        fields.insert("args".into(), Value::Object(args));
        fields.insert("delayMs".into(), Value::Float64(delay_ms.max(0.0)));
        self.insert(Table::Scheduled, fields)
    }

    /// Ends the transaction, returning what it read and what it wrote.
    pub fn finish(self) -> (ReadSet, WriteSet) {
        (self.reads, self.writes)
    }
}

fn check_size(fields: &Object) -> Result<(), TooLarge> {
    let bytes: usize = fields.iter().map(|(k, v)| k.len() + v.size()).sum();
    if bytes > MAX_DOCUMENT_BYTES {
        return Err(TooLarge { bytes });
    }
    Ok(())
}

/// Shares a read set between a cached query result and the invalidation index.
pub type SharedReadSet = Arc<ReadSet>;
