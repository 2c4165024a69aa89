import assert from "node:assert/strict";
import fc from "fast-check";
import {
  checksumAdd,
  checksumAdjust128,
  checksumAdjust16,
  checksumAdjust32,
  checksumFold,
  internetChecksum,
  pseudoHeaderSum,
  pseudoHeaderSum6,
  pseudoHeaderSum6Words,
  sumAdjust128,
  sumAdjust16,
  sumAdjust32,
} from "./checksum.ts";
import { fromHex } from "./_fixtures.ts";
import { read32, write32 } from "./bytes.ts";

Deno.test("RFC 1071 section 3 example: sum 0xddf2, checksum 0x220d", () => {
  const b = fromHex("0001f203f4f5f6f7");
  assert.equal(checksumAdd(0, b, 0, b.length), 0x2ddf0);
  assert.equal(checksumFold(0x2ddf0), 0xddf2);
  assert.equal(internetChecksum(b, 0, b.length), 0x220d);
});

Deno.test("odd trailing byte is padded with zero on the right", () => {
  const b = fromHex("0102ab");
  assert.equal(checksumAdd(0, b, 0, 3), 0x0102 + 0xab00);
  assert.equal(internetChecksum(b, 0, 3), internetChecksum(fromHex("0102ab00"), 0, 4));
});

Deno.test("IPv4 header example has checksum 0xb861 and verifies to 0", () => {
  const h = fromHex("450000730000400040110000c0a80001c0a800c7");
  assert.equal(internetChecksum(h, 0, 20), 0xb861);
  h[10] = 0xb8;
  h[11] = 0x61;
  assert.equal(internetChecksum(h, 0, 20), 0);
});

Deno.test("checksumFold handles sums past 2^32", () => {
  assert.equal(checksumFold(0x1_0000_0000), 1);
  assert.equal(checksumFold(0xffff_ffff_ffff), 0xffff);
  assert.equal(checksumFold(0), 0);
});

Deno.test("RFC 1624 section 4: eqn 3 gives 0x0000 where eqn 2 would give 0xFFFF", () => {
  assert.equal(checksumAdjust16(0xdd2f, 0x5555, 0x3285), 0x0000);
  // and back again
  assert.equal(checksumAdjust16(0x0000, 0x3285, 0x5555), 0xdd2f);
});

Deno.test("pseudoHeaderSum adds both address halves, protocol and length", () => {
  assert.equal(
    pseudoHeaderSum(0xc0000201, 0xc0000202, 6, 40),
    0xc000 + 0x201 + 0xc000 + 0x202 + 46,
  );
});

/** Full checksum of `b` with the 16-bit field at `at` zeroed. */
function full(b: Uint8Array, at: number): number {
  const c = b.slice();
  c[at] = 0;
  c[at + 1] = 0;
  return internetChecksum(c, 0, c.length);
}

const data = fc.uint8Array({ minLength: 8, maxLength: 64 }).map((b) => {
  const c = b.length & 1 ? b.subarray(0, b.length - 1) : b;
  c[2] |= 1; // keep the data (besides the checksum field) non-zero: 0 has two forms
  return c;
});

Deno.test("property: checksumAdjust16 equals a full recompute", () => {
  fc.assert(fc.property(data, fc.nat(), fc.integer({ min: 0, max: 0xffff }), (b, k, w) => {
    const at = 2 * (2 + (k % ((b.length >>> 1) - 2))); // a word after the checksum at 0 and the guard at 2
    const before = full(b, 0);
    const old = (b[at] << 8) | b[at + 1];
    b[at] = w >>> 8;
    b[at + 1] = w & 0xff;
    assert.equal(checksumAdjust16(before, old, w), full(b, 0));
  }));
});

Deno.test("property: checksumAdjust32 equals a full recompute", () => {
  const d = data.filter((b) => b.length >= 12);
  fc.assert(fc.property(d, fc.nat(), fc.nat({ max: 0xffffffff }), (b, k, v) => {
    const at = 4 + 2 * (k % ((b.length - 8) >>> 1));
    const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const before = full(b, 0);
    const old = view.getUint32(at);
    view.setUint32(at, v);
    assert.equal(checksumAdjust32(before, old, v), full(b, 0));
  }));
});

Deno.test("property: sumAdjust16/32 track a non-inverted partial sum", () => {
  const u32 = fc.nat({ max: 0xffffffff });
  fc.assert(fc.property(u32, u32, u32, fc.nat({ max: 0xffff }), (a, b, a2, len) => {
    const p = checksumFold(pseudoHeaderSum(a, b, 6, len));
    const want = checksumFold(pseudoHeaderSum(a2, b, 6, len));
    // Equal in ones' complement: 0 and 0xFFFF are the same number.
    assert.equal(sumAdjust32(p, a, a2) % 0xffff, want % 0xffff);
    const lo = sumAdjust16(p, a & 0xffff, a2 & 0xffff);
    assert.equal(
      lo % 0xffff,
      checksumFold(pseudoHeaderSum((a & ~0xffff) | (a2 & 0xffff), b, 6, len)) % 0xffff,
    );
  }));
});

Deno.test("pseudoHeaderSum6 from bytes equals the sum from words", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 40, maxLength: 40 }),
      fc.nat({ max: 255 }),
      fc.nat({ max: 0x1ffff }),
      (hdr, proto, len) => {
        const w = new Uint32Array(8);
        for (let i = 0; i < 8; i++) w[i] = read32(hdr, 8 + 4 * i);
        assert.equal(
          pseudoHeaderSum6(hdr, 0, proto, len),
          pseudoHeaderSum6Words(w, 0, w, 4, proto, len),
        );
      },
    ),
    { numRuns: 500 },
  );
});

Deno.test("property: checksumAdjust128 and sumAdjust128 match a full recomputation", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 40, maxLength: 80 }),
      fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 4, maxLength: 4 }),
      (seg, neu) => {
        // seg[0..16) is the address the pseudo header covers; the rest is the segment.
        const old = new Uint32Array(4);
        for (let i = 0; i < 4; i++) old[i] = read32(seg, 4 * i);
        const sum = (b: Uint8Array) => checksumFold(checksumAdd(0, b, 0, b.length));
        const before = ~sum(seg) & 0xffff;
        const after = seg.slice();
        for (let i = 0; i < 4; i++) write32(after, 4 * i, neu[i]);
        const want = ~sum(after) & 0xffff;
        const got = checksumAdjust128(before, old, 0, neu, 0);
        // 0 and 0xffff are the same number in ones' complement.
        assert.equal(got === 0xffff ? 0 : got, want === 0xffff ? 0 : want);
        assert.equal(sumAdjust128(sum(seg), old, 0, neu, 0) % 0xffff, sum(after) % 0xffff);
      },
    ),
    { numRuns: 1000 },
  );
});
