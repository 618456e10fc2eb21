import { ConvexError, type Value } from "convex/values";

/** The catalogue's user-error codes, as `errorData.code` carries them. */
export type ErrorCode =
  | "InvalidArguments"
  | "EmptyMessage"
  | "TooLong"
  | "NotFound"
  | "StreamFinished"
  | "RateLimited"
  | "VersionConflict"
  | "InsufficientFunds"
  | "NoSuchAccount"
  | "BankExists"
  | "TooLarge"
  | "Unauthenticated"
  | "InvalidCursor"
  | "InboxFull"
  | "UpstreamFailed";

/** A user error: the call fails with `errorData` `{code, message, ...extra}`. */
export function userError(
  code: ErrorCode,
  message: string,
  extra: Record<string, Value> = {},
): ConvexError<Record<string, Value>> {
  return new ConvexError({ code, message, ...extra });
}

/** `InvalidArguments` naming the field, for rules a validator cannot express. */
export function invalid(field: string, message: string) {
  return userError("InvalidArguments", message, { field });
}

/** `f` as a whole number, if it is one (and small enough to be exact). */
export function whole(f: number): number | null {
  return Number.isFinite(f) && Number.isInteger(f) && Math.abs(f) < 1e15 ? f : null;
}
