/**
 * The connection table: a bounded set of flows in flat typed arrays, each
 * flow indexed twice (original and reply tuple, as netfilter does), a TCP
 * tracker, per-protocol timeouts and a timer wheel. Nothing on the per-packet
 * path (`lookup`, `track`, `create`, `expire`) allocates or throws.
 *
 * Ids and handles: a flow is a slot `id` in `0..capacity-1`; a handle is
 * `id * 2 + dir` (dir 0 original, 1 reply). Per-direction arrays are indexed
 * by handle, per-flow arrays by id.
 *
 * NAT as netfilter expresses it: the reply tuple differs from the inverted
 * original. A DNAT flow: orig = (client:cp -> wan:52201), reply =
 * (server:8080 -> client:cp). A packet seen in direction ORIGINAL leaves with
 * source/destination (reply.dst, reply.src); one seen in direction REPLY
 * leaves with (orig.dst, orig.src): see `translatedSrc()` and friends.
 *
 * Memory: every column is carved from one `SharedArrayBuffer` (arena.ts),
 * cache-line aligned, in this order; bytes per flow at 1M flows:
 *   records (both tuples, meta: generation + proto, link)   32
 *   index (15-slot lines at 11 per line when full)           11.6
 *   status 1, datapath flags 1, rule id 4                     6
 *   packets: u32 + an 8-bit carry per direction (2^40)       10
 *   bytes: f64 per direction (the status table's, Linux's)   16
 *   last seen, expires: u32 seconds                           8
 *   TCP: state, aux, liberal 3; wflags 2 per direction;
 *        td_end, td_maxend, td_maxwin, td_maxack per dir.   37
 *   timer wheel: next, prev, slot second                     12
 *   (header, wheel heads: per table, not per flow)
 *   total                                                   132.6
 * (before: 143.6 with f64 packet counters, a creation second nothing read
 * and 16-bit flags; 145 with the chained hash.) The free list costs nothing:
 * it is chained through the records' link word. What is left above 80 is
 * what the table tracks, not the index:
 * - TCP windows, 37: narrowing needs care, not bits. td_maxwin is at most
 *   65535 << 14 < 2^30 for a well-behaved sender (RFC 7323 §2.3), but the
 *   receiver-side growth in `#update` is not bounded by that; a TCP-only
 *   pool (UDP and ICMP flows hold no windows) would save most of it.
 * - The timer wheel's prev link and slot second, 8: a singly linked wheel
 *   with lazy removal delays an expiry that moves earlier (FIN after
 *   ESTABLISHED, a reused id) to its old slot's next visit, up to one
 *   revolution (1024 s): not kept behaviour.
 * - Bytes as f64, 16: 32-bit byte counts wrap at 4 GB, inside one transfer.
 * - Rule id as i16, 2: admission never reuses an id, so renames run it out.
 * Sharing between Workers (issue 11's multi-queue; groundwork: the table runs
 * over one buffer in several Workers, but the datapath does not yet do so).
 * `ConnTable.bufferBytes(options)` sizes the buffer, `buffer` hands it over,
 * `new ConnTable({ buffer, shard })` maps it in another Worker: the geometry
 * and hash key come from the buffer's header, written last at setup.
 * - Ids are split into `shards` ranges, one per writer (a queue's Worker).
 *   A shard's owner alone creates flows in its range (its free list, its
 *   early drop), schedules their timers (its own wheel heads, over shared
 *   links no other shard touches), expires and frees them. Other Workers
 *   only read a foreign flow, and track it (below).
 * - Publishing a flow: tuples, then the meta (generation + 1, proto) with
 *   `Atomics.store`, then the two index slots by compare-exchange (see
 *   flow_index.ts for the lock of the home lines that keeps two writers
 *   from both entering one tuple). Counters, timers and TCP state of a new
 *   flow are written before `create` returns, by the owner: the other
 *   direction's queue sees the flow only after its reply packet arrives,
 *   which is after the owner forwarded the first packet.
 * - Readers validate by the tuple: `lookup` compares the record's tuple and
 *   proto after the tag matched. Plain loads on that path: `Atomics.load`
 *   is a builtin call in this V8 (about 15 ns each, measured), too dear for
 *   15 slots. That is sound because a record never changes while a reader
 *   may be between finding its slot and using its handle:
 * - Removal and expiry avoid racing a reader by deferring reuse, not the
 *   unhashing: the owner takes both slots out of the index first (new
 *   lookups miss), bumps the generation (proto 0: `isLive` false, `track`
 *   refuses the handle), and puts the id on its free list. In the
 *   multi-queue wiring that free list becomes a limbo list: an id is reused
 *   only once every Worker has passed a quiescent point (the end of a read
 *   batch; one epoch word per Worker, stored with `Atomics.store` per batch)
 *   since the free: RCU's grace period, so no reader holds a handle across a
 *   reuse. Holders across batches (the API, events) keep (id, generation).
 * - Per-flow state written by both directions: per-direction counters have
 *   one writer (the kernel steers each tuple to one queue). Last seen and
 *   expiry are last-writer-wins ("now + timeout"); an expiry made earlier by
 *   a non-owner goes to the owner (a per-shard refresh ring) since only the
 *   owner relinks its wheel. Status bits need `Atomics.or`. TCP state is the
 *   one place that needs a lock: `step` reads and writes both directions'
 *   windows and the flow's state, and the two directions of a NATed flow
 *   land on different queues. The record's link word (unused while the flow
 *   is live) is that lock: compare-exchange 0 -> 1 around `step`, then check
 *   the generation is unchanged.
 */
