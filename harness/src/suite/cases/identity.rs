//! Category 10, identity (10.6 to 10.8): a verified caller reaches
//! functions, a new identity re-runs the queries that read it, and bad
//! tokens are refused, on the socket and over HTTP.
//!
//! These cases need a token the backend trusts (`Ctx::auth`: a secret to
//! mint with, or one given token). Without one they check what needs none
//! (no identity, refused bad tokens) and are marked unimplemented rather
//! than passed. Only the deliberately bad tokens are built here; good ones
//! are minted with `syncspec_server::auth`.

use syncspec_protocol::client::{Client, MutationOutcome, View};
use syncspec_protocol::history::RecordedModification;
use syncspec_protocol::json;
use syncspec_protocol::value::Value;
use syncspec_protocol::wire::http;
use syncspec_protocol::wire::QueryId;
use syncspec_server::auth::{self, Claims};

use super::case;
use super::official::{call, success};
use crate::checkers::field;
use crate::suite::{connect, obj, rows, transitions, value_in, wait_view, Auth, Case, CaseResult, Ctx, Judge};

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!(
            "10.6",
            "the identity reaches functions",
            "a confirmed token's subject, issuer and name are what functions see, on the socket and over HTTP",
            identity_reaches_functions
        ),
        case!(
            "10.7",
            "a changed identity re-runs dependent queries",
            "the transition confirming a new identity (or the next) carries results computed for it",
            new_identity_reruns
        ),
        case!(
            "10.8",
            "a bad token is refused",
            "unsigned, wrong-key and expired tokens get AuthError (HTTP 401) and are never confirmed; a good one is",
            bad_tokens_refused
        ),
    ]
}

/// What the identity cases cannot check without a token the backend trusts.
const NEEDS_AUTH: &str = "needs a token the backend trusts: --auth-secret (to mint) or --auth-token";

/// Waits until the backend has confirmed `identity` Authenticates and
/// `users:me` (query `me`, added after them) has a result; returns it when
/// it names a caller, or records what it was.
async fn confirmed_me(judge: &mut Judge, client: &Client, me: QueryId, identity: u32, what: &str) -> Option<Value> {
    let view = wait_view(judge, client, what, |v| v.identity >= identity && value_in(v, me).is_some()).await?;
    match value_in(&view, me) {
        Some(who @ Value::Object(_)) => Some(who.clone()),
        other => {
            judge.fail(format!(
                "{what}: the backend confirmed the token (identity version {}) but users:me is {other:?}: functions do not see the identity",
                view.identity
            ));
            None
        }
    }
}

/// A `users:me` object's string field.
fn text_of(me: &Value, name: &str) -> Option<String> {
    field(me, name).and_then(Value::as_str).map(str::to_owned)
}

/// Checks a `users:me` object against what the token says, where known.
fn check_me(
    judge: &mut Judge,
    what: &str,
    me: &Value,
    subject: Option<&str>,
    issuer: Option<&str>,
    name: Option<&str>,
) {
    let (sub, iss) = (text_of(me, "subject"), text_of(me, "issuer"));
    judge.expect(sub.is_some() && iss.is_some(), || format!("{what}: users:me lacks subject or issuer: {me}"));
    if let (Some(sub), Some(iss)) = (&sub, &iss) {
        let want = format!("{iss}|{sub}");
        judge.expect(text_of(me, "tokenIdentifier").as_deref() == Some(&want), || {
            format!("{what}: tokenIdentifier must be {want:?}: {me}")
        });
    }
    for (field, expected) in [("subject", subject), ("issuer", issuer), ("name", name)] {
        if let Some(expected) = expected {
            judge.expect(text_of(me, field).as_deref() == Some(expected), || {
                format!("{what}: users:me.{field} should be {expected:?}: {me}")
            });
        }
    }
}

