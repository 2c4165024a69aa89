/**
 * NAT header rewrite with incremental checksums (RFC 1624), in place on a
 * packet buffer. Hot path: no allocation, no throw. Every function takes the
 * buffer and the offset of the IPv4 header and trusts that the datapath has
 * already checked the packet (`Ipv4Packet.check()`); lengths are still read
 * from the IPv4 header so that a short L4 header is never written past.
 *
 * "Port" means the TCP/UDP port, or the identifier of an ICMP echo (one field
 * serves both directions, so source and destination rewrites both set it).
 */

import {
  checksumAdjust16,
  checksumAdjust32,
  ICMP_CHECKSUM,
  ICMP_ECHO_REPLY,
  ICMP_ECHO_REQUEST,
  ICMP_HEADER_LEN,
  ICMP_IDENT,
  internetChecksum,
  IPV4_CHECKSUM,
  IPV4_DST,
  IPV4_FLAGS_FRAG,
  IPV4_FRAG_MASK,
  IPV4_HEADER_LEN,
  IPV4_PROTOCOL,
  IPV4_SRC,
  IPV4_TOTAL_LEN,
  isIcmpErrorType,
  PROTO_ICMP,
  PROTO_TCP,
  PROTO_UDP,
  read16,
  read32,
  sumAdjust32,
  TCP_CHECKSUM,
  TCP_DST_PORT,
  TCP_HEADER_LEN,
  TCP_SRC_PORT,
  UDP_CHECKSUM,
  UDP_HEADER_LEN,
  write16,
  write32,
} from "../packet/mod.ts";

// TCP and UDP keep their ports at the same offsets (0 and 2).
const SRC_PORT = TCP_SRC_PORT;
const DST_PORT = TCP_DST_PORT;

/**
 * Rewrites the source address to `newAddr` and the source port (TCP/UDP) or
 * echo identifier (ICMP echo) to `newPort`, updating the IPv4 header checksum
 * and the L4 checksum incrementally.
 *
 * - A non-first fragment has no L4 header: only the IPv4 header changes (the
 *   first fragment's L4 checksum covers the whole datagram).
 * - A UDP checksum of 0 (none) stays 0.
 * - `csumPartial` (virtio `NEEDS_CSUM`): the L4 checksum field holds the
 *   non-inverted pseudo-header sum; only the address change is folded into it,
 *   since the kernel sums the (rewritten) ports itself.
 * - ICMP messages other than echo: only the IPv4 header changes (`newPort` is
 *   ignored); see {@link rewriteIcmpErrorInner} for the embedded packet.
 *
 * Returns false when the TCP/UDP/ICMP echo header is cut short (a tiny first
 * fragment, RFC 1858): only the IPv4 header was rewritten and the datagram's
 * L4 checksum is now stale, so the caller should drop the packet. True otherwise.
 */
export function rewriteSource(
  buf: Uint8Array,
  ipOff: number,
  newAddr: number,
  newPort: number,
  csumPartial: boolean,
): boolean {
  return rewriteAddrPort(buf, ipOff, IPV4_SRC, SRC_PORT, newAddr >>> 0, newPort, csumPartial);
}

/**
 * Rewrites the destination address and the destination port (or ICMP echo
 * identifier); otherwise as {@link rewriteSource}.
 */
export function rewriteDestination(
  buf: Uint8Array,
  ipOff: number,
  newAddr: number,
  newPort: number,
  csumPartial: boolean,
): boolean {
  return rewriteAddrPort(buf, ipOff, IPV4_DST, DST_PORT, newAddr >>> 0, newPort, csumPartial);
}

/** Header length in bytes of the IPv4 header at `ip`. */
function ihl(buf: Uint8Array, ip: number): number {
  return (buf[ip] & 0x0f) << 2;
}

/** True for a non-first fragment (non-zero offset): it has no L4 header. */
function isLaterFragment(buf: Uint8Array, ip: number): boolean {
  return (read16(buf, ip + IPV4_FLAGS_FRAG) & IPV4_FRAG_MASK) !== 0;
}

/** True for ICMP echo request and reply, whose identifier NAT treats as a port. */
function isEcho(type: number): boolean {
  return type === ICMP_ECHO_REQUEST || type === ICMP_ECHO_REPLY;
}

/** Writes the 32-bit address at `at` and returns the old one; fixes the IP checksum. */
function swapAddress(buf: Uint8Array, ip: number, at: number, addr: number): number {
  const old = read32(buf, ip + at);
  write32(buf, ip + at, addr);
  write16(buf, ip + IPV4_CHECKSUM, checksumAdjust32(read16(buf, ip + IPV4_CHECKSUM), old, addr));
  return old;
}

