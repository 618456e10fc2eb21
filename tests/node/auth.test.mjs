// Verified identity through the official npm clients: `ConvexClient.setAuth`
// (the `Authenticate` frame) and `ConvexHttpClient.setAuth` (the
// `Authorization: Bearer` header) with HS256 tokens minted here, against
// `syncspec serve --auth-secret S`. Functions see the token's identity
// (`users:me`, `messages:sendAsMe`), a query that depends on it re-runs when
// it changes (`notifications:mine`), and a token signed with another secret
// is refused on both paths.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";

import {
  startServer,
  openClient,
  openHttpClient,
  watch,
  withTimeout,
  uniq,
  fmt,
  frames,
  traceTail,
  errorCode,
  mintHs256,
  tokenFor,
  ISSUER,
  fn,
} from "./lib/harness.mjs";

const STEP_MS = 10_000;
const TEST_MS = 40_000;
const SECRET = randomBytes(24).toString("hex");

let server;

before(async () => {
  server = await startServer({ args: ["--auth-secret", SECRET] });
});

after(async () => {
  await server?.stop();
});

/**
 * Calls `client.setAuth` with a constant token and returns a promise of the
 * first `onChange` report (true: the server confirmed it; false: refused),
 * plus every report so far in `changes`.
 */
function setAuth(client, token) {
  const changes = [];
  let report;
  const first = new Promise((resolve) => {
    report = resolve;
  });
  client.setAuth(
    async () => token,
    (isAuthenticated) => {
      changes.push(isAuthenticated);
      report(isAuthenticated);
    },
  );
  return {
    changes,
    first: withTimeout(first, STEP_MS, "the client's setAuth onChange report", () => traceTail(client)),
  };
}

/** The identity `users:me` must return for a token from `tokenFor`. */
function identity(sub, name) {
  const me = { subject: sub, issuer: ISSUER, tokenIdentifier: `${ISSUER}|${sub}` };
  if (name !== undefined) me.name = name;
  return me;
}

async function rejection(promise, label) {
  return withTimeout(
    promise.then(
      (value) => assert.fail(`${label} succeeded with ${fmt(value)}`),
      (e) => e,
    ),
    STEP_MS,
    label,
  );
}

test("setAuth: users:me and messages:sendAsMe see the token's identity", { timeout: TEST_MS }, async (t) => {
  const client = openClient(t, server);
  const sub = uniq("alice");
  const channel = uniq("as-me");
  const me = watch(client, fn.usersMe, {});
  await me.waitFor((v) => v === null, { timeoutMs: STEP_MS, label: "users:me is null before setAuth" });

  const anonymous = await rejection(
    client.mutation(fn.messagesSendAsMe, { channel, body: "who am I" }),
    "messages:sendAsMe without an identity",
  );
  assert.equal(errorCode(anonymous), "Unauthenticated", fmt(anonymous));

  const auth = setAuth(client, tokenFor(SECRET, sub, { name: "Alice" }));
  const seen = await me.waitFor((v) => v !== null, { timeoutMs: STEP_MS, label: "users:me after setAuth" });
  assert.deepEqual(seen, identity(sub, "Alice"), `users:me after setAuth: ${fmt(seen)}`);
  assert.equal(await auth.first, true, `onChange reports: ${fmt(auth.changes)}`);

  const id = await withTimeout(
    client.mutation(fn.messagesSendAsMe, { channel, body: "signed" }),
    STEP_MS,
    "messages:sendAsMe",
  );
  const list = await withTimeout(client.query(fn.messagesList, { channel }), STEP_MS, "messages:list");
  assert.deepEqual(
    list.map((m) => [m._id, m.author, m.body]),
    [[id, "Alice", "signed"]],
    `messages:sendAsMe must sign with the token's name: ${fmt(list)}`,
  );

  // A token without a name: the author is the subject.
  const other = openClient(t, server);
  const bare = uniq("bob");
  const bareAuth = setAuth(other, tokenFor(SECRET, bare));
  assert.equal(await bareAuth.first, true, `onChange reports: ${fmt(bareAuth.changes)}`);
  await withTimeout(other.mutation(fn.messagesSendAsMe, { channel, body: "bare" }), STEP_MS, "sendAsMe, no name");
  const after = await withTimeout(other.query(fn.messagesList, { channel }), STEP_MS, "messages:list");
  assert.deepEqual(
    after.map((m) => m.author),
    ["Alice", bare],
    `without a name claim the author must be the subject: ${fmt(after)}`,
  );
  assert.deepEqual(await withTimeout(other.query(fn.usersMe, {}), STEP_MS, "users:me"), identity(bare));
});

