//! The in-memory store: documents, ordered indexes and MVCC snapshots.
//!
//! A `Snapshot` is an immutable view of every table at one commit timestamp.
//! It is built from persistent maps (`imbl`), so taking one is a reference
//! count bump and a commit copies only the paths it changes. Transactions
//! read snapshots; only `Store::apply` writes, one commit at a time.
//! Nothing here knows about sessions, subscriptions or the wire.

use std::cmp::Ordering;
use std::sync::Arc;

use imbl::{OrdMap, OrdSet};
use syncspec_protocol::value::{Object, Value};
use syncspec_protocol::wire::Ts;

/// A document id: unique across all tables, never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocId(pub u64);

impl DocId {
    /// The id as clients see it: the table's letter, then hex.
    pub fn to_wire(self, table: Table) -> String {
        format!("{}{:x}", table.letter(), self.0)
    }

    /// Parses a wire id, returning the table it names too.
    pub fn parse(text: &str) -> Option<(Table, DocId)> {
        let mut chars = text.chars();
        let table = Table::from_letter(chars.next()?)?;
        let rest = chars.as_str();
        if rest.is_empty() || rest.len() > 16 || !rest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some((table, DocId(u64::from_str_radix(rest, 16).ok()?)))
    }
}

/// The catalogue's tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// Chat messages and token streams.
    Messages,
    /// Presence rows, one per (room, user).
    Presence,
    /// Cursor positions, one per (room, user).
    Cursors,
    /// Named int64 counters.
    Counters,
    /// Versioned documents.
    Documents,
    /// Per-user notifications.
    Notifications,
    /// Bank accounts.
    Accounts,
    /// Functions scheduled to run later (Convex's `_scheduled_functions`):
    /// `{name, args, delayMs}`, due `delayMs` after the commit that wrote them.
    Scheduled,
}

impl Table {
    fn letter(self) -> char {
        match self {
            Table::Messages => 'm',
            Table::Presence => 'p',
            Table::Cursors => 'c',
            Table::Counters => 'k',
            Table::Documents => 'd',
            Table::Notifications => 'n',
            Table::Accounts => 'a',
            Table::Scheduled => 's',
        }
    }

    fn from_letter(c: char) -> Option<Table> {
        Some(match c {
            'm' => Table::Messages,
            'p' => Table::Presence,
            'c' => Table::Cursors,
            'k' => Table::Counters,
            'd' => Table::Documents,
            'n' => Table::Notifications,
            'a' => Table::Accounts,
            's' => Table::Scheduled,
            _ => return None,
        })
    }

    /// The secondary indexes kept for this table (every table also has `ById`).
    pub fn indexes(self) -> &'static [IndexId] {
        match self {
            Table::Messages => &[IndexId::MessagesByChannel],
            Table::Presence => &[IndexId::PresenceByRoom],
            Table::Cursors => &[IndexId::CursorsByRoom],
            Table::Counters => &[IndexId::CountersByName],
            Table::Documents => &[],
            Table::Notifications => &[IndexId::NotificationsByUserRead],
            Table::Accounts => &[IndexId::AccountsByBank],
            Table::Scheduled => &[IndexId::ScheduledByDue],
        }
    }
}

/// An index: an ordered set of keys computed from each document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IndexId {
    /// Every document by id (point reads).
    ById,
    /// `[channel, creation ts]`.
    MessagesByChannel,
    /// `[room, user]`.
    PresenceByRoom,
    /// `[room, user]`.
    CursorsByRoom,
    /// `[name]`.
    CountersByName,
    /// `[user, read, creation ts]`.
    NotificationsByUserRead,
    /// `[bank, account]`.
    AccountsByBank,
    /// `[due ts]`: the scheduling commit's ts plus `delayMs`.
    ScheduledByDue,
}

impl IndexId {
    /// The index key of a document (with its commit-stamped times).
    pub fn key(self, doc: &DocData) -> Vec<Value> {
        let field = |name: &str| doc.fields.get(name).cloned().unwrap_or(Value::Null);
        match self {
            IndexId::ById => vec![Value::Int64(doc.id.0 as i64)],
            IndexId::MessagesByChannel => vec![field("channel"), Value::Int64(doc.created as i64)],
            IndexId::PresenceByRoom | IndexId::CursorsByRoom => vec![field("room"), field("user")],
            IndexId::CountersByName => vec![field("name")],
            IndexId::NotificationsByUserRead => {
                vec![field("user"), field("read"), Value::Int64(doc.created as i64)]
            }
            IndexId::AccountsByBank => vec![field("bank"), field("account")],
            IndexId::ScheduledByDue => vec![Value::Int64(doc.due() as i64)],
        }
    }
}

/// A stored document.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DocData {
    /// Its id.
    pub id: DocId,
    /// Its table.
    pub table: Table,
    /// The commit ts that inserted it (`_creationTime` is this in ms).
    pub created: Ts,
    /// The commit ts that last wrote it.
    pub updated: Ts,
    /// The user fields, shared with every snapshot and reader that holds them.
    pub fields: Arc<Object>,
}

