/**
 * The knocks worker 0 completed in a fleet, waiting to be handed to the
 * control plane, which claims each one's step in the store (see
 * `KnockVerdict.PENDING`). Preallocated: a push on the per-packet path
 * allocates nothing; `take` builds the message once per loop turn.
 */
import { formatIpv4 } from "../packet/mod.ts";
import type { KnockClaim } from "./messages.ts";

/** Completed knocks one loop turn may queue (normally a handful; a flood of completions is replays). */
export const CLAIM_QUEUE = 256;

/** A bounded queue of knocks to claim. */
export class ClaimQueue {
  readonly #ip: Uint32Array;
  readonly #wan: Uint32Array;
  readonly #user: string[];
  readonly #step: Float64Array;
  readonly #drift: Int8Array;
  readonly #at: Float64Array;
  #count = 0;

  /** Room for `capacity` knocks. */
  constructor(readonly capacity = CLAIM_QUEUE) {
    this.#ip = new Uint32Array(capacity);
    this.#wan = new Uint32Array(capacity);
    this.#user = new Array<string>(capacity).fill("");
    this.#step = new Float64Array(capacity);
    this.#drift = new Int8Array(capacity);
    this.#at = new Float64Array(capacity);
  }

  /** Knocks queued. */
  get size(): number {
    return this.#count;
  }

  /** Queues `ip`'s completion of `user`'s `step` (knocked to `wan`) at `atMs`; false when full. */
  push(ip: number, wan: number, user: string, step: number, drift: number, atMs: number): boolean {
    const i = this.#count;
    if (i === this.capacity) return false;
    this.#ip[i] = ip;
    this.#wan[i] = wan;
    this.#user[i] = user;
    this.#step[i] = step;
    this.#drift[i] = drift;
    this.#at[i] = atMs;
    this.#count = i + 1;
    return true;
  }

  /** Empties the queue into claims (`expiry` of a step: its claim's expiry), or null when empty. */
  take(expiry: (step: number) => number): KnockClaim[] | null {
    const n = this.#count;
    if (n === 0) return null;
    this.#count = 0;
    const out: KnockClaim[] = [];
    for (let i = 0; i < n; i++) {
      const step = this.#step[i];
      out.push({
        ip: formatIpv4(this.#ip[i]),
        user: this.#user[i],
        step,
        drift: this.#drift[i],
        wanAddress: formatIpv4(this.#wan[i]),
        expiresAt: expiry(step),
        at: this.#at[i],
      });
      this.#user[i] = "";
    }
    return out;
  }
}
