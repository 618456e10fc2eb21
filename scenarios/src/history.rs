//! The `history` client: a chat client that pages back through its
//! channel's history as `usePaginatedQuery` does, with its subscription,
//! its page loads, the shape of its push, and the seeding that gives it
//! history to page through.
//!
//! It watches page 0 of `messages:page` (the newest 20; the backend pins the
//! page's end at its first result, so every message sent after the client
//! subscribed shows up in it, and the chat accounting holds), writes like a
//! chat client (`writer`), and every 10 s on average subscribes to the next
//! older page from the last page's `continueCursor` (`loadMore`), until
//! `isDone`. The time from a load's intended instant to the page's first
//! result is the `page` metric. It checks only what it needs to trust its
//! numbers: pages follow each other without overlap and newest first, and
//! a client that paged to the end saw every seeded message. The pagination
//! contract in depth is the conformance suite's.

use std::collections::HashSet;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use rand::SeedableRng as _;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;

use syncspec_protocol::client;
use syncspec_protocol::value::Value;
use syncspec_protocol::wire::{self, ServerFrameKind};

use crate::conn::{member_name, Conn, Owner, Page, PageLoad};
use crate::room::Room;
use crate::run::{LoadAuth, Run};
use crate::writer::exponential;

/// Messages per page, as a chat view's `initialNumItems` and each `loadMore`.
pub(crate) const PAGE_ITEMS: f64 = 20.0;
/// Messages every channel holds before the run: ten pages to go back through.
pub(crate) const SEED_MESSAGES: usize = 200;
/// Older pages are loaded every 10 s on average (exponential gaps).
pub(crate) const PAGE_MEAN_GAP_US: f64 = 10_000_000.0;
/// Seeded bodies start with this and carry no stamp, so no reader takes
/// them for a change.
const SEED_PREFIX: &str = "seed ";
/// Channels seeded at once, one socket each.
const SEEDING_AT_ONCE: usize = 8;
/// The most one channel's seeding may take.
const SEED_TIMEOUT: Duration = Duration::from_secs(60);

/// Page 0: the newest `PAGE_ITEMS` messages of the channel.
pub(crate) fn subscription(channel: &str) -> (&'static str, Value) {
    ("messages:page", page_args(channel, None))
}

fn page_args(channel: &str, cursor: Option<&str>) -> Value {
    let opts =
        Value::object([("numItems", Value::Float64(PAGE_ITEMS)), ("cursor", cursor.map_or(Value::Null, Value::from))]);
    Value::object([("channel", Value::from(channel)), ("paginationOpts", opts)])
}

/// A `messages:page` result holding `rows`, for the typical push's size.
pub(crate) fn page_result(rows: Vec<Value>, cursor: &str) -> Value {
    Value::object([
        ("page", Value::Array(rows)),
        ("isDone", Value::Boolean(false)),
        ("continueCursor", Value::from(cursor)),
    ])
}

/// Loads older pages, one at a time, every `PAGE_MEAN_GAP_US` on average
/// from `ready`, until the history is done or the run stops writing.
/// `first` is page 0's first result.
pub(crate) async fn load_pages(run: &Run, owner: &Owner, conn: &Conn, ready: u64, first: &str) {
    let clock = run.recorder.clock();
    let mut rng = rand::rngs::SmallRng::from_rng(&mut rand::rng());
    let mut paging = Paging::default();
    if let Err(problem) = paging.follow(first) {
        return owner.recorder.error(owner.kind, format!("page 0: {problem}"));
    }
    let mut next = ready + exponential(&mut rng, PAGE_MEAN_GAP_US);
    while !paging.done && run.may_write(next) {
        tokio::time::sleep_until(clock.instant(next).into()).await;
        let (reply, answer) = oneshot::channel();
        let args = page_args(&owner.room.name, Some(&paging.cursor));
        if !conn.load_page(PageLoad { stamp: next, function: "messages:page", args, reply }) {
            return;
        }
        // The next load needs this page's cursor, as `loadMore` does, so it
        // waits for this answer; a load due meanwhile goes out when it
        // comes, still measured from its own intended instant.
        match answer.await {
            Ok(Ok(page)) => {
                if let Err(problem) = paging.follow(&page) {
                    return owner.recorder.error(owner.kind, format!("page {}: {problem}", paging.pages));
                }
            }
            // A failed page is counted where it failed; a dropped answer
            // means the connection ended.
            Ok(Err(_)) | Err(_) => return,
        }
        next += exponential(&mut rng, PAGE_MEAN_GAP_US).max(1);
    }
}

/// A client's way back through its channel's history.
#[derive(Debug, Default)]
struct Paging {
    /// Pages read, page 0 included.
    pages: usize,
    /// Where the next older page starts: the last page's `continueCursor`.
    cursor: String,
    /// The last page said `isDone`.
    done: bool,
    /// The oldest `_creationTime` read so far (none before page 0).
    oldest: Option<f64>,
    /// Every message read, to catch a page that repeats one.
    ids: HashSet<String>,
    /// Seeded messages read.
    seeded: usize,
}

