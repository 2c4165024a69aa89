/**
 * An in-memory {@linkcode Device} for tests of the layers above: packets
 * injected by the test come out of `read`, packets written are kept.
 */

import { CSUM_NONE, type Device, type PacketMeta } from "./device.ts";

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
  /** Claim that every IPv4 header read was checked already; default false (it cannot say). */
  ipv4HeaderChecked?: boolean;
}

/** What a test puts in: a packet, its checksum state and the bytes of its headroom. */
interface Injected {
  packet: Uint8Array;
  csum: number;
  header: Uint8Array | undefined;
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
  /** As the options said; false by default. */
  readonly ipv4HeaderChecked: boolean;
  /** Copies of the packets written, oldest first. */
  written: Uint8Array[] = [];
  /** The checksum state of each packet in `written`. */
  writtenCsum: number[] = [];
  /** Copies of the headroom (`headroom` bytes before the offset) of each packet in `written`. */
  writtenHeaders: Uint8Array[] = [];
  /** True once `close` ran. */
  closed = false;
  #queue: Injected[] = [];

  /** A device with the given shape. */
  constructor(options: MemoryDeviceOptions = {}) {
    this.name = options.name ?? "mem0";
    this.mtu = options.mtu ?? 1500;
    this.headroom = options.headroom ?? 0;
    this.maxPacketSize = options.maxPacketSize ?? this.mtu;
    this.ipv4HeaderChecked = options.ipv4HeaderChecked ?? false;
  }

  /**
   * Queues a copy of `packet` for `read` in checksum state `csum` (a
   * `CSUM_*` value), with `header` (such as a virtio-net header, at most
   * `headroom` bytes) copied just before it, as a TUN read leaves it.
   */
  inject(packet: Uint8Array, csum = CSUM_NONE, header?: Uint8Array): void {
    if (packet.length > this.maxPacketSize) {
      throw new RangeError(
        `Cannot inject a ${packet.length}-byte packet into "${this.name}": the maximum is ${this.maxPacketSize}`,
      );
    }
    if (header !== undefined && header.length > this.headroom) {
      throw new RangeError(
        `Cannot inject a ${header.length}-byte header into "${this.name}": its headroom is ${this.headroom}`,
      );
    }
    this.#queue.push({ packet: packet.slice(), csum, header: header?.slice() });
  }

  /** The number of injected packets not read yet. */
  get pending(): number {
    return this.#queue.length;
  }

  /** Moves queued packets into `bufs` at `offset`; see {@linkcode Device.read}. */
  read(bufs: Uint8Array[], sizes: Int32Array, meta: PacketMeta, offset: number): number {
    let i = 0;
    while (i < bufs.length && this.#queue.length > 0) {
      const { packet, csum, header } = this.#queue[0];
      if (offset < this.headroom || offset + packet.length > bufs[i].length) break;
      this.#queue.shift();
      bufs[i].fill(0, offset - this.headroom, offset);
      if (header !== undefined) bufs[i].set(header, offset - header.length);
      bufs[i].set(packet, offset);
      sizes[i] = packet.length;
      meta.csum[i] = csum;
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
      this.writtenCsum.push(meta.csum[i]);
      this.writtenHeaders.push(bufs[i].slice(offset - this.headroom, offset));
    }
    return count;
  }

  /** Returns the packets written so far and forgets them. */
  takeWritten(): Uint8Array[] {
    const out = this.written;
    this.written = [];
    this.writtenCsum = [];
    this.writtenHeaders = [];
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
