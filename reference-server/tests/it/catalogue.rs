//! The catalogue's shared expectations (`protocol/tests/data/catalogue`),
//! run against the reference functions.
//!
//! The same scripts run against the Convex project's functions under
//! `convex-test` (`backends/convex`), so a behaviour the two do not share
//! fails one side. Here each script drives a fresh sans-IO core through its
//! HTTP-call input, running every job it asks for at once and moving its
//! clock only where a script says `advance`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value as Json;
use syncspec_protocol::json;
use syncspec_protocol::value::{Object, Value};
use syncspec_server::auth::Identity;
use syncspec_server::core::{self, Call, Config, Core, Failure, Fault, Input, Output};

/// Where the scripts live.
fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../protocol/tests/data/catalogue")
}

/// The clock a script starts at (any instant will do; this one is 2024).
const START_NS: u64 = 1_700_000_000_000_000_000;
/// The issuer a script's identity has unless it names one (convex-test's).
const DEFAULT_ISSUER: &str = "https://convex.test";

/// One script of a file.
struct Script {
    file: String,
    name: String,
    steps: Vec<Json>,
}

fn load_scripts() -> Vec<Script> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(scripts_dir())
        .expect("the catalogue's scripts")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut scripts = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("a script file");
        let file: Json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let file_name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        for script in file["scripts"].as_array().unwrap_or_else(|| panic!("{file_name}: no `scripts` array")) {
            scripts.push(Script {
                file: file_name.clone(),
                name: script["name"].as_str().unwrap_or("(unnamed)").to_owned(),
                steps: script["steps"].as_array().cloned().unwrap_or_default(),
            });
        }
    }
    scripts
}

/// A fresh reference core with a clock the script moves.
struct Backend {
    core: Core,
    now: u64,
    next_call: u64,
    caller: Option<Identity>,
}

impl Backend {
    fn new(config: Config) -> Backend {
        Backend { core: Core::new(config), now: START_NS, next_call: 1, caller: None }
    }

    /// Feeds one input and runs every job it leads to, returning the replies.
    fn run(&mut self, input: Input) -> BTreeMap<u64, Result<Value, Failure>> {
        let mut replies = BTreeMap::new();
        let mut pending = vec![input];
        while let Some(input) = pending.pop() {
            let mut out = Vec::new();
            self.core.handle(self.now, input, &mut out);
            for output in out {
                match output {
                    Output::Execute(job) => pending.push(Input::Executed(core::execute(&job))),
                    Output::Reply { call, outcome } => {
                        replies.insert(call, outcome);
                    }
                    _ => {}
                }
            }
        }
        replies
    }

    fn call(&mut self, kind: &str, path: &str, args: Value) -> Result<Value, Failure> {
        let id = self.next_call;
        self.next_call += 1;
        let call = Call { id, route: Some(kind_of(kind)), path: path.to_owned(), args, caller: self.caller.clone() };
        let mut replies = self.run(Input::Call(Box::new(call)));
        // An action's steps each need their job run; `run` did, so the
        // reply is in unless the action waits on a timer.
        let mut waited = 0;
        while !replies.contains_key(&id) && waited < 100_000 {
            self.now += 1_000_000;
            waited += 1;
            replies.extend(self.run(Input::Wake));
        }
        replies.remove(&id).unwrap_or_else(|| panic!("{path} was never answered"))
    }

    fn advance(&mut self, ms: u64) {
        self.now += ms * 1_000_000;
        self.run(Input::Wake);
    }
}

fn kind_of(kind: &str) -> syncspec_protocol::catalogue::Kind {
    use syncspec_protocol::catalogue::Kind;
    match kind {
        "query" => Kind::Query,
        "mutation" => Kind::Mutation,
        _ => Kind::Action,
    }
}

