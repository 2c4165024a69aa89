/**
 * The lookup side of the unlock table in one `SharedArrayBuffer`, so that
 * every data-plane Worker (one per TUN queue) can ask "is this source
 * unlocked now?" without a message (issue 11 item 2). Worker 0 (the owner)
 * is the only writer of the index and of the entries; every Worker reads
 * lock-free and refreshes the entries its flows use in a column of its own.
 *
 * Layout, each part on its own cache line:
 *   header   [magic, capacity, lines, seed, workers, size]
 *   timeouts f64 [idle ms, lifetime ms]
 *   ports    2048 words, bit p: some user's first port is p
 *   quiescent one word per Worker, a cache line each (QSBR, below)
 *   index    `lines` lines of 16 words (below)
 *   key u32, user i32, unlockedAt f64        per slot
 *   seen f64, bytes f64                      per Worker and slot
 *
 * Index: word 0 of a line counts the entries whose probe started at or
 * before this line and that live after it; words 1-15 are slots, 0 empty,
 * else `tag << hb | slot + 1` (`hb` the width of `capacity`, the tag the
 * low bits of the address's hash). The home line is picked by the hash's
 * high bits. A lookup scans its home line's 15 words, reads the key of a
 * tag match only, and goes on to the next line only while the count is
 * non-zero: a miss (a locked source) costs one line. Entries live at most
 * MAX_PROBE lines past their home.
 *
 * Who writes which word:
 * - Worker 0 alone: the header, timeouts, ports, the index (slots and
 *   counts), key, user and unlockedAt, and its own `seen`/`bytes` column.
 * - Worker w > 0: its quiescent word and its own `seen`/`bytes` column
 *   (`touch`: last packet time, bytes on admitted flows). One writer per
 *   word, so plain stores; Worker 0 folds the columns when it reads an entry
 *   (last seen = the largest of the columns, bytes = their sum), so idle
 *   expiry sees every Worker's traffic without a handoff.
 *
 * Publishing an entry: the owner takes a slot no reader can hold (below),
 * writes key, user, unlockedAt and its seen time, zeroes the other Workers'
 * columns, raises the counts of the lines the probe passes, and only then
 * stores the slot word (`Atomics.store`, release). A reader that finds the
 * slot word sees the finished entry. Readers use plain loads on the index
 * (`Atomics.load` costs a call per word in this V8; conntrack's flow index
 * does the same): on x86-64 and arm64 a plain 32-bit load is not torn and a
 * store-release orders the entry before the slot word.
 *
 * Deletion: neither tombstones nor backward shift. The owner zeroes the
 * slot word and lowers the counts of the lines its probe crossed; no entry
 * ever moves. So a reader looking for an entry live throughout its lookup
 * cannot miss it: every line between the home and the entry counts it, and
 * its slot word stays where the reader will look.
 *
 * Updates in place (a new knock refreshes or changes the user of a live
 * entry) write user, unlockedAt and seen word by word: a reader can see a
 * mix of the old and the new values, each of which was true of the entry at
 * some instant, and the liveness of an entry live before and after is the
 * same either way.
 *
 * Reusing a removed slot safely (RCU's quiescent-state grace period): a
 * reader holds a slot from its lookup until its touch or verdict, inside one
 * packet. Each Worker stores a new value in its quiescent word between read
 * batches (`quiescent()`; 0 from `offline()`, before it blocks), when it
 * holds no slot. A removed slot goes into a closing batch; when that batch
 * closes, the owner snapshots every Worker's word; the batch's slots return
 * to the free list once every Worker's word is 0, was 0 at the snapshot or
 * differs from it. Only then are the slot's columns rewritten, so a reader
 * that found a slot reads (and touches) that entry's values, never another
 * address's. With one Worker a removed slot is free at once. A spare of
 * slots beyond the table's bound covers what waits in limbo.
 *
 * Floats (`unlockedAt`, `seen`, `bytes`, timeouts) are plain f64 stores with
 * one writer each, as the flow table's byte counters: aligned 8-byte moves,
 * not torn on the targets Deno runs on.
 */

