// The official npm `convex` client (ConvexClient from `convex/browser`)
// against the syncspec reference server: subscriptions, read-your-writes,
// fan-out, concurrent mutations, the value encoding, user errors, the rate
// limiter and transactional invariants under concurrency.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";

import {
  startServer,
  openClient,
  watch,
  withTimeout,
  uniq,
  fmt,
  prng,
  errorCode,
  fn,
} from "./lib/harness.mjs";

const STEP_MS = 10_000; // deadline for any single wait inside a test
const TEST_MS = 30_000; // deadline for a whole test

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  await server?.stop();
});

test("read-your-writes: the subscription has the message when the mutation resolves", { timeout: TEST_MS }, async (t) => {
  const client = openClient(t, server);
  const channel = uniq("ryw");
  const sub = watch(client, fn.messagesList, { channel });
  await sub.waitFor((v) => Array.isArray(v) && v.length === 0, {
    timeoutMs: STEP_MS,
    label: "initial empty messages:list",
  });

  const id = await withTimeout(
    client.mutation(fn.messagesSend, { channel, author: "alice", body: "hello" }),
    STEP_MS,
    "messages:send",
  );
  // Synchronously after the await: no chance for a later push to sneak in.
  const seen = sub.latest();
  assert.equal(typeof id, "string", `messages:send returned ${fmt(id)}`);
  assert.ok(
    Array.isArray(seen) && seen.some((m) => m._id === id),
    `when messages:send resolved, the subscription's latest value was ${fmt(seen)}, ` +
      `without the new message ${id}`,
  );
  assert.equal(seen.length, 1);
  const [msg] = seen;
  assert.equal(msg.channel, channel);
  assert.equal(msg.author, "alice");
  assert.equal(msg.body, "hello");
  assert.equal(msg.streaming, false);
  assert.equal(typeof msg._creationTime, "number");

  // A second message lands after the first (oldest first).
  const id2 = await withTimeout(
    client.mutation(fn.messagesSend, { channel, author: "bob", body: "second" }),
    STEP_MS,
    "second messages:send",
  );
  assert.deepEqual(
    sub.latest().map((m) => m._id),
    [id, id2],
    `messages:list order after two sends: ${fmt(sub.latest())}`,
  );
});

test("fan-out: client B's subscription sees client A's write", { timeout: TEST_MS }, async (t) => {
  const a = openClient(t, server);
  const b = openClient(t, server);
  const channel = uniq("fanout");
  const subB = watch(b, fn.messagesList, { channel });
  await subB.waitFor((v) => Array.isArray(v) && v.length === 0, {
    timeoutMs: STEP_MS,
    label: "B: initial empty messages:list",
  });

  const id = await withTimeout(
    a.mutation(fn.messagesSend, { channel, author: "a", body: "from A" }),
    STEP_MS,
    "A: messages:send",
  );
  const seen = await subB.waitFor((v) => v.some((m) => m._id === id), {
    timeoutMs: STEP_MS,
    label: `B to see A's message ${id}`,
  });
  assert.equal(seen.length, 1);
  assert.equal(seen[0].body, "from A");
  assert.equal(seen[0].author, "a");
});

test("5 clients x 40 concurrent counters:increment return exactly 1..200", { timeout: TEST_MS }, async (t) => {
  const name = uniq("counter");
  const clients = Array.from({ length: 5 }, () => openClient(t, server));
  const perClient = clients.map((c) =>
    Array.from({ length: 40 }, () => c.mutation(fn.countersIncrement, { name })),
  );
  const results = await withTimeout(
    Promise.all(perClient.map((ps) => Promise.all(ps))),
    20_000,
    "200 counters:increment",
  );

  for (const [i, rs] of results.entries()) {
    for (const r of rs) assert.equal(typeof r, "bigint", `client ${i} got ${fmt(r)}`);
    // One connection's mutations commit in the order they were sent.
    for (let k = 1; k < rs.length; k++) {
      assert.ok(rs[k - 1] < rs[k], `client ${i}'s results are not in send order: ${fmt(rs)}`);
    }
  }
  const all = results.flat().sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  const expected = Array.from({ length: 200 }, (_, i) => BigInt(i + 1));
  assert.deepEqual(all, expected, `returned values: ${fmt(all)}`);

  const reader = openClient(t, server);
  const value = await withTimeout(reader.query(fn.countersGet, { name }), STEP_MS, "counters:get");
  assert.equal(value, 200n);
});