/// Runs one script; the first step that does not go as written is the error.
fn run_script(script: &Script, config: Config) -> Result<(), String> {
    let mut backend = Backend::new(config);
    let mut bound: BTreeMap<String, Value> = BTreeMap::new();
    for (i, step) in script.steps.iter().enumerate() {
        let at = |what: String| format!("step {} ({}): {what}", i + 1, describe(step));
        let step = step.as_object().ok_or_else(|| at("a step must be an object".into()))?;
        if let Some(ms) = step.get("advance") {
            backend.advance(ms.as_u64().ok_or_else(|| at("`advance` takes whole milliseconds".into()))?);
            continue;
        }
        if let Some(identity) = step.get("as") {
            backend.caller = identity_of(identity).map_err(at)?;
            continue;
        }
        let (kind, path) = ["query", "mutation", "action"]
            .into_iter()
            .find_map(|k| step.get(k).and_then(Json::as_str).map(|p| (k, p)))
            .ok_or_else(|| at("a step is a query, mutation, action, `as` or `advance`".into()))?;
        let args = match step.get("args") {
            None => Value::Object(Object::new()),
            Some(pattern) => substitute(pattern, &bound).map_err(at)?,
        };
        let outcome = backend.call(kind, path, args);
        let rejects = step.get("rejectsArguments").and_then(Json::as_bool) == Some(true);
        match (outcome, step.get("fails"), rejects) {
            (Ok(value), None, false) => {
                if let Some(pattern) = step.get("returns") {
                    matches(pattern, &value, &bound)
                        .map_err(|e| at(format!("returned {}: {e}", json::encode(&value))))?;
                }
                if let Some(name) = step.get("bind").and_then(Json::as_str) {
                    bound.insert(name.to_owned(), value);
                }
            }
            (Ok(value), _, _) => {
                return Err(at(format!("succeeded with {}, expected a failure", json::encode(&value))))
            }
            (Err(failure), None, false) => return Err(at(format!("failed: {}", show(&failure)))),
            (Err(failure), _, true) => {
                match failure.data.as_ref().and_then(|d| d.get("code")).and_then(Value::as_str) {
                    Some("InvalidArguments") => {}
                    _ => return Err(at(format!("expected the validators to refuse it, got {}", show(&failure)))),
                }
            }
            (Err(failure), Some(pattern), false) => {
                let Some(Value::Object(data)) = &failure.data else {
                    return Err(at(format!("failed without errorData: {}", failure.message)));
                };
                let Json::Object(fields) = pattern else {
                    return Err(at("`fails` takes an object pattern".into()));
                };
                for (field, want) in fields {
                    let got = data
                        .get(field.as_str())
                        .ok_or_else(|| at(format!("errorData has no `{field}`: {}", show(&failure))))?;
                    matches(want, got, &bound)
                        .map_err(|e| at(format!("errorData.{field}: {e} ({})", show(&failure))))?;
                }
            }
        }
    }
    Ok(())
}

fn describe(step: &Json) -> String {
    let text = step.to_string();
    if text.chars().count() > 120 {
        format!("{}…", text.chars().take(120).collect::<String>())
    } else {
        text
    }
}

fn show(failure: &Failure) -> String {
    match &failure.data {
        Some(data) => format!("{:?} {}", failure.message, json::encode(data)),
        None => format!("{:?}", failure.message),
    }
}

fn identity_of(step: &Json) -> Result<Option<Identity>, String> {
    if step.is_null() {
        return Ok(None);
    }
    let field = |name: &str| step.get(name).and_then(Json::as_str);
    let subject = field("subject").ok_or("`as` needs a `subject`")?;
    Ok(Some(Identity {
        subject: Arc::from(subject),
        issuer: Arc::from(field("issuer").unwrap_or(DEFAULT_ISSUER)),
        name: field("name").map(Arc::from),
    }))
}

/// A `$ref`'s value: a bound name, then fields and indexes split on dots.
fn resolve(reference: &str, bound: &BTreeMap<String, Value>) -> Result<Value, String> {
    let mut parts = reference.split('.');
    let name = parts.next().unwrap_or_default();
    let mut value = bound.get(name).ok_or_else(|| format!("`$ref` to {name:?}, which no step bound"))?;
    for part in parts {
        value = match value {
            Value::Object(o) => o.get(part),
            Value::Array(a) => part.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        }
        .ok_or_else(|| format!("`$ref` {reference:?}: no {part:?} in {}", json::encode(value)))?;
    }
    Ok(value.clone())
}