/** Index lines an entry may lie past its home line. */
const MAX_PROBE = 16;
/** Slot words per index line (word 0 is the count). */
const LINE_SLOTS = 15;
/** Lines at most this full on average at capacity (11 of 15). */
const PER_LINE = 11;
const MAGIC = 0x554e4c4b; // "UNLK"
const HDR_MAGIC = 0, HDR_CAPACITY = 1, HDR_LINES = 2, HDR_SEED = 3, HDR_WORKERS = 4, HDR_SIZE = 5;
/** Words of the first-port bitmap. */
const PORT_WORDS = 2048;
/** Words per quiescent word: a cache line each. */
const QS_STRIDE = 16;
const NONE = -1;

/** The geometry of an unlock buffer. */
export interface UnlockIndexOptions {
  /** Entries the table holds at most. */
  maxEntries: number;
  /** Workers that map the buffer (default 1). */
  workers?: number;
}

interface Geometry {
  capacity: number;
  lines: number;
  workers: number;
}

function geometry(o: UnlockIndexOptions): Geometry {
  const max = o.maxEntries, workers = o.workers ?? 1;
  if (!Number.isInteger(max) || max < 1 || max > 1 << 24) {
    throw new Error(`Cannot create unlock table: size ${max} is not an integer in 1..16777216`);
  }
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) {
    throw new Error(`Cannot create unlock table: ${workers} workers is not in 1..64`);
  }
  // Slots waiting out a grace period are not free: a spare keeps unlocks going meanwhile.
  const capacity = workers === 1 ? max : max + Math.max(64, Math.ceil(max / 8));
  return { capacity, lines: Math.max(1, Math.ceil(capacity / PER_LINE)), workers };
}

/** Cache-line aligned views carved in order from one buffer (a dry run without one). */
class Carver {
  offset = 0;
  constructor(readonly buffer: SharedArrayBuffer | null) {}
  #take(bytes: number): number {
    const at = this.offset;
    this.offset = Math.ceil((at + bytes) / 64) * 64;
    return at;
  }
  i32(n: number): Int32Array {
    const at = this.#take(4 * n);
    return this.buffer ? new Int32Array(this.buffer, at, n) : new Int32Array(0);
  }
  u32(n: number): Uint32Array {
    const at = this.#take(4 * n);
    return this.buffer ? new Uint32Array(this.buffer, at, n) : new Uint32Array(0);
  }
  f64(n: number): Float64Array {
    const at = this.#take(8 * n);
    return this.buffer ? new Float64Array(this.buffer, at, n) : new Float64Array(0);
  }
}

/** The views of an unlock buffer, in layout order. */
function carve(c: Carver, g: Geometry) {
  return {
    hdr: c.i32(16),
    times: c.f64(2),
    ports: c.i32(PORT_WORDS),
    qs: c.i32(QS_STRIDE * g.workers),
    idx: c.i32(16 * g.lines),
    key: c.u32(g.capacity),
    user: c.i32(g.capacity),
    unlockedAt: c.f64(g.capacity),
    seen: c.f64(g.workers * g.capacity),
    bytes: c.f64(g.workers * g.capacity),
  };
}

/** The shared unlock index and entry columns; see the module comment. */
export class UnlockIndex {
  /** Slots (the bound plus the grace spare). */
  readonly capacity: number;
  readonly workers: number;
  /** This Worker's number; 0 is the owner, the one writer. */
  readonly worker: number;
  /** Per slot: the address (valid while the slot is live). */
  readonly key: Uint32Array;
  /** Per slot: the owner's id of the user (names stay with the owner). */
  readonly user: Int32Array;
  /** Per slot: when the unlocking knock came (ms). */
  readonly unlockedAt: Float64Array;
  /** Per Worker w and slot s (`w * capacity + s`): its last packet on an admitted flow (ms). */
  readonly seen: Float64Array;
  /** Per Worker w and slot s: bytes it counted on admitted flows. */
  readonly bytes: Float64Array;
  readonly #hdr: Int32Array;
  readonly #times: Float64Array;
  readonly #ports: Int32Array;
  readonly #qs: Int32Array;
  readonly #idx: Int32Array;
  readonly #lines: number;
  readonly #lineScale: number;
  readonly #maxProbe: number;
  readonly #hb: number;
  readonly #hMask: number;
  readonly #tagMask: number;
  readonly #seed: number;
  /** The last value this Worker stored in its quiescent word. */
  #qsCount = 0;
  // The owner's slot allocator (private memory): free, closing and waiting lists chained by link.
  readonly #link: Int32Array;
  #free = NONE;
  #fresh = 0;
  #closing = NONE;
  #waiting = NONE;
  #closingCount = 0;
  #waitingCount = 0;
  readonly #snapshot: Int32Array;