async fn identity_reaches_functions(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    // Without identity: always checkable.
    let Some(anon) = connect(&ctx, &mut judge).await else { return judge.finish() };
    let me = anon.subscribe("users:me", obj([]));
    wait_view(&mut judge, &anon, "users:me without identity", |v| v.results.contains_key(&me)).await;
    judge.expect(anon.value_of(me) == Some(Value::Null), || {
        format!("users:me without identity should be null, got {:?}", anon.view().results.get(&me))
    });
    let channel = ctx.fresh("me-chan");
    let send = |body: &str| obj([("channel", channel.as_str().into()), ("body", body.into())]);
    let r = anon.mutation("messages:sendAsMe", send("anonymous")).await;
    let code = r.as_ref().ok().and_then(|o| o.error_code().map(str::to_owned));
    judge.expect(code.as_deref() == Some("Unauthenticated"), || {
        format!("messages:sendAsMe without identity should fail with Unauthenticated, got {r:?}")
    });

    let subject = ctx.fresh("user");
    let display = format!("User {subject}");
    let (token, expected) = match &ctx.auth {
        Auth::Mint { issuer, .. } => {
            (ctx.auth.mint(&subject, Some(&display)), Some((subject.as_str(), issuer.as_str(), display.as_str())))
        }
        Auth::Token(token) => (Some(token.clone()), None),
        Auth::None => (None, None),
    };
    let Some(token) = token else {
        judge.unimplemented(format!("a signed-in caller's identity was not checked: {NEEDS_AUTH}"));
        return judge.finish();
    };
    let Some(client) = connect(&ctx, &mut judge).await else { return judge.finish() };
    client.set_auth(Some(token.clone()));
    let me = client.subscribe("users:me", obj([]));
    let Some(who) = confirmed_me(&mut judge, &client, me, 1, "users:me with the token").await else {
        return judge.finish();
    };
    check_me(&mut judge, "on the socket", &who, expected.map(|e| e.0), expected.map(|e| e.1), expected.map(|e| e.2));
    let author = text_of(&who, "name").or_else(|| text_of(&who, "subject")).unwrap_or_default();

    // A mutation signs with the identity: messages:sendAsMe's author.
    let list = client.subscribe("messages:list", obj([("channel", channel.as_str().into())]));
    let r = client.mutation("messages:sendAsMe", send("signed")).await;
    match r {
        Ok(MutationOutcome::Ok { value: id, .. }) => {
            let view = client.view();
            let row = rows(&view, list).iter().find(|row| field(row, "_id") == Some(&id));
            let got = row.and_then(|r| field(r, "author")).cloned();
            judge.expect(got.as_ref().and_then(Value::as_str) == Some(author.as_str()), || {
                format!(
                    "messages:sendAsMe's author should be {author:?} (the identity's name, else subject), got {got:?}"
                )
            });
        }
        other => judge.fail(format!("messages:sendAsMe with a confirmed identity failed: {other:?}")),
    }

    // Over HTTP, with the token as a Bearer.
    let q = call(&ctx, "/api/query", http::write_request("users:me", &obj([])), Some(&token)).await;
    if let Some(over_http) = success(&mut judge, "POST /api/query users:me with the token", &q) {
        judge.expect(over_http == who, || format!("over HTTP users:me is {over_http}, on the socket {who}"));
    }
    let q = call(&ctx, "/api/query", http::write_request("users:me", &obj([])), None).await;
    if let Some(anonymous) = success(&mut judge, "POST /api/query users:me without a token", &q) {
        judge.expect(anonymous == Value::Null, || format!("over HTTP without a token users:me is {anonymous}"));
    }
    judge.finish()
}

/// One side of an identity change in 10.7: the token (`None` for no
/// identity) and, when known before asking, the subject.
struct Caller {
    token: Option<String>,
    subject: Option<String>,
}

/// The titles of a `notifications:mine` result.
fn titles(value: &Value) -> Option<Vec<String>> {
    match field(value, "items") {
        Some(Value::Array(items)) => {
            Some(items.iter().filter_map(|i| field(i, "title").and_then(Value::as_str).map(str::to_owned)).collect())
        }
        _ => None,
    }
}

