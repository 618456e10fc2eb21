// Shared helpers for the npm-client conformance tests: start and stop a
// syncspec reference server, open official `ConvexClient`s against it (with a
// frame-recording WebSocket so failures can show what went over the wire) and
// official `ConvexHttpClient`s (with a fetch that records every status), mint
// HS256 tokens the server trusts, record subscription pushes, and wait for
// conditions with deadlines.

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createHmac, randomBytes } from "node:crypto";

import WebSocket from "ws";
import { ConvexClient, ConvexHttpClient } from "convex/browser";
import { makeFunctionReference } from "convex/server";

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** tests/node */
const NODE_TESTS_DIR = path.resolve(HERE, "..");

const VERBOSE = !!process.env.SYNCSPEC_VERBOSE;

// ---------------------------------------------------------------------------
// Function references (called by name, no codegen).

export const fn = {
  messagesSend: makeFunctionReference("messages:send"),
  messagesList: makeFunctionReference("messages:list"),
  messagesPage: makeFunctionReference("messages:page"),
  messagesRemove: makeFunctionReference("messages:remove"),
  countersIncrement: makeFunctionReference("counters:increment"),
  countersGet: makeFunctionReference("counters:get"),
  valuesEcho: makeFunctionReference("values:echo"),
  cursorsMove: makeFunctionReference("cursors:move"),
  accountsOpen: makeFunctionReference("accounts:open"),
  accountsTransfer: makeFunctionReference("accounts:transfer"),
  accountsBalances: makeFunctionReference("accounts:balances"),
  usersMe: makeFunctionReference("users:me"),
  messagesSendAsMe: makeFunctionReference("messages:sendAsMe"),
  notificationsSend: makeFunctionReference("notifications:send"),
  notificationsMine: makeFunctionReference("notifications:mine"),
  notificationsSendLater: makeFunctionReference("notifications:sendLater"),
  notificationsUnread: makeFunctionReference("notifications:unread"),
  messagesStreamReply: makeFunctionReference("messages:streamReply"),
};

// ---------------------------------------------------------------------------
// Small utilities.

/** A fresh name for one test's data, so tests never share rows. */
export function uniq(prefix) {
  return `${prefix}-${randomBytes(6).toString("hex")}`;
}

/** Renders Convex values (bigint, ArrayBuffer, NaN, -0, ...) readably. */
export function fmt(value) {
  const seen = new WeakSet();
  const walk = (v) => {
    if (typeof v === "bigint") return `${v}n`;
    if (typeof v === "number") {
      if (Object.is(v, -0)) return "-0";
      if (!Number.isFinite(v)) return String(v);
      return v;
    }
    if (v instanceof ArrayBuffer) return `ArrayBuffer(${Buffer.from(v).toString("hex")})`;
    if (v instanceof Error) {
      return { error: v.name, message: v.message, data: walk(v.data) };
    }
    if (v === undefined) return "undefined";
    if (v !== null && typeof v === "object") {
      if (seen.has(v)) return "[cycle]";
      seen.add(v);
      if (Array.isArray(v)) return v.map(walk);
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    }
    return v;
  };
  const out = walk(value);
  return typeof out === "string" ? out : JSON.stringify(out);
}