test("values:echo round-trips every Convex value type", { timeout: TEST_MS }, async (t) => {
  const client = openClient(t, server);
  const echo = (value) =>
    withTimeout(client.query(fn.valuesEcho, { value }), STEP_MS, `values:echo ${fmt(value)}`);

  // int64
  for (const n of [2n ** 62n, -1n, 0n, 2n ** 63n - 1n, -(2n ** 63n)]) {
    const r = await echo(n);
    assert.equal(typeof r, "bigint", `echo(${n}n) came back as ${fmt(r)}`);
    assert.equal(r, n);
  }

  // float64, including the ones that need $float
  const nan = await echo(NaN);
  assert.ok(typeof nan === "number" && Number.isNaN(nan), `echo(NaN) = ${fmt(nan)}`);
  const negZero = await echo(-0);
  assert.ok(Object.is(negZero, -0), `echo(-0) = ${fmt(negZero)}`);
  assert.equal(await echo(-Infinity), -Infinity);
  assert.equal(await echo(Infinity), Infinity);
  for (const x of [0, 5, -1.5, 1e300, Number.MIN_VALUE, 2 ** 53 + 2]) {
    const r = await echo(x);
    assert.equal(typeof r, "number", `echo(${x}) came back as ${fmt(r)}`);
    assert.ok(Object.is(r, x), `echo(${x}) = ${fmt(r)}`);
  }

  // bytes
  const bytes = new Uint8Array([0, 1, 2, 250, 255, 128, 64]).buffer;
  const b = await echo(bytes);
  assert.ok(b instanceof ArrayBuffer, `echo(bytes) came back as ${fmt(b)}`);
  assert.deepEqual(Buffer.from(b), Buffer.from(bytes));
  const empty = await echo(new ArrayBuffer(0));
  assert.ok(empty instanceof ArrayBuffer && empty.byteLength === 0, `echo(empty bytes) = ${fmt(empty)}`);

  // scalars
  assert.equal(await echo(null), null);
  assert.equal(await echo(true), true);
  assert.equal(await echo(false), false);
  assert.equal(await echo(""), "");
  assert.equal(await echo("héllo 🌍 \u0000 \"quoted\""), "héllo 🌍 \u0000 \"quoted\"");

  // nested containers, mixing every type
  const nested = {
    a: [1n, 2.5, "x", null, true, [[-(2n ** 40n)], {}], []],
    b: { c: { d: { e: new Uint8Array([9, 8, 7]).buffer } } },
    f: [NaN, -0, -Infinity, { g: 0n }],
    "key with spaces": "v",
  };
  const r = await echo(nested);
  assert.deepEqual(Object.keys(r).sort(), Object.keys(nested).sort());
  assert.deepEqual(r.a[0], 1n);
  assert.equal(r.a[1], 2.5);
  assert.equal(r.a[2], "x");
  assert.equal(r.a[3], null);
  assert.equal(r.a[4], true);
  assert.deepEqual(r.a[5], [[-(2n ** 40n)], {}]);
  assert.deepEqual(r.a[6], []);
  assert.ok(r.b.c.d.e instanceof ArrayBuffer, `nested bytes came back as ${fmt(r.b.c.d.e)}`);
  assert.deepEqual([...new Uint8Array(r.b.c.d.e)], [9, 8, 7]);
  assert.ok(Number.isNaN(r.f[0]));
  assert.ok(Object.is(r.f[1], -0), `nested -0 came back as ${fmt(r.f[1])}`);
  assert.equal(r.f[2], -Infinity);
  assert.deepEqual(r.f[3], { g: 0n });
  assert.equal(r["key with spaces"], "v");

  // The same through a live subscription, not only a one-shot query.
  const sub = watch(client, fn.valuesEcho, { value: { big: 2n ** 62n, neg: -1n, z: -0 } });
  const v = await sub.waitFor(() => true, { timeoutMs: STEP_MS, label: "values:echo subscription" });
  assert.equal(v.big, 2n ** 62n);
  assert.equal(v.neg, -1n);
  assert.ok(Object.is(v.z, -0));
});

test("user errors surface as ConvexError with errorData.code", { timeout: TEST_MS }, async (t) => {
  const client = openClient(t, server);
  const channel = uniq("errors");

  const expectCode = async (promise, code, what) => {
    const err = await withTimeout(
      promise.then(
        (v) => {
          throw new Error(`${what} succeeded with ${fmt(v)}; expected ConvexError ${code}`);
        },
        (e) => e,
      ),
      STEP_MS,
      what,
    );
    assert.equal(err.name, "ConvexError", `${what} threw ${fmt(err)}`);
    assert.equal(errorCode(err), code, `${what}: errorData = ${fmt(err.data)}`);
    assert.equal(typeof err.data.message, "string", `${what}: errorData.message = ${fmt(err.data)}`);
    return err;
  };

  await expectCode(
    client.mutation(fn.messagesSend, { channel, author: "a", body: "   " }),
    "EmptyMessage",
    "messages:send with a blank body",
  );
  await expectCode(
    client.mutation(fn.messagesSend, { channel, author: "a" }),
    "InvalidArguments",
    "messages:send without body",
  );
  await expectCode(
    client.mutation(fn.countersIncrement, { name: uniq("c"), by: 1 }),
    "InvalidArguments",
    "counters:increment with a float64 `by`",
  );
  await expectCode(
    client.mutation(fn.messagesSend, { channel, author: "a", body: "x", extra: 1 }),
    "InvalidArguments",
    "messages:send with an extra field",
  );

  // Failed mutations wrote nothing, and the client still works afterwards.
  const list = await withTimeout(client.query(fn.messagesList, { channel }), STEP_MS, "messages:list");
  assert.deepEqual(list, []);
  const id = await withTimeout(
    client.mutation(fn.messagesSend, { channel, author: "a", body: "ok" }),
    STEP_MS,
    "messages:send after errors",
  );
  assert.equal(typeof id, "string");
});

