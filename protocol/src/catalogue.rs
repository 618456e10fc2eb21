//! The function catalogue every compatible backend exposes: names, kinds,
//! argument shapes and the user-error codes they return.
//!
//! Only the contract lives here. What the functions do is the reference
//! server's business (`syncspec-server`'s `functions.rs`).

use crate::value::{Object, Value};

/// Whether a function reads (query), writes in one transaction (mutation),
/// or runs outside any transaction, calling queries and mutations (action).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Read-only, subscribable.
    Query,
    /// Transactional read-write, run once per call.
    Mutation,
    /// Runs outside transactions and calls queries and mutations, each its
    /// own transaction; at most once per call, and not retried.
    Action,
}

/// The type a validator accepts for one argument field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgType {
    /// A string.
    String,
    /// A float64 (a plain JSON number).
    Number,
    /// An int64 (`$integer`).
    Int64,
    /// Any Convex value.
    Any,
}

impl ArgType {
    fn accepts(self, value: &Value) -> bool {
        matches!(
            (self, value),
            (ArgType::String, Value::String(_))
                | (ArgType::Number, Value::Float64(_))
                | (ArgType::Int64, Value::Int64(_))
                | (ArgType::Any, _)
        )
    }

    fn name(self) -> &'static str {
        match self {
            ArgType::String => "string",
            ArgType::Number => "float64",
            ArgType::Int64 => "int64",
            ArgType::Any => "any value",
        }
    }
}

/// One field of a function's argument object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArgSpec {
    /// The field name.
    pub name: &'static str,
    /// The accepted type.
    pub ty: ArgType,
    /// Whether the field may be absent.
    pub optional: bool,
}

const fn req(name: &'static str, ty: ArgType) -> ArgSpec {
    ArgSpec { name, ty, optional: false }
}

const fn opt(name: &'static str, ty: ArgType) -> ArgSpec {
    ArgSpec { name, ty, optional: true }
}

macro_rules! catalogue {
    ($( $variant:ident => $path:literal, $kind:ident, [$($spec:expr),* $(,)?]; )*) => {
        /// A function of the catalogue.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Function {
            $(
                #[doc = concat!("`", $path, "`")]
                $variant,
            )*
        }

        impl Function {
            /// Every function, in catalogue order.
            pub const ALL: &'static [Function] = &[$(Function::$variant),*];

            /// The canonical `module:function` path.
            pub fn path(self) -> &'static str {
                match self { $(Function::$variant => $path,)* }
            }

            /// Query or mutation.
            pub fn kind(self) -> Kind {
                match self { $(Function::$variant => Kind::$kind,)* }
            }

            /// The fields of the argument object.
            pub fn args(self) -> &'static [ArgSpec] {
                match self { $(Function::$variant => { const SPECS: &[ArgSpec] = &[$($spec),*]; SPECS })* }
            }
        }
    };
}

