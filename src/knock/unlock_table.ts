/**
 * `UnlockTable`: which source IPs are unlocked, for which user, until when.
 * Built for up to a million entries: an `IpSlotMap` (IPv4 -> slot) and flat
 * typed-array columns indexed by slot, user names interned once. The hot-path
 * calls (`isUnlocked`, `liveUser`, `userOf`, `touch`, `admitFlow`) are one hash probe and
 * a few array reads or writes: no allocation, no throw.
 */

import { formatIpv4, parseIpv4 } from "../packet/address.ts";
import type { UnlockEvent, UnlockExpired, UnlockExpiryReason } from "./events.ts";
import { growF64, growI8, growU32 } from "./_typed.ts";
import { IpSlotMap } from "./ip_slot_map.ts";

/** Tunables of the unlock table. */
export interface UnlockTableOptions {
  /** An unlock ends after this long with no packet on an admitted flow and no new session. */
  idleTimeoutMs?: number;
  /** An unlock ends this long after its knock whatever the traffic; 0 for never. */
  lifetimeMs?: number;
  /** Most unlocked IPs; the least recently unlocked is evicted beyond. */
  maxEntries?: number;
  /** Receives `unlock-expired` and `unlock-revoked` events. */
  onEvent?: (event: UnlockEvent) => void;
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

/** Source IP -> unlock; see the module comment. */
export class UnlockTable {
  /** Idle timeout in force (see `setTimeouts`). */
  idleTimeoutMs: number;
  /** Absolute lifetime in force; 0 for none. */
  lifetimeMs: number;
  readonly #onEvent: (event: UnlockEvent) => void;
  readonly #map: IpSlotMap;
  #user = new Uint32Array(0);
  #unlockedAt = new Float64Array(0);
  #lastSeen = new Float64Array(0);
  #drift = new Int8Array(0);
  #flows = new Uint32Array(0);
  #bytes = new Float64Array(0);
  /** The WAN address of the last unlocking knock (u32), 0 when unknown. */
  #wan = new Uint32Array(0);
  /** Interned user names: id -> name, name -> id. */
  #names: string[] = [];
  #ids = new Map<string, number>();

  /** An empty table; defaults: idle 3600 s, no lifetime, 1M entries. */
  constructor(options: UnlockTableOptions = {}) {
    this.idleTimeoutMs = options.idleTimeoutMs ?? 3_600_000;
    this.lifetimeMs = options.lifetimeMs ?? 0;
    this.#onEvent = options.onEvent ?? (() => {});
    this.#map = new IpSlotMap(options.maxEntries ?? 1 << 20);
    this.#grow();
  }

  /** Changes the idle timeout and lifetime; they apply to existing unlocks at once. */
  setTimeouts(idleTimeoutMs: number, lifetimeMs: number): void {
    this.idleTimeoutMs = idleTimeoutMs;
    this.lifetimeMs = lifetimeMs;
  }

  /** Number of entries (expired ones not yet removed by `expire` included). */
  get size(): number {
    return this.#map.size;
  }

  /** Bytes held by the table's typed arrays. */
  get byteLength(): number {
    return this.#map.byteLength + this.#map.capacity * (4 + 8 + 8 + 1 + 4 + 8 + 4);
  }