import {
  CREATE_CLASH,
  CREATE_FULL,
  DIR_REPLY,
  GONE_EVICTED,
  GONE_KILLED,
  GONE_TIMEOUT,
  PROTO_ICMP,
  PROTO_TCP,
  PROTO_UDP,
  STATUS_ASSURED,
  STATUS_DYING,
  STATUS_SEEN_REPLY,
  TCP_ESTABLISHED,
  TCP_SYN_RECV,
  type TcpStateName,
  tcpStateName,
  TRACK_ACCEPT,
  TRACK_INVALID,
  TRACK_OUT_OF_WINDOW,
  TRACK_REOPEN,
  type TrackVerdict,
} from "./constants.ts";
import { Arena } from "./arena.ts";
import { defaultLines, FlowIndex, LINE_SLOTS, REC_LINK, REC_META } from "./flow_index.ts";
import { FlowSpec } from "./flow_spec.ts";
import type { TcpSegment } from "./segment.ts";
import {
  STEP_CHALLENGE,
  STEP_IGNORE,
  STEP_INVALID,
  STEP_OUT_OF_WINDOW,
  STEP_REOPEN,
  TCP_RECORD_BYTES,
  TcpTracker,
  unansweredRun,
} from "./tcp_tracker.ts";
import { resolveTimeouts, tcpStateTimeouts, type Timeouts } from "./timeouts.ts";
import { TimerWheel } from "./timer_wheel.ts";

/** Called for each flow about to leave the table; `reason` is a GONE_* code. Must not modify the table. */
export type ExpireCallback = (flowId: number, reason: number) => void;

/** Options of a `ConnTable`. */
export interface ConnTableOptions {
  /** Flow slots (default 262144). Taken from the buffer when `buffer` holds a table. */
  capacity?: number;
  /**
   * Index lines of 15 slots (one cache line each; default: 2 * capacity / 11,
   * a load of 0.73 when full). At least 2 * capacity / 15.
   */
  buckets?: number;
  /**
   * The shared memory of the table (see `ConnTable.createBuffer`). A zeroed
   * buffer is set up as a new table; a buffer that holds one (created in
   * another Worker) is mapped as it is, with its capacity, index, wheel,
   * shards and hash key. Default: a new buffer of the right size.
   */
  buffer?: SharedArrayBuffer;
  /** Id ranges of the table, one per writer (Worker), fixed when the buffer is set up (default 1). */
  shards?: number;
  /** The shard this instance writes: it creates, expires and frees only flows of its id range (default 0). */
  shard?: number;
  /** Timer wheel slots of one second, a power of two (default 1024). */
  wheelSlots?: number;
  /** Timeouts overriding Linux's defaults. */
  timeouts?: Partial<Timeouts>;
  /** Slots examined per early drop when the table is full (default 64). */
  evictScan?: number;
  /** Default work bound of one `expire()` call (default 65536). */
  expireBudget?: number;
  /** Packets in a row one way, unanswered, before `tcpUnacknowledged` caps the timeout (default 3). */
  tcpMaxRetrans?: number;
  /** Hash key (two 32-bit words); random by default. For tests. */
  hashKey?: readonly [number, number];
  /** See `ExpireCallback`. */
  onExpire?: ExpireCallback;
}

/** One flow as a plain object, for status pages (allocates; not for the hot path). */
export interface FlowInfo {
  id: number;
  proto: number;
  tcpState: TcpStateName | null;
  status: number;
  flags: number;
  orig: TupleInfo;
  reply: TupleInfo;
  packets: [number, number];
  bytes: [number, number];
  lastSeen: number;
  expiresAt: number;
  ruleId: number;
}

/** A tuple of a `FlowInfo`; addresses are unsigned 32-bit numbers. */
export interface TupleInfo {
  src: number;
  srcPort: number;
  dst: number;
  dstPort: number;
}

/** Counters of a `ConnTable`. */
export interface ConnTableStats {
  size: number;
  capacity: number;
  inserted: number;
  expired: number;
  evicted: number;
  refused: number;
  killed: number;
  removed: number;
  clashes: number;
  invalid: number;
  reopened: number;
  /** TCP segments outside their flow's window (dropped). */
  outOfWindow: number;
  /** In-window RSTs that were not exact and in-window SYNs on synchronized flows: passed, state kept. */
  challenged: number;
}

/**
 * Bytes of one flow record (`saveFlow`, `restoreFlow`), little-endian:
 * proto u8, status u8, flags u16, rule i32; orig src, dst u32, sport, dport
 * u16; the same for reply; 0 (once the creation second), lastSeen, expires
 * u32 (seconds), 4 spare;
 * packets and bytes f64 per direction; the TCP record (state, aux, per
 * direction td_end, td_maxend, td_maxwin, td_maxack, window flags; liberal).
 */
export const FLOW_RECORD_BYTES = 80 + TCP_RECORD_BYTES + 3;

/** `restoreFlow`: the record's flow has expired (or its protocol or state is unknown). */
export const RESTORE_SKIPPED = -3;

const DEFAULT_CAPACITY = 262144;
/** Private status bit: a killed flow already taken out of the hash. */
const UNHASHED = 0x80;

/** Header words: a table's geometry and key, then one 16-word block per shard. */
const H_MAGIC = 0, H_CAPACITY = 1, H_LINES = 2, H_WHEEL = 3, H_SHARDS = 4, H_K0 = 5, H_K1 = 6;
const HEADER_WORDS = 16;
/** Shard block word: the first free id of the shard (-1 when none). */
const S_FREE = 0;
/** Shard block word: live flows of the shard (its owner alone writes it). */
const S_SIZE = 1;
const MAGIC = 0x4b4e4354; // "KNCT"
const MAX_SHARDS = 64;

/** The geometry of a table. */
interface Geometry {
  cap: number;
  lines: number;
  wheelSlots: number;
  shards: number;
}

