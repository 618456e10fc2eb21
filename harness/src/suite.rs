//! The conformance suite: numbered cases in categories, Autobahn-style,
//! each judging one guarantee from what a backend does on the wire.
//!
//! A case drives simulated clients (`syncspec_protocol::client::Client`)
//! against a target, records their history, and judges it with the
//! checkers plus its own expectations. The runner (`run.rs`) selects cases,
//! runs them one at a time with a deadline, and reports.
//!
//! Every wait for the backend goes through the run's one [`Patience`]:
//! generous while the backend answers, short once any wait of the run has
//! run out, so a broken backend costs seconds per case, not minutes. A case
//! stops a series of calls at the first that got no answer and records it
//! ([`answered`], [`each_answered`], [`answers`]): every later call would
//! only wait out its patience again.

pub mod cases;
pub mod run;

use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use syncspec_protocol::client::{Client, ClientError, Options, Patience, QueryResult, View};
use syncspec_protocol::history::{EventKind, History, RecordedModification, RecordedVersion, Recorder};
use syncspec_protocol::value::Value;
use syncspec_protocol::wire::QueryId;
use syncspec_server::auth::{self, Claims};

use crate::checkers::{Evidence, Outcome, Verdict};

/// How long a case waits for anything it expects to happen, while the
/// backend has answered everything so far: generous, because the machine
/// running the suite may be busy.
pub const PATIENCE: Duration = Duration::from_secs(10);
/// How long a case waits once any wait of the run has run out: the backend
/// has shown it leaves questions unanswered, and a backend that answers does
/// so in milliseconds on loopback.
pub const SHORT_PATIENCE: Duration = Duration::from_secs(2);
/// How long the backend must stay quiet before convergence is judged.
pub const QUIET: Duration = Duration::from_millis(300);
/// The issuer of the tokens a run mints, unless told otherwise.
pub const DEFAULT_ISSUER: &str = "https://syncspec.invalid";

/// The patience one run's cases share: [`PATIENCE`], then [`SHORT_PATIENCE`].
pub fn run_patience() -> Patience {
    Patience::new(PATIENCE, SHORT_PATIENCE)
}

/// How a run can call the backend as a user it trusts.
#[derive(Clone, Default)]
pub enum Auth {
    /// Mint HS256 tokens for any subject with the secret the backend verifies
    /// with (`--auth-secret`), naming `issuer` as their `iss`.
    Mint {
        /// The shared secret.
        secret: Vec<u8>,
        /// The `iss` claim of every minted token.
        issuer: String,
    },
    /// One token the backend trusts (`--auth-token`): one caller, whose
    /// subject the cases learn from `users:me`.
    Token(String),
    /// No token the backend trusts: identity cases check only refusals.
    #[default]
    None,
}

impl std::fmt::Debug for Auth {
    /// Names the kind of material, never the secret or the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Mint { issuer, .. } => write!(f, "Auth::Mint {{ issuer: {issuer:?}, .. }}"),
            Auth::Token(_) => f.write_str("Auth::Token(..)"),
            Auth::None => f.write_str("Auth::None"),
        }
    }
}

impl Auth {
    /// A token for `subject` (with a display `name`), valid for an hour,
    /// when the run can mint.
    pub fn mint(&self, subject: &str, name: Option<&str>) -> Option<String> {
        let Auth::Mint { secret, issuer } = self else { return None };
        let claims = Claims::new(subject, issuer, auth::now_s());
        let claims = match name {
            Some(name) => claims.named(name),
            None => claims,
        };
        Some(auth::mint_hs256(secret, &claims))
    }

    /// A token the backend trusts: minted for `subject`, or the given one.
    pub fn token(&self, subject: &str) -> Option<String> {
        match self {
            Auth::Mint { .. } => self.mint(subject, None),
            Auth::Token(token) => Some(token.clone()),
            Auth::None => None,
        }
    }
}

/// What a case needs to reach the backend and record what it sees.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// The backend's deployment URL.
    pub url: String,
    /// Every client of this case records here.
    pub recorder: Recorder,
    next_client: Arc<AtomicU32>,
    next_name: Arc<AtomicU32>,
    /// Makes names unique to this case and run.
    pub prefix: String,
    /// The run's patience, shared by every client and raw socket of every case.
    pub patience: Patience,
    /// How the run can be a caller the backend trusts.
    pub auth: Auth,
    /// How long case 10.4 keeps a socket idle.
    pub idle_for: Duration,
}

impl Ctx {
    /// A context for one case of the run `config`, waiting as the run's `patience` says.
    pub fn new(config: &run::RunConfig, prefix: &str, patience: &Patience) -> Ctx {
        Ctx {
            url: config.url.clone(),
            recorder: Recorder::new(),
            next_client: Arc::new(AtomicU32::new(1)),
            next_name: Arc::new(AtomicU32::new(1)),
            prefix: prefix.to_owned(),
            patience: patience.clone(),
            auth: config.auth.clone(),
            idle_for: config.idle_for,
        }
    }

