/**
 * IPv4 fragments of translated flows. Only the first fragment carries the
 * ports, so its translation is remembered under (src, dst, protocol, ident)
 * and applied to the later fragments, which get their addresses rewritten and
 * nothing else (the first fragment's L4 checksum covers the whole datagram).
 * A later fragment seen before its first one is dropped and counted, never
 * guessed at: it is never misdelivered.
 */

/** What the first fragment's translation did to the addresses. */
interface FragmentEntry {
  src: number;
  dst: number;
  proto: number;
  ident: number;
  newSrc: number;
  newDst: number;
  expiresAt: number;
}

/** A bounded table of in-flight fragmented datagrams. */
export class FragmentTable {
  // Fragmented datagrams are rare: a Map with one small object each is fine here.
  readonly #entries = new Map<number, FragmentEntry>();

  /** Holds at most `capacity` datagrams for `ttlMs` each (RFC 791 suggests 15 s or more). */
  constructor(readonly capacity = 4096, readonly ttlMs = 30_000) {}

  static #key(src: number, dst: number, proto: number, ident: number): number {
    // 32 hash bits of the addresses and protocol, 16 bits of ident: exact below 2^53.
    const h = (Math.imul(src ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(dst, 0xc2b2ae35) ^ proto) >>> 0;
    return h * 65536 + ident;
  }

  /** Remembers the translation of a first fragment. */
  remember(
    src: number,
    dst: number,
    proto: number,
    ident: number,
    newSrc: number,
    newDst: number,
    nowMs: number,
  ): void {
    if (this.#entries.size >= this.capacity) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    const k = FragmentTable.#key(src, dst, proto, ident);
    this.#entries.delete(k);
    this.#entries.set(k, { src, dst, proto, ident, newSrc, newDst, expiresAt: nowMs + this.ttlMs });
  }

  /** The remembered entry for a later fragment, or undefined. */
  find(
    src: number,
    dst: number,
    proto: number,
    ident: number,
    nowMs: number,
  ): FragmentEntry | undefined {
    const e = this.#entries.get(FragmentTable.#key(src, dst, proto, ident));
    if (!e || e.src !== src || e.dst !== dst || e.proto !== proto || e.ident !== ident) {
      return undefined;
    }
    return e.expiresAt > nowMs ? e : undefined;
  }

  /** Drops expired entries (insertion order is expiry order). */
  sweep(nowMs: number): void {
    for (const [k, e] of this.#entries) {
      if (e.expiresAt > nowMs) break;
      this.#entries.delete(k);
    }
  }

  /** Datagrams remembered. */
  get size(): number {
    return this.#entries.size;
  }
}
