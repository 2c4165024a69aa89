/**
 * Flow-table snapshots: the assured flows, written when the data plane stops
 * and checkpointed while it runs, restored at start before the device passes
 * traffic, so that a restart (SIGTERM, a crash, an upgrade) cuts no
 * established connection.
 *
 * Binary rather than JSON lines: each flow is a fixed FLOW_RECORD_BYTES record
 * the flow table writes straight into one buffer allocated up front (no
 * object or string per flow; a full table of 262144 flows is 31 MB and a few
 * milliseconds), and read back without parsing. Rules are named, not
 * numbered (stable ids are per process): a JSON list of the rule names the
 * flows hold sits in the header, and a record's rule field indexes it.
 *
 * Layout, little-endian: "KGFS", version u16, kind u8 (KIND_*), 0 u8,
 * saved-at u32 (Unix seconds), flows u32, names length u32, record size u32,
 * the names (UTF-8 JSON array), then the records.
 *
 * IPv6 flows are left out: their tuples hold interned ids (`ipv6_ids.ts`),
 * which the next run gives to other addresses. A restart ends them (TCP ones
 * may come back by loose pickup only over IPv4).
 */
import {
  ConnTable,
  FLAG_LOCAL,
  FLOW_RECORD_BYTES,
  STATUS_ASSURED,
  STATUS_DYING,
} from "../conntrack/mod.ts";
import { isIpv6Id } from "./ipv6_ids.ts";

/** Written by a stopping data plane: every window exact. */
export const KIND_FINAL = 1;
/** A checkpoint of a running one: windows may be behind the connections. */
export const KIND_CHECKPOINT = 0;

const MAGIC = 0x5346474b; // "KGFS"
const VERSION = 1;
const HEADER_BYTES = 24;
/** Offset of the kind byte (see `markCheckpoint`). */
const KIND_OFFSET = 6;

/** Options of a `FlowSnapshots`. */
export interface FlowSnapshotOptions {
  /** Flows one snapshot holds at most (the rest are left out; default: the table's capacity). */
  maxFlows?: number;
  /** Table slots one `tick` examines (default 16384). */
  sliceSlots?: number;
  /** Milliseconds between checkpoints (default 5000). */
  periodMs?: number;
}

/** What `restore` did. */
export interface RestoreResult {
  restored: number;
  /** Expired, or their tuples taken, or the table full. */
  skipped: number;
  kind: number;
  savedAt: number;
}

/** Takes snapshots of `ct` and restores them. One per pipeline. */
export class FlowSnapshots {
  readonly #ct: ConnTable;
  readonly #ruleName: (id: number) => string | null;
  readonly #ruleIdOf: (name: string) => number;
  readonly #records: DataView;
  readonly #max: number;
  readonly #slice: number;
  readonly #periodMs: number;
  /** Next slot of the checkpoint under way; -1 when none is. */
  #cursor = -1;
  #count = 0;
  #nextAt = 0;
  /** Flows in the last checkpoint handed out (-1: none yet). */
  #lastCount = -1;

  /** Allocates the record buffer (`maxFlows` records). */
  constructor(
    ct: ConnTable,
    ruleName: (id: number) => string | null,
    ruleIdOf: (name: string) => number,
    options: FlowSnapshotOptions = {},
  ) {
    this.#ct = ct;
    this.#ruleName = ruleName;
    this.#ruleIdOf = ruleIdOf;
    this.#max = Math.max(1, Math.min(options.maxFlows ?? ct.capacity, ct.capacity));
    this.#records = new DataView(new ArrayBuffer(this.#max * FLOW_RECORD_BYTES));
    this.#slice = Math.max(1, options.sliceSlots ?? 16384);
    this.#periodMs = options.periodMs ?? 5000;
  }

