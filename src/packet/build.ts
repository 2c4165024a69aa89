/**
 * Packet builders for tests and tools: each returns a fresh IPv4 packet with
 * every checksum filled. They allocate and throw on bad input, so they never
 * belong on the per-packet path.
 */

import { parseIpv4 } from "./address.ts";
import { ICMP_ECHO_REQUEST } from "./icmpv4.ts";
import {
  IPV4_FLAG_MF,
  IPV4_FLAGS_FRAG,
  IPV4_FRAG_MASK,
  IPV4_HEADER_LEN,
  Ipv4Packet,
  PROTO_ICMP,
  PROTO_TCP,
  PROTO_UDP,
} from "./ipv4.ts";
import {
  emitIcmpRepr,
  emitIpv4Repr,
  emitTcpRepr,
  emitUdpRepr,
  icmpReprLen,
  type TcpRepr,
  tcpReprLen,
} from "./repr.ts";
import { TCP_ACK } from "./tcp.ts";
import { read16, write16 } from "./bytes.ts";

/** An address as a dotted quad or an unsigned 32-bit number. */
export type AddrLike = string | number;

/** IPv4 header fields every builder accepts. */
export interface IpSpec {
  src: AddrLike;
  dst: AddrLike;
  /** Default 64. */
  ttl?: number;
  /** Default 0. */
  ident?: number;
  /** Don't fragment; default false. */
  df?: boolean;
  /** Default 0. */
  dscpEcn?: number;
}

/** What {@link buildTcp} needs. */
export interface TcpSpec extends IpSpec {
  srcPort: number;
  dstPort: number;
  /** Flags byte; default ACK. */
  flags?: number;
  seq?: number;
  ack?: number;
  /** Default 65535. */
  window?: number;
  /** Raw TCP option bytes (zero-padded to 4). */
  options?: Uint8Array;
  payload?: Uint8Array;
}

/** What {@link buildUdp} needs. */
export interface UdpSpec extends IpSpec {
  srcPort: number;
  dstPort: number;
  payload?: Uint8Array;
  /** False sends checksum 0 (none); default true. */
  checksum?: boolean;
}

/** What {@link buildIcmpEcho} needs. */
export interface IcmpEchoSpec extends IpSpec {
  /** `ICMP_ECHO_REQUEST` (default) or `ICMP_ECHO_REPLY`. */
  type?: number;
  ident: number;
  seq: number;
  payload?: Uint8Array;
}

/** What {@link buildIcmpError} needs. */
export interface IcmpErrorSpec extends IpSpec {
  type: number;
  code: number;
  /** The offending IPv4 packet. */
  original: Uint8Array;
  /** Bytes of `original` to embed; default its header length + 8 (RFC 792). */
  keep?: number;
  /** Rest-of-header word (bytes 4..7), such as the next-hop MTU; default 0. */
  rest?: number;
}

/** Converts an {@link AddrLike} to a number; throws on a malformed string. */
export function toAddr(a: AddrLike): number {
  if (typeof a === "number") return a >>> 0;
  const n = parseIpv4(a);
  if (n === null) throw new Error(`Cannot parse address "${a}": not a dotted quad`);
  return n;
}

function wrapIp(spec: IpSpec, protocol: number, payloadLen: number): Uint8Array {
  const pkt = new Uint8Array(IPV4_HEADER_LEN + payloadLen);
  emitIpv4Repr(
    {
      src: toAddr(spec.src),
      dst: toAddr(spec.dst),
      protocol,
      payloadLen,
      ttl: spec.ttl ?? 64,
      ident: spec.ident ?? 0,
      dontFragment: spec.df ?? false,
      dscpEcn: spec.dscpEcn ?? 0,
    },
    pkt,
    0,
  );
  return pkt;
}

