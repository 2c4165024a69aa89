/**
 * IPv6 addresses and prefixes interned to 32-bit ids, so that IPv6 flows,
 * unlocks and knock sequences live in the same tables as IPv4 ones (the flow
 * table's tuples, the unlock table's and the verifier's keys are 32-bit)
 * without one byte more per IPv4 flow or one branch more on the IPv4 fast
 * path: widening the tuples to 128 bits would have doubled the flow index's
 * lines and the hash work of every IPv4 packet.
 *
 * The ids are drawn from 240.0.0.0/4 (class E, reserved by RFC 1112 §4 and
 * never a source or destination on the wire): the IPv4 path drops every
 * packet naming such an address (`Drop.ReservedAddress`), so an id can never
 * meet a real IPv4 tuple. Below the 0xF nibble an id is a slot number in its
 * low bits and the slot's generation above them: a reclaimed slot comes back
 * with another id, so whatever still holds the old one (a knock sequence in
 * the verifier, a penalty) names nothing rather than the slot's new owner,
 * until the generation wraps (2^(28 - log2 capacity) reuses of that slot).
 *
 * A key is 128 bits and a prefix length: a flow interns each address (/128),
 * unlocks, knock sequences and penalties the source's prefix
 * (`ipv6.unlockPrefix`, /64 by default; with 128 the two are the same key).
 *
 * Bounded: `capacity` slots, fixed at construction. An id is held
 * (reference counts) by each flow tuple naming it, by the unlock keyed on
 * it and by a penalty on it (else a flood of other sources would recycle a
 * penalised prefix's id, and its penalty with it); the appliance's own
 * addresses are pinned. An id nothing holds stays
 * findable (the next packet of the same source finds it) until its slot is
 * wanted: then the oldest slot that is neither held, pinned nor used in the
 * current second is taken, looked for first among the slots let go (their
 * last hold ended), then among those interned (two FIFO rings, oldest
 * first), then by a clock hand over all; each looks at most `RECLAIM_SCAN`
 * slots. So a flood
 * of random sources recycles its own ids, oldest first, and never evicts a
 * held one; when no slot can be had the caller drops the packet and counts
 * it (`Drop.Ipv6IdsFull`). Held ids are bounded by the
 * flow table (two per flow at most) and the unlock table, which size it.
 *
 * Single-threaded: only the admission Worker (worker 0) handles IPv6; the
 * trackers hand it every IPv6 packet. Per packet nothing here allocates or
 * throws.
 */
import { formatIpv4, parseIpv4 } from "../packet/address.ts";
import { formatIpv6, ipv6WordMask, parseIpv6 } from "../packet/ipv6_address.ts";
import { read32 } from "../packet/bytes.ts";

/** Slots a reclaim looks at before giving up (the packet is dropped). */
export const RECLAIM_SCAN = 64;

/** True when `a` (an IPv4 address or an id) is in 240.0.0.0/4, an interned IPv6 id. */
export function isIpv6Id(a: number): boolean {
  return (a >>> 28) === 0xf;
}

/** The smallest power of two at least `n`, within [1024, 2^20]. */
export function idCapacityFor(n: number): number {
  let c = 1024;
  while (c < n && c < 1 << 20) c <<= 1;
  return c;
}

/** A bounded table of interned IPv6 addresses and prefixes. */
export class Ipv6Ids {
  readonly capacity: number;
  readonly #slotBits: number;
  readonly #genMask: number;
  /** Per slot: the key's four words, masked to its prefix. */
  readonly #key: Uint32Array;
  /** Per slot: the prefix length, 0 when the slot is free. */
  readonly #plen: Uint8Array;
  readonly #gen: Uint32Array;
  readonly #refs: Uint32Array;
  readonly #pinned: Uint8Array;
  /** Per slot: the second it was last interned or found. */
  readonly #used: Uint32Array;
  /** Open addressing, linear probing: slot + 1, 0 empty. */
  readonly #hash: Int32Array;
  readonly #hashMask: number;
  readonly #free: Int32Array;
  #freeTop = 0;
  /** Reclaim candidates, oldest first: slots as they were let go, and as they were interned. */
  readonly #released: CandidateRing;
  readonly #fresh: CandidateRing;
  #hand = 0;
  #size = 0;
  /** Slots taken from an id nothing held, to give them to another key. */
  reclaimed = 0;
  readonly #w = new Uint32Array(4);

