/**
 * Sign-in throttling: failures are counted per key (a user name, a client
 * IP) in a sliding window; a key with `limit` failures inside the window is
 * refused until the oldest of them leaves it. In memory: a restart forgets.
 */
import type { Clock } from "../clock.ts";

/** Options of a `LoginThrottle`. */
export interface ThrottleOptions {
  /** Failures allowed in the window; default 5. */
  limit?: number;
  /** Window length in ms; default 5 minutes. */
  windowMs?: number;
  /** Keys remembered at most (oldest dropped first); default 10000. */
  maxKeys?: number;
}

/** Counts failed sign-ins and says when a key must wait. */
export class LoginThrottle {
  readonly limit: number;
  readonly windowMs: number;
  readonly #maxKeys: number;
  readonly #failures = new Map<string, number[]>();

  /** A throttle timed by `clock`. */
  constructor(private readonly clock: Clock, options: ThrottleOptions = {}) {
    this.limit = options.limit ?? 5;
    this.windowMs = options.windowMs ?? 5 * 60_000;
    this.#maxKeys = options.maxKeys ?? 10_000;
  }

  /** Seconds the most restricted of `keys` must still wait; 0 when none is blocked. */
  retryAfter(keys: readonly string[]): number {
    let waitMs = 0;
    for (const key of keys) {
      const times = this.#live(key);
      if (times.length >= this.limit) {
        // Blocked until enough failures age out to fall below the limit.
        const freeAt = times[times.length - this.limit] + this.windowMs;
        waitMs = Math.max(waitMs, freeAt - this.clock.now());
      }
    }
    return waitMs > 0 ? Math.ceil(waitMs / 1000) : 0;
  }

  /** Records one failure against every key. */
  fail(keys: readonly string[]): void {
    const now = this.clock.now();
    for (const key of keys) {
      const times = this.#live(key);
      times.push(now);
      this.#failures.delete(key); // re-insert: Map order is then least recently failed first
      this.#failures.set(key, times.slice(-this.limit));
    }
    while (this.#failures.size > this.#maxKeys) {
      this.#failures.delete(this.#failures.keys().next().value!);
    }
  }

  /** Forgets the failures of `key` (after a successful sign-in). */
  reset(key: string): void {
    this.#failures.delete(key);
  }

  /** The failure times of `key` still inside the window. */
  #live(key: string): number[] {
    const since = this.clock.now() - this.windowMs;
    return (this.#failures.get(key) ?? []).filter((t) => t > since);
  }
}
