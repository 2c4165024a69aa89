/**
 * The flow index with the tuples in it, in shared memory: a lookup that hits
 * reads one 64-byte line (two, whose misses overlap), and never the record.
 *
 * Entries: 4 words, 4 to a line: [src, dst, sport << 16 | dport,
 * proto << 24 | handle + 1]. Word 3 is the entry's state: 0 empty; proto 0
 * and a handle: held but not matchable (a slot claimed by a create not yet
 * published, or a tombstone: a removed entry whose tuple words stay readable
 * until its flow's id leaves limbo); proto and handle: live. Handles need
 * 24 bits: at most 2^23 - 1 flows (8.4M).
 *
 * Placement, two choices: the hash names two lines, `home` (its high bits)
 * and `alt` (a remix); an entry goes to the less full of the two (the home
 * line on a tie), and a lookup reads both, loading the alternate's first
 * word before it compares the home line's entries, so the two misses
 * overlap (measured on this EPYC: one random line 189 ns, two independent
 * ones 219 ns, two dependent ones 402 ns). When both are full the entry
 * goes to a third line (another remix), or walks on from there to the
 * first line with room (never into its home or alternate line). Each
 * line's 16-bit count word says how many entries whose alternate line it
 * is went on to their third line (bits 0-6), how many entries' walks from
 * their third line passed it (bits 7-14), and holds the writers' lock of
 * the line (bit 15). A lookup reads the third line only when its alternate
 * line's first count is non-zero, and walks on only while the pass count
 * is (F14's overflow count). Nothing lives further than MAX_PROBE lines
 * from its third line (an insert that would fails: the table reports it
 * full). Lines read per lookup at the default load after 3 x capacity of
 * churn (1M and 50k flows alike): hits 2 together + 0.19, misses 2
 * together + 0.39 (one line walked from the alternate instead of a third:
 * misses 2 + 1.28).
 *
 * Why two choices and not one home line probed linearly (the sketch of
 * issue 11): lines of 4 cluster. A conntrack table lives in churn, where
 * every entry was placed at the full load, not at the average of a filling
 * table; simulated at churn (remove one, insert one, 3 x the table), share
 * of entries outside the line(s) a hit reads first:
 *   load               0.60  0.65  0.70  0.75  0.80
 *   one line, linear   0.21  0.27  0.33  0.40  0.48
 *   two choices        0.02  0.04  0.07  0.12  0.20  (spilling linearly)
 * (15-slot lines at 0.73, the index before this one: 0.09.) The default
 * load is 0.75 (3 of 4 entries per line when the table is full). Cuckoo
 * moves would allow 0.9, but an entry in flight can be missed by a reader
 * without a lock, and a moved entry's old slot would need a grace period
 * of its own; with two choices and counts, entries never move.
 *
 * Measured (scripts/bench/conntrack_bench.ts 10000 1000000, this index and
 * the one before, 11 s apart on a quiet 2-core EPYC VM, huge pages): lookup
 * of a live tuple 89.5 vs 83.3 ns at 10k flows, 227 vs 373 ns at 1M (1M
 * over 10k: 2.54 vs 4.47); of an absent one 57 vs 81 at 10k, 230 vs 242 at
 * 1M; lookup + track 160 vs 140 at 10k, 775 vs 779 at 1M (track's columns
 * are misses of their own); create + first track 1077 vs 819 at 1M. A run
 * under load (5.9) gave 131, 276 (2.11), 92, 253. The 1.3x of issue 11 is
 * not met: the 10k table (1.4 MB) sits in the 2 MB L2, and 227 - 89 = 138
 * ns is the one DRAM access a 1M lookup now makes. In one process, base and
 * this index alternated after 1 x capacity of churn, medians of 11: 1M
 * hits 403 vs 300 ns.
 *
 * Records: 4 words per flow, [orig entry, reply entry, meta, last seen]:
 * the word offsets of its two entries (where the table reads a flow's
 * tuples and the owner removes them without a search), meta = generation
 * << 8 | proto (the generation counts every create and free of the id,
 * proto is 0 while it is free), and the second of its last packet (written
 * by `track` beside the meta it reads, one line). The free and limbo chains
 * live in the timer wheel's next links, unused while an id is off the
 * wheel (see table.ts).
 *
 * Removal: the entry becomes a tombstone (proto cleared; the counts of the
 * lines its spill passed go down at once: lookups need not reach it) and
 * is emptied when its flow's id comes out of limbo (with one Worker at
 * once). No rehash, no backward shift: a year of churn leaves no debris.
 *
 * Concurrency (several Workers on one buffer, `shared`):
 * - Only an owner writes entries. Readers take no lock. An entry is
 *   written in order: claimed (compare-exchange of word 3 from 0 to the
 *   handle, proto 0), tuple words, then the flow's record and meta
 *   (`Atomics.store`), then word 3 with its proto (`Atomics.store`).
 * - A reader compares with plain loads (`Atomics.load` is a builtin call in
 *   this V8: 13 ns against 1.5 measured, too dear for 8 entries), and
 *   confirms a match: `Atomics.load` of word 3 (a call: TurboFan neither
 *   merges it with the earlier load nor moves loads across it), then the
 *   tuple words again with plain loads after it. It accepts when word 3 is
 *   live with the proto and the re-read tuple is the one it looks for.
 * - Why no torn match gets through. The plain loads before the confirm may
 *   be stale or reordered (old tuple words with a new word 3): that is why
 *   they only select candidates. After the confirm's load saw word 3 live
 *   (value L), the tuple words cannot change before the reader's next
 *   quiescent point: rewriting them needs the slot emptied first, which
 *   happens only when L's flow id leaves limbo, and that waits for every
 *   Worker's quiescent point after the free, which came after the reader
 *   saw L live. And the loads after the call read what was written before
 *   L was stored (release/acquire: seq-cst store and load, and x86 keeps
 *   loads in order). So the re-read tuple is L's own. A handle cannot come
 *   back within the reader's batch either: its id is in limbo until then.
 * - A stale handle (its flow freed after the lookup) still reads its own
 *   tuples through the record's offsets until the id's grace period ends
 *   (tombstones keep them), so a packet in flight is translated as its
 *   flow's, as before.
 * - Inserts of one tuple are serialised by its home line's lock (bit 15 of
 *   its count word, compare-exchange; nf_conntrack's double lock): a
 *   creator locks both tuples' home lines in line order, checks both are
 *   absent, inserts both, unlocks. Slots are claimed by compare-exchange,
 *   so creators of different home lines never take one slot (shards).
 */