function rewriteAddrPort(
  buf: Uint8Array,
  ip: number,
  addrAt: number,
  portAt: number,
  addr: number,
  port: number,
  partial: boolean,
): boolean {
  const oldAddr = swapAddress(buf, ip, addrAt, addr);
  if (isLaterFragment(buf, ip)) return true;
  const hl = ihl(buf, ip);
  const l4 = ip + hl;
  const l4Len = read16(buf, ip + IPV4_TOTAL_LEN) - hl;
  switch (buf[ip + IPV4_PROTOCOL]) {
    case PROTO_TCP:
      if (l4Len < TCP_HEADER_LEN) return false;
      rewriteL4(buf, l4 + portAt, l4 + TCP_CHECKSUM, false, oldAddr, addr, port, partial);
      return true;
    case PROTO_UDP:
      if (l4Len < UDP_HEADER_LEN) return false;
      rewriteL4(buf, l4 + portAt, l4 + UDP_CHECKSUM, true, oldAddr, addr, port, partial);
      return true;
    case PROTO_ICMP:
      if (l4Len < ICMP_HEADER_LEN) return false;
      // The ICMP checksum has no pseudo header: only the echo identifier counts.
      if (!isEcho(buf[l4])) return true;
      setChecked16(buf, l4 + ICMP_IDENT, l4 + ICMP_CHECKSUM, port);
      // RFC 1624 eqn 3 yields 0x0000 for an all-zero message, whose checksum is 0xFFFF
      // (+0 and -0 look alike); only then, rarely, sum the message again.
      if (read16(buf, l4 + ICMP_CHECKSUM) === 0) {
        write16(buf, l4 + ICMP_CHECKSUM, internetChecksum(buf, l4, l4 + l4Len));
      }
      return true;
    default:
      return true;
  }
}

/** Writes a 16-bit word covered by the checksum at `csumAt`, adjusting it. */
function setChecked16(buf: Uint8Array, at: number, csumAt: number, word: number): void {
  const old = read16(buf, at);
  write16(buf, at, word);
  write16(buf, csumAt, checksumAdjust16(read16(buf, csumAt), old, word));
}

function rewriteL4(
  buf: Uint8Array,
  portAt: number,
  csumAt: number,
  udp: boolean,
  oldAddr: number,
  addr: number,
  port: number,
  partial: boolean,
): void {
  const oldPort = read16(buf, portAt);
  write16(buf, portAt, port);
  const c = read16(buf, csumAt);
  if (partial) {
    // NEEDS_CSUM: the field is the pseudo-header sum; the kernel adds the ports.
    write16(buf, csumAt, sumAdjust32(c, oldAddr, addr));
    return;
  }
  if (udp && c === 0) return; // UDP checksum 0 = none: keep it absent
  const n = checksumAdjust16(checksumAdjust32(c, oldAddr, addr), oldPort, port);
  write16(buf, csumAt, udp && n === 0 ? 0xffff : n); // RFC 768: a computed 0 is sent as 0xFFFF
}

/**
 * Rewrites the packet embedded in an ICMP error (destination unreachable,
 * time exceeded, ...): the inner IPv4 source and destination and the inner
 * ports (or echo identifier). Fixes the inner IPv4 header checksum, the inner
 * L4 checksum when its bytes are present (UDP always within the 8 bytes; TCP
 * only if the error quotes 18 or more bytes), and the outer ICMP checksum,
 * all incrementally. The outer IPv4 header is left to
 * {@link rewriteSource}/{@link rewriteDestination}.
 *
 * Pass the values the inner header must carry after translation (unchanged
 * fields as they are). For example, an error from the Internet about a reply
 * the appliance sent as `W:wp > C:cp` (server `S:sp` behind DNAT): call
 * `rewriteDestination(buf, off, S, 0, false)` on the outer header, then
 * `rewriteIcmpErrorInnerSource(buf, off, S, sp)`.
 *
 * Returns false (changing nothing) when the packet is not an ICMP error with
 * an embedded IPv4 header that fits.
 */
export function rewriteIcmpErrorInner(
  buf: Uint8Array,
  ipOff: number,
  innerSrcAddr: number,
  innerSrcPort: number,
  innerDstAddr: number,
  innerDstPort: number,
): boolean {
  return rewriteIcmpErrorInnerSource(buf, ipOff, innerSrcAddr, innerSrcPort) &&
    rewriteIcmpErrorInnerDestination(buf, ipOff, innerDstAddr, innerDstPort);
}

/** Rewrites the embedded packet's source address and port; see {@link rewriteIcmpErrorInner}. */
export function rewriteIcmpErrorInnerSource(
  buf: Uint8Array,
  ipOff: number,
  addr: number,
  port: number,
): boolean {
  return rewriteInner(buf, ipOff, IPV4_SRC, SRC_PORT, addr >>> 0, port);
}

