//! The suite's cases, by category. Ids are stable: a case keeps its number
//! for good, so results can be compared across runs and backends.

mod actions;
mod concurrency;
mod faults;
mod handshake;
mod hostile;
mod identity;
mod limits;
mod mutations;
mod official;
mod pagination;
mod queries;
mod scheduling;
mod semantics;
mod throttling;
mod validation;
mod values;

use super::Case;

/// Declares a case from an async fn taking `Ctx`.
macro_rules! case {
    ($id:literal, $title:literal, $guarantee:literal, $body:path) => {
        $crate::suite::Case { id: $id, title: $title, guarantee: $guarantee, run: |ctx| Box::pin($body(ctx)) }
    };
}
pub(crate) use case;

/// The categories' names, by number (the first part of a case id).
pub fn categories() -> std::collections::BTreeMap<u32, String> {
    [
        (1, "handshake and framing"),
        (2, "values"),
        (3, "queries and subscriptions"),
        (4, "mutations and read-your-writes"),
        (5, "consistency under concurrency"),
        (6, "chat, presence and cursors"),
        (7, "throttling at 20 updates per second"),
        (8, "faults"),
        (9, "limits and bad input"),
        (10, "HTTP API, keepalive, time and identity"),
        (11, "Convex app patterns: pagination, actions, scheduled functions"),
    ]
    .into_iter()
    .map(|(n, name)| (n, name.to_owned()))
    .collect()
}

/// Every case, in id order.
pub fn all() -> Vec<Case> {
    let mut cases = Vec::new();
    for category in [
        handshake::cases(),
        values::cases(),
        queries::cases(),
        mutations::cases(),
        concurrency::cases(),
        semantics::cases(),
        throttling::cases(),
        faults::cases(),
        limits::cases(),
        hostile::cases(),
        official::cases(),
        identity::cases(),
        pagination::cases(),
        actions::cases(),
        scheduling::cases(),
    ] {
        cases.extend(category);
    }
    cases
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_numbered() {
        let cases = all();
        let mut ids: Vec<&str> = cases.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        let before = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), before, "duplicate case ids");
        for c in &cases {
            let (category, number) = c.id.split_once('.').expect("ids are category.number");
            assert!(category.parse::<u32>().is_ok() && number.parse::<u32>().is_ok(), "{}", c.id);
            assert!(!c.title.is_empty() && !c.guarantee.is_empty());
        }
    }
}
