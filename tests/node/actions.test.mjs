// Actions and scheduled functions with the official npm clients.
//
// `messages:streamReply` is an action: it reads the channel's latest message,
// then starts a streaming message, appends one token at a time and finishes
// it, each step its own transaction. Called with `ConvexClient.action` (the
// protocol's Action / ActionResponse over the socket) and
// `ConvexHttpClient.action` (`POST /api/action`) while another client's
// `onUpdate` subscription on `messages:list` watches: the result names the
// reply and the message it answers, the watcher's bodies for the reply only
// ever grow by whole tokens and end at the full text, and a failing action
// rejects with a ConvexError (`UpstreamFailed`) while what it committed stays
// (an action is not a transaction).
//
// `notifications:sendLater` schedules `notifications:send` to run `delayMs`
// after it commits: a `notifications:unread` subscription shows it exactly
// once, and not before the delay has passed since the mutation was sent.
//
// The controls run the same checks against servers with one fault each
// (`action-mutation-twice`, `action-rollback`, `scheduled-early`,
// `scheduled-twice`) and see them fail, so the checks can fail.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";

import { startServer, openClient, openHttpClient, watch, withTimeout, uniq, fmt, errorCode, frames, fn } from "./lib/harness.mjs";

const STEP_MS = 10_000;
const TEST_MS = 30_000;
/** The action's pause between tokens, so each token is a commit of its own moment. */
const TOKEN_MS = 40;
/** The delay of the scheduled notification. */
const DELAY_MS = 300;
/**
 * The server times the delay on its wall clock and these tests on Node's
 * monotonic `performance.now()`; over a second the two drift apart by well
 * under this (the real margin is larger: the mutation's trip to its commit
 * and the notification's trip back both count in our favour).
 */
const CLOCK_SLACK_MS = 1;

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  await server?.stop();
});

/** A server of this test's own, with `args` (a fault). */
async function ownServer(t, args) {
  const own = await startServer({ args });
  t.after(() => own.stop());
  return own;
}

/** The tokens `messages:streamReply` writes for `text`: split after each space. */
function tokensOf(text) {
  return text === "" ? [] : text.split(/(?<= )/);
}

/** Every body a reply of `text` may show, in order: its whole-token prefixes. */
function prefixesOf(text) {
  const tokens = tokensOf(text);
  return tokens.map((_, i) => tokens.slice(0, i).join("")).concat([text]);
}

/** A promise's outcome as a value: `{value}` or `{error}`. */
function settle(promise, ms, label) {
  return withTimeout(
    promise.then(
      (value) => ({ value }),
      (error) => ({ error }),
    ),
    ms,
    label,
  );
}

/**
 * Checks the reply by `author` in every `messages:list` push the watcher got:
 * at most one such message; once it appears it stays; its body is always a
 * whole-token prefix of `text` and never shrinks; `streaming` turns false only
 * on the full text and stays false. Returns the reply's states
 * (`{body, streaming}`, one per push that had it); throws an AssertionError
 * naming the first violation and showing every state otherwise.
 */
function checkReplyStream(values, author, text) {
  const prefixes = prefixesOf(text);
  const states = [];
  const history = () =>
    values
      .map((v, i) => `  push ${i}: ${fmt(v.filter((m) => m.author === author).map((m) => [m.body, m.streaming]))}`)
      .join("\n");
  const fail = (what) => assert.fail(`${what}\nthe reply in each push of messages:list:\n${history()}`);
  let last = -1;
  let finished = false;
  for (const [i, value] of values.entries()) {
    assert.ok(Array.isArray(value), `push ${i} of messages:list is ${fmt(value)}`);
    const replies = value.filter((m) => m.author === author);
    if (replies.length > 1) fail(`push ${i} has ${replies.length} replies by ${author}, one expected`);
    if (replies.length === 0) {
      if (last >= 0) fail(`push ${i}: the reply vanished after it had appeared`);
      continue;
    }
    const [{ body, streaming }] = replies;
    states.push({ body, streaming });
    const at = prefixes.indexOf(body);
    if (at < 0) fail(`push ${i}: body ${JSON.stringify(body)} is not a whole-token prefix of ${JSON.stringify(text)}`);
    if (at < last) fail(`push ${i}: body ${JSON.stringify(body)} shrank`);
    if (finished && streaming) fail(`push ${i}: the reply went back to streaming after it was finished`);
    if (!streaming && body !== text) fail(`push ${i}: the reply finished at ${JSON.stringify(body)}, not the full text`);
    last = at;
    finished = !streaming;
  }
  if (last < 0) fail(`no push had a reply by ${author}`);
  return states;
}

