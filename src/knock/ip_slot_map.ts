/**
 * A bounded map from IPv4 address (uint32) to a dense slot number, with no
 * allocation on lookup, insert or delete: open addressing with linear probing
 * over typed arrays, backward-shift deletion, and a doubly linked list of
 * slots in insertion order so the oldest entry can be evicted or swept first.
 * Owners keep their per-entry fields in their own typed arrays indexed by
 * slot, grown when `capacity` grows.
 */

import { growI32, growU32 } from "./_typed.ts";

const NONE = -1;

/** Bounded IPv4 -> slot map in insertion order. */
export class IpSlotMap {
  /** Most entries held (see `setMaxSize`). */
  maxSize: number;
  #capacity: number;
  #size = 0;
  /** Hash buckets: slot + 1, 0 for empty. Kept at most half full. */
  #buckets: Int32Array;
  #mask: number;
  #keys: Uint32Array;
  #prev: Int32Array;
  #next: Int32Array;
  #head = NONE;
  #tail = NONE;
  /** Slots never used yet are `#fresh..capacity`; freed ones are on a stack. */
  #free: Int32Array;
  #freeTop = 0;
  #fresh = 0;
  // A per-process random seed keeps attackers from choosing colliding addresses.
  #seed = crypto.getRandomValues(new Uint32Array(1))[0];

  /** Holds at most `maxSize` entries; memory starts at `initialCapacity` and doubles. */
  constructor(maxSize: number, initialCapacity = 1024) {
    if (!Number.isInteger(maxSize) || maxSize < 1) {
      throw new Error(`Cannot create IP table: size ${maxSize} is not a positive integer`);
    }
    this.maxSize = maxSize;
    this.#capacity = Math.min(maxSize, Math.max(16, initialCapacity));
    this.#keys = new Uint32Array(this.#capacity);
    this.#prev = new Int32Array(this.#capacity);
    this.#next = new Int32Array(this.#capacity);
    this.#free = new Int32Array(this.#capacity);
    this.#buckets = new Int32Array(bucketCount(this.#capacity));
    this.#mask = this.#buckets.length - 1;
  }

  /**
   * Changes the bound. Shrinking below `size` is refused (returns false): the
   * owner evicts the entries it chooses first.
   */
  setMaxSize(maxSize: number): boolean {
    if (!Number.isInteger(maxSize) || maxSize < 1 || maxSize < this.#size) return false;
    this.maxSize = maxSize;
    return true;
  }

  /** Number of entries. */
  get size(): number {
    return this.#size;
  }

  /** Slots currently allocated (owners size their field arrays to this). */
  get capacity(): number {
    return this.#capacity;
  }

  /** True when an insert would need an eviction first. */
  get full(): boolean {
    return this.#size >= this.maxSize;
  }

  /** Bytes held by the map's own arrays. */
  get byteLength(): number {
    return this.#buckets.byteLength + this.#capacity * 16;
  }

  #home(ip: number): number {
    // murmur3 fmix32 of the seeded address.
    let h = (ip ^ this.#seed) >>> 0;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return (h ^ (h >>> 16)) & this.#mask;
  }

  /** The slot of `ip`, or -1. */
  find(ip: number): number {
    const key = ip >>> 0;
    let b = this.#home(key);
    for (;;) {
      const s = this.#buckets[b] - 1;
      if (s === NONE) return NONE;
      if (this.#keys[s] === key) return s;
      b = (b + 1) & this.#mask;
    }
  }

  /** The address held in `slot`. */
  keyOf(slot: number): number {
    return this.#keys[slot];
  }

  /**
   * Adds `ip` (which must be absent) as the newest entry and returns its slot,
   * or -1 when full (evict first). May grow `capacity`.
   */
  insert(ip: number): number {
    if (this.#size >= this.maxSize) return NONE;
    if (this.#freeTop === 0 && this.#fresh === this.#capacity) this.#grow();
    const slot = this.#freeTop > 0 ? this.#free[--this.#freeTop] : this.#fresh++;
    const key = ip >>> 0;
    this.#keys[slot] = key;
    let b = this.#home(key);
    while (this.#buckets[b] !== 0) b = (b + 1) & this.#mask;
    this.#buckets[b] = slot + 1;
    this.#linkTail(slot);
    this.#size++;
    return slot;
  }

  /** Removes the entry in `slot`; the slot may be reused by the next insert. */
  delete(slot: number): void {
    let i = this.#home(this.#keys[slot]);
    while (this.#buckets[i] !== slot + 1) i = (i + 1) & this.#mask;
    // Backward-shift deletion: pull later entries of the probe run into the hole.
    let j = i;
    for (;;) {
      j = (j + 1) & this.#mask;
      const s = this.#buckets[j] - 1;
      if (s === NONE) break;
      const k = this.#home(this.#keys[s]);
      const movable = i <= j ? (k <= i || k > j) : (k <= i && k > j);
      if (movable) {
        this.#buckets[i] = this.#buckets[j];
        i = j;
      }
    }
    this.#buckets[i] = 0;
    this.#unlink(slot);
    this.#free[this.#freeTop++] = slot;
    this.#size--;
  }

  /** Removes every entry. */
  clear(): void {
    this.#buckets.fill(0);
    this.#head = this.#tail = NONE;
    this.#freeTop = 0;
    this.#fresh = 0;
    this.#size = 0;
  }

  /** The oldest slot, or -1 when empty. */
  oldest(): number {
    return this.#head;
  }

  /** The slot inserted after `slot`, or -1. */
  newer(slot: number): number {
    return this.#next[slot];
  }

  /** Makes `slot` the newest entry. */
  moveToNewest(slot: number): void {
    if (this.#tail === slot) return;
    this.#unlink(slot);
    this.#linkTail(slot);
  }

  #linkTail(slot: number): void {
    this.#prev[slot] = this.#tail;
    this.#next[slot] = NONE;
    if (this.#tail === NONE) this.#head = slot;
    else this.#next[this.#tail] = slot;
    this.#tail = slot;
  }

  #unlink(slot: number): void {
    const p = this.#prev[slot];
    const n = this.#next[slot];
    if (p === NONE) this.#head = n;
    else this.#next[p] = n;
    if (n === NONE) this.#tail = p;
    else this.#prev[n] = p;
  }

  #grow(): void {
    const cap = Math.min(this.maxSize, this.#capacity * 2);
    this.#keys = growU32(this.#keys, cap);
    this.#prev = growI32(this.#prev, cap);
    this.#next = growI32(this.#next, cap);
    this.#free = growI32(this.#free, cap);
    this.#capacity = cap;
    this.#buckets = new Int32Array(bucketCount(cap));
    this.#mask = this.#buckets.length - 1;
    // Rehash every live slot (all slots below #fresh that are not free).
    for (let s = this.#head; s !== NONE; s = this.#next[s]) {
      let b = this.#home(this.#keys[s]);
      while (this.#buckets[b] !== 0) b = (b + 1) & this.#mask;
      this.#buckets[b] = s + 1;
    }
  }
}

function bucketCount(capacity: number): number {
  let n = 32;
  while (n < capacity * 2) n *= 2;
  return n;
}
