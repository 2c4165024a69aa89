/**
 * Packet capture for debugging: a libpcap-format writer (LINKTYPE_RAW, so
 * records are bare IP packets) and a {@linkcode TraceDevice} that tees a
 * device's reads and writes into captures. Meant for debugging, not for line
 * rate: each record is a synchronous write.
 */

import type { Device, PacketMeta } from "./device.ts";

/** libpcap link type for raw IPv4/IPv6 packets without a link header. */
export const LINKTYPE_RAW = 101;

/** Where a {@linkcode PcapWriter} sends bytes (a `Deno.FsFile` is one). */
export interface PcapSink {
  /** Writes some of `p`, returning how many bytes were taken. */
  writeSync(p: Uint8Array): number;
  /** Releases the sink. */
  close(): void;
}

/** Writes packets into a libpcap capture (microsecond timestamps). */
export class PcapWriter {
  #sink: PcapSink;
  #now: () => number;
  #snaplen: number;
  #record = new Uint8Array(16);
  #view = new DataView(this.#record.buffer);

  /** Writes the global header to `sink`; `now` gives record times in epoch milliseconds. */
  constructor(sink: PcapSink, now: () => number = Date.now, snaplen = 65535) {
    this.#sink = sink;
    this.#now = now;
    this.#snaplen = snaplen;
    const header = new Uint8Array(24);
    const v = new DataView(header.buffer);
    v.setUint32(0, 0xa1b2c3d4, true); // magic: microsecond timestamps, our byte order
    v.setUint16(4, 2, true); // version 2.4
    v.setUint16(6, 4, true);
    v.setUint32(16, snaplen, true);
    v.setUint32(20, LINKTYPE_RAW, true);
    this.#writeAll(header);
  }

  /** Creates (or truncates) the capture file at `path`. */
  static create(path: string, now: () => number = Date.now): PcapWriter {
    return new PcapWriter(
      Deno.openSync(path, { write: true, create: true, truncate: true }),
      now,
    );
  }

  /** Appends the packet `buf[start..end)` stamped with the current time. */
  write(buf: Uint8Array, start = 0, end = buf.length): void {
    const ms = this.#now();
    const length = end - start;
    const captured = Math.min(length, this.#snaplen);
    const v = this.#view;
    v.setUint32(0, Math.floor(ms / 1000), true);
    v.setUint32(4, Math.floor((ms % 1000) * 1000), true);
    v.setUint32(8, captured, true);
    v.setUint32(12, length, true);
    this.#writeAll(this.#record);
    this.#writeAll(buf.subarray(start, start + captured));
  }

  /** Closes the sink. */
  close(): void {
    this.#sink.close();
  }

  #writeAll(bytes: Uint8Array): void {
    let done = 0;
    while (done < bytes.length) done += this.#sink.writeSync(bytes.subarray(done));
  }
}

/** Where a {@linkcode TraceDevice} records; either may be left out. */
export interface TraceOptions {
  /** Receives every packet read. */
  reads?: PcapWriter;
  /** Receives every packet written (before the kernel sees it). */
  writes?: PcapWriter;
}

/** A device that records another device's traffic into pcap captures. */
export class TraceDevice implements Device {
  /** Interface name of the inner device. */
  readonly name: string;
  /** MTU of the inner device. */
  readonly mtu: number;
  /** Headroom of the inner device. */
  readonly headroom: number;
  /** Largest packet of the inner device. */
  readonly maxPacketSize: number;
  /** As the inner device says. */
  readonly ipv4HeaderChecked: boolean;
  #inner: Device;
  #options: TraceOptions;

  /** Wraps `inner`; closing the trace closes the inner device and the writers. */
  constructor(inner: Device, options: TraceOptions) {
    this.#inner = inner;
    this.#options = options;
    this.name = inner.name;
    this.mtu = inner.mtu;
    this.headroom = inner.headroom;
    this.maxPacketSize = inner.maxPacketSize;
    this.ipv4HeaderChecked = inner.ipv4HeaderChecked;
  }

  /** Reads from the inner device, recording each packet. */
  read(bufs: Uint8Array[], sizes: Int32Array, meta: PacketMeta, offset: number): number {
    const n = this.#inner.read(bufs, sizes, meta, offset);
    const pcap = this.#options.reads;
    for (let i = 0; pcap && i < n; i++) pcap.write(bufs[i], offset, offset + sizes[i]);
    return n;
  }

  /** Records each packet, then writes through the inner device. */
  write(
    bufs: Uint8Array[],
    sizes: Int32Array,
    meta: PacketMeta,
    offset: number,
    count: number,
  ): number {
    const pcap = this.#options.writes;
    for (let i = 0; pcap && i < count; i++) pcap.write(bufs[i], offset, offset + sizes[i]);
    return this.#inner.write(bufs, sizes, meta, offset, count);
  }

  /** Waits on the inner device. */
  wait(timeoutMs: number): boolean {
    return this.#inner.wait(timeoutMs);
  }

  /** Closes the inner device and both writers. */
  close(): void {
    this.#inner.close();
    this.#options.reads?.close();
    if (this.#options.writes !== this.#options.reads) this.#options.writes?.close();
  }
}
