/**
 * A zero-copy, reusable view over a UDP datagram (RFC 768), bound to the IPv4
 * payload or the IPv6 upper-layer bytes.
 */

import { read16, write16 } from "./bytes.ts";
import { checksumAdd, checksumFold, pseudoHeaderSum } from "./checksum.ts";
import { PROTO_UDP } from "./ipv4.ts";
import { ParseError, parseErrorName } from "./parse_error.ts";

/** Offset of the 16-bit source port. */
export const UDP_SRC_PORT = 0;
/** Offset of the 16-bit destination port. */
export const UDP_DST_PORT = 2;
/** Offset of the 16-bit length (header + data). */
export const UDP_LENGTH = 4;
/** Offset of the 16-bit checksum (0 = none). */
export const UDP_CHECKSUM = 6;
/** Length of the header. */
export const UDP_HEADER_LEN = 8;

/** A reusable view over a UDP datagram at `buf[off..off+len)`. */
export class UdpPacket {
  /** The underlying buffer. */
  buf: Uint8Array = new Uint8Array(0);
  /** Offset of the UDP header in `buf`. */
  off = 0;
  /** Bytes available, normally the IPv4 payload length (may exceed `length()`). */
  len = 0;

  /** Points the view at `buf[off..off+len)`; returns `this`. */
  bind(buf: Uint8Array, off = 0, len = buf.length - off): this {
    this.buf = buf;
    this.off = off;
    this.len = len;
    return this;
  }

  /** Validates the lengths; after `None`, no getter reads outside the view. */
  check(): ParseError {
    if (this.len < UDP_HEADER_LEN) return ParseError.Truncated;
    const n = this.length();
    if (n < UDP_HEADER_LEN || n > this.len) return ParseError.BadL4Len;
    return ParseError.None;
  }

  /**
   * Over IPv6: `check()`, and then a zero checksum is refused whatever the
   * device said about it (RFC 8200 §8.1 makes the checksum mandatory).
   */
  check6(): ParseError {
    const err = this.check();
    if (err !== ParseError.None) return err;
    return this.checksum() === 0 ? ParseError.Ipv6UdpZeroChecksum : ParseError.None;
  }

  /** Source port. */
  srcPort(): number {
    return read16(this.buf, this.off + UDP_SRC_PORT);
  }

  /** Destination port. */
  dstPort(): number {
    return read16(this.buf, this.off + UDP_DST_PORT);
  }

  /** The length field: header plus data in bytes. */
  length(): number {
    return read16(this.buf, this.off + UDP_LENGTH);
  }

  /** Checksum field; 0 means the sender computed none. */
  checksum(): number {
    return read16(this.buf, this.off + UDP_CHECKSUM);
  }

  /** Absolute index in `buf` of the data. */
  payloadOffset(): number {
    return this.off + UDP_HEADER_LEN;
  }

  /** Data length per the length field, never negative. */
  payloadLen(): number {
    return Math.max(0, this.length() - UDP_HEADER_LEN);
  }

  /** Sets the source port (the checksum is not updated). */
  setSrcPort(port: number): void {
    write16(this.buf, this.off + UDP_SRC_PORT, port);
  }

  /** Sets the destination port (the checksum is not updated). */
  setDstPort(port: number): void {
    write16(this.buf, this.off + UDP_DST_PORT, port);
  }

  /** Sets the length field. */
  setLength(n: number): void {
    write16(this.buf, this.off + UDP_LENGTH, n);
  }

  /** Sets the checksum field. */
  setChecksum(n: number): void {
    write16(this.buf, this.off + UDP_CHECKSUM, n);
  }

  /** True when the checksum is absent (0) or verifies over the length field's bytes. */
  verifyChecksum(srcAddr: number, dstAddr: number): boolean {
    return this.checksum() === 0 || this.#sum(srcAddr, dstAddr) === 0xffff;
  }

  /** Computes and stores the checksum; a computed 0 is sent as 0xFFFF (RFC 768). */
  fillChecksum(srcAddr: number, dstAddr: number): void {
    this.setChecksum(0);
    this.setChecksum(~this.#sum(srcAddr, dstAddr) & 0xffff || 0xffff);
  }

  #sum(srcAddr: number, dstAddr: number): number {
    return this.#sumFrom(pseudoHeaderSum(srcAddr, dstAddr, PROTO_UDP, this.length()));
  }

  /**
   * Over IPv6: true when the checksum verifies with `Ipv6Packet.pseudoHeaderSum()`.
   * A zero checksum never does: RFC 8200 §8.1 makes it mandatory (the RFC 6935
   * tunnel exception is not ours); see `ParseError.Ipv6UdpZeroChecksum`.
   */
  verifyChecksum6(pseudoSum: number): boolean {
    return this.checksum() !== 0 && this.#sumFrom(pseudoSum) === 0xffff;
  }

  /** Over IPv6: computes and stores the checksum; a computed 0 is sent as 0xFFFF. */
  fillChecksum6(pseudoSum: number): void {
    this.setChecksum(0);
    this.setChecksum(~this.#sumFrom(pseudoSum) & 0xffff || 0xffff);
  }

  /** Sums over the length field's bytes: the pseudo header's length must be the same. */
  #sumFrom(pseudoSum: number): number {
    return checksumFold(checksumAdd(pseudoSum, this.buf, this.off, this.off + this.length()));
  }

  /** One line, such as `UDP 5353 > 53 len=40`. */
  toString(): string {
    const err = this.check();
    if (err !== ParseError.None) return `UDP [${parseErrorName(err)}] buflen=${this.len}`;
    return `UDP ${this.srcPort()} > ${this.dstPort()} len=${this.payloadLen()}`;
  }
}
