import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";

export default defineSchema({
  messages: defineTable({
    channel: v.string(),
    author: v.string(),
    body: v.string(),
    streaming: v.boolean(),
  }).index("by_channel", ["channel"]),

  presence: defineTable({
    room: v.string(),
    user: v.string(),
    name: v.string(),
    lastSeen: v.number(),
    // The pending `presence:expire` that removes the row if no heartbeat
    // moves it first.
    expiry: v.id("_scheduled_functions"),
  }).index("by_room_user", ["room", "user"]),

  cursors: defineTable({
    room: v.string(),
    user: v.string(),
    x: v.number(),
    y: v.number(),
    updatedAt: v.number(),
  }).index("by_room_user", ["room", "user"]),

  counters: defineTable({
    name: v.string(),
    value: v.int64(),
  }).index("by_name", ["name"]),

  documents: defineTable({
    title: v.string(),
    content: v.string(),
    version: v.number(),
  }),

  notifications: defineTable({
    user: v.string(),
    title: v.string(),
    read: v.boolean(),
  }).index("by_user_read", ["user", "read"]),

  accounts: defineTable({
    bank: v.string(),
    account: v.number(),
    balance: v.int64(),
  }).index("by_bank_account", ["bank", "account"]),

  // One GCRA bucket per (function, user): the time at which the bucket is
  // theoretically empty again, in ms.
  rateLimits: defineTable({
    name: v.string(),
    user: v.string(),
    tat: v.number(),
  }).index("by_name_user", ["name", "user"]),
});