    /// Connects a new client that reconnects by itself, as the official ones do.
    pub async fn client(&self) -> Result<Client, ClientError> {
        self.client_at(&self.url.clone()).await
    }

    /// Connects a new client to another URL (a proxy in front of the backend).
    pub async fn client_at(&self, url: &str) -> Result<Client, ClientError> {
        self.connect(url, true).await
    }

    /// Connects a new client that stays down once its socket is gone (one
    /// that must see how the backend ends a session).
    pub async fn client_once(&self) -> Result<Client, ClientError> {
        self.connect(&self.url.clone(), false).await
    }

    async fn connect(&self, url: &str, reconnect: bool) -> Result<Client, ClientError> {
        let id = self.next_client.fetch_add(1, Ordering::Relaxed);
        let options = Options {
            url: url.to_owned(),
            client: id,
            recorder: self.recorder.clone(),
            reconnect,
            patience: self.patience.clone(),
        };
        Client::connect(options).await
    }

    /// A name no other case or run uses.
    pub fn fresh(&self, what: &str) -> String {
        let n = self.next_name.fetch_add(1, Ordering::Relaxed);
        format!("{}-{what}-{n}", self.prefix)
    }

    /// Everything recorded so far.
    pub fn history(&self) -> History {
        self.recorder.history()
    }
}

/// What a case concluded.
#[derive(Clone, Debug, Serialize)]
pub struct CaseResult {
    /// The outcome.
    pub outcome: Outcome,
    /// Why, when it did not pass.
    pub evidence: Vec<Evidence>,
    /// The checkers the case ran, with what they checked.
    pub verdicts: Vec<Verdict>,
}

/// Collects a case's expectations and checker verdicts into a result.
#[derive(Debug, Default)]
pub struct Judge {
    evidence: Vec<Evidence>,
    verdicts: Vec<Verdict>,
    unimplemented: Option<String>,
    info: Vec<String>,
    non_strict: Vec<String>,
}

impl Judge {
    /// Records a failed expectation unless `ok`.
    pub fn expect(&mut self, ok: bool, message: impl FnOnce() -> String) {
        if !ok {
            self.evidence.push(Evidence { message: message(), events: vec![] });
        }
    }

    /// Records a failed expectation.
    pub fn fail(&mut self, message: impl Into<String>) {
        self.evidence.push(Evidence { message: message.into(), events: vec![] });
    }

    /// Records a failed expectation naming the history's events it rests on.
    pub fn fail_at(&mut self, message: impl Into<String>, events: Vec<usize>) {
        self.evidence.push(Evidence { message: message.into(), events });
    }

    /// Adds a checker's verdict; its failure fails the case. A checker that
    /// found nothing to check fails it too, so no pass is vacuous.
    pub fn verdict(&mut self, verdict: Verdict) {
        if verdict.checked == 0 {
            self.evidence.push(Evidence {
                message: format!("the {} checker found nothing to check in this case's history", verdict.checker),
                events: vec![],
            });
        }
        self.evidence.extend(verdict.evidence.iter().cloned().map(|mut e| {
            e.message = format!("{}: {}", verdict.checker, e.message);
            e
        }));
        self.verdicts.push(verdict);
    }

    /// Marks the feature as missing from the backend.
    pub fn unimplemented(&mut self, why: impl Into<String>) {
        self.unimplemented = Some(why.into());
    }

    /// Flags conformant behaviour that ignores a should-level expectation.
    pub fn non_strict(&mut self, note: impl Into<String>) {
        self.non_strict.push(note.into());
    }

    /// Reports something the protocol leaves open.
    pub fn info(&mut self, note: impl Into<String>) {
        self.info.push(note.into());
    }

    /// The case's result.
    pub fn finish(self) -> CaseResult {
        let outcome = if !self.evidence.is_empty() {
            Outcome::Fail
        } else if self.unimplemented.is_some() {
            Outcome::Unimplemented
        } else if !self.non_strict.is_empty() {
            Outcome::NonStrict
        } else if !self.info.is_empty() {
            Outcome::Info
        } else {
            Outcome::Pass
        };
        let mut evidence = self.evidence;
        if outcome != Outcome::Fail {
            evidence.extend(
                self.unimplemented
                    .into_iter()
                    .chain(self.non_strict)
                    .chain(self.info)
                    .map(|message| Evidence { message, events: vec![] }),
            );
        }
        CaseResult { outcome, evidence, verdicts: self.verdicts }
    }
}

/// A case's body.
pub type CaseFn = fn(Ctx) -> Pin<Box<dyn Future<Output = CaseResult> + Send>>;

/// One numbered case.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    /// `category.number`, e.g. `4.3`.
    pub id: &'static str,
    /// One line saying what it does.
    pub title: &'static str,
    /// The guarantee it checks.
    pub guarantee: &'static str,
    /// The body.
    pub run: CaseFn,
}

