// The official npm `ConvexHttpClient` (from `convex/browser`) against the
// syncspec reference server's HTTP API (`POST /api/query`, `/api/mutation`):
// values come back decoded, a user error comes back as a ConvexError with its
// `errorData` (HTTP status 200 with status "error", as Convex answers), and an HTTP mutation is a commit like any
// other, so a socket `ConvexClient` subscribed to what it changed is pushed it.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";

import {
  startServer,
  openClient,
  openHttpClient,
  watch,
  withTimeout,
  uniq,
  fmt,
  errorCode,
  fn,
} from "./lib/harness.mjs";

const STEP_MS = 10_000;
const TEST_MS = 30_000;

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  await server?.stop();
});

test("http: a mutation's result and a later query's read", { timeout: TEST_MS }, async () => {
  const http = openHttpClient(server);
  const name = uniq("http-counter");

  const first = await withTimeout(http.mutation(fn.countersIncrement, { name }), STEP_MS, "counters:increment");
  const second = await withTimeout(http.mutation(fn.countersIncrement, { name, by: 5n }), STEP_MS, "increment by 5n");
  assert.equal(first, 1n, `counters:increment over HTTP returned ${fmt(first)}`);
  assert.equal(second, 6n, `counters:increment {by: 5n} over HTTP returned ${fmt(second)}`);

  const total = await withTimeout(http.query(fn.countersGet, { name }), STEP_MS, "counters:get");
  assert.equal(total, 6n, `counters:get over HTTP read ${fmt(total)} after two increments`);

  // Values the JSON codec must carry exactly (Int64, bytes, NaN, -0).
  const value = { n: -(2n ** 63n), bytes: new Uint8Array([0, 1, 255]).buffer, nan: NaN, negZero: -0, list: ["x", null] };
  const echoed = await withTimeout(http.query(fn.valuesEcho, { value }), STEP_MS, "values:echo");
  assert.equal(echoed.n, -(2n ** 63n), fmt(echoed));
  assert.deepEqual([...new Uint8Array(echoed.bytes)], [0, 1, 255], fmt(echoed));
  assert.ok(Number.isNaN(echoed.nan), fmt(echoed));
  assert.ok(Object.is(echoed.negZero, -0), fmt(echoed));
  assert.deepEqual(echoed.list, ["x", null]);

  assert.deepEqual(
    http.responses.map((r) => [r.path, r.status]),
    [
      ["/api/mutation", 200],
      ["/api/mutation", 200],
      ["/api/query", 200],
      ["/api/query", 200],
    ],
  );
});

test("http: a user error is a ConvexError with errorData, answered with 200 as Convex does", { timeout: TEST_MS }, async () => {
  const http = openHttpClient(server);
  const channel = uniq("http-empty");

  const err = await withTimeout(
    http.mutation(fn.messagesSend, { channel, author: "alice", body: "   " }).then(
      (value) => assert.fail(`an empty body was accepted over HTTP: ${fmt(value)}`),
      (e) => e,
    ),
    STEP_MS,
    "messages:send with an empty body",
  );
  assert.equal(err.name, "ConvexError", `expected a ConvexError, got ${fmt(err)}`);
  assert.equal(errorCode(err), "EmptyMessage", `errorData of ${fmt(err)}`);
  assert.deepEqual(http.responses.at(-1), { path: "/api/mutation", status: 200 });

  // Nothing was written.
  const list = await withTimeout(http.query(fn.messagesList, { channel }), STEP_MS, "messages:list");
  assert.deepEqual(list, [], `the refused message is in the channel: ${fmt(list)}`);

  // An unknown function is an error without data: a plain Error, not a ConvexError.
  const unknown = await withTimeout(
    http.query("nope:nothing", {}).then(
      (value) => assert.fail(`an unknown function answered ${fmt(value)}`),
      (e) => e,
    ),
    STEP_MS,
    "nope:nothing",
  );
  assert.notEqual(unknown.name, "ConvexError", fmt(unknown));
  assert.match(unknown.message, /nope:nothing/);
  assert.deepEqual(http.responses.at(-1), { path: "/api/query", status: 200 });
});

test("http: a mutation over HTTP reaches a socket client's subscription", { timeout: TEST_MS }, async (t) => {
  const socket = openClient(t, server);
  const http = openHttpClient(server);
  const channel = uniq("http-fanout");
  const sub = watch(socket, fn.messagesList, { channel });
  await sub.waitFor((v) => Array.isArray(v) && v.length === 0, {
    timeoutMs: STEP_MS,
    label: "initial empty messages:list",
  });

  const id = await withTimeout(
    http.mutation(fn.messagesSend, { channel, author: "http", body: "over http" }),
    STEP_MS,
    "messages:send over HTTP",
  );
  assert.equal(typeof id, "string", `messages:send over HTTP returned ${fmt(id)}`);
  const seen = await sub.waitFor((v) => Array.isArray(v) && v.some((m) => m._id === id), {
    timeoutMs: STEP_MS,
    label: "the HTTP write in the socket subscription",
  });
  assert.deepEqual(
    seen.map((m) => [m.author, m.body]),
    [["http", "over http"]],
  );

  // And the other way round: a socket write is what a later HTTP query reads.
  const id2 = await withTimeout(
    socket.mutation(fn.messagesSend, { channel, author: "ws", body: "over the socket" }),
    STEP_MS,
    "messages:send over the socket",
  );
  const read = await withTimeout(http.query(fn.messagesList, { channel }), STEP_MS, "messages:list over HTTP");
  assert.deepEqual(
    read.map((m) => m._id),
    [id, id2],
    `messages:list over HTTP after both writes: ${fmt(read)}`,
  );
});
