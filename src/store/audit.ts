/**
 * The audit log: one entry per change, written in the same atomic operation
 * as the change itself, with secrets and password hashes redacted.
 *
 * Retention: `prune` deletes the entries older than `maxAgeDays` and, once
 * there are more than `maxEntries`, the oldest down to 90 % of it, in
 * atomic operations of `PRUNE_BATCH` deletes. It runs on a timer
 * (`AuditPruner`, hourly), never per entry, so a busy log costs one delete
 * batch per hundred entries. Nodes sharing a store take turns: a run first
 * claims `["meta","audit-prune"]` (a checked write), and skips while another
 * node's claim is younger than the interval. Between runs the log may hold
 * up to an hour's entries above the bound.
 */
import type { Clock } from "../clock.ts";
import { UlidFactory, ulidFloor } from "./_ids.ts";
import type { StoreAtomic, StoreKv } from "./store_kv.ts";

/** How long and how many audit entries the store keeps. */
export interface AuditRetention {
  /** Entries beyond this many (the oldest first) are deleted, down to 90 % of it. */
  maxEntries: number;
  /** Entries older than this are deleted. */
  maxAgeDays: number;
}

/** The default retention: a year, at most 100,000 entries (about 100 MB; etcd caches every key). */
export const DEFAULT_AUDIT_RETENTION: Readonly<AuditRetention> = Object.freeze({
  maxEntries: 100_000,
  maxAgeDays: 365,
});

/** Deletes per atomic operation: under etcd's default `--max-txn-ops` (128). */
export const PRUNE_BATCH = 100;

/** How often `AuditPruner` runs, and how long one node's claim keeps the others off. */
export const PRUNE_INTERVAL_MS = 3_600_000;

/** A count prune leaves this share of `maxEntries`, so it deletes at least a tenth of it. */
const LOW_WATER = 0.9;

const CLAIM: Deno.KvKey = ["meta", "audit-prune"];

/** What one `prune` did. */
export interface PruneResult {
  /** False when another node's claim was younger than the interval (nothing read or deleted). */
  ran: boolean;
  /** Entries deleted for their age, then for their number. */
  expired: number;
  excess: number;
  /** Atomic operations that deleted them. */
  batches: number;
}

/** One recorded change. */
export interface AuditEntry {
  /** Time-ordered id (ULID layout); later entries sort after earlier ones. */
  id: string;
  /** Milliseconds since the epoch. */
  time: number;
  /** Who made the change: a user name or "system". */
  actor: string;
  /** What was done, `<resource>.<verb>`, e.g. "user.create", "rule.update". */
  action: string;
  /** The record changed, e.g. the user or rule name. */
  target: string;
  /** The record before the change (redacted), null on create. */
  before: unknown;
  /** The record after the change (redacted), null on delete. */
  after: unknown;
}

/** What a repository hands the log; id and time are filled in. */
export interface AuditChange {
  actor: string;
  action: string;
  target: string;
  before?: unknown;
  after?: unknown;
}

/** Options of `AuditLog.listAudit`. */
export interface AuditQuery {
  /** At most this many entries (default 100, at most 1000). */
  limit?: number;
  /** Only entries older than this id (for paging back). */
  before?: string;
}

const PREFIX: Deno.KvKey = ["audit"];

/** Field names whose values never reach the audit log. */
const SECRET_FIELDS = new Set([
  "password",
  "passwordHash",
  "secret",
  "secretEnc",
  "pendingSecretEnc",
  "csrfToken",
  "idHash",
  "token",
]);

/** A deep copy of `value` with every secret field replaced by "[redacted]". */
export function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined) continue;
    out[k] = SECRET_FIELDS.has(k) ? "[redacted]" : redact(v);
  }
  return out;
}

/** Reads and stages audit entries. */
export class AuditLog {
  readonly #ids: UlidFactory;

  /** A log over `kv`, timestamped by `clock`. */
  constructor(private readonly kv: StoreKv, private readonly clock: Clock) {
    this.#ids = new UlidFactory(clock);
  }

  /** Adds the entry for `change` to `op`; it lands only if `op` commits. */
  stage(op: StoreAtomic, change: AuditChange): AuditEntry {
    const entry: AuditEntry = {
      id: this.#ids.next(),
      time: this.clock.now(),
      actor: change.actor,
      action: change.action,
      target: change.target,
      before: redact(change.before ?? null),
      after: redact(change.after ?? null),
    };
    op.set([...PREFIX, entry.id], entry);
    return entry;
  }

