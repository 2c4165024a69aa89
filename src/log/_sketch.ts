/**
 * Fixed-memory summaries of a stream of source addresses: how many distinct
 * ones (HyperLogLog, Flajolet et al. 2007) and which are the busiest
 * (Space-Saving, Metwally et al. 2005). A flood of spoofed sources costs
 * neither more memory than its constructor took.
 */

/** 32-bit FNV-1a of `s` followed by MurmurHash3's finaliser, so that every bit mixes. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Distinct-count estimate over 2^p one-byte registers. */
export class DistinctCounter {
  readonly #p: number;
  readonly #registers: Uint8Array;

  /** `p` index bits: 2^p bytes, standard error about 1.04 / sqrt(2^p). */
  constructor(p = 12) {
    this.#p = p;
    this.#registers = new Uint8Array(1 << p);
  }

  /** Counts `key` (once, however often it is added). */
  add(key: string): void {
    const h = hash32(key);
    const index = h >>> (32 - this.#p);
    // Rank: position of the first 1 bit in the remaining 32 - p bits.
    const rest = (h << this.#p) >>> 0;
    const rank = rest === 0 ? 32 - this.#p + 1 : Math.clz32(rest) + 1;
    if (rank > this.#registers[index]) this.#registers[index] = rank;
  }

  /** The estimated number of distinct keys added since the last `clear()`. */
  estimate(): number {
    const m = this.#registers.length;
    let sum = 0;
    let zeros = 0;
    for (const r of this.#registers) {
      sum += 2 ** -r;
      if (r === 0) zeros++;
    }
    const alpha = 0.7213 / (1 + 1.079 / m);
    const raw = (alpha * m * m) / sum;
    // Small range: linear counting is the better estimate (the paper's correction).
    if (raw <= 2.5 * m && zeros > 0) return Math.round(m * Math.log(m / zeros));
    return Math.round(raw);
  }

  /** Forgets every key. */
  clear(): void {
    this.#registers.fill(0);
  }
}

/**
 * The `capacity` most frequent keys. A new key, when full, takes the place
 * of the least counted one and inherits its count plus one, so a count
 * overestimates by at most the count inherited; that error is kept with it,
 * and `top()` reports what is certain: count minus error.
 */
export class TopCounter {
  readonly #capacity: number;
  readonly #counts = new Map<string, number>();
  readonly #errors = new Map<string, number>();

  /** Keeps at most `capacity` keys. */
  constructor(capacity = 64) {
    this.#capacity = capacity;
  }

  /** Counts one occurrence of `key`. */
  add(key: string, n = 1): void {
    const c = this.#counts.get(key);
    if (c !== undefined) {
      this.#counts.set(key, c + n);
      return;
    }
    if (this.#counts.size < this.#capacity) {
      this.#counts.set(key, n);
      this.#errors.set(key, 0);
      return;
    }
    let minKey = "";
    let min = Infinity;
    for (const [k, v] of this.#counts) {
      if (v < min) {
        min = v;
        minKey = k;
      }
    }
    this.#counts.delete(minKey);
    this.#errors.delete(minKey);
    this.#counts.set(key, min + n);
    this.#errors.set(key, min);
  }

  /**
   * The `n` keys seen at least `least` times for certain, by that certain
   * count (a lower bound), highest first.
   */
  top(n: number, least = 1): { key: string; count: number }[] {
    const sure: [string, number][] = [];
    for (const [k, c] of this.#counts) {
      const count = c - this.#errors.get(k)!;
      if (count >= least) sure.push([k, count]);
    }
    return sure.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, n)
      .map(([key, count]) => ({ key, count }));
  }

  /** Forgets every key. */
  clear(): void {
    this.#counts.clear();
    this.#errors.clear();
  }
}
