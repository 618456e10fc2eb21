import { paginationOptsValidator } from "convex/server";
import { v } from "convex/values";
import { api } from "./_generated/api";
import type { Id } from "./_generated/dataModel";
import { action, mutation, query, type MutationCtx, type QueryCtx } from "./_generated/server";
import { invalid, userError } from "./errors";

/** The longest message body, in characters. */
const MAX_BODY_CHARS = 4096;
/** `messages:list`'s default limit; ten times it is the most it returns. */
const DEFAULT_LIST_LIMIT = 100;
/** The most messages one page without an end holds. */
const MAX_PAGE_ITEMS = 1000;
/** The longest pause between two tokens of `messages:streamReply`. */
const MAX_TOKEN_INTERVAL_MS = 10_000;
/** The most tokens one `messages:streamReply` writes. */
const MAX_REPLY_TOKENS = 4096;

// Unicode White_Space, which is what the catalogue trims (`String.trim` also
// strips U+FEFF and keeps U+0085).
const SPACE = "[\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";
const EDGE_SPACE = new RegExp(`^${SPACE}+|${SPACE}+$`, "g");

async function insertMessage(ctx: MutationCtx, channel: string, author: string, rawBody: string) {
  const body = rawBody.replace(EDGE_SPACE, "");
  if (body === "") {
    throw userError("EmptyMessage", "message body is empty after trimming");
  }
  const chars = [...body].length;
  if (chars > MAX_BODY_CHARS) {
    throw userError(
      "TooLong",
      `message body of ${chars} characters is over the ${MAX_BODY_CHARS} limit`,
    );
  }
  return await ctx.db.insert("messages", { channel, author, body, streaming: false });
}

async function getMessage(ctx: QueryCtx, id: string) {
  const messageId = ctx.db.normalizeId("messages", id);
  const message = messageId === null ? null : await ctx.db.get("messages", messageId);
  if (message === null) {
    throw userError("NotFound", `no message ${JSON.stringify(id)}`);
  }
  return message;
}

export const send = mutation({
  args: { channel: v.string(), author: v.string(), body: v.string() },
  handler: async (ctx, { channel, author, body }) => {
    return await insertMessage(ctx, channel, author, body);
  },
});

export const sendAsMe = mutation({
  args: { channel: v.string(), body: v.string() },
  handler: async (ctx, { channel, body }) => {
    const me = await ctx.auth.getUserIdentity();
    if (me === null) {
      throw userError("Unauthenticated", "messages:sendAsMe needs a signed-in caller");
    }
    return await insertMessage(ctx, channel, me.name ?? me.subject, body);
  },
});

export const list = query({
  args: { channel: v.string(), limit: v.optional(v.number()) },
  handler: async (ctx, { channel, limit = DEFAULT_LIST_LIMIT }) => {
    if (!Number.isFinite(limit) || limit < 0) {
      throw invalid("limit", `expected a non-negative number, got ${limit}`);
    }
    const newest = await ctx.db
      .query("messages")
      .withIndex("by_channel", (q) => q.eq("channel", channel))
      .order("desc")
      .take(Math.min(Math.trunc(limit), DEFAULT_LIST_LIMIT * 10));
    return newest.reverse();
  },
});

export const page = query({
  args: { channel: v.string(), paginationOpts: paginationOptsValidator },
  handler: async (ctx, { channel, paginationOpts }) => {
    const { numItems, cursor, endCursor } = paginationOpts;
    if (!Number.isInteger(numItems) || numItems < 1) {
      throw invalid(
        "paginationOpts",
        "expected `paginationOpts.numItems` to be a whole number of at least 1",
      );
    }
    let result;
    try {
      result = await ctx.db
        .query("messages")
        .withIndex("by_channel", (q) => q.eq("channel", channel))
        .order("desc")
        .paginate({ ...paginationOpts, numItems: Math.min(numItems, MAX_PAGE_ITEMS) });
    } catch (error) {
      // Convex fails a cursor it cannot read with a plain error; the catalogue
      // names it.
      if (cursor !== null || (endCursor ?? null) !== null) {
        throw userError("InvalidCursor", `not a cursor this deployment handed out: ${error}`);
      }
      throw error;
    }
    // Convex also reports `pageStatus` and a null `splitCursor`; the catalogue
    // has `splitCursor` only when there is one.
    const { page, isDone, continueCursor, splitCursor } = result;
    return splitCursor
      ? { page, isDone, continueCursor, splitCursor }
      : { page, isDone, continueCursor };
  },
});

