/**
 * IPv6 packet builders for tests and tools: each returns a fresh packet with
 * every checksum filled, extension headers chained in the order given. They
 * allocate and throw on bad input, so they never belong on the per-packet path.
 */

import { write16, write32 } from "./bytes.ts";
import { pseudoHeaderSum6 } from "./checksum.ts";
import { ICMPV6_ECHO_REQUEST, ICMPV6_HEADER_LEN, Icmpv6Packet } from "./icmpv6.ts";
import { PROTO_TCP, PROTO_UDP } from "./ipv4.ts";
import {
  IPV6_FRAG_HEADER_LEN,
  IPV6_FRAG_MF,
  IPV6_HEADER_LEN,
  IPV6_OPT_PADN,
  Ipv6Packet,
  PROTO_AH,
  PROTO_DSTOPTS,
  PROTO_FRAGMENT,
  PROTO_HOPOPTS,
  PROTO_ICMPV6,
  PROTO_ROUTING,
} from "./ipv6.ts";
import { parseIpv6, writeIpv6 } from "./ipv6_address.ts";
import { emitTcpRepr, tcpReprLen } from "./repr.ts";
import { TCP_ACK, TcpPacket } from "./tcp.ts";
import { UDP_HEADER_LEN, UdpPacket } from "./udp.ts";

/** An IPv6 address as text or four words. */
export type Ipv6Like = string | ArrayLike<number>;

/** One extension header: its protocol number and its bytes (byte 0, the next header, is filled in). */
export interface Ipv6ExtHeader {
  proto: number;
  bytes: Uint8Array;
}

/** IPv6 header fields every builder accepts. */
export interface Ip6Spec {
  src: Ipv6Like;
  dst: Ipv6Like;
  /** Default 64. */
  hopLimit?: number;
  /** Default 0. */
  trafficClass?: number;
  /** Default 0. */
  flowLabel?: number;
  /** Extension headers, first to last; default none. */
  ext?: Ipv6ExtHeader[];
}

/** What {@link buildIpv6} needs: the upper layer as raw bytes. */
export interface Ipv6Spec extends Ip6Spec {
  proto: number;
  upper: Uint8Array;
}

