//! 3. Queries and subscriptions: initial results, pushes of other clients'
//! writes, one consistent timestamp per transition, removal, failures.

use syncspec_protocol::client::QueryResult;
use syncspec_protocol::value::Value;

use super::case;
use super::validation::rejects_arguments;
use crate::checkers::{order, replay};
use crate::suite::{
    answered, connect, connect_many, each_answered, obj, quiesce, wait_view, Case, CaseResult, Ctx, Judge,
};

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!(
            "3.1",
            "a subscription gets an initial result",
            "every added query is answered in a transition",
            initial_result
        ),
        case!(
            "3.2",
            "another client's write is pushed",
            "a commit reaches every subscriber of what it changed",
            pushed
        ),
        case!(
            "3.3",
            "two queries over one channel agree in every transition",
            "all results of a transition come from one timestamp",
            one_timestamp
        ),
        case!(
            "3.4",
            "a removed query is removed and no longer pushed",
            "QueryRemoved follows a Remove; the query stops updating",
            removal
        ),
        case!(
            "3.5",
            "an unknown query fails alone",
            "an unknown function fails that query and keeps the session",
            unknown_query
        ),
        case!(
            "3.6",
            "a query with bad arguments fails its validator",
            "validators reject bad query arguments as a query failure (InvalidArguments, or Convex's ArgumentValidationError) and keep the session",
            bad_query_args
        ),
        case!(
            "3.7",
            "twenty subscribers of one query converge",
            "every subscriber of a shared query ends at the latest state",
            many_subscribers
        ),
        case!(
            "3.8",
            "a write elsewhere pushes nothing new",
            "results whose value did not change are not re-sent",
            unchanged_not_resent
        ),
        case!(
            "3.9",
            "a document read by id follows its updates",
            "point reads are invalidated by writes to that document",
            document_follow
        ),
    ]
}

async fn initial_result(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(client) = connect(&ctx, &mut judge).await else { return judge.finish() };
    let q = client.subscribe("counters:get", obj([("name", ctx.fresh("c").into())]));
    if let Some(view) = wait_view(&mut judge, &client, "the initial result", |v| v.results.contains_key(&q)).await {
        judge.expect(view.results[&q] == QueryResult::Value(Value::Int64(0)), || {
            format!("a fresh counter should read 0, got {:?}", view.results[&q])
        });
    }
    judge.verdict(order::version_chain(&ctx.history()));
    judge.finish()
}

async fn pushed(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(c) = connect_many(&ctx, &mut judge, 2).await else { return judge.finish() };
    let channel = ctx.fresh("chan");
    let q = c[0].subscribe("messages:list", obj([("channel", channel.as_str().into())]));
    wait_view(&mut judge, &c[0], "the initial result", |v| v.results.contains_key(&q)).await;
    let sent = c[1]
        .mutation(
            "messages:send",
            obj([("channel", channel.as_str().into()), ("author", "b".into()), ("body", "hi".into())]),
        )
        .await;
    judge.expect(sent.as_ref().is_ok_and(|o| o.value().is_some()), || format!("messages:send failed: {sent:?}"));
    wait_view(
        &mut judge,
        &c[0],
        "the other client's message",
        |v| matches!(v.results.get(&q), Some(QueryResult::Value(Value::Array(rows))) if rows.len() == 1),
    )
    .await;
    quiesce().await;
    let h = ctx.history();
    judge.verdict(replay::snapshot_consistent(&h));
    judge.verdict(replay::converged(&h));
    judge.finish()
}