import { tupleHash } from "./hash.ts";
import type { Arena } from "./arena.ts";

/** Words per flow record. */
export const RECORD_WORDS = 4;
/** Record word of the orig entry's offset (the reply's is the next word). */
export const REC_ENTRY = 0;
/** Record word of the meta (generation << 8 | proto). */
export const REC_META = 2;
/** Record word of the last packet's second. */
export const REC_SEEN = 3;
/** Entries per index line. */
export const LINE_ENTRIES = 4;
/** Entries never lie further than this many lines past their alternate line (that one included). */
export const MAX_PROBE = 64;
/** Most flows: a handle + 1 fits in 24 bits. */
export const MAX_FLOWS = 0x7fffff;
/** Default fill of the index at full capacity: 3 of 4 entries per line. */
const DEFAULT_PER_LINE = 3;

/** Count word bits: entries whose alternate line this is that live past it (at their third line or on). */
const ORIGIN = 0x7f;
/** Count word bits: entries whose walk from their third line passed this line. */
const PASS = 0x7f80;
const PASS_ONE = 0x80;
const LOCK = 0x8000;
const COUNT = 0x7fff;
const HANDLE = 0xffffff;

/** Index lines for `capacity` flows at the default load. */
export function defaultLines(capacity: number): number {
  return Math.ceil((2 * capacity) / DEFAULT_PER_LINE);
}

