// Socket drops and the official npm client's recovery: it reconnects by
// itself under the same sessionId and re-sends unfinished mutations with the
// same requestId; the server must apply each of them exactly once.
//
// Drops are injected with the server's test hooks (`--test-hooks`, the
// `/_syncspec/control` socket). This file has its own server, so a hook armed
// here cannot hit another file's traffic.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";

import { startServer, openClient, watch, withTimeout, uniq, fmt, frames, traceTail, fn } from "./lib/harness.mjs";

const STEP_MS = 10_000;
// The client backs off about 0.5-1.5 s before reconnecting after an abrupt drop.
const RECOVERY_MS = 15_000;
const TEST_MS = 40_000;

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  await server?.stop();
});

/** Frame-level evidence that the client replayed one mutation after a drop. */
function assertReplayed(client, udfPath) {
  const trace = () => client.trace.map((f) => `${f.socket} ${f.dir} ${fmt(f.msg ?? f)}`).join("\n");
  const connects = frames(client, "out", "Connect");
  assert.ok(connects.length >= 2, `expected a reconnect, saw ${connects.length} Connect frame(s)\n${trace()}`);
  const sessionIds = new Set(connects.map((f) => f.msg.sessionId));
  assert.equal(sessionIds.size, 1, `the client changed sessionId across reconnects\n${trace()}`);

  const sends = frames(client, "out", "Mutation").filter((f) => f.msg.udfPath === udfPath);
  assert.ok(sends.length >= 2, `expected the ${udfPath} Mutation to be re-sent\n${trace()}`);
  const requestIds = new Set(sends.map((f) => f.msg.requestId));
  assert.equal(requestIds.size, 1, `re-sent mutation changed requestId\n${trace()}`);
  assert.ok(
    new Set(sends.map((f) => f.socket)).size >= 2,
    `the re-send should be on a new socket\n${trace()}`,
  );
  return { requestId: [...requestIds][0], sends, trace };
}

async function dropAndReplay(t, hook) {
  const client = openClient(t, server);
  const name = uniq(`drop-${hook}`);
  const sub = watch(client, fn.countersGet, { name });
  await sub.waitFor((v) => v === 0n, { timeoutMs: STEP_MS, label: "initial counters:get = 0n" });

  const reply = await server.control({ type: hook });
  assert.equal(reply.ok, true);

  const value = await withTimeout(
    client.mutation(fn.countersIncrement, { name }),
    RECOVERY_MS,
    `counters:increment across a ${hook} drop`,
    () => `last frames of the client:\n${traceTail(client, 14)}`,
  );
  assert.equal(value, 1n, `counters:increment resolved with ${fmt(value)} after ${hook}`);
  // Read-your-writes still holds after the replay.
  assert.equal(sub.latest(), 1n, `subscription showed ${fmt(sub.latest())} when the mutation resolved`);

  const evidence = assertReplayed(client, "counters:increment");

  // Applied exactly once: a fresh client reads 1, and the next increment gives 2.
  const reader = openClient(t, server);
  const read = await withTimeout(reader.query(fn.countersGet, { name }), STEP_MS, "counters:get on a fresh client");
  assert.equal(read, 1n, `counters:get after a replayed increment = ${fmt(read)} (applied more than once?)`);
  const next = await withTimeout(reader.mutation(fn.countersIncrement, { name }), STEP_MS, "second increment");
  assert.equal(next, 2n);
  await sub.waitFor((v) => v === 2n, { timeoutMs: STEP_MS, label: "resubscribed query sees 2n" });
  return { client, evidence };
}

test("DropAfterNextCommit: the committed mutation is replayed under the same session and applied once", { timeout: TEST_MS }, async (t) => {
  const { client, evidence } = await dropAndReplay(t, "DropAfterNextCommit");
  // The first socket was dropped before it carried the MutationResponse.
  const firstSocket = evidence.sends[0].socket;
  const responsesOnFirst = frames(client, "in", "MutationResponse").filter(
    (f) => f.socket === firstSocket && f.msg.requestId === evidence.requestId,
  );
  assert.equal(responsesOnFirst.length, 0, `a MutationResponse arrived before the drop\n${evidence.trace()}`);
});

test("DropOnNextMutation: the discarded mutation is re-sent after reconnect and applied once", { timeout: TEST_MS }, async (t) => {
  await dropAndReplay(t, "DropOnNextMutation");
});

test("DropConnections: subscriptions resume after the drop and see later writes", { timeout: TEST_MS }, async (t) => {
  const watcher = openClient(t, server);
  const writer = openClient(t, server);
  const channel = uniq("dropall");
  const sub = watch(watcher, fn.messagesList, { channel });
  await sub.waitFor((v) => Array.isArray(v) && v.length === 0, { timeoutMs: STEP_MS, label: "initial list" });

  await server.control({ type: "DropConnections" });
  const id = await withTimeout(
    writer.mutation(fn.messagesSend, { channel, author: "w", body: "after drop" }),
    RECOVERY_MS,
    "messages:send after DropConnections",
    () => `last frames of the writer:\n${traceTail(writer, 14)}`,
  );
  await sub.waitFor((v) => v.some((m) => m._id === id), {
    timeoutMs: RECOVERY_MS,
    label: "watcher to see the message after reconnecting",
  });
  assert.ok(frames(watcher, "out", "Connect").length >= 2, "the watcher never reconnected");
});
