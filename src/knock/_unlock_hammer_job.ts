/** What `unlock_index_test.ts`'s hammer and its reader Workers agree on. */

export const STABLE_BASE = 0x0a000000;
export const CHURN_BASE = 0x0b000000;
export const ABSENT_BASE = 0x0c000000;
/** Stable addresses' users: ids 0..6 (the owner interns these names first). */
export const STABLE_USERS = 7;

/** The user id of stable address `i`. */
export function stableUser(i: number): number {
  return i % STABLE_USERS;
}

/** The two user ids churn address `j` may hold. */
export function churnUsers(j: number): [number, number] {
  const a = STABLE_USERS + (j % 5) * 2;
  return [a, a + 1];
}

export interface HammerJob {
  buffer: SharedArrayBuffer;
  /** [readers started, stop]. */
  sync: SharedArrayBuffer;
  worker: number;
  stable: number;
  churn: number;
  ops: number;
  maxMs: number;
  seed: number;
}

export interface HammerResult {
  errors: string[];
  ops: number;
  stableTouches: number[];
  churnTouches: number[];
}
