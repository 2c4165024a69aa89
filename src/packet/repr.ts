/**
 * Parsed representations of the headers, after smoltcp's `*Repr`: plain
 * objects read from checked views, and written back with checksums filled.
 * They allocate, so they serve the control plane, tools and tests, not the
 * per-packet path.
 */

import { read16, write16, write32 } from "./bytes.ts";
import { ICMP_HEADER_LEN, Icmpv4Packet } from "./icmpv4.ts";
import {
  IPV4_CHECKSUM,
  IPV4_DSCP_ECN,
  IPV4_DST,
  IPV4_FLAG_DF,
  IPV4_FLAGS_FRAG,
  IPV4_HEADER_LEN,
  IPV4_IDENT,
  IPV4_PROTOCOL,
  IPV4_SRC,
  IPV4_TOTAL_LEN,
  IPV4_TTL,
  Ipv4Packet,
} from "./ipv4.ts";
import {
  TCP_ACK_NUM,
  TCP_DATA_OFF,
  TCP_DST_PORT,
  TCP_FLAGS,
  TCP_HEADER_LEN,
  TCP_SEQ_NUM,
  TCP_SRC_PORT,
  TCP_URGENT,
  TCP_WINDOW,
  TcpPacket,
} from "./tcp.ts";
import { UDP_HEADER_LEN, UdpPacket } from "./udp.ts";
import { internetChecksum } from "./checksum.ts";

/** The fields of an IPv4 header without options that are not derived. */
export interface Ipv4Repr {
  src: number;
  dst: number;
  protocol: number;
  /** Payload length; the total length is this plus 20. */
  payloadLen: number;
  ttl: number;
  ident: number;
  dontFragment: boolean;
  dscpEcn: number;
}

/** Reads an {@link Ipv4Repr} from a checked view (fragment fields are not kept). */
export function parseIpv4Repr(p: Ipv4Packet): Ipv4Repr {
  return {
    src: p.src(),
    dst: p.dst(),
    protocol: p.protocol(),
    payloadLen: p.payloadLen(),
    ttl: p.ttl(),
    ident: p.ident(),
    dontFragment: p.dontFragment(),
    dscpEcn: p.dscpEcn(),
  };
}

/** Writes a 20-byte IPv4 header at `buf[off..]` with its checksum filled. */
export function emitIpv4Repr(r: Ipv4Repr, buf: Uint8Array, off: number): void {
  buf[off] = 0x45; // version 4, IHL 5
  buf[off + IPV4_DSCP_ECN] = r.dscpEcn;
  write16(buf, off + IPV4_TOTAL_LEN, IPV4_HEADER_LEN + r.payloadLen);
  write16(buf, off + IPV4_IDENT, r.ident);
  write16(buf, off + IPV4_FLAGS_FRAG, r.dontFragment ? IPV4_FLAG_DF : 0);
  buf[off + IPV4_TTL] = r.ttl;
  buf[off + IPV4_PROTOCOL] = r.protocol;
  write16(buf, off + IPV4_CHECKSUM, 0);
  write32(buf, off + IPV4_SRC, r.src);
  write32(buf, off + IPV4_DST, r.dst);
  write16(buf, off + IPV4_CHECKSUM, internetChecksum(buf, off, off + IPV4_HEADER_LEN));
}

/** A TCP segment: header fields, raw options and data. */
export interface TcpRepr {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  urgent: number;
  /** Raw option bytes; emitted zero-padded to a multiple of 4. */
  options: Uint8Array;
  payload: Uint8Array;
}

/** Reads a {@link TcpRepr} from a checked view; options and payload are subarrays. */
export function parseTcpRepr(p: TcpPacket): TcpRepr {
  const hl = p.headerLen();
  return {
    srcPort: p.srcPort(),
    dstPort: p.dstPort(),
    seq: p.seq(),
    ack: p.ack(),
    flags: p.flags(),
    window: p.window(),
    urgent: read16(p.buf, p.off + TCP_URGENT),
    options: p.buf.subarray(p.off + TCP_HEADER_LEN, p.off + hl),
    payload: p.buf.subarray(p.off + hl, p.off + p.len),
  };
}

/** Header length of a {@link TcpRepr} once emitted. */
export function tcpReprHeaderLen(r: TcpRepr): number {
  return TCP_HEADER_LEN + ((r.options.length + 3) & ~3);
}