catalogue! {
    MessagesSend => "messages:send", Mutation,
        [req("channel", ArgType::String), req("author", ArgType::String), req("body", ArgType::String)];
    MessagesList => "messages:list", Query,
        [req("channel", ArgType::String), opt("limit", ArgType::Number)];
    MessagesPage => "messages:page", Query,
        [req("channel", ArgType::String), req("paginationOpts", ArgType::Any)];
    MessagesRemove => "messages:remove", Mutation,
        [req("id", ArgType::String)];
    MessagesSendAsMe => "messages:sendAsMe", Mutation,
        [req("channel", ArgType::String), req("body", ArgType::String)];
    MessagesStreamReply => "messages:streamReply", Action,
        [req("channel", ArgType::String), req("author", ArgType::String), req("text", ArgType::String),
         opt("tokenIntervalMs", ArgType::Number), opt("failAfterTokens", ArgType::Number)];
    MessagesStartStream => "messages:startStream", Mutation,
        [req("channel", ArgType::String), req("author", ArgType::String)];
    MessagesAppendToken => "messages:appendToken", Mutation,
        [req("id", ArgType::String), req("token", ArgType::String)];
    MessagesFinishStream => "messages:finishStream", Mutation,
        [req("id", ArgType::String)];
    PresenceHeartbeat => "presence:heartbeat", Mutation,
        [req("room", ArgType::String), req("user", ArgType::String), req("name", ArgType::String)];
    PresenceHeartbeatAsMe => "presence:heartbeatAsMe", Mutation,
        [req("room", ArgType::String)];
    PresenceLeave => "presence:leave", Mutation,
        [req("room", ArgType::String), req("user", ArgType::String)];
    PresenceExpire => "presence:expire", Mutation,
        [req("room", ArgType::String), req("user", ArgType::String)];
    PresenceList => "presence:list", Query,
        [req("room", ArgType::String)];
    CursorsMove => "cursors:move", Mutation,
        [req("room", ArgType::String), req("user", ArgType::String), req("x", ArgType::Number), req("y", ArgType::Number)];
    CursorsList => "cursors:list", Query,
        [req("room", ArgType::String)];
    CountersIncrement => "counters:increment", Mutation,
        [req("name", ArgType::String), opt("by", ArgType::Int64)];
    CountersGet => "counters:get", Query,
        [req("name", ArgType::String)];
    DocumentsCreate => "documents:create", Mutation,
        [req("title", ArgType::String), req("content", ArgType::String)];
    DocumentsUpdate => "documents:update", Mutation,
        [req("id", ArgType::String), req("content", ArgType::String), req("expectedVersion", ArgType::Number)];
    DocumentsGet => "documents:get", Query,
        [req("id", ArgType::String)];
    NotificationsSend => "notifications:send", Mutation,
        [req("user", ArgType::String), req("title", ArgType::String)];
    NotificationsSendLater => "notifications:sendLater", Mutation,
        [req("user", ArgType::String), req("title", ArgType::String), req("delayMs", ArgType::Number)];
    NotificationsMarkAllRead => "notifications:markAllRead", Mutation,
        [req("user", ArgType::String)];
    NotificationsUnread => "notifications:unread", Query,
        [req("user", ArgType::String)];
    NotificationsMine => "notifications:mine", Query,
        [];
    UsersMe => "users:me", Query,
        [];
    AccountsOpen => "accounts:open", Mutation,
        [req("bank", ArgType::String), req("accounts", ArgType::Number), req("balance", ArgType::Int64)];
    AccountsTransfer => "accounts:transfer", Mutation,
        [req("bank", ArgType::String), req("from", ArgType::Number), req("to", ArgType::Number), req("amount", ArgType::Int64)];
    AccountsWithdrawJoint => "accounts:withdrawJoint", Mutation,
        [req("bank", ArgType::String), req("account", ArgType::Number), req("partner", ArgType::Number), req("amount", ArgType::Int64)];
    AccountsBalances => "accounts:balances", Query,
        [req("bank", ArgType::String)];
    ValuesEcho => "values:echo", Query,
        [req("value", ArgType::Any)];
}

impl Function {
    /// Looks a function up by its path, canonicalised as the clients do
    /// (`mod` means `mod:default`, a `.js` suffix on the module is dropped).
    pub fn from_path(path: &str) -> Option<Function> {
        let (module, function) = path.split_once(':').unwrap_or((path, "default"));
        let module = module.strip_suffix(".js").unwrap_or(module);
        Function::ALL
            .iter()
            .copied()
            .find(|f| f.path().split_once(':').is_some_and(|(m, n)| m == module && n == function))
    }

    /// Whether the function reads the caller's identity, so its result
    /// depends on who calls as well as on its arguments.
    pub fn uses_identity(self) -> bool {
        matches!(
            self,
            Function::MessagesSendAsMe
                | Function::PresenceHeartbeatAsMe
                | Function::NotificationsMine
                | Function::UsersMe
        )
    }

    /// Whether the function is a paginated query (`.paginate()`'s contract:
    /// `paginationOpts` in, `{page, isDone, continueCursor}` out). A
    /// subscription to one keeps the end cursor of its first result in its
    /// journal, so the page covers the same stretch of rows as they change.
    pub fn is_paginated(self) -> bool {
        matches!(self, Function::MessagesPage)
    }

    /// Whether only the backend itself may call the function (Convex's
    /// `internalMutation`): `presence:expire`, which `presence:heartbeat`
    /// schedules. A client asking for it is told there is no such function.
    pub fn is_internal(self) -> bool {
        matches!(self, Function::PresenceExpire)
    }

