/// <reference types="vite/client" />
// Runs the catalogue's expectation scripts (protocol/tests/data/catalogue,
// whose README is the format) against this project's functions under
// convex-test, with a fake clock that only `advance` steps move.

import { convexTest } from "convex-test";
import { makeFunctionReference } from "convex/server";
import { convexToJson, jsonToConvex, type JSONValue, type Value } from "convex/values";
import { vi } from "vitest";
import schema from "../convex/schema";

export const modules = import.meta.glob("../convex/**/*.*s");

/** Where every script's clock starts: any fixed time will do. */
const START_MS = Date.UTC(2025, 0, 1);
/** The issuer of an identity that names none. */
const DEFAULT_ISSUER = "https://convex.test";

export type Identity = { subject: string; name?: string; issuer?: string };

export type Step =
  | { as: Identity | null }
  | { advance: number }
  | ({ query: string } | { mutation: string } | { action: string }) & {
      args?: JSONValue;
      bind?: string;
      returns?: JSONValue;
      fails?: JSONValue;
      rejectsArguments?: boolean;
    };

export type Script = { name: string; steps: Step[] };
export type ScriptFile = { about: string; scripts: Script[] };

type Kind = "query" | "mutation" | "action";
type Bindings = Map<string, JSONValue>;
type Outcome = { ok: true; value: Value } | { ok: false; error: unknown };

const CALL_KEYS = new Set(["args", "bind", "returns", "fails", "rejectsArguments"]);
const ANY_TYPES = new Set([
  "string",
  "float64",
  "int64",
  "boolean",
  "null",
  "array",
  "object",
  "bytes",
  "value",
]);

// Captured before any test installs fake timers: the runner yields to the
// real event loop to let convex-test's promises run.
const realSetTimeout = globalThis.setTimeout;
const realTurn = () => new Promise<void>((resolve) => realSetTimeout(resolve, 0));

/** Runs one script on a fresh backend; throws, naming the step, on the first miss. */
export async function runScript(script: Script): Promise<void> {
  vi.useFakeTimers({ now: START_MS });
  try {
    const base = convexTest(schema, modules);
    let t: ReturnType<typeof base.withIdentity> = base;
    const bindings: Bindings = new Map();
    for (const [index, step] of script.steps.entries()) {
      const where = `step ${index + 1} ${JSON.stringify(step, elide)}`;
      if ("as" in step) {
        expectKeys(where, step, ["as"]);
        t = step.as === null ? base : base.withIdentity(identity(where, step.as));
      } else if ("advance" in step) {
        expectKeys(where, step, ["advance"]);
        if (typeof step.advance !== "number" || !(step.advance >= 0)) {
          throw new Error(`${where}: \`advance\` must be a number of milliseconds`);
        }
        await advance(base, step.advance);
      } else {
        await call(t, step, where, bindings);
      }
    }
  } finally {
    vi.useRealTimers();
  }
}

/** Moves the clock and runs every scheduled function due by then, to completion. */
async function advance(t: ReturnType<typeof convexTest>, ms: number) {
  // The async tick yields to the event loop after each timer, so each
  // scheduled function runs at its own time, before the next one fires.
  await vi.advanceTimersByTimeAsync(ms);
  await t.finishInProgressScheduledFunctions();
  // What just ran may have scheduled more, due now.
  for (let round = 0; round < 100; round++) {
    const pending = vi.getTimerCount();
    await vi.advanceTimersByTimeAsync(0);
    await t.finishInProgressScheduledFunctions();
    if (vi.getTimerCount() === pending) {
      return;
    }
  }
  throw new Error("scheduled functions kept scheduling more, due at once");
}

function identity(where: string, as: Identity) {
  if (typeof as !== "object" || typeof as.subject !== "string") {
    throw new Error(`${where}: \`as\` must be null or {subject, name?, issuer?}`);
  }
  expectKeys(where, as, ["subject", "name", "issuer"]);
  const issuer = as.issuer ?? DEFAULT_ISSUER;
  return {
    subject: as.subject,
    issuer,
    tokenIdentifier: `${issuer}|${as.subject}`,
    ...(as.name === undefined ? {} : { name: as.name }),
  };
}

