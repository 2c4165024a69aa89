/**
 * The part of Deno.Kv the repositories speak: `get`, `getMany`, `set`,
 * `list`, and `atomic()` with `check`, `set` (with `expireIn`), `delete` and
 * `commit`. A `Deno.Kv` is one (the single-box backend); `EtcdKv` is the
 * other, so every repository and every uniqueness rule runs unchanged on
 * either. Anything outside this subset (`sum`, `enqueue`, `watch`) is not
 * used by the store and not offered by `EtcdKv`.
 */
import type { KnockStateRecord } from "../knock/verifier.ts";

/** An atomic operation over a `StoreKv`. */
export interface StoreAtomic {
  /** The commit fails unless every entry's versionstamp is still the stored one (null: absent). */
  check(...checks: Deno.AtomicCheck[]): this;
  /** Stores `value` at `key`; `expireIn` lets the store drop it after that many ms (lazily). */
  set(key: Deno.KvKey, value: unknown, options?: { expireIn?: number }): this;
  /** Deletes `key` (nothing happens if it is absent). */
  delete(key: Deno.KvKey): this;
  /** Commits every mutation or none; `{ ok: false }` when a check failed. */
  commit(): Promise<Deno.KvCommitResult | Deno.KvCommitError>;
}

/** The key-value store the repositories use. */
export interface StoreKv {
  get<T = unknown>(key: Deno.KvKey): Promise<Deno.KvEntryMaybe<T>>;
  getMany<T extends readonly unknown[]>(
    keys: readonly [...{ [K in keyof T]: Deno.KvKey }],
  ): Promise<{ [K in keyof T]: Deno.KvEntryMaybe<T[K]> }>;
  set(
    key: Deno.KvKey,
    value: unknown,
    options?: { expireIn?: number },
  ): Promise<Deno.KvCommitResult>;
  list<T = unknown>(
    selector: Deno.KvListSelector,
    options?: Deno.KvListOptions,
  ): AsyncIterableIterator<Deno.KvEntry<T>>;
  atomic(): StoreAtomic;
  /**
   * How many keys `selector` covers, without reading their values (etcd: a
   * count-only range). Absent (Deno KV): the caller lists and counts.
   */
  count?(selector: Deno.KvListSelector): Promise<number>;
  close(): void;
}

/** What changed, by the store's areas. */
export type StoreArea = "users" | "rules" | "settings" | "unlocks" | "knockState";

/** One batch of changes seen on the cluster. */
export interface StoreChange {
  areas: readonly StoreArea[];
  /** The etcd revision the batch brought the cache to (0 for the KV backend). */
  revision: number;
  /**
   * The knock-state records the batch wrote (a watched batch); absent after
   * a re-list, when whoever needs them reads them all again.
   */
  knockState?: readonly KnockStateRecord[];
}

/** The store backend's connection state. */
export interface StoreHealth {
  backend: "kv" | "etcd";
  /** False while no etcd member answers (reads from the cache, writes refused). */
  connected: boolean;
  /** When a member last answered, ms since the epoch (0: never; the KV backend: now). */
  lastContactMs: number;
  /** The etcd revision the local state reflects (0 for the KV backend). */
  revision: number;
  /** The member requests go to (etcd only). */
  endpoint?: string;
  /**
   * False until this node has read the store once (etcd: a node started while
   * no member answered): it has no users, rules or settings, forwards
   * nothing and refuses reads and writes. Absent: true.
   */
  loaded?: boolean;
}
