//! The seed files of `fuzz/corpus/frames/` and `fuzz/corpus/values/`,
//! made with `wire`'s writers and the codec, so a change to either shows
//! as a stale seed (`SYNCSPEC_BLESS_CORPUS=1` writes them anew). Files
//! libFuzzer found sit beside them in the corpus; nothing here reads those.

use syncspec_protocol::json::{self, MAX_ARRAY_LEN, MAX_NESTING, MAX_OBJECT_FIELDS};
use syncspec_protocol::value::Value;
use syncspec_protocol::wire::{self, AuthToken, Connect, QuerySetChange};

/// The seed inputs of `corpus/frames/`: every client frame type as `wire`
/// writes it, server frames as the server writes them, HTTP bodies, and
/// frames just past what the readers accept.
pub(super) fn frames() -> Vec<(&'static str, String)> {
    let session = "4f8d6f3c-0b7e-4c56-9a43-3d4a1d2a5e01";
    let counter = Value::object([("name", Value::from("c"))]);
    let by = Value::object([("name", Value::from("c")), ("by", Value::Int64(-3))]);
    let send = Value::object([
        ("channel", Value::from("general")),
        ("author", Value::from("ada")),
        ("body", Value::from("h\u{e9}llo \"w\u{f6}rld\"\n\u{1f600}")),
    ]);
    let page = Value::object([
        ("channel", Value::from("general")),
        ("paginationOpts", Value::object([("numItems", Value::Float64(2.0)), ("cursor", Value::Null)])),
    ]);
    let echo = Value::object([("value", kitchen_sink())]);
    let reply = Value::object([
        ("channel", Value::from("general")),
        ("author", Value::from("bot")),
        ("text", Value::from("one two three")),
        ("tokenIntervalMs", Value::Float64(0.0)),
    ]);
    let mut seeds: Vec<(&'static str, String)> = vec![
        (
            "connect",
            wire::write_connect(&Connect {
                session_id: session,
                connection_count: 0,
                last_close_reason: "InitialConnect",
                max_observed_timestamp: None,
                client_ts: Some(1_760_000_000_000),
            }),
        ),
        (
            "reconnect",
            wire::write_connect(&Connect {
                session_id: session,
                connection_count: 3,
                last_close_reason: "ServerClosed",
                max_observed_timestamp: Some(1_760_000_000_000_000_000),
                client_ts: None,
            }),
        ),
        (
            "modify-query-set",
            wire::write_modify_query_set(
                0,
                1,
                &[
                    QuerySetChange::Add { query_id: 0, udf_path: "counters:get", args: &counter, journal: None },
                    QuerySetChange::Add { query_id: 1, udf_path: "messages:page", args: &page, journal: Some("j") },
                    QuerySetChange::Add { query_id: 2, udf_path: "values:echo", args: &echo, journal: None },
                ],
            ),
        ),
        (
            "modify-query-set-remove",
            wire::write_modify_query_set(1, 2, &[QuerySetChange::Remove { query_id: 0 }]),
        ),
        ("mutation", wire::write_mutation(0, "counters:increment", &by)),
        ("mutation-send", wire::write_mutation(1, "messages:send", &send)),
        ("mutation-unknown", wire::write_mutation(9, "nope:x.js", &counter)),
        ("action", wire::write_action(2, "messages:streamReply", &reply)),
        ("authenticate", wire::write_authenticate(0, AuthToken::User("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"))),
        ("authenticate-none", wire::write_authenticate(1, AuthToken::None)),
        (
            "event",
            r#"{"type":"Event","eventType":"ClientLog","event":{"level":"info","lines":["a",1,null,[true]]}}"#.into(),
        ),
        ("args-not-an-object", r#"{"type":"Mutation","requestId":3,"udfPath":"counters:increment","args":[1,2]}"#.into()),
        ("args-null", r#"{"type":"Action","requestId":3,"udfPath":"values:echo","args":null}"#.into()),
        ("unknown-type", r#"{"type":"Subscribe","queryId":1}"#.into()),
        ("not-an-object", r#"["Connect"]"#.into()),
        ("truncated", r#"{"type":"Mutation","requestId":1,"udfPath":"counters:incr"#.into()),
        ("surrogates", r#"{"type":"Event","eventType":"\ud83d\ude00\ud800","event":"\udc00"}"#.into()),
        ("deep-args", format!(r#"{{"type":"Mutation","requestId":5,"udfPath":"values:echo","args":[{{"value":{}0{}}}]}}"#,
            "[".repeat(70), "]".repeat(70))),
        ("deep-event", format!(r#"{{"type":"Event","eventType":"x","event":{}{}}}"#, "{\"a\":".repeat(130), "}".repeat(130))),
        (
            "server-transition",
            r#"{"type":"Transition","startVersion":{"querySet":0,"identity":0,"ts":"AAAAAAAAAAA="},"endVersion":{"querySet":1,"identity":0,"ts":"AQAAAAAAAAA="},"modifications":[{"type":"QueryUpdated","queryId":0,"value":{"$integer":"AQAAAAAAAAA="},"logLines":[],"journal":null},{"type":"QueryFailed","queryId":1,"errorMessage":"x","logLines":[],"errorData":{"code":"NotFound"},"journal":null},{"type":"QueryRemoved","queryId":2}]}"#.into(),
        ),
        ("server-mutation-success", wire::mutation_success(7, &Value::Int64(1), 1_760_000_000_000_000_000)),
        ("server-mutation-failure", wire::mutation_failure(8, "no", Some(&Value::object([("code", Value::from("TooLong"))])))),
        ("server-action-success", wire::action_success(9, &Value::from("ok"))),
        ("server-fatal", wire::fatal_error("WSMessageInvalid: expected a client message")),
        ("server-auth-error", wire::auth_error("bad token", Some(1), true)),
        ("server-ping", wire::ping()),
        ("http-request", wire::http::write_request("counters:get", &counter)),
        ("http-function-request", wire::http::write_function_request("values:echo", &echo)),
        ("http-success", wire::http::write_success(&Value::Int64(-1))),
        ("http-error", wire::http::write_error("boom", Some(&Value::object([("code", Value::from("X"))])))),
        ("http-request-array-args", r#"{"path":"counters:get","args":[{"name":"c"}],"format":"json"}"#.into()),
        // `convex_sync_types` panicked on a path component over 64 bytes with
        // a character across its 64th byte (`wire::udf_path` says more).
        ("regression-path-char-boundary", wire::write_mutation(0, &format!("{}\u{e9}:f", "m".repeat(63)), &counter)),
    ];
    seeds.sort();
    seeds
}

/// One of each value type, with the special encodings and escapes.
fn kitchen_sink() -> Value {
    Value::object([
        ("null", Value::Null),
        ("ints", Value::Array(vec![Value::Int64(0), Value::Int64(-1), Value::Int64(i64::MIN), Value::Int64(i64::MAX)])),
        (
            "floats",
            Value::Array(vec![
                Value::Float64(0.5),
                Value::Float64(-0.0),
                Value::Float64(f64::NAN),
                Value::Float64(f64::INFINITY),
                Value::Float64(f64::NEG_INFINITY),
                Value::Float64(1e300),
                Value::Float64(5e-324),
                Value::Float64(9_007_199_254_740_993.0),
            ]),
        ),
        ("bools", Value::Array(vec![Value::Boolean(true), Value::Boolean(false)])),
        ("text", Value::from("quote \" backslash \\ tab \t nul \u{0} bell \u{7} \u{e9} \u{1f600} \u{fffd}")),
        ("bytes", Value::Array(vec![Value::Bytes(Vec::new()), Value::Bytes((0..=255).collect())])),
        ("", Value::object([("nested", Value::Array(vec![Value::Object(Default::default())]))])),
    ])
}

/// The seed inputs of `corpus/values/`: every value type and special
/// encoding, each limit at and just past it, and text the codec refuses.
pub(super) fn values() -> Vec<(&'static str, String)> {
    let nested = |inner: &str, n: usize| format!("{}{inner}{}", "[".repeat(n), "]".repeat(n));
    let array = |n: usize| format!("[{}]", vec!["0"; n].join(","));
    let object = |n: usize| format!("{{{}}}", (0..n).map(|i| format!(r#""f{i}":0"#)).collect::<Vec<_>>().join(","));
    let long_name = |n: usize| format!(r#"{{"{}":1}}"#, "n".repeat(n));
    let mut seeds: Vec<(&'static str, String)> = vec![
        ("kitchen-sink", json::encode(&kitchen_sink())),
        ("args", format!("[{}]", json::encode(&kitchen_sink()))),
        ("integer", json::encode(&Value::Int64(-42))),
        ("integer-short", r#"{"$integer":"AQ=="}"#.into()),
        ("integer-not-text", r#"{"$integer":5}"#.into()),
        ("float-nan-payload", r#"{"$float":"AQAAAAAA+H8="}"#.into()),
        ("float-plain", r#"{"$float":"AAAAAAAA8D8="}"#.into()),
        ("float-with-other-field", r#"{"$float":"AAAAAAAAAIA=","x":1}"#.into()),
        ("field-then-special", r#"{"x":1,"$integer":"AQAAAAAAAAA="}"#.into()),
        ("bytes-bad-base64", r#"{"$bytes":"not base64!"}"#.into()),
        ("legacy-set", r#"{"$set":[[1]]}"#.into()),
        ("legacy-map", r#"{"$map":[[1,2]]}"#.into()),
        ("dollar-field", r#"{"$foo":1}"#.into()),
        ("duplicate-fields", r#"{"a":1,"a":{"$integer":"AQAAAAAAAAA="},"b":[],"b":{}}"#.into()),
        ("numbers", "[0,-0,1e308,1e309,-1e-400,0.1,18446744073709551616,-9223372036854775809,1E+2,2.5e-3]".into()),
        ("escapes", r#"["\"\\\/\b\f\n\r\t\u0000\u001f\u00e9\u2028"]"#.into()),
        ("surrogate-pair", r#""\ud83d\ude00""#.into()),
        ("lone-surrogate", r#"["\ud800","\udc00x"]"#.into()),
        ("whitespace", " \t\n\r[ 1 , { \"a\" : null } ]\r\n ".into()),
        ("trailing", "[1] 2".into()),
        ("truncated", r#"{"a":[1,2,{"b":"#.into()),
        ("nested-at-limit", nested("0", MAX_NESTING)),
        ("nested-past-limit", nested("0", MAX_NESTING + 1)),
        ("nested-past-recursion", nested("0", 130)),
        ("nested-objects", format!("{}0{}", r#"{"a":"#.repeat(MAX_NESTING + 1), "}".repeat(MAX_NESTING + 1))),
        ("nested-specials", nested(r#"{"$integer":"BwAAAAAAAAA="}"#, MAX_NESTING)),
        ("array-at-limit", array(MAX_ARRAY_LEN)),
        ("array-past-limit", array(MAX_ARRAY_LEN + 1)),
        ("object-at-limit", object(MAX_OBJECT_FIELDS)),
        ("object-past-limit", object(MAX_OBJECT_FIELDS + 1)),
        ("field-name-at-limit", long_name(json::MAX_FIELD_NAME_LEN)),
        ("field-name-past-limit", long_name(json::MAX_FIELD_NAME_LEN + 1)),
        ("small-objects", format!("[{}]", vec![r#"{"":0}"#; 512].join(","))),
    ];
    seeds.sort();
    seeds
}