impl DocData {
    /// A user field, or `Null` when absent.
    pub fn get(&self, name: &str) -> &Value {
        static NULL: Value = Value::Null;
        self.fields.get(name).unwrap_or(&NULL)
    }

    /// When a scheduled function is due: its commit ts plus `delayMs`.
    pub fn due(&self) -> Ts {
        let delay_ms = match self.fields.get("delayMs") {
            Some(Value::Float64(ms)) if ms.is_finite() && *ms > 0.0 => *ms,
            _ => 0.0,
        };
        self.created.saturating_add((delay_ms * 1e6) as u64)
    }

    /// `_creationTime` as Convex shows it: float milliseconds.
    pub fn creation_time(&self) -> Value {
        Value::Float64(self.created as f64 / 1e6)
    }
}

/// A shared, immutable document version.
pub type Doc = Arc<DocData>;

/// An index key with an optional "past every extension" marker, so that a
/// prefix can bound a range from above.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    /// Shared, because persistent-map nodes copy their keys on every write
    /// to a path a snapshot still holds.
    parts: Arc<[Value]>,
    upper: bool,
}

impl Key {
    fn exact(parts: &[Value]) -> Key {
        Key { parts: parts.into(), upper: false }
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        for (a, b) in self.parts.iter().zip(other.parts.iter()) {
            match a.cmp(b) {
                Ordering::Equal => {}
                unequal => return unequal,
            }
        }
        match self.parts.len().cmp(&other.parts.len()) {
            Ordering::Equal => self.upper.cmp(&other.upper),
            Ordering::Less if self.upper => Ordering::Greater,
            Ordering::Less => Ordering::Less,
            Ordering::Greater if other.upper => Ordering::Less,
            Ordering::Greater => Ordering::Greater,
        }
    }
}

/// One entry of the combined index set.
type Entry = (IndexId, Key, DocId);

/// Every table at one commit timestamp.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Snapshot {
    /// The commit ts this snapshot shows.
    pub ts: Ts,
    docs: OrdMap<DocId, Doc>,
    index: OrdSet<Entry>,
}

impl Snapshot {
    /// A document by id.
    pub fn get(&self, id: DocId) -> Option<&Doc> {
        self.docs.get(&id)
    }

    /// The documents whose `index` key starts with `prefix`, in key order.
    pub fn scan<'a>(&'a self, index: IndexId, prefix: &[Value]) -> impl DoubleEndedIterator<Item = &'a Doc> + 'a {
        let parts: Arc<[Value]> = prefix.into();
        let lo: Entry = (index, Key { parts: parts.clone(), upper: false }, DocId(0));
        let hi: Entry = (index, Key { parts, upper: true }, DocId(0));
        self.index.range(lo..hi).filter_map(move |(_, _, id)| self.docs.get(id))
    }

    /// How many documents the snapshot holds.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// Whether the snapshot holds no documents.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }
}

/// One document write of a transaction: the new fields, or `None` to delete.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Write {
    /// The table of the document.
    pub table: Table,
    /// The new user fields; `None` deletes.
    pub fields: Option<Arc<Object>>,
}

/// An index key a commit changed (an old key removed or a new one added).
pub type TouchedKey = (IndexId, Vec<Value>);

/// The store: the latest snapshot and the commit that produces the next.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Store {
    head: Snapshot,
}

impl Store {
    /// The latest committed snapshot.
    pub fn head(&self) -> &Snapshot {
        &self.head
    }

    /// The latest commit ts.
    pub fn ts(&self) -> Ts {
        self.head.ts
    }

    /// Moves the clock forward without writing (an empty commit).
    pub fn advance_to(&mut self, ts: Ts) {
        self.head.ts = self.head.ts.max(ts);
    }

    /// Applies a write set at `ts` (which must exceed the head's ts) and
    /// returns every index key it touched, old and new.
    pub fn apply<'w>(&mut self, ts: Ts, writes: impl IntoIterator<Item = (&'w DocId, &'w Write)>) -> Vec<TouchedKey> {
        debug_assert!(ts > self.head.ts, "commit ts {ts} must exceed head {}", self.head.ts);
        let mut touched = Vec::new();
        let head = &mut self.head;
        for (&id, write) in writes {
            let old = head.docs.get(&id).cloned();
            let new = write.fields.as_ref().map(|fields| {
                Arc::new(DocData {
                    id,
                    table: write.table,
                    created: old.as_ref().map_or(ts, |o| o.created),
                    updated: ts,
                    fields: fields.clone(),
                })
            });
            let table = old.as_ref().map_or(write.table, |o| o.table);
            for &index in std::iter::once(&IndexId::ById).chain(table.indexes()) {
                let old_key = old.as_ref().map(|d| index.key(d));
                let new_key = new.as_ref().map(|d| index.key(d));
                if old_key == new_key {
                    // Same entry before and after; only the document changed.
                    if let Some(key) = new_key {
                        touched.push((index, key));
                    }
                    continue;
                }
                if let Some(key) = old_key {
                    head.index.remove(&(index, Key::exact(&key), id));
                    touched.push((index, key));
                }
                if let Some(key) = new_key {
                    head.index.insert((index, Key::exact(&key), id));
                    touched.push((index, key));
                }
            }
            match new {
                Some(doc) => {
                    head.docs.insert(id, doc);
                }
                None => {
                    head.docs.remove(&id);
                }
            }
        }
        head.ts = ts;
        touched
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter(name: &str, value: i64) -> Write {
        Write {
            table: Table::Counters,
            fields: Some(Arc::new(Object::from([
                ("name".into(), Value::from(name)),
                ("value".into(), Value::Int64(value)),
            ]))),
        }
    }

