//! Category 11, Convex app patterns: pagination (11.1 to 11.3). These read
//! `messages:page`, Convex's `.paginate()` contract, as the npm client's
//! `usePaginatedQuery` reads it: page 0 from a null cursor, page n+1 from
//! page n's `continueCursor`, each page a subscription of its own.
//!
//! 11.1 judges that the pages together hold exactly the channel's newest
//! rows, in order, in every view pushed while rows arrive and leave; 11.2
//! the contract's shape; 11.3 that pages re-added after a reconnect with
//! their journals keep their ends. The cases after 11.3 (actions, scheduled
//! functions) live in files of their own.
//!
//! Each case writes a fresh channel itself, so it knows the channel's
//! content at every commit ts from its own writes and needs no oracle (the
//! replay checkers know neither the ends a subscription pins nor the
//! backend's cursors). A backend without `messages:page` or
//! `messages:remove` gets Unimplemented, not a failure.

use std::collections::{BTreeMap, BTreeSet};

use syncspec_protocol::client::{Client, MutationOutcome, QueryResult, View};
use syncspec_protocol::history::{self, ClientId, EventKind, History};
use syncspec_protocol::value::Value;
use syncspec_protocol::wire::{QueryId, Ts};

use super::case;
use crate::checkers::{field, order};
use crate::suite::{
    answered, connect_many, missing_function, obj, text, value_in, wait_view, Case, CaseResult, Ctx, Judge,
};

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!(
            "11.1",
            "consecutive pages stay gapless as rows arrive and leave",
            "pages subscribed each from the last one's continueCursor together hold exactly the channel's newest rows, in order, with no overlap and no gap, in every view pushed",
            gapless_pages
        ),
        case!(
            "11.2",
            "messages:page keeps the .paginate() contract",
            "at most numItems rows newest first from the cursor, isDone only at the end, a string continueCursor, endCursor honoured, a page past the end empty and done, an unknown cursor a failed query",
            contract
        ),
        case!(
            "11.3",
            "pages re-added after a reconnect with their journals keep their ends",
            "a reconnecting client that echoes each page's journal gets its pages back whole, and they stay gapless as rows arrive and leave",
            reconnected_pages
        ),
    ]
}

/// The paginated query and the mutation that deletes a message.
const PAGE: &str = "messages:page";
const REMOVE: &str = "messages:remove";
/// How many pages a case loads, at most, before the last must say `isDone`.
const MAX_PAGES: usize = 6;
/// A cursor no backend hands out.
const UNKNOWN_CURSOR: &str = "syncspec-no-such-cursor";

/// One message as a page or a write shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Row {
    id: String,
    body: String,
}

/// One `messages:page` result.
#[derive(Clone, Debug, PartialEq)]
struct Page {
    rows: Vec<Row>,
    /// The rows as the backend sent them.
    values: Vec<Value>,
    is_done: bool,
    continue_cursor: String,
    split_cursor: Option<String>,
}

impl Page {
    /// Reads a `{page, isDone, continueCursor, splitCursor?}` result.
    fn parse(value: &Value) -> Result<Page, String> {
        let Some(Value::Array(values)) = field(value, "page") else {
            return Err(format!("no `page` array in {value}"));
        };
        let rows = values
            .iter()
            .map(|row| match (field(row, "_id"), field(row, "body")) {
                (Some(Value::String(id)), Some(Value::String(body))) => Ok(Row { id: id.clone(), body: body.clone() }),
                _ => Err(format!("a row without a string `_id` and `body`: {row}")),
            })
            .collect::<Result<Vec<Row>, String>>()?;
        let Some(Value::Boolean(is_done)) = field(value, "isDone") else {
            return Err(format!("no boolean `isDone` in {value}"));
        };
        let Some(Value::String(continue_cursor)) = field(value, "continueCursor") else {
            return Err(format!("no string `continueCursor` in {value}"));
        };
        let split_cursor = match field(value, "splitCursor") {
            None | Some(Value::Null) => None,
            Some(Value::String(split)) => Some(split.clone()),
            Some(other) => return Err(format!("a `splitCursor` that is not a string or null: {other}")),
        };
        Ok(Page {
            rows,
            values: values.clone(),
            is_done: *is_done,
            continue_cursor: continue_cursor.clone(),
            split_cursor,
        })
    }
}