  constructor(capacity = 1 << 16) {
    if (capacity < 2 || (capacity & (capacity - 1)) !== 0 || capacity > 1 << 24) {
      throw new Error(`IPv6 id capacity ${capacity}: a power of two up to 2^24`);
    }
    this.capacity = capacity;
    this.#slotBits = Math.log2(capacity);
    this.#genMask = (1 << (28 - this.#slotBits)) - 1;
    this.#key = new Uint32Array(4 * capacity);
    this.#plen = new Uint8Array(capacity);
    this.#gen = new Uint32Array(capacity);
    this.#refs = new Uint32Array(capacity);
    this.#pinned = new Uint8Array(capacity);
    this.#used = new Uint32Array(capacity);
    this.#hash = new Int32Array(2 * capacity);
    this.#hashMask = 2 * capacity - 1;
    this.#free = new Int32Array(capacity);
    this.#released = new CandidateRing(capacity);
    this.#fresh = new CandidateRing(capacity);
    for (let s = capacity - 1; s >= 0; s--) this.#free[this.#freeTop++] = s;
  }

  /** Keys interned (held or not). */
  get size(): number {
    return this.#size;
  }

  /** The id of `slot` at its current generation. */
  #id(slot: number): number {
    return (0xf0000000 | (this.#gen[slot] << this.#slotBits) | slot) >>> 0;
  }

  /** The slot of `id` if it is still current, else -1. */
  slotOf(id: number): number {
    if (!isIpv6Id(id)) return -1;
    const s = id & (this.capacity - 1);
    return this.#plen[s] !== 0 && this.#id(s) === id >>> 0 ? s : -1;
  }

  /** Loads the 16 bytes at `buf[off..]` masked to `plen` into the scratch key. */
  #load(buf: Uint8Array, off: number, plen: number): void {
    const w = this.#w;
    w[0] = read32(buf, off);
    w[1] = read32(buf, off + 4);
    w[2] = read32(buf, off + 8);
    w[3] = read32(buf, off + 12);
    // Every packet's two finds are of /128 keys: no mask to apply.
    if (plen < 128) { for (let i = 0; i < 4; i++) w[i] = (w[i] & ipv6WordMask(plen, i)) >>> 0; }
  }

