// Negative controls: the runner must fail a script whose expectation the
// functions do not meet, or a green catalogue run proves nothing.
import type { JSONValue } from "convex/values";
import { describe, expect, test } from "vitest";
import { runScript, type Step } from "./runner";

const run = (steps: Step[]) => runScript({ name: "control", steps });

const row = (body: string) => ({
  _id: { $ref: "m" },
  _creationTime: { $any: "float64" },
  channel: "c",
  author: "a",
  body,
  streaming: false,
});
const send: Step = {
  mutation: "messages:send",
  args: { channel: "c", author: "a", body: "hi" },
  bind: "m",
};
const list = (returns: JSONValue[]): Step => ({
  query: "messages:list",
  args: { channel: "c" },
  returns,
});

describe("the runner", () => {
  test("passes a script the functions meet", async () => {
    await run([send, list([row("hi")])]);
  });

  test("fails the wrong body", async () => {
    await expect(run([send, list([row("bye")])])).rejects.toThrow(
      /step 2 .*result\[0\]\.body is "hi", expected "bye"/,
    );
  });

  test("fails an object with a field the pattern lacks", async () => {
    const { streaming: _, ...short } = row("hi");
    await expect(run([send, list([short])])).rejects.toThrow(/has extra `streaming`/);
  });

  test("fails an object without a field the pattern has", async () => {
    await expect(run([send, list([{ ...row("hi"), pinned: false }])])).rejects.toThrow(
      /lacks `pinned`/,
    );
  });

  test("fails an array of another length", async () => {
    await expect(run([send, list([row("hi"), row("hi")])])).rejects.toThrow(
      /has 1 items, expected 2/,
    );
  });

  test("fails an int64 pattern where the result is a float64", async () => {
    await expect(
      run([
        { mutation: "documents:create", args: { title: "t", content: "c" }, bind: "d" },
        {
          mutation: "documents:update",
          args: { id: { $ref: "d" }, content: "x", expectedVersion: 1 },
          returns: { $integer: "AgAAAAAAAAA=" },
        },
      ]),
    ).rejects.toThrow(/result is 2, expected/);
  });

  test("fails a value of another type than $any names", async () => {
    await expect(
      run([{ mutation: "counters:increment", args: { name: "c" }, returns: { $any: "float64" } }]),
    ).rejects.toThrow(/not any float64/);
  });

  test("tells -0 from 0", async () => {
    await expect(
      run([{ query: "values:echo", args: { value: 0 }, returns: { $float: "AAAAAAAAAIA=" } }]),
    ).rejects.toThrow(/result is 0, expected/);
  });

  test("fails an error with another code than `fails` names", async () => {
    await expect(
      run([
        {
          mutation: "messages:send",
          args: { channel: "c", author: "a", body: "" },
          fails: { code: "TooLong" },
        },
      ]),
    ).rejects.toThrow(/errorData\.code is "EmptyMessage", expected "TooLong"/);
  });

  test("fails a call that succeeds where `fails` expects an error", async () => {
    await expect(run([{ ...send, fails: { code: "EmptyMessage" } }])).rejects.toThrow(
      /but the call returned/,
    );
  });

  test("fails a user error where the call must succeed", async () => {
    await expect(
      run([
        {
          query: "messages:list",
          args: { channel: "c", limit: -1 },
          rejectsArguments: false,
          returns: [],
        },
      ]),
    ).rejects.toThrow(/expected the call to succeed, got a user error/);
  });

  test("fails a user error where `rejectsArguments` expects the validators to refuse", async () => {
    await expect(
      run([
        {
          mutation: "messages:send",
          args: { channel: "c", author: "a", body: "" },
          rejectsArguments: true,
        },
      ]),
    ).rejects.toThrow(/expected an argument validation error/);
  });

  test("does not run a scheduled function before its time", async () => {
    await expect(
      run([
        { mutation: "notifications:sendLater", args: { user: "u", title: "t", delayMs: 5000 } },
        { advance: 4000 },
        {
          query: "notifications:unread",
          args: { user: "u" },
          returns: { count: 1, items: [{ _id: { $any: "string" }, title: "t" }] },
        },
      ]),
    ).rejects.toThrow(/result\.count is 0, expected 1/);
  });

  test("refuses an internal function, as a client is refused", async () => {
    await expect(
      run([{ mutation: "presence:expire", args: { room: "r", user: "u" } }]),
    ).rejects.toThrow(/Could not find public function/);
  });
});