/// The single `$`-key of a pattern's special form, if it is one.
fn special(pattern: &Json) -> Option<(&str, &Json)> {
    let Json::Object(o) = pattern else { return None };
    let (key, value) = o.iter().next().filter(|_| o.len() == 1)?;
    matches!(key.as_str(), "$ref" | "$any").then_some((key.as_str(), value))
}

/// Convex JSON with `$ref`s replaced by their values.
fn substitute(pattern: &Json, bound: &BTreeMap<String, Value>) -> Result<Value, String> {
    match (special(pattern), pattern) {
        (Some(("$ref", Json::String(r))), _) => resolve(r, bound),
        (Some((key, _)), _) => Err(format!("`{key}` cannot stand in arguments")),
        (None, Json::Array(items)) => {
            items.iter().map(|p| substitute(p, bound)).collect::<Result<Vec<_>, _>>().map(Value::Array)
        }
        (None, Json::Object(fields)) if !fields.keys().any(|k| k.starts_with('$')) => {
            let mut object = Object::new();
            for (k, v) in fields {
                object.insert(k.clone().into(), substitute(v, bound)?);
            }
            Ok(Value::Object(object))
        }
        (None, other) => json::decode(other).map_err(|e| format!("not Convex JSON: {e}")),
    }
}

/// Whether `value` matches `pattern` (see the scripts' README).
fn matches(pattern: &Json, value: &Value, bound: &BTreeMap<String, Value>) -> Result<(), String> {
    match (special(pattern), pattern) {
        (Some(("$ref", Json::String(r))), _) => {
            let want = resolve(r, bound)?;
            (want == *value).then_some(()).ok_or_else(|| format!("expected {} ({r})", json::encode(&want)))
        }
        (Some(("$any", Json::String(ty))), _) => {
            let ok = match ty.as_str() {
                "value" => true,
                "string" => matches!(value, Value::String(_)),
                "float64" => matches!(value, Value::Float64(_)),
                "int64" => matches!(value, Value::Int64(_)),
                "boolean" => matches!(value, Value::Boolean(_)),
                "null" => matches!(value, Value::Null),
                "array" => matches!(value, Value::Array(_)),
                "object" => matches!(value, Value::Object(_)),
                "bytes" => matches!(value, Value::Bytes(_)),
                other => return Err(format!("`$any` of an unknown type {other:?}")),
            };
            ok.then_some(()).ok_or_else(|| format!("expected any {ty}"))
        }
        (Some((key, _)), _) => Err(format!("`{key}` takes a string")),
        (None, Json::Array(items)) => {
            let Value::Array(values) = value else { return Err(format!("expected an array of {}", items.len())) };
            if items.len() != values.len() {
                return Err(format!("expected {} items, got {}", items.len(), values.len()));
            }
            for (i, (p, v)) in items.iter().zip(values).enumerate() {
                matches(p, v, bound).map_err(|e| format!("[{i}]: {e}"))?;
            }
            Ok(())
        }
        (None, Json::Object(fields)) if !fields.keys().any(|k| k.starts_with('$')) => {
            let Value::Object(object) = value else { return Err("expected an object".into()) };
            if let Some(extra) = object.keys().find(|k| !fields.contains_key(k.as_ref() as &str)) {
                return Err(format!("unexpected field `{extra}`"));
            }
            for (k, p) in fields {
                let v = object.get(k.as_str()).ok_or_else(|| format!("missing field `{k}`"))?;
                matches(p, v, bound).map_err(|e| format!(".{k}: {e}"))?;
            }
            Ok(())
        }
        (None, other) => {
            let want = json::decode(other).map_err(|e| format!("the pattern is not Convex JSON: {e}"))?;
            (want == *value).then_some(()).ok_or_else(|| format!("expected {}", json::encode(&want)))
        }
    }
}

