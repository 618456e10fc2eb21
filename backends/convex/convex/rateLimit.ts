import type { MutationCtx } from "./_generated/server";
import { userError } from "./errors";

/** Tokens a bucket holds when full: 20 calls at once. */
const BURST = 20;
/** Milliseconds to refill one token: 20 a second. */
const INTERVAL_MS = 1000 / BURST;

/**
 * Takes a token from the (function, user) bucket, or fails the mutation with
 * `RateLimited` and the wait until a token is available. The bucket is a row
 * read and written in the caller's transaction, so a refusal (which rolls the
 * transaction back) writes nothing, and two racing calls conflict rather than
 * both taking the last token.
 */
export async function takeToken(ctx: MutationCtx, name: string, user: string) {
  // Mutations may read the clock: it stands still for the whole transaction.
  const now = Date.now();
  const bucket = await ctx.db
    .query("rateLimits")
    .withIndex("by_name_user", (q) => q.eq("name", name).eq("user", user))
    .unique();
  const tat = Math.max(bucket?.tat ?? now, now);
  const tolerance = INTERVAL_MS * (BURST - 1);
  if (tat - now > tolerance) {
    throw userError("RateLimited", `${name} is limited to ${BURST} calls a second per user`, {
      retryAfterMs: Math.ceil(tat - now - tolerance),
    });
  }
  if (bucket === null) {
    await ctx.db.insert("rateLimits", { name, user, tat: tat + INTERVAL_MS });
  } else {
    await ctx.db.patch("rateLimits", bucket._id, { tat: tat + INTERVAL_MS });
  }
}