  /** Entries newest first. */
  async listAudit(query: AuditQuery = {}): Promise<AuditEntry[]> {
    const limit = Math.min(Math.max(1, query.limit ?? 100), 1000);
    const selector: Deno.KvListSelector = query.before === undefined
      ? { prefix: PREFIX }
      : { prefix: PREFIX, end: [...PREFIX, query.before] };
    const out: AuditEntry[] = [];
    for await (const e of this.kv.list<AuditEntry>(selector, { reverse: true, limit })) {
      out.push(e.value);
    }
    return out;
  }

  /** How many entries the log holds. */
  async countAudit(): Promise<number> {
    if (this.kv.count !== undefined) return await this.kv.count({ prefix: PREFIX });
    let n = 0;
    for await (const _ of this.kv.list({ prefix: PREFIX })) n++;
    return n;
  }

  /**
   * Applies `retention` (see the module comment) unless another node claimed
   * a run less than `claimMs` ago; `force` skips the claim (tests, tools).
   */
  async prune(
    retention: AuditRetention,
    options: { claimMs?: number; force?: boolean } = {},
  ): Promise<PruneResult> {
    const now = this.clock.now();
    const result: PruneResult = { ran: false, expired: 0, excess: 0, batches: 0 };
    if (options.force !== true && !(await this.#claim(now, options.claimMs ?? PRUNE_INTERVAL_MS))) {
      return result;
    }
    result.ran = true;
    const cutoff = [...PREFIX, ulidFloor(now - retention.maxAgeDays * 86_400_000)];
    result.expired = await this.#deleteOldest({ prefix: PREFIX, end: cutoff }, Infinity, result);
    const count = await this.countAudit();
    if (count > retention.maxEntries) {
      const excess = count - Math.floor(retention.maxEntries * LOW_WATER);
      result.excess = await this.#deleteOldest({ prefix: PREFIX }, excess, result);
    }
    return result;
  }

  async #claim(now: number, claimMs: number): Promise<boolean> {
    const claim = await this.kv.get<{ at: number }>(CLAIM);
    if (claim.value !== null && now - claim.value.at < claimMs && claim.value.at <= now) {
      return false;
    }
    return (await this.kv.atomic().check(claim).set(CLAIM, { at: now }).commit()).ok;
  }

  /** Deletes up to `max` of the oldest entries `selector` covers, a batch per atomic operation. */
  async #deleteOldest(
    selector: Deno.KvListSelector,
    max: number,
    result: PruneResult,
  ): Promise<number> {
    let deleted = 0;
    while (deleted < max) {
      const keys: Deno.KvKey[] = [];
      const limit = Math.min(PRUNE_BATCH, max - deleted);
      for await (const e of this.kv.list(selector, { limit })) keys.push(e.key);
      if (keys.length === 0) break;
      const op = this.kv.atomic();
      for (const k of keys) op.delete(k);
      await op.commit();
      result.batches++;
      deleted += keys.length;
      if (keys.length < limit) break;
    }
    return deleted;
  }
}

/** Runs `AuditLog.prune` now and every `PRUNE_INTERVAL_MS`; failures go to `onError`. */
export class AuditPruner {
  #timer: ReturnType<typeof setInterval> | undefined;
  #running: Promise<void> | null = null;

  /** A pruner of `audit` with `retention`. */
  constructor(
    private readonly audit: AuditLog,
    private readonly retention: AuditRetention,
    private readonly onError: (err: Error) => void = () => {},
  ) {}

  /** One run (a run in progress is joined, not doubled). */
  run(): Promise<void> {
    this.#running ??= this.audit.prune(this.retention).then(
      () => {},
      (err) => this.onError(err as Error),
    ).finally(() => this.#running = null);
    return this.#running;
  }

  /** Runs now and then every `intervalMs`. */
  start(intervalMs = PRUNE_INTERVAL_MS): void {
    if (this.#timer !== undefined) return;
    this.run();
    this.#timer = setInterval(() => this.run(), intervalMs);
  }

  /** Stops the timer and waits for a run in progress. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }
}