test("setAuth: notifications:mine re-runs when the identity changes", { timeout: TEST_MS }, async (t) => {
  const client = openClient(t, server);
  const writer = openClient(t, server);
  const [alice, bob] = [uniq("alice"), uniq("bob")];
  for (const [user, title] of [
    [alice, "for alice"],
    [bob, "for bob 1"],
    [bob, "for bob 2"],
  ]) {
    await withTimeout(writer.mutation(fn.notificationsSend, { user, title }), STEP_MS, "notifications:send");
  }
  const titles = (v) => v.items.map((i) => i.title).sort();

  const mine = watch(client, fn.notificationsMine, {});
  const anonymous = await mine.waitFor((v) => v !== undefined, {
    timeoutMs: STEP_MS,
    label: "notifications:mine before setAuth",
  });
  assert.deepEqual(anonymous, { count: 0, items: [] });

  setAuth(client, tokenFor(SECRET, alice));
  const asAlice = await mine.waitFor((v) => v.count !== 0, {
    timeoutMs: STEP_MS,
    label: "notifications:mine as alice",
  });
  assert.deepEqual([asAlice.count, titles(asAlice)], [1, ["for alice"]], fmt(asAlice));

  // Same query, same arguments: only the identity changed, so only the
  // server re-running it can bring bob's notifications.
  setAuth(client, tokenFor(SECRET, bob));
  const asBob = await mine.waitFor((v) => v.count === 2, {
    timeoutMs: STEP_MS,
    label: "notifications:mine re-run as bob",
  });
  assert.deepEqual(titles(asBob), ["for bob 1", "for bob 2"], fmt(asBob));

  // And the subscription is live under the new identity.
  await withTimeout(writer.mutation(fn.notificationsSend, { user: bob, title: "for bob 3" }), STEP_MS, "send");
  const later = await mine.waitFor((v) => v.count === 3, { timeoutMs: STEP_MS, label: "bob's third notification" });
  assert.deepEqual(titles(later), ["for bob 1", "for bob 2", "for bob 3"]);
});

test("setAuth: a token signed with another secret is refused", { timeout: TEST_MS }, async (t) => {
  const client = openClient(t, server);
  const sub = uniq("mallory");
  const me = watch(client, fn.usersMe, {});
  await me.waitFor((v) => v === null, { timeoutMs: STEP_MS, label: "users:me is null before setAuth" });

  const auth = setAuth(client, tokenFor("not-the-server-secret", sub, { name: "Mallory" }));
  assert.equal(await auth.first, false, `a forged token was accepted; onChange reports: ${fmt(auth.changes)}`);
  assert.ok(
    frames(client, "in", "AuthError").length >= 1,
    `the server sent no AuthError for a forged token\n${traceTail(client)}`,
  );

  // The client carries on without an identity.
  const now = await withTimeout(client.query(fn.usersMe, {}), STEP_MS, "users:me after the refusal");
  assert.equal(now, null, `users:me after a refused token: ${fmt(now)}`);
  assert.ok(
    me.values.every((v) => v === null),
    `users:me pushed a forged identity: ${fmt(me.values)}`,
  );
  assert.ok(!auth.changes.includes(true), `onChange reports: ${fmt(auth.changes)}`);
});

test("ConvexHttpClient.setAuth: the bearer token's identity, and a forged one refused with 401", { timeout: TEST_MS }, async () => {
  const http = openHttpClient(server);
  const sub = uniq("carol");
  const channel = uniq("http-as-me");

  assert.equal(await withTimeout(http.query(fn.usersMe, {}), STEP_MS, "users:me without auth"), null);

  http.setAuth(tokenFor(SECRET, sub, { name: "Carol" }));
  const me = await withTimeout(http.query(fn.usersMe, {}), STEP_MS, "users:me with auth");
  assert.deepEqual(me, identity(sub, "Carol"), `users:me over HTTP: ${fmt(me)}`);
  const id = await withTimeout(
    http.mutation(fn.messagesSendAsMe, { channel, body: "by bearer" }),
    STEP_MS,
    "messages:sendAsMe over HTTP",
  );
  const list = await withTimeout(http.query(fn.messagesList, { channel }), STEP_MS, "messages:list");
  assert.deepEqual(list.map((m) => [m._id, m.author]), [[id, "Carol"]], fmt(list));

  http.clearAuth();
  const anonymous = await rejection(
    http.mutation(fn.messagesSendAsMe, { channel, body: "nobody" }),
    "messages:sendAsMe over HTTP without auth",
  );
  assert.equal(errorCode(anonymous), "Unauthenticated", fmt(anonymous));
  assert.deepEqual(http.responses.at(-1), { path: "/api/mutation", status: 200 });

  http.setAuth(tokenFor("not-the-server-secret", sub, { name: "Carol" }));
  const forged = await rejection(http.query(fn.usersMe, {}), "users:me with a forged token");
  assert.notEqual(forged.name, "ConvexError", fmt(forged));
  assert.deepEqual(http.responses.at(-1), { path: "/api/query", status: 401 });

  // `alg: none` with no signature is no better.
  const now = Math.floor(Date.now() / 1000);
  const unsigned = [
    Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url"),
    Buffer.from(JSON.stringify({ sub, iss: ISSUER, iat: now, exp: now + 3600 })).toString("base64url"),
    "",
  ].join(".");
  http.setAuth(unsigned);
  await rejection(http.query(fn.usersMe, {}), "users:me with an alg:none token");
  assert.deepEqual(http.responses.at(-1), { path: "/api/query", status: 401 });

  // An expired token, correctly signed, is refused too.
  http.setAuth(mintHs256(SECRET, { sub, iss: ISSUER, iat: now - 7200, exp: now - 3600 }));
  await rejection(http.query(fn.usersMe, {}), "users:me with an expired token");
  assert.deepEqual(http.responses.at(-1), { path: "/api/query", status: 401 });
});
