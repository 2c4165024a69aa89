/**
 * A zero-copy, reusable view over an IPv4 header (RFC 791), after smoltcp's
 * `wire::ipv4::Packet`. Bind it to bytes, `check()` once, then read fields.
 */

import { read16, read32, write16, write32 } from "./bytes.ts";
import { formatIpv4 } from "./address.ts";
import { internetChecksum } from "./checksum.ts";
import { ParseError, parseErrorName } from "./parse_error.ts";

/** Offset of the version (high nibble) and IHL (low nibble) byte. */
export const IPV4_VER_IHL = 0;
/** Offset of the DSCP/ECN byte. */
export const IPV4_DSCP_ECN = 1;
/** Offset of the 16-bit total length. */
export const IPV4_TOTAL_LEN = 2;
/** Offset of the 16-bit identification. */
export const IPV4_IDENT = 4;
/** Offset of the 16-bit flags + fragment offset word. */
export const IPV4_FLAGS_FRAG = 6;
/** Offset of the TTL byte. */
export const IPV4_TTL = 8;
/** Offset of the protocol byte. */
export const IPV4_PROTOCOL = 9;
/** Offset of the 16-bit header checksum. */
export const IPV4_CHECKSUM = 10;
/** Offset of the 32-bit source address. */
export const IPV4_SRC = 12;
/** Offset of the 32-bit destination address. */
export const IPV4_DST = 16;
/** Length of a header without options. */
export const IPV4_HEADER_LEN = 20;

/** "Don't fragment" bit of the flags + fragment offset word. */
export const IPV4_FLAG_DF = 0x4000;
/** "More fragments" bit of the flags + fragment offset word. */
export const IPV4_FLAG_MF = 0x2000;
/** Fragment offset mask (in 8-byte units) of the flags + fragment offset word. */
export const IPV4_FRAG_MASK = 0x1fff;

/** IP protocol number of ICMP. */
export const PROTO_ICMP = 1;
/** IP protocol number of TCP. */
export const PROTO_TCP = 6;
/** IP protocol number of UDP. */
export const PROTO_UDP = 17;

/**
 * A reusable view over an IPv4 packet at `buf[off..off+len)`. Getters read
 * the bytes directly; after `check()` returns `None` or `Ipv4Options`, none
 * reads outside the view. Before, they never throw (out-of-range bytes read 0).
 */
export class Ipv4Packet {
  /** The underlying buffer. */
  buf: Uint8Array = new Uint8Array(0);
  /** Offset of the IPv4 header in `buf`. */
  off = 0;
  /** Bytes available from `off` (may exceed the total length: padding). */
  len = 0;

  /** Points the view at `buf[off..off+len)`; returns `this`. */
  bind(buf: Uint8Array, off = 0, len = buf.length - off): this {
    this.buf = buf;
    this.off = off;
    this.len = len;
    return this;
  }

  /**
   * Validates the header structure (not the checksum: see `verifyChecksum`).
   * Returns `Ipv4Options` last, once everything else is valid, so the fields
   * of a packet with options can still be read safely.
   */
  check(): ParseError {
    const err = this.checkHeader();
    if (err !== ParseError.None) return err;
    const total = this.totalLen();
    if (total < this.headerLen() || total > this.len) return ParseError.BadTotalLen;
    return this.headerLen() > IPV4_HEADER_LEN ? ParseError.Ipv4Options : ParseError.None;
  }

  /**
   * Validates only the fixed header and IHL, ignoring the total length: for
   * the truncated copy of a packet embedded in an ICMP error.
   */
  checkHeader(): ParseError {
    if (this.len < IPV4_HEADER_LEN) return ParseError.Truncated;
    if (this.version() !== 4) return ParseError.BadVersion;
    const hl = this.headerLen();
    if (hl < IPV4_HEADER_LEN || hl > this.len) return ParseError.BadHeaderLen;
    return ParseError.None;
  }

  /** True when the header checksum verifies (call after `check()`). */
  verifyChecksum(): boolean {
    const o = this.off;
    return internetChecksum(this.buf, o, o + this.headerLen()) === 0;
  }

  /** IP version (4 for a valid packet). */
  version(): number {
    return this.buf[this.off] >>> 4;
  }

  /** Header length in bytes (IHL * 4). */
  headerLen(): number {
    return (this.buf[this.off] & 0x0f) << 2;
  }

  /** The DSCP/ECN byte. */
  dscpEcn(): number {
    return this.buf[this.off + IPV4_DSCP_ECN] | 0;
  }