/** The index over both tuples of every flow, the tuples themselves, and the flow records. */
export class FlowIndex {
  /** The records (see the module comment), indexed `RECORD_WORDS * id + word`. */
  readonly rec: Int32Array;
  /** The entries, 16 words per line; a flow's are at the record's offsets. */
  readonly entries: Int32Array;
  readonly #counts: Uint16Array;
  readonly #lines: number;
  readonly #lineScale: number;
  readonly #maxProbe: number;
  readonly #shared: boolean;
  readonly #k0: number;
  readonly #k1: number;

  /**
   * Carves the records of `capacity` flows, `lines` index lines and their
   * counts from `arena` (zeroed). `shared`: other threads read the index
   * while this one writes it (lookups confirm their match).
   */
  constructor(
    capacity: number,
    lines: number,
    k0: number,
    k1: number,
    arena: Arena,
    shared: boolean,
  ) {
    this.rec = arena.i32(RECORD_WORDS * capacity);
    this.entries = arena.i32(16 * lines);
    this.#counts = arena.u16(lines);
    this.#lines = lines;
    this.#lineScale = lines / 4294967296;
    this.#maxProbe = Math.min(MAX_PROBE, lines);
    this.#shared = shared;
    this.#k0 = k0 | 0;
    this.#k1 = k1 | 0;
  }

  /** Index lines. */
  get lines(): number {
    return this.#lines;
  }

  /** Bytes of the records, entries and counts. */
  get byteLength(): number {
    return this.rec.byteLength + this.entries.byteLength + this.#counts.byteLength;
  }

  /** The keyed hash of a tuple (ports as 16-bit numbers). */
  hash(proto: number, src: number, sport: number, dst: number, dport: number): number {
    return tupleHash(this.#k0, this.#k1, proto, src, sport & 0xffff, dst, dport & 0xffff);
  }

  /** The home line of hash `h` (its high bits, multiply-shift: any line count). */
  home(h: number): number {
    return ((h >>> 0) * this.#lineScale) | 0;
  }

  /** The alternate line of hash `h` (murmur3's finaliser of it), never its home line when there are two. */
  #alt(h: number, home: number): number {
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    const l = ((h >>> 0) * this.#lineScale) | 0;
    if (l !== home) return l;
    return l + 1 === this.#lines ? 0 : l + 1;
  }

  /** The handle whose tuple this is (given its `hash`), or -1. */
  find(
    hash: number,
    proto: number,
    src: number,
    sport: number,
    dst: number,
    dport: number,
  ): number {
    src |= 0;
    dst |= 0;
    proto &= 0xff;
    const ports = ((sport & 0xffff) << 16) | (dport & 0xffff);
    const e = this.entries;
    const l1 = this.home(hash), l2 = this.#alt(hash, l1);
    const b1 = l1 << 4, b2 = l2 << 4;
    // The alternate line's miss and its count's start now and overlap the home line's.
    const first2 = e[b2], spilled = this.#counts[l2] & ORIGIN;
    for (let at = b1; at < b1 + 16; at += 4) {
      if (e[at] === src) {
        const h = this.#match(at, proto, src, dst, ports);
        if (h >= 0) return h;
      }
    }
    if (l2 === l1) return -1;
    if (first2 === src) {
      const h = this.#match(b2, proto, src, dst, ports);
      if (h >= 0) return h;
    }
    for (let at = b2 + 4; at < b2 + 16; at += 4) {
      if (e[at] === src) {
        const h = this.#match(at, proto, src, dst, ports);
        if (h >= 0) return h;
      }
    }
    // Spilled entries: only when one whose alternate line this is lives further.
    if (spilled === 0) return -1;
    const c = this.#counts;
    let line = this.#third(hash, l1, l2);
    for (let n = 0; n < this.#maxProbe; n++) {
      const b = line << 4;
      for (let at = b; at < b + 16; at += 4) {
        if (e[at] === src) {
          const h = this.#match(at, proto, src, dst, ports);
          if (h >= 0) return h;
        }
      }
      if ((c[line] & PASS) === 0) return -1;
      line = line + 1 === this.#lines ? 0 : line + 1;
    }
    return -1;
  }

  /** The handle at entry `at` when it holds the tuple (src already compared), else -1. */
  #match(at: number, proto: number, src: number, dst: number, ports: number): number {
    const e = this.entries;
    if (e[at + 1] !== dst || e[at + 2] !== ports) return -1;
    return this.#accept(at, proto, src, dst, ports);
  }

  /** Entry `at` matched by plain loads: its handle if it is live with `proto` (confirmed when shared), else -1. */
  #accept(at: number, proto: number, src: number, dst: number, ports: number): number {
    const e = this.entries;
    if (!this.#shared) {
      const w = e[at + 3];
      return w >>> 24 === proto && proto !== 0 ? (w & HANDLE) - 1 : -1;
    }
    const w = Atomics.load(e, at + 3);
    if (w >>> 24 !== proto || proto === 0) return -1;
    return e[at] === src && e[at + 1] === dst && e[at + 2] === ports ? (w & HANDLE) - 1 : -1;
  }