export const remove = mutation({
  args: { id: v.string() },
  handler: async (ctx, { id }) => {
    const message = await getMessage(ctx, id);
    await ctx.db.delete("messages", message._id);
    return null;
  },
});

export const startStream = mutation({
  args: { channel: v.string(), author: v.string() },
  handler: async (ctx, { channel, author }) => {
    return await ctx.db.insert("messages", { channel, author, body: "", streaming: true });
  },
});

export const appendToken = mutation({
  args: { id: v.string(), token: v.string() },
  handler: async (ctx, { id, token }) => {
    const message = await getMessage(ctx, id);
    if (!message.streaming) {
      throw userError("StreamFinished", "the stream is finished");
    }
    await ctx.db.patch("messages", message._id, { body: message.body + token });
    return null;
  },
});

export const finishStream = mutation({
  args: { id: v.string() },
  handler: async (ctx, { id }) => {
    const message = await getMessage(ctx, id);
    await ctx.db.patch("messages", message._id, { streaming: false });
    return null;
  },
});

/** `text` cut after each space, the spaces kept: "a b" is ["a ", "b"]. */
function tokensOf(text: string): string[] {
  return text.match(/[^ ]* |[^ ]+$/g) ?? [];
}

export const streamReply = action({
  args: {
    channel: v.string(),
    author: v.string(),
    text: v.string(),
    tokenIntervalMs: v.optional(v.number()),
    failAfterTokens: v.optional(v.number()),
  },
  handler: async (
    ctx,
    { channel, author, text, tokenIntervalMs = 0, failAfterTokens },
  ): Promise<{ id: Id<"messages">; inReplyTo: Id<"messages"> | null; tokens: number }> => {
    const started = Date.now();
    const tokens = tokensOf(text);
    if (tokens.length > MAX_REPLY_TOKENS) {
      throw invalid(
        "text",
        `a reply of ${tokens.length} tokens is over the ${MAX_REPLY_TOKENS} limit`,
      );
    }
    if (!(tokenIntervalMs >= 0 && tokenIntervalMs <= MAX_TOKEN_INTERVAL_MS)) {
      throw invalid(
        "tokenIntervalMs",
        `expected milliseconds from 0 to ${MAX_TOKEN_INTERVAL_MS}, got ${tokenIntervalMs}`,
      );
    }
    if (
      failAfterTokens !== undefined &&
      !(failAfterTokens >= 0 && Number.isInteger(failAfterTokens) && failAfterTokens < 1e9)
    ) {
      throw invalid("failAfterTokens", `expected a whole number, got ${failAfterTokens}`);
    }

    const latest = await ctx.runQuery(api.messages.list, { channel, limit: 1 });
    const inReplyTo = latest.at(-1)?._id ?? null;
    const id = await ctx.runMutation(api.messages.startStream, { channel, author });
    for (let sent = 0; ; sent++) {
      if (failAfterTokens !== undefined && sent >= failAfterTokens) {
        throw userError("UpstreamFailed", `the reply's source failed after ${sent} tokens`, {
          tokens: sent,
        });
      }
      if (sent === tokens.length) {
        break;
      }
      if (sent > 0 && tokenIntervalMs > 0) {
        // Token k is due k intervals after the start, however long each
        // commit took.
        const wait = started + sent * tokenIntervalMs - Date.now();
        if (wait > 0) {
          await new Promise((resolve) => setTimeout(resolve, wait));
        }
      }
      await ctx.runMutation(api.messages.appendToken, { id, token: tokens[sent] });
    }
    await ctx.runMutation(api.messages.finishStream, { id });
    return { id, inReplyTo, tokens: tokens.length };
  },
});
