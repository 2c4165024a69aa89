/**
 * Source-NAT port choice: which port (or ICMP echo identifier) a masqueraded
 * or hairpinned flow leaves with, such that its reply tuple is free in the
 * flow table. Keeps the client's own port when it can (as Linux's
 * nf_nat_used_tuple check does first), else probes from a start outsiders
 * cannot guess: random, or with a `key` a keyed hash of the flow. No
 * allocation per call.
 *
 * Deterministic choice (an HA pair): every node holding the same key
 * computes the same probe sequence for the same flow: the client's own port,
 * then HalfSipHash(key, client, its port, peer, peer port, NAT address) and
 * the ports after it. A node taking over a masqueraded TCP flow in mid stream
 * (it never saw the SYN) computes the port the other node chose, without a
 * synced mapping, whenever both tables agree on the ports probed before it:
 * always when the client's own port was free (no other LAN host used it to
 * the same peer endpoint), and for a remapped flow when the flow holding its
 * own port was taken over first. It cannot know when they disagree (the
 * remapped flow's segment arrives first: it gets the own port, and the flow
 * that had it is mapped wrong in turn); both flows are then lost. UDP and
 * ICMP flows are new flows on the other node, and keep their port unless
 * such a clash moved them.
 */
import { tupleHash } from "../conntrack/hash.ts";
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
  /**
   * A secret every node of an HA pair holds (two 32-bit words; see
   * `portKeyFromSecret`): the probe start becomes a keyed hash of the flow
   * instead of random, the same on every node.
   */
  key?: readonly [number, number];
}

/** Derives a port key from a secret the nodes share (HMAC-SHA-256 under a fixed label). */
export async function portKeyFromSecret(secret: Uint8Array): Promise<[number, number]> {
  const k = await crypto.subtle.importKey(
    "raw",
    secret as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new DataView(
    await crypto.subtle.sign("HMAC", k, new TextEncoder().encode("knockgate snat port key v1")),
  );
  return [mac.getUint32(0), mac.getUint32(4)];
}

/** Picks source-NAT ports against a flow table. */
export class PortAllocator {
  readonly #flows: TupleQuery;
  readonly #maxTries: number;
  readonly #keyed: boolean;
  readonly #k0: number;
  readonly #k1: number;
  #rng: number;

  constructor(flows: TupleQuery, options: PortAllocatorOptions = {}) {
    this.#flows = flows;
    this.#maxTries = Math.max(1, options.maxTries ?? 128);
    this.#rng = (options.seed ?? crypto.getRandomValues(new Uint32Array(1))[0]) | 1;
    this.#keyed = options.key !== undefined;
    [this.#k0, this.#k1] = options.key ?? [0, 0];
  }

  /** True with a key: every node holding it probes the same ports for a flow. */
  get deterministic(): boolean {
    return this.#keyed;
  }

  /**
   * A port P in `lo..hi` such that the reply tuple (proto, peer:peerPort ->
   * natAddr:P) is free, trying `preferred` (the client's own port) first and
   * then up to `maxTries` ports from a random start, or with a key from the
   * keyed hash of (`client`, `preferred`, peer, peerPort, natAddr). For ICMP,
   * P is an echo identifier and the tuple is (peer:P -> natAddr:P). Returns
   * -1 when none was found.
   */
  pick(
    proto: number,
    peer: number,
    peerPort: number,
    natAddr: number,
    lo: number,
    hi: number,
    preferred = -1,
    client = 0,
  ): number {
    if (lo > hi) return -1;
    if (
      preferred >= lo && preferred <= hi && !this.#taken(proto, peer, peerPort, natAddr, preferred)
    ) {
      return preferred;
    }
    const span = hi - lo + 1;
    const start = this.#keyed
      ? tupleHash(this.#k0 ^ natAddr, this.#k1, proto, client, preferred & 0xffff, peer, peerPort)
      : this.#nextRandom();
    let p = lo + (start % span);
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
