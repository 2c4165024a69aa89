/**
 * The per-packet pipeline for IPv6, beside the IPv4 one (`pipeline.ts`
 * sends every packet whose version nibble is 6 here, and only on worker 0:
 * the trackers hand IPv6 to it, so the interned ids of `ipv6_ids.ts` have a
 * single writer). Same steps: validate (the extension-header walk), look
 * the flow up, fast path from the flow entry, else admission's verdict
 * (`admission6.ts`), applied here; ICMPv6 errors about a tracked flow pass
 * (translated for NAT66), echo is tracked like any flow, neighbour
 * discovery and router advertisements (which routing keeps in the kernel)
 * are dropped if they come. The flow table is the IPv4 one: tuples of
 * interned ids, translation to a 128-bit address read back from the ids.
 *
 * A passing packet gets its hop limit back as IPv4 its TTL (`nat/ttl.ts`:
 * the kernel took one hop into the TUN and takes one out of it).
 *
 * Fragments: the first (which holds the whole header chain and the upper
 * header, `Ipv6Packet.check()`) is judged and its translation remembered
 * under (src id, dst id, protocol, identification); later ones follow it or
 * are dropped as orphans, as over IPv4.
 *
 * No allocation and no throw per packet.
 */
import { CSUM_NONE, CSUM_PARTIAL } from "../device/mod.ts";
import {
  ConnTable,
  FLAG_DNAT,
  FLAG_GATED,
  FLAG_LOCAL,
  FLAG_SNAT,
  LOCAL_FLOW_TIMEOUT_S,
  TcpSegment,
  TRACK_ACCEPT,
  TRACK_INVALID,
  TRACK_OUT_OF_WINDOW,
  TRACK_REOPEN,
} from "../conntrack/mod.ts";
import type { UnlockTable } from "../knock/mod.ts";
import {
  ICMPV6_ECHO_REPLY,
  ICMPV6_ECHO_REQUEST,
  Icmpv6Packet,
  IPV6_HOP_LIMIT,
  Ipv6Packet,
  isIcmpv6ErrorType,
  isMldType,
  isNdType,
  ParseError,
  PROTO_ICMPV6,
  PROTO_TCP,
  PROTO_UDP,
  pseudoHeaderSum6,
  read16,
  TCP_ACK,
  TCP_CHECKSUM,
  TCP_FIN,
  TCP_RST,
  TCP_SYN,
  TcpPacket,
  UDP_CHECKSUM,
  UdpPacket,
  writeIpv6,
} from "../packet/mod.ts";
import { type Admission, ADMITTED } from "./admission.ts";
import { Admission6 } from "./admission6.ts";
import { Drop, MAX_RULE_IDS, RULE_BASE, Stat } from "./counters.ts";
import { FragmentTable } from "./fragments.ts";
import type { Ipv6Ids } from "./ipv6_ids.ts";
import type { DatapathSettings } from "./messages.ts";
import type { OpenPortsRule, PortForwardRule } from "../nat/rule.ts";
import { IPV6_DST_AT, IPV6_SRC_AT, rewrite6, rewriteQuoted6 } from "./rewrite6.ts";

/** What the IPv6 pipeline works with: worker 0's tables. */
export interface Pipeline6Init {
  ct: ConnTable;
  admission: Admission;
  settings: DatapathSettings;
  forwards: PortForwardRule[];
  openPorts: OpenPortsRule[];
  counters: Float64Array;
}

/** Parse, track, apply admission6's verdict, translate: IPv6 on worker 0. */
export class Pipeline6 {
  readonly ct: ConnTable;
  readonly admission: Admission6;
  readonly ids: Ipv6Ids;
  readonly unlocks: UnlockTable;
  readonly fragments = new FragmentTable();
  readonly #c: Float64Array;
  /** Per flow: the second it last refreshed its unlock, and the prefix id of that unlock. */
  readonly #touchedAt: Uint32Array;
  readonly #prefixOf: Uint32Array;
  readonly #ip = new Ipv6Packet();
  readonly #inner = new Ipv6Packet();
  readonly #tcp = new TcpPacket();
  readonly #udp = new UdpPacket();
  readonly #icmp = new Icmpv6Packet();
  readonly #seg = new TcpSegment();
  #sport = 0;
  #dport = 0;
  #flags = 0;
  #icmpType = 0;

