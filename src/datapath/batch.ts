/**
 * A batch of packet buffers for one device: the buffers, their sizes and
 * metadata, allocated once and reused for every read.
 */
import type { Device, PacketMeta } from "../device/device.ts";

/** Reusable buffers for `Device.read`/`write`. */
export class PacketBatch {
  /** One buffer per slot, `offset + device.maxPacketSize` bytes long. */
  readonly bufs: Uint8Array[];
  /** Packet length in each slot after a read. */
  readonly sizes: Int32Array;
  /** Per-slot metadata (checksum offload state). */
  readonly meta: PacketMeta;
  /** Headroom before each packet. */
  readonly offset: number;
  /** Slots the pipeline chose to send on. */
  readonly out: Uint8Array[];
  readonly outSizes: Int32Array;
  readonly outMeta: PacketMeta;

  /** Allocates `count` slots sized for `dev`. */
  constructor(dev: Device, count: number) {
    this.offset = dev.headroom;
    const size = this.offset + dev.maxPacketSize;
    this.bufs = Array.from({ length: count }, () => new Uint8Array(size));
    this.sizes = new Int32Array(count);
    this.meta = { csum: new Uint8Array(count) };
    this.out = new Array<Uint8Array>(count);
    this.outSizes = new Int32Array(count);
    this.outMeta = { csum: new Uint8Array(count) };
  }
}
