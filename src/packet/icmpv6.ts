/**
 * A zero-copy, reusable view over an ICMPv6 message (RFC 4443), bound to the
 * upper-layer bytes an `Ipv6Packet` walk found. Unlike ICMPv4, its checksum
 * covers the IPv6 pseudo header, so `check` takes that sum.
 *
 * Neighbour discovery (RFC 4861) and multicast listener discovery (RFC 2710,
 * RFC 3810) are link-local control traffic the kernel's own stack answers:
 * `isNeighbourDiscovery()` and `isMulticastListener()` let the data path hand
 * them over untouched instead of gating or translating them.
 */

import { read16, read32, write16, write32 } from "./bytes.ts";
import { checksumAdd, checksumFold } from "./checksum.ts";
import { ParseError } from "./parse_error.ts";

/** Offset of the type byte. */
export const ICMPV6_TYPE = 0;
/** Offset of the code byte. */
export const ICMPV6_CODE = 1;
/** Offset of the 16-bit checksum. */
export const ICMPV6_CHECKSUM = 2;
/** Offset of the echo identifier. */
export const ICMPV6_IDENT = 4;
/** Offset of the echo sequence number. */
export const ICMPV6_SEQ = 6;
/** Offset of the 32-bit MTU of "packet too big". */
export const ICMPV6_MTU = 4;
/** Offset of the 32-bit pointer of "parameter problem". */
export const ICMPV6_POINTER = 4;
/** Length of the header (type, code, checksum, 4 bytes of message body). */
export const ICMPV6_HEADER_LEN = 8;

/** Error type: destination unreachable. */
export const ICMPV6_DEST_UNREACHABLE = 1;
/** Error type: packet too big (path MTU discovery, RFC 8201). */
export const ICMPV6_PACKET_TOO_BIG = 2;
/** Error type: time exceeded (hop limit, or fragment reassembly). */
export const ICMPV6_TIME_EXCEEDED = 3;
/** Error type: parameter problem. */
export const ICMPV6_PARAM_PROBLEM = 4;
/** Informational type: echo request. */
export const ICMPV6_ECHO_REQUEST = 128;
/** Informational type: echo reply. */
export const ICMPV6_ECHO_REPLY = 129;
/** MLD: multicast listener query. */
export const ICMPV6_MLD_QUERY = 130;
/** MLD: version 1 report. */
export const ICMPV6_MLD_REPORT = 131;
/** MLD: version 1 done. */
export const ICMPV6_MLD_DONE = 132;
/** ND: router solicitation. */
export const ICMPV6_ROUTER_SOLICIT = 133;
/** ND: router advertisement. */
export const ICMPV6_ROUTER_ADVERT = 134;
/** ND: neighbour solicitation. */
export const ICMPV6_NEIGHBOR_SOLICIT = 135;
/** ND: neighbour advertisement. */
export const ICMPV6_NEIGHBOR_ADVERT = 136;
/** ND: redirect. */
export const ICMPV6_REDIRECT = 137;
/** MLD: version 2 report (RFC 3810). */
export const ICMPV6_MLD2_REPORT = 143;

/** Destination unreachable code: no route to destination. */
export const ICMPV6_CODE_NO_ROUTE = 0;
/** Destination unreachable code: administratively prohibited. */
export const ICMPV6_CODE_ADMIN_PROHIBITED = 1;
/** Destination unreachable code: address unreachable. */
export const ICMPV6_CODE_ADDR_UNREACHABLE = 3;
/** Destination unreachable code: port unreachable. */
export const ICMPV6_CODE_PORT_UNREACHABLE = 4;
/** Time exceeded code: hop limit exceeded in transit. */
export const ICMPV6_CODE_HOP_LIMIT = 0;
/** Time exceeded code: fragment reassembly time exceeded. */
export const ICMPV6_CODE_REASSEMBLY = 1;

/** The hop limit every neighbour discovery message must carry (RFC 4861 §6.1.1, §7.1.1). */
export const ND_HOP_LIMIT = 255;

/** True for the error types (0..127, RFC 4443 §2.1), which embed the offending packet. */
export function isIcmpv6ErrorType(type: number): boolean {
  return type < 128;
}

/** True for the neighbour discovery types, router solicitation to redirect (RFC 4861 §4). */
export function isNdType(type: number): boolean {
  return type >= ICMPV6_ROUTER_SOLICIT && type <= ICMPV6_REDIRECT;
}

/** True for the multicast listener discovery types (MLDv1 query, report, done; MLDv2 report). */
export function isMldType(type: number): boolean {
  return (type >= ICMPV6_MLD_QUERY && type <= ICMPV6_MLD_DONE) || type === ICMPV6_MLD2_REPORT;
}

/** A reusable view over an ICMPv6 message at `buf[off..off+len)`. */
export class Icmpv6Packet {
  /** The underlying buffer. */
  buf: Uint8Array = new Uint8Array(0);
  /** Offset of the ICMPv6 header in `buf`. */
  off = 0;
  /** Message length (header + body), the IPv6 upper-layer length. */
  len = 0;

  /** Points the view at `buf[off..off+len)`; returns `this`. */
  bind(buf: Uint8Array, off = 0, len = buf.length - off): this {
    this.buf = buf;
    this.off = off;
    this.len = len;
    return this;
  }

