//! The pagination steps' side of the sync model: the seeded channel, the
//! `messages:page` frames a client sends and the pages it holds, and the
//! rule two consecutive pages must keep.
//!
//! The client loads pages the way `usePaginatedQuery` does: the first page
//! from a null cursor, each next one from the `continueCursor` of the page
//! before it, and nothing more once a page says it is done. It never splits
//! a grown page at its `splitCursor`, as `usePaginatedQuery` does to keep
//! pages small (the core's own tests cover the split). When steps run, the
//! network and the core stay in `sync.rs`.

use syncspec_protocol::value::Value;
use syncspec_protocol::wire::{self, QuerySetChange};
use syncspec_server::core::Core;
use syncspec_server::store::IndexId;

/// The channel the pagination steps read and write.
const CHANNEL: &str = "p";
/// The messages the channel holds before exploring, oldest first.
pub(super) const SEEDED: [&str; 3] = ["m1", "m2", "m3"];
/// The body `Step::Send` sends.
pub(super) const SENT: &str = "m4";
/// Rows per page: with one, the first two pages hold two of the three
/// seeded messages, and one arrival or one removal moves every page's rows.
const PAGE_ITEMS: f64 = 1.0;
/// The query id of the first page; page `i` is `FIRST_PAGE_QUERY + i`, after
/// the counter's (0, 2 after a resubscribe) and the bank's (1).
pub(super) const FIRST_PAGE_QUERY: u32 = 3;

/// One page a client subscribed to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct PageSub {
    /// Where the page starts: `None` for the first page, else the
    /// `continueCursor` of the page before it when this one was loaded.
    cursor: Option<String>,
    /// The journal last received (the page's fixed end), echoed on a re-add
    /// after a reconnect so the page keeps its end.
    journal: Option<String>,
    /// The page as the client holds it, on this socket.
    pub(super) view: Option<PageView>,
}

/// A page's result as the client holds it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct PageView {
    /// The rows' bodies, newest first.
    rows: Vec<String>,
    is_done: bool,
    continue_cursor: String,
}

impl PageSub {
    /// The first page.
    pub(super) fn first() -> PageSub {
        PageSub { cursor: None, journal: None, view: None }
    }

    /// The page after this one, or `None` if there is nothing more to load
    /// (this page is done) or its result has not arrived yet.
    pub(super) fn next(&self) -> Option<PageSub> {
        let view = self.view.as_ref().filter(|v| !v.is_done)?;
        Some(PageSub { cursor: Some(view.continue_cursor.clone()), journal: None, view: None })
    }

    /// The `ModifyQuerySet` adding this page as query `query_id`, from query-set version `base`.
    pub(super) fn add_frame(&self, base: u32, query_id: u32) -> String {
        let opts = Value::object([
            ("numItems", Value::Float64(PAGE_ITEMS)),
            ("cursor", self.cursor.as_deref().map_or(Value::Null, Value::from)),
        ]);
        let args = Value::object([("channel", Value::from(CHANNEL)), ("paginationOpts", opts)]);
        let add =
            QuerySetChange::Add { query_id, udf_path: "messages:page", args: &args, journal: self.journal.as_deref() };
        wire::write_modify_query_set(base, base + 1, &[add])
    }

    /// Takes a pushed result (and its journal); a value that is not a page
    /// is dropped, so a page the server mangles shows as missing.
    pub(super) fn update(&mut self, value: &Value, journal: Option<String>) {
        self.view = read_page(value);
        self.journal = journal.or(self.journal.take());
    }
}

fn read_page(value: &Value) -> Option<PageView> {
    let Value::Array(rows) = value.get("page")? else {
        return None;
    };
    let rows = rows.iter().map(|r| r.get("body").and_then(Value::as_str).map(str::to_owned)).collect::<Option<_>>()?;
    let Value::Boolean(is_done) = *value.get("isDone")? else {
        return None;
    };
    let continue_cursor = value.get("continueCursor")?.as_str()?.to_owned();
    Some(PageView { rows, is_done, continue_cursor })
}

/// The rule consecutive pages keep: the pages a client holds, joined in
/// order from the first up to the first it does not hold yet, are the
/// channel's newest rows at the ts of the transition that left them so,
/// with no row twice and none skipped; and if the last of them is done,
/// they are all of the channel's rows. `channel` is newest first.
///
/// One held page on its own always passes (the first page starts at the
/// newest row); the rule bites once two are held, where a page whose end
/// moved overlaps the next or leaves a gap before it.
pub(super) fn pages_agree(pages: &[PageSub], channel: &[String]) -> bool {
    let held: Vec<&PageView> = pages.iter().map_while(|p| p.view.as_ref()).collect();
    let joined: Vec<String> = held.iter().flat_map(|v| v.rows.iter().cloned()).collect();
    match held.last() {
        None => true,
        Some(last) if last.is_done => joined == channel,
        Some(_) => channel.starts_with(&joined),
    }
}

/// Whether `channel` (newest first) has both gained a message and lost a
/// seeded one since it was seeded.
pub(super) fn arrived_and_left(channel: &[String]) -> bool {
    channel.iter().any(|b| !SEEDED.contains(&b.as_str())) && SEEDED.iter().any(|s| !channel.iter().any(|b| b == s))
}

/// The channel's bodies at the core's head, newest first.
pub(super) fn channel(core: &Core) -> Vec<String> {
    core.head()
        .scan(IndexId::MessagesByChannel, &[Value::from(CHANNEL)])
        .rev()
        .map(|doc| doc.get("body").as_str().unwrap_or_default().to_owned())
        .collect()
}

/// `messages:send`'s arguments: `body` to the channel from `author`.
pub(super) fn send_args(author: &str, body: &str) -> Value {
    Value::object([("channel", Value::from(CHANNEL)), ("author", Value::from(author)), ("body", Value::from(body))])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(rows: &[&str], is_done: bool) -> PageSub {
        let rows = rows.iter().map(|r| (*r).to_owned()).collect();
        PageSub { view: Some(PageView { rows, is_done, continue_cursor: "c".into() }), ..PageSub::first() }
    }

    fn channel(rows: &[&str]) -> Vec<String> {
        rows.iter().map(|r| (*r).to_owned()).collect()
    }

    #[test]
    fn consecutive_pages_must_be_the_channels_newest_rows() {
        let now = channel(&["m4", "m3", "m2", "m1"]);
        assert!(pages_agree(&[held(&["m4"], false), held(&["m3"], false)], &now));
        // Only the held pages count, from the first on.
        assert!(pages_agree(&[held(&["m4"], false), PageSub::first(), held(&["m1"], false)], &now));
        // A gap: m3 was skipped.
        assert!(!pages_agree(&[held(&["m4"], false), held(&["m2"], false)], &now));
        // An overlap: m4 twice.
        assert!(!pages_agree(&[held(&["m4"], false), held(&["m4"], false)], &now));
        // A done last page must reach the end of the channel.
        assert!(!pages_agree(&[held(&["m4"], false), held(&["m3"], true)], &now));
        assert!(pages_agree(&[held(&["m4", "m3"], false), held(&["m2", "m1"], true)], &now));
    }
}