/// One subscribed page: its query and the cursor it starts from.
#[derive(Clone, Debug)]
struct Subscribed {
    query: QueryId,
    cursor: Option<String>,
}

fn page_args(channel: &str, num_items: usize, cursor: Option<&str>, end: Option<&str>) -> Value {
    let mut opts =
        vec![("numItems", Value::Float64(num_items as f64)), ("cursor", cursor.map_or(Value::Null, Value::from))];
    opts.extend(end.map(|end| ("endCursor", Value::from(end))));
    obj([("channel", channel.into()), ("paginationOpts", Value::object(opts))])
}

/// The writes a case made to its channel, each with its commit ts, so the
/// channel's content at any ts is known without asking the backend.
#[derive(Debug, Default)]
struct Channel {
    writes: Vec<Write>,
}

#[derive(Debug)]
struct Write {
    ts: Ts,
    /// The step it belongs to, as evidence names it.
    step: String,
    change: Change,
}

#[derive(Debug)]
enum Change {
    Insert(Row),
    Remove(String),
}

impl Channel {
    /// The channel's rows, newest first, once every write up to `ts` committed.
    fn at(&self, ts: Ts) -> Vec<Row> {
        let mut writes: Vec<&Write> = self.writes.iter().filter(|w| w.ts <= ts).collect();
        writes.sort_by_key(|w| w.ts);
        let mut rows: Vec<Row> = Vec::new();
        for w in writes {
            match &w.change {
                Change::Insert(row) => rows.push(row.clone()),
                Change::Remove(id) => rows.retain(|r| &r.id != id),
            }
        }
        rows.reverse();
        rows
    }

    /// The step of the last write at or before `ts`.
    fn step_at(&self, ts: Ts) -> &str {
        self.writes.iter().filter(|w| w.ts <= ts).max_by_key(|w| w.ts).map_or("before any write", |w| w.step.as_str())
    }

    /// The row sent with `body`.
    fn row(&self, body: &str) -> Option<Row> {
        self.writes.iter().find_map(|w| match &w.change {
            Change::Insert(row) if row.body == body => Some(row.clone()),
            _ => None,
        })
    }
}

/// The client that writes the channel, and what it wrote.
struct Writer<'a> {
    client: &'a Client,
    channel: String,
    written: Channel,
}

impl Writer<'_> {
    /// Runs one mutation; its value and commit ts, or `None` with the
    /// reason recorded (no answer, a failure, or no such function).
    async fn call(&self, judge: &mut Judge, function: &str, args: Value, what: &str) -> Option<(Value, Ts)> {
        let r = self.client.mutation(function, args).await;
        if !answered(judge, || what.to_owned(), &r) {
            return None;
        }
        match r {
            Ok(MutationOutcome::Ok { value, ts }) => Some((value, ts)),
            Ok(MutationOutcome::Failed { message, data }) if missing_function(&message, data.as_ref()) => {
                judge.unimplemented(format!("the backend has no {function} ({message:?}): {what} was not made"));
                None
            }
            other => {
                judge.fail(format!("{what} failed: {other:?}"));
                None
            }
        }
    }

    /// Sends a message with `body`, as part of `step`.
    async fn send(&mut self, judge: &mut Judge, body: &str, step: &str) -> Option<Ts> {
        let args = obj([("channel", self.channel.as_str().into()), ("author", "pager".into()), ("body", body.into())]);
        let (value, ts) = self.call(judge, "messages:send", args, &format!("sending {body}")).await?;
        let Value::String(id) = value else {
            judge.fail(format!("messages:send {body} returned {value}, not an id"));
            return None;
        };
        self.written.writes.push(Write {
            ts,
            step: step.to_owned(),
            change: Change::Insert(Row { id, body: body.to_owned() }),
        });
        Some(ts)
    }

    /// Removes `row`, as part of `step`.
    async fn remove(&mut self, judge: &mut Judge, row: &Row, step: &str) -> Option<Ts> {
        let args = obj([("id", row.id.as_str().into())]);
        let (_, ts) = self.call(judge, REMOVE, args, &format!("removing {}", row.body)).await?;
        self.written.writes.push(Write { ts, step: step.to_owned(), change: Change::Remove(row.id.clone()) });
        Some(ts)
    }
}