/** Bytes a {@link TcpRepr} takes once emitted. */
export function tcpReprLen(r: TcpRepr): number {
  return tcpReprHeaderLen(r) + r.payload.length;
}

/** Writes a TCP segment at `buf[off..]` with the checksum for `src` > `dst` filled. */
export function emitTcpRepr(
  r: TcpRepr,
  buf: Uint8Array,
  off: number,
  src: number,
  dst: number,
): void {
  const hl = tcpReprHeaderLen(r);
  write16(buf, off + TCP_SRC_PORT, r.srcPort);
  write16(buf, off + TCP_DST_PORT, r.dstPort);
  write32(buf, off + TCP_SEQ_NUM, r.seq);
  write32(buf, off + TCP_ACK_NUM, r.ack);
  buf[off + TCP_DATA_OFF] = (hl >>> 2) << 4;
  buf[off + TCP_FLAGS] = r.flags;
  write16(buf, off + TCP_WINDOW, r.window);
  write16(buf, off + TCP_URGENT, r.urgent);
  buf.fill(0, off + TCP_HEADER_LEN, off + hl);
  buf.set(r.options, off + TCP_HEADER_LEN);
  buf.set(r.payload, off + hl);
  new TcpPacket().bind(buf, off, hl + r.payload.length).fillChecksum(src, dst);
}

/** A UDP datagram. */
export interface UdpRepr {
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
}

/** Reads a {@link UdpRepr} from a checked view; the payload is a subarray. */
export function parseUdpRepr(p: UdpPacket): UdpRepr {
  const o = p.payloadOffset();
  return {
    srcPort: p.srcPort(),
    dstPort: p.dstPort(),
    payload: p.buf.subarray(o, o + p.payloadLen()),
  };
}

/** Bytes a {@link UdpRepr} takes once emitted. */
export function udpReprLen(r: UdpRepr): number {
  return UDP_HEADER_LEN + r.payload.length;
}

/**
 * Writes a UDP datagram at `buf[off..]`, with the checksum for `src` > `dst`
 * filled, or 0 (none) when `checksum` is false.
 */
export function emitUdpRepr(
  r: UdpRepr,
  buf: Uint8Array,
  off: number,
  src: number,
  dst: number,
  checksum = true,
): void {
  const udp = new UdpPacket().bind(buf, off, udpReprLen(r));
  udp.setSrcPort(r.srcPort);
  udp.setDstPort(r.dstPort);
  udp.setLength(udpReprLen(r));
  udp.setChecksum(0);
  buf.set(r.payload, off + UDP_HEADER_LEN);
  if (checksum) udp.fillChecksum(src, dst);
}

/**
 * An ICMP message. For echo, `ident` and `seqNo` are bytes 4..7; for errors
 * they are the rest-of-header word (unused, or the next-hop MTU in `seqNo`
 * for "fragmentation needed", or the pointer in `ident >> 8` for parameter
 * problem), and `payload` is the embedded packet.
 */
export interface IcmpRepr {
  type: number;
  code: number;
  ident: number;
  seqNo: number;
  payload: Uint8Array;
}

/** Reads an {@link IcmpRepr} from a checked view; the payload is a subarray. */
export function parseIcmpRepr(p: Icmpv4Packet): IcmpRepr {
  return {
    type: p.type(),
    code: p.code(),
    ident: p.ident(),
    seqNo: p.seqNo(),
    payload: p.buf.subarray(p.off + ICMP_HEADER_LEN, p.off + p.len),
  };
}

/** Bytes an {@link IcmpRepr} takes once emitted. */
export function icmpReprLen(r: IcmpRepr): number {
  return ICMP_HEADER_LEN + r.payload.length;
}

/** Writes an ICMP message at `buf[off..]` with its checksum filled. */
export function emitIcmpRepr(r: IcmpRepr, buf: Uint8Array, off: number): void {
  const icmp = new Icmpv4Packet().bind(buf, off, icmpReprLen(r));
  buf[off] = r.type;
  buf[off + 1] = r.code;
  icmp.setIdent(r.ident);
  icmp.setSeqNo(r.seqNo);
  buf.set(r.payload, off + ICMP_HEADER_LEN);
  icmp.fillChecksum();
}