/**
 * One reply streamed over the socket: `asker` sends a question and calls
 * `messages:streamReply` with `ConvexClient.action` while `watcher`'s
 * subscription on the channel records every push. Ends when the watcher has
 * the finished reply (success) or a later message of the asker's (failure:
 * a barrier, so everything the action committed has reached the watcher).
 */
async function streamOverSocket(t, srv, { text, failAfterTokens }) {
  const asker = openClient(t, srv);
  const watcher = openClient(t, srv);
  const channel = uniq("reply");
  const bot = uniq("bot");
  const sub = watch(watcher, fn.messagesList, { channel });
  await sub.waitFor((v) => Array.isArray(v) && v.length === 0, { timeoutMs: STEP_MS, label: "initial empty messages:list" });

  const question = await withTimeout(
    asker.mutation(fn.messagesSend, { channel, author: "ada", body: "what is new?" }),
    STEP_MS,
    "messages:send (the question)",
  );
  await sub.waitFor((v) => v.some((m) => m._id === question), { timeoutMs: STEP_MS, label: "the question at the watcher" });

  const args = { channel, author: bot, text, tokenIntervalMs: TOKEN_MS };
  if (failAfterTokens !== undefined) args.failAfterTokens = failAfterTokens;
  const outcome = await settle(asker.action(fn.messagesStreamReply, args), STEP_MS, "messages:streamReply over the socket");

  let barrier = null;
  if (outcome.value) {
    await sub.waitFor((v) => v.some((m) => m._id === outcome.value.id && !m.streaming), {
      timeoutMs: STEP_MS,
      label: `the finished reply ${fmt(outcome.value)} at the watcher`,
    });
  } else {
    barrier = await withTimeout(
      asker.mutation(fn.messagesSend, { channel, author: "ada", body: "still there?" }),
      STEP_MS,
      "messages:send after the failed action",
    );
    await sub.waitFor((v) => v.some((m) => m._id === barrier), { timeoutMs: STEP_MS, label: "the later message at the watcher" });
  }
  return { asker, watcher, sub, channel, bot, question, outcome, barrier };
}

test("action over the socket: streamReply's result, and the watcher sees the reply grow token by token", { timeout: TEST_MS }, async (t) => {
  const text = "streaming whole tokens to every subscriber";
  const { asker, sub, bot, question, outcome } = await streamOverSocket(t, server, { text });
  assert.ok(outcome.value, `messages:streamReply failed: ${fmt(outcome.error)}`);
  const result = outcome.value;

  assert.deepEqual(Object.keys(result).sort(), ["id", "inReplyTo", "tokens"], fmt(result));
  assert.equal(typeof result.id, "string", fmt(result));
  assert.equal(result.inReplyTo, question, `inReplyTo should be the channel's latest message: ${fmt(result)}`);
  assert.equal(result.tokens, tokensOf(text).length, fmt(result));

  const states = checkReplyStream(sub.values, bot, text);
  assert.deepEqual(
    sub.latest().map((m) => [m._id, m.author, m.body, m.streaming]),
    [
      [question, "ada", "what is new?", false],
      [result.id, bot, text, false],
    ],
  );
  // The reply was seen part-written: a stream, not just its end.
  assert.ok(
    states.some((s) => s.streaming && s.body !== "" && s.body !== text),
    `the watcher never saw the reply part-written: ${fmt(states)}`,
  );

  // It went over the socket as the protocol's Action and ActionResponse.
  const sent = frames(asker, "out", "Action");
  assert.deepEqual(
    sent.map((f) => f.msg.udfPath),
    ["messages:streamReply"],
    `Action frames sent: ${fmt(sent.map((f) => f.msg))}`,
  );
  const answers = frames(asker, "in", "ActionResponse");
  assert.deepEqual(
    answers.map((f) => [f.msg.requestId, f.msg.success]),
    [[sent[0].msg.requestId, true]],
    `ActionResponse frames: ${fmt(answers.map((f) => f.msg))}`,
  );
});

test("action over the socket: a failing streamReply is a ConvexError UpstreamFailed, and its partial message stays", { timeout: TEST_MS }, async (t) => {
  const text = "one two three four";
  const { asker, sub, bot, question, outcome, barrier } = await streamOverSocket(t, server, { text, failAfterTokens: 2 });
  assert.ok(outcome.error, `messages:streamReply with failAfterTokens succeeded: ${fmt(outcome.value)}`);
  const err = outcome.error;
  assert.equal(err.name, "ConvexError", `expected a ConvexError, got ${fmt(err)}`);
  assert.equal(errorCode(err), "UpstreamFailed", `errorData of ${fmt(err)}`);
  assert.equal(err.data.tokens, 2, `errorData of ${fmt(err)}`);
  assert.equal(typeof err.data.message, "string", `errorData of ${fmt(err)}`);
  assert.deepEqual(
    frames(asker, "in", "ActionResponse").map((f) => [f.msg.success, f.msg.errorData?.code]),
    [[false, "UpstreamFailed"]],
  );

  checkReplyStream(sub.values, bot, text);
  // After a later write has reached the watcher, the half-written reply is
  // still there, still streaming, between the question and that write.
  assert.deepEqual(
    sub.latest().map((m) => [m._id === question ? "question" : m._id === barrier ? "later" : m.author, m.body, m.streaming]),
    [
      ["question", "what is new?", false],
      [bot, "one two ", true],
      ["later", "still there?", false],
    ],
  );
  // The failure cost the asker neither its socket nor its session.
  assert.deepEqual(asker.trace.filter((f) => f.dir === "close"), []);
});