  /** Takes the writers' lock of `line` (spins while another writer holds it). */
  lock(line: number): void {
    const c = this.#counts;
    for (;;) {
      const v = Atomics.load(c, line);
      if ((v & LOCK) === 0 && Atomics.compareExchange(c, line, v, v | LOCK) === v) return;
    }
  }

  /** Releases the lock of `line`. */
  unlock(line: number): void {
    Atomics.and(this.#counts, line, COUNT);
  }

  /**
   * Claims a slot for `handle`'s tuple of hash `hash` and writes the tuple
   * there, not yet matchable (see `publish`); the caller holds the home
   * line's lock. The entry's word offset, or -1 when no slot is free within
   * MAX_PROBE lines.
   */
  claim(
    hash: number,
    handle: number,
    src: number,
    sport: number,
    dst: number,
    dport: number,
  ): number {
    const l1 = this.home(hash), l2 = this.#alt(hash, l1);
    const mark = handle + 1;
    const n1 = this.#held(l1), n2 = l2 === l1 ? LINE_ENTRIES : this.#held(l2);
    let at = n2 < n1 ? this.#take(l2, mark) : this.#take(l1, mark);
    if (at < 0 && l2 !== l1) at = n2 < n1 ? this.#take(l1, mark) : this.#take(l2, mark);
    if (at < 0) at = this.#spill(hash, l1, l2, mark);
    if (at < 0) return -1;
    const e = this.entries;
    e[at] = src | 0;
    e[at + 1] = dst | 0;
    e[at + 2] = ((sport & 0xffff) << 16) | (dport & 0xffff);
    return at;
  }

  /** Entries held in `line` (live, claimed or tombstones). */
  #held(line: number): number {
    const e = this.entries, b = line << 4;
    return (e[b + 3] !== 0 ? 1 : 0) + (e[b + 7] !== 0 ? 1 : 0) + (e[b + 11] !== 0 ? 1 : 0) +
      (e[b + 15] !== 0 ? 1 : 0);
  }