/** What {@link buildIpv6Tcp} needs. */
export interface Tcp6Spec extends Ip6Spec {
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

/** What {@link buildIpv6Udp} needs. */
export interface Udp6Spec extends Ip6Spec {
  srcPort: number;
  dstPort: number;
  payload?: Uint8Array;
}

/** What {@link buildIcmpv6} needs. */
export interface Icmpv6Spec extends Ip6Spec {
  type?: number;
  code?: number;
  /** Bytes 4..7: echo identifier and sequence, MTU or pointer; default 0. */
  rest?: number;
  /** The message body after the 8-byte header. */
  body?: Uint8Array;
}

/** Converts an {@link Ipv6Like} to four words; throws on malformed text. */
export function toIpv6(a: Ipv6Like): Uint32Array {
  if (typeof a !== "string") return Uint32Array.from(a);
  const w = parseIpv6(a);
  if (w === null) throw new Error(`Cannot parse address "${a}": not an IPv6 address`);
  return w;
}

function optionsHeader(proto: number, options: Uint8Array): Ipv6ExtHeader {
  const len = (2 + options.length + 7) & ~7;
  const bytes = new Uint8Array(len);
  bytes[1] = len / 8 - 1;
  bytes.set(options, 2);
  const pad = len - 2 - options.length;
  if (pad === 1) bytes[2 + options.length] = 0; // Pad1
  else if (pad > 1) bytes[2 + options.length] = IPV6_OPT_PADN, bytes[3 + options.length] = pad - 2;
  return { proto, bytes };
}

/** A hop-by-hop options header holding the raw option TLVs `options`, padded with PadN. */
export function hopByHopHeader(options: Uint8Array = new Uint8Array(0)): Ipv6ExtHeader {
  return optionsHeader(PROTO_HOPOPTS, options);
}

/** A destination options header holding the raw option TLVs `options`, padded with PadN. */
export function destOptionsHeader(options: Uint8Array = new Uint8Array(0)): Ipv6ExtHeader {
  return optionsHeader(PROTO_DSTOPTS, options);
}

/** A routing header of `type` with `segmentsLeft` and `addresses` (type 0/2 layout: 4 reserved bytes). */
export function routingHeader(
  type: number,
  segmentsLeft: number,
  addresses: Ipv6Like[] = [],
): Ipv6ExtHeader {
  const bytes = new Uint8Array(8 + 16 * addresses.length);
  bytes[1] = 2 * addresses.length;
  bytes[2] = type;
  bytes[3] = segmentsLeft;
  addresses.forEach((a, i) => writeIpv6(bytes, 8 + 16 * i, toIpv6(a)));
  return { proto: PROTO_ROUTING, bytes };
}

/** A fragment header: `offset` in bytes (a multiple of 8), the M flag, the identification. */
export function fragmentHeader(offset: number, more: boolean, ident: number): Ipv6ExtHeader {
  const bytes = new Uint8Array(IPV6_FRAG_HEADER_LEN);
  write16(bytes, 2, (offset & 0xfff8) | (more ? IPV6_FRAG_MF : 0));
  write32(bytes, 4, ident);
  return { proto: PROTO_FRAGMENT, bytes };
}

/** An authentication header (RFC 4302) with an integrity check value of `icvLen` bytes. */
export function authHeader(spi: number, seq: number, icvLen = 12): Ipv6ExtHeader {
  const bytes = new Uint8Array(12 + icvLen);
  bytes[1] = bytes.length / 4 - 2;
  write32(bytes, 4, spi);
  write32(bytes, 8, seq);
  return { proto: PROTO_AH, bytes };
}

/** Builds an IPv6 packet with its extension headers chained and `upper` as the payload. */
export function buildIpv6(spec: Ipv6Spec): Uint8Array {
  const ext = spec.ext ?? [];
  const extLen = ext.reduce((n, h) => n + h.bytes.length, 0);
  const payloadLen = extLen + spec.upper.length;
  if (payloadLen > 0xffff) throw new Error(`Cannot build IPv6: payload of ${payloadLen} bytes`);
  const pkt = new Uint8Array(IPV6_HEADER_LEN + payloadLen);
  write32(
    pkt,
    0,
    (6 << 28 | (spec.trafficClass ?? 0) << 20 | ((spec.flowLabel ?? 0) & 0xfffff)) >>> 0,
  );
  write16(pkt, 4, payloadLen);
  pkt[6] = ext.length > 0 ? ext[0].proto : spec.proto;
  pkt[7] = spec.hopLimit ?? 64;
  writeIpv6(pkt, 8, toIpv6(spec.src));
  writeIpv6(pkt, 24, toIpv6(spec.dst));
  let at = IPV6_HEADER_LEN;
  ext.forEach((h, i) => {
    pkt.set(h.bytes, at);
    pkt[at] = i + 1 < ext.length ? ext[i + 1].proto : spec.proto;
    at += h.bytes.length;
  });
  pkt.set(spec.upper, at);
  return pkt;
}

/** The pseudo-header sum of the upper layer of a built, unfragmented packet. */
function upperSum(pkt: Uint8Array, proto: number, upperLen: number): number {
  return pseudoHeaderSum6(pkt, 0, proto, upperLen);
}

/** Builds an IPv6/TCP packet. */
export function buildIpv6Tcp(spec: Tcp6Spec): Uint8Array {
  const r = {
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
  const seg = new Uint8Array(tcpReprLen(r));
  emitTcpRepr(r, seg, 0, 0, 0);
  const pkt = buildIpv6({ ...spec, proto: PROTO_TCP, upper: seg });
  const off = pkt.length - seg.length;
  new TcpPacket().bind(pkt, off, seg.length).fillChecksum6(upperSum(pkt, PROTO_TCP, seg.length));
  return pkt;
}

/** Builds an IPv6/UDP packet. */
export function buildIpv6Udp(spec: Udp6Spec): Uint8Array {
  const payload = spec.payload ?? new Uint8Array(0);
  const dgram = new Uint8Array(UDP_HEADER_LEN + payload.length);
  dgram.set(payload, UDP_HEADER_LEN);
  const pkt = buildIpv6({ ...spec, proto: PROTO_UDP, upper: dgram });
  const u = new UdpPacket().bind(pkt, pkt.length - dgram.length, dgram.length);
  u.setSrcPort(spec.srcPort);
  u.setDstPort(spec.dstPort);
  u.setLength(dgram.length);
  u.fillChecksum6(upperSum(pkt, PROTO_UDP, dgram.length));
  return pkt;
}

/** Builds an IPv6/ICMPv6 message (an echo request by default). */
export function buildIcmpv6(spec: Icmpv6Spec): Uint8Array {
  const body = spec.body ?? new Uint8Array(0);
  const msg = new Uint8Array(ICMPV6_HEADER_LEN + body.length);
  msg[0] = spec.type ?? ICMPV6_ECHO_REQUEST;
  msg[1] = spec.code ?? 0;
  write32(msg, 4, spec.rest ?? 0);
  msg.set(body, ICMPV6_HEADER_LEN);
  const pkt = buildIpv6({ ...spec, proto: PROTO_ICMPV6, upper: msg });
  new Icmpv6Packet().bind(pkt, pkt.length - msg.length, msg.length)
    .fillChecksum(upperSum(pkt, PROTO_ICMPV6, msg.length));
  return pkt;
}

/** Builds an ICMPv6 error quoting as much of `original` as keeps the error within 1280 bytes (RFC 4443 §2.4). */
export function buildIcmpv6Error(
  spec: Ip6Spec & { type: number; code: number; rest?: number; original: Uint8Array },
): Uint8Array {
  const room = 1280 - IPV6_HEADER_LEN - ICMPV6_HEADER_LEN -
    (spec.ext ?? []).reduce((n, h) => n + h.bytes.length, 0);
  return buildIcmpv6({ ...spec, body: spec.original.subarray(0, Math.max(0, room)) });
}

/**
 * Splits an unfragmented IPv6 packet into fragments of at most `mtu` bytes
 * (RFC 8200 §4.5): the fixed header and a leading hop-by-hop header are the
 * unfragmentable part, everything after goes in pieces that are multiples of 8.
 * A packet that fits is returned as a single copy.
 */
export function fragment6(packet: Uint8Array, mtu: number, ident: number): Uint8Array[] {
  const ip = new Ipv6Packet().bind(packet);
  const total = IPV6_HEADER_LEN + ip.payloadLen();
  if (total <= mtu) return [packet.slice(0, total)];
  const hbh = ip.nextHeader() === PROTO_HOPOPTS ? (packet[IPV6_HEADER_LEN + 1] + 1) * 8 : 0;
  const unfrag = IPV6_HEADER_LEN + hbh;
  const nextProto = hbh > 0 ? packet[IPV6_HEADER_LEN] : ip.nextHeader();
  const step = (mtu - unfrag - IPV6_FRAG_HEADER_LEN) & ~7;
  if (step <= 0) throw new Error(`Cannot fragment: MTU ${mtu} leaves no room for data`);
  const out: Uint8Array[] = [];
  for (let start = unfrag; start < total; start += step) {
    const end = Math.min(start + step, total);
    const frag = new Uint8Array(unfrag + IPV6_FRAG_HEADER_LEN + end - start);
    frag.set(packet.subarray(0, unfrag), 0);
    frag[hbh > 0 ? IPV6_HEADER_LEN : 6] = PROTO_FRAGMENT;
    const fh = fragmentHeader(start - unfrag, end < total, ident).bytes;
    fh[0] = nextProto;
    frag.set(fh, unfrag);
    frag.set(packet.subarray(start, end), unfrag + IPV6_FRAG_HEADER_LEN);
    write16(frag, 4, frag.length - IPV6_HEADER_LEN);
    out.push(frag);
  }
  return out;
}