  /** Bytes of a buffer for `options`. */
  static bufferBytes(options: UnlockIndexOptions): number {
    const c = new Carver(null);
    carve(c, geometry(options));
    return c.offset;
  }

  /** A new, empty unlock buffer (its hash seed random), to map with `new UnlockIndex(buffer, w)`. */
  static createBuffer(options: UnlockIndexOptions): SharedArrayBuffer {
    const g = geometry(options);
    const buffer = new SharedArrayBuffer(UnlockIndex.bufferBytes(options));
    const v = carve(new Carver(buffer), g);
    v.hdr[HDR_CAPACITY] = g.capacity;
    v.hdr[HDR_LINES] = g.lines;
    // A per-table random seed keeps attackers from choosing colliding addresses.
    v.hdr[HDR_SEED] = crypto.getRandomValues(new Uint32Array(1))[0] | 0;
    v.hdr[HDR_WORKERS] = g.workers;
    Atomics.store(v.hdr, HDR_MAGIC, MAGIC);
    return buffer;
  }

  /** Maps `buffer` as Worker `worker` (0: the owner). */
  constructor(buffer: SharedArrayBuffer, worker = 0) {
    const hdr = new Int32Array(buffer, 0, 16);
    if (Atomics.load(hdr, HDR_MAGIC) !== MAGIC) {
      throw new Error("Cannot map unlock table: the buffer holds none");
    }
    const g: Geometry = {
      capacity: hdr[HDR_CAPACITY],
      lines: hdr[HDR_LINES],
      workers: hdr[HDR_WORKERS],
    };
    if (!Number.isInteger(worker) || worker < 0 || worker >= g.workers) {
      throw new Error(`Cannot map unlock table: worker ${worker} of ${g.workers}`);
    }
    const v = carve(new Carver(buffer), g);
    this.capacity = g.capacity;
    this.workers = g.workers;
    this.worker = worker;
    this.#hdr = v.hdr;
    this.#times = v.times;
    this.#ports = v.ports;
    this.#qs = v.qs;
    this.#idx = v.idx;
    this.key = v.key;
    this.user = v.user;
    this.unlockedAt = v.unlockedAt;
    this.seen = v.seen;
    this.bytes = v.bytes;
    this.#lines = g.lines;
    this.#lineScale = g.lines / 4294967296;
    this.#maxProbe = Math.min(MAX_PROBE, g.lines);
    this.#hb = 32 - Math.clz32(g.capacity);
    this.#hMask = this.#hb === 32 ? -1 : (1 << this.#hb) - 1;
    this.#tagMask = this.#hb >= 32 ? 0 : (2 ** (32 - this.#hb) - 1) | 0;
    this.#seed = v.hdr[HDR_SEED];
    const owner = worker === 0;
    this.#link = new Int32Array(owner ? g.capacity : 0);
    this.#snapshot = new Int32Array(owner ? g.workers : 0);
  }

  /** Live entries (the owner's count). */
  get size(): number {
    return this.#hdr[HDR_SIZE];
  }

  /** Bytes of the shared buffer plus the owner's private allocator. */
  get byteLength(): number {
    return this.#idx.buffer.byteLength + this.#link.byteLength;
  }

  /** The idle timeout in force (ms). */
  get idleTimeoutMs(): number {
    return this.#times[0];
  }

  /** The absolute lifetime in force (ms), 0 for none. */
  get lifetimeMs(): number {
    return this.#times[1];
  }

