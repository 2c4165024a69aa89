/**
 * The tuple hash: HalfSipHash-1-3 (the keyed 32-bit PRF Linux uses as
 * `hsiphash`) over four 32-bit words: source, destination, both ports,
 * protocol. With a random per-table key an attacker who picks addresses and
 * ports cannot aim flows at one bucket; unkeyed multiply-xorshift mixes
 * (murmur-style) have seed-independent multicollisions.
 */

/** HalfSipHash-1-3 of the tuple under key (`k0`, `k1`); an unsigned 32-bit result. */
export function tupleHash(
  k0: number,
  k1: number,
  proto: number,
  src: number,
  sport: number,
  dst: number,
  dport: number,
): number {
  let v0 = k0 | 0;
  let v1 = k1 | 0;
  let v2 = (0x6c796765 ^ k0) | 0;
  let v3 = (0x74656462 ^ k1) | 0;
  // Four message words, then the length block (16 bytes << 24), one round each.
  for (let i = 0; i < 5; i++) {
    const m = i === 0
      ? src
      : i === 1
      ? dst
      : i === 2
      ? (sport << 16) | dport
      : i === 3
      ? proto
      : 16 << 24;
    v3 ^= m;
    v0 = (v0 + v1) | 0;
    v1 = (v1 << 5) | (v1 >>> 27);
    v1 ^= v0;
    v0 = (v0 << 16) | (v0 >>> 16);
    v2 = (v2 + v3) | 0;
    v3 = (v3 << 8) | (v3 >>> 24);
    v3 ^= v2;
    v0 = (v0 + v3) | 0;
    v3 = (v3 << 7) | (v3 >>> 25);
    v3 ^= v0;
    v2 = (v2 + v1) | 0;
    v1 = (v1 << 13) | (v1 >>> 19);
    v1 ^= v2;
    v2 = (v2 << 16) | (v2 >>> 16);
    v0 ^= m;
  }
  v2 ^= 0xff;
  for (let i = 0; i < 3; i++) {
    v0 = (v0 + v1) | 0;
    v1 = (v1 << 5) | (v1 >>> 27);
    v1 ^= v0;
    v0 = (v0 << 16) | (v0 >>> 16);
    v2 = (v2 + v3) | 0;
    v3 = (v3 << 8) | (v3 >>> 24);
    v3 ^= v2;
    v0 = (v0 + v3) | 0;
    v3 = (v3 << 7) | (v3 >>> 25);
    v3 ^= v0;
    v2 = (v2 + v1) | 0;
    v1 = (v1 << 13) | (v1 >>> 19);
    v1 ^= v2;
    v2 = (v2 << 16) | (v2 >>> 16);
  }
  return (v1 ^ v3) >>> 0;
}