/** Every column of a table, carved from one arena in this order. */
function layout(g: Geometry, k0: number, k1: number, a: Arena) {
  return {
    header: a.i32(HEADER_WORDS * (1 + g.shards)),
    index: new FlowIndex(g.cap, g.lines, k0, k1, a),
    status: a.u8(g.cap),
    flags: a.u8(g.cap),
    ruleId: a.i32(g.cap),
    packets: a.u32(2 * g.cap),
    packetsHigh: a.u8(2 * g.cap),
    bytes: a.f64(2 * g.cap),
    lastSeen: a.u32(g.cap),
    expires: a.u32(g.cap),
    tcp: new TcpTracker(g.cap, a),
    wheelHeads: a.i32(g.shards * g.wheelSlots),
    wheelNext: a.i32(g.cap),
    wheelPrev: a.i32(g.cap),
    wheelAt: a.u32(g.cap),
  };
}

/**
 * A zeroed shared buffer whose start is page-aligned, so that the arena's
 * 64-byte columns are cache lines. A growable buffer is reserved by V8's
 * page allocator; a plain one comes from malloc, 16 bytes into a page for
 * large sizes (measured): every index line would straddle two cache lines.
 */
function pageAligned(bytes: number): SharedArrayBuffer {
  return new SharedArrayBuffer(bytes, { maxByteLength: bytes });
}

/** Reads and checks the geometry from options (configuration time: throws). */
function geometryOf(options: ConnTableOptions): Geometry {
  const cap = options.capacity ?? DEFAULT_CAPACITY;
  if (!Number.isInteger(cap) || cap < 1 || cap > 0x20000000) {
    throw new RangeError(`Cannot create connection table: capacity ${cap} is out of range`);
  }
  const lines = options.buckets ?? defaultLines(cap);
  if (!Number.isInteger(lines) || lines < 1 || lines * LINE_SLOTS < 2 * cap) {
    throw new RangeError(
      `Cannot create connection table: ${lines} buckets cannot hold ${2 * cap} tuples`,
    );
  }
  const wheelSlots = options.wheelSlots ?? 1024;
  const shards = options.shards ?? 1;
  if (!Number.isInteger(shards) || shards < 1 || shards > Math.min(MAX_SHARDS, cap)) {
    throw new RangeError(`Cannot create connection table: ${shards} shards is out of range`);
  }
  return { cap, lines, wheelSlots, shards };
}

/** A bounded, two-way hashed connection table. */
export class ConnTable {
  /** Datapath-owned bits per flow (see FLAG_*, eight at most); zeroed when a slot is freed. */
  readonly flags: Uint8Array;
  /** Datapath-owned rule index per flow; -1 when a slot is freed. */
  readonly ruleId: Int32Array;
  /** See `ExpireCallback`. */
  onExpire: ExpireCallback | undefined;

  readonly #cap: number;
  readonly #buffer: SharedArrayBuffer;
  readonly #byteLength: number;
  readonly #header: Int32Array;
  /** Word of this shard's block in `#header`. */
  readonly #shardAt: number;
  /** This shard's id range, `#lo..#hi-1`. */
  readonly #lo: number;
  readonly #hi: number;
  readonly #index: FlowIndex;
  /** The flow records (see flow_index.ts): tuples, meta (generation, proto), link. */
  readonly #rec: Int32Array;
  readonly #tcp: TcpTracker;
  readonly #status: Uint8Array;
  /** Packets per handle, the low 32 bits; `#packetsHigh` holds the next 8. */
  readonly #packets: Uint32Array;
  readonly #packetsHigh: Uint8Array;
  readonly #bytes: Float64Array;
  readonly #lastSeen: Uint32Array;
  readonly #expires: Uint32Array;
  readonly #wheel: TimerWheel;
  readonly #timeouts: Timeouts;
  readonly #tcpTimeout: Uint32Array;
  readonly #evictScan: number;
  readonly #expireBudget: number;
  readonly #maxRetrans: number;
  readonly #restoreSpec = new FlowSpec();
  #evictCursor: number;
  #inserted = 0;
  #expired = 0;
  #evicted = 0;
  #refused = 0;
  #killed = 0;
  #removed = 0;
  #clashes = 0;
  #invalid = 0;
  #reopened = 0;
  #outOfWindow = 0;
  #challenged = 0;

