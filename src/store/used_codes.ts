/**
 * Sign-in TOTP steps already used, per user, so that a code is accepted once
 * (RFC 6238 §5.2) even across restarts. One key per user holds the last step
 * accepted; a step at or below it is refused, so an older code still inside
 * the drift window is refused too. The key expires (KV `expireIn`) once the
 * step can no longer be valid: by then no code it could refuse is accepted.
 */
import type { Clock } from "../clock.ts";
import { RETRY, withRetry } from "./_retry.ts";
import { ValidationError } from "./errors.ts";
import type { StoreKv } from "./store_kv.ts";

const PREFIX: Deno.KvKey = ["used-codes"];

function key(user: string): Deno.KvKey {
  return [...PREFIX, user];
}

/** The last step used by a user and until when it matters. */
export interface UsedCodeRecord {
  step: number;
  /** Ms since the epoch after which no code of `step` or earlier is accepted. */
  validUntil: number;
}

/** Repository of used sign-in steps. */
export class UsedCodeRepo {
  /** Used steps in `kv`; `clock` decides what no longer matters. */
  constructor(private readonly kv: StoreKv, private readonly clock: Clock) {}

  /**
   * Records that `user` signed in with the code of `step`; false (and
   * nothing written) when that step or a later one was already used. Atomic:
   * of two sign-ins racing with one code, one wins.
   */
  async claim(user: string, step: number, validUntil: number): Promise<boolean> {
    if (!Number.isSafeInteger(step) || step < 0) {
      throw new ValidationError("step", `Cannot record sign-in step ${step}: not a step number`);
    }
    return await withRetry(`the used sign-in step of ${user}`, async () => {
      const entry = await this.kv.get<UsedCodeRecord>(key(user));
      const last = entry.value;
      if (last !== null && last.validUntil > this.clock.now() && step <= last.step) return false;
      const expireIn = Math.max(1, validUntil - this.clock.now());
      const ok = await this.kv.atomic().check(entry)
        .set(key(user), { step, validUntil }, { expireIn }).commit();
      return ok.ok ? true : RETRY;
    });
  }

  /** The last step `user` signed in with, while it still matters; null otherwise. */
  async lastUsed(user: string): Promise<UsedCodeRecord | null> {
    const v = (await this.kv.get<UsedCodeRecord>(key(user))).value;
    return v !== null && v.validUntil > this.clock.now() ? v : null;
  }
}