  constructor(init: Pipeline6Init) {
    this.ct = init.ct;
    this.#c = init.counters;
    this.unlocks = init.admission.unlocks;
    this.admission = new Admission6(init.admission, init.settings, init.forwards, init.openPorts);
    this.ids = this.admission.ids;
    this.#touchedAt = new Uint32Array(this.ct.capacity);
    this.#prefixOf = new Uint32Array(this.ct.capacity);
  }

  /** Flow `id` leaves the table: its tuples let go of their ids. */
  release(id: number): void {
    const ct = this.ct;
    this.admission.release(ct.origSrc(id), ct.origDst(id), ct.replySrc(id), ct.replyDst(id));
  }

  #drop(reason: number): false {
    this.#c[reason]++;
    this.#c[Stat.Drops]++;
    return false;
  }

  /** Processes one IPv6 packet in place (counted in by the caller); true to send it on. */
  process(buf: Uint8Array, off: number, len: number, csum: number, nowMs: number): boolean {
    if (!this.#decide(buf, off, len, csum, nowMs)) return false;
    const hl = buf[off + IPV6_HOP_LIMIT];
    if (hl < 255) buf[off + IPV6_HOP_LIMIT] = hl + 1;
    this.#c[Stat.TxPackets]++;
    this.#c[Stat.TxBytes] += len;
    return true;
  }

  #decide(buf: Uint8Array, off: number, len: number, csum: number, nowMs: number): boolean {
    const ip = this.#ip.bind(buf, off, len);
    const err = ip.check();
    if (err !== ParseError.None) return this.#drop(err);
    this.#fragTranslated = false;
    const partial = csum === CSUM_PARTIAL;
    if (ip.isFragment()) {
      this.#c[Stat.Fragments]++;
      if (ip.fragOffset() !== 0) return this.#laterFragment(ip, nowMs);
    }
    const proto = ip.upperProtocol();
    const perr = this.#parseL4(ip, proto, csum === CSUM_NONE && !ip.isFragment());
    if (perr !== ParseError.None) return this.#drop(perr);
    if (
      proto === PROTO_ICMPV6 && this.#icmpType !== ICMPV6_ECHO_REQUEST &&
      this.#icmpType !== ICMPV6_ECHO_REPLY
    ) {
      return this.#icmpMessage(ip, nowMs);
    }
    const ids = this.ids, nowSec = Math.floor(nowMs / 1000);
    const s = ids.findAddress(buf, off + IPV6_SRC_AT, nowSec);
    const d = s === 0 ? 0 : ids.findAddress(buf, off + IPV6_DST_AT, nowSec);
    const h = d === 0 ? -1 : this.ct.lookup(proto, s, this.#sport, d, this.#dport);
    const pass = h >= 0
      ? this.#fastPath(h, ip, len, partial, nowMs)
      : this.#slowPath(ip, proto, len, partial, nowMs);
    if (pass && ip.moreFragments()) this.#rememberFragment(ip, nowMs);
    return pass;
  }

  /** Validates the upper-layer header (its checksum when `verify`) and reads its ports and flags. */
  #parseL4(ip: Ipv6Packet, proto: number, verify: boolean): number {
    const off = ip.upperOffset(), len = ip.upperLen();
    if (proto === PROTO_TCP) {
      const t = this.#tcp.bind(ip.buf, off, len);
      const e = t.check();
      if (e !== ParseError.None) return e;
      if (verify && !t.verifyChecksum6(ip.pseudoHeaderSum())) return ParseError.BadL4Checksum;
      this.#sport = t.srcPort();
      this.#dport = t.dstPort();
      this.#flags = this.#seg.read(t).flags;
      return ParseError.None;
    }
    if (proto === PROTO_UDP) {
      const u = this.#udp.bind(ip.buf, off, len);
      // A first fragment holds the UDP header but not the whole datagram its length names.
      const e = ip.isFragment() ? (len < 8 ? ParseError.Truncated : ParseError.None) : u.check6();
      if (e !== ParseError.None) return e;
      if (verify && !u.verifyChecksum6(ip.pseudoHeaderSum())) return ParseError.BadL4Checksum;
      this.#sport = u.srcPort();
      this.#dport = u.dstPort();
      this.#flags = 0;
      return ParseError.None;
    }
    if (proto === PROTO_ICMPV6) {
      if (ip.isFragment()) return Drop.Protocol; // fragmented ICMPv6: nothing legitimate needs it
      // Verified whatever the device says: no offload covers ICMPv6.
      const m = this.#icmp.bind(ip.buf, off, len);
      const e = m.check(ip.pseudoHeaderSum());
      if (e !== ParseError.None) return e;
      this.#icmpType = m.type();
      this.#sport = this.#dport = m.ident();
      this.#flags = 0;
      return ParseError.None;
    }
    return Drop.Protocol;
  }

  /** A packet of tracked flow handle `h`: account and rewrite from the flow entry. */
  #fastPath(h: number, ip: Ipv6Packet, len: number, partial: boolean, nowMs: number): boolean {
    const ct = this.ct, id = h >> 1;
    const flags = ct.flags[id];
    const v = (flags & FLAG_LOCAL) !== 0
      ? this.#localFlow(h, len, nowMs)
      : ct.track(h, len, Math.floor(nowMs / 1000), this.#seg);
    if (v !== TRACK_ACCEPT) {
      if (v === TRACK_INVALID) return this.#drop(Drop.InvalidTcp);
      if (v === TRACK_OUT_OF_WINDOW) return this.#drop(Drop.TcpOutOfWindow);
      // TRACK_REOPEN: a SYN on a finished tuple is judged as a new flow (admission.reopen's rule).
      ct.kill(id, Math.floor(nowMs / 1000));
      return this.#slowPath(ip, PROTO_TCP, len, partial, nowMs);
    }
    if ((flags & FLAG_GATED) !== 0 && (h & 1) === 0 && ct.lastSeen(id) !== this.#touchedAt[id]) {
      // An admitted flow keeps its unlock alive; once a second is enough.
      this.#touchedAt[id] = ct.lastSeen(id);
      this.unlocks.touch(this.#prefixOf[id], nowMs, len);
    }
    this.#c[Stat.FastPath]++;
    this.#countRule(ct.ruleId[id], len);
    if ((flags & (FLAG_DNAT | FLAG_SNAT)) === 0) return true;
    return this.#translate(h, ip, partial);
  }

  /** A packet without a flow: admission6 decides; an admitted one is tracked and translated. */
  #slowPath(ip: Ipv6Packet, proto: number, len: number, partial: boolean, nowMs: number): boolean {
    this.#c[Stat.SlowPath]++;
    const f = this.#flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN);
    const opening = proto === PROTO_TCP
      ? f === TCP_SYN
      : proto === PROTO_UDP || this.#icmpType === ICMPV6_ECHO_REQUEST;
    const a = this.admission;
    const midStream = proto === PROTO_TCP && f === TCP_ACK;
    const v = a.admit(ip.buf, ip.off, proto, this.#sport, this.#dport, opening, nowMs, midStream);
    if (v !== ADMITTED) return this.#drop(v);
    const ct = this.ct, id = a.flowId, h = 2 * id + a.flowDir;
    this.#prefixOf[id] = a.prefix;
    this.#touchedAt[id] = 0;
    if ((ct.flags[id] & FLAG_LOCAL) !== 0) {
      ct.touch(2 * id, len, Math.floor(nowMs / 1000), LOCAL_FLOW_TIMEOUT_S);
      return true;
    }
    ct.track(h, len, Math.floor(nowMs / 1000), this.#seg);
    this.#countRule(ct.ruleId[id], len);
    if ((ct.flags[id] & (FLAG_DNAT | FLAG_SNAT)) === 0) return true;
    return this.#translate(h, ip, partial);
  }

  /**
   * A packet of a flow delivered to the appliance itself (the management
   * port), of which only the client's half is seen: accounted without TCP
   * state, as over IPv4; a SYN starts a new connection on the tuple
   * (TRACK_REOPEN: admission judges it again).
   */
  #localFlow(h: number, len: number, nowMs: number): number {
    const f = this.#flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN);
    if (f === TCP_SYN) return TRACK_REOPEN;
    const timeout = (f & (TCP_RST | TCP_FIN)) !== 0 ? 10 : LOCAL_FLOW_TIMEOUT_S;
    this.ct.touch(h, len, Math.floor(nowMs / 1000), timeout);
    return TRACK_ACCEPT;
  }

  /** Rewrites the packet of handle `h` to its translation (NAT66, NPTv6: `npt6.ts`). */
  #translate(h: number, ip: Ipv6Packet, partial: boolean): boolean {
    const ct = this.ct, id = h >> 1, keys = this.ids.keys();
    const reply = (h & 1) === 1;
    const src = reply ? ct.replySrc(id) : ct.origSrc(id);
    const dst = reply ? ct.replyDst(id) : ct.origDst(id);
    const ns = ct.translatedSrc(h), nsp = ct.translatedSrcPort(h);
    const nd = ct.translatedDst(h), ndp = ct.translatedDstPort(h);
    const buf = ip.buf, proto = ip.upperProtocol(), l4 = ip.upperOffset(), l4Len = ip.upperLen();
    if (ns !== src || nsp !== this.#sport) {
      const k = this.ids.slotOf(ns);
      if (k < 0) return this.#drop(Drop.Ipv6IdsFull);
      if (!rewrite6(buf, ip.off, IPV6_SRC_AT, keys, 4 * k, nsp, proto, l4, l4Len, partial)) {
        return this.#drop(ParseError.Truncated);
      }
    }
    if (nd !== dst || ndp !== this.#dport) {
      const k = this.ids.slotOf(nd);
      if (k < 0) return this.#drop(Drop.Ipv6IdsFull);
      if (!rewrite6(buf, ip.off, IPV6_DST_AT, keys, 4 * k, ndp, proto, l4, l4Len, partial)) {
        return this.#drop(ParseError.Truncated);
      }
    }
    this.#fragTranslated = true;
    this.#origSrc = src;
    this.#origDst = dst;
    this.#fragSrc = ns;
    this.#fragDst = nd;
    return true;
  }

  #countRule(rule: number, len: number): void {
    if (rule < 0 || rule >= MAX_RULE_IDS) return;
    const c = this.#c, i = RULE_BASE + 2 * rule;
    c[i]++;
    c[i + 1] += len;
  }

  /**
   * An ICMPv6 message other than echo: an error quoting a packet of a
   * tracked flow passes as a packet of that flow travelling the other way
   * (translated for NAT66: both headers, then the error's checksum summed
   * again); neighbour discovery and MLD are the kernel's; the rest is dropped.
   */
  #icmpMessage(ip: Ipv6Packet, nowMs: number): boolean {
    const type = this.#icmpType;
    if (isNdType(type) || isMldType(type)) return this.#drop(Drop.NeighbourDiscovery);
    if (!isIcmpv6ErrorType(type)) return this.#drop(Drop.IcmpUnmatched);
    const buf = ip.buf, m = this.#icmp;
    const end = ip.upperOffset() + ip.upperLen(), inOff = m.embeddedOffset();
    const inner = this.#inner.bind(buf, inOff, end - inOff);
    if (inner.checkHeader() !== ParseError.None) return this.#drop(Drop.IcmpUnmatched);
    const proto = inner.upperProtocol(), l4 = inner.upperOffset();
    if (end - l4 < 8) return this.#drop(Drop.IcmpUnmatched);
    const icmp = proto === PROTO_ICMPV6;
    if (icmp && buf[l4] !== ICMPV6_ECHO_REQUEST && buf[l4] !== ICMPV6_ECHO_REPLY) {
      return this.#drop(Drop.IcmpUnmatched);
    }
    if (!icmp && proto !== PROTO_TCP && proto !== PROTO_UDP) return this.#drop(Drop.IcmpUnmatched);
    const sp = read16(buf, icmp ? l4 + 4 : l4), dp = icmp ? sp : read16(buf, l4 + 2);
    const ids = this.ids, nowSec = Math.floor(nowMs / 1000);
    const qs = ids.find(buf, inOff + IPV6_SRC_AT, 128, nowSec);
    const qd = qs === 0 ? 0 : ids.find(buf, inOff + IPV6_DST_AT, 128, nowSec);
    // The quoted packet went qs -> qd; the error travels back, so look up its inverse.
    const h = qd === 0 ? -1 : this.ct.lookup(proto, qd, dp, qs, sp);
    if (h < 0) return this.#drop(Drop.IcmpUnmatched);
    const ct = this.ct;
    const nat = (ct.flags[h >> 1] & (FLAG_DNAT | FLAG_SNAT)) !== 0; // NAT66 or NPTv6
    if (nat && !this.#translateError(ip, h, qd, l4, end, proto)) {
      return this.#drop(Drop.IcmpUnmatched);
    }
    ct.track(h, 0, nowSec, null);
    this.#c[Stat.IcmpErrorsTranslated]++;
    return true;
  }

  /** NAT66 of an ICMPv6 error travelling as handle `h` (the quoted destination `qd`, its L4 at `l4`). */
  #translateError(ip: Ipv6Packet, h: number, qd: number, l4: number, end: number, proto: number) {
    const ct = this.ct, ids = this.ids, keys = ids.keys(), buf = ip.buf, off = ip.off;
    const nd = ids.slotOf(ct.translatedDst(h)), ns = ids.slotOf(ct.translatedSrc(h));
    if (nd < 0 || ns < 0) return false;
    const inOff = this.#icmp.embeddedOffset();
    // The flow's peer reporting about its own packet: its address is translated like the packet's.
    const peer = ids.find(buf, off + IPV6_SRC_AT, 128, 0) === qd;
    writeIpv6(buf, off + IPV6_DST_AT, keys, 4 * nd);
    if (peer) writeIpv6(buf, off + IPV6_SRC_AT, keys, 4 * ns);
    const icmp = proto === PROTO_ICMPV6, tcp = proto === PROTO_TCP;
    const csum = icmp
      ? l4 + 2
      : tcp
      ? (end - l4 >= 18 ? l4 + TCP_CHECKSUM : -1)
      : l4 + UDP_CHECKSUM;
    const sp = ct.translatedDstPort(h), dp = ct.translatedSrcPort(h);
    rewriteQuoted6(buf, inOff + IPV6_SRC_AT, keys, 4 * nd, icmp ? l4 + 4 : l4, sp, csum);
    rewriteQuoted6(buf, inOff + IPV6_DST_AT, keys, 4 * ns, icmp ? -1 : l4 + 2, dp, csum);
    this.#icmp.fillChecksum(pseudoHeaderSum6(buf, off, PROTO_ICMPV6, ip.upperLen()));
    return true;
  }

  // Set by #translate for a first fragment: the translation its later fragments get.
  #fragTranslated = false;
  #fragSrc = 0;
  #fragDst = 0;

  /** The fragment table's key for an IPv6 identification: 16 bits go with the protocol. */
  static #fragProto(proto: number, ident: number): number {
    return proto + 256 * (ident >>> 16);
  }

  /** A first fragment passed: its later fragments get its address translation. */
  #rememberFragment(ip: Ipv6Packet, nowMs: number): void {
    const ids = this.ids, buf = ip.buf, nowSec = Math.floor(nowMs / 1000);
    const s = ids.find(buf, ip.off + IPV6_SRC_AT, 128, nowSec);
    const d = ids.find(buf, ip.off + IPV6_DST_AT, 128, nowSec);
    if (s === 0 || d === 0) return;
    // The addresses now in the header are the translated ones: key by what the sender wrote.
    const src = this.#fragTranslated ? this.#origSrc : s,
      dst = this.#fragTranslated ? this.#origDst : d;
    const ident = ip.fragIdent();
    this.fragments.remember(
      src,
      dst,
      Pipeline6.#fragProto(ip.upperProtocol(), ident),
      ident & 0xffff,
      this.#fragTranslated ? this.#fragSrc : s,
      this.#fragTranslated ? this.#fragDst : d,
      nowMs,
    );
  }

  #origSrc = 0;
  #origDst = 0;

  /** A later fragment: its first fragment's address translation, or dropped. */
  #laterFragment(ip: Ipv6Packet, nowMs: number): boolean {
    const ids = this.ids, buf = ip.buf, nowSec = Math.floor(nowMs / 1000);
    const s = ids.find(buf, ip.off + IPV6_SRC_AT, 128, nowSec);
    const d = s === 0 ? 0 : ids.find(buf, ip.off + IPV6_DST_AT, 128, nowSec);
    const ident = ip.fragIdent();
    const f = d === 0 ? undefined : this.fragments.find(
      s,
      d,
      Pipeline6.#fragProto(ip.upperProtocol(), ident),
      ident & 0xffff,
      nowMs,
    );
    if (f === undefined) return this.#drop(Drop.FragmentOrphan);
    const keys = ids.keys();
    if (f.newSrc !== f.src) {
      const k = ids.slotOf(f.newSrc);
      if (k < 0) return this.#drop(Drop.FragmentOrphan);
      writeIpv6(buf, ip.off + IPV6_SRC_AT, keys, 4 * k);
    }
    if (f.newDst !== f.dst) {
      const k = ids.slotOf(f.newDst);
      if (k < 0) return this.#drop(Drop.FragmentOrphan);
      writeIpv6(buf, ip.off + IPV6_DST_AT, keys, 4 * k);
    }
    return true;
  }
}
