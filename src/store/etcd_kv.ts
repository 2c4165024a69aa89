/**
 * `EtcdKv`: the repositories' `StoreKv` subset over an etcd cluster, so every
 * repository and every uniqueness rule (user names, first knock ports,
 * public ports per WAN address, all of them `atomic().check()`s) runs
 * unchanged on etcd, and two appliances cannot both win.
 *
 * The mapping:
 * - keys: the cluster `prefix` (UTF-8) and the tuple encoded order-preserving
 *   (`etcd_codec.ts`); `list` is one etcd range (paged at one revision, so a
 *   listing is one consistent snapshot), `reverse` is a descending sort;
 * - versionstamp: the key's `mod_revision` as 20 hex digits; a commit's
 *   versionstamp is the txn's revision;
 * - `atomic()`: one etcd txn. A check of a present key compares
 *   `mod_revision`, of an absent one (`versionstamp: null`) `version == 0`;
 *   the mutations are the txn's success branch (several mutations of one key:
 *   the last wins, as in Deno KV, since etcd refuses duplicate keys in a txn).
 *   etcd caps a txn at `--max-txn-ops` (128 by default): an operation with
 *   checks beyond that fails; a check-less one above it commits in pieces,
 *   which only the repositories' bulk writes (unlock snapshot, knock state)
 *   do, and their parts stand alone.
 * - `expireIn`: leases, on a 60 s grid: every key expiring in the same
 *   minute shares one lease (granted once, kept in a map), so a TTL costs no
 *   extra write per key, and a key lives at most 60 s past its `expireIn`.
 *   That is the same lazy "at least" contract as Deno KV's, and every
 *   repository that sets `expireIn` already checks its own stored time
 *   (sessions' and knock state's `expiresAt`, used codes' `validUntil`), so
 *   the lease only tidies up. Unlocks keep stored times (`expiresAt` in the
 *   record) and no lease at all: an unlock refreshed by traffic is written
 *   only by the journal's periodic snapshot, never per packet.
 *
 * Degraded mode: a local cache of every key under the prefix, filled by a
 * full listing at open and kept by a watch from the listing's revision.
 * When no member answers (a request failing on every endpoint for the
 * client's retry budget, or the 1 s probe failing so, or every member
 * refusing the connection), reads come from the cache (the last known state)
 * and writes throw `StoreUnavailableError` at once. A supervisor retries;
 * when a member answers again it re-lists everything (at revision R,
 * replacing the cache, reporting what changed) and watches from R + 1; a
 * watch cancelled by a compaction past its revision re-lists the same way.
 * The probe also moves the watch when requests failed over to another
 * member (a watch on a silent member would just stay quiet).
 * `onChange` reports the areas (users, rules, settings, unlocks, knock
 * state) each watched batch touched, whichever node wrote it, own writes
 * included, and the knock-state records it wrote (a fleet merges them into
 * every verifier without re-reading them all). The cache holds every key, the audit log too: memory grows
 * with the store (about 1 KB per audit entry).
 */
import { StoreUnavailableError } from "./errors.ts";
import {
  childrenEnd,
  childrenStart,
  compareBytes,
  concatBytes,
  decodeKey,
  decodeValue,
  encodeKey,
  encodeValue,
  revisionOf,
  versionstampOf,
} from "./etcd_codec.ts";
import {
  b64,
  EtcdClient,
  type EtcdClientOptions,
  type EtcdKeyValue,
  type EtcdRangeResponse,
  EtcdRequestError,
  EtcdUnreachableError,
  unb64,
} from "./etcd_client.ts";
import type { KnockStateRecord } from "../knock/verifier.ts";
import type { StoreArea, StoreAtomic, StoreChange, StoreHealth, StoreKv } from "./store_kv.ts";

