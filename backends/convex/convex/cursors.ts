import { v } from "convex/values";
import { mutation, query } from "./_generated/server";
import { takeToken } from "./rateLimit";

export const move = mutation({
  args: { room: v.string(), user: v.string(), x: v.number(), y: v.number() },
  handler: async (ctx, { room, user, x, y }) => {
    await takeToken(ctx, "cursors:move", user);
    const existing = await ctx.db
      .query("cursors")
      .withIndex("by_room_user", (q) => q.eq("room", room).eq("user", user))
      .unique();
    const fields = { room, user, x, y, updatedAt: Date.now() };
    if (existing === null) {
      await ctx.db.insert("cursors", fields);
    } else {
      await ctx.db.replace("cursors", existing._id, fields);
    }
    return null;
  },
});

export const list = query({
  args: { room: v.string() },
  handler: async (ctx, { room }) => {
    const rows = await ctx.db
      .query("cursors")
      .withIndex("by_room_user", (q) => q.eq("room", room))
      .collect();
    return rows.map(({ user, x, y, updatedAt }) => ({ user, x, y, updatedAt }));
  },
});
