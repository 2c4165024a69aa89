/**
 * Snapshot of the unlock table, so unlocks survive a restart. The live table
 * is the datapath's; this is its saved copy. Entries sit under a generation
 * number (`["unlocks","gen"]`): `replaceAll` writes a whole new generation in
 * batches and then flips the pointer in one atomic step, so a reader (or a
 * restart after a crash) sees either the old snapshot or the new one, never a
 * mix. Expiry is our own `expiresAt`, not KV's lazy `expireIn`.
 */
import type { Clock } from "../clock.ts";
import { RETRY, withRetry } from "./_retry.ts";
import { isDottedQuad } from "./_validate.ts";
import { ConflictError, ValidationError } from "./errors.ts";

import type { UnlockInfo } from "../knock/unlock_table.ts";
import type { StoreAtomic, StoreKv } from "./store_kv.ts";

/**
 * One unlocked source IP (times in ms since the epoch), as the knock engine
 * reports it, with the WAN address its knock arrived on (absent or "" in
 * records saved before there were several).
 */
export type UnlockRecord = Omit<UnlockInfo, "wanAddress"> & { wanAddress?: string };

/** An unlock as the repository reads it back: `wanAddress` always present. */
export type SavedUnlock = UnlockRecord & { wanAddress: string };

const GEN_KEY: Deno.KvKey = ["unlocks", "gen"];
const ENTRIES: Deno.KvKey = ["unlocks", "entries"];
const BATCH = 500; // below KV's 1000-mutations-per-atomic limit

function entryKey(gen: number, ip: string): Deno.KvKey {
  return [...ENTRIES, gen, ip];
}

function validateUnlock(u: UnlockRecord): void {
  if (!isDottedQuad(u.ip)) {
    throw new ValidationError(
      "ip",
      `Cannot save unlock: ${JSON.stringify(u.ip)} is not a dotted quad`,
    );
  }
  if (u.wanAddress !== undefined && u.wanAddress !== "" && !isDottedQuad(u.wanAddress)) {
    throw new ValidationError(
      "wanAddress",
      `Cannot save unlock of ${u.ip}: WAN address ${
        JSON.stringify(u.wanAddress)
      } is not a dotted quad`,
    );
  }
  for (const f of ["unlockedAt", "lastSeen", "expiresAt", "drift", "flows", "bytes"] as const) {
    if (!Number.isFinite(u[f])) {
      throw new ValidationError(f, `Cannot save unlock of ${u.ip}: ${f} is not a number`);
    }
  }
}

function pick(u: UnlockRecord): SavedUnlock {
  const { ip, user, unlockedAt, lastSeen, expiresAt, drift, flows, bytes } = u;
  return {
    ip,
    user,
    unlockedAt,
    lastSeen,
    expiresAt,
    drift,
    flows,
    bytes,
    wanAddress: u.wanAddress ?? "",
  };
}

/** Repository of the unlock snapshot. */
export class UnlockRepo {
  /** Unlocks in `kv`; `clock` decides what has expired. */
  constructor(private readonly kv: StoreKv, private readonly clock: Clock) {}

  /** Stores or replaces the unlock of `u.ip` in the current snapshot. */
  async saveUnlock(u: UnlockRecord): Promise<void> {
    validateUnlock(u);
    return await this.#inCurrent((op, gen) => op.set(entryKey(gen, u.ip), pick(u)));
  }

  /** Removes the unlock of `ip` (no error if there is none). */
  async removeUnlock(ip: string): Promise<void> {
    return await this.#inCurrent((op, gen) => op.delete(entryKey(gen, ip)));
  }

  /** The unlocks whose `expiresAt` is still ahead. */
  async listUnlocks(): Promise<SavedUnlock[]> {
    const gen = (await this.kv.get<number>(GEN_KEY)).value ?? 0;
    const now = this.clock.now();
    const out: SavedUnlock[] = [];
    for await (const e of this.kv.list<UnlockRecord>({ prefix: [...ENTRIES, gen] })) {
      if (e.value.expiresAt > now) out.push(pick(e.value));
    }
    return out;
  }

