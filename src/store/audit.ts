/**
 * The audit log: one entry per change, written in the same atomic operation
 * as the change itself, with secrets and password hashes redacted.
 */
import type { Clock } from "../clock.ts";
import { UlidFactory } from "./_ids.ts";
import type { StoreAtomic, StoreKv } from "./store_kv.ts";

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
}
