/**
 * Snapshot of the unlock table, so unlocks survive a restart. The live table
 * is the datapath's; this is its saved copy. Entries sit under a generation
 * number (`["unlocks","gen"]`): `replaceAll` writes a whole new generation in
 * batches and then flips the pointer in one atomic step, so a reader (or a
 * restart after a crash) sees either the old snapshot or the new one, never a
 * mix. Expiry is our own `expiresAt`, not KV's lazy `expireIn`.
 *
 * On a shared store (etcd, several appliances) no node's table is the whole
 * truth, so a node merges instead of replacing (`mergeAll`): it writes only
 * the unlocks that are new to the store or whose `expiresAt` moved at least
 * `REFRESH_STEP_MS` past the stored one (the later expiry wins), never
 * deletes another node's, and removes an unlock on its own idle expiry only
 * when the stored `expiresAt` has passed too (`expireUnlock`: no other node
 * refreshed it); a revocation removes it everywhere. Unlock expiry is by
 * stored times, not leases: a lease per unlock would cost a keep-alive per
 * refresh, and the idle time must follow traffic at every node. The cost:
 * an unlock kept alive by traffic costs one write per `REFRESH_STEP_MS` per
 * node that sees it (1,000 busy unlocks: about 17 writes/s), never one per
 * packet; the bound: the stored expiry trails the newest traffic by less than
 * `REFRESH_STEP_MS` plus one snapshot interval, so another node may let an
 * unlock lapse that much early once its traffic stopped, never while it flows.
 *
 * A revocation (`revokeUnlock`) also leaves a note under
 * `["unlocks","revoked",ip]` for `REVOCATION_KEEP_MS`: a node that sees an
 * unlock vanish cannot tell a revocation from another node's idle expiry,
 * so the other nodes end their own copy of an unlock only on that note (when
 * their copy began before it), and never take back an unlock older than it.
 */
import type { Clock } from "../clock.ts";
import { RETRY, withRetry } from "./_retry.ts";
import { isIpAddress, isUnlockIp } from "./_validate.ts";
import { unlockIpError } from "../packet/ip_text.ts";
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
const REVOKED: Deno.KvKey = ["unlocks", "revoked"];
/** How long a revocation note is kept for the other nodes (they act on it within a second). */
export const REVOCATION_KEEP_MS = 600_000;

/** A revocation note: the unlock of `ip` begun at or before `at` ended everywhere. */
export interface Revocation {
  ip: string;
  /** When it was revoked, ms since the epoch. */
  at: number;
  /** Who revoked it (a user name, or `user-deleted`). */
  by: string;
}
const ENTRIES: Deno.KvKey = ["unlocks", "entries"];
const BATCH = 500; // below KV's 1000-mutations-per-atomic limit
/** A shared store takes a refreshed unlock when its expiry moved this much (see module doc). */
export const REFRESH_STEP_MS = 60_000;
/** Checked writes per merge transaction: entry check + set, under etcd's 128 operations. */
const MERGE_BATCH = 60;

function entryKey(gen: number, ip: string): Deno.KvKey {
  return [...ENTRIES, gen, ip];
}

/**
 * An unlock's `ip` is an IPv4 address, or the IPv6 network one knock
 * unlocked (`2001:db8:1:2::/64`, a bare address for a /128), in the data
 * plane's canonical text, so one source has one key.
 */
