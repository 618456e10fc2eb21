// Keepalive with the official npm client: against `syncspec serve
// --ping-interval 200ms --idle-timeout 1s`, a subscribed `ConvexClient` that
// sends nothing for 3 s keeps its one socket, because the server's WebSocket
// pings draw pongs that count as traffic. The negative control runs the same
// idle client against `--fault no-ws-ping` and sees it cut at the idle
// timeout, so the idle timeout is real and the first test is not vacuous.

import { test } from "node:test";
import assert from "node:assert/strict";

import { startServer, openClient, watch, withTimeout, uniq, fmt, sleep, traceTail, fn } from "./lib/harness.mjs";

const STEP_MS = 10_000;
const TEST_MS = 30_000;
const KEEPALIVE = ["--ping-interval", "200ms", "--idle-timeout", "1s"];
/** Three idle timeouts. */
const IDLE_MS = 3_000;

/** A server of this test's own, so the socket counts are this test's alone. */
async function ownServer(t, args) {
  const server = await startServer({ args });
  t.after(() => server.stop());
  return server;
}

/** The socket counts of a `Stats` reply. */
function counts({ opened, open }) {
  return { opened, open };
}

/** An official client with one live subscription, and its first result seen. */
async function subscribedClient(t, server) {
  const client = openClient(t, server);
  const name = uniq("idle");
  const sub = watch(client, fn.countersGet, { name });
  await sub.waitFor((v) => v === 0n, { timeoutMs: STEP_MS, label: "initial counters:get = 0n" });
  return { client, name, sub };
}

test("keepalive: an idle subscribed client outlives the idle timeout on one socket", { timeout: TEST_MS }, async (t) => {
  const server = await ownServer(t, KEEPALIVE);
  const { client, name, sub } = await subscribedClient(t, server);
  assert.deepEqual(counts(await server.stats()), { opened: 1, open: 1 });

  await sleep(IDLE_MS);

  const state = client.connectionState();
  const closes = client.trace.filter((f) => f.dir === "close");
  assert.deepEqual(closes, [], `the idle client's socket was closed\n${traceTail(client)}`);
  assert.equal(state.connectionCount, 1, `the idle client reconnected: ${fmt(state)}`);
  assert.equal(state.isWebSocketConnected, true, fmt(state));
  assert.deepEqual(
    counts(await server.stats()),
    { opened: 1, open: 1 },
    "the server opened another sync socket while the client was idle",
  );

  // Still live: another client's write reaches the idle subscription.
  const writer = openClient(t, server);
  await withTimeout(writer.mutation(fn.countersIncrement, { name }), STEP_MS, "counters:increment");
  await sub.waitFor((v) => v === 1n, { timeoutMs: STEP_MS, label: "the write in the idle client's subscription" });
  assert.equal(client.connectionState().connectionCount, 1);
});

test("keepalive control: without server pings the idle client is cut at the idle timeout", { timeout: TEST_MS }, async (t) => {
  const server = await ownServer(t, [...KEEPALIVE, "--fault", "no-ws-ping"]);
  const { client } = await subscribedClient(t, server);

  const deadline = Date.now() + IDLE_MS + 2_000;
  while (Date.now() < deadline && !client.trace.some((f) => f.dir === "close")) {
    await sleep(50);
  }
  const closes = client.trace.filter((f) => f.dir === "close");
  assert.ok(closes.length >= 1, `no server pings, yet the idle socket was not closed\n${traceTail(client)}`);
  assert.equal(closes[0].code, 1001, `the idle close: ${fmt(closes[0])}`);

  // The client reconnects by itself; the server counts the second socket.
  const reopenDeadline = Date.now() + STEP_MS;
  let stats = await server.stats();
  while (Date.now() < reopenDeadline && stats.opened < 2) {
    await sleep(100);
    stats = await server.stats();
  }
  assert.ok(stats.opened >= 2, `the server's Stats after the idle close: ${fmt(stats)}`);
});
