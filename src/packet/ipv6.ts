/**
 * A zero-copy, reusable view over an IPv6 packet (RFC 8200), after smoltcp's
 * `wire::ipv6` and `wire::ipv6ext_header`: the fixed header, and a walk over
 * the extension headers that `check()` does once, leaving the upper-layer
 * protocol, its offset and the fragment fields in plain number fields.
 *
 * The walk knows hop-by-hop options (0), routing (43), fragment (44),
 * destination options (60) and the authentication header (51). Anything else
 * ends it as the upper layer: TCP, UDP and ICMPv6, but also ESP (50, whose
 * encrypted bytes hide any further header), No Next Header (59) and the
 * headers a firewall cannot look past (mobility 135, HIP 139, shim6 140,
 * experimental 253/254), which the data path then drops as a protocol it
 * does not forward.
 *
 * It refuses, each with its own {@link ParseError}, what a border firewall
 * should not let through (RFC 9288 §3.4 lists the trade-offs):
 * - a header running past the payload, or past the bytes present;
 * - hop-by-hop options anywhere but first (RFC 8200 §4.1), a routing,
 *   fragment or AH header twice, destination options a third time;
 * - more than {@link IPV6_MAX_EXT_BYTES} bytes of extension headers: RFC
 *   8504 §5.3 lets a node cap what it parses. The repeat rules already bound
 *   the count at six (hop-by-hop, two destination options, routing, fragment,
 *   AH), so the walk reads at most six headers and 1 KiB of them;
 * - malformed option TLVs, padding past 7 bytes or carrying data (RFC 4942
 *   §2.1.9.5), more than 8 options in one header (Linux's max_hbh_opts_number),
 *   a router alert that is not 2 bytes long (RFC 2711), the jumbo payload
 *   option (RFC 2675: a TUN never carries a jumbogram), and any option whose
 *   type's two high bits say "discard if unrecognised" (RFC 8200 §4.2): the
 *   view recognises none of them, and Linux drops the same packets (as long
 *   as it has no mobile IPv6 home address option or RPL configured);
 * - a routing header of type 0 (RFC 5095), 1 (Nimrod, deprecated), 3 (RPL)
 *   or 4 (segment routing), all of which stay inside their domain if they
 *   exist at all (RFC 9288 §3.4), and a routing header of any type with
 *   segments left: then the destination field is the next waypoint, not the
 *   host the gate and conntrack would judge. With segments left 0 any other
 *   type is inert and passes (RFC 8200 §4.4), a mobile IPv6 type 2 say.
 * - a fragment that is not a multiple of 8 bytes while more follow, or ends
 *   past 65535 bytes, and a first fragment that does not hold the whole
 *   chain and the upper-layer header (RFC 8200 §4.5, RFC 7112).
 *
 * AH is skipped rather than refused: its length is self-describing (RFC 4302
 * §2.2), so a transport-mode AH flow is tracked by its ports like any other;
 * `extFlags()` says it was there, since rewriting an address (NAT66, not
 * NPTv6) breaks its integrity check. An atomic fragment (offset 0, no more
 * fragments) is processed as an unfragmented packet, as RFC 6946 requires;
 * `hasFragmentHeader()` still tells it. Overlapping fragments (RFC 5722) need
 * the fragments seen before: the data path's fragment tracker, not this view.
 */

import { read16, read32, write16 } from "./bytes.ts";
import { pseudoHeaderSum6 } from "./checksum.ts";
import { PROTO_TCP, PROTO_UDP } from "./ipv4.ts";
import { formatIpv6, readIpv6, writeIpv6 } from "./ipv6_address.ts";
import { ParseError, parseErrorName } from "./parse_error.ts";