/** Rejects with a descriptive error if `promise` does not settle within `ms`. */
export function withTimeout(promise, ms, label, describe = () => "") {
  // The race observes the outcome; this only keeps a late rejection (after the
  // deadline already failed the test) from being reported a second time.
  Promise.resolve(promise).catch(() => {});
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => {
      const extra = describe();
      reject(new Error(`timed out after ${ms} ms: ${label}${extra ? `\n${extra}` : ""}`));
    }, ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A small seeded PRNG (mulberry32) so random workloads can be replayed. */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Resolves after `ms`: only for letting time pass, never to wait for a condition. */
export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The `errorData.code` of a ConvexError, or undefined for anything else. */
export function errorCode(err) {
  return err && err.name === "ConvexError" && err.data && typeof err.data === "object"
    ? err.data.code
    : undefined;
}

// ---------------------------------------------------------------------------
// The server process.

function serverBinary() {
  const fromEnv = process.env.SYNCSPEC_BIN;
  const bin = fromEnv
    ? path.resolve(process.cwd(), fromEnv)
    : path.resolve(NODE_TESTS_DIR, "../../target/debug/syncspec");
  if (!existsSync(bin)) {
    throw new Error(
      `syncspec binary not found at ${bin}.\n` +
        `Build it with \`cargo build -p syncspec\` at the workspace root, ` +
        `or point SYNCSPEC_BIN at a built binary (e.g. target/release/syncspec).`,
    );
  }
  return bin;
}

const liveServers = new Set();
process.on("exit", () => {
  for (const child of liveServers) {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
});

/**
 * Spawns `syncspec serve --listen 127.0.0.1:0 --test-hooks` (plus `args`, for
 * example `["--auth-secret", S]`) and waits for its `listening on http://...`
 * line.
 */
export async function startServer({ startTimeoutMs = 20_000, args = [] } = {}) {
  const bin = serverBinary();
  const child = spawn(bin, ["serve", "--listen", "127.0.0.1:0", "--test-hooks", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env },
  });
  liveServers.add(child);

  // Keep a bounded tail of the server's output for diagnostics.
  let tail = "";
  const keep = (chunk) => {
    tail = (tail + chunk.toString()).slice(-8000);
    if (VERBOSE) process.stderr.write(`[server] ${chunk}`);
  };
  child.stderr.on("data", keep);

  let exited = null;
  const exitPromise = new Promise((resolve) => {
    child.on("exit", (code, signal) => {
      exited = { code, signal };
      liveServers.delete(child);
      resolve(exited);
    });
  });

  const url = await withTimeout(
    new Promise((resolve, reject) => {
      let buf = "";
      let found = false;
      child.stdout.on("data", (chunk) => {
        keep(chunk);
        if (found) return;
        buf += chunk.toString();
        const nl = buf.indexOf("\n");
        if (nl === -1) return;
        found = true;
        const first = buf.slice(0, nl).trim();
        const m = /^listening on (http:\/\/[^\s/]+)$/.exec(first);
        if (m) resolve(m[1]);
        else reject(new Error(`unexpected first stdout line from syncspec serve: ${JSON.stringify(first)}`));
      });
      child.on("error", reject);
      exitPromise.then((e) =>
        reject(new Error(`syncspec serve exited before listening (${fmt(e)})\n${tail}`)),
      );
    }),
    startTimeoutMs,
    "syncspec serve did not print its `listening on` line",
    () => tail,
  ).catch((err) => {
    child.kill("SIGKILL");
    throw err;
  });

  const { port } = new URL(url);

  return {
    url,
    port: Number(port),
    child,
    stderrTail: () => tail,
    /** Sends one test-hook command and returns its JSON reply. */
    control: (message) => control(url, message),
    /** The `Stats` hook: `{opened, open}` sync sockets (since start, now). */
    stats: () => control(url, { type: "Stats" }),
    /** Stops the server; throws if it had died on its own. */
    async stop() {
      const diedEarly = exited;
      if (!exited) {
        child.kill("SIGTERM");
        const graceful = await Promise.race([
          exitPromise,
          new Promise((r) => setTimeout(() => r(null), 5000).unref()),
        ]);
        if (!graceful) {
          child.kill("SIGKILL");
          await exitPromise;
        }
      }
      if (diedEarly) {
        throw new Error(`syncspec server died during the tests (${fmt(diedEarly)})\n${tail}`);
      }
    },
  };
}

/** One request/reply on the test-hook control socket. */
async function control(url, message, timeoutMs = 5000) {
  const wsUrl = url.replace(/^http/, "ws") + "/_syncspec/control";
  const ws = new WebSocket(wsUrl);
  try {
    return await withTimeout(
      new Promise((resolve, reject) => {
        ws.once("error", reject);
        ws.once("unexpected-response", (_req, res) =>
          reject(new Error(`control socket upgrade refused: HTTP ${res.statusCode}`)),
        );
        ws.once("close", (code, reason) =>
          reject(new Error(`control socket closed before replying (${code} ${reason})`)),
        );
        ws.once("open", () => ws.send(JSON.stringify(message)));
        ws.once("message", (data) => {
          try {
            const reply = JSON.parse(data.toString());
            if (reply && reply.ok === true) resolve(reply);
            else reject(new Error(`control ${JSON.stringify(message)} failed: ${data}`));
          } catch (e) {
            reject(new Error(`control reply is not JSON: ${data} (${e.message})`));
          }
        });
      }),
      timeoutMs,
      `control ${JSON.stringify(message)}`,
    );
  } finally {
    ws.removeAllListeners();
    ws.on("error", () => {});
    ws.terminate();
  }
}

// ---------------------------------------------------------------------------
// Tokens.

/** The issuer of every token these tests mint. */
export const ISSUER = "https://syncspec-node-tests.invalid";

function base64url(data) {
  return Buffer.from(data).toString("base64url");
}

/**
 * An HS256 JWT over `claims`, signed with `secret` (what `syncspec serve
 * --auth-secret` verifies). Built with node:crypto's HMAC, no JWT library.
 */
export function mintHs256(secret, claims) {
  const header = base64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const payload = base64url(JSON.stringify(claims));
  const signature = createHmac("sha256", secret).update(`${header}.${payload}`).digest("base64url");
  return `${header}.${payload}.${signature}`;
}

/** A token for `sub` (with `name` if given), valid for an hour from now. */
export function tokenFor(secret, sub, { name, iss = ISSUER } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub, iss, iat: now, exp: now + 3600 };
  if (name !== undefined) claims.name = name;
  return mintHs256(secret, claims);
}

// ---------------------------------------------------------------------------
// Clients.

/**
 * A `ws` WebSocket subclass that records every frame into `trace`:
 * `{socket, dir: "open"|"out"|"in"|"close", msg?, code?, reason?}`.
 */
