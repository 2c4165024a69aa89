import assert from "node:assert/strict";
import { buildUdp } from "../packet/mod.ts";
import { CSUM_NONE, CSUM_PARTIAL, CSUM_VALID } from "./device.ts";
import { MemoryDevice } from "./memory.ts";

function batch(n: number, size: number) {
  return {
    bufs: Array.from({ length: n }, () => new Uint8Array(size)),
    sizes: new Int32Array(n),
    meta: { csum: new Uint8Array(n) },
  };
}

const udp = (port: number) =>
  buildUdp({ src: "192.0.2.10", dst: "198.51.100.7", srcPort: 40000, dstPort: port });

Deno.test("MemoryDevice reads injected packets at the offset, in order, in batches", () => {
  const dev = new MemoryDevice({ headroom: 10 });
  const a = udp(1), b = udp(2), c = udp(3);
  dev.inject(a);
  dev.inject(b, CSUM_PARTIAL, new Uint8Array([1, 5]));
  dev.inject(c, CSUM_VALID);
  assert.equal(dev.wait(0), true);
  const { bufs, sizes, meta } = batch(2, 2048);
  assert.equal(dev.read(bufs, sizes, meta, 16), 2);
  assert.deepEqual(bufs[0].subarray(16, 16 + sizes[0]), a);
  assert.deepEqual(bufs[1].subarray(16, 16 + sizes[1]), b);
  assert.deepEqual([...meta.csum], [CSUM_NONE, CSUM_PARTIAL]);
  assert.deepEqual([...bufs[1].subarray(6, 16)], [0, 0, 0, 0, 0, 0, 0, 0, 1, 5]);
  assert.equal(dev.pending, 1);
  assert.equal(dev.read(bufs, sizes, meta, 16), 1);
  assert.deepEqual(bufs[0].subarray(16, 16 + sizes[0]), c);
  assert.equal(meta.csum[0], CSUM_VALID);
  assert.deepEqual(
    [...bufs[0].subarray(6, 16)],
    new Array(10).fill(0),
    "a header-less inject zeroes the headroom",
  );
  assert.equal(dev.read(bufs, sizes, meta, 16), 0);
  assert.equal(dev.wait(1000), false);
});

Deno.test("MemoryDevice keeps copies of written packets with their states and headroom", () => {
  const dev = new MemoryDevice({ headroom: 2 });
  const { bufs, sizes, meta } = batch(2, 128);
  const pkt = udp(9);
  bufs[0].set([7, 8, 9, 9], 0);
  bufs[0].set(pkt, 4);
  sizes[0] = pkt.length;
  meta.csum[0] = CSUM_PARTIAL;
  bufs[1].set(pkt, 4);
  sizes[1] = 20;
  assert.equal(dev.write(bufs, sizes, meta, 4, 2), 2);
  bufs[0].fill(0);
  assert.deepEqual(dev.written[0], pkt);
  assert.deepEqual(dev.written[1], pkt.subarray(0, 20));
  assert.deepEqual(dev.writtenCsum, [CSUM_PARTIAL, CSUM_NONE]);
  assert.deepEqual([...dev.writtenHeaders[0]], [9, 9]);
  assert.equal(dev.takeWritten().length, 2);
  assert.deepEqual(dev.written, []);
  assert.deepEqual(dev.writtenCsum, []);
  assert.deepEqual(dev.writtenHeaders, []);
});

Deno.test("MemoryDevice leaves a packet queued when the buffer is too small or the offset below headroom", () => {
  const dev = new MemoryDevice({ headroom: 10 });
  dev.inject(udp(1));
  const small = batch(1, 20);
  assert.equal(dev.read(small.bufs, small.sizes, small.meta, 10), 0);
  const big = batch(1, 100);
  assert.equal(dev.read(big.bufs, big.sizes, big.meta, 4), 0);
  assert.equal(dev.read(big.bufs, big.sizes, big.meta, 10), 1);
});

Deno.test("MemoryDevice refuses packets above maxPacketSize and reports its shape", () => {
  const dev = new MemoryDevice({ name: "t0", mtu: 100 });
  assert.equal(dev.name, "t0");
  assert.equal(dev.maxPacketSize, 100);
  assert.equal(dev.headroom, 0);
  assert.equal(dev.ipv4HeaderChecked, false);
  assert.throws(() => dev.inject(udp(1), CSUM_NONE, new Uint8Array(1)), /1-byte header/);
  assert.throws(() => dev.inject(new Uint8Array(101)), /Cannot inject a 101-byte packet/);
  dev.close();
  assert.equal(dev.closed, true);
});