/** Offset of the 32-bit version (4 bits), traffic class (8) and flow label (20) word. */
export const IPV6_VER_TC_FLOW = 0;
/** Offset of the 16-bit payload length (everything after the fixed header). */
export const IPV6_PAYLOAD_LEN = 4;
/** Offset of the next header byte. */
export const IPV6_NEXT_HEADER = 6;
/** Offset of the hop limit byte. */
export const IPV6_HOP_LIMIT = 7;
/** Offset of the 128-bit source address. */
export const IPV6_SRC = 8;
/** Offset of the 128-bit destination address. */
export const IPV6_DST = 24;
/** Length of the fixed header. */
export const IPV6_HEADER_LEN = 40;

/** Next header: hop-by-hop options (RFC 8200 §4.3). */
export const PROTO_HOPOPTS = 0;
/** Next header: routing (RFC 8200 §4.4). */
export const PROTO_ROUTING = 43;
/** Next header: fragment (RFC 8200 §4.5). */
export const PROTO_FRAGMENT = 44;
/** Next header: encapsulating security payload (RFC 4303). */
export const PROTO_ESP = 50;
/** Next header: authentication header (RFC 4302). */
export const PROTO_AH = 51;
/** Next header: ICMPv6 (RFC 4443). */
export const PROTO_ICMPV6 = 58;
/** Next header: no next header (RFC 8200 §4.7). */
export const PROTO_NONE = 59;
/** Next header: destination options (RFC 8200 §4.6). */
export const PROTO_DSTOPTS = 60;

/** Offset in every extension header of its next header byte. */
export const IPV6_EXT_NEXT = 0;
/** Offset of the length byte: 8-byte units past the first 8 (AH: 4-byte units minus 2). */
export const IPV6_EXT_LEN = 1;
/** Offset in a routing header of the routing type. */
export const IPV6_ROUTING_TYPE = 2;
/** Offset in a routing header of segments left. */
export const IPV6_ROUTING_SEGMENTS_LEFT = 3;
/** Offset in a fragment header of the 13-bit offset, 2 reserved bits and the M flag. */
export const IPV6_FRAG_OFF_FLAGS = 2;
/** Offset in a fragment header of the 32-bit identification. */
export const IPV6_FRAG_IDENT = 4;
/** Length of a fragment header. */
export const IPV6_FRAG_HEADER_LEN = 8;
/** "More fragments" bit of the fragment offset word. */
export const IPV6_FRAG_MF = 0x0001;
/** Fragment offset mask of the fragment offset word; the masked value is in bytes. */
export const IPV6_FRAG_OFFSET_MASK = 0xfff8;

/** Option type: one byte of padding. */
export const IPV6_OPT_PAD1 = 0;
/** Option type: N bytes of padding. */
export const IPV6_OPT_PADN = 1;
/** Option type: router alert (RFC 2711), which MLD carries. */
export const IPV6_OPT_ROUTER_ALERT = 5;
/** Option type: jumbo payload (RFC 2675). */
export const IPV6_OPT_JUMBO = 0xc2;
/** Option types below this have action bits 00: "skip over this option" when unrecognised. */
export const IPV6_OPT_ACTION_SKIP_MAX = 0x40;

/** Most bytes of extension headers the walk accepts in one packet. */
export const IPV6_MAX_EXT_BYTES = 1024;
/** Most options other than padding in one options header (Linux's default limit). */
export const IPV6_MAX_OPTIONS = 8;
/** Most consecutive bytes of padding (RFC 8200 §4.2 needs at most 7). */
export const IPV6_MAX_PADDING = 7;

/** `extFlags()` bit: a hop-by-hop options header. */
export const IPV6_EXT_HOPOPTS = 0x01;
/** `extFlags()` bit: a routing header (with segments left 0). */
export const IPV6_EXT_ROUTING = 0x02;
/** `extFlags()` bit: a fragment header (also an atomic one). */
export const IPV6_EXT_FRAGMENT = 0x04;
/** `extFlags()` bit: one or two destination options headers. */
export const IPV6_EXT_DSTOPTS = 0x08;
/** `extFlags()` bit: an authentication header. */
export const IPV6_EXT_AH = 0x10;
/** `extFlags()` bit: a router alert option in hop-by-hop options. */
export const IPV6_EXT_ROUTER_ALERT = 0x20;

