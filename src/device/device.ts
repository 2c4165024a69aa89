/**
 * The device contract: batched reads and writes of IPv4 packets, after
 * wireguard-go's `tun.Device`. Offloads (the virtio-net header, GSO super
 * packets) are negotiated when a device opens and stay below this line: the
 * only traces above it are the per-packet checksum state (`PacketMeta.csum`,
 * after smoltcp's `ChecksumCapabilities`) and `Device.ipv4HeaderChecked`.
 */

/**
 * The L4 checksum was checked by no one: verify it in software. Also the
 * state of a packet built from scratch (checksums complete, at most the MTU).
 */
export const CSUM_NONE = 0;
/**
 * The L4 checksum is partial (virtio `NEEDS_CSUM`): its field holds the
 * non-inverted pseudo-header sum and the kernel completes it on write. NAT
 * folds address changes into that sum and leaves port changes alone. Every
 * GSO super packet is partial.
 */
export const CSUM_PARTIAL = 1;
/**
 * The kernel verified the L4 checksum (virtio `DATA_VALID`, the skb was
 * `CHECKSUM_UNNECESSARY`): the field is complete and need not be verified
 * again; NAT adjusts it incrementally, which keeps it valid.
 */
export const CSUM_VALID = 2;

/** Per-packet metadata a read fills and a write takes back. */
export interface PacketMeta {
  /** The L4 checksum state of each packet: `CSUM_NONE`, `CSUM_PARTIAL` or `CSUM_VALID`. */
  csum: Uint8Array;
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
   * True when every packet a read returns has an IPv4 header the kernel
   * built or verified (header checksum included), so it need not be checked
   * again; false for a device that cannot say (memory, a capture).
   */
  readonly ipv4HeaderChecked: boolean;
  /**
   * Reads up to `bufs.length` packets without blocking. Packet i is written at
   * `bufs[i][offset..offset+sizes[i])`; `offset` must be at least `headroom`.
   * Returns the number of packets read (0 when none is ready).
   */
  read(bufs: Uint8Array[], sizes: Int32Array, meta: PacketMeta, offset: number): number;
  /**
   * Writes `count` packets, packet i being `bufs[i][offset..offset+sizes[i])`,
   * with the metadata its read produced. Returns the number written; a packet
   * the kernel refuses is counted by the device, never thrown. A packet in
   * state `CSUM_PARTIAL` or `CSUM_VALID` must still have in its headroom what
   * its read put there (the offload header, GSO information included); one in
   * `CSUM_NONE` must be complete (checksums filled, at most the MTU), as a
   * packet built from scratch is.
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