test("cursors:move: 60 simultaneous moves, about 20 accepted, the rest RateLimited", { timeout: TEST_MS }, async (t) => {
  const client = openClient(t, server);
  const room = uniq("room");
  const user = uniq("user");
  const settled = await withTimeout(
    Promise.allSettled(
      Array.from({ length: 60 }, (_, i) => client.mutation(fn.cursorsMove, { room, user, x: i, y: -i })),
    ),
    20_000,
    "60 cursors:move",
  );
  const accepted = settled.filter((s) => s.status === "fulfilled");
  const rejected = settled.filter((s) => s.status === "rejected");
  for (const s of accepted) assert.equal(s.value, null, `accepted cursors:move returned ${fmt(s.value)}`);
  for (const s of rejected) {
    assert.equal(errorCode(s.reason), "RateLimited", `cursors:move failed with ${fmt(s.reason)}`);
    const { retryAfterMs } = s.reason.data;
    assert.ok(
      typeof retryAfterMs === "number" && retryAfterMs >= 0,
      `RateLimited retryAfterMs = ${fmt(retryAfterMs)}`,
    );
  }
  assert.ok(
    accepted.length >= 18 && accepted.length <= 22,
    `expected about 20 accepted moves, got ${accepted.length} accepted, ${rejected.length} rate-limited`,
  );
});

test("bank: every pushed accounts:balances result sums to 500 under concurrent transfers", { timeout: TEST_MS }, async (t) => {
  const bank = uniq("bank");
  const seed = Math.floor(Math.random() * 2 ** 32);
  const rand = prng(seed);
  const ctx = `(bank ${bank}, seed ${seed})`;

  const clients = Array.from({ length: 3 }, () => openClient(t, server));
  const observer = openClient(t, server);

  await withTimeout(
    clients[0].mutation(fn.accountsOpen, { bank, accounts: 5, balance: 100n }),
    STEP_MS,
    "accounts:open",
  );

  const sub = watch(observer, fn.accountsBalances, { bank });
  const initial = await sub.waitFor((v) => Array.isArray(v) && v.length === 5, {
    timeoutMs: STEP_MS,
    label: "initial accounts:balances with 5 accounts",
  });
  for (const row of initial) assert.equal(row.balance, 100n, `initial balances ${fmt(initial)}`);
  const accounts = initial.map((r) => r.account);
  assert.ok(accounts.every((a) => typeof a === "number"), `account ids ${fmt(accounts)}`);

  const pick = () => accounts[Math.floor(rand() * accounts.length)];
  let succeeded = 0;
  let insufficient = 0;
  const work = clients.map((c) =>
    Array.from({ length: 30 }, () => {
      const from = pick();
      let to = pick();
      while (to === from) to = pick();
      const amount = BigInt(1 + Math.floor(rand() * 60));
      return c.mutation(fn.accountsTransfer, { bank, from, to, amount }).then(
        () => {
          succeeded++;
        },
        (err) => {
          if (errorCode(err) === "InsufficientFunds") {
            insufficient++;
            return;
          }
          throw new Error(`transfer ${from}->${to} of ${amount}n failed unexpectedly ${ctx}: ${fmt(err)}`);
        },
      );
    }),
  );
  await withTimeout(Promise.all(work.flat()), 20_000, `90 accounts:transfer ${ctx}`);
  assert.equal(succeeded + insufficient, 90);
  assert.ok(succeeded > 0, `no transfer succeeded ${ctx}`);

  // The observer converges on the final state.
  const reader = openClient(t, server);
  const final = await withTimeout(reader.query(fn.accountsBalances, { bank }), STEP_MS, "final accounts:balances");
  await sub.waitFor((v) => fmt(v) === fmt(final), {
    timeoutMs: STEP_MS,
    label: `observer to reach the final balances ${fmt(final)}`,
  });

  assert.ok(sub.values.length >= 2, `only ${sub.values.length} pushes observed`);
  for (const [i, v] of sub.values.entries()) {
    assert.equal(v.length, 5, `push #${i} has ${v.length} accounts ${ctx}: ${fmt(v)}`);
    let sum = 0n;
    for (const row of v) {
      assert.equal(typeof row.balance, "bigint", `push #${i} ${ctx}: ${fmt(v)}`);
      assert.ok(row.balance >= 0n, `negative balance in push #${i} ${ctx}: ${fmt(v)}`);
      sum += row.balance;
    }
    assert.equal(sum, 500n, `push #${i} of ${sub.values.length} sums to ${sum}n ${ctx}: ${fmt(v)}`);
  }
});
