/**
 * A zero-copy, reusable view over a TCP segment (RFC 9293), bound to the IPv4
 * payload or the IPv6 upper-layer bytes.
 */

import { read16, read32, write16 } from "./bytes.ts";
import { checksumAdd, checksumFold, pseudoHeaderSum } from "./checksum.ts";
import { PROTO_TCP } from "./ipv4.ts";
import { ParseError, parseErrorName } from "./parse_error.ts";

/** Offset of the 16-bit source port. */
export const TCP_SRC_PORT = 0;
/** Offset of the 16-bit destination port. */
export const TCP_DST_PORT = 2;
/** Offset of the 32-bit sequence number. */
export const TCP_SEQ_NUM = 4;
/** Offset of the 32-bit acknowledgment number. */
export const TCP_ACK_NUM = 8;
/** Offset of the data offset byte (high nibble). */
export const TCP_DATA_OFF = 12;
/** Offset of the flags byte. */
export const TCP_FLAGS = 13;
/** Offset of the 16-bit window. */
export const TCP_WINDOW = 14;
/** Offset of the 16-bit checksum. */
export const TCP_CHECKSUM = 16;
/** Offset of the 16-bit urgent pointer. */
export const TCP_URGENT = 18;
/** Length of a header without options. */
export const TCP_HEADER_LEN = 20;

/** FIN flag bit. */
export const TCP_FIN = 0x01;
/** SYN flag bit. */
export const TCP_SYN = 0x02;
/** RST flag bit. */
export const TCP_RST = 0x04;
/** PSH flag bit. */
export const TCP_PSH = 0x08;
/** ACK flag bit. */
export const TCP_ACK = 0x10;
/** URG flag bit. */
export const TCP_URG = 0x20;
/** ECE flag bit. */
export const TCP_ECE = 0x40;
/** CWR flag bit. */
export const TCP_CWR = 0x80;

/** Option kind: end of option list. */
export const TCP_OPT_EOL = 0;
/** Option kind: no-operation (padding). */
export const TCP_OPT_NOP = 1;
/** Option kind: maximum segment size (RFC 9293). */
export const TCP_OPT_MSS = 2;
/** Option kind: window scale (RFC 7323), SYN only, 3 bytes. */
export const TCP_OPT_WSCALE = 3;
/** Option kind: SACK permitted (RFC 2018), SYN only, 2 bytes. */
export const TCP_OPT_SACK_PERM = 4;
/** Option kind: SACK blocks (RFC 2018), 2 + 8n bytes. */
export const TCP_OPT_SACK = 5;
/** Option kind: timestamps (RFC 7323), 10 bytes. */
export const TCP_OPT_TIMESTAMP = 8;
/** Largest window shift RFC 7323 §2.3 allows; larger values are taken as 14. */
export const TCP_MAX_WSCALE = 14;

const FLAG_LETTERS = "FSRPAUEC";

/** Formats TCP flags as letters, such as `SA` for SYN+ACK; `.` for none. */
export function formatTcpFlags(flags: number): string {
  let s = "";
  for (let i = 0; i < 8; i++) if (flags & (1 << i)) s += FLAG_LETTERS[i];
  return s === "" ? "." : s;
}

