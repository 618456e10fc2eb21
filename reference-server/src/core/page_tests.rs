//! `messages:page`: Convex's `.paginate()` contract, and the guarantee
//! `usePaginatedQuery` builds on: a subscribed page keeps the end its first
//! result had, so consecutive pages never overlap or leave a gap while rows
//! arrive and leave. The `page-end-moves` fault breaks exactly that.

use syncspec_protocol::json;
use syncspec_protocol::value::Value;

use super::tests::{args, Driver};
use super::*;

fn driver(fault: Option<Fault>) -> Driver {
    let mut config = Config::standard();
    config.faults.extend(fault);
    Driver::with_config(true, config)
}

fn opts(num_items: f64, cursor: Option<&str>) -> Value {
    args([("numItems", num_items.into()), ("cursor", cursor.map_or(Value::Null, Value::from))])
}

fn page_args(cursor: Option<&str>) -> Value {
    args([("channel", "c".into()), ("paginationOpts", opts(2.0, cursor))])
}

/// Sends `bodies` to channel `c` from connection 9, one mutation each.
fn send(d: &mut Driver, first_request: u32, bodies: &[&str]) -> Vec<String> {
    let mut ids = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        let request = first_request + i as u32;
        d.mutate(
            9,
            request,
            "messages:send",
            args([("channel", "c".into()), ("author", "a".into()), ("body", (*body).into())]),
        );
        let (_, outcome) = d.responses(9).into_iter().find(|(r, _)| *r == request).expect("answered");
        ids.push(outcome.expect("sent").0.as_str().expect("an id").to_owned());
    }
    ids
}

fn bodies(page: &Value) -> Vec<String> {
    let Value::Object(page) = page else { panic!("not a page: {page}") };
    let Some(Value::Array(rows)) = page.get("page") else { panic!("no rows: {page:?}") };
    rows.iter().map(|r| r.get("body").and_then(Value::as_str).unwrap().to_owned()).collect()
}

fn field<'a>(page: &'a Value, name: &str) -> &'a Value {
    page.get(name).unwrap_or_else(|| panic!("no {name} in {page}"))
}

/// Subscribes to the first two pages on connection 1 and returns the
/// rows both show after `change`, with the second page's start cursor.
fn two_pages(fault: Option<Fault>, change: impl Fn(&mut Driver, &[String])) -> (Vec<String>, Vec<String>) {
    let mut d = driver(fault);
    d.connect(9);
    let ids = send(&mut d, 0, &["m1", "m2", "m3", "m4", "m5"]);
    d.connect(1);
    d.subscribe(1, 0, 0, "messages:page", page_args(None));
    let first = d.latest(1, 0).unwrap();
    let cursor = field(&first, "continueCursor").as_str().unwrap().to_owned();
    d.subscribe(1, 1, 1, "messages:page", page_args(Some(&cursor)));
    change(&mut d, &ids);
    (bodies(&d.latest(1, 0).unwrap()), bodies(&d.latest(1, 1).unwrap()))
}

#[test]
fn pages_run_newest_first_and_end_in_is_done() {
    let mut d = driver(None);
    d.connect(9);
    send(&mut d, 0, &["m1", "m2", "m3"]);
    d.connect(1);
    d.subscribe(1, 0, 0, "messages:page", page_args(None));
    let first = d.latest(1, 0).unwrap();
    assert_eq!(bodies(&first), ["m3", "m2"]);
    assert_eq!(field(&first, "isDone"), &Value::Boolean(false));
    let cursor = field(&first, "continueCursor").as_str().unwrap().to_owned();
    d.subscribe(1, 1, 1, "messages:page", page_args(Some(&cursor)));
    let second = d.latest(1, 1).unwrap();
    assert_eq!(bodies(&second), ["m1"]);
    assert_eq!(field(&second, "isDone"), &Value::Boolean(true));
    let end = field(&second, "continueCursor").as_str().unwrap().to_owned();
    d.subscribe(1, 2, 2, "messages:page", page_args(Some(&end)));
    let past = d.latest(1, 2).unwrap();
    assert!(bodies(&past).is_empty());
    assert_eq!(field(&past, "isDone"), &Value::Boolean(true));
}

#[test]
fn a_subscribed_page_keeps_its_end_as_rows_arrive_and_leave() {
    // Page 0 is m5 m4 (ends at m4), page 1 is m3 m2.
    let arrive = |d: &mut Driver, _: &[String]| {
        send(d, 10, &["m6", "m7"]);
    };
    assert_eq!(
        two_pages(None, arrive),
        (vec!["m7".into(), "m6".into(), "m5".into(), "m4".into()], vec!["m3".into(), "m2".into()])
    );
    let leave = |d: &mut Driver, ids: &[String]| {
        d.mutate(9, 20, "messages:remove", args([("id", ids[3].as_str().into())]));
    };
    assert_eq!(two_pages(None, leave), (vec!["m5".into()], vec!["m3".into(), "m2".into()]));
}

