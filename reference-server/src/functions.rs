//! What the catalogue's functions do, written against a transaction.
//!
//! Each function is deterministic: it reads only through its `Txn` and the
//! arguments, so the core may run it again at a newer snapshot after an OCC
//! conflict. Argument shapes were already checked by the catalogue's
//! validators; the rules here are the catalogue's user errors. Rate limits
//! are not here: they need a clock, which the core has and functions do not.

use syncspec_protocol::catalogue::{ErrorCode, Function};
use syncspec_protocol::value::{Object, Value};

use crate::auth::Identity;
use crate::store::{DocId, IndexId, Table};
use crate::txn::{TooLarge, Txn, View};

/// The longest chat message body, in characters.
pub const MAX_BODY_CHARS: usize = 4096;
/// The default and largest `messages:list` limit.
pub const DEFAULT_LIST_LIMIT: usize = 100;
/// The most rows one `messages:page` reads for a page without a fixed end
/// (a larger `numItems` gets a shorter page, which the contract allows).
pub const MAX_PAGE_ITEMS: usize = 1000;
/// The most unread notifications a user's inbox holds before
/// `notifications:sendLater` refuses with `InboxFull`.
pub const MAX_UNREAD: usize = 100;
/// The longest `notifications:sendLater` delay: a year, in milliseconds.
pub const MAX_DELAY_MS: f64 = 366.0 * 24.0 * 3600.0 * 1000.0;
/// The most accounts one `accounts:open` creates.
pub const MAX_ACCOUNTS: usize = 10_000;

/// A user error: a failed call whose `errorData` is `{code, message, ...}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UserError {
    /// The catalogue's error code.
    pub code: ErrorCode,
    /// A message for people.
    pub message: String,
    /// More `errorData` fields (`retryAfterMs`, `field`, ...).
    pub extra: Vec<(&'static str, Value)>,
}

impl UserError {
    /// An error with a code and message and no extra fields.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> UserError {
        UserError { code, message: message.into(), extra: Vec::new() }
    }

    /// Adds one `errorData` field.
    pub fn with(mut self, name: &'static str, value: Value) -> UserError {
        self.extra.push((name, value));
        self
    }

    /// The `errorData` object.
    pub fn data(&self) -> Value {
        let mut data = Object::new();
        data.insert("code".into(), Value::from(self.code.as_str()));
        data.insert("message".into(), Value::from(self.message.as_str()));
        for (k, v) in &self.extra {
            data.insert((*k).into(), v.clone());
        }
        Value::Object(data)
    }
}

impl From<TooLarge> for UserError {
    fn from(e: TooLarge) -> UserError {
        UserError::new(ErrorCode::TooLarge, format!("document of {} bytes is over the 1 MiB limit", e.bytes))
    }
}

