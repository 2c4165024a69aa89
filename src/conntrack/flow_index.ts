/**
 * The flow tuples and their open-addressing index, both in shared memory.
 *
 * Records: 8 words per flow, two flows per cache line, so both tuples of a
 * flow and its protocol sit in one line:
 *   [orig src, orig dst, orig sport << 16 | dport,
 *    reply src, reply dst, reply sport << 16 | dport,
 *    meta = generation << 8 | proto, link]
 * `link` chains free and limbo ids (the next one, -1 at the end); a live
 * flow's is 0 (its TCP lock is a byte column of its own, see table.ts). The
 * generation counts every create and free of the slot; proto is 0 while the
 * slot is free.
 *
 * Index: `lines` cache lines of 16 words. Word 0 of a line is its control
 * word: bit 31 the writers' lock of the line, bits 0-30 how many entries
 * whose probe started at or before this line live after it (F14's overflow
 * count). Words 1-15 are slots: 0 empty, else `tag << hb | handle + 1`,
 * where `hb` is the width of `2 * capacity` and the tag is the low
 * `32 - hb` bits of the tuple's hash (11 bits at 1M flows). The line is
 * picked by the hash's high bits (multiply-shift, any line count).
 *
 * A lookup reads its line (one miss), compares the tags of all 15 slots,
 * reads the record only for a matching tag (one more miss, the flow's line:
 * a false match costs it once in 2^tag-bits slots), and goes on to the next
 * line only while the control word's count is non-zero. Entries are never
 * further than MAX_PROBE lines from their home line: an insert that would
 * go further fails (the table reports it full).
 *
 * Deletion: neither tombstones nor backward shift. A removed slot becomes
 * empty at once and the overflow counts of the lines its probe crossed are
 * decremented, so a year of churn leaves no debris: the probe length only
 * follows the load. Backward shift would move live entries under a
 * lock-free reader (it could miss an entry in flight); tombstones would need
 * a rehash that readers can survive. With counts, no entry ever moves.
 *
 * Concurrency (several Workers on one buffer):
 * - Readers take no lock and use plain loads (`Atomics.load` is a call in
 *   this V8, ~15 ns, measured: too dear for 15 slots). The slot's handle
 *   is an address dependency of the record loads; records are not rewritten
 *   while a reader may hold their handle (the table defers id reuse, see
 *   table.ts), so a reader that matched the tuple found a live flow.
 * - A writer publishes a flow by writing both tuples and then the meta with
 *   `Atomics.store` (release), and only then claims index slots with
 *   `Atomics.compareExchange(slot, 0, entry)`: a reader that finds the slot
 *   sees the finished record. Overflow counts are raised with `Atomics.add`
 *   before the slot past them is claimed.
 * - Inserts of one tuple are serialised by its home line's lock (bit 31 of
 *   the control word, taken by compare-exchange; nf_conntrack's double lock):
 *   a creator locks both tuples' home lines in line order, checks both
 *   tuples are absent, inserts both, unlocks. Two writers can thus never
 *   both insert one tuple (no doubled flow); the slot compare-exchange keeps
 *   writers of different home lines from taking one empty slot (no lost
 *   flow). A remove needs no lock: only the flow's owner removes it, and it
 *   compare-exchanges its own entry to empty.
 */
import { tupleHash } from "./hash.ts";
import type { Arena } from "./arena.ts";

/** Words per flow record. */
export const RECORD_WORDS = 8;
/** Record word of the meta (generation << 8 | proto). */
export const REC_META = 6;
/** Record word of the free-list link / TCP lock word. */
export const REC_LINK = 7;
/** Slots per index line (word 0 is the control word). */
export const LINE_SLOTS = 15;
/** Entries never lie further than this many lines past their home line. */
export const MAX_PROBE = 16;
/** Default fill of the index at full capacity: 11 of 15 slots (0.73). */
const DEFAULT_PER_LINE = 11;

const LOCK = 1 << 31;
const COUNT = 0x7fffffff;

/**
 * The slot (1..15) where a probe of hash `h` starts in each line: hits are
 * mostly found there, and an insert takes the first empty slot from there.
 * Remixed (a Fibonacci multiply), so it is not tied to the tag's or the line's bits.
 */
function firstSlot(h: number): number {
  return 1 + (((Math.imul(h, 0x9e3779b1) >>> 24) * LINE_SLOTS) >>> 8);
}

/** Index lines for `capacity` flows at the default load. */
export function defaultLines(capacity: number): number {
  return Math.ceil((2 * capacity) / DEFAULT_PER_LINE);
}

/** The flow records and the index over both tuples of every flow. */
export class FlowIndex {
  /** The records (see the module comment), indexed `RECORD_WORDS * id + word`. */
  readonly rec: Int32Array;
  readonly #idx: Int32Array;
  readonly #lines: number;
  readonly #lineScale: number;
  readonly #maxProbe: number;
  readonly #hb: number;
  readonly #hMask: number;
  readonly #tagMask: number;
  readonly #k0: number;
  readonly #k1: number;