  /**
   * Validates the length and the checksum, given the unfolded pseudo-header
   * sum (`Ipv6Packet.pseudoHeaderSum()`). A fragment's checksum covers the
   * reassembled datagram, so fragmented ICMPv6 cannot be checked this way.
   */
  check(pseudoSum: number): ParseError {
    if (this.len < ICMPV6_HEADER_LEN) return ParseError.Truncated;
    return this.verifyChecksum(pseudoSum) ? ParseError.None : ParseError.BadL4Checksum;
  }

  /** True when the checksum verifies over the pseudo header and `len` bytes. */
  verifyChecksum(pseudoSum: number): boolean {
    return this.#sum(pseudoSum) === 0xffff;
  }

  /** Recomputes the checksum over the pseudo header and `len` bytes. */
  fillChecksum(pseudoSum: number): void {
    this.setChecksum(0);
    this.setChecksum(~this.#sum(pseudoSum) & 0xffff);
  }

  #sum(pseudoSum: number): number {
    return checksumFold(checksumAdd(pseudoSum, this.buf, this.off, this.off + this.len));
  }

  /** Message type. */
  type(): number {
    return this.buf[this.off + ICMPV6_TYPE] | 0;
  }

  /** Message code. */
  code(): number {
    return this.buf[this.off + ICMPV6_CODE] | 0;
  }

  /** Checksum field. */
  checksum(): number {
    return read16(this.buf, this.off + ICMPV6_CHECKSUM);
  }

  /** Echo identifier (bytes 4..5). */
  ident(): number {
    return read16(this.buf, this.off + ICMPV6_IDENT);
  }

  /** Echo sequence number (bytes 6..7). */
  seqNo(): number {
    return read16(this.buf, this.off + ICMPV6_SEQ);
  }

  /** The MTU of "packet too big" (bytes 4..7). */
  mtu(): number {
    return read32(this.buf, this.off + ICMPV6_MTU);
  }

  /** The pointer of "parameter problem" (bytes 4..7): the offending byte's offset in the quoted packet. */
  pointer(): number {
    return read32(this.buf, this.off + ICMPV6_POINTER);
  }

  /** True for echo request and echo reply. */
  isEcho(): boolean {
    const t = this.type();
    return t === ICMPV6_ECHO_REQUEST || t === ICMPV6_ECHO_REPLY;
  }

  /** True for an error message, which embeds as much of the offending packet as fits in 1280 bytes. */
  isError(): boolean {
    return isIcmpv6ErrorType(this.type());
  }

  /** True for neighbour discovery (router and neighbour solicitation and advertisement, redirect). */
  isNeighbourDiscovery(): boolean {
    return isNdType(this.type());
  }

  /** True for multicast listener discovery. */
  isMulticastListener(): boolean {
    return isMldType(this.type());
  }

  /** Absolute index in `buf` of the embedded IPv6 header of an error (off + 8). */
  embeddedOffset(): number {
    return this.off + ICMPV6_HEADER_LEN;
  }

  /** Absolute index in `buf` of the bytes after the 8-byte header. */
  payloadOffset(): number {
    return this.off + ICMPV6_HEADER_LEN;
  }

  /** Bytes after the 8-byte header (the embedded packet, echo data, or ND fields and options). */
  payloadLen(): number {
    return Math.max(0, this.len - ICMPV6_HEADER_LEN);
  }

  /** Sets the type. */
  setType(t: number): void {
    this.buf[this.off + ICMPV6_TYPE] = t;
  }

  /** Sets the code. */
  setCode(c: number): void {
    this.buf[this.off + ICMPV6_CODE] = c;
  }

  /** Sets the echo identifier (the checksum is not updated). */
  setIdent(n: number): void {
    write16(this.buf, this.off + ICMPV6_IDENT, n);
  }

  /** Sets the echo sequence number (the checksum is not updated). */
  setSeqNo(n: number): void {
    write16(this.buf, this.off + ICMPV6_SEQ, n);
  }

  /** Sets bytes 4..7: the MTU, the pointer, or 0 (the checksum is not updated). */
  setRest(n: number): void {
    write32(this.buf, this.off + ICMPV6_MTU, n);
  }

  /** Sets the checksum field. */
  setChecksum(n: number): void {
    write16(this.buf, this.off + ICMPV6_CHECKSUM, n);
  }

  /** One line, such as `ICMPv6 type=128 code=0 echo id=1 seq=7 len=56`. */
  toString(): string {
    if (this.len < ICMPV6_HEADER_LEN) return `ICMPv6 [truncated] buflen=${this.len}`;
    const t = this.type();
    const kind = this.isEcho()
      ? ` echo id=${this.ident()} seq=${this.seqNo()}`
      : t === ICMPV6_PACKET_TOO_BIG
      ? ` error mtu=${this.mtu()}`
      : t === ICMPV6_PARAM_PROBLEM
      ? ` error pointer=${this.pointer()}`
      : this.isError()
      ? " error"
      : this.isNeighbourDiscovery()
      ? " nd"
      : this.isMulticastListener()
      ? " mld"
      : "";
    return `ICMPv6 type=${t} code=${this.code()}${kind} len=${this.payloadLen()}`;
  }
}