  /** Claims an empty slot of `line` with `mark`: its word offset, or -1. */
  #take(line: number, mark: number): number {
    const e = this.entries, b = line << 4;
    for (let at = b; at < b + 16; at += 4) {
      if (e[at + 3] === 0 && Atomics.compareExchange(e, at + 3, 0, mark) === 0) return at;
    }
    return -1;
  }

  /**
   * The third line of hash `h` (another remix), neither `l1` nor `l2`; where
   * an entry goes when both of those are full.
   */
  #third(h: number, l1: number, l2: number): number {
    h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
    h = Math.imul(h ^ (h >>> 12), 0x297a2d39);
    h ^= h >>> 15;
    let l = ((h >>> 0) * this.#lineScale) | 0;
    while (l === l1 || l === l2) l = l + 1 === this.#lines ? 0 : l + 1;
    return l;
  }

  /**
   * Claims a slot in the third line, else walking on from it (never in `l1`
   * or `l2`), counting the entry at `l2` and in the lines it passes; -1
   * beyond MAX_PROBE lines (or with fewer than 3 lines).
   */
  #spill(hash: number, l1: number, l2: number, mark: number): number {
    const c = this.#counts;
    if (this.#lines < 3) return -1;
    for (;;) {
      const v = Atomics.load(c, l2);
      if ((v & ORIGIN) === ORIGIN) return -1; // 127 spilled from one line: full
      if (Atomics.compareExchange(c, l2, v, v + 1) === v) break;
    }
    const l3 = this.#third(hash, l1, l2);
    let line = l3;
    for (let n = 0; n < this.#maxProbe; n++) {
      if (n > 0) {
        Atomics.add(c, line, PASS_ONE); // an entry will live past this line
        line = line + 1 === this.#lines ? 0 : line + 1;
        if (line === l1 || line === l2) continue;
      }
      const at = this.#take(line, mark);
      if (at >= 0) return at;
    }
    this.#unpass(l3, this.#maxProbe - 1);
    Atomics.sub(c, l2, 1);
    return -1;
  }

  /** Makes claimed entry `at` live: the tuple with `proto` now names `handle` (release). */
  publish(at: number, proto: number, handle: number): void {
    Atomics.store(this.entries, at + 3, ((proto & 0xff) << 24) | (handle + 1));
  }

  /**
   * Takes live entry `at` out of the lookups: a tombstone whose tuple words
   * stay readable (see `clear`); the counts of the lines its spill passed go
   * down. False when it is not live.
   */
  unhash(at: number): boolean {
    const e = this.entries, w = e[at + 3];
    if (w >>> 24 === 0) return false;
    Atomics.store(e, at + 3, w & HANDLE);
    const ports = e[at + 2];
    this.#unspill(at, this.hash(w >>> 24, e[at], ports >>> 16, e[at + 1], ports & 0xffff));
    return true;
  }

  /** Empties `handle`'s claimed entry `at` (of hash `hash`) that was never published. */
  unclaim(at: number, hash: number, handle: number): void {
    if (this.clear(at, handle)) this.#unspill(at, hash);
  }

  /** Empties `handle`'s tombstone (or claimed slot) `at`; false when the slot holds something else. */
  clear(at: number, handle: number): boolean {
    if (at < 0 || Atomics.load(this.entries, at + 3) !== handle + 1) return false;
    Atomics.store(this.entries, at + 3, 0);
    return true;
  }

  /** Lowers the counts entry `at` (of hash `hash`) raised when it spilled. */
  #unspill(at: number, hash: number): void {
    const line = at >> 4, l1 = this.home(hash), l2 = this.#alt(hash, l1);
    if (line === l1 || line === l2) return;
    Atomics.sub(this.#counts, l2, 1);
    const l3 = this.#third(hash, l1, l2);
    this.#unpass(l3, (line - l3 + this.#lines) % this.#lines);
  }

  /** Lowers the pass counts of `n` lines from `line`. */
  #unpass(line: number, n: number): void {
    for (let i = 0; i < n; i++) {
      Atomics.sub(this.#counts, line, PASS_ONE);
      line = line + 1 === this.#lines ? 0 : line + 1;
    }
  }

  /** Live entries, tombstones (and claimed slots), and the sum of the counts (for tests: O(lines)). */
  census(): { entries: number; tombstones: number; overflow: number } {
    let entries = 0, tombstones = 0, overflow = 0;
    const e = this.entries;
    for (let l = 0; l < this.#lines; l++) {
      const v = Atomics.load(this.#counts, l);
      overflow += (v & ORIGIN) + ((v & PASS) >> 7);
      for (let at = l << 4; at < (l << 4) + 16; at += 4) {
        const w = Atomics.load(e, at + 3);
        if (w >>> 24 !== 0) entries++;
        else if (w !== 0) tombstones++;
      }
    }
    return { entries, tombstones, overflow };
  }
}
