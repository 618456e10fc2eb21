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
        Function::PresenceHeartbeatAsMe => {
            let me = signed_in(caller, function)?;
            heartbeat(txn, a.val("room"), Value::from(&*me.subject), Value::from(me.display_name()))
        }
        Function::PresenceLeave => {
            for row in txn.scan(IndexId::PresenceByRoom, &[a.val("room"), a.val("user")]) {
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

/// Upserts one presence row.
fn heartbeat(txn: &mut Txn<'_>, room: Value, user: Value, name: Value) -> Result<Value, UserError> {
    let existing = txn.scan(IndexId::PresenceByRoom, &[room.clone(), user.clone()]).into_iter().next();
    let fields = obj([("room", room), ("user", user), ("name", name)]);
    match existing {
        Some(row) => txn.replace(row.id, Table::Presence, fields)?,
        None => {
            txn.insert(Table::Presence, fields)?;
        }
    }
    Ok(Value::Null)
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
