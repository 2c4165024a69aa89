/**
 * A Linux TUN device over synchronous libc FFI.
 *
 * The fd is non-blocking: `read` drains packets until EAGAIN or the batch is
 * full, and `wait` blocks in poll(2). With offload, the TUN speaks the
 * virtio-net header (`IFF_VNET_HDR`) and accepts checksum, TSO and (Linux
 * 6.2 on) USO offload, so reads return GSO super packets up to 64 KiB; the
 * header sits in the caller's headroom and goes back out unchanged with the
 * packet.
 *
 * What the kernel hands a TUN read, checked on kernel 6.18 with
 * `testdata/tun_probe.ts` (mode `forward`: a veth peer namespace routed
 * through the TUN), facts the pipeline relies on:
 * - Every IPv4 header is the kernel's: a forwarded packet passed
 *   `ip_rcv_core` (version, IHL, total length and header checksum verified
 *   before routing), a local one was built by `ip_output`. Hence
 *   `ipv4HeaderChecked`, with or without offload.
 * - The L4 checksum state follows the skb's `ip_summed` (the header is made
 *   by `virtio_net_hdr_from_skb`): `NEEDS_CSUM` (`CSUM_PARTIAL`) for TCP and
 *   UDP from a socket, local or forwarded from a veth (a veth keeps
 *   `CHECKSUM_PARTIAL` across namespaces), checksum field = pseudo-header
 *   sum, `csum_start` 20, `csum_offset` 16 (TCP) or 6 (UDP); flags 0
 *   (`CSUM_NONE`) for a datagram whose checksum was filled in software (a
 *   raw socket): forwarding never verifies L4; `DATA_VALID` (`CSUM_VALID`)
 *   only for `CHECKSUM_UNNECESSARY`, here that same raw datagram after GRO on
 *   the ingress veth (`gro on` and `rx-udp-gro-forwarding on`) verified it,
 *   and on real NICs that check checksums on receive.
 * - With USO, a `UDP_SEGMENT` send of 1000 bytes in 100-byte datagrams is
 *   one read: `gso_type` 5 (`UDP_L4`), `gso_size` 100, `hdr_len` 28,
 *   `NEEDS_CSUM`, UDP length 1008 and the pseudo-header sum over 1008 bytes:
 *   the whole super packet, as the kernel's `udp4_hwcsum` sets it and
 *   `__udp_gso_segment` expects it back (it swaps the length per datagram).
 * - IPv6 alike: a read returns IPv4 and IPv6 packets (by the version
 *   nibble; anything else is dropped, `nonIpDropped`), and with offload a
 *   forwarded IPv6 UDP datagram is `NEEDS_CSUM` with `csum_start` 40, a
 *   `UDP_SEGMENT` send over IPv6 one `UDP_L4` read (`hdr_len` 48,
 *   `gso_size` 100, UDP and payload length 1008), the header in the
 *   headroom as for IPv4. The IPv6 header has no checksum to trust.
 * - On write, `virtio_net_hdr_to_skb` reads only `NEEDS_CSUM` and the GSO
 *   fields: a `DATA_VALID` flag is ignored (a datagram with a broken checksum
 *   behind it is dropped by the receiving socket like one behind a zero
 *   header). A written packet's L4 checksum is checked wherever the kernel
 *   would check one of its own.
 *
 * Multi-queue (`IFF_MULTI_QUEUE`, one fd per queue), checked on kernel 6.18
 * with `testdata/mq_probe.ts` (two queues, each read by its own Worker that
 * mapped its fd with `TunQueue.fromFd`):
 * - The kernel sends a packet into the queue its flow's symmetric hash picks
 *   (`tun_automq_select_queue`): one flow's packets all come out of one
 *   queue, and flows spread over the queues (16 UDP flows: 11 and 5).
 * - A write through a queue's fd records the written packet's flow hash
 *   against that queue (`tun_flow_update`), and the flow's later packets,
 *   either direction (the hash is symmetric), come out of that queue: one
 *   reply written through the other queue's fd moved each of the 16 flows.
 *   The steering follows the fd written on, not the thread that wrote. For a
 *   NAT: a flow's replies come back on the queue its translated packets were
 *   written to, so a Worker that writes another Worker's packet through its
 *   own queue pulls that flow to itself; write it through the queue it came
 *   from. Per the kernel source (`TUN_FLOW_EXPIRE`, `MAX_TAP_FLOWS`) a record
 *   lapses 3 s after the flow's last write and the kernel keeps at most 4096.
 */