function tracingWebSocket(trace) {
  let sockets = 0;
  return class TracingWebSocket extends WebSocket {
    constructor(...args) {
      super(...args);
      const socket = ++sockets;
      this._syncspecSocket = socket;
      trace.push({ socket, dir: "open", url: String(args[0]) });
      this.addEventListener("message", (ev) => {
        trace.push({ socket, dir: "in", msg: parseFrame(ev.data) });
      });
      this.addEventListener("close", (ev) => {
        trace.push({ socket, dir: "close", code: ev.code, reason: ev.reason });
      });
    }
    send(data, ...rest) {
      trace.push({ socket: this._syncspecSocket, dir: "out", msg: parseFrame(data) });
      return super.send(data, ...rest);
    }
  };
}

function parseFrame(data) {
  const text = typeof data === "string" ? data : Buffer.from(data).toString();
  try {
    return JSON.parse(text);
  } catch {
    return { unparsable: text };
  }
}

/**
 * Opens an official `ConvexClient` to the server and closes it when the test
 * ends. `client.trace` holds the frames, `client.logs` the client's log lines.
 */
export function openClient(t, server) {
  const trace = [];
  const logs = [];
  const record = (level) => (...args) => {
    const line = args.map((a) => (typeof a === "string" ? a : fmt(a))).join(" ");
    logs.push(`${level}: ${line}`);
    if (logs.length > 500) logs.shift();
    if (VERBOSE) console.error(`[client ${level}] ${line}`);
  };
  const client = new ConvexClient(server.url, {
    webSocketConstructor: tracingWebSocket(trace),
    logger: {
      logVerbose: record("verbose"),
      log: record("log"),
      warn: record("warn"),
      error: record("error"),
    },
  });
  client.trace = trace;
  client.logs = logs;
  t.after(() => client.close());
  return client;
}

/**
 * Opens an official `ConvexHttpClient` to the server. Its fetch records every
 * response as `{path, status}` in `client.responses`, so a test can see the
 * HTTP status behind what the client made of it.
 */
export function openHttpClient(server) {
  const responses = [];
  const recordingFetch = async (url, init) => {
    const response = await fetch(url, init);
    responses.push({ path: new URL(String(url)).pathname, status: response.status });
    return response;
  };
  const client = new ConvexHttpClient(server.url, { logger: false, fetch: recordingFetch });
  client.responses = responses;
  return client;
}

/** The client's last `n` frames, one per line, for failure messages. */
export function traceTail(client, n = 12) {
  return client.trace
    .slice(-n)
    .map((f) => {
      const body = f.msg
        ? JSON.stringify(f.msg)
        : f.dir === "open"
          ? f.url
          : `code ${f.code}${f.reason ? ` reason ${JSON.stringify(f.reason)}` : ""}`;
      return `  socket ${f.socket} ${f.dir}: ${body.length > 400 ? `${body.slice(0, 400)}...` : body}`;
    })
    .join("\n");
}

/** The frames a client sent (`dir` "out") or got ("in") of one message type. */
export function frames(client, dir, type) {
  return client.trace.filter((f) => f.dir === dir && f.msg && f.msg.type === type);
}

// ---------------------------------------------------------------------------
// Subscriptions.

/**
 * Subscribes with `client.onUpdate` and records every pushed value, and in
 * `times` when it arrived (`performance.now()`, milliseconds).
 * `waitFor(pred)` resolves with the first recorded-or-future value that
 * satisfies `pred`, checking the latest value and every later push.
 */
export function watch(client, ref, args) {
  const values = [];
  const times = [];
  const errors = [];
  const waiters = new Set();
  const unsubscribe = client.onUpdate(
    ref,
    args,
    (value) => {
      values.push(value);
      times.push(performance.now());
      for (const w of [...waiters]) {
        let ok = false;
        try {
          ok = w.pred(value);
        } catch (e) {
          waiters.delete(w);
          w.reject(e);
          continue;
        }
        if (ok) {
          waiters.delete(w);
          w.resolve(value);
        }
      }
    },
    (err) => {
      errors.push(err);
      for (const w of [...waiters]) {
        waiters.delete(w);
        w.reject(new Error(`subscription failed: ${fmt(err)}`));
      }
    },
  );
  return {
    values,
    times,
    errors,
    unsubscribe,
    latest: () => values[values.length - 1],
    waitFor(pred, { timeoutMs = 10_000, label = "subscription condition" } = {}) {
      if (errors.length) {
        return Promise.reject(new Error(`subscription failed: ${fmt(errors[0])}`));
      }
      if (values.length && pred(values[values.length - 1])) {
        return Promise.resolve(values[values.length - 1]);
      }
      let waiter;
      const p = new Promise((resolve, reject) => {
        waiter = { pred, resolve, reject };
        waiters.add(waiter);
      });
      return withTimeout(p, timeoutMs, label, () =>
        [
          `pushes so far: ${values.length}, latest: ${fmt(values[values.length - 1])}`,
          `last frames:\n${traceTail(client)}`,
        ].join("\n"),
      ).finally(() => waiters.delete(waiter));
    },
  };
}