async function call(
  t: ReturnType<ReturnType<typeof convexTest>["withIdentity"]>,
  step: Step,
  where: string,
  bindings: Bindings,
) {
  const kinds = (["query", "mutation", "action"] as const).filter((k) => k in step);
  if (kinds.length !== 1) {
    throw new Error(`${where}: a step needs exactly one of query, mutation, action, as, advance`);
  }
  const kind: Kind = kinds[0];
  const record = step as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (key !== kind && !CALL_KEYS.has(key)) {
      throw new Error(`${where}: unknown key \`${key}\``);
    }
  }
  const path = record[kind];
  if (typeof path !== "string") {
    throw new Error(`${where}: the function path must be a string`);
  }
  if ("rejectsArguments" in record && typeof record.rejectsArguments !== "boolean") {
    throw new Error(`${where}: \`rejectsArguments\` must be true or false`);
  }
  const rejects = record.rejectsArguments === true;
  if ([rejects, "fails" in record, "returns" in record].filter(Boolean).length > 1) {
    throw new Error(`${where}: at most one of returns, fails, rejectsArguments: true`);
  }
  const args = jsonToConvex(substitute(record.args ?? {}, bindings, where));

  const outcome = await invoke(t, kind, path, args);

  if (rejects) {
    if (outcome.ok) {
      throw new Error(
        `${where}: expected the argument validators to refuse the call, but it returned ${show(convexToJson(outcome.value))}`,
      );
    }
    if (isConvexError(outcome.error) || !/Validator error|ArgumentValidationError/.test(messageOf(outcome.error))) {
      throw new Error(
        `${where}: expected an argument validation error, got ${describeError(outcome.error)}`,
      );
    }
    return;
  }

  if ("fails" in record) {
    const pattern = record.fails as JSONValue;
    if (!isPlainObject(pattern)) {
      throw new Error(`${where}: \`fails\` must be an object pattern`);
    }
    if (outcome.ok) {
      throw new Error(
        `${where}: expected a user error matching ${show(pattern)}, but the call returned ${show(convexToJson(outcome.value))}`,
      );
    }
    if (!isConvexError(outcome.error)) {
      throw new Error(
        `${where}: expected a user error matching ${show(pattern)}, got ${describeError(outcome.error)}`,
      );
    }
    const data = convexToJson(outcome.error.data as Value);
    if (!isPlainObject(data)) {
      throw new Error(`${where}: expected errorData to be an object, got ${show(data)}`);
    }
    for (const [field, fieldPattern] of Object.entries(pattern)) {
      const miss =
        field in data
          ? mismatch(data[field], fieldPattern, `errorData.${field}`, bindings, where)
          : `errorData has no field \`${field}\``;
      if (miss !== null) {
        throw new Error(`${where}: expected errorData matching ${show(pattern)}, got ${show(data)}: ${miss}`);
      }
    }
    return;
  }

  if (!outcome.ok) {
    throw new Error(`${where}: expected the call to succeed, got ${describeError(outcome.error)}`);
  }
  const result = convexToJson(outcome.value);
  if ("returns" in record) {
    const pattern = record.returns as JSONValue;
    const miss = mismatch(result, pattern, "result", bindings, where);
    if (miss !== null) {
      throw new Error(`${where}: expected a result matching ${show(pattern)}, got ${show(result)}: ${miss}`);
    }
  }
  if (record.bind !== undefined) {
    if (typeof record.bind !== "string" || record.bind === "" || record.bind.includes(".")) {
      throw new Error(`${where}: \`bind\` must be a name without dots`);
    }
    bindings.set(record.bind, result);
  }
}

/** Calls a public function as a client would, running the clock for an action's waits. */
async function invoke(
  t: ReturnType<ReturnType<typeof convexTest>["withIdentity"]>,
  kind: Kind,
  path: string,
  args: Value,
): Promise<Outcome> {
  try {
    await expectPublic(path);
    const argObject = args as Record<string, Value>;
    let value: Value;
    if (kind === "query") {
      value = await t.query(makeFunctionReference<"query">(path), argObject);
    } else if (kind === "mutation") {
      value = await t.mutation(makeFunctionReference<"mutation">(path), argObject);
    } else {
      value = await whileTimeRuns(t.action(makeFunctionReference<"action">(path), argObject));
    }
    return { ok: true, value };
  } catch (error) {
    return { ok: false, error };
  }
}

