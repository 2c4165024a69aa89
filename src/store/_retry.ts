/** Bounded retry of optimistic KV transactions. */
import { ConflictError } from "./errors.ts";

/** Returned by an attempt whose atomic commit failed its checks. */
export const RETRY: unique symbol = Symbol("retry");

const MAX_ATTEMPTS = 10;

/**
 * Runs `attempt` until it returns something other than `RETRY`, at most ten
 * times; then gives up with a ConflictError naming `what`.
 */
export async function withRetry<T>(
  what: string,
  attempt: () => Promise<T | typeof RETRY>,
): Promise<T> {
  for (let i = 0; i < MAX_ATTEMPTS; i++) {
    const result = await attempt();
    if (result !== RETRY) return result;
  }
  throw new ConflictError(
    "version",
    `Cannot write ${what}: it kept changing concurrently, try again`,
  );
}