import { CSUM_NONE, CSUM_PARTIAL, CSUM_VALID, type Device, type PacketMeta } from "./device.ts";
import type { Doorbell } from "./doorbell.ts";
import {
  addressOf,
  AF_INET,
  closeFd,
  EAGAIN,
  ErrnoError,
  ioctlBuffer,
  ioctlValue,
  IoVecs,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDWR,
  openFile,
  openSocket,
  poll,
  POLLIN,
  readv,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  writev,
} from "./libc.ts";
import {
  VIRTIO_NET_HDR_F_DATA_VALID,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_NONE,
  VIRTIO_NET_HDR_LEN,
  vnetFlags,
  vnetGsoType,
} from "./virtio_net.ts";

// linux/if_tun.h
const TUNSETIFF = 0x400454ca; // _IOW('T', 202, int)
const TUNSETOFFLOAD = 0x400454d0; // _IOW('T', 208, unsigned int)
const TUNSETVNETHDRSZ = 0x400454d8; // _IOW('T', 216, int)
const IFF_TUN = 0x0001;
const IFF_NO_PI = 0x1000;
const IFF_VNET_HDR = 0x4000;
const IFF_MULTI_QUEUE = 0x0100;
const TUN_F_CSUM = 0x01;
const TUN_F_TSO4 = 0x02;
const TUN_F_TSO6 = 0x04;
const TUN_F_USO4 = 0x20;
const TUN_F_USO6 = 0x40;
const EINVAL = 22;
// linux/sockios.h, linux/if.h
const SIOCGIFFLAGS = 0x8913;
const SIOCSIFFLAGS = 0x8914;
const SIOCSIFMTU = 0x8922;
/** Sets an interface's transmit queue length (struct ifreq ifr_qlen). */
const SIOCSIFTXQLEN = 0x8943;
/**
 * Transmit queue of the TUN (packets the kernel holds for our reads). The
 * default 500 overflows during the Worker's rare pauses at small-packet
 * rates; a deeper queue absorbs them.
 */
const TX_QUEUE_LEN = 4096;
const IFF_UP = 0x1;
const IFNAMSIZ = 16;
const IFREQ_SIZE = 40;

/**
 * Largest IPv4 packet, and so the largest GSO super packet a read returns.
 * An IPv6 packet may be 40 bytes longer (its payload length leaves out the
 * fixed header); one that did not fit the buffer is counted `truncated`.
 */
const MAX_IPV4_PACKET = 65535;
/** The IPv6 fixed header, which its payload length does not count. */
const IPV6_HEADER_LEN = 40;

/** How to open a TUN device. */
export interface TunOptions {
  /** Interface name (at most 15 bytes); empty lets the kernel pick `tun%d`. */
  name: string;
  /** The MTU to set, 68..65535. */
  mtu: number;
  /**
   * Negotiate the virtio-net header with checksum, TSO and, when the kernel
   * has it (6.2 on), USO offload.
   */
  offload: boolean;
  /** Queues, one fd each (`IFF_MULTI_QUEUE` when above 1); default 1. */
  queues?: number;
  /** Bring the link up after setting the MTU; default true. */
  up?: boolean;
}