/** Builds an IPv4/TCP packet. */
export function buildTcp(spec: TcpSpec): Uint8Array {
  const r: TcpRepr = {
    srcPort: spec.srcPort,
    dstPort: spec.dstPort,
    seq: spec.seq ?? 0,
    ack: spec.ack ?? 0,
    flags: spec.flags ?? TCP_ACK,
    window: spec.window ?? 65535,
    urgent: 0,
    options: spec.options ?? new Uint8Array(0),
    payload: spec.payload ?? new Uint8Array(0),
  };
  const pkt = wrapIp(spec, PROTO_TCP, tcpReprLen(r));
  emitTcpRepr(r, pkt, IPV4_HEADER_LEN, toAddr(spec.src), toAddr(spec.dst));
  return pkt;
}

/** Builds an IPv4/UDP packet. */
export function buildUdp(spec: UdpSpec): Uint8Array {
  const payload = spec.payload ?? new Uint8Array(0);
  const pkt = wrapIp(spec, PROTO_UDP, 8 + payload.length);
  const r = { srcPort: spec.srcPort, dstPort: spec.dstPort, payload };
  emitUdpRepr(r, pkt, IPV4_HEADER_LEN, toAddr(spec.src), toAddr(spec.dst), spec.checksum ?? true);
  return pkt;
}

/** Builds an IPv4/ICMP echo request (or reply). */
export function buildIcmpEcho(spec: IcmpEchoSpec): Uint8Array {
  const r = {
    type: spec.type ?? ICMP_ECHO_REQUEST,
    code: 0,
    ident: spec.ident,
    seqNo: spec.seq,
    payload: spec.payload ?? new Uint8Array(0),
  };
  const pkt = wrapIp(spec, PROTO_ICMP, icmpReprLen(r));
  emitIcmpRepr(r, pkt, IPV4_HEADER_LEN);
  return pkt;
}

/** Builds an IPv4/ICMP error embedding the start of `original`. */
export function buildIcmpError(spec: IcmpErrorSpec): Uint8Array {
  const ihl = (spec.original[0] & 0x0f) << 2;
  const keep = Math.min(spec.keep ?? ihl + 8, spec.original.length);
  const rest = spec.rest ?? 0;
  const r = {
    type: spec.type,
    code: spec.code,
    ident: rest >>> 16,
    seqNo: rest & 0xffff,
    payload: spec.original.subarray(0, keep),
  };
  const pkt = wrapIp(spec, PROTO_ICMP, icmpReprLen(r));
  emitIcmpRepr(r, pkt, IPV4_HEADER_LEN);
  return pkt;
}

/**
 * Splits an IPv4 packet into fragments of at most `mtu` bytes (payload pieces
 * a multiple of 8, RFC 791), ignoring DF. A packet that fits is returned as a
 * single copy. Fragmenting a fragment keeps its offset and final MF.
 */
export function fragment(packet: Uint8Array, mtu: number): Uint8Array[] {
  const ip = new Ipv4Packet().bind(packet);
  const hl = ip.headerLen();
  const total = ip.totalLen();
  if (total <= mtu) return [packet.slice(0, total)];
  const step = (mtu - hl) & ~7;
  if (step <= 0) throw new Error(`Cannot fragment: MTU ${mtu} leaves no room for data`);
  const word = read16(packet, IPV4_FLAGS_FRAG);
  const baseOff = (word & IPV4_FRAG_MASK) << 3;
  const out: Uint8Array[] = [];
  for (let start = hl; start < total; start += step) {
    const end = Math.min(start + step, total);
    const frag = new Uint8Array(hl + end - start);
    frag.set(packet.subarray(0, hl), 0);
    frag.set(packet.subarray(start, end), hl);
    const more = end < total || (word & IPV4_FLAG_MF) !== 0;
    const fragOff = (baseOff + start - hl) >>> 3;
    write16(
      frag,
      IPV4_FLAGS_FRAG,
      (word & ~(IPV4_FLAG_MF | IPV4_FRAG_MASK)) | fragOff | (more ? IPV4_FLAG_MF : 0),
    );
    const view = new Ipv4Packet().bind(frag);
    view.setTotalLen(frag.length);
    view.fillChecksum();
    out.push(frag);
  }
  return out;
}