function validateUnlock(u: UnlockRecord): void {
  if (!isUnlockIp(u.ip)) {
    throw new ValidationError(
      "ip",
      `Cannot save unlock: ${JSON.stringify(u.ip)} ${unlockIpError(u.ip)}`,
    );
  }
  if (u.wanAddress !== undefined && u.wanAddress !== "" && !isIpAddress(u.wanAddress)) {
    throw new ValidationError(
      "wanAddress",
      `Cannot save unlock of ${u.ip}: WAN address ${
        JSON.stringify(u.wanAddress)
      } is not an IPv4 or IPv6 address (RFC 5952 text)`,
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

/** The stored unlock `o` refreshed by this node's `u` of the same user: the later times win. */
function refreshed(o: UnlockRecord, u: UnlockRecord): SavedUnlock {
  return {
    ...pick(u),
    unlockedAt: Math.min(o.unlockedAt, u.unlockedAt),
    lastSeen: Math.max(o.lastSeen, u.lastSeen),
    expiresAt: Math.max(o.expiresAt, u.expiresAt),
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

  /**
   * Ends the unlock of `ip` on every node: removes it and leaves a revocation
   * note (see the module doc); no error if there is none.
   */
  async revokeUnlock(ip: string, by: string): Promise<void> {
    const note: Revocation = { ip, at: this.clock.now(), by };
    return await this.#inCurrent((op, gen) =>
      op.delete(entryKey(gen, ip)).set([...REVOKED, ip], note, { expireIn: REVOCATION_KEEP_MS })
    );
  }

  /** The revocation notes of the last `REVOCATION_KEEP_MS`. */
  async listRevocations(): Promise<Revocation[]> {
    const since = this.clock.now() - REVOCATION_KEEP_MS;
    const out: Revocation[] = [];
    for await (const e of this.kv.list<Revocation>({ prefix: REVOKED })) {
      if (e.value.at > since) out.push(e.value);
    }
    return out;
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

  /**
   * Merges this node's table into a shared snapshot (see the module doc):
   * new unlocks and ones whose expiry moved by `REFRESH_STEP_MS` are written
   * (keeping the later `expiresAt` and `lastSeen`), stored ones expired
   * meanwhile are deleted, nothing else is touched. Returns how many entries
   * it wrote or deleted.
   */
  async mergeAll(unlocks: readonly UnlockRecord[]): Promise<number> {
    unlocks.forEach(validateUnlock);
    const now = this.clock.now();
    const genEntry = await this.kv.get<number>(GEN_KEY);
    const gen = genEntry.value ?? 0;
    const stored = new Map<string, Deno.KvEntry<UnlockRecord>>();
    for await (const e of this.kv.list<UnlockRecord>({ prefix: [...ENTRIES, gen] })) {
      stored.set(e.key[3] as string, e);
    }
    const writes: { entry: Deno.KvEntryMaybe<UnlockRecord>; next: SavedUnlock | null }[] = [];
    for (const u of unlocks) {
      if (u.expiresAt <= now) continue;
      const old = stored.get(u.ip);
      stored.delete(u.ip);
      const o = old?.value;
      const fresh = o === undefined || o.expiresAt <= now || o.user !== u.user;
      if (!fresh && u.expiresAt - o.expiresAt < REFRESH_STEP_MS) continue;
      const next = fresh ? pick(u) : refreshed(o, u);
      writes.push({
        entry: old ?? { key: entryKey(gen, u.ip), value: null, versionstamp: null },
        next,
      });
    }
    for (const e of stored.values()) {
      if (e.value.expiresAt <= now) writes.push({ entry: e, next: null });
    }
    for (let i = 0; i < writes.length; i += MERGE_BATCH) {
      const batch = writes.slice(i, i + MERGE_BATCH);
      const op = this.kv.atomic().check(genEntry);
      for (const w of batch) {
        op.check(w.entry);
        if (w.next === null) op.delete(w.entry.key);
        else op.set(w.entry.key, w.next);
      }
      if (!(await op.commit()).ok) {
        // Another node wrote one of these (or a replaceAll flipped): merge them one by one.
        for (const w of batch) if (w.next !== null) await this.#mergeOne(w.next);
      }
    }
    return writes.length;
  }

  /**
   * This node's unlock of `ip` went idle: on a shared store, removes it
   * unless the stored one expires later (another node still sees its traffic).
   */
  async expireUnlock(ip: string): Promise<void> {
    const now = this.clock.now();
    await withRetry("unlock table", async () => {
      const genEntry = await this.kv.get<number>(GEN_KEY);
      const entry = await this.kv.get<UnlockRecord>(entryKey(genEntry.value ?? 0, ip));
      if (entry.value === null || entry.value.expiresAt > now) return undefined;
      const op = this.kv.atomic().check(genEntry).check(entry).delete(entry.key);
      return (await op.commit()).ok ? undefined : RETRY;
    });
  }

  async #mergeOne(u: SavedUnlock): Promise<void> {
    await withRetry("unlock table", async () => {
      const genEntry = await this.kv.get<number>(GEN_KEY);
      const entry = await this.kv.get<UnlockRecord>(entryKey(genEntry.value ?? 0, u.ip));
      const o = entry.value;
      if (o !== null && o.user === u.user && o.expiresAt >= u.expiresAt) return undefined;
      const next = o !== null && o.user === u.user && o.expiresAt > this.clock.now()
        ? refreshed(o, u)
        : u;
      const op = this.kv.atomic().check(genEntry).check(entry).set(entry.key, next);
      return (await op.commit()).ok ? undefined : RETRY;
    });
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
  readonly #shared: boolean;

  /**
   * Writes to `repo`; a new unlock's `expiresAt` is its time plus
   * `idleTimeoutMs()`. With `shared` (a store several appliances use: etcd)
   * snapshots merge and an idle expiry removes only what no other node
   * refreshed (see `UnlockRepo.mergeAll`).
   */
  constructor(
    private readonly repo: UnlockRepo,
    private readonly idleTimeoutMs: () => number,
    options: { shared?: boolean } = {},
  ) {
    this.#shared = options.shared ?? false;
  }

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
        const table = await take();
        if (this.#shared) await this.repo.mergeAll(table);
        else await this.repo.replaceAll(table);
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
      } else if (c.type === "unlock-expired" && this.#shared) {
        await this.repo.expireUnlock(c.ip);
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
