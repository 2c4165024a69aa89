/**
 * The device contract: batched reads and writes of IPv4 packets, after
 * wireguard-go's `tun.Device`. Offloads (the virtio-net header, GSO super
 * packets) are negotiated when a device opens and stay below this line: the
 * only trace above it is the per-packet `PacketMeta.csumPartial` flag.
 */

/** Per-packet metadata a read fills and a write takes back. */
export interface PacketMeta {
  /**
   * 1 when the packet's L4 checksum is partial (virtio `NEEDS_CSUM`): its
   * checksum field holds the non-inverted pseudo-header sum, and the kernel
   * completes it. NAT must then fold address changes into that sum and leave
   * port changes alone. 0 for a packet with a complete checksum.
   */
  csumPartial: Uint8Array;
}

/** A batched packet device (a TUN, or memory for tests). */
export interface Device {
  /** Interface name, such as `kn0`. */
  readonly name: string;
  /** The MTU of the device. */
  readonly mtu: number;
  /**
   * Headroom a caller must leave before each packet in its buffers (the
   * virtio-net header lives there when offload is on).
   */
  readonly headroom: number;
  /** Largest packet a read can return (64 KiB with GSO, else the MTU). */
  readonly maxPacketSize: number;
  /**
   * Reads up to `bufs.length` packets without blocking. Packet i is written at
   * `bufs[i][offset..offset+sizes[i])`; `offset` must be at least `headroom`.
   * Returns the number of packets read (0 when none is ready).
   */
  read(bufs: Uint8Array[], sizes: Int32Array, meta: PacketMeta, offset: number): number;
  /**
   * Writes `count` packets, packet i being `bufs[i][offset..offset+sizes[i])`,
   * with the metadata its read produced. Returns the number written; a packet
   * the kernel refuses is counted by the device, never thrown. A packet with
   * `csumPartial` 1 must still have in its headroom what its read put there
   * (the offload header, GSO information included); a packet with
   * `csumPartial` 0 must be complete (checksums filled, at most the MTU), as
   * a packet built from scratch is.
   */
  write(
    bufs: Uint8Array[],
    sizes: Int32Array,
    meta: PacketMeta,
    offset: number,
    count: number,
  ): number;
  /**
   * Blocks up to `timeoutMs` for a packet to be readable; true when one is.
   * Synchronous by design: the data plane runs in a Worker (see lab notes).
   */
  wait(timeoutMs: number): boolean;
  /** Releases the device. */
  close(): void;
}