/** Counters of a TUN device (or of one of its queues). */
export interface TunStats {
  /** IPv4 and IPv6 packets returned by reads (a GSO super packet counts once). */
  readPackets: number;
  /** The IPv6 packets among them. */
  ipv6Packets: number;
  /** Bytes of those packets, headers included, virtio-net header excluded. */
  readBytes: number;
  /** Reads that failed with an error other than EAGAIN. */
  readErrors: number;
  /** Packets the kernel accepted. */
  writePackets: number;
  /** Bytes of those packets, virtio-net header excluded. */
  writeBytes: number;
  /** Packets the kernel refused (EAGAIN included). */
  writeErrors: number;
  /** Packets read and dropped because they were neither IPv4 nor IPv6. */
  nonIpDropped: number;
  /** GSO super packets among the packets read. */
  gsoPackets: number;
  /** Packets read and dropped because the buffer was too short for them. */
  truncated: number;
}

const READ_PACKETS = 0;
const READ_BYTES = 1;
const READ_ERRORS = 2;
const WRITE_PACKETS = 3;
const WRITE_BYTES = 4;
const WRITE_ERRORS = 5;
const NON_IP_DROPPED = 6;
const GSO_PACKETS = 7;
const TRUNCATED = 8;
const IPV6_PACKETS = 9;

/** One queue (one fd) of a TUN device; itself a complete {@linkcode Device}. */
export class TunQueue implements Device {
  /** Interface name. */
  readonly name: string;
  /** MTU of the interface. */
  readonly mtu: number;
  /** 10 (the virtio-net header) with offload, else 0. */
  readonly headroom: number;
  /** 65535 with offload (GSO), else the MTU. */
  readonly maxPacketSize: number;
  /** The queue's file descriptor. */
  readonly fd: number;
  /** Every IPv4 header read is the kernel's (see the module comment). */
  readonly ipv4HeaderChecked = true;
  #counters = new Float64Array(10);
  #iov = new IoVecs(2);
  // The addresses of the caller's buffers, looked up again only when a buffer changes.
  #knownBufs: Uint8Array[] = [];
  #knownAddrs: number[] = [];
  #zeroHeader = new Uint8Array(16);
  #zeroHeaderAddr: number;
  #closed = false;
  #owned: boolean;
  // Two pollfds: the queue, then the doorbell (polled only while one is set).
  #pollfds = new Uint8Array(16);
  #pollCount = 1n;
  #pollRevents = new Int16Array(this.#pollfds.buffer);
  #bell: Doorbell | null = null;