/// Runs `function` with validated `args` inside `txn`, for `caller` (the
/// verified identity, if any; only the functions that `uses_identity` read it).
pub fn run(
    function: Function,
    args: &Object,
    caller: Option<&Identity>,
    txn: &mut Txn<'_>,
) -> Result<Value, UserError> {
    let a = Args(args);
    match function {
        Function::MessagesStreamReply => Err(UserError::new(
            ErrorCode::InvalidArguments,
            format!("{} is an action: it runs outside transactions, step by step (see `actions`)", function.path()),
        )),
        Function::MessagesSend => send(txn, a.str("channel"), a.str("author"), a.str("body")),
        Function::MessagesSendAsMe => {
            let me = signed_in(caller, function)?;
            send(txn, a.str("channel"), me.display_name(), a.str("body"))
        }
        Function::MessagesList => {
            let limit = match args.get("limit") {
                None => DEFAULT_LIST_LIMIT,
                Some(Value::Float64(f)) if f.is_finite() && *f >= 0.0 => (*f as usize).min(DEFAULT_LIST_LIMIT * 10),
                Some(other) => return Err(invalid("limit", format!("expected a non-negative number, got {other}"))),
            };
            let rows = txn.scan(IndexId::MessagesByChannel, &[a.val("channel")]);
            let skip = rows.len().saturating_sub(limit);
            Ok(Value::Array(rows[skip..].iter().map(message_row).collect()))
        }
        Function::MessagesPage => {
            let opts = PageOpts::parse(args.get("paginationOpts"))?;
            let rows = txn.scan(IndexId::MessagesByChannel, &[a.val("channel")]);
            Ok(page(&rows, &opts))
        }
        Function::MessagesRemove => {
            let doc = get_message(txn, a.str("id"))?;
            txn.delete(doc.id, Table::Messages);
            Ok(Value::Null)
        }
        Function::MessagesStartStream => {
            let id = txn.insert(Table::Messages, message(a.str("channel"), a.str("author"), "", true))?;
            Ok(Value::from(id.to_wire(Table::Messages)))
        }
        Function::MessagesAppendToken => {
            let doc = get_message(txn, a.str("id"))?;
            if doc.get("streaming") != &Value::Boolean(true) {
                return Err(UserError::new(ErrorCode::StreamFinished, "the stream is finished"));
            }
            let mut fields = Object::clone(&doc.fields);
            let body = format!("{}{}", doc.get("body").as_str().unwrap_or(""), a.str("token"));
            fields.insert("body".into(), Value::from(body));
            txn.replace(doc.id, Table::Messages, fields)?;
            Ok(Value::Null)
        }
        Function::MessagesFinishStream => {
            let doc = get_message(txn, a.str("id"))?;
            let mut fields = Object::clone(&doc.fields);
            fields.insert("streaming".into(), Value::Boolean(false));
            txn.replace(doc.id, Table::Messages, fields)?;
            Ok(Value::Null)
        }
        Function::PresenceHeartbeat => heartbeat(txn, a.val("room"), a.val("user"), a.val("name")),
        Function::PresenceExpire => {
            // Scheduled by the last heartbeat, which every later heartbeat
            // cancels: if it runs, the row has had no heartbeat for the TTL.
            for row in txn.scan(IndexId::PresenceByRoom, &[a.val("room"), a.val("user")]) {
                txn.delete(row.id, Table::Presence);
            }
            Ok(Value::Null)
        }
        Function::PresenceHeartbeatAsMe => {
            let me = signed_in(caller, function)?;
            heartbeat(txn, a.val("room"), Value::from(&*me.subject), Value::from(me.display_name()))
        }
        Function::PresenceLeave => {
            for row in txn.scan(IndexId::PresenceByRoom, &[a.val("room"), a.val("user")]) {
                cancel(txn, row.get("expiry"));
                txn.delete(row.id, Table::Presence);
            }
            Ok(Value::Null)
        }
        Function::PresenceList => {
            let rows = txn.scan(IndexId::PresenceByRoom, &[a.val("room")]);
            Ok(Value::Array(
                rows.iter()
                    .map(|r| {
                        obj([
                            ("user", r.get("user").clone()),
                            ("name", r.get("name").clone()),
                            ("lastSeen", r.updated_ms()),
                        ])
                    })
                    .map(Value::Object)
                    .collect(),
            ))
        }
        Function::CursorsMove => {
            let key = [a.val("room"), a.val("user")];
            let existing = txn.scan(IndexId::CursorsByRoom, &key).into_iter().next();
            let fields = obj([("room", a.val("room")), ("user", a.val("user")), ("x", a.val("x")), ("y", a.val("y"))]);
            match existing {
                Some(row) => txn.replace(row.id, Table::Cursors, fields)?,
                None => {
                    txn.insert(Table::Cursors, fields)?;
                }
            }
            Ok(Value::Null)
        }
        Function::CursorsList => {
            let rows = txn.scan(IndexId::CursorsByRoom, &[a.val("room")]);
            Ok(Value::Array(
                rows.iter()
                    .map(|r| {
                        obj([
                            ("user", r.get("user").clone()),
                            ("x", r.get("x").clone()),
                            ("y", r.get("y").clone()),
                            ("updatedAt", r.updated_ms()),
                        ])
                    })
                    .map(Value::Object)
                    .collect(),
            ))
        }
        Function::CountersIncrement => {
            let by = match args.get("by") {
                Some(Value::Int64(by)) => *by,
                _ => 1,
            };
            let existing = txn.scan(IndexId::CountersByName, &[a.val("name")]).into_iter().next();
            let current = existing.as_ref().map_or(0, |row| int(row.get("value")));
            let next = current
                .checked_add(by)
                .ok_or_else(|| invalid("by", format!("counter {current} + {by} overflows int64")))?;
            let fields = obj([("name", a.val("name")), ("value", Value::Int64(next))]);
            match existing {
                Some(row) => txn.replace(row.id, Table::Counters, fields)?,
                None => {
                    txn.insert(Table::Counters, fields)?;
                }
            }
            Ok(Value::Int64(next))
        }
        Function::CountersGet => {
            let row = txn.scan(IndexId::CountersByName, &[a.val("name")]).into_iter().next();
            Ok(Value::Int64(row.map_or(0, |r| int(r.get("value")))))
        }
        Function::DocumentsCreate => {
            let fields =
                obj([("title", a.val("title")), ("content", a.val("content")), ("version", Value::Float64(1.0))]);
            let id = txn.insert(Table::Documents, fields)?;
            Ok(Value::from(id.to_wire(Table::Documents)))
        }
        Function::DocumentsUpdate => {
            let doc = match DocId::parse(a.str("id")) {
                Some((Table::Documents, id)) => txn.get(id),
                _ => None,
            }
            .ok_or_else(|| UserError::new(ErrorCode::NotFound, format!("no document {:?}", a.str("id"))))?;
            let stored = doc.get("version").clone();
            let expected = a.val("expectedVersion");
            if stored != expected {
                return Err(UserError::new(
                    ErrorCode::VersionConflict,
                    format!("expected version {expected}, the document is at {stored}"),
                )
                .with("currentVersion", stored));
            }
            let next = match stored {
                Value::Float64(v) => Value::Float64(v + 1.0),
                _ => Value::Float64(1.0),
            };
            let mut fields = Object::clone(&doc.fields);
            fields.insert("content".into(), a.val("content"));
            fields.insert("version".into(), next.clone());
            txn.replace(doc.id, Table::Documents, fields)?;
            Ok(next)
        }
        Function::DocumentsGet => {
            let doc = match DocId::parse(a.str("id")) {
                Some((Table::Documents, id)) => txn.get(id),
                _ => None,
            };
            Ok(doc.map_or(Value::Null, |d| {
                Value::Object(obj([
                    ("_id", Value::from(d.id.to_wire(Table::Documents))),
                    ("title", d.get("title").clone()),
                    ("content", d.get("content").clone()),
                    ("version", d.get("version").clone()),
                ]))
            }))
        }
        Function::NotificationsSend => {
            let fields = obj([("user", a.val("user")), ("title", a.val("title")), ("read", Value::Boolean(false))]);
            let id = txn.insert(Table::Notifications, fields)?;
            Ok(Value::from(id.to_wire(Table::Notifications)))
        }
        Function::NotificationsSendLater => {
            let delay = a.num("delayMs");
            if !(0.0..=MAX_DELAY_MS).contains(&delay) {
                return Err(invalid("delayMs", format!("expected milliseconds from 0 to {MAX_DELAY_MS}, got {delay}")));
            }
            // Scheduled before the inbox check, as apps often write it: a
            // refusal must take the schedule with it (it is a write of this
            // transaction), and so must an OCC retry.
            let args = obj([("user", a.val("user")), ("title", a.val("title"))]);
            let job = txn.schedule(delay, Function::NotificationsSend.path(), args)?;
            let unread = txn.scan(IndexId::NotificationsByUserRead, &[a.val("user"), Value::Boolean(false)]);
            if unread.len() >= MAX_UNREAD {
                return Err(UserError::new(
                    ErrorCode::InboxFull,
                    format!("{:?} has {} unread notifications, the most an inbox holds", a.str("user"), unread.len()),
                ));
            }
            Ok(Value::from(job.to_wire(Table::Scheduled)))
        }
        Function::NotificationsMarkAllRead => {
            let unread = txn.scan(IndexId::NotificationsByUserRead, &[a.val("user"), Value::Boolean(false)]);
            for row in &unread {
                let mut fields = Object::clone(&row.fields);
                fields.insert("read".into(), Value::Boolean(true));
                txn.replace(row.id, Table::Notifications, fields)?;
            }
            Ok(Value::Float64(unread.len() as f64))
        }
        Function::NotificationsUnread => Ok(unread(txn, a.val("user"))),
        Function::NotificationsMine => Ok(match caller {
            Some(me) => unread(txn, Value::from(&*me.subject)),
            None => Value::Object(obj([("count", Value::Float64(0.0)), ("items", Value::Array(vec![]))])),
        }),
        Function::UsersMe => Ok(match caller {
            None => Value::Null,
            Some(me) => {
                let mut fields = obj([
                    ("subject", Value::from(&*me.subject)),
                    ("issuer", Value::from(&*me.issuer)),
                    ("tokenIdentifier", Value::from(me.token_identifier())),
                ]);
                if let Some(name) = &me.name {
                    fields.insert("name".into(), Value::from(&**name));
                }
                Value::Object(fields)
            }
        }),
        Function::AccountsOpen => {
            let count =
                whole(a.num("accounts")).filter(|n| (1..=MAX_ACCOUNTS as i64).contains(n)).ok_or_else(|| {
                    invalid(
                        "accounts",
                        format!("expected a whole number from 1 to {MAX_ACCOUNTS}, got {}", a.num("accounts")),
                    )
                })?;
            let balance = int(&a.val("balance"));
            if balance < 0 {
                return Err(invalid("balance", format!("expected a non-negative balance, got {balance}")));
            }
            if !txn.scan(IndexId::AccountsByBank, &[a.val("bank")]).is_empty() {
                return Err(UserError::new(
                    ErrorCode::BankExists,
                    format!("bank {:?} already has accounts", a.str("bank")),
                ));
            }
            for account in 0..count {
                txn.insert(
                    Table::Accounts,
                    obj([
                        ("bank", a.val("bank")),
                        ("account", Value::Float64(account as f64)),
                        ("balance", Value::Int64(balance)),
                    ]),
                )?;
            }
            Ok(Value::Null)
        }
        Function::AccountsTransfer => {
            let amount = int(&a.val("amount"));
            if amount < 0 {
                return Err(invalid("amount", format!("expected a non-negative amount, got {amount}")));
            }
            let from = account(txn, &a, "from")?;
            let to = account(txn, &a, "to")?;
            let from_balance = int(from.get("balance"));
            if from_balance < amount {
                return Err(UserError::new(
                    ErrorCode::InsufficientFunds,
                    format!("account {} holds {from_balance}, less than {amount}", a.num("from")),
                ));
            }
            if from.id != to.id {
                let mut from_fields = Object::clone(&from.fields);
                from_fields.insert("balance".into(), Value::Int64(from_balance - amount));
                txn.replace(from.id, Table::Accounts, from_fields)?;
                let mut to_fields = Object::clone(&to.fields);
                let to_balance = int(to.get("balance")).saturating_add(amount);
                to_fields.insert("balance".into(), Value::Int64(to_balance));
                txn.replace(to.id, Table::Accounts, to_fields)?;
            }
            Ok(Value::Null)
        }
        Function::AccountsWithdrawJoint => {
            // Reads two rows, writes one: what snapshot isolation gets wrong
            // (two withdrawals from the two accounts of a pair each see the
            // pair's sum before the other, and both commit).
            let amount = int(&a.val("amount"));
            if amount < 0 {
                return Err(invalid("amount", format!("expected a non-negative amount, got {amount}")));
            }
            let mine = account(txn, &a, "account")?;
            let partner = account(txn, &a, "partner")?;
            if mine.id == partner.id {
                return Err(invalid("partner", "expected an account other than `account`".to_owned()));
            }
            let (balance, joint) = (int(mine.get("balance")), int(partner.get("balance")));
            if balance.saturating_add(joint) < amount {
                return Err(UserError::new(
                    ErrorCode::InsufficientFunds,
                    format!(
                        "accounts {} and {} hold {} together, less than {amount}",
                        a.num("account"),
                        a.num("partner"),
                        balance.saturating_add(joint)
                    ),
                ));
            }
            let mut fields = Object::clone(&mine.fields);
            fields.insert("balance".into(), Value::Int64(balance - amount));
            txn.replace(mine.id, Table::Accounts, fields)?;
            Ok(Value::Int64(balance - amount))
        }
        Function::AccountsBalances => {
            let rows = txn.scan(IndexId::AccountsByBank, &[a.val("bank")]);
            Ok(Value::Array(
                rows.iter()
                    .map(|r| {
                        Value::Object(obj([
                            ("account", r.get("account").clone()),
                            ("balance", r.get("balance").clone()),
                        ]))
                    })
                    .collect(),
            ))
        }
        Function::ValuesEcho => Ok(a.val("value")),
    }
}