test("action over HTTP: ConvexHttpClient.action streams to a socket subscriber, and a failure is a ConvexError", { timeout: TEST_MS }, async (t) => {
  const http = openHttpClient(server);
  const watcher = openClient(t, server);
  const channel = uniq("http-reply");
  const bot = uniq("http-bot");
  const sub = watch(watcher, fn.messagesList, { channel });
  await sub.waitFor((v) => Array.isArray(v) && v.length === 0, { timeoutMs: STEP_MS, label: "initial empty messages:list" });

  // An empty channel: nothing to reply to.
  const text = "over plain http";
  const result = await withTimeout(
    http.action(fn.messagesStreamReply, { channel, author: bot, text, tokenIntervalMs: TOKEN_MS }),
    STEP_MS,
    "messages:streamReply over HTTP",
  );
  assert.equal(typeof result.id, "string", fmt(result));
  assert.equal(result.inReplyTo, null, `inReplyTo in an empty channel: ${fmt(result)}`);
  assert.equal(result.tokens, 3, fmt(result));
  assert.deepEqual(http.responses.at(-1), { path: "/api/action", status: 200 });

  await sub.waitFor((v) => v.some((m) => m._id === result.id && !m.streaming), {
    timeoutMs: STEP_MS,
    label: "the HTTP action's finished reply at the socket watcher",
  });
  checkReplyStream(sub.values, bot, text);

  // A failing one: a ConvexError with its data, answered 200 as Convex does.
  const failing = uniq("http-failing");
  const outcome = await settle(
    http.action(fn.messagesStreamReply, { channel, author: failing, text: "a b c", failAfterTokens: 1 }),
    STEP_MS,
    "a failing messages:streamReply over HTTP",
  );
  assert.ok(outcome.error, `messages:streamReply with failAfterTokens succeeded over HTTP: ${fmt(outcome.value)}`);
  assert.equal(outcome.error.name, "ConvexError", `expected a ConvexError, got ${fmt(outcome.error)}`);
  assert.equal(errorCode(outcome.error), "UpstreamFailed", fmt(outcome.error));
  assert.equal(outcome.error.data.tokens, 1, fmt(outcome.error));
  assert.deepEqual(http.responses.at(-1), { path: "/api/action", status: 200 });

  // What it committed stays: the socket watcher and a later HTTP query see it.
  await sub.waitFor((v) => v.some((m) => m.author === failing && m.body === "a "), {
    timeoutMs: STEP_MS,
    label: "the failed action's partial reply at the watcher",
  });
  const read = await withTimeout(http.query(fn.messagesList, { channel }), STEP_MS, "messages:list over HTTP");
  assert.deepEqual(
    read.map((m) => [m.author, m.body, m.streaming]),
    [
      [bot, text, false],
      [failing, "a ", true],
    ],
  );
  checkReplyStream(sub.values, failing, "a b c");
});

/**
 * Two notifications scheduled back to back with `notifications:sendLater`,
 * `DELAY_MS` and `2 * DELAY_MS` ahead, while a `notifications:unread`
 * subscription records every push and when it arrived. The second is the
 * barrier: by the time it shows, the first has had `DELAY_MS` to run twice.
 */
async function scheduleTwo(t, srv) {
  const watcher = openClient(t, srv);
  const writer = openClient(t, srv);
  const user = uniq("user");
  const sub = watch(watcher, fn.notificationsUnread, { user });
  await sub.waitFor((v) => v && v.count === 0, { timeoutMs: STEP_MS, label: "initial notifications:unread" });

  const first = { title: "in 300 ms", delayMs: DELAY_MS };
  const second = { title: "in 600 ms", delayMs: 2 * DELAY_MS };
  for (const note of [first, second]) {
    note.sentAt = performance.now();
    note.job = await withTimeout(
      writer.mutation(fn.notificationsSendLater, { user, title: note.title, delayMs: note.delayMs }),
      STEP_MS,
      `notifications:sendLater ${note.title}`,
    );
    note.resolvedAt = performance.now();
  }
  await sub.waitFor((v) => v.items.some((i) => i.title === second.title), {
    timeoutMs: STEP_MS,
    label: `the notification scheduled ${second.delayMs} ms ahead`,
  });
  return { sub, notes: [first, second] };
}

