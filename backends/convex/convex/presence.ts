import { v } from "convex/values";
import { internal } from "./_generated/api";
import { internalMutation, mutation, query, type MutationCtx } from "./_generated/server";
import { userError } from "./errors";
import { takeToken } from "./rateLimit";

/** How long a row lives after its last heartbeat. */
const PRESENCE_TTL_MS = 10_000;

function rowOf(ctx: MutationCtx, room: string, user: string) {
  return ctx.db
    .query("presence")
    .withIndex("by_room_user", (q) => q.eq("room", room).eq("user", user))
    .unique();
}

// Queries cannot read the clock, so a row cannot be hidden once it is stale:
// each heartbeat schedules the row's removal instead, cancelling the one the
// previous heartbeat scheduled.
async function beat(ctx: MutationCtx, room: string, user: string, name: string) {
  const existing = await rowOf(ctx, room, user);
  if (existing !== null) {
    await ctx.scheduler.cancel(existing.expiry);
  }
  const expiry = await ctx.scheduler.runAfter(PRESENCE_TTL_MS, internal.presence.expire, {
    room,
    user,
  });
  const fields = { room, user, name, lastSeen: Date.now(), expiry };
  if (existing === null) {
    await ctx.db.insert("presence", fields);
  } else {
    await ctx.db.replace("presence", existing._id, fields);
  }
  return null;
}

export const heartbeat = mutation({
  args: { room: v.string(), user: v.string(), name: v.string() },
  handler: async (ctx, { room, user, name }) => {
    await takeToken(ctx, "presence:heartbeat", user);
    return await beat(ctx, room, user, name);
  },
});

export const heartbeatAsMe = mutation({
  args: { room: v.string() },
  handler: async (ctx, { room }) => {
    const me = await ctx.auth.getUserIdentity();
    if (me === null) {
      throw userError("Unauthenticated", "presence:heartbeatAsMe needs a signed-in caller");
    }
    await takeToken(ctx, "presence:heartbeatAsMe", me.subject);
    return await beat(ctx, room, me.subject, me.name ?? me.subject);
  },
});

export const leave = mutation({
  args: { room: v.string(), user: v.string() },
  handler: async (ctx, { room, user }) => {
    const row = await rowOf(ctx, room, user);
    if (row !== null) {
      await ctx.scheduler.cancel(row.expiry);
      await ctx.db.delete("presence", row._id);
    }
    return null;
  },
});

export const expire = internalMutation({
  args: { room: v.string(), user: v.string() },
  handler: async (ctx, { room, user }) => {
    // Every later heartbeat cancels this: if it runs, the row has had no
    // heartbeat for the TTL.
    const row = await rowOf(ctx, room, user);
    if (row !== null) {
      await ctx.db.delete("presence", row._id);
    }
    return null;
  },
});

export const list = query({
  args: { room: v.string() },
  handler: async (ctx, { room }) => {
    const rows = await ctx.db
      .query("presence")
      .withIndex("by_room_user", (q) => q.eq("room", room))
      .collect();
    return rows.map(({ user, name, lastSeen }) => ({ user, name, lastSeen }));
  },
});
