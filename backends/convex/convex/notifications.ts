import { v } from "convex/values";
import { api } from "./_generated/api";
import type { Id } from "./_generated/dataModel";
import { mutation, query, type QueryCtx } from "./_generated/server";
import { invalid, userError } from "./errors";

/** The most unread notifications an inbox holds before `sendLater` refuses. */
const MAX_UNREAD = 100;
/** The longest `sendLater` delay: a year, in milliseconds. */
const MAX_DELAY_MS = 366 * 24 * 3600 * 1000;

function unreadOf(ctx: QueryCtx, user: string) {
  return ctx.db
    .query("notifications")
    .withIndex("by_user_read", (q) => q.eq("user", user).eq("read", false));
}

async function inbox(ctx: QueryCtx, user: string) {
  const unread = await unreadOf(ctx, user).collect();
  const items = unread.map(({ _id, title }) => ({ _id, title }));
  return { count: items.length, items };
}

export const send = mutation({
  args: { user: v.string(), title: v.string() },
  handler: async (ctx, { user, title }) => {
    return await ctx.db.insert("notifications", { user, title, read: false });
  },
});

export const sendLater = mutation({
  args: { user: v.string(), title: v.string(), delayMs: v.number() },
  handler: async (ctx, { user, title, delayMs }): Promise<Id<"_scheduled_functions">> => {
    if (!(delayMs >= 0 && delayMs <= MAX_DELAY_MS)) {
      throw invalid("delayMs", `expected milliseconds from 0 to ${MAX_DELAY_MS}, got ${delayMs}`);
    }
    // Scheduled before the inbox check: a refusal rolls the schedule back
    // with the rest of the transaction.
    const job = await ctx.scheduler.runAfter(delayMs, api.notifications.send, { user, title });
    const unread = await unreadOf(ctx, user).take(MAX_UNREAD);
    if (unread.length >= MAX_UNREAD) {
      throw userError(
        "InboxFull",
        `${JSON.stringify(user)} has ${unread.length} unread notifications, the most an inbox holds`,
      );
    }
    return job;
  },
});

export const markAllRead = mutation({
  args: { user: v.string() },
  handler: async (ctx, { user }) => {
    const unread = await unreadOf(ctx, user).collect();
    for (const notification of unread) {
      await ctx.db.patch("notifications", notification._id, { read: true });
    }
    return unread.length;
  },
});

export const unread = query({
  args: { user: v.string() },
  handler: async (ctx, { user }) => {
    return await inbox(ctx, user);
  },
});

export const mine = query({
  args: {},
  handler: async (ctx) => {
    const me = await ctx.auth.getUserIdentity();
    if (me === null) {
      return { count: 0, items: [] };
    }
    return await inbox(ctx, me.subject);
  },
});