/// Where a page starts or ends in `messages:page`'s order (newest first):
/// just past a message's (creation ts, id), or past the oldest message.
/// Positions do not need the message to exist, so a cursor stays valid
/// when the row it names is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Position {
    /// Past the oldest message: the end of the channel.
    End,
    /// Just past the message with this (creation ts, id).
    After(u64, u64),
}

impl Position {
    fn of(row: &View) -> Position {
        Position::After(row.stored.as_ref().map_or(u64::MAX, |d| d.created), row.id.0)
    }

    fn cursor(self) -> String {
        match self {
            Position::End => "end".to_owned(),
            Position::After(created, id) => format!("{created}:{id}"),
        }
    }

    fn parse(cursor: &str) -> Option<Position> {
        if cursor == "end" {
            return Some(Position::End);
        }
        let (created, id) = cursor.split_once(':')?;
        Some(Position::After(created.parse().ok()?, id.parse().ok()?))
    }

    /// Whether `row` (newest first) lies past this position.
    fn is_before(self, row: &View) -> bool {
        match (self, Position::of(row)) {
            (Position::End, _) => false,
            (_, Position::End) => true,
            (Position::After(c, i), Position::After(rc, ri)) => (rc, ri) < (c, i),
        }
    }
}

/// `paginationOpts` as Convex's `paginationOptsValidator` takes it.
struct PageOpts {
    num_items: usize,
    /// Where the page starts; `None` for the newest message.
    cursor: Option<Position>,
    /// Where it ends, when fixed (by the caller, or by a subscription's journal).
    end: Option<Position>,
}

