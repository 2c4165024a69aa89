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
 *   index: both tuples in 16-byte entries, 4 to a line, at 3
 *          per line when full; overflow counts 2 per line        44
 *   records: both entries' offsets, meta (generation + proto),
 *            last seen                                           16
 *   status 1, datapath flags 1, rule id 4                          6
 *   counters: packets 40 bits + bytes 56 bits per direction,
 *             in 3 words                                          24
 *   expires: u32 seconds                                           4
 *   TCP, per TCP slot: state, aux, liberal 3; wflags 2 per
 *        direction; td_end, td_maxend, td_maxwin,
 *        td_maxack per direction; 37 at tcpShare 1 (the
 *        default), 18.5 at 0.5                                    37
 *   timer wheel: next (also the free and limbo chains), prev,
 *                slot second                                      12
 *   (header, wheel heads: per table, not per flow)
 *   total (tcpShare 1, the default)                              143.0
 * With several Workers (`workers` > 1, issue 11's multi-queue) the table
 * also holds a TCP lock byte per TCP slot (144.1 at 4 Workers). A table
 * whose flows are half UDP (DNS, QUIC) can give half its ids no TCP state
 * (tcpShare 0.5, the configuration's `conntrack.tcpShare`): 124.5 (125.1).
 * Index and tuples (what the issue's "<= 80 bytes per flow" counts):
 * 44 + the records' 12 = 56. Before (two misses a lookup): 132.6, of which
 * 43.6 index and tuples (15-slot lines of 4-byte tags and handles at 11 a
 * line, 32-byte records with both tuples). The one-miss index costs 10.4
 * more per flow, net of what came out:
 * - the records' link word (free and limbo chains): an id off the wheel
 *   does not use its next link (the wheel reads only linked ids'), -4;
 * - the last-seen column moved into the record, beside the meta `track`
 *   reads (same bytes, one line fewer a packet);
 * - packets (u32 + u8 carry) and bytes (f64) per direction, 13 bytes, are
 *   3 words: the same 2^40 packets and more bytes (exact to 2^56 where the
 *   f64 was to 2^53), one line a packet instead of three, -2.
 * What would take the rest (not done, each changes behaviour or needs more):
 * a load of 0.9 needs cuckoo moves (see flow_index.ts), -8.5; `expires` is
 * not derivable from last seen (a segment that moves nothing, STEP_IGNORE,
 * updates last seen but not the expiry; `touch` takes any timeout).
 *
 * TCP slots (`tcpShare`): UDP and ICMP flows hold no windows, so the TCP
 * columns (and lock bytes) cover only the low T = ceil(capacity * tcpShare)
 * ids, indexed by id as every other column: no pool index to load on the
 * per-packet path (a per-flow u32 would cost 4 bytes and one more dependent
 * load on every TCP `track`). A flow's protocol never changes and only TCP
 * flows reach the tracker (through their meta), so a TCP flow's id is always
 * below T. Each shard keeps two free lists and two pairs of limbo batches
 * (one grace period for both): a TCP create takes a TCP slot; any other
 * flow takes one of the other ids first, then a TCP slot, so the table still
 * holds `capacity` UDP flows. No TCP slot free: the TCP create's early drop
 * scans the TCP slots only, whatever protocol their flows are (an unassured
 * UDP flow that spilled in goes as an unassured TCP one would), and without
 * a victim the create fails CREATE_FULL, as for a full table. What it costs:
 * at most T TCP flows at once, and assured UDP flows that spilled into TCP
 * slots keep them from TCP until they go. Measured at 1M flows, before
 * the one-miss index (buffer bytes; 4 Workers in brackets): 95.6 (95.8) at tcpShare 0, 104.9 (105.3)
 * at 0.25, 114.1 (114.8) at 0.5, 132.6 (133.8) at 1, as before. Lookup and
 * lookup + track of the bench's half-TCP table, before and after, alternated
 * on a loaded 2-core box (1M: medians of 6 in two runs, best in brackets):
 * lookup 378 (331) vs 362 (350) ns, lookup + track 882 (827) vs 1000 (783)
 * ns; 10k (medians of 3): 76 (58) vs 81 (66), 157 (150) vs 166 (157).
 * The same within the noise, as it should be: `lookup` and `track` did not
 * change; create and free gained a compare each.
 *
 * What is left above 80 is what the table tracks, not the index:
 * - TCP windows, 18.5 at the default share: narrowing needs care, not bits.
 *   td_maxwin is at most 65535 << 14 < 2^30 for a well-behaved sender
 *   (RFC 7323 §2.3), but the receiver-side growth in `#update` is not bounded
 *   by that.
 * - The timer wheel's prev link and slot second, 8: a singly linked wheel
 *   with lazy removal delays an expiry that moves earlier (FIN after
 *   ESTABLISHED, a reused id) to its old slot's next visit, up to one
 *   revolution (1024 s): not kept behaviour. Dropping the wheel for a
 *   periodic scan (Linux's gc_worker since 4.7) saves all 12 but frees a
 *   flow up to one scan period late.
 * - Counters, 24: 32-bit byte counts wrap at 4 GB, inside one transfer;
 *   a 40-bit count (as packets) wraps at 1 TiB, 15 minutes of 10 Gbit/s.
 * - Rule id as i16, 2: admission never reuses an id, so renames run it out.
 *
 * Sharing between Workers (issue 11's multi-queue: one data-plane Worker per
 * TUN queue). `ConnTable.bufferBytes(options)` sizes the buffer, `buffer`
 * hands it over, `new ConnTable({ buffer, worker, role })` maps it in another
 * Worker: the geometry (`workers` included) and the hash key come from the
 * buffer's header, written last at setup; timeouts do not (every Worker
 * passes the same `timeouts`).
 * - Who writes what. Worker 0 (`role: "owner"`) is the one creator: it alone
 *   creates, kills, expires and frees flows, runs the timer wheel and the
 *   free list, early drop and SNAT port choice, so no two Workers can both
 *   create a tuple. The other Workers (`role: "tracker"`) look flows up and
 *   `track`/`touch` them; their `create`, `remove`, `kill`, `expire`,
 *   `restoreFlow` and `pickUp` do nothing and return the failure value. The
 *   kernel spreads one flow's two directions over different queues (after
 *   DNAT their tuples differ), so a tracker and the owner, or two trackers,
 *   track one flow at once; what each one writes:
 *   - records, index and tuples, generation, free list, limbo, wheel links and slot
 *     seconds (`at`), datapath flags and rule id: the owner only.
 *   - TCP state and both windows: whoever holds the flow's lock byte
 *     (compare-exchange 0 -> 1, bounded spin; `step` reads and writes both
 *     directions' windows and the state). After taking it `track`
 *     re-checks the record's meta (generation + proto): a flow freed
 *     meanwhile is refused (TRACK_INVALID). The owner takes the same lock
 *     to bump the generation and clear the TCP state on free. The spin is
 *     bounded (LOCK_SPINS: a holder descheduled mid-`step`): a `track` then
 *     gives up (TRACK_INVALID, `lockTimeouts`), a free goes on without it
 *     (the id is in limbo until that tracker quiesces, and reuse wipes the
 *     slot). A lock byte of its own and not a link word: links chain free
 *     and limbo ids, and a stale handle may still point at a slot in limbo.
 *   - Status bits: set with `Atomics.or` (SEEN_REPLY, ASSURED by trackers,
 *     DYING by the owner), only when not yet set.
 *   - Per-direction packet and byte counters: plain stores, one writer per
 *     direction as long as the kernel keeps a tuple on one queue (it hashes
 *     the tuple); when it moves one (a queue count change, a tracker's
 *     handoff of that direction to worker 0) an increment can be lost.
 *   - Last seen and expiry: plain last-writer-wins stores of "now +
 *     timeout". The owner's wheel looks at a flow next at its `at` second:
 *     a later expiry needs nothing (the lazy wheel re-inserts a flow whose
 *     expiry moved), an earlier one (SYN_RECV after SYN_SENT, FIN after
 *     ESTABLISHED) must be relinked by the owner, so a tracker pushes the id
 *     and its meta into its refresh ring (an SPSC ring per tracker and
 *     shard in the buffer, REFRESH_RING entries; full: counted, and the flow
 *     expires at its old slot, late). The owner drains the rings in
 *     `expire()`, skips an id whose meta changed and relinks the rest. A
 *     tracker's expiry store can race the owner's wheel reading it: the flow
 *     then expires at the old second (a packet tracked in that very second
 *     was its last) or late, never before the earlier of the two values. A
 *     killed flow (DYING) is freed at its kill's second whatever expiry a
 *     racing `track` stored (the wheel's doom bit).
 * - Publishing a flow: two index slots claimed by compare-exchange and
 *   the tuples written there, then the record's entry offsets and the meta
 *   (generation + 1, proto) with `Atomics.store`, then the entries made
 *   live with `Atomics.store` (see flow_index.ts). Counters, timers and TCP state of a new flow are written
 *   before `create` returns, datapath flags right after: the other
 *   direction's queue sees the flow only after its reply packet arrives,
 *   which is after the owner wrote the first packet out (a syscall between).
 * - Readers validate by the tuple: `lookup` compares the entries' tuples
 *   with plain loads and confirms a match with one `Atomics.load` of its
 *   state word and a re-read (see flow_index.ts for why no torn match gets
 *   through). That is sound because neither a flow's id nor its entries'
 *   tuples are reused while a reader may be between finding its entry and
 *   using its handle:
 * - Expiry and removal avoid racing a reader by deferring reuse (RCU's
 *   quiescent-state grace period, QSBR), not the unhashing: the owner makes
 *   both entries tombstones (new lookups miss them; their tuples stay for a
 *   stale handle's `translatedSrc()` and friends), bumps the generation
 *   (proto 0: `track` refuses the handle) and puts the id into limbo, not on
 *   the free list. Each Worker stores a new counter in its quiescent word
 *   (`quiescent()`, between read batches: it holds no handle then; 0 from
 *   `offline()`, before it blocks in poll). The limbo has two batches: the
 *   closing one collects frees; when it is closed it becomes the waiting
 *   one with a snapshot of every Worker's word, and the waiting batch goes
 *   to the free list (its tombstones emptied) once, for every Worker w, snapshot[w] == 0 (it held
 *   nothing at the snapshot) or word[w] == 0 (offline since) or word[w] !=
 *   snapshot[w] (it passed a quiescent point since): no Worker can hold a
 *   handle from before the free. `expire()` and a `create()` that finds the
 *   free list empty move the batches on; early drop puts its victim into
 *   limbo too, so that create fails (FULL) unless a free id is left, and
 *   evicts only while fewer than EVICT_AHEAD ids are on their way back
 *   (else each failed create would drain one more flow into limbo).
 *   Writes a tracker made through a stale handle after the free (status
 *   bits, counters, a last packet) land in the limbo slot and are wiped
 *   when the id is reused. Holders across batches (the API, events) keep
 *   (id, generation): see `generation()`.
 * - A Worker's loop: `quiescent()` before each read batch (the first one
 *   too), `offline()` before it blocks in poll; the owner's `expire()` runs
 *   often (it applies the rings, turns the wheel and moves the limbo on). A
 *   Worker that stops without `offline()` holds every later free in limbo
 *   (creates then fail FULL: `stats().limbo` shows it). A status-page view
 *   maps with `role: "tracker"` and never calls `quiescent()`: it changes
 *   nothing, and what it reads of a flow being freed may be half old.
 * - With `workers` 1 none of this runs: frees go straight to the free list,
 *   no lock, no atomics beyond today's, `quiescent()` does nothing.
 * - Shards (`shards`, `shard`: several owners, each of an id range with its
 *   own free list, limbo and wheel heads over the shared links) predate the
 *   one-owner design and are kept for tests of concurrent creators; with
 *   shards, every instance needs its own `worker` number (a refresh ring
 *   has one producer).
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
  TCP_NONE,
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
import {
  defaultLines,
  FlowIndex,
  LINE_ENTRIES,
  MAX_FLOWS,
  REC_ENTRY,
  REC_META,
  REC_SEEN,
} from "./flow_index.ts";
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
   * Index lines of 4 entries (one cache line each; default: 2 * capacity / 3,
   * a load of 0.75 when full). At least 2 * capacity / 4.
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
  /** Workers that map this table (default 1); sizes the quiescent-state words and refresh rings in the buffer. */
  workers?: number;
  /** This Worker's number, 0..workers-1 (default 0). */
  worker?: number;
  /** "owner" (default) creates, expires, kills and frees flows; "tracker" only looks up and tracks. */
  role?: "owner" | "tracker";
  /**
   * Share of the flow slots that can hold a TCP flow, 0..1 (default 0.5): the
   * TCP state, windows and lock byte are kept for these ids only (the low
   * `ceil(capacity * tcpShare)`). Taken from the buffer when it holds a table.
   */
  tcpShare?: number;
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
  /** Freed ids of this shard waiting for every Worker's quiescent point (workers > 1). */
  limbo: number;
  /** Earlier expiries this tracker could not hand to the owner: its refresh ring was full. */
  refreshOverflows: number;
  /** Refresh-ring entries the owner applied (a flow relinked earlier). */
  refreshed: number;
  /** TCP lock acquisitions that found the lock held (contended). */
  lockSpins: number;
  /** Contended acquisitions that gave up after the bounded spin (a `track` refused; a free went on). */
  lockTimeouts: number;
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
/** Every flow id may hold a TCP flow unless told otherwise: `maxFlows` TCP flows fit, as before. */
const DEFAULT_TCP_SHARE = 1;
/** Private status bit: a killed flow already taken out of the hash. */
const UNHASHED = 0x80;

/** Header words: a table's geometry and key, then one 16-word block per shard. */
const H_MAGIC = 0, H_CAPACITY = 1, H_LINES = 2, H_WHEEL = 3, H_SHARDS = 4, H_K0 = 5, H_K1 = 6;
const H_WORKERS = 7, H_TCP = 8;
const HEADER_WORDS = 16;
/** Shard block word: the first free id of the shard (-1 when none). */
const S_FREE = 0;
/** Shard block word: live flows of the shard (its owner alone writes it). */
const S_SIZE = 1;
/** Shard block words: the closing limbo batch (head, tail, count; -1 heads when empty). */
const S_CLOSING = 2, S_CLOSING_TAIL = 3, S_CLOSING_N = 4;
/** Shard block words: the waiting limbo batch, freed before the shard's snapshot of quiescent words. */
const S_WAITING = 5, S_WAITING_TAIL = 6, S_WAITING_N = 7;
/**
 * The shard block holds two pools of ids: the words above (S_SIZE aside) are
 * those of the ids that hold no TCP state; the same words P_TCP further on
 * are those of the TCP-capable ids (free list, closing and waiting batches).
 */
const P_TCP = 8;
const MAGIC = 0x4b4e4354; // "KNCT"
const MAX_SHARDS = 64;
const MAX_WORKERS = 64;
/** Words per quiescent-state word: one cache line each, so Workers' per-batch stores share none. */
const QS_STRIDE = 16;

/** Entries of one refresh ring (a power of two): id and meta, two words each. */
export const REFRESH_RING = 4096;
/** Ring words: head (the consumer's), tail (the producer's), each on its own line, then the entries. */
const R_HEAD = 0, R_TAIL = 16, R_DATA = 32;
const RING_WORDS = R_DATA + 2 * REFRESH_RING;
/** Refresh entries a tracker remembers having pushed (direct-mapped by id), to push a flow once per drain. */
const PUSHED_SLOTS = 64;

/** Limbo size below which a create that finds no free id early-drops a flow (workers > 1). */
const EVICT_AHEAD = 16;

/** Spins of a contended TCP lock before `track` gives up (the holder runs one `step`: ~100 ns). */
const LOCK_SPINS = 1 << 12;

/** The geometry of a table. */
interface Geometry {
  cap: number;
  lines: number;
  wheelSlots: number;
  shards: number;
  workers: number;
  /** TCP-capable ids: `0..tcp-1`. */
  tcp: number;
}

/** Every column of a table, carved from one arena in this order. */
function layout(g: Geometry, k0: number, k1: number, a: Arena) {
  return {
    header: a.i32(HEADER_WORDS * (1 + g.shards)),
    index: new FlowIndex(g.cap, g.lines, k0, k1, a, g.workers > 1 || g.shards > 1),
    status: a.u8(g.cap),
    flags: a.u8(g.cap),
    ruleId: a.i32(g.cap),
    counters: a.u32(3 * 2 * g.cap),
    expires: a.u32(g.cap),
    tcp: new TcpTracker(g.tcp, a),
    wheelHeads: a.i32(g.shards * g.wheelSlots),
    wheelNext: a.i32(g.cap),
    wheelPrev: a.i32(g.cap),
    wheelAt: a.u32(g.cap),
    tcpLock: a.u8(g.workers > 1 ? g.tcp : 0),
    quiescent: a.i32(QS_STRIDE * g.workers),
    snapshots: a.i32(g.shards * g.workers),
    rings: a.i32(g.workers * g.shards > 1 ? g.workers * g.shards * RING_WORDS : 0),
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
  if (!Number.isInteger(cap) || cap < 1 || cap > MAX_FLOWS) {
    throw new RangeError(`Cannot create connection table: capacity ${cap} is out of range`);
  }
  const lines = options.buckets ?? defaultLines(cap);
  if (!Number.isInteger(lines) || lines < 1 || lines * LINE_ENTRIES < 2 * cap) {
    throw new RangeError(
      `Cannot create connection table: ${lines} buckets cannot hold ${2 * cap} tuples`,
    );
  }
  const wheelSlots = options.wheelSlots ?? 1024;
  const shards = options.shards ?? 1;
  if (!Number.isInteger(shards) || shards < 1 || shards > Math.min(MAX_SHARDS, cap)) {
    throw new RangeError(`Cannot create connection table: ${shards} shards is out of range`);
  }
  const workers = options.workers ?? 1;
  if (!Number.isInteger(workers) || workers < 1 || workers > MAX_WORKERS) {
    throw new RangeError(`Cannot create connection table: ${workers} workers is out of range`);
  }
  const share = options.tcpShare ?? DEFAULT_TCP_SHARE;
  if (typeof share !== "number" || !(share >= 0 && share <= 1)) {
    throw new RangeError(`Cannot create connection table: tcpShare ${share} is out of range`);
  }
  const tcp = Math.min(cap, Math.ceil(cap * share));
  return { cap, lines, wheelSlots, shards, workers, tcp };
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
  /** TCP-capable ids of the table, `0..#tcpCap-1`; this shard's are `#lo..#tcpHi-1`. */
  readonly #tcpCap: number;
  readonly #tcpHi: number;
  readonly #index: FlowIndex;
  /** The flow records (see flow_index.ts): entry offsets, meta (generation, proto), last seen. */
  readonly #rec: Int32Array;
  /** The records as unsigned words (the last-seen second). */
  readonly #recU: Uint32Array;
  /** The index entries, where a flow's tuples live (at its record's offsets). */
  readonly #entries: Int32Array;
  /** Free and limbo chains: the next id, -1 at the end (the wheel's next links, unused off the wheel). */
  readonly #link: Int32Array;
  readonly #tcp: TcpTracker;
  readonly #status: Uint8Array;
  /**
   * Counters, 3 words per handle: packets' low 32 bits, bytes' low 32 bits,
   * then packets' next 8 bits (2^40) and bytes' next 24 (2^56) in one word.
   */
  readonly #ctr: Uint32Array;
  readonly #expires: Uint32Array;
  readonly #wheel: TimerWheel;
  readonly #timeouts: Timeouts;
  readonly #tcpTimeout: Uint32Array;
  readonly #evictScan: number;
  readonly #expireBudget: number;
  readonly #maxRetrans: number;
  readonly #restoreSpec = new FlowSpec();
  /** The wheel's slot seconds (`at`): a tracker compares a new expiry with it. */
  readonly #wheelAt: Uint32Array;
  /** This instance's shard, and the table's shard count. */
  readonly #shard: number;
  readonly #shards: number;
  /** Workers mapping the table, and this one's number. */
  readonly #workers: number;
  readonly #worker: number;
  /** Role "owner": creates, expires and frees the flows of its shard. */
  readonly #owner: boolean;
  /** workers > 1: limbo instead of immediate reuse, TCP locks, atomic status bits. */
  readonly #multi: boolean;
  /** One owner, one shard, one Worker: every flow's wheel is this instance's. */
  readonly #solo: boolean;
  /** TCP lock byte per flow (workers > 1; empty otherwise). */
  readonly #lock: Uint8Array;
  /** Quiescent-state words, QS_STRIDE apart; this Worker's at `#qsAt`. */
  readonly #qs: Int32Array;
  readonly #qsAt: number;
  #qsCount: number;
  /** This shard's snapshot of every Worker's quiescent word, taken when the waiting batch closed. */
  readonly #snapshot: Int32Array;
  /** Refresh rings, `workers * shards` of RING_WORDS (producer worker major); empty for a solo table. */
  readonly #rings: Int32Array;
  /** Ids this Worker pushed into a refresh ring, direct-mapped: [id, meta, ring position] per slot. */
  readonly #pushed = new Int32Array(3 * PUSHED_SLOTS).fill(-1);
  #evictCursor: number;
  /** Early drop's cursor over this shard's TCP-capable ids (a TCP create). */
  #tcpEvictCursor: number;
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
  #refreshOverflows = 0;
  #refreshed = 0;
  #lockSpins = 0;
  #lockTimeouts = 0;

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
        workers: head[H_WORKERS],
        tcp: head[H_TCP],
      };
      if (options.capacity !== undefined && options.capacity !== g.cap) {
        throw new RangeError(
          `Cannot map connection table: capacity ${options.capacity}, the buffer holds ${g.cap}`,
        );
      }
      if (options.workers !== undefined && options.workers !== g.workers) {
        throw new RangeError(
          `Cannot map connection table: ${options.workers} workers, the buffer holds ${g.workers}`,
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
    const worker = options.worker ?? 0;
    if (!Number.isInteger(worker) || worker < 0 || worker >= g.workers) {
      throw new RangeError(`Cannot create connection table: worker ${worker} of ${g.workers}`);
    }
    const role = options.role ?? "owner";
    if (role !== "owner" && role !== "tracker") {
      throw new RangeError(`Cannot create connection table: unknown role "${role}"`);
    }
    const cap = g.cap;
    this.#cap = cap;
    this.#buffer = buffer;
    this.#byteLength = bytes;
    this.#header = c.header;
    this.#shardAt = HEADER_WORDS * (1 + shard);
    this.#lo = Math.floor((shard * cap) / g.shards);
    this.#hi = Math.floor(((shard + 1) * cap) / g.shards);
    this.#tcpCap = g.tcp;
    this.#tcpHi = Math.max(this.#lo, Math.min(this.#hi, g.tcp));
    this.#index = c.index;
    this.#rec = c.index.rec;
    this.#recU = new Uint32Array(buffer, c.index.rec.byteOffset, c.index.rec.length);
    this.#entries = c.index.entries;
    this.#link = c.wheelNext;
    this.#tcp = c.tcp;
    this.#status = c.status;
    this.flags = c.flags;
    this.ruleId = c.ruleId;
    this.#ctr = c.counters;
    this.#expires = c.expires;
    const slots = g.wheelSlots;
    if (fresh) c.wheelHeads.fill(-1);
    this.#wheel = new TimerWheel(cap, slots, this.#expires, {
      heads: c.wheelHeads.subarray(shard * slots, (shard + 1) * slots),
      next: c.wheelNext,
      prev: c.wheelPrev,
      at: c.wheelAt,
      fresh,
      doomed: c.status, // a killed flow goes at its kill's second (see `kill`)
      doomBit: STATUS_DYING,
    });
    if (fresh) this.#setUp(g, k0, k1);
    this.#evictCursor = this.#lo;
    this.#tcpEvictCursor = this.#lo;
    this.#timeouts = resolveTimeouts(options.timeouts);
    this.#tcpTimeout = tcpStateTimeouts(this.#timeouts);
    this.#evictScan = Math.max(1, options.evictScan ?? 64);
    this.#expireBudget = Math.max(2, options.expireBudget ?? 65536);
    this.#maxRetrans = Math.max(1, Math.min(options.tcpMaxRetrans ?? 3, 15));
    this.onExpire = options.onExpire;
    this.#wheelAt = c.wheelAt;
    this.#shard = shard;
    this.#shards = g.shards;
    this.#workers = g.workers;
    this.#worker = worker;
    this.#owner = role === "owner";
    this.#multi = g.workers > 1;
    this.#solo = g.workers === 1 && g.shards === 1 && this.#owner;
    this.#lock = c.tcpLock;
    this.#qs = c.quiescent;
    this.#qsAt = QS_STRIDE * worker;
    // Go on from the word's value: a Worker that maps the table again still changes it.
    this.#qsCount = Atomics.load(this.#qs, this.#qsAt);
    this.#snapshot = c.snapshots.subarray(shard * g.workers, (shard + 1) * g.workers);
    this.#rings = c.rings;
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

  /**
   * A new buffer: two free lists per shard, TCP-capable ids and the others
   * (pop order lo, lo + 1... in each), rule ids -1, then the header.
   */
  #setUp(g: Geometry, k0: number, k1: number): void {
    const h = this.#header, link = this.#link;
    this.ruleId.fill(-1);
    const chain = (lo: number, hi: number, at: number) => {
      for (let id = lo; id < hi; id++) link[id] = id + 1 < hi ? id + 1 : -1;
      h[at] = lo < hi ? lo : -1;
    };
    for (let s = 0; s < g.shards; s++) {
      const lo = Math.floor((s * g.cap) / g.shards), hi = Math.floor(((s + 1) * g.cap) / g.shards);
      const mid = Math.max(lo, Math.min(hi, g.tcp));
      chain(lo, mid, HEADER_WORDS * (1 + s) + P_TCP + S_FREE);
      chain(mid, hi, HEADER_WORDS * (1 + s) + S_FREE);
    }
    h[H_CAPACITY] = g.cap;
    h[H_LINES] = g.lines;
    h[H_WHEEL] = g.wheelSlots;
    h[H_SHARDS] = g.shards;
    h[H_WORKERS] = g.workers;
    h[H_TCP] = g.tcp;
    for (let s = 0; s < g.shards; s++) {
      for (const b of [HEADER_WORDS * (1 + s), HEADER_WORDS * (1 + s) + P_TCP]) {
        h[b + S_CLOSING] =
          h[b + S_CLOSING_TAIL] =
          h[b + S_WAITING] =
          h[b + S_WAITING_TAIL] =
            -1;
      }
    }
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
   * when the table is full and early drop found no unassured flow to evict
   * (with workers > 1 also when the only room is in limbo; and always for a
   * tracker, which creates nothing).
   */
  create(spec: FlowSpec, nowSec: number): number {
    if (!this.#owner) return CREATE_FULL;
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
    this.#recU[4 * id + REC_SEEN] = now;
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
    const id = this.#popFree(now, proto === PROTO_TCP);
    if (id < 0) {
      this.#refused++;
      return CREATE_FULL;
    }
    if (this.#multi) this.#scrub(id);
    const ao = x.claim(ho, 2 * id, os, osp, od, odp);
    if (ao < 0) return this.#unclaim(id, -1, 0);
    // A tuple equal to its reply (a flow to itself) has one entry: the original's is found.
    const same = ho === hr && (os | 0) === (rs | 0) && (od | 0) === (rd | 0) &&
      ((osp ^ rsp) & 0xffff) === 0 && ((odp ^ rdp) & 0xffff) === 0;
    const ar = same ? ao : x.claim(hr, 2 * id + 1, rs, rsp, rd, rdp);
    if (ar < 0) return this.#unclaim(id, ao, ho);
    const rec = this.#rec, r = 4 * id;
    rec[r + REC_ENTRY] = ao;
    rec[r + REC_ENTRY + 1] = ar;
    this.flags[id] = spec.flags;
    this.ruleId[id] = spec.ruleId;
    if (spec.pickUp && proto === PROTO_TCP) this.#tcp.pickUp(id);
    // Release: the record (and flags, rule, TCP state) is visible before the meta that makes
    // it live, and the meta before the entries that hand out its handles.
    Atomics.store(rec, r + REC_META, (rec[r + REC_META] + 0x100) & ~0xff | proto);
    x.publish(ao, proto, 2 * id);
    if (!same) x.publish(ar, proto, 2 * id + 1);
    this.#header[this.#shardAt + S_SIZE]++;
    return id;
  }

  /** Takes flow `id`'s entries out of the lookups (tombstones: their tuples stay readable). */
  #unhashEntries(id: number): void {
    const x = this.#index, rec = this.#rec, r = 4 * id + REC_ENTRY;
    x.unhash(rec[r]);
    if (rec[r + 1] !== rec[r]) x.unhash(rec[r + 1]);
  }

  /** Empties flow `id`'s tombstones (no reader can hold its handles any more). */
  #clearEntries(id: number): void {
    const x = this.#index, rec = this.#rec, r = 4 * id + REC_ENTRY;
    x.clear(rec[r], 2 * id);
    x.clear(rec[r + 1], 2 * id + 1);
  }

  /**
   * Wipes what trackers may have written through stale handles while `id`
   * sat in limbo (they wrote before their quiescent point, so before now).
   */
  #scrub(id: number): void {
    this.#status[id] = 0;
    this.#clearCounters(id);
    if (id < this.#tcpCap) this.#tcp.clear(id);
  }

  /**
   * An index without room within its probe bound: the slot claimed for the
   * original (at `ao`, of hash `ho`; -1 when none) goes again, and the id
   * (never published) too: the table is full.
   */
  #unclaim(id: number, ao: number, ho: number): number {
    if (ao >= 0) this.#index.unclaim(ao, ho, 2 * id);
    this.#rec[4 * id + REC_ENTRY] = this.#rec[4 * id + REC_ENTRY + 1] = -1;
    this.#release(id);
    this.#refused++;
    return CREATE_FULL;
  }

  /**
   * A free id of this shard for a flow that is TCP (`tcp`: a TCP-capable id)
   * or not (one of the others first, else a TCP-capable one), or -1. When
   * none is free: with one Worker, early drop frees a victim for this create
   * (among the TCP-capable ids for a TCP flow); with several, the limbo moves
   * on, and when that frees nothing early drop's victim goes to limbo (this
   * create fails; a later one gets the id after the grace period), unless
   * the limbo already holds EVICT_AHEAD ids coming back.
   */
  #popFree(now: number, tcp: boolean): number {
    let id = this.#take(tcp);
    if (id >= 0) return id;
    if (!this.#multi) return this.#earlyDrop(now, tcp) < 0 ? -1 : this.#take(tcp);
    this.#reclaim();
    id = this.#take(tcp);
    if (id >= 0) return id;
    // Every failed create evicting one more would drain the table into limbo.
    const h = this.#header, b = this.#shardAt + P_TCP;
    let coming = h[b + S_CLOSING_N] + h[b + S_WAITING_N];
    if (!tcp) coming += h[this.#shardAt + S_CLOSING_N] + h[this.#shardAt + S_WAITING_N];
    if (coming < EVICT_AHEAD) this.#earlyDrop(now, tcp);
    return -1;
  }

  /** Pops a free id off this shard's lists (see `#popFree`), or -1. */
  #take(tcp: boolean): number {
    const h = this.#header;
    let at = this.#shardAt + S_FREE;
    if (tcp || h[at] < 0) at += P_TCP;
    const id = h[at];
    if (id >= 0) h[at] = this.#link[id];
    return id;
  }

  /** A new generation of record `id`, proto 0: lookups miss it, `track` refuses its handles. */
  #bumpGeneration(id: number): void {
    const rec = this.#rec, at = 4 * id + REC_META;
    Atomics.store(rec, at, (rec[at] + 0x100) & ~0xff);
  }

  /** Puts freed `id` on its pool's free list (one Worker) or into its closing limbo batch. */
  #release(id: number): void {
    const h = this.#header, b = this.#shardAt + (id < this.#tcpCap ? P_TCP : 0), link = this.#link;
    if (!this.#multi) {
      link[id] = h[b + S_FREE];
      h[b + S_FREE] = id;
      return;
    }
    link[id] = h[b + S_CLOSING];
    if (h[b + S_CLOSING] < 0) h[b + S_CLOSING_TAIL] = id;
    h[b + S_CLOSING] = id;
    h[b + S_CLOSING_N]++;
  }

  /**
   * Moves the limbo on (workers > 1): the waiting batches (one per pool) go
   * to their free lists once their grace period is over, then the closing
   * batches become the waiting ones under a new snapshot of every Worker's
   * quiescent word.
   */
  #reclaim(): void {
    const h = this.#header, b = this.#shardAt, t = b + P_TCP;
    if (h[b + S_WAITING_N] + h[t + S_WAITING_N] > 0) {
      if (!this.#graceOver()) return;
      this.#freeWaiting(b);
      this.#freeWaiting(t);
    }
    if (h[b + S_CLOSING_N] + h[t + S_CLOSING_N] === 0) return;
    // Seq-cst loads after the frees' unhashing (compare-exchange) and generation stores.
    const qs = this.#qs, snap = this.#snapshot;
    for (let w = 0; w < this.#workers; w++) snap[w] = Atomics.load(qs, QS_STRIDE * w);
    this.#closeBatch(b);
    this.#closeBatch(t);
  }

  /** The waiting batch of the pool whose words start at `b` joins its free list. */
  #freeWaiting(b: number): void {
    const h = this.#header;
    if (h[b + S_WAITING_N] === 0) return;
    // Their tombstones go: no Worker holds a handle from before their frees.
    for (let id = h[b + S_WAITING], n = h[b + S_WAITING_N]; id >= 0 && n > 0; n--) {
      this.#clearEntries(id);
      id = this.#link[id];
    }
    this.#link[h[b + S_WAITING_TAIL]] = h[b + S_FREE];
    h[b + S_FREE] = h[b + S_WAITING];
    h[b + S_WAITING] = h[b + S_WAITING_TAIL] = -1;
    h[b + S_WAITING_N] = 0;
  }

  /** The closing batch of the pool whose words start at `b` becomes its waiting one. */
  #closeBatch(b: number): void {
    const h = this.#header;
    h[b + S_WAITING] = h[b + S_CLOSING];
    h[b + S_WAITING_TAIL] = h[b + S_CLOSING_TAIL];
    h[b + S_WAITING_N] = h[b + S_CLOSING_N];
    h[b + S_CLOSING] = h[b + S_CLOSING_TAIL] = -1;
    h[b + S_CLOSING_N] = 0;
  }

  /** True when every Worker passed a quiescent point (or was offline) since the snapshot. */
  #graceOver(): boolean {
    const qs = this.#qs, snap = this.#snapshot;
    for (let w = 0; w < this.#workers; w++) {
      const s = snap[w];
      if (s === 0) continue;
      const now = Atomics.load(qs, QS_STRIDE * w);
      if (now === s) return false;
    }
    return true;
  }

  /**
   * This Worker holds no handle now (between read batches): stores a new
   * quiescent-state counter. Call it before the first lookup of every batch,
   * the first one included: a Worker whose word is 0 (never quiesced, or
   * offline) is taken to hold nothing. Does nothing with one Worker.
   */
  quiescent(): void {
    if (!this.#multi) return;
    let c = (this.#qsCount + 1) | 0;
    if (c === 0) c = 1;
    this.#qsCount = c;
    Atomics.store(this.#qs, this.#qsAt, c);
  }

  /** This Worker is about to block (poll): it holds no handle until its next `quiescent()`. */
  offline(): void {
    if (this.#multi) Atomics.store(this.#qs, this.#qsAt, 0);
  }

  /** Removes flow `id` at once, without calling `onExpire`. False when `id` is not live (or for a tracker). */
  remove(id: number): boolean {
    if (!this.#owner || !this.isLive(id) || id < this.#lo || id >= this.#hi) return false;
    this.#removed++;
    this.#free_(id);
    return true;
  }

  /**
   * Marks flow `id` dying: lookups stop finding it and the next `expire()`
   * removes it with reason GONE_KILLED. False when `id` is not live (or for a tracker).
   */
  kill(id: number, nowSec: number): boolean {
    // A tracker's `track` that passed its DYING check just before may store a later
    // expiry after this one: the wheel frees a dying flow at its slot regardless.
    if (!this.#owner || !this.isLive(id) || id < this.#lo || id >= this.#hi) return false;
    if ((this.#status[id] & STATUS_DYING) !== 0) return false;
    this.#setStatus(id, STATUS_DYING | UNHASHED);
    this.#unhashEntries(id);
    this.#expires[id] = nowSec >>> 0;
    this.#wheel.refresh(id);
    return true;
  }

  /** Entry word of the tuple of handle `h` (the record's offset): src, then dst, then ports. */
  #t(h: number): number {
    return this.#rec[((h >> 1) << 2) + (h & 1)];
  }
  #kSrc(h: number): number {
    return this.#entries[this.#t(h)] >>> 0;
  }
  #kDst(h: number): number {
    return this.#entries[this.#t(h) + 1] >>> 0;
  }
  #kSport(h: number): number {
    return this.#entries[this.#t(h) + 2] >>> 16;
  }
  #kDport(h: number): number {
    return this.#entries[this.#t(h) + 2] & 0xffff;
  }
  /** IP protocol of flow `id`, 0 when free (the record's meta). */
  #protoOf(id: number): number {
    return this.#rec[4 * id + REC_META] & 0xff;
  }

  /** Sets status `bits` of flow `id` (`Atomics.or` with several Workers; a store only when one is unset). */
  #setStatus(id: number, bits: number): void {
    const s = this.#status;
    if ((s[id] & bits) === bits) return;
    if (this.#multi) Atomics.or(s, id, bits);
    else s[id] |= bits;
  }

  /**
   * Unhashes, unschedules and clears slot `id`, and returns it to the free
   * list (with several Workers: to limbo, the generation bumped and the TCP
   * state cleared under the flow's lock, so a `track` in progress finishes first).
   */
  #free_(id: number): void {
    if ((this.#status[id] & UNHASHED) === 0) this.#unhashEntries(id);
    // One Worker: nobody else holds a handle, the slots are free at once.
    if (!this.#multi) this.#clearEntries(id);
    this.#wheel.cancel(id);
    const tcp = id < this.#tcpCap;
    if (this.#multi) {
      // Without the lock (a tracker stalled in `step`) it goes on: `#scrub` wipes the slot on reuse.
      const locked = tcp && this.#lockFlow(id);
      this.#bumpGeneration(id);
      if (tcp) this.#tcp.clear(id);
      if (locked) this.#unlockFlow(id);
    } else if (tcp) {
      this.#tcp.clear(id);
    }
    this.#status[id] = 0;
    this.flags[id] = 0;
    this.ruleId[id] = -1;
    this.#clearCounters(id);
    if (!this.#multi) this.#bumpGeneration(id);
    this.#release(id);
    this.#header[this.#shardAt + S_SIZE]--;
  }

  /** Leaves through `onExpire` with `reason`, then frees. */
  #retire(id: number, reason: number): void {
    this.#setStatus(id, STATUS_DYING);
    const cb = this.onExpire;
    if (cb !== undefined) cb(id, reason);
    this.#free_(id);
  }

  /**
   * Linux early_drop: scans `evictScan` slots from a rotating cursor and frees
   * an expired flow, else the least recently seen unassured one; for a TCP
   * create (`tcp`) only among the TCP-capable ids, whatever protocol their
   * flows are. Returns the freed slot (now on the free list, or in limbo), or -1.
   */
  #earlyDrop(now: number, tcp: boolean): number {
    const lo = this.#lo, hi = tcp ? this.#tcpHi : this.#hi;
    if (hi === lo) return -1;
    const scan = Math.min(this.#evictScan, hi - lo);
    let best = -1;
    let i = tcp ? this.#tcpEvictCursor : this.#evictCursor;
    for (let n = 0; n < scan; n++) {
      if (++i >= hi) i = lo;
      if (this.#protoOf(i) === 0) continue;
      if (this.#expires[i] <= now) {
        best = i;
        break;
      }
      if ((this.#status[i] & STATUS_ASSURED) !== 0) continue;
      if (best === -1 || this.#recU[4 * i + REC_SEEN] < this.#recU[4 * best + REC_SEEN]) best = i;
    }
    if (tcp) this.#tcpEvictCursor = i;
    else this.#evictCursor = i;
    if (best === -1) return -1;
    const reason = (this.#status[best] & STATUS_DYING) !== 0
      ? GONE_KILLED // killed, due now, not yet expired
      : this.#expires[best] <= now
      ? GONE_TIMEOUT
      : GONE_EVICTED;
    if (reason === GONE_KILLED) this.#killed++;
    else if (reason === GONE_TIMEOUT) this.#expired++;
    else this.#evicted++;
    this.#retire(best, reason);
    return best;
  }

  /**
   * Takes TCP flow `id`, just created for a segment in mid stream (no SYN),
   * as ESTABLISHED with unknown windows (Linux nf_conntrack_tcp_loose, see
   * `TcpTracker.pickUp`). It becomes assured when the reply side answers.
   * Does nothing for a tracker.
   */
  pickUp(id: number): void {
    if (!this.#owner || this.#protoOf(id) !== PROTO_TCP) return;
    const locked = this.#multi && this.#lockFlow(id);
    if (this.#tcp.state[id] === 0) this.#tcp.pickUp(id);
    if (locked) this.#unlockFlow(id);
  }

  /**
   * Makes both senders of every TCP flow liberal until each fits its window
   * again (`TcpTracker.loosen`, as a restored checkpoint): their windows are
   * stale when another node carried the flows meanwhile (an HA pair's
   * failback). Control path: walks the TCP ids. Returns the flows loosened;
   * a tracker loosens nothing.
   */
  loosenTcp(): number {
    if (!this.#owner) return 0;
    let n = 0;
    for (let id = 0; id < this.#tcpCap; id++) {
      if (this.#protoOf(id) !== PROTO_TCP || this.#tcp.state[id] === TCP_NONE) continue;
      const locked = this.#multi && this.#lockFlow(id);
      this.#tcp.loosen(id);
      if (locked) this.#unlockFlow(id);
      n++;
    }
    return n;
  }

  /** Takes flow `id`'s TCP lock (workers > 1): false after LOCK_SPINS contended tries. */
  #lockFlow(id: number): boolean {
    const l = this.#lock;
    if (Atomics.compareExchange(l, id, 0, 1) === 0) return true;
    this.#lockSpins++;
    for (let n = 0; n < LOCK_SPINS; n++) {
      if (Atomics.load(l, id) === 0 && Atomics.compareExchange(l, id, 0, 1) === 0) return true;
    }
    this.#lockTimeouts++;
    return false;
  }

  /** Releases flow `id`'s TCP lock (a release store: the state written under it is visible first). */
  #unlockFlow(id: number): void {
    Atomics.store(this.#lock, id, 0);
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
      const k = this.#t(2 * id + d), p = off + 8 + 12 * d;
      v.setInt32(p, this.#entries[k], true);
      v.setInt32(p + 4, this.#entries[k + 1], true);
      v.setInt32(p + 8, this.#entries[k + 2], true);
    }
    v.setUint32(off + 32, 0, true); // was the creation second (no longer kept)
    v.setUint32(off + 36, this.#recU[4 * id + REC_SEEN], true);
    v.setUint32(off + 40, this.#expires[id], true);
    v.setFloat64(off + 48, this.packets(o), true);
    v.setFloat64(off + 56, this.packets(o + 1), true);
    v.setFloat64(off + 64, this.bytes(o), true);
    v.setFloat64(off + 72, this.bytes(o + 1), true);
    if (id < this.#tcpCap) this.#tcp.save(id, v, off + 80);
    else for (let k = 0; k < TCP_RECORD_BYTES; k++) v.setUint8(off + 80 + k, 0);
  }

  /**
   * Adds the flow a `saveFlow` record at `off` of `v` describes, with its
   * state, windows, counters and expiry, and returns its id; RESTORE_SKIPPED
   * when it expired by `nowSec`, or a CREATE_* code. `staleWindows` (a
   * checkpoint, older than the connection's last packets): each TCP sender is
   * checked liberally until one of its segments fits (see `TcpTracker.loosen`).
   * A tracker restores nothing (CREATE_FULL).
   */
  restoreFlow(v: DataView, off: number, nowSec: number, staleWindows: boolean): number {
    if (!this.#owner) return CREATE_FULL;
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
    this.#recU[4 * id + REC_SEEN] = v.getUint32(off + 36, true);
    this.#setPackets(o, v.getFloat64(off + 48, true));
    this.#setPackets(o + 1, v.getFloat64(off + 56, true));
    this.#setBytes(o, v.getFloat64(off + 64, true));
    this.#setBytes(o + 1, v.getFloat64(off + 72, true));
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
   * sets seen-reply/assured, counts, refreshes the expiry. With several
   * Workers a TCP flow's tracking runs under its lock (see the module comment).
   */
  track(handle: number, bytes: number, nowSec: number, seg: TcpSegment | null): TrackVerdict {
    const id = handle >> 1;
    const meta = handle < 0 || id >= this.#cap ? 0 : this.#rec[4 * id + REC_META];
    const proto = meta & 0xff;
    if (proto === 0 || (this.#status[id] & STATUS_DYING) !== 0) {
      this.#invalid++;
      return TRACK_INVALID;
    }
    const now = nowSec >>> 0;
    if (proto === PROTO_TCP) {
      return this.#multi
        ? this.#trackTcpLocked(handle, meta, bytes, now, seg)
        : this.#trackTcp(handle, bytes, now, seg);
    }
    const dir = handle & 1;
    if (dir === DIR_REPLY && proto === PROTO_UDP) this.#setStatus(id, STATUS_ASSURED);
    this.#account(handle, dir, bytes, now);
    const t = now + this.#timeoutOf(id);
    if (t !== this.#expires[id]) {
      this.#expires[id] = t;
      this.#reschedule(id);
    }
    return TRACK_ACCEPT;
  }

  /** `#trackTcp` under flow `handle >> 1`'s lock, once the record still holds the `meta` seen before. */
  #trackTcpLocked(
    handle: number,
    meta: number,
    bytes: number,
    now: number,
    seg: TcpSegment | null,
  ): TrackVerdict {
    const id = handle >> 1;
    if (!this.#lockFlow(id)) {
      this.#invalid++;
      return TRACK_INVALID;
    }
    let verdict: TrackVerdict;
    if (this.#rec[4 * id + REC_META] !== meta || (this.#status[id] & STATUS_DYING) !== 0) {
      this.#invalid++; // freed (or killed) since the caller's lookup
      verdict = TRACK_INVALID;
    } else {
      verdict = this.#trackTcp(handle, bytes, now, seg);
    }
    this.#unlockFlow(id);
    return verdict;
  }

  /** `track` of a live TCP flow: state and windows, status, counters, expiry. */
  #trackTcp(handle: number, bytes: number, now: number, seg: TcpSegment | null): TrackVerdict {
    const id = handle >> 1;
    const dir = handle & 1;
    const tcp = this.#tcp;
    const old = tcp.state[id];
    // A tracker reports a reopening SYN untouched: worker 0 judges it, and until then another
    // SYN on the tuple meets the finished state again instead of a SYN_SENT one to pass.
    if (!this.#owner && seg !== null && tcp.wouldReopen(id, dir, seg)) {
      this.#reopened++;
      return TRACK_REOPEN;
    }
    const step = seg === null ? STEP_INVALID : tcp.step(id, dir, seg);
    if (step === STEP_INVALID) {
      this.#invalid++;
      return TRACK_INVALID;
    }
    if (step === STEP_OUT_OF_WINDOW) {
      this.#outOfWindow++;
      return TRACK_OUT_OF_WINDOW;
    }
    let verdict: TrackVerdict = TRACK_ACCEPT;
    if (step === STEP_REOPEN) {
      this.#reopen(id);
      verdict = TRACK_REOPEN;
    } else if (old === TCP_SYN_RECV && tcp.state[id] === TCP_ESTABLISHED) {
      this.#setStatus(id, STATUS_ASSURED); // Linux: handshake completed after a reply
    } else if (dir === DIR_REPLY && old === TCP_ESTABLISHED) {
      this.#setStatus(id, STATUS_ASSURED); // a picked-up flow, answered
    }
    if (step === STEP_CHALLENGE) this.#challenged++;
    this.#account(handle, dir, bytes, now);
    if (step === STEP_IGNORE || step === STEP_CHALLENGE) return verdict;
    const t = now + this.#timeoutOf(id);
    if (t !== this.#expires[id]) {
      this.#expires[id] = t;
      this.#reschedule(id);
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
    this.#reschedule(id);
    return true;
  }

  /**
   * After `expires[id]` changed: the owner of the flow's wheel relinks it if
   * it got earlier; another Worker pushes it into its refresh ring when it
   * got earlier than the second the owner's wheel will look at it.
   */
  #reschedule(id: number): void {
    if (this.#solo || (this.#owner && id >= this.#lo && id < this.#hi)) {
      this.#wheel.refresh(id);
    } else if (this.#expires[id] < this.#wheelAt[id]) {
      this.#pushRefresh(id);
    }
  }

  /** Hands flow `id`, whose expiry got earlier, to its owner (ring full: counted, the flow expires late). */
  #pushRefresh(id: number): void {
    const rings = this.#rings;
    if (rings.length === 0) {
      this.#refreshOverflows++;
      return;
    }
    const r = this.#ringAt(this.#worker, this.#shardOf(id));
    const meta = this.#rec[4 * id + REC_META];
    const tail = rings[r + R_TAIL], head = Atomics.load(rings, r + R_HEAD);
    const p = this.#pushed, k = 3 * (id & (PUSHED_SLOTS - 1));
    // Still in the ring from an earlier push: the owner reads the expiry as it is when it drains.
    if (p[k] === id && p[k + 1] === meta && ((p[k + 2] - head) | 0) >= 0) return;
    if (((tail - head) | 0) >= REFRESH_RING) {
      this.#refreshOverflows++;
      return;
    }
    const e = r + R_DATA + 2 * (tail & (REFRESH_RING - 1));
    rings[e] = id;
    rings[e + 1] = meta;
    Atomics.store(rings, r + R_TAIL, (tail + 1) | 0); // release: the entry before the tail
    p[k] = id;
    p[k + 1] = meta;
    p[k + 2] = tail;
  }

  /** First word of the refresh ring from `worker` to the owner of `shard`. */
  #ringAt(worker: number, shard: number): number {
    return (worker * this.#shards + shard) * RING_WORDS;
  }

  /** The shard whose id range holds `id` (ranges are floor(s * cap / shards)..). */
  #shardOf(id: number): number {
    return this.#shards === 1 ? 0 : Math.floor(((id + 1) * this.#shards - 1) / this.#cap);
  }

  /** The owner applies every Worker's refresh ring of its shard: relinks flows whose expiry got earlier. */
  #drainRefresh(): void {
    const rings = this.#rings, rec = this.#rec;
    for (let w = 0; w < this.#workers; w++) {
      const r = this.#ringAt(w, this.#shard);
      const tail = Atomics.load(rings, r + R_TAIL);
      let head = rings[r + R_HEAD];
      if (head === tail) continue;
      for (; head !== tail; head = (head + 1) | 0) {
        const e = r + R_DATA + 2 * (head & (REFRESH_RING - 1));
        const id = rings[e];
        if (id < this.#lo || id >= this.#hi || rec[4 * id + REC_META] !== rings[e + 1]) continue;
        this.#wheel.refresh(id);
        this.#refreshed++;
      }
      Atomics.store(rings, r + R_HEAD, head);
    }
  }

  #account(handle: number, dir: number, bytes: number, now: number): void {
    const id = handle >> 1;
    if (dir === DIR_REPLY) this.#setStatus(id, STATUS_SEEN_REPLY);
    const c = this.#ctr, k = 3 * handle;
    const p = (c[k] + 1) >>> 0;
    c[k] = p;
    const b = c[k + 1] + bytes;
    if (p === 0) c[k + 2] = (c[k + 2] & ~0xff) | ((c[k + 2] + 1) & 0xff); // 2^32 packets: carry
    if (b < 4294967296) c[k + 1] = b;
    else this.#carryBytes(k, b);
    this.#recU[4 * id + REC_SEEN] = now;
  }

  /** A SYN reused a TIME_WAIT/CLOSE flow: it starts over as a new connection. */
  #reopen(id: number): void {
    if (this.#multi) Atomics.and(this.#status, id, ~(STATUS_SEEN_REPLY | STATUS_ASSURED));
    else this.#status[id] = 0;
    this.#clearCounters(id);
    this.#reopened++;
  }

  #clearCounters(id: number): void {
    this.#ctr.fill(0, 6 * id, 6 * id + 6);
  }

  /** Sets the packet count of `handle` (a restored record's), wrapping at 2^40. */
  #setPackets(handle: number, n: number): void {
    const v = n >= 0 && n < 2 ** 40 ? Math.floor(n) : 0;
    const c = this.#ctr, k = 3 * handle;
    c[k] = v % 2 ** 32;
    c[k + 2] = (c[k + 2] & ~0xff) | Math.floor(v / 2 ** 32);
  }

  /** Sets the byte count of `handle` (a restored record's), wrapping at 2^56. */
  #setBytes(handle: number, n: number): void {
    const c = this.#ctr, k = 3 * handle;
    const v = n >= 0 && n < 2 ** 56 ? Math.floor(n) : 0;
    c[k + 1] = v % 2 ** 32;
    c[k + 2] = (c[k + 2] & 0xff) | (Math.floor(v / 2 ** 32) << 8);
  }

  /** Counter words from `k`: the low byte word overflowed to `b`; the carry goes to the high 24 bits. */
  #carryBytes(k: number, b: number): void {
    const c = this.#ctr, carry = Math.floor(b / 4294967296);
    c[k + 1] = b - carry * 4294967296;
    c[k + 2] = (c[k + 2] + (carry << 8)) >>> 0;
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
   * With several Workers it first applies the trackers' refresh rings and
   * afterwards moves the limbo on. A tracker's call does nothing (0).
   */
  expire(nowSec: number, maxWork = this.#expireBudget): number {
    if (!this.#owner) return 0;
    const before = this.#expired + this.#killed;
    if (this.#rings.length !== 0) this.#drainRefresh();
    this.#wheel.advance(nowSec >>> 0, Math.max(2, maxWork), this.#onDue);
    if (this.#multi) this.#reclaim();
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
  /**
   * The generation of slot `id` (24 bits, bumped by every create and free):
   * a holder across batches keeps (id, generation) and checks it before use.
   */
  generation(id: number): number {
    return this.#rec[4 * id + REC_META] >>> 8;
  }
  /** IP protocol of flow `id` (0 for a free slot). */
  proto(id: number): number {
    return this.#protoOf(id);
  }
  /** TCP state code of flow `id` (TCP_NONE for other protocols). */
  tcpState(id: number): number {
    return id < this.#tcpCap ? this.#tcp.state[id] : TCP_NONE;
  }
  /** TCP window of the sender of `handle`: td_end, td_maxend, td_maxwin, shift (for status pages and tests). */
  tcpWindow(handle: number): { end: number; maxEnd: number; maxWin: number; scale: number } {
    const t = this.#tcp;
    if (handle >> 1 >= this.#tcpCap) return { end: 0, maxEnd: 0, maxWin: 0, scale: 0 };
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
    return (this.#ctr[3 * handle + 2] & 0xff) * 2 ** 32 + this.#ctr[3 * handle];
  }
  /** Bytes seen in the direction of `handle`. */
  bytes(handle: number): number {
    const c = this.#ctr, k = 3 * handle;
    return (c[k + 2] >>> 8) * 2 ** 32 + c[k + 1];
  }
  /** Second of the last tracked packet of flow `id`. */
  lastSeen(id: number): number {
    return this.#recU[4 * id + REC_SEEN];
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
  /** Flow slots that can hold a TCP flow (see `tcpShare`). */
  get tcpCapacity(): number {
    return this.#tcpCap;
  }
  /** The timeouts in force. */
  get timeouts(): Readonly<Timeouts> {
    return this.#timeouts;
  }
  /** Bytes of every column the table holds: its whole buffer. */
  get byteLength(): number {
    return this.#byteLength;
  }

  /** Bytes of the flow index, the tuples in it and the flow records (part of `byteLength`). */
  get indexByteLength(): number {
    return this.#index.byteLength;
  }

  /** Live entries of the flow index, tombstones, and the sum of its overflow counts (O(index); for tests). */
  indexCensus(): { entries: number; tombstones: number; overflow: number } {
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
      limbo: this.#limbo(),
      refreshOverflows: this.#refreshOverflows,
      refreshed: this.#refreshed,
      lockSpins: this.#lockSpins,
      lockTimeouts: this.#lockTimeouts,
    };
  }

  /** Ids of this shard in limbo, both pools. */
  #limbo(): number {
    const h = this.#header, b = this.#shardAt, t = b + P_TCP;
    return h[b + S_CLOSING_N] + h[b + S_WAITING_N] + h[t + S_CLOSING_N] + h[t + S_WAITING_N];
  }

  /**
   * This shard's ids by list: live, free, in limbo (walks the lists, O(ids);
   * for tests: the three add up to the shard's ids when no id is lost).
   */
  slotCensus(): { live: number; free: number; limbo: number } {
    const h = this.#header, b = this.#shardAt, link = this.#link, n = this.#hi - this.#lo;
    const walk = (head: number): number => {
      let k = 0;
      for (let id = head; id >= 0 && k <= n; id = link[id]) k++;
      return k;
    };
    let live = 0;
    for (let id = this.#lo; id < this.#hi; id++) if (this.#protoOf(id) !== 0) live++;
    const t = b + P_TCP;
    return {
      live,
      free: walk(h[b + S_FREE]) + walk(h[t + S_FREE]),
      limbo: walk(h[b + S_CLOSING]) + walk(h[b + S_WAITING]) + walk(h[t + S_CLOSING]) +
        walk(h[t + S_WAITING]),
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
      tcpState: this.#protoOf(id) === PROTO_TCP ? tcpStateName(this.tcpState(id)) : null,
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
      bytes: [this.bytes(o), this.bytes(o + 1)],
      lastSeen: this.#recU[4 * id + REC_SEEN],
      expiresAt: this.#expires[id],
      ruleId: this.ruleId[id],
    };
  }
}