  /**
   * Housekeeping: starts a checkpoint every `periodMs` and advances the one
   * under way by one slice. Returns the finished snapshot's bytes, or null
   * (also for a second empty one in a row).
   */
  tick(nowMs: number): Uint8Array | null {
    if (this.#cursor < 0) {
      if (nowMs < this.#nextAt) return null;
      this.#nextAt = nowMs + this.#periodMs;
      this.#cursor = 0;
      this.#count = 0;
    }
    const end = Math.min(this.#cursor + this.#slice, this.#ct.capacity);
    this.#scan(this.#cursor, end);
    if (end < this.#ct.capacity) {
      this.#cursor = end;
      return null;
    }
    this.#cursor = -1;
    // An idle table is not rewritten every period.
    if (this.#count === 0 && this.#lastCount === 0) return null;
    this.#lastCount = this.#count;
    return this.#encode(KIND_CHECKPOINT, nowMs);
  }

  /** A whole snapshot at once (the data plane has stopped: nothing moves). */
  final(nowMs: number): Uint8Array {
    this.#count = 0;
    this.#scan(0, this.#ct.capacity);
    this.#cursor = -1;
    return this.#encode(KIND_FINAL, nowMs);
  }

  /** Records the assured, live flows of slots `from..to-1` (local ones end with the process). */
  #scan(from: number, to: number): void {
    const ct = this.#ct;
    for (let id = from; id < to && this.#count < this.#max; id++) {
      if (ct.proto(id) === 0) continue;
      const st = ct.status(id);
      if ((st & STATUS_ASSURED) === 0 || (st & STATUS_DYING) !== 0) continue;
      if ((ct.flags[id] & FLAG_LOCAL) !== 0) continue;
      // IPv6 flows name interned ids (ipv6_ids.ts), which mean nothing to the next run: not kept.
      if (isIpv6Id(ct.origSrc(id)) || isIpv6Id(ct.origDst(id))) continue;
      ct.saveFlow(id, this.#records, this.#count++ * FLOW_RECORD_BYTES);
    }
  }

  /** Header, rule names and the records, in a new buffer. */
  #encode(kind: number, nowMs: number): Uint8Array {
    const names: string[] = [];
    const index = new Map<number, number>();
    const recs = this.#records;
    for (let i = 0; i < this.#count; i++) {
      const at = i * FLOW_RECORD_BYTES + 4;
      const id = recs.getInt32(at, true);
      const name = id < 0 ? null : this.#ruleName(id);
      let n = -1;
      if (name !== null) {
        n = index.get(id) ?? -1;
        if (n < 0) {
          n = names.push(name) - 1;
          index.set(id, n);
        }
      }
      recs.setInt32(at, n, true);
    }
    const nameBytes = new TextEncoder().encode(JSON.stringify(names));
    const recBytes = this.#count * FLOW_RECORD_BYTES;
    const out = new Uint8Array(HEADER_BYTES + nameBytes.length + recBytes);
    const v = new DataView(out.buffer);
    v.setUint32(0, MAGIC, true);
    v.setUint16(4, VERSION, true);
    v.setUint8(KIND_OFFSET, kind);
    v.setUint32(8, Math.floor(nowMs / 1000), true);
    v.setUint32(12, this.#count, true);
    v.setUint32(16, nameBytes.length, true);
    v.setUint32(20, FLOW_RECORD_BYTES, true);
    out.set(nameBytes, HEADER_BYTES);
    out.set(new Uint8Array(recs.buffer, 0, recBytes), HEADER_BYTES + nameBytes.length);
    return out;
  }

  /**
   * Adds the flows of snapshot `data` to the table (rules by name: a rule
   * deleted since still names its flows). Throws on a malformed snapshot.
   */
  restore(data: Uint8Array, nowMs: number): RestoreResult {
    const h = readHeader(data);
    const names = JSON.parse(
      new TextDecoder().decode(data.subarray(HEADER_BYTES, HEADER_BYTES + h.namesLength)),
    ) as unknown;
    if (!Array.isArray(names) || names.some((n) => typeof n !== "string")) {
      throw new Error("flow snapshot: bad rule names");
    }
    const ids = (names as string[]).map((n) => this.#ruleIdOf(n));
    const base = HEADER_BYTES + h.namesLength;
    const v = new DataView(data.buffer, data.byteOffset + base, h.count * FLOW_RECORD_BYTES);
    const nowSec = Math.floor(nowMs / 1000);
    let restored = 0;
    for (let i = 0; i < h.count; i++) {
      const off = i * FLOW_RECORD_BYTES;
      const ref = v.getInt32(off + 4, true);
      const id = this.#ct.restoreFlow(v, off, nowSec, h.kind !== KIND_FINAL);
      if (id < 0) continue;
      this.#ct.ruleId[id] = ref >= 0 && ref < ids.length ? ids[ref] : -1;
      restored++;
    }
    return { restored, skipped: h.count - restored, kind: h.kind, savedAt: h.savedAt };
  }
}

interface Header {
  kind: number;
  savedAt: number;
  count: number;
  namesLength: number;
}

/** Checks the header of snapshot `data` against its length; throws when it does not fit. */
function readHeader(data: Uint8Array): Header {
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (data.byteLength < HEADER_BYTES || v.getUint32(0, true) !== MAGIC) {
    throw new Error("flow snapshot: not a snapshot");
  }
  if (v.getUint16(4, true) !== VERSION || v.getUint32(20, true) !== FLOW_RECORD_BYTES) {
    throw new Error("flow snapshot: another version");
  }
  const h = {
    kind: v.getUint8(KIND_OFFSET),
    savedAt: v.getUint32(8, true),
    count: v.getUint32(12, true),
    namesLength: v.getUint32(16, true),
  };
  if (data.byteLength !== HEADER_BYTES + h.namesLength + h.count * FLOW_RECORD_BYTES) {
    throw new Error("flow snapshot: truncated");
  }
  return h;
}

/**
 * Marks snapshot `data` a checkpoint, in place: once restored, its windows
 * fall behind the connections the new run forwards, should it crash before
 * its first checkpoint replaces the file.
 */
export function markCheckpoint(data: Uint8Array): Uint8Array {
  if (data.byteLength >= HEADER_BYTES) data[KIND_OFFSET] = KIND_CHECKPOINT;
  return data;
}

/** The snapshot file beside the store at `storePath`, or null for an in-memory store. */
export function snapshotPath(storePath: string): string | null {
  return storePath === ":memory:" ? null : `${storePath}.flows`;
}

/** Reads the snapshot at `path`; null when there is none. */
export async function readSnapshotFile(path: string): Promise<Uint8Array | null> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** Writes `data` to `path` atomically (a synced temporary file renamed over it), mode 0600. */
export async function writeSnapshotFile(path: string, data: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp`;
  const f = await Deno.open(tmp, { write: true, create: true, truncate: true, mode: 0o600 });
  try {
    let off = 0;
    while (off < data.byteLength) off += await f.write(data.subarray(off));
    await f.sync();
  } finally {
    f.close();
  }
  await Deno.chmod(tmp, 0o600);
  await Deno.rename(tmp, path);
}