impl PageOpts {
    fn parse(value: Option<&Value>) -> Result<PageOpts, UserError> {
        let bad = |message: String| invalid("paginationOpts", message);
        let Some(Value::Object(opts)) = value else {
            return Err(bad("expected `paginationOpts` to be an object {numItems, cursor}".to_owned()));
        };
        if let Some(extra) = opts.keys().find(|k| !PAGE_OPTS.contains(&k.as_ref())) {
            return Err(bad(format!("unexpected field `paginationOpts.{extra}`")));
        }
        let num_items = match opts.get("numItems") {
            Some(Value::Float64(n)) => whole(*n).filter(|&n| n >= 1),
            _ => None,
        }
        .ok_or_else(|| bad("expected `paginationOpts.numItems` to be a whole number of at least 1".to_owned()))?;
        let position = |name: &str| -> Result<Option<Position>, UserError> {
            match opts.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Position::parse(s).map(Some).ok_or_else(|| {
                    UserError::new(
                        ErrorCode::InvalidCursor,
                        format!("`paginationOpts.{name}` {s:?} is not a cursor this server handed out"),
                    )
                }),
                Some(other) => Err(bad(format!(
                    "expected `paginationOpts.{name}` to be a string or null, got {}",
                    other.type_name()
                ))),
            }
        };
        if !opts.contains_key("cursor") {
            return Err(bad("missing required field `paginationOpts.cursor` (a string or null)".to_owned()));
        }
        Ok(PageOpts { num_items: num_items as usize, cursor: position("cursor")?, end: position("endCursor")? })
    }
}