async fn new_identity_reruns(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let (a, b) = match &ctx.auth {
        Auth::Mint { .. } => {
            let (sa, sb) = (ctx.fresh("alice"), ctx.fresh("bob"));
            (
                Caller { token: ctx.auth.mint(&sa, None), subject: Some(sa) },
                Caller { token: ctx.auth.mint(&sb, None), subject: Some(sb) },
            )
        }
        // One trusted caller, then no identity: still a change of identity.
        Auth::Token(token) => {
            (Caller { token: Some(token.clone()), subject: None }, Caller { token: None, subject: None })
        }
        Auth::None => {
            judge.unimplemented(format!("an identity change needs a first identity: {NEEDS_AUTH}"));
            return judge.finish();
        }
    };
    let Some(client) = connect(&ctx, &mut judge).await else { return judge.finish() };
    let Some(helper) = connect(&ctx, &mut judge).await else { return judge.finish() };
    client.set_auth(a.token.clone());
    let me = client.subscribe("users:me", obj([]));
    let mine = client.subscribe("notifications:mine", obj([]));
    let Some(who) = confirmed_me(&mut judge, &client, me, 1, "the first identity in users:me").await else {
        return judge.finish();
    };
    let a_subject = text_of(&who, "subject").unwrap_or_default();
    if let Some(expected) = &a.subject {
        judge.expect(&a_subject == expected, || format!("users:me.subject is {a_subject:?}, expected {expected:?}"));
    }
    // Notifications addressed to each subject, sent by a client without identity.
    let for_a = [ctx.fresh("for-a"), ctx.fresh("for-a")];
    let for_b = b.subject.as_ref().map(|_| ctx.fresh("for-b"));
    let sends = for_a
        .iter()
        .map(|t| (a_subject.clone(), t.clone()))
        .chain(b.subject.iter().zip(&for_b).map(|(s, t)| (s.clone(), t.clone())));
    for (user, title) in sends {
        let r =
            helper.mutation("notifications:send", obj([("user", user.into()), ("title", title.as_str().into())])).await;
        if !matches!(r, Ok(MutationOutcome::Ok { .. })) {
            judge.fail(format!("notifications:send {title} failed: {r:?}"));
            return judge.finish();
        }
    }
    let has_a = |v: &Value| titles(v).is_some_and(|t| for_a.iter().all(|a| t.contains(a)));
    if wait_view(&mut judge, &client, "the first identity's notifications", |v| value_in(v, mine).is_some_and(has_a))
        .await
        .is_none()
    {
        return judge.finish();
    }

    // The change.
    let is_b = |v: &Value| match &for_b {
        Some(title) => titles(v).is_some_and(|t| t == [title.clone()]),
        None => titles(v).is_some_and(|t| t.is_empty()),
    };
    let b_me = |v: &Value| match &b.subject {
        Some(subject) => text_of(v, "subject").as_deref() == Some(subject),
        None => *v == Value::Null,
    };
    client.set_auth(b.token.clone());
    if wait_view(&mut judge, &client, "a transition confirming the second identity", |v| v.identity >= 2)
        .await
        .is_none()
    {
        return judge.finish();
    }
    let changed = |v: &View| value_in(v, mine).is_some_and(is_b) && value_in(v, me).is_some_and(b_me);
    let what = "the second identity's results in notifications:mine and users:me, after a transition confirmed it";
    if wait_view(&mut judge, &client, what, changed).await.is_none() {
        return judge.finish();
    }
    // Which transition carried them: the one confirming the identity, or the next.
    let h = ctx.history();
    let transitions: Vec<_> = transitions(&h, &client).collect();
    let Some(confirm) = transitions.iter().position(|(_, end, _)| end.identity >= 2) else {
        judge.fail("no transition confirmed the second identity");
        return judge.finish();
    };
    for (query, what, expected) in
        [(mine, "notifications:mine", &is_b as &dyn Fn(&Value) -> bool), (me, "users:me", &b_me)]
    {
        let carried = transitions[confirm..].iter().position(|(_, _, mods)| {
            mods.iter().any(|m| match m {
                RecordedModification::Updated { query_id, value } if *query_id == query => {
                    json::decode(value).is_ok_and(|v| expected(&v))
                }
                _ => false,
            })
        });
        let at = transitions[confirm].0;
        match carried {
            Some(0) | Some(1) => {}
            Some(n) => judge.fail_at(
                format!("{what}'s result for the new identity came {n} transitions after the one confirming it (event {at})"),
                vec![at, transitions[confirm + n].0],
            ),
            None => judge.fail_at(format!("no transition carried {what}'s result for the new identity"), vec![at]),
        }
    }
    judge.finish()
}

