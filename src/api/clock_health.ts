/** The clock health shown by status and health, asked at most every few seconds. */
import type { ClockHealth } from "../host/clock_health.ts";
import type { ApiDeps } from "./types.ts";

/** How long an answer of `deps.clockHealth` is reused. */
export const CLOCK_HEALTH_TTL_MS = 10_000;

/** A cached reader of `deps.clockHealth`; "unknown" when none was given or it failed. */
export function cachedClockHealth(deps: ApiDeps): () => Promise<ClockHealth> {
  let cached: { at: number; value: Promise<ClockHealth> } | null = null;
  const ask = async (): Promise<ClockHealth> => {
    const now = deps.clock.now();
    if (deps.clockHealth === undefined) {
      return { synchronised: null, detail: "not checked", now };
    }
    try {
      return { ...(await deps.clockHealth()), now };
    } catch (err) {
      return { synchronised: null, detail: `check failed: ${(err as Error).message}`, now };
    }
  };
  return async () => {
    const now = deps.clock.now();
    if (cached === null || now - cached.at >= CLOCK_HEALTH_TTL_MS || now < cached.at) {
      cached = { at: now, value: ask() };
    }
    return { ...(await cached.value), now };
  };
}