/// The fields `paginationOpts` may hold; the server uses the first three and
/// accepts the rest as Convex does (`id` is the client's own tag).
const PAGE_OPTS: [&str; 6] = ["numItems", "cursor", "endCursor", "id", "maximumRowsRead", "maximumBytesRead"];

/// One page of `rows` (a channel, oldest first) in newest-first order:
/// from the cursor to the fixed end if there is one, else `numItems` rows.
/// A page longer than `numItems` (rows arrived inside a fixed page) also
/// offers a `splitCursor`, where the client may cut it in two.
fn page(rows: &[View], opts: &PageOpts) -> Value {
    let mut after_start = rows.iter().rev().filter(|r| opts.cursor.is_none_or(|c| c.is_before(r)));
    let (taken, end): (Vec<&View>, Position) = match opts.end {
        Some(end) => (after_start.take_while(|r| !end.is_before(r)).collect(), end),
        None => {
            let wanted = opts.num_items.min(MAX_PAGE_ITEMS);
            let taken: Vec<&View> = after_start.clone().take(wanted).collect();
            let more = after_start.nth(taken.len()).is_some();
            let end = match taken.last() {
                Some(last) if more => Position::of(last),
                _ => Position::End,
            };
            (taken, end)
        }
    };
    let mut result = obj([
        ("page", Value::Array(taken.iter().map(|r| message_row(r)).collect())),
        ("isDone", Value::Boolean(end == Position::End)),
        ("continueCursor", Value::from(end.cursor())),
    ]);
    if taken.len() > opts.num_items {
        let split = Position::of(taken[taken.len() / 2 - 1]);
        result.insert("splitCursor".into(), Value::from(split.cursor()));
    }
    Value::Object(result)
}