#[test]
fn page_end_moves_fault_leaves_a_gap_and_an_overlap() {
    let arrive = |d: &mut Driver, _: &[String]| {
        send(d, 10, &["m6"]);
    };
    // m4 falls out of page 0 and page 1 still starts after it: a gap.
    assert_eq!(
        two_pages(Some(Fault::PageEndMoves), arrive),
        (vec!["m6".into(), "m5".into()], vec!["m3".into(), "m2".into()])
    );
    let leave = |d: &mut Driver, ids: &[String]| {
        d.mutate(9, 20, "messages:remove", args([("id", ids[4].as_str().into())]));
    };
    // m3 slides up into page 0 and stays in page 1: an overlap.
    assert_eq!(
        two_pages(Some(Fault::PageEndMoves), leave),
        (vec!["m4".into(), "m3".into()], vec!["m3".into(), "m2".into()])
    );
}

#[test]
fn the_journal_carries_the_end_and_a_re_add_with_it_keeps_the_page() {
    let mut d = driver(None);
    d.connect(9);
    send(&mut d, 0, &["m1", "m2", "m3"]);
    d.connect(1);
    d.subscribe(1, 0, 0, "messages:page", page_args(None));
    let journal = d
        .transitions(1)
        .iter()
        .flat_map(|t| t.modifications.clone())
        .find_map(|m| match m {
            Modification::Updated { journal, .. } => journal,
            _ => None,
        })
        .expect("a page carries a journal");
    let first = d.latest(1, 0).unwrap();
    assert_eq!(field(&first, "continueCursor").as_str(), Some(&*journal));
    send(&mut d, 10, &["m4"]);
    // A reconnected client re-adds the page with its journal: it still ends at m2.
    d.connect(2);
    let text = format!(
        r#"{{"type":"ModifyQuerySet","baseVersion":0,"newVersion":1,"modifications":[{{"type":"Add","queryId":0,"udfPath":"messages:page","args":[{}],"journal":{}}}]}}"#,
        json::encode(&page_args(None)),
        json::encode(&Value::from(&*journal)),
    );
    d.send_text(2, &text);
    assert_eq!(bodies(&d.latest(2, 0).unwrap()), ["m4", "m3", "m2"]);
    // A fresh subscriber without a journal gets a page of its own.
    d.connect(3);
    d.subscribe(3, 0, 0, "messages:page", page_args(None));
    assert_eq!(bodies(&d.latest(3, 0).unwrap()), ["m4", "m3"]);
}

#[test]
fn a_grown_page_offers_a_split_cursor_that_cuts_it_without_gap() {
    let mut d = driver(None);
    d.connect(9);
    send(&mut d, 0, &["m1", "m2"]);
    d.connect(1);
    d.subscribe(1, 0, 0, "messages:page", page_args(None));
    send(&mut d, 10, &["m3", "m4", "m5"]);
    let grown = d.latest(1, 0).unwrap();
    assert_eq!(bodies(&grown), ["m5", "m4", "m3", "m2", "m1"]);
    let split = field(&grown, "splitCursor").as_str().unwrap().to_owned();
    let end = field(&grown, "continueCursor").as_str().unwrap().to_owned();
    let halves = |cursor: Option<&str>, end: &str| {
        let mut opts = opts(2.0, cursor);
        if let Value::Object(o) = &mut opts {
            o.insert("endCursor".into(), Value::from(end));
        }
        args([("channel", "c".into()), ("paginationOpts", opts)])
    };
    d.subscribe(1, 1, 1, "messages:page", halves(None, &split));
    d.subscribe(1, 2, 2, "messages:page", halves(Some(&split), &end));
    let mut joined = bodies(&d.latest(1, 1).unwrap());
    joined.extend(bodies(&d.latest(1, 2).unwrap()));
    assert_eq!(joined, bodies(&grown));
}

#[test]
fn bad_pagination_opts_are_user_errors() {
    let mut d = driver(None);
    d.connect(1);
    let cases = [
        (args([("numItems", 0.0.into()), ("cursor", Value::Null)]), "InvalidArguments"),
        (args([("numItems", 2.5.into()), ("cursor", Value::Null)]), "InvalidArguments"),
        (args([("numItems", 2.0.into())]), "InvalidArguments"),
        (args([("numItems", 2.0.into()), ("cursor", Value::Null), ("x", Value::Null)]), "InvalidArguments"),
        (args([("numItems", 2.0.into()), ("cursor", "nonsense".into())]), "InvalidCursor"),
        (args([("numItems", 2.0.into()), ("cursor", Value::Float64(3.0))]), "InvalidArguments"),
    ];
    for (i, (opts, code)) in cases.into_iter().enumerate() {
        d.subscribe(
            1,
            i as u32,
            i as u32,
            "messages:page",
            args([("channel", "c".into()), ("paginationOpts", opts.clone())]),
        );
        let failed = d.transitions(1).iter().flat_map(|t| t.modifications.clone()).find_map(|m| match m {
            Modification::Failed { query_id, data, .. } if query_id == i as u32 => data,
            _ => None,
        });
        let data = json::decode_str(&failed.unwrap_or_else(|| panic!("{opts} was accepted"))).unwrap();
        assert_eq!(data.get("code").and_then(Value::as_str), Some(code), "{opts}");
    }
}
