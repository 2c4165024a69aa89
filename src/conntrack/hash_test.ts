import assert from "node:assert/strict";
import { tupleHash } from "./hash.ts";

/** Reference HalfSipHash-c-d (32-bit output) over whole LE words, for checking. */
function halfSipHash(k0: number, k1: number, words: number[], c: number, d: number): number {
  const v = [k0 | 0, k1 | 0, (0x6c796765 ^ k0) | 0, (0x74656462 ^ k1) | 0];
  const rotl = (x: number, b: number) => (x << b) | (x >>> (32 - b));
  const round = () => {
    v[0] = (v[0] + v[1]) | 0;
    v[1] = rotl(v[1], 5) ^ v[0];
    v[0] = rotl(v[0], 16);
    v[2] = (v[2] + v[3]) | 0;
    v[3] = rotl(v[3], 8) ^ v[2];
    v[0] = (v[0] + v[3]) | 0;
    v[3] = rotl(v[3], 7) ^ v[0];
    v[2] = (v[2] + v[1]) | 0;
    v[1] = rotl(v[1], 13) ^ v[2];
    v[2] = rotl(v[2], 16);
  };
  for (const m of [...words, (words.length * 4) << 24]) {
    v[3] ^= m;
    for (let i = 0; i < c; i++) round();
    v[0] ^= m;
  }
  v[2] ^= 0xff;
  for (let i = 0; i < d; i++) round();
  return (v[1] ^ v[3]) >>> 0;
}

const REF_K0 = 0x03020100; // key bytes 00..07, little-endian words
const REF_K1 = 0x07060504;

Deno.test("reference HalfSipHash-2-4 matches the published vectors", () => {
  // vectors_hsip32[0] (empty message) and [4] (bytes 00 01 02 03).
  assert.equal(halfSipHash(REF_K0, REF_K1, [], 2, 4), 0x5b9f35a9);
  assert.equal(halfSipHash(REF_K0, REF_K1, [0x03020100], 2, 4), 0x89466e2a);
});

Deno.test("tupleHash is HalfSipHash-1-3 over src, dst, ports, proto", () => {
  const cases = [
    [6, 0xc0000201, 443, 0xcb007105, 51000],
    [17, 0, 0, 0, 0],
    [1, 0xffffffff, 0xffff, 0xffffffff, 0xffff],
  ];
  for (const [proto, src, sport, dst, dport] of cases) {
    const want = halfSipHash(REF_K0, REF_K1, [src, dst, (sport << 16) | dport, proto], 1, 3);
    assert.equal(tupleHash(REF_K0, REF_K1, proto, src, sport, dst, dport), want);
  }
});

Deno.test("tupleHash depends on the key and on every field", () => {
  const base = tupleHash(1, 2, 6, 10, 20, 30, 40);
  assert.notEqual(tupleHash(1, 3, 6, 10, 20, 30, 40), base);
  assert.notEqual(tupleHash(1, 2, 17, 10, 20, 30, 40), base);
  assert.notEqual(tupleHash(1, 2, 6, 11, 20, 30, 40), base);
  assert.notEqual(tupleHash(1, 2, 6, 10, 21, 30, 40), base);
  assert.notEqual(tupleHash(1, 2, 6, 10, 20, 31, 40), base);
  assert.notEqual(tupleHash(1, 2, 6, 10, 20, 30, 41), base);
});

Deno.test("tupleHash spreads sequential ports evenly over buckets", () => {
  const buckets = new Uint32Array(256);
  for (let p = 0; p < 65536; p++) {
    buckets[tupleHash(7, 9, 6, 0xcb007105, p, 0xc6336401, 443) & 255]++;
  }
  const max = Math.max(...buckets);
  const min = Math.min(...buckets);
  assert.ok(max < 256 * 1.3 && min > 256 * 0.7, `bucket loads ${min}..${max}`);
});
