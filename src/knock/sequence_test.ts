import assert from "node:assert/strict";
import { base32Decode } from "./base32.ts";
import { loadVectors } from "./_vectors.ts";
import {
  knockMessage,
  knockSequence,
  knockSequenceAt,
  portsFromDigest,
  stepOf,
} from "./sequence.ts";

Deno.test("stepOf and knockSequence reproduce every knock vector", async () => {
  const vectors = await loadVectors();
  assert.ok(vectors.length >= 7);
  for (const v of vectors) {
    assert.equal(stepOf(v.unixTime), v.step);
    const seq = await knockSequence(base32Decode(v.secret), v.step, v.firstPort, v.length);
    assert.deepEqual(seq, v.sequence, `vector ${v.secret} @ ${v.unixTime}`);
    assert.deepEqual(await knockSequenceAt(v.secret, v.unixTime, v.firstPort, v.length), seq);
  }
});

Deno.test("the HMAC message is label, 0x00, uint64_be(T), uint16_be(F)", () => {
  const msg = knockMessage(0x0102030405, 0xa029);
  assert.deepEqual(
    [...msg],
    [...new TextEncoder().encode("portknock/v1"), 0, 0, 0, 0, 1, 2, 3, 4, 5, 0xa0, 0x29],
  );
});

Deno.test("derived ports skip F and repeats and stay in 16384..32767", () => {
  const digest = new Uint8Array(32);
  // chunks: 0x4000 -> 16384 (== F), 0xC001 -> 16385, 0x0001 -> 16385 again, 0x3FFF -> 32767
  digest.set([0x40, 0x00, 0xc0, 0x01, 0x00, 0x01, 0x3f, 0xff]);
  assert.deepEqual(portsFromDigest(digest, 16384, 2), [16384, 16385, 32767]);
  // The page looks at 16 chunks only: with too many repeats the sequence comes out short.
  assert.deepEqual(portsFromDigest(digest, 16384, 3), [16384, 16385, 32767]);
});

Deno.test("knockSequence refuses bad parameters", async () => {
  const key = new Uint8Array(20);
  await assert.rejects(() => knockSequence(key, 1, 0, 3), /first port 0 is out of range/);
  await assert.rejects(() => knockSequence(key, 1, 65536, 3), /first port 65536/);
  await assert.rejects(() => knockSequence(key, 1, 1000, 0), /length 0/);
  await assert.rejects(() => knockSequence(key, 1, 1000, 9), /length 9/);
  await assert.rejects(() => knockSequence(key, -1, 1000, 3), /step -1/);
});