/**
 * Waits for an action, moving the clock to each timer it waits on in turn
 * (scheduled functions due on the way run too): the clock stands still
 * between steps, so an action that pauses would otherwise never finish.
 */
async function whileTimeRuns<T>(promise: Promise<T>): Promise<T> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let idle = 0; !settled; ) {
    await realTurn();
    if (settled) {
      break;
    }
    if (vi.getTimerCount() === 0 || idle < 3) {
      // Not (yet) waiting on a timer: its transactions are still running.
      idle++;
      if (idle > 1000) {
        throw new Error("the action neither finished nor waited on a timer");
      }
      continue;
    }
    idle = 0;
    await vi.advanceTimersToNextTimerAsync();
  }
  return promise;
}

/** Clients reach only public functions: Convex answers others as unknown. */
async function expectPublic(path: string) {
  const [modulePath, exportName = "default"] = path.split(":");
  const load = modules[`../convex/${modulePath}.ts`] ?? modules[`../convex/${modulePath}.js`];
  const loaded = load === undefined ? undefined : ((await load()) as Record<string, unknown>);
  const func = loaded?.[exportName] as { isPublic?: boolean } | undefined;
  if (func?.isPublic !== true) {
    throw new Error(`Could not find public function for '${path}'`);
  }
}

/** `json` with each `{"$ref": name.path}` replaced by the bound value. */
function substitute(json: unknown, bindings: Bindings, where: string): JSONValue {
  if (Array.isArray(json)) {
    return json.map((item) => substitute(item, bindings, where));
  }
  if (isPlainObject(json as JSONValue)) {
    const object = json as Record<string, JSONValue>;
    const keys = Object.keys(object);
    if (keys.length === 1 && keys[0] === "$ref") {
      return resolve(object.$ref, bindings, where);
    }
    if (keys.length === 1 && keys[0] === "$any") {
      throw new Error(`${where}: \`$any\` cannot stand in arguments`);
    }
    return Object.fromEntries(keys.map((k) => [k, substitute(object[k], bindings, where)]));
  }
  return json as JSONValue;
}

function resolve(ref: JSONValue, bindings: Bindings, where: string): JSONValue {
  if (typeof ref !== "string") {
    throw new Error(`${where}: a $ref must be a string`);
  }
  const [name, ...parts] = ref.split(".");
  if (!bindings.has(name)) {
    throw new Error(`${where}: $ref ${JSON.stringify(ref)}: nothing is bound to ${JSON.stringify(name)}`);
  }
  let value = bindings.get(name) as JSONValue;
  for (const part of parts) {
    const next = Array.isArray(value)
      ? /^(0|[1-9][0-9]*)$/.test(part)
        ? value[Number(part)]
        : undefined
      : isPlainObject(value)
        ? value[part]
        : undefined;
    if (next === undefined) {
      throw new Error(`${where}: $ref ${JSON.stringify(ref)}: ${show(value)} has no ${JSON.stringify(part)}`);
    }
    value = next;
  }
  return value;
}

/**
 * Where `value` (Convex JSON) departs from `pattern`, or null if it matches:
 * Convex JSON plus `{"$any": type}` and `{"$ref": path}`; objects need
 * exactly the pattern's keys, arrays its length; float64s compare by value,
 * but NaN matches NaN and -0 only -0.
 */