/**
 * Every push consistent (`count` the number of items) and no title twice;
 * each notification first shown no sooner than its delay after its
 * `sendLater` was sent (its commit came after that), and shown in every push
 * from then on; the last push has both, once each.
 */
function checkScheduled({ sub, notes }) {
  const history = () =>
    sub.values
      .map((v, i) => `  +${(sub.times[i] - notes[0].sentAt).toFixed(1)} ms: ${fmt(v.items.map((x) => x.title))}`)
      .join("\n");
  const fail = (what) => assert.fail(`${what}\nnotifications:unread pushes (ms after the first sendLater was sent):\n${history()}`);
  for (const [i, v] of sub.values.entries()) {
    if (v.count !== v.items.length) fail(`push ${i}: count ${v.count} with ${v.items.length} items`);
    const titles = v.items.map((x) => x.title);
    if (new Set(titles).size !== titles.length) fail(`push ${i}: a scheduled notification shown more than once`);
  }
  const shownAt = notes.map((note) => sub.values.findIndex((v) => v.items.some((x) => x.title === note.title)));
  // Timing first: a notification shown early is the violation even when
  // another one has not been shown yet.
  for (const [n, note] of notes.entries()) {
    if (shownAt[n] < 0) continue;
    const afterSent = sub.times[shownAt[n]] - note.sentAt;
    const afterResolved = sub.times[shownAt[n]] - note.resolvedAt;
    if (afterSent < note.delayMs - CLOCK_SLACK_MS) {
      fail(
        `${JSON.stringify(note.title)} shown ${afterSent.toFixed(1)} ms after its sendLater was sent ` +
          `(${afterResolved.toFixed(1)} ms after it resolved), before its ${note.delayMs} ms delay`,
      );
    }
  }
  for (const [n, note] of notes.entries()) {
    if (shownAt[n] < 0) fail(`${JSON.stringify(note.title)} never shown`);
    const gone = sub.values.slice(shownAt[n]).findIndex((v) => !v.items.some((x) => x.title === note.title));
    if (gone >= 0) fail(`${JSON.stringify(note.title)} vanished in push ${shownAt[n] + gone}`);
  }
  const last = sub.latest();
  assert.deepEqual(
    last.items.map((x) => x.title).sort(),
    notes.map((n) => n.title).sort(),
    `the last notifications:unread: ${fmt(last)}`,
  );
  assert.equal(last.count, notes.length);
}

test("scheduled: sendLater's notification shows exactly once, not before its delay", { timeout: TEST_MS }, async (t) => {
  const run = await scheduleTwo(t, server);
  const [first, second] = run.notes;
  for (const note of run.notes) assert.equal(typeof note.job, "string", `sendLater returned ${fmt(note.job)}`);
  assert.notEqual(first.job, second.job);
  checkScheduled(run);
});

test("control: with --fault action-mutation-twice the watcher sees bodies that are not whole-token prefixes", { timeout: TEST_MS }, async (t) => {
  const faulty = await ownServer(t, ["--fault", "action-mutation-twice"]);
  const text = "one two three";
  const { sub, bot, outcome } = await streamOverSocket(t, faulty, { text });
  assert.ok(outcome.value, `streamReply failed: ${fmt(outcome.error)}`);
  assert.throws(() => checkReplyStream(sub.values, bot, text), /replies by|not a whole-token prefix/);
});

test("control: with --fault action-rollback the failed action's partial message vanishes", { timeout: TEST_MS }, async (t) => {
  const faulty = await ownServer(t, ["--fault", "action-rollback"]);
  const text = "one two three four";
  const { sub, bot, outcome } = await streamOverSocket(t, faulty, { text, failAfterTokens: 2 });
  assert.equal(errorCode(outcome.error), "UpstreamFailed", fmt(outcome.error ?? outcome.value));
  assert.throws(() => checkReplyStream(sub.values, bot, text), /vanished/);
  assert.deepEqual(sub.latest().filter((m) => m.author === bot), []);
});

test("control: with --fault scheduled-early the notification shows before its delay", { timeout: TEST_MS }, async (t) => {
  const faulty = await ownServer(t, ["--fault", "scheduled-early"]);
  const run = await scheduleTwo(t, faulty);
  assert.throws(() => checkScheduled(run), /before its \d+ ms delay/);
});

test("control: with --fault scheduled-twice the notification shows twice", { timeout: TEST_MS }, async (t) => {
  const faulty = await ownServer(t, ["--fault", "scheduled-twice"]);
  const run = await scheduleTwo(t, faulty);
  assert.throws(() => checkScheduled(run), /more than once/);
});
