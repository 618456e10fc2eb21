//! The pagination cases' pure judgements (the layout of consecutive pages
//! for 11.1 and 11.3, the contract for 11.2, the channel as written), each
//! fed pages built to be right and built to be broken.

use super::*;

fn row(body: &str) -> Row {
    Row { id: format!("id-{body}"), body: body.to_owned() }
}

fn page(bodies: &[&str], is_done: bool) -> Page {
    let values =
        bodies.iter().map(|b| obj([("_id", format!("id-{b}").into()), ("body", (*b).into())])).collect::<Vec<_>>();
    Page::parse(&obj([
        ("page", Value::Array(values)),
        ("isDone", Value::Boolean(is_done)),
        ("continueCursor", "c".into()),
    ]))
    .unwrap()
}

fn channel(bodies: &[&str]) -> Vec<Row> {
    bodies.iter().map(|b| row(b)).collect()
}

#[test]
fn exact_pages_pass_and_a_gap_an_overlap_an_extra_and_disorder_are_named() {
    let expected = channel(&["n1", "s7", "s6", "s5", "s4"]);
    assert!(layout_problems(&expected, &[page(&["n1", "s7", "s6", "s5"], false), page(&["s4"], true)]).is_empty());

    let gap = layout_problems(&expected, &[page(&["n1", "s7", "s6"], false), page(&["s4"], true)]);
    assert_eq!(gap, ["s5 is in no page: a gap between page 0 (ending at s6) and page 1 (starting at s4)"]);

    let expected = channel(&["s7", "s5", "s4"]);
    let overlap = layout_problems(&expected, &[page(&["s7", "s5", "s4"], false), page(&["s4"], true)]);
    assert_eq!(overlap, ["s4 is held 2 times (pages 0, 1): an overlap"]);

    let extra = layout_problems(&expected, &[page(&["s7", "s6", "s5"], false), page(&["s4"], true)]);
    assert_eq!(extra, ["s6 is not in the channel (removed, or never written) but a page holds it"]);

    let disorder = layout_problems(&expected, &[page(&["s5", "s7"], false), page(&["s4"], true)]);
    assert_eq!(disorder.len(), 1);
    assert!(disorder[0].contains("out of order"), "{disorder:?}");
}

#[test]
fn the_channel_at_a_ts_applies_the_writes_up_to_it() {
    let mut written = Channel::default();
    for (ts, change) in [
        (1, Change::Insert(row("a"))),
        (2, Change::Insert(row("b"))),
        (3, Change::Remove("id-a".into())),
        (4, Change::Insert(row("c"))),
    ] {
        written.writes.push(Write { ts, step: format!("step {ts}"), change });
    }
    assert_eq!(written.at(2), channel(&["b", "a"]));
    assert_eq!(written.at(3), channel(&["b"]));
    assert_eq!(written.at(9), channel(&["c", "b"]));
    assert_eq!(written.step_at(3), "step 3");
    assert_eq!(written.row("b"), Some(row("b")));
}

#[test]
fn the_contract_names_long_pages_early_or_missing_is_done_and_rows_not_in_the_list() {
    let list: Vec<Value> =
        ["r0", "r1", "r2"].iter().map(|b| obj([("_id", format!("id-{b}").into()), ("body", (*b).into())])).collect();
    assert!(contract_problems(2, &list, &[page(&["r2", "r1"], false), page(&["r0"], true)]).is_empty());
    let long = contract_problems(2, &list, &[page(&["r2", "r1", "r0"], true)]);
    assert_eq!(long, ["page 0 holds 3 rows, more than numItems 2: [r2 r1 r0]"]);
    let early = contract_problems(2, &list, &[page(&["r2", "r1"], true), page(&["r0"], true)]);
    assert_eq!(early, ["page 0 of 2 says isDone true"]);
    let short = contract_problems(2, &list, &[page(&["r2", "r1"], true)]);
    assert_eq!(short.len(), 1);
    assert!(short[0].contains("hold [r2 r1], the list [r2 r1 r0]"), "{short:?}");
}

#[test]
fn a_missing_function_is_told_from_a_refusal() {
    assert!(missing_function("Could not find public function for 'messages:page'.", None));
    let refusal = obj([("code", "InvalidCursor".into())]);
    assert!(!missing_function("cursor not found", Some(&refusal)));
    assert!(!missing_function("boom", None));
}