  /**
   * Replaces the whole snapshot with `unlocks`. Single saves racing with this
   * may be lost: the snapshot is the datapath's table, which is authoritative.
   */
  async replaceAll(unlocks: readonly UnlockRecord[]): Promise<void> {
    unlocks.forEach(validateUnlock);
    const genEntry = await this.kv.get<number>(GEN_KEY);
    const gen = genEntry.value ?? 0;
    await this.#deleteAllBut(gen); // leftovers of a crashed replaceAll
    for (let i = 0; i < unlocks.length; i += BATCH) {
      const op = this.kv.atomic();
      for (const u of unlocks.slice(i, i + BATCH)) op.set(entryKey(gen + 1, u.ip), pick(u));
      await this.#commit(op);
    }
    await this.#commit(this.kv.atomic().check(genEntry).set(GEN_KEY, gen + 1));
    await this.#deleteAllBut(gen + 1);
  }

  /** Runs `stage` against the current generation, retrying if it flips meanwhile. */
  #inCurrent(stage: (op: StoreAtomic, gen: number) => void): Promise<void> {
    return withRetry("unlock table", async () => {
      const genEntry = await this.kv.get<number>(GEN_KEY);
      const op = this.kv.atomic().check(genEntry);
      stage(op, genEntry.value ?? 0);
      return (await op.commit()).ok ? undefined : RETRY;
    });
  }

  /** Deletes every entry outside generation `keep`, in batches. */
  async #deleteAllBut(keep: number): Promise<void> {
    let op = this.kv.atomic();
    let n = 0;
    for await (const e of this.kv.list({ prefix: ENTRIES })) {
      if (e.key[2] === keep) continue;
      op.delete(e.key);
      if (++n % BATCH === 0) {
        await this.#commit(op);
        op = this.kv.atomic();
      }
    }
    if (n % BATCH !== 0) await this.#commit(op);
  }

  async #commit(op: StoreAtomic): Promise<void> {
    if (!(await op.commit()).ok) {
      throw new ConflictError(
        "unlocks",
        "Cannot replace unlock snapshot: another replaceAll ran concurrently",
      );
    }
  }
}

/** The data-plane events that change the unlock table (a subset of the log's events). */
export type UnlockChange =
  | { type: "knock-success"; time: number; ip: string; user: string; drift: number; wan?: string }
  | { type: "unlock-expired" | "unlock-revoked"; ip: string };

/**
 * Keeps the saved unlocks in step with the data plane between snapshots:
 * each new unlock is written as its `knock-success` event arrives (so it is
 * persisted at most one housekeeping tick, 100 ms, plus one KV commit after
 * it took effect), each ended one is removed as its event arrives, and a
 * periodic `snapshot` refreshes counters and idle times. Changes that arrive
 * while a snapshot is being written are applied again after it, so a
 * revoke is never undone by a snapshot taken just before it.
 */
export class UnlockJournal {
  #queue: Promise<void> = Promise.resolve();
  #racing: UnlockChange[] | null = null;

  /** Writes to `repo`; a new unlock's `expiresAt` is its time plus `idleTimeoutMs()`. */
  constructor(
    private readonly repo: UnlockRepo,
    private readonly idleTimeoutMs: () => number,
  ) {}

  /** Applies the unlock changes among `events` (others are ignored), in order. */
  apply(events: readonly { type: string }[]): Promise<void> {
    const changes = events.filter(isUnlockChange);
    if (changes.length === 0) return this.#queue;
    this.#racing?.push(...changes);
    return this.#enqueue(() => this.#applyAll(changes));
  }

  /** Replaces the saved snapshot with the table `take` reads from the data plane. */
  snapshot(take: () => Promise<UnlockRecord[]>): Promise<void> {
    return this.#enqueue(async () => {
      this.#racing = [];
      try {
        await this.repo.replaceAll(await take());
        await this.#applyAll(this.#racing);
      } finally {
        this.#racing = null;
      }
    });
  }

  async #applyAll(changes: readonly UnlockChange[]): Promise<void> {
    for (const c of changes) {
      if (c.type === "knock-success") {
        await this.repo.saveUnlock({
          ip: c.ip,
          user: c.user,
          unlockedAt: c.time,
          lastSeen: c.time,
          expiresAt: c.time + this.idleTimeoutMs(),
          drift: c.drift,
          flows: 0,
          bytes: 0,
          wanAddress: c.wan ?? "",
        });
      } else {
        await this.repo.removeUnlock(c.ip);
      }
    }
  }

  #enqueue(job: () => Promise<void>): Promise<void> {
    const run = this.#queue.then(job);
    this.#queue = run.catch(() => {});
    return run;
  }
}

function isUnlockChange(e: { type: string }): e is UnlockChange {
  return e.type === "knock-success" || e.type === "unlock-expired" || e.type === "unlock-revoked";
}