const EXT_NAMES = ["hbh", "rt", "frag", "dst", "ah", "ra"];

/** 1 for the next header values the walk passes: 0, 43, 44, 51 and 60. */
const EXT_HEADER = new Uint8Array(256);
for (const p of [PROTO_HOPOPTS, PROTO_ROUTING, PROTO_FRAGMENT, PROTO_AH, PROTO_DSTOPTS]) {
  EXT_HEADER[p] = 1;
}

/** Routing types refused whatever their segments left: 0, 1, 3 (RPL) and 4 (SRH). */
function refusedRoutingType(type: number): boolean {
  return type === 0 || type === 1 || type === 3 || type === 4;
}

/** The smallest upper-layer header a first fragment must hold (RFC 7112), 0 if unknown. */
function upperHeaderMin(proto: number): number {
  return proto === PROTO_TCP ? 20 : proto === PROTO_UDP || proto === PROTO_ICMPV6 ? 8 : 0;
}

/**
 * A reusable view over an IPv6 packet at `buf[off..off+len)`. Getters of the
 * fixed header read the bytes directly and never throw; the walk's results
 * (`upperProtocol()`, `upperOffset()`, the fragment fields, `extFlags()`)
 * are set by `check()` or `checkHeader()`, and after `None` no getter reads
 * outside the view.
 */
export class Ipv6Packet {
  /** The underlying buffer. */
  buf: Uint8Array = new Uint8Array(0);
  /** Offset of the IPv6 header in `buf`. */
  off = 0;
  /** Bytes available from `off` (may exceed 40 + payload length: padding). */
  len = 0;

  #upper = 0;
  #upperOff = 0;
  #end = 0;
  #count = 0;
  #flags = 0;
  #fragment = false;
  #fragOff = 0;
  #more = false;
  #ident = 0;

  /** Points the view at `buf[off..off+len)` and forgets the last walk; returns `this`. */
  bind(buf: Uint8Array, off = 0, len = buf.length - off): this {
    this.buf = buf;
    this.off = off;
    this.len = len;
    this.#upperOff = this.#end = 0; // upperLen() and extHeaderLen() read 0 until a walk
    return this;
  }

  /** Validates the fixed header, the payload length and the extension-header chain. */
  check(): ParseError {
    if (this.len < IPV6_HEADER_LEN) return ParseError.Truncated;
    if (this.version() !== 6) return ParseError.BadVersion;
    const end = IPV6_HEADER_LEN + this.payloadLen();
    if (end > this.len) return ParseError.BadTotalLen;
    return this.#walk(this.off + end, true);
  }

  /**
   * Validates the fixed header and walks the chain within the bytes present,
   * whatever the payload length says: for the truncated copy of a packet that
   * an ICMPv6 error quotes. Fragment lengths are not checked (the copy is cut).
   */
  checkHeader(): ParseError {
    if (this.len < IPV6_HEADER_LEN) return ParseError.Truncated;
    if (this.version() !== 6) return ParseError.BadVersion;
    const end = Math.min(IPV6_HEADER_LEN + this.payloadLen(), this.len);
    return this.#walk(this.off + end, false);
  }