  #loadWords(words: ArrayLike<number>, at: number, plen: number): void {
    const w = this.#w;
    for (let i = 0; i < 4; i++) w[i] = (words[at + i] & ipv6WordMask(plen, i)) >>> 0;
  }

  #bucket(plen: number): number {
    const w = this.#w;
    return bucketOf(w[0], w[1], w[2], w[3], plen) & this.#hashMask;
  }

  /** The hash position holding the scratch key with `plen`, or the empty one ending its run (negated - 1). */
  #probe(plen: number): number {
    const w = this.#w;
    return this.#probeKey(w[0], w[1], w[2], w[3], plen);
  }

  /** `#probe` of the key `w0..w3` with `plen`, given as numbers (no scratch array). */
  #probeKey(w0: number, w1: number, w2: number, w3: number, plen: number): number {
    const hash = this.#hash, key = this.#key, mask = this.#hashMask;
    for (let i = bucketOf(w0, w1, w2, w3, plen) & mask;; i = (i + 1) & mask) {
      const e = hash[i];
      if (e === 0) return -i - 1;
      const s = e - 1, k = 4 * s;
      if (
        key[k] === w0 && key[k + 1] === w1 && key[k + 2] === w2 && key[k + 3] === w3 &&
        this.#plen[s] === plen
      ) return i;
    }
  }

  /**
   * The id of the address at `buf[off..off+16)` (its /128 key), or 0 when
   * not interned; marks it used. `find(buf, off, 128, nowSec)` for the two
   * lookups every packet makes: no mask to apply, the key in locals rather
   * than the scratch array.
   */
  findAddress(buf: Uint8Array, off: number, nowSec: number): number {
    const w0 = read32(buf, off), w1 = read32(buf, off + 4);
    const w2 = read32(buf, off + 8), w3 = read32(buf, off + 12);
    return this.#found(this.#probeKey(w0, w1, w2, w3, 128), nowSec);
  }

  /** The id of the address (or `plen` prefix) at `buf[off..off+16)`, or 0 when not interned; marks it used. */
  find(buf: Uint8Array, off: number, plen: number, nowSec: number): number {
    this.#load(buf, off, plen);
    return this.#found(this.#probe(plen), nowSec);
  }

  /** As {@link find}, for a key given as four words `words[at..at+4)`. */
  findWords(words: ArrayLike<number>, at: number, plen: number, nowSec: number): number {
    this.#loadWords(words, at, plen);
    return this.#found(this.#probe(plen), nowSec);
  }

  #found(i: number, nowSec: number): number {
    if (i < 0) return 0;
    const s = this.#hash[i] - 1;
    this.#used[s] = nowSec;
    return this.#id(s);
  }

  /**
   * The id of the address (or `plen` prefix) at `buf[off..off+16)`, interned
   * if new; 0 when every slot is held, pinned or used this second.
   */
  intern(buf: Uint8Array, off: number, plen: number, nowSec: number): number {
    this.#load(buf, off, plen);
    return this.#intern(plen, nowSec);
  }

  /** As {@link intern}, for a key given as four words. */
  internWords(words: ArrayLike<number>, at: number, plen: number, nowSec: number): number {
    this.#loadWords(words, at, plen);
    return this.#intern(plen, nowSec);
  }

  #intern(plen: number, nowSec: number): number {
    const i = this.#probe(plen);
    if (i >= 0) return this.#found(i, nowSec);
    const s = this.#take(nowSec);
    if (s < 0) return 0;
    const k = 4 * s, w = this.#w;
    this.#key[k] = w[0];
    this.#key[k + 1] = w[1];
    this.#key[k + 2] = w[2];
    this.#key[k + 3] = w[3];
    this.#plen[s] = plen;
    this.#used[s] = nowSec;
    this.#size++;
    this.#fresh.push(s);
    // A reclaim may have moved entries of the run: probe again for the empty position.
    this.#hash[-this.#probe(plen) - 1] = s + 1;
    return this.#id(s);
  }

  #loose(s: number, nowSec: number): boolean {
    return this.#plen[s] !== 0 && this.#refs[s] === 0 && this.#pinned[s] === 0 &&
      this.#used[s] !== nowSec;
  }

  /** A free slot, or one reclaimed from the candidates or by the clock hand; -1 when none. */
  #take(nowSec: number): number {
    if (this.#freeTop > 0) return this.#free[--this.#freeTop];
    const mask = this.capacity - 1;
    let s = this.#fromRing(this.#released, nowSec);
    if (s < 0) s = this.#fromRing(this.#fresh, nowSec);
    if (s >= 0) return this.#reclaim(s);
    for (let k = 0; k < RECLAIM_SCAN; k++) {
      const s = this.#hand;
      this.#hand = (s + 1) & mask;
      if (this.#loose(s, nowSec)) return this.#reclaim(s);
    }
    return -1;
  }

  /** The first loose slot among `ring`'s next RECLAIM_SCAN (taken off it), or -1. */
  #fromRing(ring: CandidateRing, nowSec: number): number {
    for (let k = 0; k < RECLAIM_SCAN && ring.length > 0; k++) {
      const s = ring.shift();
      if (this.#loose(s, nowSec)) return s;
    }
    return -1;
  }

  #reclaim(s: number): number {
    this.#unhash(s);
    this.#gen[s] = (this.#gen[s] + 1) & this.#genMask;
    this.#plen[s] = 0;
    this.#size--;
    this.reclaimed++;
    return s;
  }

  /** Takes slot `s` out of the hash, shifting its run back (no tombstones). */
  #unhash(s: number): void {
    const hash = this.#hash, mask = this.#hashMask;
    const k = 4 * s, w = this.#w;
    const saved0 = w[0], saved1 = w[1], saved2 = w[2], saved3 = w[3];
    w[0] = this.#key[k];
    w[1] = this.#key[k + 1];
    w[2] = this.#key[k + 2];
    w[3] = this.#key[k + 3];
    let i = this.#probe(this.#plen[s]);
    w[0] = saved0;
    w[1] = saved1;
    w[2] = saved2;
    w[3] = saved3;
    if (i < 0) return;
    for (let j = (i + 1) & mask;; j = (j + 1) & mask) {
      const e = hash[j];
      if (e === 0) break;
      const home = this.#home(e - 1);
      // Move j's entry into the hole at i unless its home lies in (i, j].
      if (((j - home) & mask) >= ((j - i) & mask)) {
        hash[i] = e;
        i = j;
      }
    }
    hash[i] = 0;
  }

  /** The hash position slot `s`'s key starts probing at. */
  #home(s: number): number {
    const w = this.#w, k = 4 * s;
    const a = w[0], b = w[1], c = w[2], d = w[3];
    w[0] = this.#key[k];
    w[1] = this.#key[k + 1];
    w[2] = this.#key[k + 2];
    w[3] = this.#key[k + 3];
    const h = this.#bucket(this.#plen[s]);
    w[0] = a;
    w[1] = b;
    w[2] = c;
    w[3] = d;
    return h;
  }

  /** Holds `id` (a flow tuple or an unlock names it). */
  ref(id: number): void {
    const s = this.slotOf(id);
    if (s >= 0) this.#refs[s]++;
  }

  /** Lets go of one hold on `id`. */
  unref(id: number): void {
    const s = this.slotOf(id);
    if (s >= 0 && this.#refs[s] > 0 && --this.#refs[s] === 0) this.#released.push(s);
  }

  /** Holds on `id` (for tests and the status page). */
  refs(id: number): number {
    const s = this.slotOf(id);
    return s < 0 ? 0 : this.#refs[s];
  }

  /** Keeps `id` for good (one of the appliance's own addresses). */
  pin(id: number): void {
    const s = this.slotOf(id);
    if (s >= 0) this.#pinned[s] = 1;
  }

  /** Ends every pin (before the addresses are pinned again). */
  unpinAll(): void {
    this.#pinned.fill(0);
  }

  /** Word `i` of `id`'s key (0 for a stale id). */
  word(id: number, i: number): number {
    const s = this.slotOf(id);
    return s < 0 ? 0 : this.#key[4 * s + i];
  }

  /** The key words of a live `id` are at `keys()[4 * slotOf(id)]`. */
  keys(): Uint32Array {
    return this.#key;
  }

  /** The prefix length of `id`'s key, 0 for a stale id. */
  prefixLength(id: number): number {
    const s = this.slotOf(id);
    return s < 0 ? 0 : this.#plen[s];
  }

  /**
   * `id` as text: an address in RFC 5952 form, a prefix with its length
   * (`2001:db8:1:2::/64`); a stale id as its dotted quad.
   */
  text(id: number): string {
    const s = this.slotOf(id);
    if (s < 0) return formatIpv4(id);
    const a = formatIpv6(this.#key, 4 * s);
    return this.#plen[s] === 128 ? a : `${a}/${this.#plen[s]}`;
  }

  /**
   * A dotted quad the knock layer wrote (it knows only 32-bit keys): an id's
   * text, or the string itself when it is an IPv4 address.
   */
  external(s: string): string {
    const n = parseIpv4(s);
    return n !== null && isIpv6Id(n) ? this.text(n) : s;
  }

  /**
   * The key an IPv6 `text` names as the knock layer writes it (an id's
   * dotted quad), interned as a `plen` prefix: an address, or a prefix
   * written with its length (masked to `plen` either way). IPv4 text comes
   * back as it is; null for text that is neither, or when the table is full.
   */
  internal(text: string, plen: number, nowSec: number, create = true): string | null {
    if (!text.includes(":")) return parseIpv4(text) === null ? null : text;
    const w = parseIpv6(text.split("/")[0]);
    if (w === null) return null;
    const id = create ? this.internWords(w, 0, plen, nowSec) : this.findWords(w, 0, plen, nowSec);
    return id === 0 ? null : formatIpv4(id);
  }
}

/** The hash of a key (four words and a prefix length), before masking to the table. */
function bucketOf(w0: number, w1: number, w2: number, w3: number, plen: number): number {
  let h = Math.imul(w0 ^ plen, 0x9e3779b1);
  h = Math.imul(h ^ w1 ^ (h >>> 15), 0x85ebca77);
  h = Math.imul(h ^ w2 ^ (h >>> 13), 0xc2b2ae3d);
  h = Math.imul(h ^ w3 ^ (h >>> 16), 0x27d4eb2f);
  return h ^ (h >>> 15);
}

/** A bounded FIFO of slot numbers; a push beyond its size is dropped (the clock hand finds the slot). */
class CandidateRing {
  readonly #slots: Int32Array;
  #head = 0;
  length = 0;

  constructor(readonly size: number) {
    this.#slots = new Int32Array(size);
  }

  push(s: number): void {
    if (this.length === this.size) return;
    this.#slots[(this.#head + this.length++) % this.size] = s;
  }

  shift(): number {
    const s = this.#slots[this.#head];
    this.#head = (this.#head + 1) % this.size;
    this.length--;
    return s;
  }
}