export function mismatch(
  value: JSONValue,
  pattern: JSONValue,
  at: string,
  bindings: Bindings,
  where: string,
): string | null {
  if (isPlainObject(pattern)) {
    const keys = Object.keys(pattern);
    if (keys.length === 1 && keys[0] === "$any") {
      const type = pattern.$any;
      if (typeof type !== "string" || !ANY_TYPES.has(type)) {
        throw new Error(`${where}: unknown $any type ${show(type)}`);
      }
      return isOfType(value, type) ? null : `${at} is ${show(value)}, not any ${type}`;
    }
    if (keys.length === 1 && keys[0] === "$ref") {
      return mismatch(value, resolve(pattern.$ref, bindings, where), at, bindings, where);
    }
  }
  if (Array.isArray(pattern)) {
    if (!Array.isArray(value)) {
      return `${at} is ${show(value)}, expected an array`;
    }
    if (value.length !== pattern.length) {
      return `${at} has ${value.length} items, expected ${pattern.length}`;
    }
    for (const [i, item] of pattern.entries()) {
      const miss = mismatch(value[i], item, `${at}[${i}]`, bindings, where);
      if (miss !== null) {
        return miss;
      }
    }
    return null;
  }
  if (isPlainObject(pattern) && !Object.keys(pattern).some((k) => k.startsWith("$"))) {
    if (!isPlainObject(value) || isEncoded(value)) {
      return `${at} is ${show(value)}, expected an object`;
    }
    const missing = Object.keys(pattern).filter((k) => !(k in value));
    const extra = Object.keys(value).filter((k) => !(k in pattern));
    if (missing.length > 0 || extra.length > 0) {
      const parts = [
        ...(missing.length > 0 ? [`lacks ${missing.map((k) => `\`${k}\``).join(", ")}`] : []),
        ...(extra.length > 0 ? [`has extra ${extra.map((k) => `\`${k}\``).join(", ")}`] : []),
      ];
      return `${at} ${parts.join(" and ")}`;
    }
    for (const [k, fieldPattern] of Object.entries(pattern)) {
      const miss = mismatch(value[k], fieldPattern, `${at}.${k}`, bindings, where);
      if (miss !== null) {
        return miss;
      }
    }
    return null;
  }
  // A plain value, or an encoded one ($integer, $float, $bytes).
  let expected: Value;
  try {
    expected = jsonToConvex(pattern);
  } catch (error) {
    throw new Error(`${where}: the pattern ${show(pattern)} is not Convex JSON: ${messageOf(error)}`);
  }
  return same(expected, jsonToConvex(value)) ? null : `${at} is ${show(value)}, expected ${show(pattern)}`;
}

/** Equality of scalars as the scripts mean it; containers are matched above. */
function same(a: Value, b: Value): boolean {
  if (typeof a === "number" && typeof b === "number") {
    return Object.is(a, b);
  }
  if (a instanceof ArrayBuffer && b instanceof ArrayBuffer) {
    const x = new Uint8Array(a);
    const y = new Uint8Array(b);
    return x.length === y.length && x.every((byte, i) => byte === y[i]);
  }
  return a === b;
}

function isOfType(value: JSONValue, type: string): boolean {
  switch (type) {
    case "string":
      return typeof value === "string";
    case "float64":
      return floatOf(value) !== null;
    case "int64":
      return encodedAs(value, "$integer");
    case "boolean":
      return typeof value === "boolean";
    case "null":
      return value === null;
    case "array":
      return Array.isArray(value);
    case "object":
      return isPlainObject(value) && !isEncoded(value);
    case "bytes":
      return encodedAs(value, "$bytes");
    default:
      return true;
  }
}

/** The float64 a Convex JSON value stands for, if it is one. */
function floatOf(json: JSONValue): number | null {
  if (typeof json === "number") {
    return json;
  }
  if (encodedAs(json, "$float")) {
    return jsonToConvex(json) as number;
  }
  return null;
}

function encodedAs(json: JSONValue, key: string): boolean {
  return isPlainObject(json) && Object.keys(json).length === 1 && key in json;
}

function isEncoded(json: JSONValue): boolean {
  return encodedAs(json, "$integer") || encodedAs(json, "$float") || encodedAs(json, "$bytes");
}

function isPlainObject(json: JSONValue | undefined): json is { [key: string]: JSONValue } {
  return typeof json === "object" && json !== null && !Array.isArray(json);
}

function isConvexError(error: unknown): error is { data: unknown; message: string } {
  return typeof error === "object" && error !== null && Symbol.for("ConvexError") in error;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function describeError(error: unknown): string {
  if (isConvexError(error)) {
    return `a user error with errorData ${show(convexToJson(error.data as Value))}`;
  }
  return `an error without errorData: ${messageOf(error)}`;
}

function expectKeys(where: string, object: object, allowed: string[]) {
  for (const key of Object.keys(object)) {
    if (!allowed.includes(key)) {
      throw new Error(`${where}: unknown key \`${key}\``);
    }
  }
}

/** JSON for a message, long strings cut short. */
function show(json: unknown): string {
  return JSON.stringify(json, elide) ?? String(json);
}

function elide(_key: string, value: unknown) {
  return typeof value === "string" && value.length > 80
    ? `${value.slice(0, 40)}…(${value.length} characters)`
    : value;
}