impl Paging {
    /// Takes in the next page's first result (raw JSON), checking that it
    /// continues the pages before it: newest first, older than everything
    /// read, nothing read twice; at the end, every seeded message read.
    fn follow(&mut self, raw: &str) -> Result<(), String> {
        let page: Page<'_> = serde_json::from_str(raw).map_err(|e| format!("an unexpected result: {e}"))?;
        for row in &page.page {
            if self.oldest.is_some_and(|oldest| row.creation_time > oldest) {
                return Err(format!(
                    "message {} of {} is newer than one already read ({:?}): the pages are out of order",
                    row.id, row.creation_time, self.oldest
                ));
            }
            if !self.ids.insert(row.id.clone().into_owned()) {
                return Err(format!("message {} was already on an earlier page: the pages overlap", row.id));
            }
            self.oldest = Some(row.creation_time);
            self.seeded += usize::from(row.body.starts_with(SEED_PREFIX));
        }
        if page.page.is_empty() && !page.is_done {
            return Err("an empty page that is not the last".into());
        }
        self.pages += 1;
        self.cursor = page.continue_cursor.into_owned();
        self.done = page.is_done;
        if self.done && self.seeded != SEED_MESSAGES {
            return Err(format!(
                "paged to the end of the history and read {} of its {SEED_MESSAGES} seeded messages",
                self.seeded
            ));
        }
        Ok(())
    }
}

/// Gives every history channel `SEED_MESSAGES` messages before any client
/// joins: one socket per channel (a few at once), its sends pipelined, each
/// written by one of the channel's members in turn.
pub(crate) async fn seed(url: &str, rooms: &[&Room], auth: Option<&LoadAuth>) -> Result<(), String> {
    let socket = client::socket_url(url).map_err(|e| e.to_string())?;
    let mut seeding = futures_util::stream::iter(rooms.iter().map(|room| {
        let token = auth.map(|auth| auth.token_for(&member_name(&room.name, 0)));
        let socket = socket.clone();
        async move {
            tokio::time::timeout(SEED_TIMEOUT, seed_room(&socket, room, token.as_deref()))
                .await
                .unwrap_or_else(|_| Err(format!("no answer to every message within {SEED_TIMEOUT:?}")))
                .map_err(|e| format!("channel {}: {e}", room.name))
        }
    }))
    .buffer_unordered(SEEDING_AT_ONCE);
    while let Some(seeded) = seeding.next().await {
        seeded?;
    }
    Ok(())
}

async fn seed_room(socket: &str, room: &Room, token: Option<&str>) -> Result<(), String> {
    let mut ws = client::open_socket(socket).await.map_err(|e| e.to_string())?;
    let mut frames = crate::conn::opening_frames(token);
    let channel = Value::from(room.name.as_str());
    for i in 0..SEED_MESSAGES {
        let args = Value::object([
            ("channel", channel.clone()),
            ("author", Value::from(member_name(&room.name, i % room.members))),
            ("body", Value::from(format!("{SEED_PREFIX}{i} of this channel's history"))),
        ]);
        frames.push(wire::write_mutation(i as u32, "messages:send", &args));
    }
    for frame in frames {
        ws.send(Message::text(frame)).await.map_err(|e| e.to_string())?;
    }
    let mut answered = 0;
    while answered < SEED_MESSAGES {
        let text = match ws.next().await {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("the backend closed the socket".into()),
        };
        let frame = wire::peek(&text).map_err(|e| format!("an unreadable frame: {e}"))?;
        match frame.kind {
            ServerFrameKind::MutationResponse if frame.success == Some(true) => answered += 1,
            ServerFrameKind::MutationResponse => {
                let message = frame.result.map(|r| r.get().to_owned()).unwrap_or_default();
                return Err(format!("messages:send failed: {message}"));
            }
            ServerFrameKind::AuthError | ServerFrameKind::FatalError => {
                return Err(format!("{:?}: {}", frame.kind, frame.error.as_deref().unwrap_or("")));
            }
            _ => {}
        }
    }
    let _ = ws.close(None).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(rows: &[(&str, f64, &str)], done: bool) -> String {
        let rows: Vec<Value> = rows
            .iter()
            .map(|(id, created, body)| {
                Value::object([
                    ("_id", Value::from(*id)),
                    ("_creationTime", Value::Float64(*created)),
                    ("author", Value::from("c:m1")),
                    ("body", Value::from(*body)),
                ])
            })
            .collect();
        let mut result = page_result(rows, "next");
        if let Value::Object(fields) = &mut result {
            fields.insert("isDone".into(), Value::Boolean(done));
        }
        syncspec_protocol::json::encode(&result)
    }

    #[test]
    fn pages_that_follow_each_other_pass_and_an_overlap_or_a_gap_does_not() {
        let mut paging = Paging::default();
        paging.follow(&page(&[("c", 3.0, "t1 hi"), ("b", 2.0, "seed 1")], false)).unwrap();
        assert_eq!((paging.pages, paging.seeded, paging.cursor.as_str()), (1, 1, "next"));
        // Page 1 repeats b: an overlap.
        let overlap = paging.follow(&page(&[("b", 2.0, "seed 1"), ("a", 1.0, "seed 0")], false)).unwrap_err();
        assert!(overlap.contains("overlap"), "{overlap}");

        let mut paging = Paging::default();
        paging.follow(&page(&[("b", 2.0, "seed 1")], false)).unwrap();
        let disorder = paging.follow(&page(&[("c", 3.0, "seed 2")], false)).unwrap_err();
        assert!(disorder.contains("out of order"), "{disorder}");

        // The end of a history missing seeded messages: a gap.
        let mut paging = Paging::default();
        let gap = paging.follow(&page(&[("b", 2.0, "seed 1")], true)).unwrap_err();
        assert!(gap.contains("read 1 of its 200 seeded messages"), "{gap}");
        assert!(Paging::default().follow(&page(&[], false)).unwrap_err().contains("empty page"));
    }

    #[test]
    fn seeded_bodies_carry_no_stamp() {
        let body = format!("{SEED_PREFIX}17 of this channel's history");
        assert_eq!(crate::conn::stamps(&body).count(), 0);
    }
}