/** Options of `EtcdKv.open`. */
export interface EtcdKvOptions extends EtcdClientOptions {
  /** Key prefix of this cluster's data, e.g. `/knockgate/`. */
  prefix: string;
  /** How often a member is asked whether it still answers; default 1000 ms. */
  probeIntervalMs?: number;
  /** The members' `--max-txn-ops`; default 128 (etcd's default). */
  maxTxnOps?: number;
  /**
   * Open even when no member answers: nothing is loaded then, every read and
   * write throws `StoreUnavailableError` until a member answers and the
   * first listing lands (`loaded()`); the supervisor keeps trying. Default
   * false: `open` throws.
   */
  openUnreachable?: boolean;
}

interface Cached {
  key: Uint8Array;
  value: Uint8Array;
  modRev: number;
}

export type Mutation =
  | { type: "set"; key: Deno.KvKey; bytes: Uint8Array; expireIn?: number }
  | { type: "delete"; key: Deno.KvKey };

const LEASE_GRID_MS = 60_000;
const PAGE = 1000;
const utf8 = new TextEncoder();

function latin1(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 0x8000) {
    s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  }
  return s;
}

/** The area a stored key belongs to, if the data plane cares about it. */
export function areaOf(key: Deno.KvKey): StoreArea | null {
  switch (key[0]) {
    case "users":
      return "users";
    case "idx":
      return key[1] === "user-firstport" ? "users" : null;
    case "rules":
      return "rules";
    case "settings":
      return "settings";
    case "unlocks":
      return "unlocks";
    case "knock-state":
      return "knockState";
    default:
      return null;
  }
}

/** A txn compare for one `check` (exported for the mapping's unit tests). */
export function compareOf(fullKey: Uint8Array, versionstamp: string | null): unknown {
  if (versionstamp === null) {
    return { key: b64(fullKey), target: "VERSION", result: "EQUAL", version: "0" };
  }
  const rev = revisionOf(versionstamp);
  if (Number.isNaN(rev)) {
    throw new TypeError(`Invalid versionstamp ${JSON.stringify(versionstamp)}`);
  }
  return { key: b64(fullKey), target: "MOD", result: "EQUAL", mod_revision: String(rev) };
}

/** The mutations of one atomic operation with only the last one per key kept, in order. */
export function lastPerKey(mutations: readonly Mutation[], enc: (k: Deno.KvKey) => Uint8Array) {
  const last = new Map<string, number>();
  const keys = mutations.map((m) => enc(m.key));
  keys.forEach((k, i) => last.set(latin1(k), i));
  return mutations.flatMap((m, i) => last.get(latin1(keys[i])) === i ? [{ m, key: keys[i] }] : []);
}

/** The store over etcd; see the module comment. */
export class EtcdKv implements StoreKv {
  readonly #client: EtcdClient;
  readonly #prefix: Uint8Array;
  readonly #cache = new Map<string, Cached>();
  readonly #listeners = new Set<(c: StoreChange) => void>();
  readonly #leases = new Map<number, Promise<string>>();
  readonly #probeMs: number;
  readonly #maxOps: number;
  #connected = false;
  #lastContact = 0;
  #revision = 0;
  #closed = false;
  #watchAbort: AbortController | null = null;
  #watchEndpoint = "";
  #probeTimer: ReturnType<typeof setInterval> | undefined;
  #probing = false;
  #supervisor: Promise<void> = Promise.resolve();
  #wake: (() => void) | null = null;
  #loaded = false;
  readonly #firstLoad = Promise.withResolvers<void>();

  private constructor(options: EtcdKvOptions) {
    if (options.prefix === "") throw new TypeError("etcd store: the key prefix must not be empty");
    this.#client = new EtcdClient(options);
    this.#prefix = utf8.encode(options.prefix);
    this.#probeMs = options.probeIntervalMs ?? 1000;
    this.#maxOps = options.maxTxnOps ?? 128;
  }

  /**
   * Connects: lists every key under the prefix into the cache and starts the
   * watch. Throws `StoreUnavailableError` when no member answers (there is no
   * last known state to serve yet).
   */
  static async open(options: EtcdKvOptions): Promise<EtcdKv> {
    const kv = new EtcdKv(options);
    kv.#firstLoad.promise.catch(() => {});
    try {
      await kv.#resync(false);
    } catch (err) {
      if (!(err instanceof EtcdUnreachableError) || options.openUnreachable !== true) {
        kv.#client.close();
        if (err instanceof EtcdUnreachableError) {
          throw new StoreUnavailableError(`Cannot open the store: ${err.message}`);
        }
        throw err;
      }
    }
    kv.#supervisor = kv.#supervise();
    kv.#probeTimer = setInterval(() => kv.#probe(), kv.#probeMs);
    return kv;
  }

