/** A zero-copy, reusable view over an ICMPv4 message (RFC 792), bound to the IPv4 payload. */

import { read16, write16 } from "./bytes.ts";
import { internetChecksum } from "./checksum.ts";
import { ParseError } from "./parse_error.ts";

/** Offset of the type byte. */
export const ICMP_TYPE = 0;
/** Offset of the code byte. */
export const ICMP_CODE = 1;
/** Offset of the 16-bit checksum. */
export const ICMP_CHECKSUM = 2;
/** Offset of the echo identifier. */
export const ICMP_IDENT = 4;
/** Offset of the echo sequence number. */
export const ICMP_SEQ = 6;
/** Length of the header (type, code, checksum, 4 bytes rest-of-header). */
export const ICMP_HEADER_LEN = 8;

/** Echo reply type. */
export const ICMP_ECHO_REPLY = 0;
/** Destination unreachable type. */
export const ICMP_DEST_UNREACHABLE = 3;
/** Source quench type (deprecated, still an error). */
export const ICMP_SOURCE_QUENCH = 4;
/** Redirect type. */
export const ICMP_REDIRECT = 5;
/** Echo request type. */
export const ICMP_ECHO_REQUEST = 8;
/** Time exceeded type. */
export const ICMP_TIME_EXCEEDED = 11;
/** Parameter problem type. */
export const ICMP_PARAM_PROBLEM = 12;

/** Destination unreachable code: port unreachable. */
export const ICMP_CODE_PORT_UNREACHABLE = 3;
/** Destination unreachable code: fragmentation needed and DF set. */
export const ICMP_CODE_FRAG_NEEDED = 4;

/** True for the ICMP error types, which embed the offending packet's header. */
export function isIcmpErrorType(type: number): boolean {
  return type === ICMP_DEST_UNREACHABLE || type === ICMP_TIME_EXCEEDED ||
    type === ICMP_PARAM_PROBLEM || type === ICMP_SOURCE_QUENCH || type === ICMP_REDIRECT;
}

/** A reusable view over an ICMPv4 message at `buf[off..off+len)`. */
export class Icmpv4Packet {
  /** The underlying buffer. */
  buf: Uint8Array = new Uint8Array(0);
  /** Offset of the ICMP header in `buf`. */
  off = 0;
  /** Message length (header + data), the IPv4 payload length. */
  len = 0;

  /** Points the view at `buf[off..off+len)`; returns `this`. */
  bind(buf: Uint8Array, off = 0, len = buf.length - off): this {
    this.buf = buf;
    this.off = off;
    this.len = len;
    return this;
  }

  /**
   * Validates the length and the checksum over the whole message. A non-first
   * IPv4 fragment must not be checked this way (its checksum covers the
   * reassembled datagram).
   */
  check(): ParseError {
    if (this.len < ICMP_HEADER_LEN) return ParseError.Truncated;
    return this.verifyChecksum() ? ParseError.None : ParseError.BadL4Checksum;
  }

  /** True when the checksum verifies over `len` bytes. */
  verifyChecksum(): boolean {
    return internetChecksum(this.buf, this.off, this.off + this.len) === 0;
  }

  /** Message type. */
  type(): number {
    return this.buf[this.off + ICMP_TYPE] | 0;
  }

  /** Message code. */
  code(): number {
    return this.buf[this.off + ICMP_CODE] | 0;
  }

  /** Checksum field. */
  checksum(): number {
    return read16(this.buf, this.off + ICMP_CHECKSUM);
  }

  /** Echo identifier (bytes 4..5). */
  ident(): number {
    return read16(this.buf, this.off + ICMP_IDENT);
  }

  /** Echo sequence number (bytes 6..7; the next-hop MTU for "fragmentation needed"). */
  seqNo(): number {
    return read16(this.buf, this.off + ICMP_SEQ);
  }

  /** True for echo request and echo reply. */
  isEcho(): boolean {
    const t = this.type();
    return t === ICMP_ECHO_REQUEST || t === ICMP_ECHO_REPLY;
  }

  /** True for an error message (which embeds the offending packet's header). */
  isError(): boolean {
    return isIcmpErrorType(this.type());
  }

  /** Absolute index in `buf` of the embedded IPv4 header of an error (off + 8). */
  embeddedOffset(): number {
    return this.off + ICMP_HEADER_LEN;
  }

  /** Absolute index in `buf` of the data after the 8-byte header (same as `embeddedOffset`). */
  payloadOffset(): number {
    return this.off + ICMP_HEADER_LEN;
  }

  /** Bytes after the 8-byte header (the embedded packet or echo data). */
  payloadLen(): number {
    return Math.max(0, this.len - ICMP_HEADER_LEN);
  }

  /** Sets the echo identifier (the checksum is not updated). */
  setIdent(n: number): void {
    write16(this.buf, this.off + ICMP_IDENT, n);
  }

  /** Sets the echo sequence number (the checksum is not updated). */
  setSeqNo(n: number): void {
    write16(this.buf, this.off + ICMP_SEQ, n);
  }

  /** Sets the checksum field. */
  setChecksum(n: number): void {
    write16(this.buf, this.off + ICMP_CHECKSUM, n);
  }

  /** Recomputes the checksum over `len` bytes. */
  fillChecksum(): void {
    this.setChecksum(0);
    this.setChecksum(internetChecksum(this.buf, this.off, this.off + this.len));
  }

  /** One line, such as `ICMP type=8 code=0 echo id=1 seq=7 len=56`. */
  toString(): string {
    if (this.len < ICMP_HEADER_LEN) return `ICMP [truncated] buflen=${this.len}`;
    const kind = this.isEcho()
      ? ` echo id=${this.ident()} seq=${this.seqNo()}`
      : this.isError()
      ? " error"
      : "";
    return `ICMP type=${this.type()} code=${this.code()}${kind} len=${this.payloadLen()}`;
  }
}
