// Reactive pagination with the official npm client: `ConvexClient`'s
// `onPaginatedUpdate_experimental` (the `PaginatedQueryClient` under
// `usePaginatedQuery`) over `messages:page`. It loads page 0, then each next
// page from the last one's `continueCursor` with `loadMore`, splits a page
// that grew past twice its size at the server's `splitCursor` (two pages
// with `endCursor`s), and echoes each page's journal when it re-adds the
// pages after a reconnect. While another client sends and removes messages
// at the top, inside and at the ends of pages, the concatenated `results`
// must be exactly the channel's newest rows: no gap, no duplicate.
//
// The negative control runs the same steps against `--fault page-end-moves`
// (pages re-read as numItems rows from their cursor on every change) and
// sees the gap and the overlap, so the first test is not vacuous.

import { test } from "node:test";
import assert from "node:assert/strict";

import { startServer, openClient, watch, withTimeout, uniq, fmt, frames, traceTail, fn } from "./lib/harness.mjs";

const STEP_MS = 10_000;
// The client backs off about 0.5-1.5 s before reconnecting after an abrupt drop.
const RECOVERY_MS = 15_000;
const TEST_MS = 60_000;

/** A server of this test's own: the reconnect test drops every connection. */
async function ownServer(t, args = []) {
  const server = await startServer({ args });
  t.after(() => server.stop());
  return server;
}

/**
 * A channel this test writes through `client`, and its content as written:
 * `rows` oldest first, so the channel's newest rows are known without asking,
 * and `states`, its bodies newest first after every write.
 */
class Channel {
  constructor(client, name) {
    this.client = client;
    this.name = name;
    this.rows = [];
    this.states = [];
  }

  async send(body) {
    const id = await withTimeout(
      this.client.mutation(fn.messagesSend, { channel: this.name, author: "pager", body }),
      RECOVERY_MS,
      `messages:send ${body}`,
      () => traceTail(this.client),
    );
    assert.equal(typeof id, "string", `messages:send ${body} returned ${fmt(id)}`);
    this.rows.push({ id, body });
    this.states.push(this.newestFirst());
  }

  async remove(body) {
    const row = this.rows.find((r) => r.body === body);
    assert.ok(row, `no row ${body} to remove in ${fmt(this.newestFirst())}`);
    await withTimeout(
      this.client.mutation(fn.messagesRemove, { id: row.id }),
      RECOVERY_MS,
      `messages:remove ${body}`,
      () => traceTail(this.client),
    );
    this.rows = this.rows.filter((r) => r !== row);
    this.states.push(this.newestFirst());
  }

  /** The bodies, newest first: what the pages together must hold. */
  newestFirst() {
    return this.rows.map((r) => r.body).reverse();
  }
}

/**
 * Subscribes with `onPaginatedUpdate_experimental` and records every result
 * (`{bodies, status}`); `waitFor(pred)` resolves with the first current or
 * later result that satisfies it.
 */
function watchPages(client, channel, initialNumItems) {
  const updates = [];
  const errors = [];
  const waiters = new Set();
  let latest;
  client.onPaginatedUpdate_experimental(
    fn.messagesPage,
    { channel },
    { initialNumItems },
    (result) => {
      latest = result;
      updates.push({ bodies: result.results.map((m) => m.body), status: result.status });
      for (const w of [...waiters]) {
        if (w.pred(result)) {
          waiters.delete(w);
          w.resolve(result);
        }
      }
    },
    (err) => errors.push(err),
  );
  return {
    updates,
    errors,
    latest: () => latest,
    waitFor(pred, label) {
      if (errors.length) return Promise.reject(new Error(`the paginated query failed: ${fmt(errors[0])}`));
      if (latest && pred(latest)) return Promise.resolve(latest);
      let waiter;
      const p = new Promise((resolve, reject) => {
        waiter = { pred, resolve, reject };
        waiters.add(waiter);
      });
      return withTimeout(p, STEP_MS, label, () =>
        [
          `latest: ${fmt(latest && { bodies: latest.results.map((m) => m.body), status: latest.status })}`,
          `errors: ${fmt(errors)}`,
          `last frames:\n${traceTail(client)}`,
        ].join("\n"),
      ).finally(() => waiters.delete(waiter));
    },
  };
}

