import assert from "node:assert/strict";
import { buildUdp } from "../packet/mod.ts";
import { MemoryDevice } from "./memory.ts";
import { LINKTYPE_RAW, type PcapSink, PcapWriter, TraceDevice } from "./pcap.ts";

/** A sink that keeps bytes and takes at most 7 per call, to exercise short writes. */
class MemorySink implements PcapSink {
  chunks: number[] = [];
  closed = false;
  writeSync(p: Uint8Array): number {
    const n = Math.min(7, p.length);
    this.chunks.push(...p.subarray(0, n));
    return n;
  }
  close(): void {
    this.closed = true;
  }
  view(): DataView {
    return new DataView(new Uint8Array(this.chunks).buffer);
  }
}

Deno.test("PcapWriter writes a libpcap global header and timestamped records", () => {
  const sink = new MemorySink();
  const pcap = new PcapWriter(sink, () => 1_700_000_000_123);
  const pkt = buildUdp({ src: "192.0.2.1", dst: "192.0.2.2", srcPort: 1, dstPort: 2 });
  pcap.write(new Uint8Array([0, 0, ...pkt]), 2);
  const v = sink.view();
  assert.equal(v.getUint32(0, true), 0xa1b2c3d4);
  assert.equal(v.getUint16(4, true), 2);
  assert.equal(v.getUint16(6, true), 4);
  assert.equal(v.getUint32(16, true), 65535);
  assert.equal(v.getUint32(20, true), LINKTYPE_RAW);
  assert.equal(v.getUint32(24, true), 1_700_000_000);
  assert.equal(v.getUint32(28, true), 123_000);
  assert.equal(v.getUint32(32, true), pkt.length);
  assert.equal(v.getUint32(36, true), pkt.length);
  assert.deepEqual(new Uint8Array(v.buffer, 40), pkt);
  pcap.close();
  assert.equal(sink.closed, true);
});

Deno.test("TraceDevice records reads and writes and passes them through", () => {
  const inner = new MemoryDevice();
  const reads = new MemorySink();
  const writes = new MemorySink();
  const now = () => 0;
  const dev = new TraceDevice(inner, {
    reads: new PcapWriter(reads, now),
    writes: new PcapWriter(writes, now),
  });
  const pkt = buildUdp({ src: "192.0.2.1", dst: "192.0.2.2", srcPort: 1, dstPort: 2 });
  inner.inject(pkt);
  const bufs = [new Uint8Array(1500)];
  const sizes = new Int32Array(1);
  const meta = { csum: new Uint8Array(1) };
  assert.equal(dev.wait(0), true);
  assert.equal(dev.read(bufs, sizes, meta, 0), 1);
  assert.equal(dev.write(bufs, sizes, meta, 0, 1), 1);
  assert.deepEqual(inner.written[0], pkt);
  assert.equal(reads.chunks.length, 24 + 16 + pkt.length);
  assert.equal(writes.chunks.length, 24 + 16 + pkt.length);
  dev.close();
  assert.equal(inner.closed && reads.closed && writes.closed, true);
});
