/**
 * The knock verifier's durable state: which (user, step) unlocked which IP
 * (replay memory), and the failure buckets and penalties per source IP (`*`
 * for the overflow bucket). The data plane emits changed records once per
 * housekeeping tick; they are written here as they arrive and handed back
 * to the verifier at start, so a restart forgets neither a spent step nor a
 * running penalty.
 *
 * Bounded: one key per (user, step) and per IP, each written with KV's
 * `expireIn` at the record's own `expiresAt` (a step is spent for about
 * 1.5 min, a penalty for its length); `list` skips and deletes the expired
 * ones KV has not tidied yet. The verifier's tables bound how many live at once.
 *
 * In a fleet (the etcd store) a replay key is not saved but claimed: `claim`
 * creates it only if no node holds it yet, so a step unlocks one IP across
 * every node, and the watch brings it into every node's verifier. With
 * `ipv6.pairFamilies` the IPv6 half of a step is the key `[..., step, 6]`,
 * so a step holds one IP of each family, alike in KV and etcd.
 */
import type { Clock } from "../clock.ts";
import type { KnockStateRecord, ReplayStateRecord } from "../knock/verifier.ts";
import { OVERFLOW_IP } from "../knock/verifier.ts";
import { isDottedQuad } from "./_validate.ts";
import { ConflictError, ValidationError } from "./errors.ts";
import type { StoreKv } from "./store_kv.ts";
import { isUnlockIp } from "./_validate.ts";

export type { KnockStateRecord } from "../knock/verifier.ts";

/** The answer to a `claim`: granted, or the step is already another IP's. */
export type ClaimAnswer = { granted: true } | { granted: false; firstIp: string };

const PREFIX: Deno.KvKey = ["knock-state"];
const BATCH = 500; // below KV's 1000-mutations-per-atomic limit

function keyOf(r: KnockStateRecord): Deno.KvKey {
  if (r.type !== "replay") return [...PREFIX, "ip", r.ip];
  // The IPv6 half of a step paired by family has its own key: one IP per family.
  return r.family === 6
    ? [...PREFIX, "replay", r.user, r.step, 6]
    : [...PREFIX, "replay", r.user, r.step];
}

function validate(r: KnockStateRecord): void {
  if (r.type !== "replay" && r.type !== "failures") {
    throw new ValidationError("type", `Cannot save knock state: unknown record type`);
  }
  // An IPv6 source is its unlock prefix (`2001:db8:1:2::/64`), as in the unlock records.
  const ipOk = isDottedQuad(r.ip) || isUnlockIp(r.ip) ||
    (r.type === "failures" && r.ip === OVERFLOW_IP);
  if (!ipOk) {
    throw new ValidationError("ip", `Cannot save knock state: ${JSON.stringify(r.ip)} is no IP`);
  }
  if (!Number.isFinite(r.expiresAt)) {
    throw new ValidationError("expiresAt", `Cannot save knock state of ${r.ip}: no expiry`);
  }
  if (r.type === "replay" && (typeof r.user !== "string" || !Number.isInteger(r.step))) {
    throw new ValidationError("step", `Cannot save knock state of ${r.ip}: bad user or step`);
  }
  if (r.type === "replay" && r.family !== undefined && (r.family !== 6 || isDottedQuad(r.ip))) {
    throw new ValidationError("family", `Cannot save knock state of ${r.ip}: bad family`);
  }
}

/** Repository of the verifier's replay memory, failure buckets and penalties. */
export class KnockStateRepo {
  #queue: Promise<void> = Promise.resolve();

  /** State in `kv`; `clock` decides what has expired. */
  constructor(private readonly kv: StoreKv, private readonly clock: Clock) {}

  /**
   * Writes `records` (a newer record of the same key replaces the older);
   * saves run one after another in call order. Records already expired are
   * skipped. Resolves once committed.
   */
  save(records: readonly KnockStateRecord[]): Promise<void> {
    try {
      records.forEach(validate);
    } catch (err) {
      return Promise.reject(err);
    }
    const run = this.#queue.then(() => this.#write(records));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #write(records: readonly KnockStateRecord[]): Promise<void> {
    const now = this.clock.now();
    const live = records.filter((r) => r.expiresAt > now);
    for (let i = 0; i < live.length; i += BATCH) {
      const op = this.kv.atomic();
      for (const r of live.slice(i, i + BATCH)) {
        op.set(keyOf(r), r, { expireIn: Math.max(1, Math.ceil(r.expiresAt - now)) });
      }
      await op.commit();
    }
  }

  /**
   * Claims `(r.user, r.step)` for `r.ip` across every node sharing the store
   * (a fleet on etcd): one transaction creates the replay key if it is
   * absent, with the record's expiry. Granted when it did, or when the key
   * already holds the same IP (a repeated claim, or the same source knocking
   * at two nodes); otherwise the step is another IP's and `firstIp` names it.
   * Throws `StoreUnavailableError` when the store cannot be written (the
   * caller refuses the knock: fail closed).
   */
  async claim(r: ReplayStateRecord): Promise<ClaimAnswer> {
    validate(r);
    const key = keyOf(r);
    for (let attempt = 0; attempt < 3; attempt++) {
      const now = this.clock.now();
      const expireIn = Math.max(1, Math.ceil(r.expiresAt - now));
      const made = await this.kv.atomic().check({ key, versionstamp: null }).set(key, r, {
        expireIn,
      }).commit();
      if (made.ok) return { granted: true };
      const held = (await this.kv.get<KnockStateRecord>(key)).value;
      if (held === null) continue; // expired in between: try again
      if (held.ip === r.ip && held.expiresAt > now) return { granted: true };
      return { granted: false, firstIp: held.ip };
    }
    throw new ConflictError(
      "step",
      `Cannot claim step ${r.step} of "${r.user}": it keeps changing`,
    );
  }

  /** Resolves once every `save` called so far has finished. */
  flushed(): Promise<void> {
    return this.#queue;
  }

  /** Every record whose `expiresAt` is still ahead (expired leftovers are deleted). */
  async list(): Promise<KnockStateRecord[]> {
    await this.#queue;
    const now = this.clock.now();
    const out: KnockStateRecord[] = [];
    const stale: Deno.KvKey[] = [];
    for await (const e of this.kv.list<KnockStateRecord>({ prefix: PREFIX })) {
      if (e.value.expiresAt > now) out.push(e.value);
      else stale.push(e.key);
    }
    for (let i = 0; i < stale.length; i += BATCH) {
      const op = this.kv.atomic();
      for (const k of stale.slice(i, i + BATCH)) op.delete(k);
      await op.commit();
    }
    return out;
  }
}
