/**
 * Sign-in throttling: failures are counted per key in a sliding window; a
 * key with `limit` failures inside the window is refused until the oldest of
 * them leaves it. In memory: a restart forgets.
 *
 * `SignInThrottle` keys by where a sign-in comes from, never by the user
 * alone: per (user, source) and per source. Failures from one place then
 * cannot lock the administrator out from another. There is no per-user
 * ceiling across sources: any such ceiling is a lock-out anyone who knows
 * the user name can trigger, and it buys little, since a guess needs the
 * password *and* a current TOTP code, and the management port is reachable
 * only from the LAN or from knock-unlocked WAN sources (sign-ins run over
 * TCP, so a source cannot be spoofed).
 */
import type { Clock } from "../clock.ts";

/** Options of a `LoginThrottle`. */
export interface ThrottleOptions {
  /** Failures allowed in the window (per user and source, for `SignInThrottle`); default 5. */
  limit?: number;
  /** `SignInThrottle` only: failures allowed per source whatever the user; default 4 x limit. */
  sourceLimit?: number;
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

/**
 * The throttle key of a source address: an IPv4 address itself, an IPv6
 * address by its /64 (one host usually holds a whole /64).
 */
export function sourceKey(ip: string): string {
  if (!ip.includes(":")) return ip;
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (v4) return v4[1];
  const [head, tail = ""] = ip.split("::");
  const left = head === "" ? [] : head.split(":");
  const right = tail === "" ? [] : tail.split(":");
  const groups = ip.includes("::")
    ? [...left, ...new Array(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right]
    : left;
  return `${groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, "")).join(":")}::/64`;
}

/** Sign-in throttling per (user, source) and per source. */
export class SignInThrottle {
  readonly #pair: LoginThrottle;
  readonly #source: LoginThrottle;

  /** A throttle timed by `clock`: 5 failures per (user, source), 20 per source, in 5 minutes. */
  constructor(clock: Clock, options: ThrottleOptions = {}) {
    const limit = options.limit ?? 5;
    this.#pair = new LoginThrottle(clock, { ...options, limit });
    this.#source = new LoginThrottle(clock, {
      ...options,
      limit: options.sourceLimit ?? 4 * limit,
    });
  }

  /** Seconds a sign-in as `user` from `ip` must still wait; 0 when it may try. */
  retryAfter(user: string, ip: string): number {
    return Math.max(
      this.#pair.retryAfter([pairKey(user, ip)]),
      this.#source.retryAfter([sourceKey(ip)]),
    );
  }

  /** Records one failed sign-in as `user` from `ip`. */
  fail(user: string, ip: string): void {
    this.#pair.fail([pairKey(user, ip)]);
    this.#source.fail([sourceKey(ip)]);
  }

  /** Forgets the failures of `user` from `ip` (after that user signed in from there). */
  succeeded(user: string, ip: string): void {
    this.#pair.reset(pairKey(user, ip));
  }
}

function pairKey(user: string, ip: string): string {
  return `${sourceKey(ip)} ${user}`;
}
