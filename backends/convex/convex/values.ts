import { v } from "convex/values";
import { query } from "./_generated/server";

export const echo = query({
  args: { value: v.any() },
  handler: async (_ctx, { value }) => {
    return value;
  },
});