/// Waits for query `q`'s first answer and reads it as a page; records
/// Unimplemented when the backend has no `messages:page`.
async fn answer(judge: &mut Judge, client: &Client, q: QueryId, what: &str) -> Option<Page> {
    let view = wait_view(judge, client, what, |v| v.results.contains_key(&q)).await?;
    match &view.results[&q] {
        QueryResult::Value(value) => match Page::parse(value) {
            Ok(page) => Some(page),
            Err(e) => {
                judge.fail(format!("{what} is not a page: {e}"));
                None
            }
        },
        QueryResult::Failed { message, data } if missing_function(message, data.as_ref()) => {
            judge.unimplemented(format!("the backend has no {PAGE}: {message:?}"));
            None
        }
        QueryResult::Failed { message, data } => {
            judge.fail(format!("{what} failed: {message} {}", data.as_ref().map_or(String::new(), Value::to_string)));
            None
        }
    }
}

/// Subscribes page 0 from a null cursor, then each next page from the last
/// one's `continueCursor` until one says `isDone`, as `usePaginatedQuery`
/// loads more; `rows` is how many the channel holds, for the evidence.
async fn load_pages(
    judge: &mut Judge,
    client: &Client,
    channel: &str,
    num_items: usize,
    rows: usize,
) -> Option<(Vec<Subscribed>, Vec<Page>)> {
    let (mut subs, mut pages) = (Vec::new(), Vec::<Page>::new());
    loop {
        let cursor = pages.last().map(|p| p.continue_cursor.clone());
        let query = client.subscribe(PAGE, page_args(channel, num_items, cursor.as_deref(), None));
        subs.push(Subscribed { query, cursor });
        let page = answer(judge, client, query, &format!("page {}", pages.len())).await?;
        let done = page.is_done;
        pages.push(page);
        if done {
            return Some((subs, pages));
        }
        if pages.len() == MAX_PAGES {
            judge.fail(format!(
                "{MAX_PAGES} pages of numItems {num_items} over a channel of {rows} rows, and the last still says isDone false: {}",
                describe(&subs, &pages)
            ));
            return None;
        }
    }
}

/// The pages as the view holds them, once every one has a value.
fn pages_in(view: &View, subs: &[Subscribed]) -> Option<Result<Vec<Page>, String>> {
    let values: Option<Vec<&Value>> = subs.iter().map(|s| value_in(view, s.query)).collect();
    Some(values?.into_iter().map(Page::parse).collect())
}