  /** Carves the records of `capacity` flows and `lines` index lines from `arena` (zeroed). */
  constructor(capacity: number, lines: number, k0: number, k1: number, arena: Arena) {
    this.rec = arena.i32(RECORD_WORDS * capacity);
    this.#idx = arena.i32(16 * lines);
    this.#lines = lines;
    this.#lineScale = lines / 4294967296;
    this.#maxProbe = Math.min(MAX_PROBE, lines);
    this.#hb = 32 - Math.clz32(2 * capacity);
    this.#hMask = this.#hb === 32 ? -1 : (1 << this.#hb) - 1;
    this.#tagMask = this.#hb >= 32 ? 0 : (2 ** (32 - this.#hb) - 1) | 0;
    this.#k0 = k0 | 0;
    this.#k1 = k1 | 0;
  }

  /** Index lines. */
  get lines(): number {
    return this.#lines;
  }

  /** The keyed hash of a tuple (ports as 16-bit numbers). */
  hash(proto: number, src: number, sport: number, dst: number, dport: number): number {
    return tupleHash(this.#k0, this.#k1, proto, src, sport & 0xffff, dst, dport & 0xffff);
  }

  /** The home line of hash `h`. */
  home(h: number): number {
    return ((h >>> 0) * this.#lineScale) | 0;
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
    const ports = ((sport & 0xffff) << 16) | (dport & 0xffff);
    const idx = this.#idx, rec = this.rec, hb = this.#hb, hMask = this.#hMask;
    const tag = hash & this.#tagMask;
    const first = firstSlot(hash);
    let line = this.home(hash);
    for (let n = 0; n < this.#maxProbe; n++) {
      const base = line << 4;
      // From the hash's first slot to the end of the line, then from slot 1 round to it.
      for (let k = 0, i = first; k < LINE_SLOTS; k++, i = i === LINE_SLOTS ? 1 : i + 1) {
        const v = idx[base + i];
        if (v >>> hb !== tag || v === 0) continue;
        const h = (v & hMask) - 1;
        const r = (h >> 1) << 3;
        const t = r + 3 * (h & 1);
        if (
          rec[t] === src && rec[t + 1] === dst && rec[t + 2] === ports &&
          (rec[r + REC_META] & 0xff) === proto
        ) {
          return h;
        }
      }
      if ((idx[base] & COUNT) === 0) return -1;
      line = line + 1 === this.#lines ? 0 : line + 1;
    }
    return -1;
  }

  /** Takes the writers' lock of `line` (spins while another writer holds it). */
  lock(line: number): void {
    const idx = this.#idx, at = line << 4;
    for (;;) {
      const c = Atomics.load(idx, at);
      if ((c & LOCK) === 0 && Atomics.compareExchange(idx, at, c, c | LOCK) === c) return;
    }
  }

  /** Releases the lock of `line`. */
  unlock(line: number): void {
    Atomics.and(this.#idx, line << 4, COUNT);
  }

  /**
   * Enters `handle` (whose record is published) under `hash`; the caller
   * holds the home line's lock. False when no slot is free within MAX_PROBE lines.
   */
  insert(handle: number, hash: number): boolean {
    const idx = this.#idx;
    const entry = ((hash & this.#tagMask) << this.#hb) | (handle + 1);
    const first = firstSlot(hash);
    const home = this.home(hash);
    let line = home;
    for (let n = 0; n < this.#maxProbe; n++) {
      const base = line << 4;
      for (let k = 0, i = first; k < LINE_SLOTS; k++, i = i === LINE_SLOTS ? 1 : i + 1) {
        const at = base + i;
        if (idx[at] === 0 && Atomics.compareExchange(idx, at, 0, entry) === 0) {
          return true;
        }
      }
      Atomics.add(idx, base, 1); // an entry will live past this line
      line = line + 1 === this.#lines ? 0 : line + 1;
    }
    this.#uncount(home, this.#maxProbe);
    return false;
  }

  /** Takes `handle` out of the index (its record still holds the tuple). False when absent. */
  remove(handle: number): boolean {
    const idx = this.#idx, rec = this.rec;
    const t = ((handle >> 1) << 3) + 3 * (handle & 1);
    const ports = rec[t + 2];
    const hash = tupleHash(
      this.#k0,
      this.#k1,
      rec[((handle >> 1) << 3) + REC_META] & 0xff,
      rec[t],
      ports >>> 16,
      rec[t + 1],
      ports & 0xffff,
    );
    const entry = ((hash & this.#tagMask) << this.#hb) | (handle + 1);
    const home = this.home(hash);
    let line = home;
    for (let n = 0; n < this.#maxProbe; n++) {
      const base = line << 4;
      for (let s = base + 1; s < base + 16; s++) {
        if (idx[s] === entry && Atomics.compareExchange(idx, s, entry, 0) === entry) {
          this.#uncount(home, n);
          return true;
        }
      }
      line = line + 1 === this.#lines ? 0 : line + 1;
    }
    return false;
  }

  /** Lowers the overflow counts of `n` lines from `line`. */
  #uncount(line: number, n: number): void {
    for (let i = 0; i < n; i++) {
      Atomics.sub(this.#idx, line << 4, 1);
      line = line + 1 === this.#lines ? 0 : line + 1;
    }
  }

  /** Entries in the index and the sum of overflow counts (for tests: O(lines)). */
  census(): { entries: number; overflow: number } {
    let entries = 0, overflow = 0;
    for (let l = 0; l < this.#lines; l++) {
      overflow += Atomics.load(this.#idx, l << 4) & COUNT;
      for (let s = 1; s < 16; s++) if (Atomics.load(this.#idx, (l << 4) + s) !== 0) entries++;
    }
    return { entries, overflow };
  }
}