/** A reusable view over a TCP segment at `buf[off..off+len)`. */
export class TcpPacket {
  /** The underlying buffer. */
  buf: Uint8Array = new Uint8Array(0);
  /** Offset of the TCP header in `buf`. */
  off = 0;
  /** Segment length (header + data), normally the IPv4 payload length. */
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
    if (this.len < TCP_HEADER_LEN) return ParseError.Truncated;
    const hl = this.headerLen();
    if (hl < TCP_HEADER_LEN || hl > this.len) return ParseError.BadL4HeaderLen;
    return ParseError.None;
  }

  /** Source port. */
  srcPort(): number {
    return read16(this.buf, this.off + TCP_SRC_PORT);
  }

  /** Destination port. */
  dstPort(): number {
    return read16(this.buf, this.off + TCP_DST_PORT);
  }

  /** Sequence number, unsigned 32-bit. */
  seq(): number {
    return read32(this.buf, this.off + TCP_SEQ_NUM);
  }

  /** Acknowledgment number, unsigned 32-bit. */
  ack(): number {
    return read32(this.buf, this.off + TCP_ACK_NUM);
  }

  /** Header length in bytes (data offset * 4). */
  headerLen(): number {
    return (this.buf[this.off + TCP_DATA_OFF] >>> 4) << 2;
  }

  /** The flags byte (`TCP_SYN | TCP_ACK`, ...). */
  flags(): number {
    return this.buf[this.off + TCP_FLAGS] | 0;
  }

  /** Window field. */
  window(): number {
    return read16(this.buf, this.off + TCP_WINDOW);
  }

  /** Checksum field. */
  checksum(): number {
    return read16(this.buf, this.off + TCP_CHECKSUM);
  }

  /** Absolute index in `buf` of the data after the header. */
  payloadOffset(): number {
    return this.off + this.headerLen();
  }

  /** Data length (segment length minus header length), never negative. */
  payloadLen(): number {
    return Math.max(0, this.len - this.headerLen());
  }

  /**
   * Offset in `buf` of the first option of `kind` whose length is `len` (0:
   * any length >= 2), or -1. Stops at EOL and at a malformed or truncated
   * option, as Linux's tcp_parse_options does.
   */
  findOption(kind: number, len = 0): number {
    const b = this.buf;
    const end = this.off + this.headerLen();
    let i = this.off + TCP_HEADER_LEN;
    while (i < end) {
      const k = b[i];
      if (k === TCP_OPT_EOL) return -1;
      if (k === TCP_OPT_NOP) {
        i++;
        continue;
      }
      const n = i + 1 < end ? b[i + 1] : 0;
      if (n < 2 || i + n > end) return -1;
      if (k === kind && (len === 0 || n === len)) return i;
      i += n;
    }
    return -1;
  }

  /** The window scale option's shift (capped at 14), or -1 without one. */
  windowScale(): number {
    const i = this.headerLen() > TCP_HEADER_LEN ? this.findOption(TCP_OPT_WSCALE, 3) : -1;
    return i < 0 ? -1 : Math.min(this.buf[i + 2], TCP_MAX_WSCALE);
  }

  /** True when the segment carries the SACK-permitted option. */
  sackPermitted(): boolean {
    return this.headerLen() > TCP_HEADER_LEN && this.findOption(TCP_OPT_SACK_PERM, 2) >= 0;
  }

  /**
   * The highest SACK block right edge that lies after `ack` (sequence space,
   * modulo 2^32), or `ack` when the segment carries no SACK option.
   */
  sackRightEdge(ack: number): number {
    let edge = ack >>> 0;
    if (this.headerLen() <= TCP_HEADER_LEN) return edge;
    const i = this.findOption(TCP_OPT_SACK);
    if (i < 0) return edge;
    const n = this.buf[i + 1];
    if ((n - 2) % 8 !== 0) return edge;
    for (let j = i + 2; j + 8 <= i + n; j += 8) {
      const right = read32(this.buf, j + 4);
      if (((right - edge) | 0) > 0) edge = right;
    }
    return edge;
  }

  /** Sets the source port (the checksum is not updated). */
  setSrcPort(port: number): void {
    write16(this.buf, this.off + TCP_SRC_PORT, port);
  }

  /** Sets the destination port (the checksum is not updated). */
  setDstPort(port: number): void {
    write16(this.buf, this.off + TCP_DST_PORT, port);
  }

  /** Sets the checksum field. */
  setChecksum(n: number): void {
    write16(this.buf, this.off + TCP_CHECKSUM, n);
  }

  /** True when the checksum verifies over the pseudo header and the segment. */
  verifyChecksum(srcAddr: number, dstAddr: number): boolean {
    return this.#sum(srcAddr, dstAddr) === 0xffff;
  }

  /** Recomputes the checksum over the pseudo header and the segment. */
  fillChecksum(srcAddr: number, dstAddr: number): void {
    this.setChecksum(0);
    this.setChecksum(~this.#sum(srcAddr, dstAddr) & 0xffff);
  }

  #sum(srcAddr: number, dstAddr: number): number {
    return this.#sumFrom(pseudoHeaderSum(srcAddr, dstAddr, PROTO_TCP, this.len));
  }

  /** Over IPv6: true when the checksum verifies with `Ipv6Packet.pseudoHeaderSum()`. */
  verifyChecksum6(pseudoSum: number): boolean {
    return this.#sumFrom(pseudoSum) === 0xffff;
  }

  /** Over IPv6: recomputes the checksum with `Ipv6Packet.pseudoHeaderSum()`. */
  fillChecksum6(pseudoSum: number): void {
    this.setChecksum(0);
    this.setChecksum(~this.#sumFrom(pseudoSum) & 0xffff);
  }

  #sumFrom(pseudoSum: number): number {
    return checksumFold(checksumAdd(pseudoSum, this.buf, this.off, this.off + this.len));
  }

  /** One line, such as `TCP 40000 > 22 [S] seq=1 ack=0 win=64240 len=0`. */
  toString(): string {
    const err = this.check();
    if (err !== ParseError.None) return `TCP [${parseErrorName(err)}] buflen=${this.len}`;
    return `TCP ${this.srcPort()} > ${this.dstPort()} [${formatTcpFlags(this.flags())}]` +
      ` seq=${this.seq()} ack=${this.ack()} win=${this.window()} len=${this.payloadLen()}`;
  }
}
