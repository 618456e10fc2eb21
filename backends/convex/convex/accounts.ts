import { v } from "convex/values";
import { mutation, query, type QueryCtx } from "./_generated/server";
import { invalid, userError, whole } from "./errors";

/** The most accounts one `accounts:open` creates. */
const MAX_ACCOUNTS = 10_000;

async function account(ctx: QueryCtx, bank: string, number: number) {
  const row =
    whole(number) === null
      ? null
      : await ctx.db
          .query("accounts")
          .withIndex("by_bank_account", (q) => q.eq("bank", bank).eq("account", number))
          .unique();
  if (row === null) {
    throw userError("NoSuchAccount", `bank ${JSON.stringify(bank)} has no account ${number}`, {
      account: number,
    });
  }
  return row;
}

function nonNegative(field: string, what: string, amount: bigint) {
  if (amount < 0n) {
    throw invalid(field, `expected a non-negative ${what}, got ${amount}`);
  }
}

export const open = mutation({
  args: { bank: v.string(), accounts: v.number(), balance: v.int64() },
  handler: async (ctx, { bank, accounts, balance }) => {
    const count = whole(accounts);
    if (count === null || count < 1 || count > MAX_ACCOUNTS) {
      throw invalid(
        "accounts",
        `expected a whole number from 1 to ${MAX_ACCOUNTS}, got ${accounts}`,
      );
    }
    nonNegative("balance", "balance", balance);
    const existing = await ctx.db
      .query("accounts")
      .withIndex("by_bank_account", (q) => q.eq("bank", bank))
      .first();
    if (existing !== null) {
      throw userError("BankExists", `bank ${JSON.stringify(bank)} already has accounts`);
    }
    for (let number = 0; number < count; number++) {
      await ctx.db.insert("accounts", { bank, account: number, balance });
    }
    return null;
  },
});

export const transfer = mutation({
  args: { bank: v.string(), from: v.number(), to: v.number(), amount: v.int64() },
  handler: async (ctx, { bank, from, to, amount }) => {
    nonNegative("amount", "amount", amount);
    const source = await account(ctx, bank, from);
    const target = await account(ctx, bank, to);
    if (source.balance < amount) {
      throw userError(
        "InsufficientFunds",
        `account ${from} holds ${source.balance}, less than ${amount}`,
      );
    }
    if (source._id !== target._id) {
      await ctx.db.patch("accounts", source._id, { balance: source.balance - amount });
      await ctx.db.patch("accounts", target._id, { balance: target.balance + amount });
    }
    return null;
  },
});

export const withdrawJoint = mutation({
  args: { bank: v.string(), account: v.number(), partner: v.number(), amount: v.int64() },
  handler: async (ctx, { bank, account: number, partner: partnerNumber, amount }) => {
    // Reads two rows, writes one: what snapshot isolation gets wrong (two
    // withdrawals from the two accounts of a pair each see the pair's sum
    // before the other). Convex's serializable transactions get it right.
    nonNegative("amount", "amount", amount);
    const mine = await account(ctx, bank, number);
    const partner = await account(ctx, bank, partnerNumber);
    if (mine._id === partner._id) {
      throw invalid("partner", "expected an account other than `account`");
    }
    const together = mine.balance + partner.balance;
    if (together < amount) {
      throw userError(
        "InsufficientFunds",
        `accounts ${number} and ${partnerNumber} hold ${together} together, less than ${amount}`,
      );
    }
    const balance = mine.balance - amount;
    await ctx.db.patch("accounts", mine._id, { balance });
    return balance;
  },
});

export const balances = query({
  args: { bank: v.string() },
  handler: async (ctx, { bank }) => {
    const rows = await ctx.db
      .query("accounts")
      .withIndex("by_bank_account", (q) => q.eq("bank", bank))
      .collect();
    return rows.map(({ account, balance }) => ({ account, balance }));
  },
});