/// Each page's start cursor, bodies and continue cursor, for evidence.
fn describe(subs: &[Subscribed], pages: &[Page]) -> String {
    let cursor = |c: Option<&str>| c.map_or("null".to_owned(), |c| format!("{c:?}"));
    subs.iter()
        .zip(pages)
        .enumerate()
        .map(|(i, (s, p))| {
            let bodies: Vec<&str> = p.rows.iter().map(|r| r.body.as_str()).collect();
            format!(
                "page {i} (cursor {}): [{}] continueCursor {:?}{}{}",
                cursor(s.cursor.as_deref()),
                bodies.join(" "),
                p.continue_cursor,
                if p.is_done { ", isDone" } else { "" },
                p.split_cursor.as_ref().map_or(String::new(), |s| format!(", splitCursor {s:?}"))
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn bodies(rows: &[Row]) -> String {
    rows.iter().map(|r| r.body.as_str()).collect::<Vec<_>>().join(" ")
}

/// What is wrong with `pages` as a reading of `expected` (the channel's
/// rows, newest first): rows two pages hold (an overlap), rows no page
/// holds (a gap, placed between the pages around it), rows the channel does
/// not hold, and rows out of order. Empty when the pages are exactly it.
fn layout_problems(expected: &[Row], pages: &[Page]) -> Vec<String> {
    let mut at: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (p, page) in pages.iter().enumerate() {
        for row in &page.rows {
            at.entry(row.id.as_str()).or_default().push(p);
        }
    }
    let held: Vec<&Row> = pages.iter().flat_map(|p| &p.rows).collect();
    let wanted: BTreeSet<&str> = expected.iter().map(|r| r.id.as_str()).collect();
    let mut problems = Vec::new();
    let mut reported = BTreeSet::new();
    for row in &held {
        let pages_holding = &at[row.id.as_str()];
        if pages_holding.len() > 1 && reported.insert(row.id.as_str()) {
            let list: Vec<String> = pages_holding.iter().map(usize::to_string).collect();
            problems.push(format!("{} is held {} times (pages {}): an overlap", row.body, list.len(), list.join(", ")));
        }
        if !wanted.contains(row.id.as_str()) && reported.insert(row.id.as_str()) {
            problems
                .push(format!("{} is not in the channel (removed, or never written) but a page holds it", row.body));
        }
    }
    for (i, row) in expected.iter().enumerate() {
        if at.contains_key(row.id.as_str()) {
            continue;
        }
        let before = expected[..i].iter().rev().find_map(|r| at.get(r.id.as_str()).map(|ps| (r, ps[ps.len() - 1])));
        let after = expected[i + 1..].iter().find_map(|r| at.get(r.id.as_str()).map(|ps| (r, ps[0])));
        let place = match (before, after) {
            (Some((b, pb)), Some((a, pa))) if pb != pa => {
                format!("a gap between page {pb} (ending at {}) and page {pa} (starting at {})", b.body, a.body)
            }
            (Some((_, pb)), Some(_)) => format!("missing inside page {pb}"),
            (Some((b, pb)), None) => format!("missing after page {pb}, the last (ending at {})", b.body),
            (None, Some((a, pa))) => format!("missing before page {pa} (starting at {})", a.body),
            (None, None) => "no page holds any row of the channel".to_owned(),
        };
        problems.push(format!("{} is in no page: {place}", row.body));
    }
    if problems.is_empty() && held.iter().map(|r| &r.id).ne(expected.iter().map(|r| &r.id)) {
        problems.push(format!(
            "the pages hold the channel's rows out of order: [{}] instead of [{}], newest first",
            held.iter().map(|r| r.body.as_str()).collect::<Vec<_>>().join(" "),
            bodies(expected)
        ));
    }
    problems
}

/// Judges every view of `reader` that holds all its pages: they must be
/// exactly the channel's rows at the view's ts. One failure per step of
/// the writes (the first view after it that is wrong), with `context`.
fn judge_views(
    judge: &mut Judge,
    history: &History,
    reader: ClientId,
    subs: &[Subscribed],
    written: &Channel,
    context: &str,
) {
    let mut view: BTreeMap<QueryId, Value> = BTreeMap::new();
    let (mut checked, mut failed_steps, mut sockets) = (0, BTreeSet::new(), 0);
    for (i, event) in history.events.iter().enumerate().filter(|(_, e)| e.client == reader) {
        let (end, modifications) = match &event.kind {
            EventKind::Connect { .. } => {
                view.clear();
                sockets += 1;
                continue;
            }
            EventKind::Transition { end, modifications, .. } => (end, modifications),
            _ => continue,
        };
        history::apply(&mut view, modifications);
        let Some(values) = subs.iter().map(|s| view.get(&s.query)).collect::<Option<Vec<&Value>>>() else {
            continue;
        };
        checked += 1;
        let step = match sockets {
            0 | 1 => written.step_at(end.ts).to_owned(),
            n => format!("{} and a reconnect (the reader's socket {n})", written.step_at(end.ts)),
        };
        let problems = match values.into_iter().map(Page::parse).collect::<Result<Vec<Page>, String>>() {
            Ok(pages) => {
                let problems = layout_problems(&written.at(end.ts), &pages);
                (!problems.is_empty()).then(|| format!("{}; {}", problems.join("; "), describe(subs, &pages)))
            }
            Err(e) => Some(format!("a page is not a page: {e}")),
        };
        if let Some(problems) = problems {
            if failed_steps.insert(step.clone()) {
                judge.fail_at(format!("after {step}, the view at ts {}: {problems}{context}", end.ts), vec![i]);
            }
        }
    }
    judge.expect(checked > 0, || format!("no view of client {reader} held all {} pages", subs.len()));
}

/// Waits until the reader's view is at or past `ts` and holds every page;
/// returns the pages.
async fn pages_at(judge: &mut Judge, reader: &Client, subs: &[Subscribed], ts: Ts, what: &str) -> Option<Vec<Page>> {
    let view = wait_view(judge, reader, what, |v| {
        v.version.is_some_and(|version| version.ts >= ts) && pages_in(v, subs).is_some()
    })
    .await?;
    match pages_in(&view, subs)? {
        Ok(pages) => Some(pages),
        Err(e) => {
            judge.fail(format!("{what}: a page is not a page: {e}"));
            None
        }
    }
}

/// Sends `bodies` as the channel's first rows, oldest first.
async fn seed(judge: &mut Judge, writer: &mut Writer<'_>, bodies: &[String]) -> Option<Ts> {
    let step = format!("the seed messages {} to {}", bodies[0], bodies[bodies.len() - 1]);
    let mut last = None;
    for body in bodies {
        last = Some(writer.send(judge, body, &step).await?);
    }
    last
}

/// Where a step of 11.1 changes the channel.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// Sends this many messages: they arrive at the top of page 0.
    Insert(usize),
    /// Removes the newest message.
    RemoveTop,
    /// Removes a row strictly inside page 0.
    RemoveInsidePage0,
    /// Removes page 0's last row: the row its end cursor names.
    RemoveLastOfPage0,
    /// Removes a row strictly inside page 1.
    RemoveInsidePage1,
    /// Removes page 1's last row.
    RemoveLastOfPage1,
    /// Removes page 1's first row.
    RemoveFirstOfPage1,
}

/// 11.1's steps: arrivals at the top (one, then more than a page, so page
/// 0 grows past numItems), and removals at the top, inside page 0, at page
/// 0's end row, inside page 1, at page 1's end row and start.
const STEPS: [Step; 9] = [
    Step::Insert(1),
    Step::RemoveTop,
    Step::RemoveInsidePage0,
    Step::Insert(4),
    Step::RemoveLastOfPage0,
    Step::RemoveInsidePage1,
    Step::RemoveLastOfPage1,
    Step::RemoveFirstOfPage1,
    Step::Insert(1),
];

impl Step {
    /// The row a removal takes, from the pages as the reader holds them.
    fn target(self, pages: &[Page]) -> Option<&Row> {
        fn inside(p: &Page) -> Option<&Row> {
            (p.rows.len() >= 3).then(|| &p.rows[p.rows.len() / 2])
        }
        match self {
            Step::Insert(_) => None,
            Step::RemoveTop => pages.iter().flat_map(|p| &p.rows).next(),
            Step::RemoveInsidePage0 => pages.first().and_then(inside),
            Step::RemoveLastOfPage0 => pages.first()?.rows.last(),
            Step::RemoveInsidePage1 => pages.get(1).and_then(inside),
            Step::RemoveLastOfPage1 => pages.get(1)?.rows.last(),
            Step::RemoveFirstOfPage1 => pages.get(1)?.rows.first(),
        }
    }

    fn describe(self, row: Option<&Row>) -> String {
        let body = row.map_or("", |r| r.body.as_str());
        match self {
            Step::Insert(n) => format!("sending {n} new message{}", if n == 1 { "" } else { "s" }),
            Step::RemoveTop => format!("removing {body}, the newest row"),
            Step::RemoveInsidePage0 => format!("removing {body}, inside page 0"),
            Step::RemoveLastOfPage0 => format!("removing {body}, page 0's last row"),
            Step::RemoveInsidePage1 => format!("removing {body}, inside page 1"),
            Step::RemoveLastOfPage1 => format!("removing {body}, page 1's last row"),
            Step::RemoveFirstOfPage1 => format!("removing {body}, page 1's first row"),
        }
    }
}

async fn gapless_pages(ctx: Ctx) -> CaseResult {
    const NUM_ITEMS: usize = 3;
    const SEEDS: usize = 8;
    let mut judge = Judge::default();
    let Some(c) = connect_many(&ctx, &mut judge, 2).await else { return judge.finish() };
    let (reader, mut writer) =
        (&c[0], Writer { client: &c[1], channel: ctx.fresh("pages"), written: Channel::default() });
    let seeds: Vec<String> = (0..SEEDS).map(|i| format!("s{i}")).collect();
    if seed(&mut judge, &mut writer, &seeds).await.is_none() {
        return judge.finish();
    }
    let Some((subs, mut pages)) = load_pages(&mut judge, reader, &writer.channel, NUM_ITEMS, SEEDS).await else {
        return judge.finish();
    };
    let mut sent = 0;
    'steps: for step in STEPS {
        let ts = match step {
            Step::Insert(n) => {
                let label = step.describe(None);
                let mut last = None;
                for _ in 0..n {
                    sent += 1;
                    match writer.send(&mut judge, &format!("n{sent}"), &label).await {
                        Some(ts) => last = Some(ts),
                        None => break 'steps,
                    }
                }
                last
            }
            _ => {
                let Some(row) = step.target(&pages).cloned() else {
                    judge.info(format!(
                        "{} was skipped: the pages were {}",
                        step.describe(None),
                        describe(&subs, &pages)
                    ));
                    continue;
                };
                match writer.remove(&mut judge, &row, &step.describe(Some(&row))).await {
                    Some(ts) => Some(ts),
                    None => break,
                }
            }
        };
        let Some(ts) = ts else { continue };
        let what = format!("the pages at a ts covering {}", writer.written.step_at(ts));
        match pages_at(&mut judge, reader, &subs, ts, &what).await {
            Some(now) => pages = now,
            None => break,
        }
    }
    judge_views(&mut judge, &ctx.history(), reader.id(), &subs, &writer.written, "");
    judge.verdict(order::version_chain(&ctx.history()));
    judge.finish()
}

/// What is wrong with `pages`, loaded one after another from a channel
/// nobody writes, as `.paginate()` pages of `num_items` over `list` (the
/// channel's `messages:list`, oldest first).
fn contract_problems(num_items: usize, list: &[Value], pages: &[Page]) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, page) in pages.iter().enumerate() {
        if page.rows.len() > num_items {
            problems.push(format!(
                "page {i} holds {} rows, more than numItems {num_items}: [{}]",
                page.rows.len(),
                bodies(&page.rows)
            ));
        }
        if page.is_done != (i + 1 == pages.len()) {
            problems.push(format!("page {i} of {} says isDone {}", pages.len(), page.is_done));
        }
    }
    let newest_first: Vec<&Value> = list.iter().rev().collect();
    let held: Vec<&Value> = pages.iter().flat_map(|p| &p.values).collect();
    if held != newest_first {
        let body = |v: &&Value| text(field(v, "body")).to_owned();
        problems.push(format!(
            "the pages, one after another, are not messages:list newest first: they hold [{}], the list [{}]{}",
            held.iter().map(body).collect::<Vec<_>>().join(" "),
            newest_first.iter().map(body).collect::<Vec<_>>().join(" "),
            if held.len() == newest_first.len() { " (rows that differ in a field)" } else { "" }
        ));
    }
    problems
}