  /** Total length of the datagram in bytes. */
  totalLen(): number {
    return read16(this.buf, this.off + IPV4_TOTAL_LEN);
  }

  /** Identification field. */
  ident(): number {
    return read16(this.buf, this.off + IPV4_IDENT);
  }

  /** The DF flag. */
  dontFragment(): boolean {
    return (read16(this.buf, this.off + IPV4_FLAGS_FRAG) & IPV4_FLAG_DF) !== 0;
  }

  /** The MF flag. */
  moreFragments(): boolean {
    return (read16(this.buf, this.off + IPV4_FLAGS_FRAG) & IPV4_FLAG_MF) !== 0;
  }

  /** Fragment offset in bytes. */
  fragOffset(): number {
    return (read16(this.buf, this.off + IPV4_FLAGS_FRAG) & IPV4_FRAG_MASK) << 3;
  }

  /** True for any fragment: MF set or a non-zero offset. */
  isFragment(): boolean {
    return (read16(this.buf, this.off + IPV4_FLAGS_FRAG) & (IPV4_FLAG_MF | IPV4_FRAG_MASK)) !== 0;
  }

  /** Time to live. */
  ttl(): number {
    return this.buf[this.off + IPV4_TTL] | 0;
  }

  /** Protocol number (`PROTO_TCP`, `PROTO_UDP`, `PROTO_ICMP`, ...). */
  protocol(): number {
    return this.buf[this.off + IPV4_PROTOCOL] | 0;
  }

  /** Header checksum field. */
  checksum(): number {
    return read16(this.buf, this.off + IPV4_CHECKSUM);
  }

  /** Source address, unsigned 32-bit. */
  src(): number {
    return read32(this.buf, this.off + IPV4_SRC);
  }

  /** Destination address, unsigned 32-bit. */
  dst(): number {
    return read32(this.buf, this.off + IPV4_DST);
  }

  /** Absolute index in `buf` of the payload (the L4 header). */
  payloadOffset(): number {
    return this.off + this.headerLen();
  }

  /**
   * Payload length: total length minus header length, clamped to the bytes
   * present (an embedded header in an ICMP error is truncated); never negative.
   */
  payloadLen(): number {
    const end = Math.min(this.totalLen(), this.len);
    return Math.max(0, end - this.headerLen());
  }

  /** Sets the source address (the checksum is not updated). */
  setSrc(addr: number): void {
    write32(this.buf, this.off + IPV4_SRC, addr);
  }

  /** Sets the destination address (the checksum is not updated). */
  setDst(addr: number): void {
    write32(this.buf, this.off + IPV4_DST, addr);
  }

  /** Sets the TTL (the checksum is not updated). */
  setTtl(ttl: number): void {
    this.buf[this.off + IPV4_TTL] = ttl;
  }

  /** Sets the total length (the checksum is not updated). */
  setTotalLen(n: number): void {
    write16(this.buf, this.off + IPV4_TOTAL_LEN, n);
  }

  /** Sets the identification (the checksum is not updated). */
  setIdent(n: number): void {
    write16(this.buf, this.off + IPV4_IDENT, n);
  }

  /** Sets the header checksum field. */
  setChecksum(n: number): void {
    write16(this.buf, this.off + IPV4_CHECKSUM, n);
  }

  /** Recomputes the header checksum from scratch. */
  fillChecksum(): void {
    const o = this.off;
    this.setChecksum(0);
    this.setChecksum(internetChecksum(this.buf, o, o + this.headerLen()));
  }

  /** One line, such as `IPv4 192.0.2.1 > 198.51.100.2 proto=6 len=60 ttl=64 id=0x1c46 DF`. */
  toString(): string {
    const err = this.check();
    if (err !== ParseError.None && err !== ParseError.Ipv4Options) {
      return `IPv4 [${parseErrorName(err)}] buflen=${this.len}`;
    }
    const frag = this.isFragment()
      ? ` frag=${this.fragOffset()}${this.moreFragments() ? "+" : ""}`
      : "";
    const opts = err === ParseError.Ipv4Options ? " options" : "";
    return `IPv4 ${formatIpv4(this.src())} > ${formatIpv4(this.dst())} proto=${this.protocol()}` +
      ` len=${this.totalLen()} ttl=${this.ttl()} id=0x${this.ident().toString(16)}` +
      `${this.dontFragment() ? " DF" : ""}${frag}${opts}`;
  }
}