  /** Wraps (and owns) an fd already attached to the TUN; use {@linkcode TunDevice.open}. */
  constructor(fd: number, name: string, mtu: number, offload: boolean, owned = true) {
    this.fd = fd;
    this.name = name;
    this.mtu = mtu;
    this.headroom = offload ? VIRTIO_NET_HDR_LEN : 0;
    this.maxPacketSize = offload ? MAX_IPV4_PACKET : mtu;
    this.#owned = owned;
    this.#zeroHeaderAddr = addressOf(this.#zeroHeader);
    const pfd = new DataView(this.#pollfds.buffer);
    pfd.setInt32(0, fd, true);
    pfd.setInt16(4, POLLIN, true);
    pfd.setInt32(8, -1, true);
    pfd.setInt16(12, POLLIN, true);
  }

  /**
   * Maps queue `fd` of a {@linkcode TunDevice} another Worker of this process
   * opened (see {@linkcode TunDevice.queueFds}; Workers share the process's
   * fd table), with the device's name, MTU and offload setting. The copy does
   * not own the fd: its `close` leaves it open, and the device closes it,
   * after every Worker reading it has stopped.
   */
  static fromFd(fd: number, name: string, mtu: number, offload: boolean): TunQueue {
    if (!Number.isInteger(fd) || fd < 0) {
      throw new RangeError(`Cannot map TUN queue fd ${fd} of "${name}": not a file descriptor`);
    }
    return new TunQueue(fd, name, mtu, offload, false);
  }

  /**
   * Has `wait` also wake when `bell` rings (another Worker handed this one
   * work), or, with null, only for packets again.
   */
  setDoorbell(bell: Doorbell | null): void {
    this.#bell = bell;
    new DataView(this.#pollfds.buffer).setInt32(8, bell === null ? -1 : bell.fd, true);
    this.#pollCount = bell === null ? 1n : 2n;
  }

  /**
   * Reads up to `bufs.length` packets without blocking; see {@linkcode Device.read}.
   * Each buffer should hold `offset + maxPacketSize` bytes: the kernel cuts a
   * packet that does not fit, and the cut packet is dropped (`truncated`).
   */
  read(bufs: Uint8Array[], sizes: Int32Array, meta: PacketMeta, offset: number): number {
    return this.readFrom(bufs, sizes, meta, offset, 0);
  }

  /** Like `read`, filling slots from `start` on; returns the number of packets read. */
  readFrom(
    bufs: Uint8Array[],
    sizes: Int32Array,
    meta: PacketMeta,
    offset: number,
    start: number,
  ): number {
    const hr = this.headroom;
    const at = offset - hr;
    const c = this.#counters;
    if (at < 0) return 0; // the contract requires offset >= headroom
    let i = start;
    // Dropped packets do not use a slot; bound the reads all the same.
    for (let tries = 0; i < bufs.length && tries < 2 * bufs.length; tries++) {
      const buf = bufs[i];
      const room = buf.length - at; // never hand the kernel more room than the buffer has
      if (room <= hr) break;
      this.#iov.set(0, this.#address(bufs, i) + at, room);
      const n = readv(this.fd, this.#iov.bytes, 1);
      if (n < 0) {
        if (n !== -EAGAIN) c[READ_ERRORS]++;
        break;
      }
      const size = n - hr;
      const version = size > 0 ? buf[offset] >> 4 : 0;
      if (version !== 4 && version !== 6) {
        c[NON_IP_DROPPED]++;
        continue;
      }
      // The kernel cuts a packet to the room given without saying so: compare the IPv4 total
      // length, or the IPv6 fixed header and payload length (read before the size is checked,
      // they are only compared).
      const length = version === 4
        ? (buf[offset + 2] << 8) | buf[offset + 3]
        : IPV6_HEADER_LEN + ((buf[offset + 4] << 8) | buf[offset + 5]);
      if (size < length) {
        c[TRUNCATED]++;
        continue;
      }
      if (version === 6) c[IPV6_PACKETS]++;
      sizes[i] = size;
      meta.csum[i] = hr === 0 ? CSUM_NONE : csumState(vnetFlags(buf, at));
      if (hr !== 0 && vnetGsoType(buf, at) !== VIRTIO_NET_HDR_GSO_NONE) c[GSO_PACKETS]++;
      c[READ_PACKETS]++;
      c[READ_BYTES] += size;
      i++;
    }
    return i - start;
  }

  /**
   * Writes `count` packets; see {@linkcode Device.write}. With offload, a
   * packet in state `CSUM_PARTIAL` or `CSUM_VALID` goes out behind the
   * virtio-net header its read left in the headroom: `NEEDS_CSUM` has the
   * kernel complete the checksum, and the GSO fields (of a partial packet)
   * have it segment; the kernel ignores `DATA_VALID` on write (module
   * comment), so a valid packet needs only its complete checksum, which NAT's
   * incremental update keeps. One in `CSUM_NONE` goes out behind a zero
   * header (complete, not GSO).
   */
  write(
    bufs: Uint8Array[],
    sizes: Int32Array,
    meta: PacketMeta,
    offset: number,
    count: number,
  ): number {
    const hr = this.headroom;
    const iov = this.#iov;
    const c = this.#counters;
    let written = 0;
    for (let i = 0; i < count; i++) {
      // Never let the kernel read outside the buffer.
      if (offset < hr || sizes[i] < 0 || offset + sizes[i] > bufs[i].length) {
        c[WRITE_ERRORS]++;
        continue;
      }
      const addr = this.#address(bufs, i) + offset;
      let parts = 1;
      if (hr === 0) {
        iov.set(0, addr, sizes[i]);
      } else {
        iov.set(0, meta.csum[i] === CSUM_NONE ? this.#zeroHeaderAddr : addr - hr, hr);
        iov.set(1, addr, sizes[i]);
        parts = 2;
      }
      if (writev(this.fd, iov.bytes, parts) < 0) {
        c[WRITE_ERRORS]++;
        continue;
      }
      c[WRITE_PACKETS]++;
      c[WRITE_BYTES] += sizes[i];
      written++;
    }
    return written;
  }

  /**
   * Blocks in poll(2) up to `timeoutMs`; true when a packet is readable or
   * the doorbell (see `setDoorbell`) rang, which it then drains.
   */
  wait(timeoutMs: number): boolean {
    const n = poll(this.#pollfds, this.#pollCount, timeoutMs);
    if (n <= 0) return false;
    // revents of the bell's pollfd (bytes 14..15); stale values are cleared by every poll.
    if (this.#bell !== null && this.#pollRevents[7] !== 0) this.#bell.drain();
    return true;
  }

  /** A snapshot of the counters. */
  stats(): TunStats {
    const c = this.#counters;
    return {
      readPackets: c[READ_PACKETS],
      ipv6Packets: c[IPV6_PACKETS],
      readBytes: c[READ_BYTES],
      readErrors: c[READ_ERRORS],
      writePackets: c[WRITE_PACKETS],
      writeBytes: c[WRITE_BYTES],
      writeErrors: c[WRITE_ERRORS],
      nonIpDropped: c[NON_IP_DROPPED],
      gsoPackets: c[GSO_PACKETS],
      truncated: c[TRUNCATED],
    };
  }

  /**
   * Closes the fd (the interface goes away with its last queue); a copy made
   * by `fromFd` leaves it open for the device (do not use the copy after).
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#owned) closeFd(this.fd);
  }

  /** The address of `bufs[i]`, cached per slot so steady-state batches do not allocate. */
  #address(bufs: Uint8Array[], i: number): number {
    const buf = bufs[i];
    if (this.#knownBufs[i] !== buf) {
      this.#knownBufs[i] = buf;
      this.#knownAddrs[i] = addressOf(buf);
    }
    return this.#knownAddrs[i];
  }
}

/**
 * A TUN device: one or more {@linkcode TunQueue}s on one interface. As a
 * {@linkcode Device} it reads from every queue in turn, writes through the
 * first and waits on all of them.
 */
export class TunDevice implements Device {
  /** Interface name (as the kernel assigned it). */
  readonly name: string;
  /** MTU of the interface. */
  readonly mtu: number;
  /** 10 (the virtio-net header) with offload, else 0. */
  readonly headroom: number;
  /** 65535 with offload (GSO), else the MTU. */
  readonly maxPacketSize: number;
  /** Every IPv4 header read is the kernel's (see the module comment). */
  readonly ipv4HeaderChecked = true;
  /**
   * The offloads the kernel accepted, such as `csum tso4 tso6 uso4 uso6`
   * (empty without offload; no `uso*` before Linux 6.2).
   */
  readonly offloads: readonly string[];
  #queues: TunQueue[];
  #pollfds: Uint8Array;
  #pollCount: bigint;
  #next = 0;

  private constructor(queues: TunQueue[], offloads: readonly string[]) {
    const q = queues[0];
    this.#queues = queues;
    this.offloads = offloads;
    this.name = q.name;
    this.mtu = q.mtu;
    this.headroom = q.headroom;
    this.maxPacketSize = q.maxPacketSize;
    this.#pollfds = new Uint8Array(8 * queues.length);
    this.#pollCount = BigInt(queues.length);
    const view = new DataView(this.#pollfds.buffer);
    queues.forEach((queue, i) => {
      view.setInt32(8 * i, queue.fd, true);
      view.setInt16(8 * i + 4, POLLIN, true);
    });
  }

  /**
   * Creates the TUN interface, negotiates offload, sets the MTU and brings
   * the link up. Throws an {@linkcode ErrnoError} when the kernel refuses.
   */
  static open(options: TunOptions): TunDevice {
    const queues = options.queues ?? 1;
    checkOptions(options, queues);
    let flags = IFF_TUN | IFF_NO_PI;
    if (options.offload) flags |= IFF_VNET_HDR;
    if (queues > 1) flags |= IFF_MULTI_QUEUE;
    const fds: number[] = [];
    try {
      let name = options.name;
      for (let q = 0; q < queues; q++) {
        const fd = openFile("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
        fds.push(fd);
        name = attach(fd, name, flags);
      }
      const offloads = options.offload ? enableOffload(fds[0], name) : [];
      configureLink(name, options.mtu, options.up ?? true);
      const qs = fds.map((fd) => new TunQueue(fd, name, options.mtu, options.offload));
      return new TunDevice(qs, offloads);
    } catch (e) {
      for (const fd of fds) closeFd(fd);
      throw e;
    }
  }

  /** The number of queues. */
  get queueCount(): number {
    return this.#queues.length;
  }

  /** Queue `i`, a Device of its own (for one reader per queue). */
  queue(i: number): TunQueue {
    const q = this.#queues[i];
    if (q === undefined) {
      throw new RangeError(`Cannot get queue ${i} of "${this.name}": it has ${this.queueCount}`);
    }
    return q;
  }

  /**
   * The queues' fds, in order, to post to the Workers that read them (each
   * maps its own with {@linkcode TunQueue.fromFd}). They stay this device's:
   * close it after those Workers stop.
   */
  queueFds(): number[] {
    return this.#queues.map((q) => q.fd);
  }

  /** Reads from every queue in turn, rotating the first; see {@linkcode Device.read}. */
  read(bufs: Uint8Array[], sizes: Int32Array, meta: PacketMeta, offset: number): number {
    const qs = this.#queues;
    if (qs.length === 1) return qs[0].readFrom(bufs, sizes, meta, offset, 0);
    let n = 0;
    for (let k = 0; k < qs.length && n < bufs.length; k++) {
      n += qs[(this.#next + k) % qs.length].readFrom(bufs, sizes, meta, offset, n);
    }
    this.#next = (this.#next + 1) % qs.length;
    return n;
  }

  /** Writes through the first queue; see {@linkcode TunQueue.write}. */
  write(
    bufs: Uint8Array[],
    sizes: Int32Array,
    meta: PacketMeta,
    offset: number,
    count: number,
  ): number {
    return this.#queues[0].write(bufs, sizes, meta, offset, count);
  }

  /** Blocks in poll(2) on every queue up to `timeoutMs`; true when one is readable. */
  wait(timeoutMs: number): boolean {
    return poll(this.#pollfds, this.#pollCount, timeoutMs) > 0;
  }

  /** The counters summed over the queues. */
  stats(): TunStats {
    return sumTunStats(this.#queues.map((q) => q.stats()));
  }

  /** Closes every queue; the interface disappears with the last one. */
  close(): void {
    for (const q of this.#queues) q.close();
  }
}

/** The field-by-field sum of TUN counters (several queues, or the queues several Workers used). */
export function sumTunStats(parts: readonly TunStats[]): TunStats {
  const sum = { ...parts[0] };
  for (const s of parts.slice(1)) {
    for (const k of Object.keys(sum) as (keyof TunStats)[]) sum[k] += s[k];
  }
  return sum;
}

function checkOptions(options: TunOptions, queues: number): void {
  const where = `Cannot open TUN "${options.name}"`;
  if (new TextEncoder().encode(options.name).length >= IFNAMSIZ) {
    throw new RangeError(`${where}: the name is longer than ${IFNAMSIZ - 1} bytes`);
  }
  if (!Number.isInteger(options.mtu) || options.mtu < 68 || options.mtu > MAX_IPV4_PACKET) {
    throw new RangeError(`${where}: MTU ${options.mtu} is out of range 68..${MAX_IPV4_PACKET}`);
  }
  if (!Number.isInteger(queues) || queues < 1 || queues > 256) {
    throw new RangeError(`${where}: ${queues} queues is out of range 1..256`);
  }
}

/** A zeroed `struct ifreq` naming `name`, with a view for its union. */
function ifreq(name: string): { bytes: Uint8Array; view: DataView } {
  const bytes = new Uint8Array(IFREQ_SIZE);
  new TextEncoder().encodeInto(name, bytes.subarray(0, IFNAMSIZ - 1));
  return { bytes, view: new DataView(bytes.buffer) };
}

/** TUNSETIFF: attaches `fd` to the interface; returns the name the kernel gave it. */
function attach(fd: number, name: string, flags: number): string {
  const req = ifreq(name);
  req.view.setUint16(IFNAMSIZ, flags, true);
  ioctlBuffer(fd, TUNSETIFF, req.bytes, `Cannot create TUN "${name}" (TUNSETIFF)`);
  const end = req.bytes.indexOf(0);
  return new TextDecoder().decode(req.bytes.subarray(0, end < 0 ? IFNAMSIZ : end));
}

/** The L4 checksum state of a read, from its virtio-net header's flags. */
function csumState(flags: number): number {
  if ((flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0) return CSUM_PARTIAL;
  return (flags & VIRTIO_NET_HDR_F_DATA_VALID) !== 0 ? CSUM_VALID : CSUM_NONE;
}

/** Offload bits a kernel may not know, with their names. */
export interface OptionalOffload {
  bits: number;
  names: string[];
}

/** UDP segmentation offload, Linux 6.2 on. */
const USO: OptionalOffload = { bits: TUN_F_USO4 | TUN_F_USO6, names: ["uso4", "uso6"] };

/**
 * Sets the virtio-net header size and turns on checksum and TSO offload with
 * `optional` (USO): a kernel refuses bits it does not know with EINVAL (USO
 * before 6.2), and then the rest goes on alone. Returns the names of the
 * offloads that are on. Exported for the fallback's test.
 */
export function enableOffload(fd: number, name: string, optional = USO): string[] {
  const size = new Uint8Array(4);
  new DataView(size.buffer).setInt32(0, VIRTIO_NET_HDR_LEN, true);
  ioctlBuffer(fd, TUNSETVNETHDRSZ, size, `Cannot set the vnet header size of "${name}"`);
  const base = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6, baseNames = ["csum", "tso4", "tso6"];
  const what = `Cannot enable offload on "${name}"`;
  try {
    ioctlValue(fd, TUNSETOFFLOAD, base | optional.bits, what);
    return [...baseNames, ...optional.names];
  } catch (e) {
    if (!(e instanceof ErrnoError) || e.errno !== EINVAL) throw e;
  }
  ioctlValue(fd, TUNSETOFFLOAD, base, what);
  return baseNames;
}

/** Sets the MTU, the transmit queue length and, if asked, the UP flag through ioctls on an AF_INET socket. */
function configureLink(name: string, mtu: number, up: boolean): void {
  const sock = openSocket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  try {
    const req = ifreq(name);
    req.view.setInt32(IFNAMSIZ, mtu, true);
    ioctlBuffer(sock, SIOCSIFMTU, req.bytes, `Cannot set the MTU of "${name}" to ${mtu}`);
    const qlen = ifreq(name);
    qlen.view.setInt32(IFNAMSIZ, TX_QUEUE_LEN, true);
    ioctlBuffer(sock, SIOCSIFTXQLEN, qlen.bytes, `Cannot set the queue length of "${name}"`);
    if (!up) return;
    const flags = ifreq(name);
    ioctlBuffer(sock, SIOCGIFFLAGS, flags.bytes, `Cannot read the flags of "${name}"`);
    flags.view.setUint16(IFNAMSIZ, flags.view.getUint16(IFNAMSIZ, true) | IFF_UP, true);
    ioctlBuffer(sock, SIOCSIFFLAGS, flags.bytes, `Cannot bring "${name}" up`);
  } finally {
    closeFd(sock);
  }
}