/// URL-safe base64 without padding, as a JWT's parts are written.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 3);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// A token with `alg: none` and no signature, claiming `claims`.
fn unsigned(claims: &Claims) -> String {
    let payload = serde_json::to_string(claims).unwrap_or_default();
    format!("{}.{}.", base64url(br#"{"alg":"none","typ":"JWT"}"#), base64url(payload.as_bytes()))
}

/// Presents `token` on a socket that does not reconnect and waits until the
/// backend refuses it (AuthError, or a close) or confirms it; records a
/// confirmation, a missing AuthError or an identity in `users:me` as failures.
async fn expect_refused(ctx: &Ctx, judge: &mut Judge, what: &str, token: &str) {
    let client = match ctx.client_once().await {
        Ok(client) => client,
        Err(e) => return judge.fail(format!("{what}: {e}")),
    };
    client.set_auth(Some(token.to_owned()));
    let me = client.subscribe("users:me", obj([]));
    let settled = client.wait_until(|v| v.auth_error.is_some() || !v.connected || v.identity >= 1).await;
    let view = match settled {
        Ok(view) | Err((view, _)) => view,
    };
    judge.expect(view.auth_error.is_some(), || {
        format!(
            "{what}: expected an AuthError, got none (connected: {}, identity version {})",
            view.connected, view.identity
        )
    });
    let h = ctx.history();
    let (mut confirmed, mut shown) = (false, false);
    for (i, end, modifications) in transitions(&h, &client) {
        let identity = end.identity;
        if identity >= 1 && !confirmed {
            confirmed = true;
            judge.fail_at(format!("{what}: a transition confirmed it (identity version {identity})"), vec![i]);
        }
        let who = modifications.iter().find_map(|m| match m {
            RecordedModification::Updated { query_id, value } if *query_id == me && !value.is_null() => Some(value),
            _ => None,
        });
        if let Some(who) = who.filter(|_| !shown) {
            shown = true;
            judge.fail_at(format!("{what}: users:me showed an identity: {who}"), vec![i]);
        }
    }
    let q = call(ctx, "/api/query", http::write_request("users:me", &obj([])), Some(token)).await;
    match q {
        Ok(answer) => judge.expect(answer.status == 401, || {
            format!("{what} as an HTTP Bearer: expected status 401, got {}: {}", answer.status, answer.snippet())
        }),
        Err(e) => judge.fail(format!("{what} as an HTTP Bearer: {e}")),
    }
}

async fn bad_tokens_refused(ctx: Ctx) -> CaseResult {
    let mut judge = Judge::default();
    let issuer = match &ctx.auth {
        Auth::Mint { issuer, .. } => issuer.clone(),
        _ => crate::suite::DEFAULT_ISSUER.to_owned(),
    };
    let now = auth::now_s();
    let claims = Claims::new(&ctx.fresh("mallory"), &issuer, now).named("Mallory");
    expect_refused(&ctx, &mut judge, "an unsigned (alg: none) token", &unsigned(&claims)).await;
    let wrong_key = auth::mint_hs256(format!("not the backend's key {}", ctx.fresh("k")).as_bytes(), &claims);
    expect_refused(&ctx, &mut judge, "a token signed with another key", &wrong_key).await;
    if let Auth::Mint { secret, .. } = &ctx.auth {
        let expired = Claims { exp: now - 3600, iat: Some(now - 7200), ..claims.clone() };
        expect_refused(&ctx, &mut judge, "an expired token", &auth::mint_hs256(secret, &expired)).await;
    }
    let subject = ctx.fresh("good");
    let Some(good) = ctx.auth.token(&subject) else {
        judge.unimplemented(format!("the expired token and a good token's acceptance were not checked: {NEEDS_AUTH}"));
        return judge.finish();
    };
    let Some(client) = connect(&ctx, &mut judge).await else { return judge.finish() };
    client.set_auth(Some(good.clone()));
    let me = client.subscribe("users:me", obj([]));
    if let Some(who) = confirmed_me(&mut judge, &client, me, 1, "users:me with a good token").await {
        let known = matches!(ctx.auth, Auth::Mint { .. }).then_some(subject.as_str());
        check_me(&mut judge, "a good token", &who, known, None, None);
    }
    judge.expect(client.view().auth_error.is_none(), || {
        format!("a good token got an AuthError: {:?}", client.view().auth_error)
    });
    let q = call(&ctx, "/api/query", http::write_request("users:me", &obj([])), Some(&good)).await;
    success(&mut judge, "POST /api/query users:me with a good token", &q);
    if matches!(ctx.auth, Auth::Token(_)) {
        judge.info("an expired token was not tried: making one needs --auth-secret");
    }
    judge.finish()
}