    /// Checks an argument object against the function's validator.
    pub fn validate<'a>(self, args: &'a Value) -> Result<&'a Object, ArgError> {
        let Value::Object(fields) = args else {
            return Err(ArgError {
                field: None,
                message: format!("expected an argument object, got {}", args.type_name()),
            });
        };
        let specs = self.args();
        for spec in specs {
            match fields.get(spec.name) {
                None if spec.optional => {}
                None => {
                    return Err(ArgError {
                        field: Some(spec.name.to_owned()),
                        message: format!("missing required field `{}` of type {}", spec.name, spec.ty.name()),
                    })
                }
                Some(value) if !spec.ty.accepts(value) => {
                    return Err(ArgError {
                        field: Some(spec.name.to_owned()),
                        message: format!(
                            "expected field `{}` to be {}, got {}",
                            spec.name,
                            spec.ty.name(),
                            value.type_name()
                        ),
                    })
                }
                Some(_) => {}
            }
        }
        if let Some(extra) = fields.keys().find(|k| !specs.iter().any(|s| s.name == k.as_ref())) {
            return Err(ArgError { field: Some(extra.to_string()), message: format!("unexpected field `{extra}`") });
        }
        Ok(fields)
    }
}

/// An argument object that fails the function's validator.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ArgError {
    /// The offending field, when one is to blame.
    pub field: Option<String>,
    /// What was expected and what came.
    pub message: String,
}

/// The `errorData.code` values of the catalogue's user errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorCode {
    /// A missing, extra or mistyped argument field.
    InvalidArguments,
    /// `messages:send` with a body that is empty after trimming.
    EmptyMessage,
    /// `messages:send` with a body over 4096 characters.
    TooLong,
    /// A document that does not exist.
    NotFound,
    /// `messages:appendToken` on a finished stream.
    StreamFinished,
    /// Over the per-user rate limit; nothing was written.
    RateLimited,
    /// `documents:update` with a stale `expectedVersion`.
    VersionConflict,
    /// `accounts:transfer` of more than the source holds.
    InsufficientFunds,
    /// `accounts:transfer` naming an account the bank lacks.
    NoSuchAccount,
    /// `accounts:open` on a bank that already has accounts.
    BankExists,
    /// A document or argument over the size limits.
    TooLarge,
    /// A function that needs the caller's identity, called without one.
    Unauthenticated,
    /// A pagination cursor this backend did not hand out.
    InvalidCursor,
    /// `notifications:sendLater` for a user whose inbox holds the most
    /// unread notifications it may.
    InboxFull,
    /// An action's outside source failed part-way (`messages:streamReply`
    /// with `failAfterTokens`); what it committed before stays.
    UpstreamFailed,
}

impl ErrorCode {
    /// The code as it appears in `errorData.code`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidArguments => "InvalidArguments",
            ErrorCode::EmptyMessage => "EmptyMessage",
            ErrorCode::TooLong => "TooLong",
            ErrorCode::NotFound => "NotFound",
            ErrorCode::StreamFinished => "StreamFinished",
            ErrorCode::RateLimited => "RateLimited",
            ErrorCode::VersionConflict => "VersionConflict",
            ErrorCode::InsufficientFunds => "InsufficientFunds",
            ErrorCode::NoSuchAccount => "NoSuchAccount",
            ErrorCode::BankExists => "BankExists",
            ErrorCode::TooLarge => "TooLarge",
            ErrorCode::Unauthenticated => "Unauthenticated",
            ErrorCode::InvalidCursor => "InvalidCursor",
            ErrorCode::UpstreamFailed => "UpstreamFailed",
            ErrorCode::InboxFull => "InboxFull",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_both_ways() {
        for f in Function::ALL {
            assert_eq!(Function::from_path(f.path()), Some(*f));
        }
        assert!(Function::PresenceExpire.is_internal());
        assert_eq!(Function::from_path("messages.js:send"), Some(Function::MessagesSend));
        assert_eq!(Function::from_path("messages:nope"), None);
    }

    #[test]
    fn validator_names_the_field() {
        let f = Function::CountersIncrement;
        let missing = f.validate(&Value::object::<[(&str, Value); 0], &str>([])).unwrap_err();
        assert_eq!(missing.field.as_deref(), Some("name"));
        let mistyped =
            f.validate(&Value::object([("name", Value::from("c")), ("by", Value::Float64(1.0))])).unwrap_err();
        assert_eq!(mistyped.field.as_deref(), Some("by"));
        let extra = f.validate(&Value::object([("name", Value::from("c")), ("x", Value::Null)])).unwrap_err();
        assert_eq!(extra.field.as_deref(), Some("x"));
        assert!(f.validate(&Value::object([("name", Value::from("c"))])).is_ok());
    }
}