  /**
   * Unlocks `ip` for `user` (a new unlock, or a refresh of an existing one)
   * after a knock to WAN address `wanAddr` (u32; 0 when unknown).
   */
  unlock(ip: number, user: string, drift: number, nowMs: number, wanAddr = 0): void {
    let s = this.#map.find(ip);
    const id = this.#intern(user);
    if (s >= 0) {
      this.#map.moveToNewest(s);
      if (this.#user[s] !== id) this.#resetCounters(s);
    } else {
      if (this.#map.full) this.#remove(this.#map.oldest(), "evicted");
      s = this.#map.insert(ip);
      if (s >= this.#user.length) this.#grow();
      this.#resetCounters(s);
    }
    this.#user[s] = id;
    this.#unlockedAt[s] = nowMs;
    this.#lastSeen[s] = nowMs;
    this.#drift[s] = drift;
    this.#wan[s] = wanAddr;
  }

  /** Whether `ip` is unlocked at `nowMs`. Hot path. */
  isUnlocked(ip: number, nowMs: number): boolean {
    const s = this.#map.find(ip);
    return s >= 0 && this.#expiryReason(s, nowMs) === null;
  }

  /** The user `ip` is unlocked for at `nowMs`, or null: `isUnlocked` and `userOf` in one probe. Hot path. */
  liveUser(ip: number, nowMs: number): string | null {
    const s = this.#map.find(ip);
    return s >= 0 && this.#expiryReason(s, nowMs) === null ? this.#names[this.#user[s]] : null;
  }

  /** The user `ip` is (or was, until `expire` runs) unlocked for, or null. Hot path. */
  userOf(ip: number): string | null {
    const s = this.#map.find(ip);
    return s >= 0 ? this.#names[this.#user[s]] : null;
  }

  /** Notes a packet of `bytes` on an admitted flow of `ip`; false if `ip` is not in the table. */
  touch(ip: number, nowMs: number, bytes = 0): boolean {
    const s = this.#map.find(ip);
    if (s < 0) return false;
    if (nowMs > this.#lastSeen[s]) this.#lastSeen[s] = nowMs;
    this.#bytes[s] += bytes;
    return true;
  }

  /** Counts a new flow admitted for `ip` (a new session refreshes the unlock). */
  admitFlow(ip: number, nowMs: number): boolean {
    const s = this.#map.find(ip);
    if (s < 0) return false;
    this.#flows[s]++;
    if (nowMs > this.#lastSeen[s]) this.#lastSeen[s] = nowMs;
    return true;
  }

  /** Ends `ip`'s unlock on purpose; false if it had none. */
  revoke(ip: number, by = "operator"): boolean {
    const s = this.#map.find(ip);
    if (s < 0) return false;
    this.#revokeSlot(s, by);
    return true;
  }

  /** Ends every unlock of `user` (e.g. when the user is deleted); returns how many. */
  revokeUser(user: string, by = "user-deleted"): number {
    const id = this.#ids.get(user);
    let n = 0;
    for (let s = this.#map.oldest(); s !== -1 && id !== undefined;) {
      const next = this.#map.newer(s);
      if (this.#user[s] === id) {
        this.#revokeSlot(s, by);
        n++;
      }
      s = next;
    }
    return n;
  }

  /** Removes the unlocks that ended by `nowMs`; returns (and emits) their events. */
  expire(nowMs: number): UnlockExpired[] {
    const out: UnlockExpired[] = [];
    for (let s = this.#map.oldest(); s !== -1;) {
      const next = this.#map.newer(s);
      const reason = this.#expiryReason(s, nowMs);
      if (reason !== null) out.push(this.#remove(s, reason));
      s = next;
    }
    return out;
  }

  /** Every entry, oldest unlock first. */
  list(): UnlockInfo[] {
    const out: UnlockInfo[] = [];
    for (let s = this.#map.oldest(); s !== -1; s = this.#map.newer(s)) {
      out.push({ ...this.#snapshot(s), expiresAt: this.#expiresAt(s) });
    }
    return out;
  }

  /** The entry of `ip`, or null. */
  get(ip: number): UnlockInfo | null {
    const s = this.#map.find(ip);
    return s < 0 ? null : { ...this.#snapshot(s), expiresAt: this.#expiresAt(s) };
  }

  /** A serialisable snapshot for persistence across restarts. */
  toJSON(): UnlockSnapshotEntry[] {
    const out: UnlockSnapshotEntry[] = [];
    for (let s = this.#map.oldest(); s !== -1; s = this.#map.newer(s)) out.push(this.#snapshot(s));
    return out;
  }

  /**
   * Replaces the contents with a snapshot, leaving out entries already ended
   * at `nowMs` or malformed. Returns how many were restored.
   */
  restore(entries: readonly UnlockSnapshotEntry[], nowMs: number): number {
    this.#map.clear();
    for (const e of entries) {
      const ip = typeof e.ip === "string" ? parseIpv4(e.ip) : null;
      if (ip === null || typeof e.user !== "string" || !(e.lastSeen >= 0)) continue;
      if (this.#map.find(ip) >= 0) continue;
      const wan = typeof e.wanAddress === "string" ? parseIpv4(e.wanAddress) ?? 0 : 0;
      this.unlock(ip, e.user, e.drift | 0, e.unlockedAt, wan);
      const s = this.#map.find(ip);
      this.#lastSeen[s] = e.lastSeen;
      this.#flows[s] = e.flows >>> 0;
      this.#bytes[s] = Number(e.bytes) || 0;
      if (this.#expiryReason(s, nowMs) !== null) this.#map.delete(s);
    }
    return this.#map.size;
  }

  #snapshot(s: number): UnlockSnapshotEntry {
    return {
      ip: formatIpv4(this.#map.keyOf(s)),
      user: this.#names[this.#user[s]],
      unlockedAt: this.#unlockedAt[s],
      lastSeen: this.#lastSeen[s],
      drift: this.#drift[s],
      flows: this.#flows[s],
      bytes: this.#bytes[s],
      wanAddress: this.#wan[s] === 0 ? "" : formatIpv4(this.#wan[s]),
    };
  }

  #expiresAt(s: number): number {
    const idle = this.#lastSeen[s] + this.idleTimeoutMs;
    return this.lifetimeMs > 0 ? Math.min(idle, this.#unlockedAt[s] + this.lifetimeMs) : idle;
  }

  #expiryReason(s: number, nowMs: number): UnlockExpiryReason | null {
    if (this.lifetimeMs > 0 && nowMs >= this.#unlockedAt[s] + this.lifetimeMs) return "lifetime";
    return nowMs >= this.#lastSeen[s] + this.idleTimeoutMs ? "idle" : null;
  }

  #remove(s: number, reason: UnlockExpiryReason): UnlockExpired {
    const event: UnlockExpired = {
      type: "unlock-expired",
      ip: formatIpv4(this.#map.keyOf(s)),
      user: this.#names[this.#user[s]],
      reason,
    };
    this.#map.delete(s);
    this.#onEvent(event);
    return event;
  }

  #revokeSlot(s: number, by: string): void {
    const ip = formatIpv4(this.#map.keyOf(s));
    const user = this.#names[this.#user[s]];
    this.#map.delete(s);
    this.#onEvent({ type: "unlock-revoked", ip, user, by });
  }

  #resetCounters(s: number): void {
    this.#flows[s] = 0;
    this.#bytes[s] = 0;
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

  #grow(): void {
    const n = this.#map.capacity;
    this.#user = growU32(this.#user, n);
    this.#unlockedAt = growF64(this.#unlockedAt, n);
    this.#lastSeen = growF64(this.#lastSeen, n);
    this.#drift = growI8(this.#drift, n);
    this.#flows = growU32(this.#flows, n);
    this.#bytes = growF64(this.#bytes, n);
    this.#wan = growU32(this.#wan, n);
  }
}