/** Rewrites the embedded packet's destination address and port; see {@link rewriteIcmpErrorInner}. */
export function rewriteIcmpErrorInnerDestination(
  buf: Uint8Array,
  ipOff: number,
  addr: number,
  port: number,
): boolean {
  return rewriteInner(buf, ipOff, IPV4_DST, DST_PORT, addr >>> 0, port);
}

/**
 * Absolute offset of the IPv4 header embedded in the ICMP error at `ipOff`,
 * or -1 when the packet is not an ICMP error whose embedded header fits.
 */
export function icmpErrorInnerOffset(buf: Uint8Array, ipOff: number): number {
  if (buf[ipOff + IPV4_PROTOCOL] !== PROTO_ICMP || isLaterFragment(buf, ipOff)) return -1;
  const end = ipOff + read16(buf, ipOff + IPV4_TOTAL_LEN);
  const icmp = ipOff + ihl(buf, ipOff);
  if (end - icmp < ICMP_HEADER_LEN || !isIcmpErrorType(buf[icmp])) return -1;
  const inner = icmp + ICMP_HEADER_LEN;
  if (end - inner < IPV4_HEADER_LEN || buf[inner] >>> 4 !== 4) return -1;
  const innerHl = ihl(buf, inner);
  return innerHl < IPV4_HEADER_LEN || inner + innerHl > end ? -1 : inner;
}

function rewriteInner(
  buf: Uint8Array,
  ip: number,
  addrAt: number,
  portAt: number,
  addr: number,
  port: number,
): boolean {
  const inner = icmpErrorInnerOffset(buf, ip);
  if (inner < 0) return false;
  const icmpCsumAt = ip + ihl(buf, ip) + ICMP_CHECKSUM;
  const end = ip + read16(buf, ip + IPV4_TOTAL_LEN);
  // The outer ICMP checksum covers every inner byte that changes, the inner
  // IPv4 checksum field included, so each change is folded into it too.
  const oldIpCsum = read16(buf, inner + IPV4_CHECKSUM);
  const oldAddr = swapAddress(buf, inner, addrAt, addr);
  let ic = checksumAdjust32(read16(buf, icmpCsumAt), oldAddr, addr);
  ic = checksumAdjust16(ic, oldIpCsum, read16(buf, inner + IPV4_CHECKSUM));
  if (!isLaterFragment(buf, inner)) {
    ic = rewriteInnerL4(buf, inner, end, portAt, oldAddr, addr, port, ic);
  }
  write16(buf, icmpCsumAt, ic);
  return true;
}

/** Rewrites the inner L4 port/ident and checksum if present; returns the new outer ICMP checksum. */
function rewriteInnerL4(
  buf: Uint8Array,
  inner: number,
  end: number,
  portAt: number,
  oldAddr: number,
  addr: number,
  port: number,
  ic: number,
): number {
  const l4 = inner + ihl(buf, inner);
  const avail = end - l4;
  switch (buf[inner + IPV4_PROTOCOL]) {
    case PROTO_TCP:
      return innerPortAndSum(buf, l4, avail, portAt, TCP_CHECKSUM, false, oldAddr, addr, port, ic);
    case PROTO_UDP:
      return innerPortAndSum(buf, l4, avail, portAt, UDP_CHECKSUM, true, oldAddr, addr, port, ic);
    case PROTO_ICMP: {
      if (avail < ICMP_HEADER_LEN || !isEcho(buf[l4])) return ic;
      const oldIdent = read16(buf, l4 + ICMP_IDENT);
      const oldSum = read16(buf, l4 + ICMP_CHECKSUM);
      setChecked16(buf, l4 + ICMP_IDENT, l4 + ICMP_CHECKSUM, port);
      ic = checksumAdjust16(ic, oldIdent, port);
      return checksumAdjust16(ic, oldSum, read16(buf, l4 + ICMP_CHECKSUM));
    }
    default:
      return ic;
  }
}

function innerPortAndSum(
  buf: Uint8Array,
  l4: number,
  avail: number,
  portAt: number,
  csumOff: number,
  udp: boolean,
  oldAddr: number,
  addr: number,
  port: number,
  ic: number,
): number {
  if (avail < 4) return ic; // both ports sit in the first 4 bytes
  const oldPort = read16(buf, l4 + portAt);
  write16(buf, l4 + portAt, port);
  ic = checksumAdjust16(ic, oldPort, port);
  if (avail < csumOff + 2) return ic; // the quoted bytes stop before the L4 checksum
  const oldSum = read16(buf, l4 + csumOff);
  if (udp && oldSum === 0) return ic;
  let sum = checksumAdjust16(checksumAdjust32(oldSum, oldAddr, addr), oldPort, port);
  if (udp && sum === 0) sum = 0xffff;
  write16(buf, l4 + csumOff, sum);
  return checksumAdjust16(ic, oldSum, sum);
}