  #reset(): void {
    this.#upper = 0;
    this.#upperOff = 0;
    this.#end = 0;
    this.#count = 0;
    this.#flags = 0;
    this.#fragment = false;
    this.#fragOff = 0;
    this.#more = false;
    this.#ident = 0;
  }

  /** Walks the extension headers from the fixed header up to `end` (absolute). */
  #walk(end: number, whole: boolean): ParseError {
    this.#reset();
    this.#end = end;
    const next = this.buf[this.off + IPV6_NEXT_HEADER] | 0;
    if (EXT_HEADER[next] === 0) {
      // Most packets carry none: kept small so that it inlines into check().
      this.#upper = next;
      this.#upperOff = this.off + IPV6_HEADER_LEN;
      return ParseError.None;
    }
    return this.#walkChain(next, end, whole);
  }

  #walkChain(next: number, end: number, whole: boolean): ParseError {
    const b = this.buf;
    const first = this.off + IPV6_HEADER_LEN;
    let i = first;
    let dstopts = 0;
    for (;;) {
      if (EXT_HEADER[next] === 0) break;
      if (i + 8 > end) return ParseError.Ipv6ExtTruncated; // every extension header is >= 8 bytes
      const hl = next === PROTO_FRAGMENT
        ? IPV6_FRAG_HEADER_LEN
        : next === PROTO_AH
        ? ((b[i + IPV6_EXT_LEN] | 0) + 2) << 2
        : ((b[i + IPV6_EXT_LEN] | 0) + 1) << 3;
      if (i + hl - first > IPV6_MAX_EXT_BYTES) return ParseError.Ipv6ExtChainTooLong;
      if (i + hl > end) return ParseError.Ipv6ExtTruncated;
      let err: ParseError = ParseError.None;
      if (next === PROTO_HOPOPTS) {
        if (i !== first) return ParseError.Ipv6HopByHopNotFirst;
        this.#flags |= IPV6_EXT_HOPOPTS;
        err = this.#options(i, hl, true);
      } else if (next === PROTO_DSTOPTS) {
        if (++dstopts > 2) return ParseError.Ipv6ExtRepeated;
        this.#flags |= IPV6_EXT_DSTOPTS;
        err = this.#options(i, hl, false);
      } else if (next === PROTO_ROUTING) {
        if (this.#flags & IPV6_EXT_ROUTING) return ParseError.Ipv6ExtRepeated;
        this.#flags |= IPV6_EXT_ROUTING;
        if (refusedRoutingType(b[i + IPV6_ROUTING_TYPE] | 0)) return ParseError.Ipv6RoutingType;
        if ((b[i + IPV6_ROUTING_SEGMENTS_LEFT] | 0) !== 0) {
          return ParseError.Ipv6RoutingSegmentsLeft;
        }
      } else if (next === PROTO_FRAGMENT) {
        if (this.#flags & IPV6_EXT_FRAGMENT) return ParseError.Ipv6ExtRepeated;
        this.#flags |= IPV6_EXT_FRAGMENT;
        err = this.#fragmentHeader(i, end, whole);
        if (err === ParseError.None && this.#fragOff !== 0) {
          // A later fragment: the rest is data; its first fragment held the upper layer.
          this.#count++;
          this.#upper = b[i + IPV6_EXT_NEXT] | 0;
          this.#upperOff = i + IPV6_FRAG_HEADER_LEN;
          return ParseError.None;
        }
      } else {
        if (this.#flags & IPV6_EXT_AH) return ParseError.Ipv6ExtRepeated;
        this.#flags |= IPV6_EXT_AH;
      }
      if (err !== ParseError.None) return err;
      this.#count++;
      next = b[i + IPV6_EXT_NEXT] | 0;
      i += hl;
    }
    this.#upper = next;
    this.#upperOff = i;
    if (whole && this.#fragment && end - i < upperHeaderMin(next)) {
      return ParseError.Ipv6BadFragment;
    }
    return ParseError.None;
  }

  /** Reads the fragment header at `i`; an atomic fragment leaves `#fragment` false (RFC 6946). */
  #fragmentHeader(i: number, end: number, whole: boolean): ParseError {
    const word = read16(this.buf, i + IPV6_FRAG_OFF_FLAGS);
    const offset = word & IPV6_FRAG_OFFSET_MASK;
    const more = (word & IPV6_FRAG_MF) !== 0;
    if (offset === 0 && !more) return ParseError.None;
    this.#fragment = true;
    this.#fragOff = offset;
    this.#more = more;
    this.#ident = read32(this.buf, i + IPV6_FRAG_IDENT);
    if (!whole) return ParseError.None;
    const data = end - i - IPV6_FRAG_HEADER_LEN;
    if ((more && (data & 7) !== 0) || offset + data > 0xffff) return ParseError.Ipv6BadFragment;
    return ParseError.None;
  }

  /** Validates the option TLVs of a hop-by-hop or destination options header at `h`. */
  #options(h: number, hl: number, hopByHop: boolean): ParseError {
    const b = this.buf;
    const end = h + hl;
    let pad = 0, options = 0;
    for (let i = h + 2; i < end;) {
      const type = b[i] | 0;
      if (type === IPV6_OPT_PAD1) {
        if (++pad > IPV6_MAX_PADDING) return ParseError.Ipv6BadOption;
        i++;
        continue;
      }
      if (i + 2 > end) return ParseError.Ipv6BadOption;
      const n = b[i + 1] | 0;
      if (i + 2 + n > end) return ParseError.Ipv6BadOption;
      if (type === IPV6_OPT_PADN) {
        pad += 2 + n;
        if (pad > IPV6_MAX_PADDING) return ParseError.Ipv6BadOption;
        for (let j = i + 2; j < i + 2 + n; j++) if (b[j] !== 0) return ParseError.Ipv6BadOption;
      } else {
        pad = 0;
        // Types from 0x40 up (jumbo among them) say "discard if unrecognised" (RFC 8200 §4.2).
        if (++options > IPV6_MAX_OPTIONS || type >= IPV6_OPT_ACTION_SKIP_MAX) {
          return ParseError.Ipv6BadOption;
        }
        if (hopByHop && type === IPV6_OPT_ROUTER_ALERT) {
          if (n !== 2) return ParseError.Ipv6BadOption;
          this.#flags |= IPV6_EXT_ROUTER_ALERT;
        }
      }
      i += 2 + n;
    }
    return ParseError.None;
  }

  /** IP version (6 for a valid packet). */
  version(): number {
    return this.buf[this.off] >>> 4;
  }

  /** Traffic class byte (DSCP and ECN). */
  trafficClass(): number {
    return (read16(this.buf, this.off) >>> 4) & 0xff;
  }

  /** Flow label, 20 bits. */
  flowLabel(): number {
    return read32(this.buf, this.off + IPV6_VER_TC_FLOW) & 0xfffff;
  }

  /** Payload length: the bytes after the fixed header, extension headers included. */
  payloadLen(): number {
    return read16(this.buf, this.off + IPV6_PAYLOAD_LEN);
  }

  /** The fixed header's next header byte (the first extension header, or the upper layer). */
  nextHeader(): number {
    return this.buf[this.off + IPV6_NEXT_HEADER] | 0;
  }

  /** Hop limit. */
  hopLimit(): number {
    return this.buf[this.off + IPV6_HOP_LIMIT] | 0;
  }

  /** Absolute index in `buf` of the 16-byte source address. */
  srcOffset(): number {
    return this.off + IPV6_SRC;
  }

  /** Absolute index in `buf` of the 16-byte destination address. */
  dstOffset(): number {
    return this.off + IPV6_DST;
  }

  /** Word `i` (0..3) of the source address, unsigned 32-bit. */
  srcWord(i: number): number {
    return read32(this.buf, this.off + IPV6_SRC + 4 * i);
  }

  /** Word `i` (0..3) of the destination address, unsigned 32-bit. */
  dstWord(i: number): number {
    return read32(this.buf, this.off + IPV6_DST + 4 * i);
  }

  /** Copies the source address into `out[at..at+4)`. */
  readSrc(out: Uint32Array, at = 0): void {
    readIpv6(this.buf, this.off + IPV6_SRC, out, at);
  }

  /** Copies the destination address into `out[at..at+4)`. */
  readDst(out: Uint32Array, at = 0): void {
    readIpv6(this.buf, this.off + IPV6_DST, out, at);
  }

  /** Absolute index in `buf` of the payload (the first extension header or the upper layer). */
  payloadOffset(): number {
    return this.off + IPV6_HEADER_LEN;
  }

  /** The upper-layer protocol the walk ended at (`PROTO_TCP`, `PROTO_ICMPV6`, `PROTO_ESP`, ...). */
  upperProtocol(): number {
    return this.#upper;
  }

  /** Absolute index in `buf` of the upper-layer header (of a later fragment: its data). */
  upperOffset(): number {
    return this.#upperOff;
  }

  /** Bytes from the upper-layer header to the end of the payload (or of the bytes present). */
  upperLen(): number {
    return Math.max(0, this.#end - this.#upperOff);
  }

  /** Bytes of extension headers the walk passed. */
  extHeaderLen(): number {
    return Math.max(0, this.#upperOff - this.off - IPV6_HEADER_LEN);
  }

  /** Number of extension headers the walk passed. */
  extHeaderCount(): number {
    return this.#count;
  }

  /** The `IPV6_EXT_*` bits of the headers the walk passed. */
  extFlags(): number {
    return this.#flags;
  }

  /** True with a fragment header, atomic or not. */
  hasFragmentHeader(): boolean {
    return (this.#flags & IPV6_EXT_FRAGMENT) !== 0;
  }

  /** True for a fragment of a larger datagram (not an atomic fragment). */
  isFragment(): boolean {
    return this.#fragment;
  }

  /** Fragment offset in bytes (0 for the first fragment and for no fragment). */
  fragOffset(): number {
    return this.#fragOff;
  }

  /** The M flag of a fragment. */
  moreFragments(): boolean {
    return this.#more;
  }

  /** The fragment identification, unsigned 32-bit (0 without a fragment). */
  fragIdent(): number {
    return this.#ident;
  }

  /**
   * The unfolded pseudo-header sum (RFC 8200 §8.1) of the upper layer, for
   * `TcpPacket.verifyChecksum6` and friends. Of a fragment, the sum covers
   * the reassembled datagram's length, which this view does not know.
   */
  pseudoHeaderSum(): number {
    return pseudoHeaderSum6(this.buf, this.off, this.#upper, this.upperLen());
  }

  /** Sets the source address from `w[at..at+4)` (no checksum is updated). */
  setSrc(w: ArrayLike<number>, at = 0): void {
    writeIpv6(this.buf, this.off + IPV6_SRC, w, at);
  }

  /** Sets the destination address from `w[at..at+4)` (no checksum is updated). */
  setDst(w: ArrayLike<number>, at = 0): void {
    writeIpv6(this.buf, this.off + IPV6_DST, w, at);
  }

  /** Sets the hop limit. */
  setHopLimit(n: number): void {
    this.buf[this.off + IPV6_HOP_LIMIT] = n;
  }

  /** Sets the payload length. */
  setPayloadLen(n: number): void {
    write16(this.buf, this.off + IPV6_PAYLOAD_LEN, n);
  }

  /**
   * One line, such as `IPv6 2001:db8::1 > 2001:db8::2 next=6 len=40 hlim=64`,
   * with `ext=hbh,frag upper=58` and `frag=1232+ id=0x...` when present.
   */
  toString(): string {
    const err = this.check();
    if (err !== ParseError.None) return `IPv6 [${parseErrorName(err)}] buflen=${this.len}`;
    const w = new Uint32Array(8);
    this.readSrc(w, 0);
    this.readDst(w, 4);
    const ext = this.#flags === 0
      ? ""
      : ` ext=${EXT_NAMES.filter((_, i) => this.#flags & (1 << i)).join(",")} upper=${this.#upper}`;
    const frag = this.#fragment
      ? ` frag=${this.#fragOff}${this.#more ? "+" : ""} id=0x${this.#ident.toString(16)}`
      : "";
    return `IPv6 ${formatIpv6(w, 0)} > ${formatIpv6(w, 4)} next=${this.nextHeader()}` +
      ` len=${this.payloadLen()} hlim=${this.hopLimit()}${ext}${frag}`;
  }
}