async fn contract(ctx: Ctx) -> CaseResult {
    const NUM_ITEMS: usize = 2;
    const ROWS: usize = 5;
    let mut judge = Judge::default();
    let Some(c) = connect_many(&ctx, &mut judge, 2).await else { return judge.finish() };
    let (reader, mut writer) =
        (&c[0], Writer { client: &c[1], channel: ctx.fresh("pages"), written: Channel::default() });
    let seeds: Vec<String> = (0..ROWS).map(|i| format!("r{i}")).collect();
    if seed(&mut judge, &mut writer, &seeds).await.is_none() {
        return judge.finish();
    }
    let channel = writer.channel.clone();
    let list = reader.subscribe("messages:list", obj([("channel", channel.as_str().into())]));
    let Some((subs, pages)) = load_pages(&mut judge, reader, &channel, NUM_ITEMS, ROWS).await else {
        return judge.finish();
    };
    let Some(view) = wait_view(&mut judge, reader, "messages:list's rows", |v| value_in(v, list).is_some()).await
    else {
        return judge.finish();
    };
    let list_rows = match value_in(&view, list) {
        Some(Value::Array(rows)) => rows.clone(),
        other => {
            judge.fail(format!("messages:list returned {other:?}, not rows"));
            return judge.finish();
        }
    };
    for problem in contract_problems(NUM_ITEMS, &list_rows, &pages) {
        judge.fail(format!("{problem}; {}", describe(&subs, &pages)));
    }

    let last = pages[pages.len() - 1].continue_cursor.clone();
    let past = reader.subscribe(PAGE, page_args(&channel, NUM_ITEMS, Some(&last), None));
    if let Some(page) = answer(&mut judge, reader, past, "the page past the end").await {
        judge.expect(page.rows.is_empty() && page.is_done, || {
            format!(
                "the page from the last page's continueCursor {last:?} should be empty and done, got [{}] isDone {}",
                bodies(&page.rows),
                page.is_done
            )
        });
    }

    // A page with an end reads to it, past numItems: how the npm client
    // splits a grown page in two.
    if let [first, second, ..] = pages.as_slice() {
        let end = second.continue_cursor.clone();
        let both = reader.subscribe(PAGE, page_args(&channel, NUM_ITEMS, None, Some(&end)));
        if let Some(page) = answer(&mut judge, reader, both, "a page with an endCursor").await {
            let want: Vec<&Row> = first.rows.iter().chain(&second.rows).collect();
            judge.expect(page.rows.iter().eq(want.iter().copied()), || {
                format!(
                    "a page from a null cursor to endCursor {end:?} (page 1's continueCursor) should hold pages 0 and 1, [{}], got [{}]",
                    want.iter().map(|r| r.body.as_str()).collect::<Vec<_>>().join(" "),
                    bodies(&page.rows)
                )
            });
        }
    }

    let unknown = reader.subscribe(PAGE, page_args(&channel, NUM_ITEMS, Some(UNKNOWN_CURSOR), None));
    if let Some(view) =
        wait_view(&mut judge, reader, "the answer to an unknown cursor", |v| v.results.contains_key(&unknown)).await
    {
        match &view.results[&unknown] {
            QueryResult::Value(value) => judge.fail(format!(
                "a page from cursor {UNKNOWN_CURSOR:?}, which the backend never handed out, was answered: {value}"
            )),
            QueryResult::Failed { data, message } => {
                let code = data.as_ref().and_then(|d| field(d, "code")).and_then(Value::as_str);
                if code != Some("InvalidCursor") {
                    judge.non_strict(format!(
                        "an unknown cursor failed the query, but with {code:?} ({message:?}), not the catalogue's InvalidCursor"
                    ));
                }
            }
        }
        judge.expect(view.fatal.is_none() && view.connected, || {
            format!("an unknown cursor must fail the query alone, not the session (fatal: {:?})", view.fatal)
        });
    }
    judge.finish()
}