async fn one_timestamp(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(c) = connect_many(&ctx, &mut judge, 2).await else { return judge.finish() };
    let channel = ctx.fresh("chan");
    let last =
        c[0].subscribe("messages:list", obj([("channel", channel.as_str().into()), ("limit", Value::Float64(1.0))]));
    let all = c[0].subscribe("messages:list", obj([("channel", channel.as_str().into())]));
    wait_view(&mut judge, &c[0], "both initial results", |v| {
        v.results.contains_key(&last) && v.results.contains_key(&all)
    })
    .await;
    let sent = each_answered(&mut judge, "message", 0..20, |i| {
        c[1].mutation(
            "messages:send",
            obj([("channel", channel.as_str().into()), ("author", "w".into()), ("body", format!("m{i}").into())]),
        )
    })
    .await;
    if sent {
        wait_view(
            &mut judge,
            &c[0],
            "all twenty messages",
            |v| matches!(v.results.get(&all), Some(QueryResult::Value(Value::Array(rows))) if rows.len() == 20),
        )
        .await;
    }
    quiesce().await;
    let h = ctx.history();
    judge.verdict(replay::snapshot_consistent(&h));
    judge.verdict(replay::converged(&h));
    judge.verdict(order::version_chain(&h));
    judge.finish()
}

async fn removal(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(c) = connect_many(&ctx, &mut judge, 2).await else { return judge.finish() };
    let name = ctx.fresh("c");
    let q = c[0].subscribe("counters:get", obj([("name", name.as_str().into())]));
    wait_view(&mut judge, &c[0], "the initial result", |v| v.results.contains_key(&q)).await;
    c[0].unsubscribe(q);
    wait_view(&mut judge, &c[0], "the query's removal", |v| !v.results.contains_key(&q)).await;
    let _ = c[1].mutation("counters:increment", obj([("name", name.as_str().into())])).await;
    quiesce().await;
    let pushed_after = ctx.history().of(1).skip_while(|e| !matches!(e.kind, syncspec_protocol::history::EventKind::Unsubscribe { .. })).any(|e| {
        matches!(&e.kind, syncspec_protocol::history::EventKind::Transition { modifications, .. }
            if modifications.iter().any(|m| matches!(m, syncspec_protocol::history::RecordedModification::Updated { query_id, .. } if *query_id == q)))
    });
    judge.expect(!pushed_after, || "the removed query was still pushed after its removal".to_owned());
    judge.verdict(order::version_chain(&ctx.history()));
    judge.finish()
}

async fn unknown_query(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(client) = connect(&ctx, &mut judge).await else { return judge.finish() };
    let bad = client.subscribe("nope:nothing", obj([]));
    let good = client.subscribe("counters:get", obj([("name", ctx.fresh("c").into())]));
    if let Some(view) = wait_view(&mut judge, &client, "both answers", |v| {
        v.results.contains_key(&bad) && v.results.contains_key(&good)
    })
    .await
    {
        judge.expect(matches!(view.results[&bad], QueryResult::Failed { .. }), || {
            format!("the unknown query should fail, got {:?}", view.results[&bad])
        });
        judge.expect(matches!(view.results[&good], QueryResult::Value(_)), || {
            "the good query should still be answered".to_owned()
        });
        judge.expect(view.fatal.is_none(), || "an unknown query must not end the session".to_owned());
    }
    judge.finish()
}

async fn bad_query_args(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(client) = connect(&ctx, &mut judge).await else { return judge.finish() };
    let q = client.subscribe("counters:get", obj([("name", Value::Float64(3.0))]));
    if let Some(view) = wait_view(&mut judge, &client, "the failure", |v| v.results.contains_key(&q)).await {
        let refused = matches!(&view.results[&q], QueryResult::Failed { message, data }
            if rejects_arguments(message, data.as_ref()));
        judge.expect(refused, || {
            format!(
                "expected a validator failure (errorData.code InvalidArguments, or no errorData and a message \
                 naming ArgumentValidationError), got {:?}",
                view.results[&q]
            )
        });
    }
    // The session goes on: a good query on the same socket is answered.
    let good = client.subscribe("counters:get", obj([("name", ctx.fresh("c").into())]));
    if let Some(view) = wait_view(&mut judge, &client, "a good query after the bad one", |v| {
        v.results.contains_key(&good) || v.fatal.is_some()
    })
    .await
    {
        judge.expect(view.fatal.is_none() && view.connections == 1, || {
            format!(
                "bad query arguments must not end the session (FatalError {:?}, {} sockets)",
                view.fatal, view.connections
            )
        });
        judge.expect(matches!(view.results.get(&good), Some(QueryResult::Value(_))), || {
            format!("the good query after the bad one should be answered, got {:?}", view.results.get(&good))
        });
    }
    judge.finish()
}