  /** The connection state (see `StoreHealth`). */
  health(): StoreHealth {
    return {
      backend: "etcd",
      connected: this.#connected,
      lastContactMs: this.#lastContact,
      revision: this.#revision,
      endpoint: this.#client.endpoint,
      loaded: this.#loaded,
    };
  }

  /**
   * Resolves once the whole prefix has been listed (at once after a normal
   * `open`); rejects when the store is closed before.
   */
  loaded(): Promise<void> {
    return this.#firstLoad.promise;
  }

  /** Calls `cb` after every watched batch of changes; returns the unsubscribe function. */
  onChange(cb: (change: StoreChange) => void): () => void {
    this.#listeners.add(cb);
    return () => this.#listeners.delete(cb);
  }

  async get<T = unknown>(key: Deno.KvKey): Promise<Deno.KvEntryMaybe<T>> {
    const [e] = await this.#readMany([key]);
    return e as Deno.KvEntryMaybe<T>;
  }

  async getMany<T extends readonly unknown[]>(
    keys: readonly [...{ [K in keyof T]: Deno.KvKey }],
  ): Promise<{ [K in keyof T]: Deno.KvEntryMaybe<T[K]> }> {
    return await this.#readMany(keys as readonly Deno.KvKey[]) as {
      [K in keyof T]: Deno.KvEntryMaybe<T[K]>;
    };
  }

  async set(
    key: Deno.KvKey,
    value: unknown,
    options?: { expireIn?: number },
  ): Promise<Deno.KvCommitResult> {
    return await this.atomic().set(key, value, options).commit() as Deno.KvCommitResult;
  }

  list<T = unknown>(
    selector: Deno.KvListSelector,
    options: Deno.KvListOptions = {},
  ): AsyncIterableIterator<Deno.KvEntry<T>> {
    return this.#list<T>(selector, options);
  }

  atomic(): StoreAtomic {
    return new EtcdAtomic(this);
  }

  /** How many keys `selector` covers (a count-only range: no value travels). */
  async count(selector: Deno.KvListSelector): Promise<number> {
    this.#usable();
    const [start, end] = this.#range(selector);
    const res = await this.#call<EtcdRangeResponse>("/v3/kv/range", {
      key: b64(start),
      range_end: b64(end),
      count_only: true,
    });
    return Number(res.count ?? 0);
  }

  /** Stops the watch and the probe; reads and writes fail afterwards. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#firstLoad.reject(new StoreUnavailableError("the etcd store was closed before it loaded"));
    clearInterval(this.#probeTimer);
    this.#watchAbort?.abort();
    this.#wake?.();
    this.#client.close();
  }

  /** Resolves once the background watch has stopped after `close`. */
  async closed(): Promise<void> {
    await this.#supervisor;
  }

  #full(key: Deno.KvKey): Uint8Array {
    return concatBytes(this.#prefix, encodeKey(key));
  }

  #entry(key: Deno.KvKey, c: Cached | undefined): Deno.KvEntryMaybe<unknown> {
    if (c === undefined) return { key, value: null, versionstamp: null };
    return { key, value: decodeValue(c.value), versionstamp: versionstampOf(c.modRev) };
  }

  #usable(): void {
    if (this.#closed) throw new Deno.errors.BadResource("the etcd store is closed");
  }

  /** Reads from the cache need a last known state. */
  #cached(): void {
    if (!this.#loaded) {
      throw new StoreUnavailableError(
        "Cannot read: no etcd member has answered since this node started (nothing loaded yet)",
      );
    }
  }

  async #readMany(keys: readonly Deno.KvKey[]): Promise<Deno.KvEntryMaybe<unknown>[]> {
    this.#usable();
    const full = keys.map((k) => this.#full(k));
    if (this.#connected) {
      try {
        // One read-only txn: every key at the same revision.
        const res = await this.#call<{ responses?: { response_range?: EtcdRangeResponse }[] }>(
          "/v3/kv/txn",
          { success: full.map((k) => ({ request_range: { key: b64(k) } })) },
        );
        return keys.map((key, i) => {
          const kv = res.responses?.[i]?.response_range?.kvs?.[0];
          return this.#entry(key, kv === undefined ? undefined : cachedOf(kv));
        });
      } catch (err) {
        if (!(err instanceof StoreUnavailableError)) throw err;
      }
    }
    this.#cached();
    return keys.map((key, i) => this.#entry(key, this.#cache.get(latin1(full[i]))));
  }

  #range(selector: Deno.KvListSelector): [Uint8Array, Uint8Array] {
    const s = selector as { prefix?: Deno.KvKey; start?: Deno.KvKey; end?: Deno.KvKey };
    const prefix = s.prefix === undefined ? undefined : this.#full(s.prefix);
    const start = s.start !== undefined ? this.#full(s.start) : childrenStart(prefix!);
    const end = s.end !== undefined ? this.#full(s.end) : childrenEnd(prefix!);
    return [start, end];
  }

  async *#list<T>(
    selector: Deno.KvListSelector,
    options: Deno.KvListOptions,
  ): AsyncGenerator<Deno.KvEntry<T>> {
    this.#usable();
    const [start, end] = this.#range(selector);
    const reverse = options.reverse === true;
    let left = options.limit ?? Infinity;
    if (this.#connected) {
      let from = start;
      let to = end;
      let revision: string | undefined;
      let served = false;
      try {
        while (left > 0) {
          const res = await this.#call<EtcdRangeResponse>("/v3/kv/range", {
            key: b64(from),
            range_end: b64(to),
            limit: String(Math.min(PAGE, left)),
            sort_order: reverse ? "DESCEND" : "ASCEND",
            sort_target: "KEY",
            ...(revision === undefined ? {} : { revision }),
          });
          revision ??= res.header?.revision;
          const kvs = res.kvs ?? [];
          for (const kv of kvs) {
            const c = cachedOf(kv);
            served = true;
            yield this.#entry(decodeKey(c.key.subarray(this.#prefix.length)), c) as Deno.KvEntry<T>;
          }
          left -= kvs.length;
          if (res.more !== true || kvs.length === 0) return;
          const last = unb64(kvs[kvs.length - 1].key);
          if (reverse) to = last;
          else from = concatBytes(last, Uint8Array.of(0));
        }
        return;
      } catch (err) {
        // A listing already half served cannot switch to the cache without repeating entries.
        if (!(err instanceof StoreUnavailableError) || served) throw err;
      }
    }
    this.#cached();
    const hits = [...this.#cache.values()]
      .filter((c) => compareBytes(c.key, start) >= 0 && compareBytes(c.key, end) < 0)
      .sort((a, b) => reverse ? compareBytes(b.key, a.key) : compareBytes(a.key, b.key));
    for (const c of hits.slice(0, Number.isFinite(left) ? left : undefined)) {
      yield this.#entry(decodeKey(c.key.subarray(this.#prefix.length)), c) as Deno.KvEntry<T>;
    }
  }

  /** Commits `checks` and `mutations` as one txn (see the module comment). */
  async commit(
    checks: readonly Deno.AtomicCheck[],
    mutations: readonly Mutation[],
  ): Promise<Deno.KvCommitResult | Deno.KvCommitError> {
    this.#usable();
    if (!this.#connected) {
      throw new StoreUnavailableError("Cannot write: no etcd member answers (degraded mode)");
    }
    const compare = checks.map((c) => compareOf(this.#full(c.key), c.versionstamp));
    const ops = lastPerKey(mutations, (k) => this.#full(k));
    if (compare.length > 0 && ops.length + compare.length > this.#maxOps) {
      throw new TypeError(
        `Cannot commit: ${ops.length} mutations and ${compare.length} checks exceed etcd's ` +
          `--max-txn-ops ${this.#maxOps}`,
      );
    }
    let result: Deno.KvCommitResult | Deno.KvCommitError = { ok: true, versionstamp: "" };
    const step = compare.length > 0 ? Math.max(1, ops.length) : this.#maxOps;
    for (let i = 0; i === 0 || i < ops.length; i += step) {
      result = await this.#txn(compare, ops.slice(i, i + step));
      if (!result.ok) return result;
    }
    return result;
  }

  async #txn(
    compare: unknown[],
    ops: { m: Mutation; key: Uint8Array }[],
  ): Promise<Deno.KvCommitResult | Deno.KvCommitError> {
    for (let attempt = 0;; attempt++) {
      const success = [];
      for (const { m, key } of ops) {
        if (m.type === "delete") {
          success.push({ request_delete_range: { key: b64(key) } });
          continue;
        }
        const put: Record<string, string> = { key: b64(key), value: b64(m.bytes) };
        if (m.expireIn !== undefined) put.lease = await this.#leaseFor(m.expireIn);
        success.push({ request_put: put });
      }
      // A failed compare reads the keys back: they may hold this very txn's first commit,
      // its answer lost (a timeout, a dropped connection) and the txn sent again.
      const failure = compare.length === 0
        ? undefined
        : ops.map(({ key }) => ({ request_range: { key: b64(key) } }));
      try {
        const res = await this.#call<TxnResponse>("/v3/kv/txn", { compare, success, failure });
        let rev = Number(res.header?.revision ?? 0);
        if (res.succeeded !== true) {
          const own = ownCommit(ops, res);
          if (own < 0) return { ok: false };
          rev = own;
        }
        for (const { m, key } of ops) {
          if (m.type === "set") this.#put({ key, value: m.bytes, modRev: rev });
          else this.#delete(key, rev);
        }
        return { ok: true, versionstamp: versionstampOf(rev) };
      } catch (err) {
        // A lease that expired under us (a clock step, a long outage): grant it again, once.
        if (err instanceof EtcdRequestError && /lease not found/.test(err.message) && attempt < 1) {
          this.#leases.clear();
          continue;
        }
        throw err;
      }
    }
  }

  #leaseFor(expireInMs: number): Promise<string> {
    const now = Date.now();
    const slot = Math.ceil((now + Math.max(1, expireInMs)) / LEASE_GRID_MS);
    for (const s of this.#leases.keys()) if (s * LEASE_GRID_MS <= now) this.#leases.delete(s);
    let lease = this.#leases.get(slot);
    if (lease === undefined) {
      const ttl = Math.ceil((slot * LEASE_GRID_MS - now) / 1000) + 1;
      lease = this.#call<{ ID: string }>("/v3/lease/grant", { TTL: String(ttl) }).then((r) => r.ID);
      lease.catch(() => this.#leases.delete(slot));
      this.#leases.set(slot, lease);
    }
    return lease;
  }

  /** One call; an unreachable cluster turns the store degraded and throws StoreUnavailableError. */
  async #call<T>(path: string, body: unknown): Promise<T> {
    try {
      const res = await this.#client.call<T>(path, body);
      this.#lastContact = Date.now();
      return res;
    } catch (err) {
      if (!(err instanceof EtcdUnreachableError)) throw err;
      this.#down();
      throw new StoreUnavailableError(`Cannot reach the store: ${err.message}`);
    }
  }

  #down(): void {
    if (!this.#connected) return;
    this.#connected = false;
    this.#watchAbort?.abort();
  }

  #put(c: Cached): void {
    const k = latin1(c.key);
    const old = this.#cache.get(k);
    if (old === undefined || old.modRev <= c.modRev) this.#cache.set(k, c);
  }

  #delete(key: Uint8Array, rev: number): void {
    const k = latin1(key);
    const old = this.#cache.get(k);
    if (old !== undefined && old.modRev < rev) this.#cache.delete(k);
  }

  #areaOfBytes(key: Uint8Array, into: Set<StoreArea>): StoreArea | null {
    try {
      const area = areaOf(decodeKey(key.subarray(this.#prefix.length)));
      if (area !== null) into.add(area);
      return area;
    } catch {
      return null; // a key of no tuple form under our prefix: not ours to report
    }
  }

  #emit(areas: Set<StoreArea>, knockState?: KnockStateRecord[]): void {
    if (areas.size === 0) return;
    const change: StoreChange = {
      areas: [...areas],
      revision: this.#revision,
      ...(knockState === undefined ? {} : { knockState }),
    };
    for (const cb of this.#listeners) {
      try {
        cb(change);
      } catch (err) {
        console.error(`store change listener failed: ${(err as Error).message}`);
      }
    }
  }

  /** Re-lists the whole prefix into the cache at one revision; `report`: emit what differs. */
  async #resync(report: boolean): Promise<void> {
    const end = prefixEnd(this.#prefix);
    const fresh = new Map<string, Cached>();
    let from = this.#prefix;
    let revision: string | undefined;
    for (;;) {
      const res = await this.#client.call<EtcdRangeResponse>("/v3/kv/range", {
        key: b64(from),
        range_end: b64(end),
        limit: String(PAGE),
        ...(revision === undefined ? {} : { revision }),
      });
      revision ??= res.header?.revision ?? "0";
      const kvs = res.kvs ?? [];
      for (const kv of kvs) {
        const c = cachedOf(kv);
        fresh.set(latin1(c.key), c);
      }
      if (res.more !== true || kvs.length === 0) break;
      from = concatBytes(unb64(kvs[kvs.length - 1].key), Uint8Array.of(0));
    }
    const areas = new Set<StoreArea>();
    if (report) {
      for (const [k, c] of fresh) {
        if (this.#cache.get(k)?.modRev !== c.modRev) this.#areaOfBytes(c.key, areas);
      }
      for (const [k, c] of this.#cache) if (!fresh.has(k)) this.#areaOfBytes(c.key, areas);
    }
    this.#cache.clear();
    for (const [k, c] of fresh) this.#cache.set(k, c);
    this.#revision = Number(revision);
    this.#lastContact = Date.now();
    this.#connected = true;
    this.#loaded = true;
    this.#firstLoad.resolve();
    this.#emit(areas);
  }

  /** Keeps the watch running; after an outage re-lists and watches again. */
  async #supervise(): Promise<void> {
    while (!this.#closed) {
      try {
        // Degraded (whoever noticed it: a request, the probe, the watch): re-list first.
        if (!this.#connected) await this.#resync(true);
        await this.#watch();
      } catch (err) {
        if (err instanceof EtcdUnreachableError || err instanceof StoreUnavailableError) {
          this.#down();
        } else if (!this.#closed && !(err instanceof DOMException && err.name === "AbortError")) {
          // A broken stream (its member killed): find a member that answers, then watch
          // again there from the revision we have.
          await this.#call("/v3/kv/range", { key: b64(this.#prefix), limit: "1" }).catch(() => {});
        }
      }
      if (!this.#closed) await this.#sleep(this.#connected ? 50 : 250);
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.#wake = null;
        resolve();
      }, ms);
      this.#wake = () => {
        clearTimeout(t);
        this.#wake = null;
        resolve();
      };
    });
  }

  /** Watches the prefix from the cache's revision + 1 until the stream ends or is aborted. */
  async #watch(): Promise<void> {
    // Checked in the same tick as the abort handle is published: a later #down() aborts it.
    if (!this.#connected) return;
    const abort = new AbortController();
    this.#watchAbort = abort;
    this.#watchEndpoint = this.#client.endpoint;
    const create = {
      key: b64(this.#prefix),
      range_end: b64(prefixEnd(this.#prefix)),
      start_revision: String(this.#revision + 1),
      progress_notify: true,
    };
    try {
      for await (const msg of this.#client.watch(create, abort.signal)) {
        this.#lastContact = Date.now();
        if (msg.canceled === true || msg.compact_revision !== undefined) {
          // Compacted past our revision: only a full re-list can catch up.
          await this.#resync(true);
          return;
        }
        const areas = new Set<StoreArea>();
        const knockState: unknown[] = [];
        for (const ev of msg.events ?? []) {
          const c = cachedOf(ev.kv);
          if (ev.type === "DELETE") this.#delete(c.key, c.modRev);
          else this.#put(c);
          const area = this.#areaOfBytes(c.key, areas);
          if (area === "knockState" && ev.type !== "DELETE") knockState.push(decodeValue(c.value));
        }
        const rev = Number(msg.header?.revision ?? 0);
        if (rev > this.#revision && (msg.events?.length ?? 0) > 0) this.#revision = rev;
        this.#emit(areas, knockState as KnockStateRecord[]);
      }
    } finally {
      if (this.#watchAbort === abort) this.#watchAbort = null;
    }
  }

  /** Asks the current member whether it answers (a linearizable read); moves the watch if needed. */
  async #probe(): Promise<void> {
    if (this.#closed || !this.#connected) {
      this.#wake?.();
      return;
    }
    if (this.#probing) return; // the last one still waits for a timeout
    this.#probing = true;
    try {
      await this.#call("/v3/kv/range", { key: b64(this.#prefix), keys_only: true, limit: "1" });
    } catch {
      return; // #call turned the store degraded; the supervisor reconnects
    } finally {
      this.#probing = false;
    }
    // Requests failed over to another member: move the watch there too.
    if (this.#watchEndpoint !== this.#client.endpoint) this.#watchAbort?.abort();
  }
}

/** An answer of `/v3/kv/txn`. */
interface TxnResponse {
  header?: { revision?: string };
  succeeded?: boolean;
  responses?: { response_range?: EtcdRangeResponse }[];
}

/**
 * The revision of this txn's own earlier commit when the failure branch's
 * reads show every mutation in place (each put key holding its bytes, each
 * deleted key absent), else -1. Bytes equal to another node's write are
 * taken as this one's: the store then holds what this txn wanted, as if it
 * had run right after that write (a write of the store's carries a unique
 * audit id, or is a claim for the same IP, where that is the answer anyway).
 */
export function ownCommit(ops: readonly { m: Mutation; key: Uint8Array }[], res: TxnResponse) {
  let rev = 0;
  for (let i = 0; i < ops.length; i++) {
    const m = ops[i].m, kv = res.responses?.[i]?.response_range?.kvs?.[0];
    if (m.type === "delete") {
      if (kv !== undefined) return -1;
      continue;
    }
    if (kv === undefined || (kv.value ?? "") !== b64(m.bytes)) return -1;
    rev = Math.max(rev, Number(kv.mod_revision ?? 0));
  }
  return ops.length === 0 ? -1 : rev || Number(res.header?.revision ?? 0);
}

function cachedOf(kv: EtcdKeyValue): Cached {
  return { key: unb64(kv.key), value: unb64(kv.value), modRev: Number(kv.mod_revision ?? 0) };
}

/** etcd's "every key with this prefix" range end: the prefix with its last byte below 0xff + 1. */
function prefixEnd(prefix: Uint8Array): Uint8Array {
  const end = prefix.slice();
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  return Uint8Array.of(0);
}

class EtcdAtomic implements StoreAtomic {
  readonly #checks: Deno.AtomicCheck[] = [];
  readonly #mutations: Mutation[] = [];

  constructor(private readonly kv: EtcdKv) {}

  check(...checks: Deno.AtomicCheck[]): this {
    this.#checks.push(...checks);
    return this;
  }

  set(key: Deno.KvKey, value: unknown, options?: { expireIn?: number }): this {
    // Serialized now, as Deno KV does: a value of no stored form throws here, later edits do not count.
    this.#mutations.push({
      type: "set",
      key,
      bytes: encodeValue(value),
      expireIn: options?.expireIn,
    });
    return this;
  }

  delete(key: Deno.KvKey): this {
    this.#mutations.push({ type: "delete", key });
    return this;
  }

  commit(): Promise<Deno.KvCommitResult | Deno.KvCommitError> {
    return this.kv.commit(this.#checks, this.#mutations);
  }
}
