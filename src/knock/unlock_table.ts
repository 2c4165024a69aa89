/**
 * `UnlockTable`: which source IPs are unlocked, for which user, until when.
 * The lookup side lives in a `SharedArrayBuffer` (`UnlockIndex`, see its
 * module comment for the concurrency design): Worker 0 (the owner) unlocks,
 * revokes and expires; every data-plane Worker maps the same buffer
 * (`buffer`, `worker`) and asks `isUnlocked` and `touch`es the entries of
 * its admitted flows lock-free. What only the API and the events need stays
 * in the owner's private memory: user names (interned once, the shared
 * column holds ids), drift, flow counts, the knock's WAN address and the
 * order of unlocks (a doubly linked list, for eviction and sweeps).
 *
 * Fixed capacity (`maxEntries`, the configuration's `limits.maxUnlocks`).
 * The hot-path calls (`isUnlocked`, `liveUser`, `userOf`, `touch`,
 * `admitFlow`) are one index probe and a few array reads or writes: no
 * allocation, no throw. A reader's writers (`unlock`, `revoke`, `expire`,
 * `restore`) do nothing and return the failure value.
 */

import { formatIpv4, parseIpv4 } from "../packet/address.ts";
import type { UnlockEvent, UnlockExpired, UnlockExpiryReason } from "./events.ts";
import { KNOCK_PORT_BASE } from "./sequence.ts";
import { UnlockIndex } from "./unlock_index.ts";

/** Tunables of the unlock table. */
export interface UnlockTableOptions {
  /** An unlock ends after this long with no packet on an admitted flow and no new session. */
  idleTimeoutMs?: number;
  /** An unlock ends this long after its knock whatever the traffic; 0 for never. */
  lifetimeMs?: number;
  /** Most unlocked IPs (default 65536); the least recently unlocked is evicted beyond. Fixed. */
  maxEntries?: number;
  /** Receives `unlock-expired` and `unlock-revoked` events. */
  onEvent?: (event: UnlockEvent) => void;
  /**
   * The shared table (`UnlockTable.createBuffer`) and this Worker's number
   * (0: the owner; its timeouts apply); absent: a table of its own (one
   * Worker, `maxEntries`).
   */
  buffer?: SharedArrayBuffer;
  worker?: number;
}

/** One unlock, as the API shows it (times in ms since the epoch). */
export interface UnlockInfo {
  ip: string;
  user: string;
  unlockedAt: number;
  lastSeen: number;
  /** When it ends if no more traffic comes. */
  expiresAt: number;
  /** The client's clock drift at the knock, in steps. */
  drift: number;
  /** Flows admitted thanks to it. */
  flows: number;
  /** Bytes counted on those flows. */
  bytes: number;
  /** The WAN address the unlocking knock arrived on; "" when restored from an older record. */
  wanAddress: string;
}

/** One unlock as saved across restarts. */
export type UnlockSnapshotEntry = Omit<UnlockInfo, "expiresAt">;

/** Derived knock ports (knock-protocol.md): 16384..32767. */
const DERIVED_END = KNOCK_PORT_BASE + 0x4000;

const NONE = -1;

/** Source IP -> unlock; see the module comment. */
export class UnlockTable {
  /** True for Worker 0's table (the one writer). */
  readonly owner: boolean;
  readonly #onEvent: (event: UnlockEvent) => void;
  readonly #x: UnlockIndex;
  readonly #max: number;
  // The owner's private columns, indexed by slot.
  readonly #prev: Int32Array;
  readonly #next: Int32Array;
  #head = NONE;
  #tail = NONE;
  #size = 0;
  readonly #drift: Int8Array;
  readonly #flows: Uint32Array;
  /** Bytes already counted when the counters were last reset (the shared columns only grow). */
  readonly #bytesBase: Float64Array;
  /** The WAN address of the last unlocking knock (u32), 0 when unknown. */
  readonly #wan: Uint32Array;
  /** Interned user names: id -> name, name -> id. */
  #names: string[] = [];
  #ids = new Map<string, number>();

  /** A shared table for `workers` Workers holding at most `maxEntries` unlocks. */
  static createBuffer(maxEntries: number, workers: number): SharedArrayBuffer {
    return UnlockIndex.createBuffer({ maxEntries, workers });
  }