  /** Owner: sets the timeouts every Worker's expiry check uses. */
  setTimeouts(idleMs: number, lifetimeMs: number): void {
    this.#times[0] = idleMs;
    this.#times[1] = lifetimeMs;
  }

  /** Owner: replaces the set of users' first ports (each word goes from old to new at once). */
  setFirstPorts(ports: Iterable<number>): void {
    const words = new Int32Array(PORT_WORDS);
    for (const p of ports) words[(p & 0xffff) >>> 5] |= 1 << (p & 31);
    for (let i = 0; i < PORT_WORDS; i++) {
      if (this.#ports[i] !== words[i]) Atomics.store(this.#ports, i, words[i]);
    }
  }

  /** Whether `port` is some user's first port. */
  isFirstPort(port: number): boolean {
    return (this.#ports[(port & 0xffff) >>> 5] & (1 << (port & 31))) !== 0;
  }

  #hash(ip: number): number {
    // murmur3 fmix32 of the seeded address.
    let h = ip ^ this.#seed;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return h ^ (h >>> 16);
  }

  #home(h: number): number {
    return ((h >>> 0) * this.#lineScale) | 0;
  }

  /** The slot of `ip` (uint32), or -1. Any Worker; no allocation, no atomics. */
  find(ip: number): number {
    const idx = this.#idx, key = this.key, hb = this.#hb, hMask = this.#hMask;
    const h = this.#hash(ip), tag = h & this.#tagMask;
    let line = this.#home(h);
    for (let n = 0; n < this.#maxProbe; n++) {
      const base = line << 4;
      for (let i = base + 1; i <= base + LINE_SLOTS; i++) {
        const v = idx[i];
        if (v === 0 || v >>> hb !== tag) continue;
        const s = (v & hMask) - 1;
        if (key[s] === ip) return s;
      }
      if (idx[base] === 0) return NONE;
      line = line + 1 === this.#lines ? 0 : line + 1;
    }
    return NONE;
  }

  /** The last packet time of slot `s` over every Worker's column. */
  lastSeen(s: number): number {
    const seen = this.seen, cap = this.capacity;
    let t = seen[s];
    for (let w = 1; w < this.workers; w++) {
      const x = seen[w * cap + s];
      if (x > t) t = x;
    }
    return t;
  }

  /** Bytes of slot `s` over every Worker's column. */
  bytesOf(s: number): number {
    const bytes = this.bytes, cap = this.capacity;
    let b = 0;
    for (let w = 0; w < this.workers; w++) b += bytes[w * cap + s];
    return b;
  }

  /** Whether slot `s` is unlocked at `nowMs` (neither idle nor past its lifetime). */
  liveAt(s: number, nowMs: number): boolean {
    const life = this.#times[1];
    if (life > 0 && nowMs >= this.unlockedAt[s] + life) return false;
    return nowMs < this.lastSeen(s) + this.#times[0];
  }

  /** This Worker notes a packet of `bytes` on an admitted flow of slot `s` (its own column). */
  touch(s: number, nowMs: number, bytes: number): void {
    const i = this.worker * this.capacity + s;
    if (nowMs > this.seen[i]) this.seen[i] = nowMs;
    this.bytes[i] += bytes;
  }

  // ---- the owner -------------------------------------------------------------

  /**
   * Takes a slot no reader can hold, its columns zeroed; -1 when every
   * spare slot still waits out its grace period.
   */
  alloc(): number {
    if (this.#free === NONE && this.#fresh < this.capacity) return this.#wipe(this.#fresh++);
    if (this.#free === NONE) this.advance();
    const s = this.#free;
    if (s === NONE) return NONE;
    this.#free = this.#link[s];
    return this.#wipe(s);
  }

  /** Zeroes every Worker's columns of slot `s` (no reader holds it); returns `s`. */
  #wipe(s: number): number {
    const cap = this.capacity;
    for (let w = 0; w < this.workers; w++) {
      this.seen[w * cap + s] = 0;
      this.bytes[w * cap + s] = 0;
    }
    return s;
  }

  /**
   * Publishes slot `s` (its columns written) under its key; false when no
   * index slot is free within MAX_PROBE lines (the slot stays the caller's).
   */
  insert(s: number): boolean {
    const idx = this.#idx;
    const h = this.#hash(this.key[s]);
    const entry = ((h & this.#tagMask) << this.#hb) | (s + 1);
    const home = this.#home(h);
    let line = home;
    for (let n = 0; n < this.#maxProbe; n++) {
      const base = line << 4;
      for (let i = base + 1; i <= base + LINE_SLOTS; i++) {
        if (idx[i] !== 0) continue;
        Atomics.store(idx, i, entry);
        this.#hdr[HDR_SIZE]++;
        return true;
      }
      // An entry will live past this line: count it before it is published.
      Atomics.store(idx, base, idx[base] + 1);
      line = line + 1 === this.#lines ? 0 : line + 1;
    }
    this.#uncount(home, this.#maxProbe);
    return false;
  }

  /** Unpublishes slot `s` and hands it to the grace period (with one Worker: free at once). */
  remove(s: number): void {
    const idx = this.#idx;
    const h = this.#hash(this.key[s]);
    const entry = ((h & this.#tagMask) << this.#hb) | (s + 1);
    const home = this.#home(h);
    let line = home;
    for (let n = 0; n < this.#maxProbe; n++) {
      const base = line << 4;
      for (let i = base + 1; i <= base + LINE_SLOTS; i++) {
        if (idx[i] !== entry) continue;
        Atomics.store(idx, i, 0);
        this.#uncount(home, n);
        this.#hdr[HDR_SIZE]--;
        this.release(s);
        return;
      }
      line = line + 1 === this.#lines ? 0 : line + 1;
    }
  }

  /** Returns a slot that was never published (or was removed) to the allocator. */
  release(s: number): void {
    if (this.workers === 1) {
      this.#link[s] = this.#free;
      this.#free = s;
      return;
    }
    this.#link[s] = this.#closing;
    this.#closing = s;
    this.#closingCount++;
  }

  /** Lowers the counts of `n` lines from `line`. */
  #uncount(line: number, n: number): void {
    const idx = this.#idx;
    for (let i = 0; i < n; i++) {
      Atomics.store(idx, line << 4, idx[line << 4] - 1);
      line = line + 1 === this.#lines ? 0 : line + 1;
    }
  }

  /**
   * Moves the grace period on: the waiting batch goes to the free list once
   * every Worker passed a quiescent point since its snapshot, then the
   * closing batch starts waiting (a new snapshot). Owner; cheap, call often.
   */
  advance(): void {
    if (this.#waiting !== NONE) {
      if (!this.#graceOver()) return;
      let s = this.#waiting;
      while (s !== NONE) {
        const next = this.#link[s];
        this.#link[s] = this.#free;
        this.#free = s;
        s = next;
      }
      this.#waiting = NONE;
      this.#waitingCount = 0;
    }
    if (this.#closing === NONE) return;
    this.#waiting = this.#closing;
    this.#waitingCount = this.#closingCount;
    this.#closing = NONE;
    this.#closingCount = 0;
    for (let w = 1; w < this.workers; w++) {
      this.#snapshot[w] = Atomics.load(this.#qs, w * QS_STRIDE);
    }
  }

  #graceOver(): boolean {
    for (let w = 1; w < this.workers; w++) {
      const was = this.#snapshot[w], now = Atomics.load(this.#qs, w * QS_STRIDE);
      if (was !== 0 && now === was) return false;
    }
    return true;
  }

  /** Removed slots not yet free again (closing and waiting). */
  get limbo(): number {
    return this.#closingCount + this.#waitingCount;
  }

  // ---- every Worker -------------------------------------------------------------

  /** This Worker holds no slot now (between read batches). Not needed by the owner. */
  quiescent(): void {
    if (this.worker === 0) return;
    this.#qsCount = this.#qsCount === 0x7fffffff ? 1 : this.#qsCount + 1;
    Atomics.store(this.#qs, this.worker * QS_STRIDE, this.#qsCount);
  }

  /** This Worker is about to block: it holds no slot until its next `quiescent()`. */
  offline(): void {
    if (this.worker === 0) return;
    Atomics.store(this.#qs, this.worker * QS_STRIDE, 0);
  }
}