    #[test]
    fn snapshots_are_isolated_from_later_commits() {
        let mut store = Store::default();
        store.apply(1, [(&DocId(1), &counter("a", 1))]);
        let before = store.head().clone();
        store.apply(2, [(&DocId(1), &counter("a", 2)), (&DocId(2), &counter("b", 7))]);
        assert_eq!(before.len(), 1);
        assert_eq!(before.get(DocId(1)).unwrap().get("value"), &Value::Int64(1));
        assert_eq!(store.head().get(DocId(1)).unwrap().get("value"), &Value::Int64(2));
        assert_eq!(store.head().get(DocId(1)).unwrap().created, 1);
    }

    #[test]
    fn prefix_scans_stay_inside_the_prefix() {
        let mut store = Store::default();
        let writes: Vec<(DocId, Write)> =
            ["a", "ab", "b", "a"].iter().enumerate().map(|(i, n)| (DocId(i as u64), counter(n, i as i64))).collect();
        store.apply(1, writes.iter().map(|(id, w)| (id, w)));
        let names = |prefix: &str| -> Vec<u64> {
            store.head().scan(IndexId::CountersByName, &[Value::from(prefix)]).map(|d| d.id.0).collect()
        };
        assert_eq!(names("a"), vec![0, 3]);
        assert_eq!(names("ab"), vec![1]);
        assert_eq!(names("c"), Vec::<u64>::new());
        let all: Vec<u64> = store.head().scan(IndexId::CountersByName, &[]).map(|d| d.id.0).collect();
        assert_eq!(all, vec![0, 3, 1, 2]);
        let last = store.head().scan(IndexId::CountersByName, &[]).next_back().unwrap();
        assert_eq!(last.id, DocId(2));
    }

    #[test]
    fn wire_ids_round_trip() {
        let id = DocId(0xabc);
        assert_eq!(DocId::parse(&id.to_wire(Table::Documents)), Some((Table::Documents, id)));
        assert_eq!(DocId::parse("x12"), None);
        assert_eq!(DocId::parse("d"), None);
        assert_eq!(DocId::parse("dzz"), None);
    }

    proptest::proptest! {
        /// The store against a naive model: after any sequence of commits,
        /// every snapshot taken along the way still scans exactly as the
        /// model did at that point, for every prefix.
        #[test]
        fn snapshots_scan_like_a_naive_model(
            batches in proptest::collection::vec(
                proptest::collection::vec((0u64..12, proptest::option::of(0u8..4)), 1..5),
                1..12,
            ),
        ) {
            let names = ["a", "ab", "b", "c"];
            let mut store = Store::default();
            let mut model: std::collections::BTreeMap<u64, (&str, i64)> = Default::default();
            let mut history = Vec::new();
            for (n, batch) in batches.iter().enumerate() {
                let writes: std::collections::BTreeMap<DocId, Write> = batch
                    .iter()
                    .map(|&(id, name)| {
                        let write = match name {
                            Some(k) => counter(names[k as usize], n as i64),
                            None => Write { table: Table::Counters, fields: None },
                        };
                        (DocId(id), write)
                    })
                    .collect();
                for (id, w) in &writes {
                    match &w.fields {
                        Some(f) => {
                            let name = names.iter().find(|n| f.get("name") == Some(&Value::from(**n))).unwrap();
                            model.insert(id.0, (name, n as i64));
                        }
                        None => {
                            model.remove(&id.0);
                        }
                    }
                }
                store.apply(n as u64 + 1, &writes);
                history.push((store.head().clone(), model.clone()));
            }
            for (snapshot, model) in &history {
                for prefix in [None, Some("a"), Some("ab"), Some("b"), Some("c"), Some("d")] {
                    let key: Vec<Value> = prefix.map(Value::from).into_iter().collect();
                    let got: Vec<u64> = snapshot.scan(IndexId::CountersByName, &key).map(|d| d.id.0).collect();
                    let mut want: Vec<(&str, u64)> = model
                        .iter()
                        .filter(|(_, (name, _))| prefix.is_none_or(|p| *name == p))
                        .map(|(id, (name, _))| (*name, *id))
                        .collect();
                    want.sort();
                    let want: Vec<u64> = want.into_iter().map(|(_, id)| id).collect();
                    proptest::prop_assert_eq!(&got, &want, "prefix {:?}", prefix);
                }
                proptest::prop_assert_eq!(snapshot.len(), model.len());
            }
        }
    }
}
