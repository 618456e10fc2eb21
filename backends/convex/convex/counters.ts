import { v } from "convex/values";
import { mutation, query } from "./_generated/server";
import { invalid } from "./errors";

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

export const increment = mutation({
  args: { name: v.string(), by: v.optional(v.int64()) },
  handler: async (ctx, { name, by = 1n }) => {
    const existing = await ctx.db
      .query("counters")
      .withIndex("by_name", (q) => q.eq("name", name))
      .unique();
    const current = existing?.value ?? 0n;
    const value = current + by;
    if (value < INT64_MIN || value > INT64_MAX) {
      throw invalid("by", `counter ${current} + ${by} overflows int64`);
    }
    if (existing === null) {
      await ctx.db.insert("counters", { name, value });
    } else {
      await ctx.db.patch("counters", existing._id, { value });
    }
    return value;
  },
});

export const get = query({
  args: { name: v.string() },
  handler: async (ctx, { name }) => {
    const row = await ctx.db
      .query("counters")
      .withIndex("by_name", (q) => q.eq("name", name))
      .unique();
    return row?.value ?? 0n;
  },
});
