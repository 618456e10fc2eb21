//! How a backend says a call's arguments failed their validator, for the
//! cases that send missing, extra or mistyped arguments (3.6, 4.6). The
//! reference answers with the catalogue's `errorData.code` `InvalidArguments`;
//! a Convex deployment's argument validators fail the call with no
//! `errorData` and a message naming `ArgumentValidationError` (convex-test
//! says `Validator error`). Either is a refusal of the arguments; any other
//! failure, and any success, is not.

use syncspec_protocol::value::Value;

/// What a validator failure's message says when it carries no `errorData`:
/// a deployment's, then convex-test's.
const VALIDATOR_MESSAGES: &[&str] = &["ArgumentValidationError", "Validator error"];

/// Whether a failed call (its message and `errorData`) refused the call's
/// arguments: `errorData.code` is `InvalidArguments`, or there is no
/// `errorData` and the message names a validator failure.
pub(super) fn rejects_arguments(message: &str, data: Option<&Value>) -> bool {
    match data {
        None | Some(Value::Null) => VALIDATOR_MESSAGES.iter().any(|m| message.contains(m)),
        Some(data) => data.get("code") == Some(&Value::from("InvalidArguments")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(code: &str) -> Value {
        Value::object([("code", Value::from(code)), ("message", Value::from("bad")), ("field", Value::from("body"))])
    }

    #[test]
    fn the_catalogues_code_and_convexs_validator_messages_are_refusals() {
        assert!(rejects_arguments("anything", Some(&code("InvalidArguments"))));
        let deployment = "[Request ID: 1a2b] Server Error\nArgumentValidationError: Object is missing the required \
                          field `body`. Consider wrapping the field validator in `v.optional(...)` if this is expected.";
        assert!(rejects_arguments(deployment, None));
        assert!(rejects_arguments("Validator error: Missing required field `body` in object", None));
        assert!(rejects_arguments("ArgumentValidationError: Value does not match validator.", Some(&Value::Null)));
    }

    #[test]
    fn other_failures_are_not() {
        // Another user error, even when its message mentions validation.
        assert!(!rejects_arguments("ArgumentValidationError", Some(&code("EmptyMessage"))));
        // errorData without a code says the function ran and threw.
        assert!(!rejects_arguments("ArgumentValidationError", Some(&Value::object([("x", Value::Float64(1.0))]))));
        // A failure without errorData that names no validator.
        assert!(!rejects_arguments("Uncaught Error: something broke", None));
        assert!(!rejects_arguments("Could not find public function for 'messages:send'", None));
        assert!(!rejects_arguments("", None));
    }
}