  /**
   * Allocates (or maps, see `buffer`) every column up front; throws on a bad
   * option or a buffer that does not fit (configuration time).
   */
  constructor(options: ConnTableOptions = {}) {
    let buffer = options.buffer;
    let fresh = true;
    let g: Geometry;
    let k0: number, k1: number;
    const head = buffer !== undefined && buffer.byteLength >= 64
      ? new Int32Array(buffer, 0, HEADER_WORDS)
      : null;
    if (head !== null && Atomics.load(head, H_MAGIC) === MAGIC) {
      fresh = false;
      g = {
        cap: head[H_CAPACITY],
        lines: head[H_LINES],
        wheelSlots: head[H_WHEEL],
        shards: head[H_SHARDS],
      };
      if (options.capacity !== undefined && options.capacity !== g.cap) {
        throw new RangeError(
          `Cannot map connection table: capacity ${options.capacity}, the buffer holds ${g.cap}`,
        );
      }
      k0 = head[H_K0];
      k1 = head[H_K1];
    } else {
      g = geometryOf(options);
      const key = options.hashKey ?? crypto.getRandomValues(new Uint32Array(2));
      k0 = key[0] | 0;
      k1 = key[1] | 0;
    }
    const bytes = ConnTable.#measure(g);
    buffer ??= pageAligned(bytes);
    const c = layout(g, k0, k1, Arena.over(buffer, fresh));
    const shard = options.shard ?? 0;
    if (!Number.isInteger(shard) || shard < 0 || shard >= g.shards) {
      throw new RangeError(`Cannot create connection table: shard ${shard} of ${g.shards}`);
    }
    const cap = g.cap;
    this.#cap = cap;
    this.#buffer = buffer;
    this.#byteLength = bytes;
    this.#header = c.header;
    this.#shardAt = HEADER_WORDS * (1 + shard);
    this.#lo = Math.floor((shard * cap) / g.shards);
    this.#hi = Math.floor(((shard + 1) * cap) / g.shards);
    this.#index = c.index;
    this.#rec = c.index.rec;
    this.#tcp = c.tcp;
    this.#status = c.status;
    this.flags = c.flags;
    this.ruleId = c.ruleId;
    this.#packets = c.packets;
    this.#packetsHigh = c.packetsHigh;
    this.#bytes = c.bytes;
    this.#lastSeen = c.lastSeen;
    this.#expires = c.expires;
    const slots = g.wheelSlots;
    if (fresh) c.wheelHeads.fill(-1);
    this.#wheel = new TimerWheel(cap, slots, this.#expires, {
      heads: c.wheelHeads.subarray(shard * slots, (shard + 1) * slots),
      next: c.wheelNext,
      prev: c.wheelPrev,
      at: c.wheelAt,
      fresh,
    });
    if (fresh) this.#setUp(g, k0, k1);
    this.#evictCursor = this.#lo;
    this.#timeouts = resolveTimeouts(options.timeouts);
    this.#tcpTimeout = tcpStateTimeouts(this.#timeouts);
    this.#evictScan = Math.max(1, Math.min(options.evictScan ?? 64, this.#hi - this.#lo));
    this.#expireBudget = Math.max(2, options.expireBudget ?? 65536);
    this.#maxRetrans = Math.max(1, Math.min(options.tcpMaxRetrans ?? 3, 15));
    this.onExpire = options.onExpire;
  }

  /** Bytes of the buffer a table with these options needs. */
  static bufferBytes(options: ConnTableOptions = {}): number {
    return ConnTable.#measure(geometryOf(options));
  }

  /** A zeroed, page-aligned buffer for a table with these options (see `buffer`). */
  static createBuffer(options: ConnTableOptions = {}): SharedArrayBuffer {
    return pageAligned(ConnTable.bufferBytes(options));
  }

  static #measure(g: Geometry): number {
    const a = Arena.measure();
    layout(g, 0, 0, a);
    return a.byteLength;
  }

  /** A new buffer: free lists per shard (pop order lo, lo + 1...), rule ids -1, then the header. */
  #setUp(g: Geometry, k0: number, k1: number): void {
    const h = this.#header, rec = this.#rec;
    this.ruleId.fill(-1);
    for (let s = 0; s < g.shards; s++) {
      const lo = Math.floor((s * g.cap) / g.shards), hi = Math.floor(((s + 1) * g.cap) / g.shards);
      for (let id = lo; id < hi; id++) rec[8 * id + REC_LINK] = id + 1 < hi ? id + 1 : -1;
      h[HEADER_WORDS * (1 + s) + S_FREE] = lo < hi ? lo : -1;
    }
    h[H_CAPACITY] = g.cap;
    h[H_LINES] = g.lines;
    h[H_WHEEL] = g.wheelSlots;
    h[H_SHARDS] = g.shards;
    h[H_K0] = k0;
    h[H_K1] = k1;
    Atomics.store(h, H_MAGIC, MAGIC); // last: a Worker mapping the buffer sees a finished table
  }

  /** The table's memory, to hand to another Worker (`buffer` option). */
  get buffer(): SharedArrayBuffer {
    return this.#buffer;
  }

  // ---- lookups ------------------------------------------------------------

  /** The handle (`id * 2 + dir`) of the flow with this tuple, or -1. Killed flows are not found. */
  lookup(proto: number, src: number, sport: number, dst: number, dport: number): number {
    const x = this.#index;
    return x.find(x.hash(proto, src, sport, dst, dport), proto, src, sport, dst, dport);
  }

  /** True when a flow holds this tuple in either direction (for choosing NAT ports, see nat/port_alloc.ts). */
  isTupleTaken(proto: number, src: number, sport: number, dst: number, dport: number): boolean {
    return this.lookup(proto, src, sport, dst, dport) !== -1;
  }

  // ---- create / remove ------------------------------------------------------

  /**
   * Adds the flow `spec` describes and returns its id, or CREATE_CLASH when
   * one of its tuples is already live (or `spec.proto` is 0), or CREATE_FULL
   * when the table is full and early drop found no unassured flow to evict.
   */
  create(spec: FlowSpec, nowSec: number): number {
    const now = nowSec >>> 0;
    const proto = spec.proto & 0xff;
    const os = spec.origSrc, osp = spec.origSrcPort, od = spec.origDst, odp = spec.origDstPort;
    const rs = spec.replySrc, rsp = spec.replySrcPort, rd = spec.replyDst, rdp = spec.replyDstPort;
    const x = this.#index;
    const ho = x.hash(proto, os, osp, od, odp);
    const hr = x.hash(proto, rs, rsp, rd, rdp);
    if (proto === 0) {
      this.#clashes++;
      return CREATE_CLASH;
    }
    // Both home lines locked (in line order), so no other writer enters either tuple meanwhile.
    const lo = x.home(ho), lr = x.home(hr);
    x.lock(lo < lr ? lo : lr);
    if (lr !== lo) x.lock(lo < lr ? lr : lo);
    let id: number;
    try {
      id = this.#insert(proto, ho, hr, spec, now);
    } finally {
      // Also when an early drop's onExpire throws: a held line would stop every later writer.
      x.unlock(lo);
      if (lr !== lo) x.unlock(lr);
    }
    if (id < 0) return id;
    this.#lastSeen[id] = now;
    this.#expires[id] = now + this.#timeoutOf(id);
    this.#wheel.start(now);
    this.#wheel.schedule(id);
    this.#inserted++;
    return id;
  }

  /** `create` under the home lines' locks: the clash checks, a slot, the records, the index. */
  #insert(proto: number, ho: number, hr: number, spec: FlowSpec, now: number): number {
    const x = this.#index;
    const os = spec.origSrc, osp = spec.origSrcPort, od = spec.origDst, odp = spec.origDstPort;
    const rs = spec.replySrc, rsp = spec.replySrcPort, rd = spec.replyDst, rdp = spec.replyDstPort;
    if (x.find(ho, proto, os, osp, od, odp) !== -1 || x.find(hr, proto, rs, rsp, rd, rdp) !== -1) {
      this.#clashes++;
      return CREATE_CLASH;
    }
    const id = this.#popFree(now);
    if (id < 0) {
      this.#refused++;
      return CREATE_FULL;
    }
    const rec = this.#rec, r = 8 * id;
    rec[r] = os;
    rec[r + 1] = od;
    rec[r + 2] = ((osp & 0xffff) << 16) | (odp & 0xffff);
    rec[r + 3] = rs;
    rec[r + 4] = rd;
    rec[r + 5] = ((rsp & 0xffff) << 16) | (rdp & 0xffff);
    rec[r + REC_LINK] = 0;
    // Release: the tuples are visible before the meta that makes them live, and it before the index.
    Atomics.store(rec, r + REC_META, (rec[r + REC_META] + 0x100) & ~0xff | proto);
    // The original first, so it is found first when both tuples are equal.
    if (!x.insert(2 * id, ho)) return this.#unpublish(id, false);
    if (!x.insert(2 * id + 1, hr)) return this.#unpublish(id, true);
    this.#header[this.#shardAt + S_SIZE]++;
    return id;
  }

  /** An index without room within its probe bound: the new flow goes again, the table is full. */
  #unpublish(id: number, origEntered: boolean): number {
    if (origEntered) this.#index.remove(2 * id);
    this.#pushFree(id);
    this.#refused++;
    return CREATE_FULL;
  }

  /** A free id of this shard (early drop when none), or -1. */
  #popFree(now: number): number {
    const at = this.#shardAt + S_FREE;
    const id = this.#header[at];
    if (id < 0) return this.#earlyDrop(now);
    this.#header[at] = this.#rec[8 * id + REC_LINK];
    return id;
  }

  /** Frees the record of `id` (a new generation, proto 0) and puts it on this shard's free list. */
  #pushFree(id: number): void {
    const rec = this.#rec, r = 8 * id;
    Atomics.store(rec, r + REC_META, (rec[r + REC_META] + 0x100) & ~0xff);
    const at = this.#shardAt + S_FREE;
    rec[r + REC_LINK] = this.#header[at];
    this.#header[at] = id;
  }

  /** Removes flow `id` at once, without calling `onExpire`. False when `id` is not live. */
  remove(id: number): boolean {
    if (!this.isLive(id) || id < this.#lo || id >= this.#hi) return false;
    this.#removed++;
    this.#free_(id);
    return true;
  }

  /**
   * Marks flow `id` dying: lookups stop finding it and the next `expire()`
   * removes it with reason GONE_KILLED. False when `id` is not live.
   */
  kill(id: number, nowSec: number): boolean {
    if (!this.isLive(id) || id < this.#lo || id >= this.#hi) return false;
    if ((this.#status[id] & STATUS_DYING) !== 0) return false;
    this.#status[id] |= STATUS_DYING | UNHASHED;
    this.#index.remove(2 * id);
    this.#index.remove(2 * id + 1);
    this.#expires[id] = nowSec >>> 0;
    this.#wheel.refresh(id);
    return true;
  }

  /** Record word of the tuple of handle `h`: src, then dst, then ports. */
  #t(h: number): number {
    return ((h >> 1) << 3) + 3 * (h & 1);
  }
  #kSrc(h: number): number {
    return this.#rec[this.#t(h)] >>> 0;
  }
  #kDst(h: number): number {
    return this.#rec[this.#t(h) + 1] >>> 0;
  }
  #kSport(h: number): number {
    return this.#rec[this.#t(h) + 2] >>> 16;
  }
  #kDport(h: number): number {
    return this.#rec[this.#t(h) + 2] & 0xffff;
  }
  /** IP protocol of flow `id`, 0 when free (the record's meta). */
  #protoOf(id: number): number {
    return this.#rec[8 * id + REC_META] & 0xff;
  }

  /** Unhashes, unschedules and clears slot `id`, and returns it to the free list. */
  #free_(id: number): void {
    if ((this.#status[id] & UNHASHED) === 0) {
      this.#index.remove(2 * id);
      this.#index.remove(2 * id + 1);
    }
    this.#wheel.cancel(id);
    this.#tcp.clear(id);
    this.#status[id] = 0;
    this.flags[id] = 0;
    this.ruleId[id] = -1;
    this.#clearCounters(id);
    this.#pushFree(id);
    this.#header[this.#shardAt + S_SIZE]--;
  }

  /** Leaves through `onExpire` with `reason`, then frees. */
  #retire(id: number, reason: number): void {
    this.#status[id] |= STATUS_DYING;
    const cb = this.onExpire;
    if (cb !== undefined) cb(id, reason);
    this.#free_(id);
  }

  /**
   * Linux early_drop: scans `evictScan` slots from a rotating cursor and frees
   * an expired flow, else the least recently seen unassured one. Returns the
   * freed slot, or -1.
   */
  #earlyDrop(now: number): number {
    let best = -1;
    let i = this.#evictCursor;
    for (let n = 0; n < this.#evictScan; n++) {
      if (++i >= this.#hi) i = this.#lo;
      if (this.#protoOf(i) === 0) continue;
      if (this.#expires[i] <= now) {
        best = i;
        break;
      }
      if ((this.#status[i] & STATUS_ASSURED) !== 0) continue;
      if (best === -1 || this.#lastSeen[i] < this.#lastSeen[best]) best = i;
    }
    this.#evictCursor = i;
    if (best === -1) return -1;
    const timedOut = this.#expires[best] <= now;
    if (timedOut) this.#expired++;
    else this.#evicted++;
    this.#retire(best, timedOut ? GONE_TIMEOUT : GONE_EVICTED);
    const at = this.#shardAt + S_FREE;
    this.#header[at] = this.#rec[8 * best + REC_LINK]; // pops `best`, just pushed
    return best;
  }

  /**
   * Takes TCP flow `id`, just created for a segment in mid stream (no SYN),
   * as ESTABLISHED with unknown windows (Linux nf_conntrack_tcp_loose, see
   * `TcpTracker.pickUp`). It becomes assured when the reply side answers.
   */
  pickUp(id: number): void {
    if (this.#protoOf(id) === PROTO_TCP && this.#tcp.state[id] === 0) this.#tcp.pickUp(id);
  }

  // ---- save / restore --------------------------------------------------------

  /** Writes flow `id` as a FLOW_RECORD_BYTES record at `off` of `v` (allocates nothing). */
  saveFlow(id: number, v: DataView, off: number): void {
    const o = 2 * id;
    v.setUint8(off, this.#protoOf(id));
    v.setUint8(off + 1, this.status(id));
    v.setUint16(off + 2, this.flags[id], true);
    v.setInt32(off + 4, this.ruleId[id], true);
    for (let d = 0; d < 2; d++) {
      const k = 8 * id + 3 * d, p = off + 8 + 12 * d;
      v.setInt32(p, this.#rec[k], true);
      v.setInt32(p + 4, this.#rec[k + 1], true);
      v.setInt32(p + 8, this.#rec[k + 2], true);
    }
    v.setUint32(off + 32, 0, true); // was the creation second (no longer kept)
    v.setUint32(off + 36, this.#lastSeen[id], true);
    v.setUint32(off + 40, this.#expires[id], true);
    v.setFloat64(off + 48, this.packets(o), true);
    v.setFloat64(off + 56, this.packets(o + 1), true);
    v.setFloat64(off + 64, this.#bytes[o], true);
    v.setFloat64(off + 72, this.#bytes[o + 1], true);
    this.#tcp.save(id, v, off + 80);
  }

  /**
   * Adds the flow a `saveFlow` record at `off` of `v` describes, with its
   * state, windows, counters and expiry, and returns its id; RESTORE_SKIPPED
   * when it expired by `nowSec`, or a CREATE_* code. `staleWindows` (a
   * checkpoint, older than the connection's last packets): each TCP sender is
   * checked liberally until one of its segments fits (see `TcpTracker.loosen`).
   */
  restoreFlow(v: DataView, off: number, nowSec: number, staleWindows: boolean): number {
    const now = nowSec >>> 0;
    const proto = v.getUint8(off);
    const expires = v.getUint32(off + 40, true);
    const state = v.getUint8(off + 80);
    if (
      proto === 0 || expires <= now || (proto === PROTO_TCP && (state === 0 || state > 8))
    ) {
      return RESTORE_SKIPPED;
    }
    const s = this.#restoreSpec;
    const ports0 = v.getInt32(off + 16, true), ports1 = v.getInt32(off + 28, true);
    s.original(
      proto,
      v.getUint32(off + 8, true),
      ports0 >>> 16,
      v.getUint32(off + 12, true),
      ports0 & 0xffff,
    ).reply(
      v.getUint32(off + 20, true),
      ports1 >>> 16,
      v.getUint32(off + 24, true),
      ports1 & 0xffff,
    );
    const id = this.create(s, now);
    if (id < 0) return id;
    const o = 2 * id;
    this.#status[id] = v.getUint8(off + 1) & (STATUS_ASSURED | STATUS_SEEN_REPLY);
    this.flags[id] = v.getUint16(off + 2, true);
    this.ruleId[id] = v.getInt32(off + 4, true);
    this.#lastSeen[id] = v.getUint32(off + 36, true);
    this.#setPackets(o, v.getFloat64(off + 48, true));
    this.#setPackets(o + 1, v.getFloat64(off + 56, true));
    this.#bytes[o] = v.getFloat64(off + 64, true);
    this.#bytes[o + 1] = v.getFloat64(off + 72, true);
    if (proto === PROTO_TCP) {
      this.#tcp.load(id, v, off + 80);
      if (staleWindows) this.#tcp.loosen(id);
    }
    this.#expires[id] = expires;
    this.#wheel.refresh(id);
    return id;
  }

  // ---- tracking -------------------------------------------------------------

  /**
   * Accounts one packet of `bytes` seen with handle `handle` at `nowSec`:
   * moves the TCP state and windows (`seg`, the packet's TCP segment; null
   * for other protocols, and for a TCP flow it makes the packet invalid),
   * sets seen-reply/assured, counts, refreshes the expiry.
   */
  track(handle: number, bytes: number, nowSec: number, seg: TcpSegment | null): TrackVerdict {
    const id = handle >> 1;
    if (
      handle < 0 || id >= this.#cap || this.#protoOf(id) === 0 ||
      (this.#status[id] & STATUS_DYING) !== 0
    ) {
      this.#invalid++;
      return TRACK_INVALID;
    }
    const dir = handle & 1;
    const now = nowSec >>> 0;
    let verdict: TrackVerdict = TRACK_ACCEPT;
    if (this.#protoOf(id) === PROTO_TCP) {
      const tcp = this.#tcp;
      const old = tcp.state[id];
      const step = seg === null ? STEP_INVALID : tcp.step(id, dir, seg);
      if (step === STEP_INVALID) {
        this.#invalid++;
        return TRACK_INVALID;
      }
      if (step === STEP_OUT_OF_WINDOW) {
        this.#outOfWindow++;
        return TRACK_OUT_OF_WINDOW;
      }
      if (step === STEP_REOPEN) {
        this.#reopen(id);
        verdict = TRACK_REOPEN;
      } else if (old === TCP_SYN_RECV && tcp.state[id] === TCP_ESTABLISHED) {
        this.#status[id] |= STATUS_ASSURED; // Linux: handshake completed after a reply
      } else if (dir === DIR_REPLY && old === TCP_ESTABLISHED) {
        this.#status[id] |= STATUS_ASSURED; // a picked-up flow, answered
      }
      if (step === STEP_CHALLENGE) this.#challenged++;
      if (step === STEP_IGNORE || step === STEP_CHALLENGE) {
        this.#account(handle, dir, bytes, now);
        return verdict;
      }
    } else if (dir === DIR_REPLY && this.#protoOf(id) === PROTO_UDP) {
      this.#status[id] |= STATUS_ASSURED;
    }
    this.#account(handle, dir, bytes, now);
    const t = now + this.#timeoutOf(id);
    if (t !== this.#expires[id]) {
      this.#expires[id] = t;
      this.#wheel.refresh(id);
    }
    return verdict;
  }

  /**
   * Accounts one packet without protocol state checks (for flows whose other
   * half the datapath never sees) and sets the expiry to `nowSec + timeoutSec`.
   * False (nothing done) for a free, dying or out-of-range handle.
   */
  touch(handle: number, bytes: number, nowSec: number, timeoutSec: number): boolean {
    const id = handle >> 1;
    if (
      handle < 0 || id >= this.#cap || this.#protoOf(id) === 0 ||
      (this.#status[id] & STATUS_DYING) !== 0
    ) {
      return false;
    }
    const now = nowSec >>> 0;
    this.#account(handle, handle & 1, bytes, now);
    this.#expires[id] = now + (timeoutSec >>> 0);
    this.#wheel.refresh(id);
    return true;
  }

  #account(handle: number, dir: number, bytes: number, now: number): void {
    const id = handle >> 1;
    if (dir === DIR_REPLY) this.#status[id] |= STATUS_SEEN_REPLY;
    const p = (this.#packets[handle] + 1) >>> 0;
    this.#packets[handle] = p;
    if (p === 0) this.#packetsHigh[handle]++; // 2^32 packets one way: carry
    this.#bytes[handle] += bytes;
    this.#lastSeen[id] = now;
  }

  /** A SYN reused a TIME_WAIT/CLOSE flow: it starts over as a new connection. */
  #reopen(id: number): void {
    this.#status[id] = 0;
    this.#clearCounters(id);
    this.#reopened++;
  }

  #clearCounters(id: number): void {
    this.#packets[2 * id] = this.#packets[2 * id + 1] = 0;
    this.#packetsHigh[2 * id] = this.#packetsHigh[2 * id + 1] = 0;
    this.#bytes[2 * id] = this.#bytes[2 * id + 1] = 0;
  }

  /** Sets the packet count of `handle` (a restored record's), wrapping at 2^40. */
  #setPackets(handle: number, n: number): void {
    const v = n >= 0 && n < 2 ** 40 ? Math.floor(n) : 0;
    this.#packets[handle] = v % 2 ** 32;
    this.#packetsHigh[handle] = Math.floor(v / 2 ** 32);
  }

  /** The timeout of flow `id` in its current state, in seconds. */
  #timeoutOf(id: number): number {
    const p = this.#protoOf(id);
    const t = this.#timeouts;
    if (p === PROTO_TCP) {
      const base = this.#tcpTimeout[this.#tcp.state[id]];
      const cap = t.tcpUnacknowledged;
      return base > cap && unansweredRun(this.#tcp.aux[id]) >= this.#maxRetrans ? cap : base;
    }
    if (p === PROTO_UDP) {
      return (this.#status[id] & STATUS_SEEN_REPLY) !== 0 ? t.udpReplied : t.udpUnreplied;
    }
    return p === PROTO_ICMP ? t.icmp : t.generic;
  }

  // ---- expiry ---------------------------------------------------------------

  /**
   * Advances the timer wheel to `nowSec` and removes every flow whose expiry
   * has passed (calling `onExpire` first), examining at most about `maxWork`
   * entries; the rest is picked up by the next call. Returns the flows removed.
   */
  expire(nowSec: number, maxWork = this.#expireBudget): number {
    const before = this.#expired + this.#killed;
    this.#wheel.advance(nowSec >>> 0, Math.max(2, maxWork), this.#onDue);
    return this.#expired + this.#killed - before;
  }

  readonly #onDue = (id: number): void => {
    const killed = (this.#status[id] & STATUS_DYING) !== 0;
    if (killed) this.#killed++;
    else this.#expired++;
    this.#retire(id, killed ? GONE_KILLED : GONE_TIMEOUT);
  };

  // ---- per-flow getters -------------------------------------------------------

  /** True when slot `id` holds a flow (dying ones included). */
  isLive(id: number): boolean {
    return id >= 0 && id < this.#cap && this.#protoOf(id) !== 0;
  }
  /** IP protocol of flow `id` (0 for a free slot). */
  proto(id: number): number {
    return this.#protoOf(id);
  }
  /** TCP state code of flow `id` (TCP_NONE for other protocols). */
  tcpState(id: number): number {
    return this.#tcp.state[id];
  }
  /** TCP window of the sender of `handle`: td_end, td_maxend, td_maxwin, shift (for status pages and tests). */
  tcpWindow(handle: number): { end: number; maxEnd: number; maxWin: number; scale: number } {
    const t = this.#tcp;
    return {
      end: t.end[handle] >>> 0,
      maxEnd: t.maxEnd[handle] >>> 0,
      maxWin: t.maxWin[handle],
      scale: t.scale(handle),
    };
  }
  /** STATUS_* bits of flow `id`. */
  status(id: number): number {
    return this.#status[id] & ~UNHASHED;
  }
  /** Original source address. */
  origSrc(id: number): number {
    return this.#kSrc(2 * id);
  }
  /** Original source port (ICMP: echo identifier). */
  origSrcPort(id: number): number {
    return this.#kSport(2 * id);
  }
  /** Original destination address. */
  origDst(id: number): number {
    return this.#kDst(2 * id);
  }
  /** Original destination port. */
  origDstPort(id: number): number {
    return this.#kDport(2 * id);
  }
  /** Reply source address. */
  replySrc(id: number): number {
    return this.#kSrc(2 * id + 1);
  }
  /** Reply source port. */
  replySrcPort(id: number): number {
    return this.#kSport(2 * id + 1);
  }
  /** Reply destination address. */
  replyDst(id: number): number {
    return this.#kDst(2 * id + 1);
  }
  /** Reply destination port. */
  replyDstPort(id: number): number {
    return this.#kDport(2 * id + 1);
  }
  /** Source address a packet seen with `handle` leaves with (the other tuple's destination). */
  translatedSrc(handle: number): number {
    return this.#kDst(handle ^ 1);
  }
  /** Source port a packet seen with `handle` leaves with. */
  translatedSrcPort(handle: number): number {
    return this.#kDport(handle ^ 1);
  }
  /** Destination address a packet seen with `handle` leaves with (the other tuple's source). */
  translatedDst(handle: number): number {
    return this.#kSrc(handle ^ 1);
  }
  /** Destination port a packet seen with `handle` leaves with. */
  translatedDstPort(handle: number): number {
    return this.#kSport(handle ^ 1);
  }
  /** Packets seen in the direction of `handle`. */
  packets(handle: number): number {
    return this.#packetsHigh[handle] * 2 ** 32 + this.#packets[handle];
  }
  /** Bytes seen in the direction of `handle`. */
  bytes(handle: number): number {
    return this.#bytes[handle];
  }
  /** Second of the last tracked packet of flow `id`. */
  lastSeen(id: number): number {
    return this.#lastSeen[id];
  }
  /** Second at which flow `id` expires. */
  expiresAt(id: number): number {
    return this.#expires[id];
  }

  // ---- status ---------------------------------------------------------------

  /** Live flows, all shards. */
  get size(): number {
    let n = 0;
    for (let at = HEADER_WORDS + S_SIZE; at < this.#header.length; at += HEADER_WORDS) {
      n += this.#header[at];
    }
    return n;
  }
  /** Flow slots. */
  get capacity(): number {
    return this.#cap;
  }
  /** The timeouts in force. */
  get timeouts(): Readonly<Timeouts> {
    return this.#timeouts;
  }
  /** Bytes of every column the table holds: its whole buffer. */
  get byteLength(): number {
    return this.#byteLength;
  }

  /** Entries in the flow index and the sum of its overflow counts (O(index); for tests and checks). */
  indexCensus(): { entries: number; overflow: number } {
    return this.#index.census();
  }

  /** All counters (allocates). */
  stats(): ConnTableStats {
    return {
      size: this.size,
      capacity: this.#cap,
      inserted: this.#inserted,
      expired: this.#expired,
      evicted: this.#evicted,
      refused: this.#refused,
      killed: this.#killed,
      removed: this.#removed,
      clashes: this.#clashes,
      invalid: this.#invalid,
      reopened: this.#reopened,
      outOfWindow: this.#outOfWindow,
      challenged: this.#challenged,
    };
  }

  /** Calls `cb` with the id of every live flow, in slot order. `cb` must not modify the table. */
  forEach(cb: (flowId: number) => void): void {
    for (let id = 0; id < this.#cap; id++) if (this.#protoOf(id) !== 0) cb(id);
  }

  /** Up to `limit` live flows as objects, in slot order. */
  snapshot(limit = Infinity): FlowInfo[] {
    const out: FlowInfo[] = [];
    for (let id = 0; id < this.#cap && out.length < limit; id++) {
      if (this.#protoOf(id) !== 0) out.push(this.info(id));
    }
    return out;
  }

  /** Flow `id` as an object (allocates). */
  info(id: number): FlowInfo {
    const o = 2 * id;
    return {
      id,
      proto: this.#protoOf(id),
      tcpState: this.#protoOf(id) === PROTO_TCP ? tcpStateName(this.#tcp.state[id]) : null,
      status: this.status(id),
      flags: this.flags[id],
      orig: {
        src: this.#kSrc(o),
        srcPort: this.#kSport(o),
        dst: this.#kDst(o),
        dstPort: this.#kDport(o),
      },
      reply: {
        src: this.#kSrc(o + 1),
        srcPort: this.#kSport(o + 1),
        dst: this.#kDst(o + 1),
        dstPort: this.#kDport(o + 1),
      },
      packets: [this.packets(o), this.packets(o + 1)],
      bytes: [this.#bytes[o], this.#bytes[o + 1]],
      lastSeen: this.#lastSeen[id],
      expiresAt: this.#expires[id],
      ruleId: this.ruleId[id],
    };
  }
}
