/**
 * An in-memory {@linkcode Device} for tests of the layers above: packets
 * injected by the test come out of `read`, packets written are kept.
 */

import type { Device, PacketMeta } from "./device.ts";

/** How to shape a {@linkcode MemoryDevice}; every field has a default. */
export interface MemoryDeviceOptions {
  /** Interface name; default `mem0`. */
  name?: string;
  /** MTU; default 1500. */
  mtu?: number;
  /** Headroom callers must leave; default 0 (a TUN with offload has 10). */
  headroom?: number;
  /** Largest packet; default the MTU. */
  maxPacketSize?: number;
}

/** A device backed by two queues in memory. */
export class MemoryDevice implements Device {
  /** Interface name. */
  readonly name: string;
  /** MTU. */
  readonly mtu: number;
  /** Headroom callers must leave before each packet. */
  readonly headroom: number;
  /** Largest packet `inject` accepts. */
  readonly maxPacketSize: number;
  /** Copies of the packets written, oldest first. */
  written: Uint8Array[] = [];
  /** The `csumPartial` flag of each packet in `written`. */
  writtenCsumPartial: number[] = [];
  /** True once `close` ran. */
  closed = false;
  #queue: { packet: Uint8Array; csumPartial: number }[] = [];

  /** A device with the given shape. */
  constructor(options: MemoryDeviceOptions = {}) {
    this.name = options.name ?? "mem0";
    this.mtu = options.mtu ?? 1500;
    this.headroom = options.headroom ?? 0;
    this.maxPacketSize = options.maxPacketSize ?? this.mtu;
  }

  /** Queues a copy of `packet` for `read`, flagged partial-checksum if asked. */
  inject(packet: Uint8Array, csumPartial = false): void {
    if (packet.length > this.maxPacketSize) {
      throw new RangeError(
        `Cannot inject a ${packet.length}-byte packet into "${this.name}": the maximum is ${this.maxPacketSize}`,
      );
    }
    this.#queue.push({ packet: packet.slice(), csumPartial: csumPartial ? 1 : 0 });
  }

  /** The number of injected packets not read yet. */
  get pending(): number {
    return this.#queue.length;
  }

  /** Moves queued packets into `bufs` at `offset`; see {@linkcode Device.read}. */
  read(bufs: Uint8Array[], sizes: Int32Array, meta: PacketMeta, offset: number): number {
    let i = 0;
    while (i < bufs.length && this.#queue.length > 0) {
      const { packet, csumPartial } = this.#queue[0];
      if (offset < this.headroom || offset + packet.length > bufs[i].length) break;
      this.#queue.shift();
      bufs[i].set(packet, offset);
      sizes[i] = packet.length;
      meta.csumPartial[i] = csumPartial;
      i++;
    }
    return i;
  }

  /** Keeps a copy of each packet; see {@linkcode Device.write}. */
  write(
    bufs: Uint8Array[],
    sizes: Int32Array,
    meta: PacketMeta,
    offset: number,
    count: number,
  ): number {
    for (let i = 0; i < count; i++) {
      this.written.push(bufs[i].slice(offset, offset + sizes[i]));
      this.writtenCsumPartial.push(meta.csumPartial[i]);
    }
    return count;
  }

  /** Returns the packets written so far and forgets them. */
  takeWritten(): Uint8Array[] {
    const out = this.written;
    this.written = [];
    this.writtenCsumPartial = [];
    return out;
  }

  /** Never blocks: true when a packet is queued. */
  wait(_timeoutMs: number): boolean {
    return this.#queue.length > 0;
  }

  /** Marks the device closed. */
  close(): void {
    this.closed = true;
  }
}