/**
 * What is wrong with `got` (the concatenated results' bodies) as a reading
 * of `expected` (the channel's bodies, newest first); empty when it is it.
 */
function problems(expected, got) {
  const found = [];
  const counts = new Map();
  for (const b of got) counts.set(b, (counts.get(b) ?? 0) + 1);
  for (const [b, n] of counts) {
    if (n > 1) found.push(`${b} is held ${n} times (an overlap)`);
    if (!expected.includes(b)) found.push(`${b} is not in the channel`);
  }
  for (const b of expected) {
    if (!counts.has(b)) found.push(`${b} is in no page (a gap)`);
  }
  if (found.length === 0 && got.join(" ") !== expected.join(" ")) found.push("the rows are out of order");
  return found;
}

/** The bodies of a list of messages, newest first (`messages:list` is oldest first). */
const newestFirst = (messages) => messages.map((m) => m.body).reverse();

/**
 * Seeds `seeds` messages, subscribes the paginated query with
 * `initialNumItems` on a second client and loads pages with `loadMore` until
 * it is `Exhausted`. The reader also watches `messages:list`, which arrives
 * in the same transitions, to know when it has seen a write.
 */
async function loadedPages(t, server, { seeds, initialNumItems }) {
  const writer = openClient(t, server);
  const reader = openClient(t, server);
  const channel = new Channel(writer, uniq("pages"));
  for (let i = 0; i < seeds; i++) await channel.send(`s${i}`);
  const list = watch(reader, fn.messagesList, { channel: channel.name });
  const pages = watchPages(reader, channel.name, initialNumItems);
  let page = await pages.waitFor((r) => r.status === "CanLoadMore" || r.status === "Exhausted", "page 0");
  assert.deepEqual(
    page.results.map((m) => m.body),
    channel.newestFirst().slice(0, initialNumItems),
    "page 0 is the newest initialNumItems messages",
  );
  for (let loaded = 1; page.status === "CanLoadMore"; loaded++) {
    assert.ok(loaded < seeds, `still CanLoadMore after ${loaded} pages of ${initialNumItems} over ${seeds} rows`);
    assert.equal(page.loadMore(initialNumItems), true, "loadMore while CanLoadMore");
    page = await pages.waitFor(
      (r) => (r.status === "CanLoadMore" || r.status === "Exhausted") && r.results.length > page.results.length,
      `page ${loaded}`,
    );
  }
  assert.equal(page.status, "Exhausted");
  assert.deepEqual(page.results.map((m) => m.body), channel.newestFirst(), "every page loaded");
  assert.equal(page.loadMore(initialNumItems), false, "loadMore on an exhausted query loads nothing");
  return { reader, channel, list, pages };
}

/**
 * Runs `steps` (each a label and a change to the channel), and after each
 * waits until the reader's `messages:list` shows it, then takes the
 * paginated results of that same transition. Returns what each step saw.
 */
async function runSteps({ channel, list, pages }, steps) {
  const seen = [];
  for (const [label, change] of steps) {
    await change(channel);
    const expected = channel.newestFirst();
    await list.waitFor((v) => newestFirst(v).join(" ") === expected.join(" "), {
      timeoutMs: RECOVERY_MS,
      label: `messages:list after ${label}`,
    });
    const latest = pages.latest();
    const got = latest.results.map((m) => m.body);
    seen.push({ label, expected, got, status: latest.status, problems: problems(expected, got) });
  }
  return seen;
}

/** Sends and removes at the top, inside and at the ends of pages of 3 (8 seeds: s7 s6 s5 | s4 s3 s2 | s1 s0). */
const STEPS = [
  ["sending n1, at the top of page 0", (c) => c.send("n1")],
  ["removing n1, the newest row", (c) => c.remove("n1")],
  ["removing s6, inside page 0", (c) => c.remove("s6")],
  [
    "sending n2 to n6 (page 0 grows past twice its size: the client splits it)",
    async (c) => {
      for (const body of ["n2", "n3", "n4", "n5", "n6"]) await c.send(body);
    },
  ],
  ["removing s5, page 0's last row", (c) => c.remove("s5")],
  ["removing s3, inside page 1", (c) => c.remove("s3")],
  ["removing s2, page 1's last row", (c) => c.remove("s2")],
  ["removing s4, page 1's first and now only row", (c) => c.remove("s4")],
  ["sending n7", (c) => c.send("n7")],
];

