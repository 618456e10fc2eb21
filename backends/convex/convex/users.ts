import { query } from "./_generated/server";

export const me = query({
  args: {},
  handler: async (ctx) => {
    const me = await ctx.auth.getUserIdentity();
    if (me === null) {
      return null;
    }
    const { subject, issuer, tokenIdentifier, name } = me;
    return name === undefined
      ? { subject, issuer, tokenIdentifier }
      : { subject, issuer, tokenIdentifier, name };
  },
});
