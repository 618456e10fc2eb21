/* eslint-disable */
/**
 * Generated `api` utility.
 *
 * THIS CODE IS AUTOMATICALLY GENERATED.
 *
 * To regenerate, run `npx convex dev`.
 * @module
 */

import type {
  ApiFromModules,
  FilterApi,
  FunctionReference,
} from "convex/server";
import type * as accounts from "../accounts.js";
import type * as counters from "../counters.js";
import type * as cursors from "../cursors.js";
import type * as documents from "../documents.js";
import type * as errors from "../errors.js";
import type * as messages from "../messages.js";
import type * as notifications from "../notifications.js";
import type * as presence from "../presence.js";
import type * as rateLimit from "../rateLimit.js";
import type * as users from "../users.js";
import type * as values from "../values.js";

/**
 * A utility for referencing Convex functions in your app's API.
 *
 * Usage:
 * ```js
 * const myFunctionReference = api.myModule.myFunction;
 * ```
 */
declare const fullApi: ApiFromModules<{
  accounts: typeof accounts;
  counters: typeof counters;
  cursors: typeof cursors;
  documents: typeof documents;
  errors: typeof errors;
  messages: typeof messages;
  notifications: typeof notifications;
  presence: typeof presence;
  rateLimit: typeof rateLimit;
  users: typeof users;
  values: typeof values;
}>;
export declare const api: FilterApi<
  typeof fullApi,
  FunctionReference<any, "public">
>;
export declare const internal: FilterApi<
  typeof fullApi,
  FunctionReference<any, "internal">
>;
