import { v } from "convex/values";
import { mutation, query } from "./_generated/server";
import { userError } from "./errors";

export const create = mutation({
  args: { title: v.string(), content: v.string() },
  handler: async (ctx, { title, content }) => {
    return await ctx.db.insert("documents", { title, content, version: 1 });
  },
});

export const update = mutation({
  args: { id: v.string(), content: v.string(), expectedVersion: v.number() },
  handler: async (ctx, { id, content, expectedVersion }) => {
    const documentId = ctx.db.normalizeId("documents", id);
    const document = documentId === null ? null : await ctx.db.get("documents", documentId);
    if (document === null) {
      throw userError("NotFound", `no document ${JSON.stringify(id)}`);
    }
    // Convex values compare floats by their bits: NaN equals NaN, 0 is not -0.
    if (!Object.is(document.version, expectedVersion)) {
      throw userError(
        "VersionConflict",
        `expected version ${expectedVersion}, the document is at ${document.version}`,
        { currentVersion: document.version },
      );
    }
    const version = document.version + 1;
    await ctx.db.patch("documents", document._id, { content, version });
    return version;
  },
});

export const get = query({
  args: { id: v.string() },
  handler: async (ctx, { id }) => {
    const documentId = ctx.db.normalizeId("documents", id);
    const document = documentId === null ? null : await ctx.db.get("documents", documentId);
    if (document === null) {
      return null;
    }
    const { _id, title, content, version } = document;
    return { _id, title, content, version };
  },
});