async fn reconnected_pages(ctx: Ctx) -> CaseResult {
    const NUM_ITEMS: usize = 2;
    const SEEDS: usize = 5;
    let mut judge = Judge::default();
    let Some(c) = connect_many(&ctx, &mut judge, 2).await else { return judge.finish() };
    let (reader, mut writer) =
        (&c[0], Writer { client: &c[1], channel: ctx.fresh("pages"), written: Channel::default() });
    let seeds: Vec<String> = (0..SEEDS).map(|i| format!("s{i}")).collect();
    if seed(&mut judge, &mut writer, &seeds).await.is_none() {
        return judge.finish();
    }
    let Some((subs, _)) = load_pages(&mut judge, reader, &writer.channel, NUM_ITEMS, SEEDS).await else {
        return judge.finish();
    };
    let journals = |view: &View| -> String {
        let held: Vec<String> = subs
            .iter()
            .enumerate()
            .map(|(i, s)| match view.journals.get(&s.query) {
                Some(j) => format!("page {i} {j:?}"),
                None => format!("page {i} none"),
            })
            .collect();
        held.join(", ")
    };
    let mut last = None;
    for body in ["n1", "n2"] {
        last = writer.send(&mut judge, body, "sending n1 and n2 (page 0 grows past numItems)").await;
        if last.is_none() {
            return judge.finish();
        }
    }
    let Some(ts) = last else { return judge.finish() };
    if pages_at(&mut judge, reader, &subs, ts, "the pages after n1 and n2").await.is_none() {
        return judge.finish();
    }
    let context = format!("; before the reconnect the client held the journals {}", journals(&reader.view()));
    reader.drop_socket();
    let reconnected = wait_view(&mut judge, reader, "the pages again on a new socket", |v| {
        v.connections >= 2 && v.connected && pages_in(v, &subs).is_some()
    })
    .await;
    if reconnected.is_some() {
        // The re-added pages must keep their ends as rows come and go: a
        // new row at the top, and the rows at page 0's end and page 1's start.
        let mut last = writer.send(&mut judge, "n3", "sending n3").await;
        for (body, place) in [("s3", "page 0's last row"), ("s2", "page 1's first row")] {
            let Some(row) = writer.written.row(body).filter(|_| last.is_some()) else { break };
            last = writer.remove(&mut judge, &row, &format!("removing {body}, {place}")).await;
        }
        if let Some(ts) = last {
            pages_at(&mut judge, reader, &subs, ts, "the pages after the writes that followed the reconnect").await;
        }
    }
    let history = ctx.history();
    judge_views(&mut judge, &history, reader.id(), &subs, &writer.written, &context);
    judge.verdict(order::version_chain(&history));
    judge.finish()
}

#[cfg(test)]
mod tests;
