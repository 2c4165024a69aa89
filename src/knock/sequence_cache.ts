/**
 * Precomputed knock sequences. WebCrypto is asynchronous but the verifier runs
 * in the synchronous per-packet path, so for every user the sequences of the
 * steps T-1, T, T+1 and T+2 around the current step T are derived ahead of
 * time. T+2 lets the verifier keep working for a whole step after the clock
 * moves on before `refresh` has run.
 */

import type { KnockProfile } from "./profile.ts";
import { base32Decode } from "./base32.ts";
import { importKnockKey, KNOCK_STEP_S, knockSequenceWithKey } from "./sequence.ts";

/** Steps kept per user, from T-1 to T+2. */
const SPAN = 4;

interface Entry {
  profile: KnockProfile;
  key: CryptoKey;
  /** The step T the sequences are centred on. */
  base: number;
  /** Sequences `[F, p1, .., pN]` of steps base-1 .. base+2. */
  seqs: readonly Uint16Array[];
  /** Bumped by every computation, so a slow one never overwrites a newer one. */
  gen: number;
}

/** The step T of a time in milliseconds. */
function stepAtMs(nowMs: number): number {
  return Math.floor(nowMs / (KNOCK_STEP_S * 1000));
}

/** Per-user knock sequences for the steps around now, readable synchronously. */
export class SequenceCache {
  #users = new Map<string, Entry>();
  /** Entries being derived by `setUser`; they replace the held ones only once derived. */
  #pending = new Map<string, Entry>();

  /** Number of users held. */
  get size(): number {
    return this.#users.size;
  }

  /** The profiles held, in insertion order. */
  profiles(): KnockProfile[] {
    return [...this.#users.values()].map((e) => e.profile);
  }

  /**
   * Adds or replaces a user (secret as bytes or base32) and derives its
   * sequences around `nowMs` before resolving.
   */
  async setUser(profile: KnockProfile, secret: Uint8Array | string, nowMs: number): Promise<void> {
    const bytes = typeof secret === "string" ? base32Decode(secret) : secret;
    const keyPromise = importKnockKey(bytes);
    const entry: Entry = { profile: { ...profile }, key: null!, base: NaN, seqs: [], gen: 0 };
    // The old sequences keep serving until the new ones are derived: in the data-plane
    // Worker each WebCrypto await can wait for a loop yield, which takes up to seconds.
    // Registered before the first await, so a removeUser right after this call wins.
    this.#pending.set(profile.user, entry);
    entry.key = await keyPromise;
    await this.#compute(entry, stepAtMs(nowMs));
    if (this.#pending.get(profile.user) !== entry) return; // replaced or removed meanwhile
    this.#pending.delete(profile.user);
    this.#users.set(profile.user, entry);
  }

  /** Forgets a user; true if it was held. */
  removeUser(user: string): boolean {
    this.#pending.delete(user);
    return this.#users.delete(user);
  }

  /** Forgets every user. */
  clear(): void {
    this.#pending.clear();
    this.#users.clear();
  }

  /** Re-derives the sequences of every user whose steps no longer centre on `nowMs`. */
  async refresh(nowMs: number): Promise<void> {
    const step = stepAtMs(nowMs);
    const work: Promise<void>[] = [];
    for (const entry of this.#users.values()) {
      if (entry.base !== step) work.push(this.#compute(entry, step));
    }
    await Promise.all(work);
  }

  /**
   * The sequence `[F, p1, .., pN]` of `user` at `step`, or null when the user
   * is unknown or the step is not held (empty before the epoch). Synchronous and allocation-free: the
   * array is shared, callers must not modify it.
   */
  sequence(user: string, step: number): Uint16Array | null {
    const entry = this.#users.get(user);
    if (entry === undefined) return null;
    const i = step - entry.base + 1;
    return i >= 0 && i < entry.seqs.length ? entry.seqs[i] : null;
  }

  async #compute(entry: Entry, base: number): Promise<void> {
    const gen = ++entry.gen;
    const { firstPort, length } = entry.profile;
    const seqs: Uint16Array[] = [];
    for (let i = 0; i < SPAN; i++) {
      const step = base - 1 + i;
      // Reuse what the previous base already derived for this step.
      const old = Number.isNaN(entry.base) ? -1 : step - entry.base + 1;
      const known = old >= 0 && old < entry.seqs.length ? entry.seqs[old] : null;
      // Steps before the epoch have no sequence: an empty array stands for none.
      seqs.push(
        known ??
          (step < 0
            ? new Uint16Array(0)
            : Uint16Array.from(await knockSequenceWithKey(entry.key, step, firstPort, length))),
      );
    }
    // A newer computation (or a replaced user) wins over this one.
    const user = entry.profile.user;
    if (entry.gen !== gen) return;
    if (this.#users.get(user) !== entry && this.#pending.get(user) !== entry) return;
    entry.seqs = seqs;
    entry.base = base;
  }
}