/// Builds an object value from pairs.
pub fn obj<const N: usize>(fields: [(&'static str, Value); N]) -> Value {
    Value::object(fields)
}

/// Waits until the client's view satisfies `ready`, recording a failure if it never does.
pub async fn wait_view(judge: &mut Judge, client: &Client, what: &str, ready: impl Fn(&View) -> bool) -> Option<View> {
    match client.wait_until(ready).await {
        Ok(view) => Some(view),
        Err((view, Some(waited))) => {
            judge.fail(format!("waited {waited:?} for {what}; the client's view stayed {:?}", view.results));
            None
        }
        Err((view, None)) => {
            judge.fail(format!("the client closed while waiting for {what}; its view was {:?}", view.results));
            None
        }
    }
}

/// Whether a call got an answer (its outcome, success or failure); if not,
/// records a failure naming `what`, so the caller can end its series of calls
/// there: a call the backend left unanswered is the evidence, and each
/// further call would only wait out its patience again.
pub fn answered<T>(judge: &mut Judge, what: impl FnOnce() -> String, call: &Result<T, ClientError>) -> bool {
    match call {
        Ok(_) => true,
        Err(e) => {
            judge.fail(format!("{} got no answer ({e}); the calls after it were not made", what()));
            false
        }
    }
}

/// Makes one call per item, one after another, until one got no answer
/// (recorded by [`answered`] as `what` and the item); returns whether every
/// call was answered. A case then skips waiting for the effect of calls it
/// never made.
pub async fn each_answered<I, T, F>(
    judge: &mut Judge,
    what: &str,
    items: impl IntoIterator<Item = I>,
    mut call: impl FnMut(I) -> F,
) -> bool
where
    I: Display + Copy,
    F: Future<Output = Result<T, ClientError>>,
{
    for item in items {
        let r = call(item).await;
        if !answered(judge, || format!("{what} {item}"), &r) {
            return false;
        }
    }
    true
}

/// Makes one call per item, one after another, until one got no answer;
/// returns the answers and, if the series stopped early, why. For a series
/// in a task of its own, where no `Judge` is at hand: the case records the
/// stop with [`answered`].
pub async fn answers<I, T, F>(
    items: impl IntoIterator<Item = I>,
    mut call: impl FnMut(I) -> F,
) -> (Vec<T>, Result<(), ClientError>)
where
    F: Future<Output = Result<T, ClientError>>,
{
    let mut answers = Vec::new();
    for item in items {
        match call(item).await {
            Ok(answer) => answers.push(answer),
            Err(e) => return (answers, Err(e)),
        }
    }
    (answers, Ok(()))
}

/// Whether a failure says the function does not exist (Convex: "Could not
/// find public function for ..."), rather than that it refused the call: a
/// backend without a function the case needs gets Unimplemented, not a failure.
pub fn missing_function(message: &str, data: Option<&Value>) -> bool {
    let message = message.to_lowercase();
    data.and_then(|d| d.get("code")).is_none()
        && ["could not find", "not found", "unknown function", "no such function"].iter().any(|m| message.contains(m))
}

/// Connects a client, recording a failure if the backend cannot be reached.
pub async fn connect(ctx: &Ctx, judge: &mut Judge) -> Option<Client> {
    match ctx.client().await {
        Ok(client) => Some(client),
        Err(e) => {
            judge.fail(e.to_string());
            None
        }
    }
}

/// Connects `n` clients.
pub async fn connect_many(ctx: &Ctx, judge: &mut Judge, n: usize) -> Option<Vec<Client>> {
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        clients.push(connect(ctx, judge).await?);
    }
    Some(clients)
}

/// Lets the backend go quiet, so convergence can be judged.
pub async fn quiesce() {
    tokio::time::sleep(QUIET).await;
}

/// The string inside a value (a field, say), or "".
pub fn text(value: Option<&Value>) -> &str {
    value.and_then(Value::as_str).unwrap_or("")
}

/// A query's value in a view, if it has one. Wait conditions read the view
/// they are given: `Client::value_of` inside one would borrow the view twice.
pub fn value_in(view: &View, id: QueryId) -> Option<&Value> {
    match view.results.get(&id) {
        Some(QueryResult::Value(value)) => Some(value),
        _ => None,
    }
}

/// The rows of a query holding an array; none while it holds anything else.
pub fn rows(view: &View, id: QueryId) -> &[Value] {
    match value_in(view, id) {
        Some(Value::Array(rows)) => rows,
        _ => &[],
    }
}

/// `client`'s transitions in a history: each one's event index, end version
/// and query changes.
pub fn transitions<'h>(
    history: &'h History,
    client: &Client,
) -> impl Iterator<Item = (usize, &'h RecordedVersion, &'h [RecordedModification])> + 'h {
    let client = client.id();
    history.events.iter().enumerate().filter(move |(_, e)| e.client == client).filter_map(|(i, e)| match &e.kind {
        EventKind::Transition { end, modifications, .. } => Some((i, end, modifications.as_slice())),
        _ => None,
    })
}