/// Every script, each on a fresh core, passes.
#[test]
fn the_reference_functions_meet_the_shared_expectations() {
    let scripts = load_scripts();
    assert!(scripts.len() >= 40, "only {} scripts found in {}", scripts.len(), scripts_dir().display());
    let failures: Vec<String> = scripts
        .iter()
        .filter_map(|s| run_script(s, Config::standard()).err().map(|e| format!("{} › {}: {e}", s.file, s.name)))
        .collect();
    assert!(failures.is_empty(), "{} of {} scripts failed:\n{}", failures.len(), scripts.len(), failures.join("\n"));
    println!("{} scripts passed", scripts.len());
}

/// The negative control: a wrong expectation, in each of the forms a script
/// can state one, is caught.
#[test]
fn a_wrong_expectation_fails_its_script() {
    let wrong = [
        // The wrong body.
        r#"[{"mutation":"messages:send","args":{"channel":"c","author":"a","body":"hi"}},
            {"query":"messages:list","args":{"channel":"c"},"returns":[{"_id":{"$any":"string"},"_creationTime":{"$any":"float64"},"channel":"c","author":"a","body":"bye","streaming":false}]}]"#,
        // A field too few in the pattern.
        r#"[{"query":"documents:get","args":{"id":"nothing"},"returns":{"_id":{"$any":"string"}}}]"#,
        // An int64 where the result is a float64.
        r#"[{"mutation":"documents:create","args":{"title":"t","content":"c"},"bind":"d"},
            {"mutation":"documents:update","args":{"id":{"$ref":"d"},"content":"x","expectedVersion":1},"returns":{"$integer":"AgAAAAAAAAA="}}]"#,
        // The wrong error code.
        r#"[{"mutation":"messages:send","args":{"channel":"c","author":"a","body":""},"fails":{"code":"TooLong"}}]"#,
        // A failure where the call succeeds.
        r#"[{"mutation":"messages:send","args":{"channel":"c","author":"a","body":"hi"},"fails":{"code":"EmptyMessage"}}]"#,
        // A validator refusal where the function's own rule refuses.
        r#"[{"query":"messages:list","args":{"channel":"c","limit":-1},"rejectsArguments":false,"returns":[]}]"#,
        // -0 is not 0.
        r#"[{"query":"values:echo","args":{"value":0},"returns":{"$float":"AAAAAAAAAIA="}}]"#,
        // Time that has not passed.
        r#"[{"mutation":"notifications:sendLater","args":{"user":"u","title":"t","delayMs":5000}},
            {"advance":4000},
            {"query":"notifications:unread","args":{"user":"u"},"returns":{"count":1,"items":[{"_id":{"$any":"string"},"title":"t"}]}}]"#,
    ];
    for steps in wrong {
        let script =
            Script { file: "inline".into(), name: "wrong".into(), steps: serde_json::from_str(steps).expect("JSON") };
        assert!(run_script(&script, Config::standard()).is_err(), "a wrong expectation passed: {steps}");
    }
}

/// The scripts catch a reference that breaks a rule they state: with a
/// fault switched on, the scripts that pin its rule fail.
#[test]
fn the_scripts_catch_faults_in_the_functions() {
    let scripts = load_scripts();
    for (fault, script) in [
        (Fault::NoRateLimit, "moves are limited to 20 a second per user, and a refused move writes nothing"),
        (Fault::ScheduledEarly, "sendLater sends once its delay has passed, not before"),
        (Fault::ScheduleDespiteAbort, "a sendLater refused because the inbox is full schedules nothing"),
        (Fault::ActionRollback, "a reply whose source fails keeps what it committed, still streaming"),
    ] {
        let script = scripts.iter().find(|s| s.name == script).unwrap_or_else(|| panic!("no script {script:?}"));
        let mut config = Config::standard();
        config.faults.insert(fault);
        assert!(run_script(script, Config::standard()).is_ok(), "{} fails without the fault", script.name);
        assert!(run_script(script, config).is_err(), "{} passes under {}", script.name, fault.name());
    }
}
