/**
 * Source-NAT port choice: which port (or ICMP echo identifier) a masqueraded
 * or hairpinned flow leaves with, such that its reply tuple is free in the
 * flow table. Keeps the client's own port when it can (as Linux's
 * nf_nat_used_tuple check does first), else probes from a random start so
 * ports are not handed out in a guessable order. No allocation per call.
 */
import { PROTO_ICMP } from "../packet/ipv4.ts";

/** What the allocator asks of the flow table (conntrack's `ConnTable` answers it). */
export interface TupleQuery {
  /** True when a flow holds this tuple in either direction. */
  isTupleTaken(proto: number, src: number, srcPort: number, dst: number, dstPort: number): boolean;
}

/** Options of a `PortAllocator`. */
export interface PortAllocatorOptions {
  /** Seed of the probe start (a nonzero 32-bit number); random by default. For tests. */
  seed?: number;
  /** Ports probed after the preferred one before giving up (default 128). */
  maxTries?: number;
}

/** Picks source-NAT ports against a flow table. */
export class PortAllocator {
  readonly #flows: TupleQuery;
  readonly #maxTries: number;
  #rng: number;

  constructor(flows: TupleQuery, options: PortAllocatorOptions = {}) {
    this.#flows = flows;
    this.#maxTries = Math.max(1, options.maxTries ?? 128);
    this.#rng = (options.seed ?? crypto.getRandomValues(new Uint32Array(1))[0]) | 1;
  }

  /**
   * A port P in `lo..hi` such that the reply tuple (proto, peer:peerPort ->
   * natAddr:P) is free, trying `preferred` first and then up to `maxTries`
   * ports from a random start. For ICMP, P is an echo identifier and the
   * tuple is (peer:P -> natAddr:P). Returns -1 when none was found.
   */
  pick(
    proto: number,
    peer: number,
    peerPort: number,
    natAddr: number,
    lo: number,
    hi: number,
    preferred = -1,
  ): number {
    if (lo > hi) return -1;
    if (
      preferred >= lo && preferred <= hi && !this.#taken(proto, peer, peerPort, natAddr, preferred)
    ) {
      return preferred;
    }
    const span = hi - lo + 1;
    let p = lo + (this.#nextRandom() % span);
    const tries = Math.min(this.#maxTries, span);
    for (let n = 0; n < tries; n++) {
      if (!this.#taken(proto, peer, peerPort, natAddr, p)) return p;
      if (++p > hi) p = lo;
    }
    return -1;
  }

  #taken(proto: number, peer: number, peerPort: number, natAddr: number, p: number): boolean {
    return this.#flows.isTupleTaken(proto, peer, proto === PROTO_ICMP ? p : peerPort, natAddr, p);
  }

  /** xorshift32: enough to spread the probes. */
  #nextRandom(): number {
    let x = this.#rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#rng = x;
    return x >>> 0;
  }
}