  /** An empty table (or a view of a shared one); defaults: idle 3600 s, no lifetime, 65536 entries. */
  constructor(options: UnlockTableOptions = {}) {
    this.#onEvent = options.onEvent ?? (() => {});
    const worker = options.worker ?? 0;
    const max = options.maxEntries ?? 65536;
    const buffer = options.buffer ?? UnlockIndex.createBuffer({ maxEntries: max });
    this.#x = new UnlockIndex(buffer, worker);
    this.owner = worker === 0;
    this.#max = Math.min(max, this.#x.capacity);
    const n = this.owner ? this.#x.capacity : 0;
    this.#prev = new Int32Array(n);
    this.#next = new Int32Array(n);
    this.#drift = new Int8Array(n);
    this.#flows = new Uint32Array(n);
    this.#bytesBase = new Float64Array(n);
    this.#wan = new Uint32Array(n);
    this.setTimeouts(options.idleTimeoutMs ?? 3_600_000, options.lifetimeMs ?? 0);
  }

  /** Idle timeout in force (see `setTimeouts`). */
  get idleTimeoutMs(): number {
    return this.#x.idleTimeoutMs;
  }

  /** Absolute lifetime in force; 0 for none. */
  get lifetimeMs(): number {
    return this.#x.lifetimeMs;
  }

  /** Owner: changes the idle timeout and lifetime; they apply to existing unlocks, in every Worker, at once. */
  setTimeouts(idleTimeoutMs: number, lifetimeMs: number): void {
    if (this.owner) this.#x.setTimeouts(idleTimeoutMs, lifetimeMs);
  }

  /** Owner: the users' first ports, which trackers must leave to the verifier (`isKnockPort`). */
  setFirstPorts(ports: Iterable<number>): void {
    if (this.owner) this.#x.setFirstPorts(ports);
  }

  /**
   * Whether a packet to `port` may be a knock: some user's first port, or
   * in the derived range, where every later knock of every sequence lies
   * (knock-protocol.md). Hot path.
   */
  isKnockPort(port: number): boolean {
    return (port >= KNOCK_PORT_BASE && port < DERIVED_END) || this.#x.isFirstPort(port);
  }

  /** Most entries; beyond, the least recently unlocked is evicted. */
  get maxEntries(): number {
    return this.#max;
  }

  /** Number of entries (expired ones not yet removed by `expire` included). */
  get size(): number {
    return this.#x.size;
  }

  /** Removed entries whose slots wait for every Worker's quiescent point. */
  get limbo(): number {
    return this.#x.limbo;
  }

  /** Bytes held by the shared buffer and the owner's private columns. */
  get byteLength(): number {
    return this.#x.byteLength + this.#prev.length * (4 + 4 + 1 + 4 + 8 + 4);
  }

  /** This Worker holds no entry now (between read batches; see UnlockIndex). */
  quiescent(): void {
    this.#x.quiescent();
  }

  /** This Worker is about to block on its device. */
  offline(): void {
    this.#x.offline();
  }