/// `args` of a paginated query with `paginationOpts.endCursor` set to
/// `end` (a subscription's journal), unless the caller fixed an end itself.
pub fn pin_page_end(args: &Object, end: &str) -> Option<Object> {
    let Some(Value::Object(opts)) = args.get("paginationOpts") else {
        return None;
    };
    if opts.get("endCursor").is_some_and(|e| !matches!(e, Value::Null)) {
        return None;
    }
    let mut opts = opts.clone();
    opts.insert("endCursor".into(), Value::from(end));
    let mut pinned = args.clone();
    pinned.insert("paginationOpts".into(), Value::Object(opts));
    Some(pinned)
}

/// Validated arguments, read without re-checking types.
struct Args<'a>(&'a Object);

impl Args<'_> {
    fn val(&self, name: &str) -> Value {
        self.0.get(name).cloned().unwrap_or(Value::Null)
    }

    fn str(&self, name: &str) -> &str {
        self.0.get(name).and_then(Value::as_str).unwrap_or("")
    }

    fn num(&self, name: &str) -> f64 {
        match self.0.get(name) {
            Some(Value::Float64(f)) => *f,
            _ => f64::NAN,
        }
    }
}

/// The caller, or `Unauthenticated` for a function that needs one.
fn signed_in(caller: Option<&Identity>, function: Function) -> Result<&Identity, UserError> {
    caller.ok_or_else(|| {
        UserError::new(ErrorCode::Unauthenticated, format!("{} needs a signed-in caller", function.path()))
    })
}

/// `messages:send`'s rules and insert, for any author.
fn send(txn: &mut Txn<'_>, channel: &str, author: &str, body: &str) -> Result<Value, UserError> {
    let body = body.trim();
    if body.is_empty() {
        return Err(UserError::new(ErrorCode::EmptyMessage, "message body is empty after trimming"));
    }
    let chars = body.chars().count();
    if chars > MAX_BODY_CHARS {
        return Err(UserError::new(
            ErrorCode::TooLong,
            format!("message body of {chars} characters is over the {MAX_BODY_CHARS} limit"),
        ));
    }
    let id = txn.insert(Table::Messages, message(channel, author, body, false))?;
    Ok(Value::from(id.to_wire(Table::Messages)))
}

