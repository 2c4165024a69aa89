/**
 * NAT66 header rewrite, in place: an IPv6 address (and the port or echo
 * identifier beside it) replaced, with the L4 checksum updated incrementally
 * through the pseudo header (RFC 1624 over the address's eight words; IPv6
 * has no header checksum). The caller has checked the packet
 * (`Ipv6Packet.check()`): `l4` and `l4Len` are the walk's upper layer.
 * Hot path: no allocation, no throw.
 */
import {
  checksumAdjust128,
  checksumAdjust16,
  ICMPV6_CHECKSUM,
  ICMPV6_ECHO_REPLY,
  ICMPV6_ECHO_REQUEST,
  ICMPV6_IDENT,
  PROTO_ICMPV6,
  PROTO_TCP,
  PROTO_UDP,
  read16,
  readIpv6,
  sumAdjust128,
  TCP_CHECKSUM,
  TCP_HEADER_LEN,
  UDP_CHECKSUM,
  UDP_HEADER_LEN,
  write16,
  writeIpv6,
} from "../packet/mod.ts";

/** Offsets of the addresses in the IPv6 header. */
export const IPV6_SRC_AT = 8, IPV6_DST_AT = 24;

const old = new Uint32Array(4);

/**
 * Writes `words[at..at+4)` as the address at `ip + addrAt` (IPV6_SRC_AT or
 * IPV6_DST_AT) and `port` as the source or destination port (TCP/UDP; the
 * identifier of an ICMPv6 echo, either side), folding both changes into the
 * upper layer's checksum at `l4` (`l4Len` bytes of it present; 0 for a later
 * fragment, which has only its addresses). `partial` (NEEDS_CSUM): the field
 * holds the pseudo-header sum, only the address is folded in. False when the
 * upper-layer header is cut short (the checksum is then stale: drop it).
 */
export function rewrite6(
  buf: Uint8Array,
  ip: number,
  addrAt: number,
  words: ArrayLike<number>,
  at: number,
  port: number,
  proto: number,
  l4: number,
  l4Len: number,
  partial: boolean,
): boolean {
  readIpv6(buf, ip + addrAt, old);
  writeIpv6(buf, ip + addrAt, words, at);
  if (l4Len === 0) return true;
  const portAt = addrAt === IPV6_SRC_AT ? 0 : 2;
  if (proto === PROTO_TCP || proto === PROTO_UDP) {
    const udp = proto === PROTO_UDP;
    if (l4Len < (udp ? UDP_HEADER_LEN : TCP_HEADER_LEN)) return false;
    const csumAt = l4 + (udp ? UDP_CHECKSUM : TCP_CHECKSUM);
    const oldPort = read16(buf, l4 + portAt);
    write16(buf, l4 + portAt, port);
    const c = read16(buf, csumAt);
    if (partial) {
      write16(buf, csumAt, sumAdjust128(c, old, 0, words, at));
      return true;
    }
    const n = checksumAdjust16(checksumAdjust128(c, old, 0, words, at), oldPort, port);
    write16(buf, csumAt, udp && n === 0 ? 0xffff : n); // UDP over IPv6: 0 is never sent
    return true;
  }
  if (proto === PROTO_ICMPV6) {
    if (l4Len < 8) return false;
    // The ICMPv6 checksum covers the pseudo header: the address counts, and an echo's identifier.
    let c = checksumAdjust128(read16(buf, l4 + ICMPV6_CHECKSUM), old, 0, words, at);
    const type = buf[l4];
    if (type === ICMPV6_ECHO_REQUEST || type === ICMPV6_ECHO_REPLY) {
      const oldId = read16(buf, l4 + ICMPV6_IDENT);
      write16(buf, l4 + ICMPV6_IDENT, port);
      c = checksumAdjust16(c, oldId, port);
    }
    write16(buf, l4 + ICMPV6_CHECKSUM, c);
    return true;
  }
  return true;
}

/**
 * Rewrites the address at `addrOff` (absolute) and the port at `portOff`
 * (absolute; -1: none) of a packet quoted by an ICMPv6 error, with its L4
 * checksum at `csumOff` (-1: not within the quoted bytes) adjusted. The
 * caller sums the error's own checksum again afterwards.
 */
export function rewriteQuoted6(
  buf: Uint8Array,
  addrOff: number,
  words: ArrayLike<number>,
  at: number,
  portOff: number,
  port: number,
  csumOff: number,
): void {
  readIpv6(buf, addrOff, old);
  writeIpv6(buf, addrOff, words, at);
  let oldPort = port;
  if (portOff >= 0) {
    oldPort = read16(buf, portOff);
    write16(buf, portOff, port);
  }
  if (csumOff < 0) return;
  const c = read16(buf, csumOff);
  if (c === 0) return; // a quoted UDP checksum of 0 is someone else's problem: leave it
  write16(buf, csumOff, checksumAdjust16(checksumAdjust128(c, old, 0, words, at), oldPort, port));
}