async fn many_subscribers(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(c) = connect_many(&ctx, &mut judge, 21).await else { return judge.finish() };
    let name = ctx.fresh("shared");
    let ids: Vec<_> =
        c[..20].iter().map(|c| c.subscribe("counters:get", obj([("name", name.as_str().into())]))).collect();
    let sent = each_answered(&mut judge, "increment", 0..10, |_| {
        c[20].mutation("counters:increment", obj([("name", name.as_str().into())]))
    })
    .await;
    if sent {
        for (client, id) in c[..20].iter().zip(&ids) {
            if wait_view(&mut judge, client, "the latest count", |v| {
                v.results.get(id) == Some(&QueryResult::Value(Value::Int64(10)))
            })
            .await
            .is_none()
            {
                break;
            }
        }
    }
    quiesce().await;
    let h = ctx.history();
    judge.verdict(replay::converged(&h));
    judge.verdict(replay::snapshot_consistent(&h));
    judge.finish()
}

async fn unchanged_not_resent(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(c) = connect_many(&ctx, &mut judge, 2).await else { return judge.finish() };
    let watched = ctx.fresh("watched");
    let q = c[0].subscribe("counters:get", obj([("name", watched.as_str().into())]));
    wait_view(&mut judge, &c[0], "the initial result", |v| v.results.contains_key(&q)).await;
    let other = ctx.fresh("other");
    each_answered(&mut judge, "increment", 0..5, |_| {
        c[1].mutation("counters:increment", obj([("name", other.as_str().into())]))
    })
    .await;
    quiesce().await;
    let updates = ctx
        .history()
        .of(1)
        .filter(|e| matches!(&e.kind, syncspec_protocol::history::EventKind::Transition { modifications, .. } if !modifications.is_empty()))
        .count();
    if updates > 1 {
        judge.info(format!(
            "the unchanged query was pushed {updates} times; re-sending an unchanged result is allowed but wasteful"
        ));
    }
    judge.finish()
}

async fn document_follow(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let Some(c) = connect_many(&ctx, &mut judge, 2).await else { return judge.finish() };
    let created = c[1].mutation("documents:create", obj([("title", "t".into()), ("content", "v1".into())])).await;
    let Some(Value::String(id)) = created.ok().and_then(|o| o.value().cloned()) else {
        judge.fail("documents:create did not return an id");
        return judge.finish();
    };
    let q = c[0].subscribe("documents:get", obj([("id", id.as_str().into())]));
    wait_view(&mut judge, &c[0], "the document", |v| v.results.contains_key(&q)).await;
    for version in 1..=3 {
        let content = format!("v{}", version + 1);
        let r = c[1]
            .mutation(
                "documents:update",
                obj([
                    ("id", id.as_str().into()),
                    ("content", content.into()),
                    ("expectedVersion", Value::Float64(f64::from(version))),
                ]),
            )
            .await;
        if !answered(&mut judge, || format!("update {version}"), &r) {
            break;
        }
        judge.expect(r.as_ref().is_ok_and(|o| o.value().is_some()), || format!("update {version} failed: {r:?}"));
    }
    wait_view(&mut judge, &c[0], "version 4", |v| {
        matches!(v.results.get(&q), Some(QueryResult::Value(Value::Object(o))) if o.get("version") == Some(&Value::Float64(4.0)))
    })
    .await;
    quiesce().await;
    let h = ctx.history();
    judge.verdict(replay::snapshot_consistent(&h));
    judge.verdict(replay::serializable(&h));
    judge.finish()
}