  /**
   * Owner: unlocks `ip` for `user` (a new unlock, or a refresh of an
   * existing one) after a knock to WAN address `wanAddr` (u32; 0 when
   * unknown). False when it could not be recorded (every spare slot waits
   * out a grace period).
   */
  unlock(ip: number, user: string, drift: number, nowMs: number, wanAddr = 0): boolean {
    if (!this.owner) return false;
    const x = this.#x, key = ip >>> 0, id = this.#intern(user);
    let s = x.find(key);
    if (s >= 0) {
      this.#moveToNewest(s);
      if (x.user[s] !== id) this.#resetCounters(s);
      x.unlockedAt[s] = nowMs;
      x.seen[s] = nowMs;
      x.user[s] = id;
    } else {
      if (this.#size >= this.#max) this.#remove(this.#head, "evicted");
      s = x.alloc();
      if (s < 0) return false;
      x.key[s] = key;
      x.user[s] = id;
      x.unlockedAt[s] = nowMs;
      x.seen[s] = nowMs;
      // A probe run full to MAX_PROBE lines: the oldest unlocks make room.
      while (!x.insert(s)) {
        if (this.#head === NONE) {
          x.release(s);
          return false;
        }
        this.#remove(this.#head, "evicted");
      }
      this.#link(s);
      this.#flows[s] = 0;
      this.#bytesBase[s] = 0;
    }
    this.#drift[s] = drift;
    this.#wan[s] = wanAddr;
    return true;
  }

  /** Whether `ip` is unlocked at `nowMs`. Hot path, any Worker. */
  isUnlocked(ip: number, nowMs: number): boolean {
    const s = this.#x.find(ip >>> 0);
    return s >= 0 && this.#x.liveAt(s, nowMs);
  }

  /** The user `ip` is unlocked for at `nowMs`, or null: `isUnlocked` and `userOf` in one probe. Hot path; owner (names are its own). */
  liveUser(ip: number, nowMs: number): string | null {
    const s = this.#x.find(ip >>> 0);
    return s >= 0 && this.#x.liveAt(s, nowMs) ? this.#nameOf(s) : null;
  }

  /** The user `ip` is (or was, until `expire` runs) unlocked for, or null. Hot path; owner. */
  userOf(ip: number): string | null {
    const s = this.#x.find(ip >>> 0);
    return s >= 0 ? this.#nameOf(s) : null;
  }

  /**
   * Notes a packet of `bytes` on an admitted flow of `ip` in this Worker's
   * own column (no message; the owner folds every column); false if `ip` is
   * not in the table. Any Worker.
   */
  touch(ip: number, nowMs: number, bytes = 0): boolean {
    const s = this.#x.find(ip >>> 0);
    if (s < 0) return false;
    this.#x.touch(s, nowMs, bytes);
    return true;
  }

  /** Owner: counts a new flow admitted for `ip` (a new session refreshes the unlock). */
  admitFlow(ip: number, nowMs: number): boolean {
    const s = this.owner ? this.#x.find(ip >>> 0) : NONE;
    if (s < 0) return false;
    this.#flows[s]++;
    this.#x.touch(s, nowMs, 0);
    return true;
  }

  /** Owner: ends `ip`'s unlock on purpose; false if it had none. */
  revoke(ip: number, by = "operator"): boolean {
    const s = this.owner ? this.#x.find(ip >>> 0) : NONE;
    if (s < 0) return false;
    this.#revokeSlot(s, by);
    return true;
  }

  /** Owner: ends every unlock of `user` (e.g. when the user is deleted); returns how many. */
  revokeUser(user: string, by = "user-deleted"): number {
    const id = this.#ids.get(user);
    let n = 0;
    for (let s = this.#head; s !== NONE && id !== undefined;) {
      const next = this.#next[s];
      if (this.#x.user[s] === id) {
        this.#revokeSlot(s, by);
        n++;
      }
      s = next;
    }
    return n;
  }

  /** Owner: removes the unlocks that ended by `nowMs`; returns (and emits) their events. */
  expire(nowMs: number): UnlockExpired[] {
    const out: UnlockExpired[] = [];
    if (!this.owner) return out;
    this.#x.advance();
    for (let s = this.#head; s !== NONE;) {
      const next = this.#next[s];
      const reason = this.#expiryReason(s, nowMs);
      if (reason !== null) out.push(this.#remove(s, reason));
      s = next;
    }
    return out;
  }

  /** Every entry, oldest unlock first (owner; a reader has no names: none). */
  list(): UnlockInfo[] {
    const out: UnlockInfo[] = [];
    for (let s = this.#head; s !== NONE; s = this.#next[s]) {
      out.push({ ...this.#snapshot(s), expiresAt: this.#expiresAt(s) });
    }
    return out;
  }

  /** The entry of `ip`, or null (owner). */
  get(ip: number): UnlockInfo | null {
    const s = this.owner ? this.#x.find(ip >>> 0) : NONE;
    return s < 0 ? null : { ...this.#snapshot(s), expiresAt: this.#expiresAt(s) };
  }

  /** A serialisable snapshot for persistence across restarts. */
  toJSON(): UnlockSnapshotEntry[] {
    const out: UnlockSnapshotEntry[] = [];
    for (let s = this.#head; s !== NONE; s = this.#next[s]) out.push(this.#snapshot(s));
    return out;
  }

  /**
   * Owner: replaces the contents with a snapshot, leaving out entries
   * already ended at `nowMs` or malformed. Returns how many were restored.
   */
  restore(entries: readonly UnlockSnapshotEntry[], nowMs: number): number {
    if (!this.owner) return 0;
    while (this.#head !== NONE) this.#x.remove(this.#unlink(this.#head));
    const x = this.#x;
    for (const e of entries) {
      const ip = typeof e.ip === "string" ? parseIpv4(e.ip) : null;
      if (ip === null || typeof e.user !== "string" || !(e.lastSeen >= 0)) continue;
      if (x.find(ip) >= 0) continue;
      const wan = typeof e.wanAddress === "string" ? parseIpv4(e.wanAddress) ?? 0 : 0;
      if (!this.unlock(ip, e.user, e.drift | 0, e.unlockedAt, wan)) continue;
      const s = x.find(ip);
      x.seen[s] = e.lastSeen;
      this.#flows[s] = e.flows >>> 0;
      x.bytes[s] = Number(e.bytes) || 0;
      if (this.#expiryReason(s, nowMs) !== null) x.remove(this.#unlink(s));
    }
    return this.#size;
  }

  #nameOf(s: number): string {
    return this.#names[this.#x.user[s]] ?? "";
  }

  #snapshot(s: number): UnlockSnapshotEntry {
    const x = this.#x;
    return {
      ip: formatIpv4(x.key[s]),
      user: this.#nameOf(s),
      unlockedAt: x.unlockedAt[s],
      lastSeen: x.lastSeen(s),
      drift: this.#drift[s],
      flows: this.#flows[s],
      bytes: x.bytesOf(s) - this.#bytesBase[s],
      wanAddress: this.#wan[s] === 0 ? "" : formatIpv4(this.#wan[s]),
    };
  }

  #expiresAt(s: number): number {
    const x = this.#x, life = x.lifetimeMs;
    const idle = x.lastSeen(s) + x.idleTimeoutMs;
    return life > 0 ? Math.min(idle, x.unlockedAt[s] + life) : idle;
  }

  #expiryReason(s: number, nowMs: number): UnlockExpiryReason | null {
    const x = this.#x, life = x.lifetimeMs;
    if (life > 0 && nowMs >= x.unlockedAt[s] + life) return "lifetime";
    return nowMs >= x.lastSeen(s) + x.idleTimeoutMs ? "idle" : null;
  }

  #remove(s: number, reason: UnlockExpiryReason): UnlockExpired {
    const event: UnlockExpired = {
      type: "unlock-expired",
      ip: formatIpv4(this.#x.key[s]),
      user: this.#nameOf(s),
      reason,
    };
    this.#x.remove(this.#unlink(s));
    this.#onEvent(event);
    return event;
  }

  #revokeSlot(s: number, by: string): void {
    const ip = formatIpv4(this.#x.key[s]);
    const user = this.#nameOf(s);
    this.#x.remove(this.#unlink(s));
    this.#onEvent({ type: "unlock-revoked", ip, user, by });
  }

  #resetCounters(s: number): void {
    this.#flows[s] = 0;
    this.#bytesBase[s] = this.#x.bytesOf(s);
  }

  #intern(user: string): number {
    let id = this.#ids.get(user);
    if (id === undefined) {
      id = this.#names.length;
      this.#names.push(user);
      this.#ids.set(user, id);
    }
    return id;
  }

  /** Links slot `s` as the newest entry. */
  #link(s: number): void {
    this.#prev[s] = this.#tail;
    this.#next[s] = NONE;
    if (this.#tail === NONE) this.#head = s;
    else this.#next[this.#tail] = s;
    this.#tail = s;
    this.#size++;
  }

  /** Unlinks slot `s`; returns it. */
  #unlink(s: number): number {
    const p = this.#prev[s], n = this.#next[s];
    if (p === NONE) this.#head = n;
    else this.#next[p] = n;
    if (n === NONE) this.#tail = p;
    else this.#prev[n] = p;
    this.#size--;
    return s;
  }

  #moveToNewest(s: number): void {
    if (this.#tail === s) return;
    this.#unlink(s);
    this.#link(s);
  }
}