/// Upserts one presence row and moves its expiry: the previous heartbeat's
/// scheduled `presence:expire` is cancelled and a new one scheduled the TTL
/// ahead, as Convex apps write presence (queries cannot read the clock).
fn heartbeat(txn: &mut Txn<'_>, room: Value, user: Value, name: Value) -> Result<Value, UserError> {
    let existing = txn.scan(IndexId::PresenceByRoom, &[room.clone(), user.clone()]).into_iter().next();
    if let Some(row) = &existing {
        cancel(txn, row.get("expiry"));
    }
    let expire = obj([("room", room.clone()), ("user", user.clone())]);
    let job = txn.schedule(txn.presence_ttl_ms, Function::PresenceExpire.path(), expire)?;
    let expiry = Value::from(job.to_wire(Table::Scheduled));
    let fields = obj([("room", room), ("user", user), ("name", name), ("expiry", expiry)]);
    match existing {
        Some(row) => txn.replace(row.id, Table::Presence, fields)?,
        None => {
            txn.insert(Table::Presence, fields)?;
        }
    }
    Ok(Value::Null)
}

/// Cancels a scheduled function by its wire id (a no-op once it has run).
fn cancel(txn: &mut Txn<'_>, job: &Value) {
    if let Some((Table::Scheduled, id)) = job.as_str().and_then(DocId::parse) {
        txn.delete(id, Table::Scheduled);
    }
}

/// A user's unread notifications: `{count, items}`.
fn unread(txn: &mut Txn<'_>, user: Value) -> Value {
    let unread = txn.scan(IndexId::NotificationsByUserRead, &[user, Value::Boolean(false)]);
    let items: Vec<Value> = unread
        .iter()
        .map(|r| {
            Value::Object(obj([
                ("_id", Value::from(r.id.to_wire(Table::Notifications))),
                ("title", r.get("title").clone()),
            ]))
        })
        .collect();
    Value::Object(obj([("count", Value::Float64(items.len() as f64)), ("items", Value::Array(items))]))
}

fn obj<const N: usize>(fields: [(&'static str, Value); N]) -> Object {
    // Inserting one by one beats collecting (which sorts, then bulk-builds)
    // for the handful of fields a row has.
    let mut object = Object::new();
    for (k, v) in fields {
        object.insert(k.into(), v);
    }
    object
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Int64(i) => *i,
        _ => 0,
    }
}

fn whole(f: f64) -> Option<i64> {
    (f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15).then_some(f as i64)
}

fn invalid(field: &'static str, message: String) -> UserError {
    UserError::new(ErrorCode::InvalidArguments, message).with("field", Value::from(field))
}

fn message(channel: &str, author: &str, body: &str, streaming: bool) -> Object {
    obj([
        ("channel", Value::from(channel)),
        ("author", Value::from(author)),
        ("body", Value::from(body)),
        ("streaming", Value::Boolean(streaming)),
    ])
}

fn message_row(row: &View) -> Value {
    Value::Object(obj([
        ("_id", Value::from(row.id.to_wire(Table::Messages))),
        ("_creationTime", row.creation_time()),
        ("channel", row.get("channel").clone()),
        ("author", row.get("author").clone()),
        ("body", row.get("body").clone()),
        ("streaming", row.get("streaming").clone()),
    ]))
}

fn get_message(txn: &mut Txn<'_>, id: &str) -> Result<View, UserError> {
    match DocId::parse(id) {
        Some((Table::Messages, id)) => txn.get(id),
        _ => None,
    }
    .ok_or_else(|| UserError::new(ErrorCode::NotFound, format!("no message {id:?}")))
}

fn account(txn: &mut Txn<'_>, a: &Args<'_>, field: &'static str) -> Result<View, UserError> {
    let number = a.num(field);
    let row = whole(number)
        .and_then(|_| txn.scan(IndexId::AccountsByBank, &[a.val("bank"), Value::Float64(number)]).into_iter().next());
    row.ok_or_else(|| {
        UserError::new(ErrorCode::NoSuchAccount, format!("bank {:?} has no account {number}", a.str("bank")))
            .with("account", Value::Float64(number))
    })
}