/** Every `Add` of a `messages:page` query the client sent, with its socket and whether it re-adds the query set. */
function pageAdds(client) {
  return frames(client, "out", "ModifyQuerySet").flatMap((f) =>
    f.msg.modifications
      .filter((m) => m.type === "Add" && m.udfPath === "messages:page")
      .map((m) => ({
        socket: f.socket,
        readd: f.socket > 1 && f.msg.baseVersion === 0,
        opts: m.args[0].paginationOpts,
        journal: m.journal,
      })),
  );
}

test("loaded pages stay gapless while messages arrive and leave, and a grown page splits", { timeout: TEST_MS }, async (t) => {
  const server = await ownServer(t);
  const loaded = await loadedPages(t, server, { seeds: 8, initialNumItems: 3 });
  const settled = loaded.pages.updates.length;
  const seen = await runSteps(loaded, STEPS);
  for (const s of seen) {
    assert.deepEqual(s.problems, [], `after ${s.label}: results ${fmt(s.got)}, the channel ${fmt(s.expected)}`);
    assert.equal(s.status, "Exhausted", `after ${s.label}`);
  }
  // Not only where the test looked: every result pushed after loading is
  // the channel after some write (a page being split keeps its old result
  // until both halves arrive).
  const states = loaded.channel.states.map((s) => s.join(" "));
  const pushed = loaded.pages.updates.slice(settled);
  assert.ok(pushed.length >= STEPS.length, `only ${pushed.length} results pushed over ${STEPS.length} steps`);
  for (const u of pushed) {
    assert.ok(
      states.includes(u.bodies.join(" ")),
      `a pushed result ${fmt(u.bodies)} (${u.status}) is the channel after no write`,
    );
  }
  // The client split page 0 at the server's splitCursor: two pages with an endCursor.
  const split = pageAdds(loaded.reader).filter((a) => typeof a.opts.endCursor === "string");
  assert.equal(split.length, 2, `the client never split the grown page: ${fmt(pageAdds(loaded.reader))}`);
});

test("pages re-added after a reconnect with their journals keep their ends", { timeout: TEST_MS }, async (t) => {
  const server = await ownServer(t);
  const loaded = await loadedPages(t, server, { seeds: 5, initialNumItems: 2 });
  // Page 0 (s4 s3) grows to n2 n1 s4 s3: its end stays at s3.
  const grow = async (c) => {
    await c.send("n1");
    await c.send("n2");
  };
  const grown = await runSteps(loaded, [["sending n1 and n2", grow]]);
  assert.deepEqual(grown[0].problems, [], fmt(grown[0]));

  await server.control({ type: "DropConnections" });
  const after = await runSteps(loaded, [
    ["sending n3 after the reconnect", (c) => c.send("n3")],
    ["removing s3, page 0's last row", (c) => c.remove("s3")],
    ["removing s2, page 1's first row", (c) => c.remove("s2")],
  ]);
  for (const s of after) {
    assert.deepEqual(s.problems, [], `after ${s.label}: results ${fmt(s.got)}, the channel ${fmt(s.expected)}`);
  }
  const readded = pageAdds(loaded.reader).filter((a) => a.readd);
  assert.ok(frames(loaded.reader, "out", "Connect").length >= 2, "the reader never reconnected");
  assert.ok(
    readded.length >= 3 && readded.every((a) => typeof a.journal === "string"),
    `the client re-added its pages without journals: ${fmt(readded)}`,
  );
});

test("negative control: with --fault page-end-moves the same steps leave a gap and an overlap", { timeout: TEST_MS }, async (t) => {
  const server = await ownServer(t, ["--fault", "page-end-moves"]);
  const loaded = await loadedPages(t, server, { seeds: 8, initialNumItems: 3 });
  const seen = await runSteps(loaded, STEPS);
  // n1 pushes s5 out of page 0, and page 1 still starts after s5.
  assert.deepEqual(seen[0].problems, ["s5 is in no page (a gap)"], fmt(seen[0]));
  assert.ok(
    seen.some((s) => s.problems.some((p) => p.includes("overlap"))),
    `no step made two pages overlap: ${fmt(seen)}`,
  );
});
