/**
 * The IPv6 gate: may an IPv6 packet of no tracked flow open one? IPv6 has no
 * NAT to hide the LAN behind, so the model is the usual IPv6 firewall's
 * (RFC 6092): from the LAN out, any flow is tracked and allowed; from the
 * WAN, only
 * - a **pinhole**: an open-ports rule whose private address is a LAN host's
 *   global IPv6 address, to that address and those ports, not translated;
 * - a **NAT66 forward**: a port forward whose private address is IPv6,
 *   public ports on a WAN IPv6 address rewritten to the LAN host's (the
 *   router's behaviour, where an operator wants one public address);
 * - an **NPTv6** outside address (an uplink's `npt6`, `npt6.ts`): judged as
 *   a pinhole to the LAN host it maps to, and the flow keeps the mapping
 *   (new flows from the LAN leave from their outside address the same way);
 * each admitting a source its rule's knock enforcement lets through: one
 * whose prefix (`ipv6.unlockPrefix`, /64 by default: privacy addresses
 * (RFC 8981) rotate inside the /64 a host is given, so an unlock of the
 * address alone would end with the next rotation) a knock unlocked, or an
 * allow-listed one. Knocks are watched on the WAN IPv6 addresses with the
 * same verifier, replay memory and penalties as IPv4, keyed on the source's
 * interned prefix, so an IPv4 knock unlocks no IPv6 prefix and the reverse.
 *
 * The management port on the WAN IPv6 addresses of the management uplinks
 * is gated as over IPv4 (`Admission.#wanGate`): TCP from a source whose
 * prefix is unlocked (by any user) or that is allow-listed starts a flow
 * delivered to the appliance's own listener, untranslated and tracked one
 * way (the kernel's answers leave by its routes, not through the TUN); a
 * locked source is dropped as `locked`, unanswered. From the LAN it is
 * reached as over IPv4, without a knock.
 *
 * Not over IPv6 (dropped and counted): ICMPv6 echo from the WAN (the WAN
 * addresses answer no ping, and the kernel keeps ICMPv6 to them in any
 * case), hairpin to a NAT66 forward.
 *
 * Loose pickup (a restart: the flow snapshot holds no IPv6 flow): a TCP
 * segment in mid stream (ACK alone) from the LAN starts a flow as if it
 * opened one; from the WAN, one the gate would admit as a new flow to a
 * pinhole or a NAT66 forward. Either way the windows are tracked liberally
 * until both directions have been seen (`ConnTable.pickUp`). A NAT66
 * server's packet (TCP in mid stream, or any UDP datagram) to a client the
 * gate would admit starts the forward's flow, translated, in its reply
 * direction (`#serverReply`), so a server that speaks first after a restart
 * is not taken for an outbound flow of its own.
 *
 * Rules are few and a lookup happens once per new flow: a linear scan.
 */
import {
  DIR_ORIGINAL,
  DIR_REPLY,
  FLAG_DNAT,
  FLAG_GATED,
  FLAG_LOCAL,
  FLAG_SNAT,
  FlowSpec,
} from "../conntrack/mod.ts";
import type { OpenPortsRule, PortForwardRule, RuleProtocol } from "../nat/rule.ts";
import {
  type Ipv6Prefix,
  ipv6PrefixContainsBytes,
  parseIpv6,
  parseIpv6Prefix,
  PROTO_ICMPV6,
  PROTO_TCP,
  PROTO_UDP,
  read32,
} from "../packet/mod.ts";
import { type Admission, ADMITTED, isIpv6Rule } from "./admission.ts";
import { Drop } from "./counters.ts";
import { type Ipv6Ids, isIpv6Id } from "./ipv6_ids.ts";
import type { DatapathSettings } from "./messages.ts";
import { Npt6 } from "./npt6.ts";

/** Offsets of the addresses in the IPv6 header. */
const SRC = 8, DST = 24;

/** `#serverReply`'s answer for a packet that is no NAT66 forward's reply: judge it as LAN out. */
const LAN_OUT = -1;

/** One compiled IPv6 rule entry: a protocol and a port range. */
interface Rule6 {
  name: string;
  /** Its stable id (flows and counters name rules by it). */
  ruleId: number;
  proto: number;
  lo: number;
  hi: number;
  /** The LAN host, four words. */
  host: Uint32Array;
  /** First private port (NAT66); port N of the range goes to `privLo + N - lo`, or all to `privLo`. */
  privLo: number;
  privFixed: boolean;
  /** NAT66: the public side is a WAN address (`slots`); false: a pinhole to `host`. */
  nat66: boolean;
  /** NAT66: per WAN IPv6 address slot, 1 where the rule listens. */
  slots: Uint8Array;
  enforceKnock: boolean;
  users: string[];
}

function protocols(p: RuleProtocol): number[] {
  return p === "tcp" ? [PROTO_TCP] : p === "udp" ? [PROTO_UDP] : [PROTO_TCP, PROTO_UDP];
}

/** The WAN IPv6 addresses in slot order (uplink order, then address order) with their uplinks. */
function wanAddresses(
  s: DatapathSettings,
): { words: Uint32Array; uplink: string; management: boolean }[] {
  return s.uplinks.flatMap((u) =>
    (u.addresses6 ?? []).map((a) => ({
      words: parseIpv6(a)!,
      uplink: u.name,
      management: u.management,
    }))
  );
}

/** The gate for new IPv6 flows; one per admission (worker 0). */
export class Admission6 {
  readonly ids: Ipv6Ids;
  /** The flow the last ADMITTED verdict created; -1 after any other. */
  flowId = -1;
  /** Of a gated flow the last ADMITTED verdict created: its source's prefix id (its unlock); else 0. */
  prefix = 0;
  /** The direction the packet of the last ADMITTED verdict travels in its flow (a NAT66 server's: DIR_REPLY). */
  flowDir = DIR_ORIGINAL;
  readonly #a: Admission;
  readonly #spec: FlowSpec;
  /** WAN IPv6 addresses by slot: four words each, and their pinned ids. */
  #wan: Uint32Array = new Uint32Array(0);
  #wanId: Uint32Array = new Uint32Array(0);
  #wanUplink: string[] = [];
  /** Per WAN IPv6 slot, 1 where the management port answers (its uplink's `management`). */
  #mgmt: Uint8Array = new Uint8Array(0);
  #mgmtPort = 0;
  #mgmtWan = false;
  #lan: Ipv6Prefix = { addr: new Uint32Array(4), prefix: 128 };
  #lanAddr: Uint32Array = new Uint32Array(4);
  #unlockPrefix = 64;
  #allow: Ipv6Prefix[] = [];
  #rules: Rule6[] = [];
  /** NPTv6 of the LAN prefix on the uplinks that have it (`npt6.ts`). */
  readonly npt6: Npt6;

  /** Takes the IPv6 side of `s`; throws (configuration time) when `s.ipv6` is absent. */
  constructor(
    a: Admission,
    s: DatapathSettings,
    forwards: PortForwardRule[],
    open: OpenPortsRule[],
  ) {
    if (a.ids === null || !s.ipv6) throw new Error("IPv6 admission without IPv6 settings");
    this.#a = a;
    this.ids = a.ids;
    this.#spec = a.spec;
    this.npt6 = new Npt6(s);
    this.setSettings(s);
    this.setRules(forwards, open);
  }

  /** Takes new addressing (the WAN addresses are pinned, the rules bound again). */
  setSettings(s: DatapathSettings): void {
    const v6 = s.ipv6!;
    const wan = wanAddresses(s);
    const ids = this.ids;
    ids.unpinAll();
    this.#wan = new Uint32Array(4 * wan.length);
    this.#wanId = new Uint32Array(wan.length);
    wan.forEach((w, i) => {
      this.#wan.set(w.words, 4 * i);
      const id = ids.internWords(w.words, 0, 128, 0);
      ids.pin(id);
      this.#wanId[i] = id;
    });
    this.#wanUplink = wan.map((w) => w.uplink);
    this.#mgmt = Uint8Array.from(wan, (w) => w.management ? 1 : 0);
    this.#mgmtPort = s.managementPort;
    this.#mgmtWan = s.managementWanAccess === "knock";
    this.#lan = parseIpv6Prefix(v6.lanNetwork)!;
    this.#lanAddr = parseIpv6(v6.lanAddress)!;
    this.#unlockPrefix = v6.unlockPrefix;
    this.#allow = s.allow.filter((c) => c.includes(":")).map((c) => parseIpv6Prefix(c)!);
    this.npt6.setSettings(s);
    if (this.#forwards !== null) this.setRules(this.#forwards, this.#open!);
  }

  #forwards: PortForwardRule[] | null = null;
  #open: OpenPortsRule[] | null = null;

  /** Compiles the enabled IPv6 rules of `forwards` and `open` (the rest are admission's). */
  setRules(forwards: PortForwardRule[], open: OpenPortsRule[]): void {
    this.#forwards = forwards;
    this.#open = open;
    const rules: Rule6[] = [];
    for (const f of forwards) {
      if (!f.enabled || !isIpv6Rule(f)) continue;
      const slots = this.#slotsOf(f.uplink, f.wanAddress);
      for (const proto of protocols(f.protocol)) {
        rules.push(this.#entry(f, proto, f.publicPorts.start, f.publicPorts.end, {
          privLo: f.privatePorts.start,
          privFixed: f.privatePorts.start === f.privatePorts.end &&
            f.publicPorts.start !== f.publicPorts.end,
          nat66: true,
          slots,
        }));
      }
    }
    for (const o of open) {
      if (!o.enabled || !isIpv6Rule(o)) continue;
      for (const p of o.ports) {
        for (const proto of protocols(p.protocol)) {
          rules.push(this.#entry(o, proto, p.ports.start, p.ports.end, {
            privLo: p.ports.start,
            privFixed: false,
            nat66: false,
            slots: new Uint8Array(this.#wanId.length),
          }));
        }
      }
    }
    this.#rules = rules;
  }

  #entry(
    r: PortForwardRule | OpenPortsRule,
    proto: number,
    lo: number,
    hi: number,
    rest: Pick<Rule6, "privLo" | "privFixed" | "nat66" | "slots">,
  ): Rule6 {
    const host = parseIpv6(r.privateAddress);
    if (host === null) {
      throw new Error(`rule "${r.name}": ${r.privateAddress} is not an IPv6 address`);
    }
    return {
      name: r.name,
      ruleId: this.#a.ruleIdOf(r.name),
      proto,
      lo,
      hi,
      host,
      enforceKnock: r.enforceKnock,
      users: r.users,
      ...rest,
    };
  }

  /** Per WAN IPv6 slot, 1 where a forward on `uplink` and `wanAddress` listens. */
  #slotsOf(uplink: string | undefined, wanAddress: string | undefined): Uint8Array {
    const n = this.#wanId.length, out = new Uint8Array(n);
    const addr = wanAddress === undefined || wanAddress === "all" ? null : parseIpv6(wanAddress);
    for (let i = 0; i < n; i++) {
      if (uplink !== undefined && uplink !== "all" && this.#wanUplink[i] !== uplink) continue;
      if (addr !== null && !this.#wanIs(i, addr)) continue;
      out[i] = 1;
    }
    return out;
  }

  #wanIs(i: number, w: Uint32Array): boolean {
    const wan = this.#wan;
    return wan[4 * i] === w[0] && wan[4 * i + 1] === w[1] && wan[4 * i + 2] === w[2] &&
      wan[4 * i + 3] === w[3];
  }

  /** The prefix length an IPv6 source is unlocked by. */
  get unlockPrefix(): number {
    return this.#unlockPrefix;
  }

  /** The slot of the WAN IPv6 address at `buf[off..off+16)`, or -1. */
  wanSlot(buf: Uint8Array, off: number): number {
    const wan = this.#wan;
    const w0 = read32(buf, off) >>> 0;
    for (let i = 0, k = 0; k < wan.length; i++, k += 4) {
      if (
        wan[k] === w0 && wan[k + 1] === read32(buf, off + 4) >>> 0 &&
        wan[k + 2] === read32(buf, off + 8) >>> 0 && wan[k + 3] === read32(buf, off + 12) >>> 0
      ) return i;
    }
    return -1;
  }

  /** True when the address at `buf[off..]` is inside the LAN prefix. */
  inLan(buf: Uint8Array, off: number): boolean {
    return ipv6PrefixContainsBytes(this.#lan, buf, off);
  }

  /** True when the address at `buf[off..]` is one of the appliance's own. */
  isOwn(buf: Uint8Array, off: number): boolean {
    if (this.wanSlot(buf, off) >= 0) return true;
    const l = this.#lanAddr;
    return read32(buf, off) >>> 0 === l[0] && read32(buf, off + 4) >>> 0 === l[1] &&
      read32(buf, off + 8) >>> 0 === l[2] && read32(buf, off + 12) >>> 0 === l[3];
  }

  #allowListed(buf: Uint8Array, off: number): boolean {
    const allow = this.#allow;
    for (let i = 0; i < allow.length; i++) {
      if (ipv6PrefixContainsBytes(allow[i], buf, off)) return true;
    }
    return false;
  }

  /** The rule entry for a new WAN flow to WAN slot `slot` (-1: to the LAN address at `dstOff`), or -1. */
  #lookup(proto: number, slot: number, buf: Uint8Array, dstOff: number, port: number): number {
    const rules = this.#rules;
    for (let e = 0; e < rules.length; e++) {
      const r = rules[e];
      if (r.proto !== proto || port < r.lo || port > r.hi) continue;
      if (
        slot >= 0 ? r.nat66 && r.slots[slot] === 1 : !r.nat66 && this.#hostIs(r.host, buf, dstOff)
      ) {
        return e;
      }
    }
    return -1;
  }

  #hostIs(h: Uint32Array, buf: Uint8Array, off: number): boolean {
    return h[0] === read32(buf, off) >>> 0 && h[1] === read32(buf, off + 4) >>> 0 &&
      h[2] === read32(buf, off + 8) >>> 0 && h[3] === read32(buf, off + 12) >>> 0;
  }

  /**
   * Judges an IPv6 packet of no tracked flow, the IPv6 header at `buf[ip..]`,
   * (proto, sport -> dport; ICMPv6 echo: identifier as both ports),
   * `opening` when it may start a flow (TCP SYN alone, UDP, echo request),
   * `midStream` for a TCP segment with ACK alone (loose pickup, see the
   * module comment). Knocks are consumed here. ADMITTED (the flow is
   * `flowId`, its packet travels in its original direction) or a `Drop` reason.
   */
  admit(
    buf: Uint8Array,
    ip: number,
    proto: number,
    sport: number,
    dport: number,
    opening: boolean,
    nowMs: number,
    midStream = false,
  ): number {
    this.flowId = -1;
    this.prefix = 0;
    this.flowDir = DIR_ORIGINAL;
    const src = ip + SRC, dst = ip + DST;
    const ids = this.ids, nowSec = Math.floor(nowMs / 1000);
    // Multicast (ff00::/8) and link-local (fe80::/10) never cross a router.
    const d0 = buf[dst], d1 = buf[dst + 1];
    if (d0 === 0xff || (d0 === 0xfe && (d1 & 0xc0) === 0x80)) return Drop.NotForUs;
    const pickUp = !opening && midStream;
    if (this.inLan(buf, src)) {
      if (!opening && !pickUp) return Drop.NoFlow;
      const own = this.#mgmtSlot(proto, buf, dst, dport);
      if (own >= 0) return this.#fromLanToManagement(buf, src, sport, own, dport, nowMs, pickUp);
      if (this.inLan(buf, dst) || this.isOwn(buf, dst) || this.npt6.outsideOf(buf, dst) >= 0) {
        return Drop.LanLocal; // hairpin: not over IPv6
      }
      if (pickUp || proto === PROTO_UDP) {
        const v = this.#serverReply(proto, buf, src, sport, dst, dport, nowMs, pickUp);
        if (v !== LAN_OUT) return v;
      }
      const s = ids.intern(buf, src, 128, nowSec), d = ids.intern(buf, dst, 128, nowSec);
      if (s === 0 || d === 0) return Drop.Ipv6IdsFull;
      this.#spec.original(proto, s, sport, d, dport);
      const v = this.npt6.active ? this.#nptOut(buf, src, d, sport, dport, nowSec) : ADMITTED;
      return v === ADMITTED ? this.#create(this.#spec.flags, -1, nowMs, pickUp) : v;
    }
    const slot = this.wanSlot(buf, dst);
    // NPTv6: a destination in an outside prefix is judged as one to its inside host.
    const npt = slot < 0 && !this.inLan(buf, dst) ? this.npt6.outsideOf(buf, dst) : -1;
    if (slot < 0 && npt < 0 && !this.inLan(buf, dst)) return Drop.NotForUs;
    if (!opening && !pickUp) return Drop.NoFlow;
    if (proto === PROTO_ICMPV6) return Drop.NoRule; // stealth: no echo from the WAN
    const key = ids.intern(buf, src, this.#unlockPrefix, nowSec);
    if (key === 0) return Drop.Ipv6IdsFull;
    if (slot >= 0 && opening) {
      const k = this.#a.watchKnock(key, proto, dport, this.#wanId[slot], nowMs);
      if (k !== ADMITTED) return k;
    }
    if (slot >= 0 && this.#mgmtAt(proto, slot, dport)) {
      return this.#toManagement(buf, src, sport, slot, dport, key, nowMs, pickUp);
    }
    if (npt >= 0 && !this.npt6.toInside(npt, buf, dst)) return Drop.Npt6Unmappable;
    const e = npt >= 0
      ? this.#lookup(proto, -1, this.npt6.scratch, 0, dport)
      : this.#lookup(proto, slot, buf, dst, dport);
    if (e < 0) return Drop.NoRule;
    const r = this.#rules[e];
    const gated = r.enforceKnock && !this.#allowListed(buf, src);
    if (gated) {
      const user = this.#a.unlockedUser(key, nowMs);
      if (user === null || (r.users.length > 0 && !r.users.includes(user))) return Drop.Locked;
    }
    const s = ids.intern(buf, src, 128, nowSec);
    if (s === 0) return Drop.Ipv6IdsFull;
    const spec = this.#spec;
    let flags = gated ? FLAG_GATED : 0;
    if (r.nat66) {
      const host = ids.internWords(r.host, 0, 128, nowSec);
      if (host === 0) return Drop.Ipv6IdsFull;
      const port = r.privFixed ? r.privLo : r.privLo + dport - r.lo;
      spec.original(proto, s, sport, this.#wanId[slot], dport).reply(host, port, s, sport);
      flags |= FLAG_DNAT;
    } else {
      const d = ids.intern(buf, dst, 128, nowSec);
      if (d === 0) return Drop.Ipv6IdsFull;
      spec.original(proto, s, sport, d, dport);
      if (npt >= 0) {
        const host = ids.intern(this.npt6.scratch, 0, 128, nowSec);
        if (host === 0) return Drop.Ipv6IdsFull;
        spec.reply(host, dport, s, sport);
        flags |= FLAG_DNAT;
      }
    }
    const v = this.#create(flags, r.ruleId, nowMs, pickUp);
    if (v === ADMITTED && gated) {
      this.prefix = key;
      this.#a.recordAdmitted(key, r.name, nowMs);
    }
    return v;
  }

  /**
   * NPTv6 of a new flow from the LAN (its original tuple in `spec`, the LAN
   * source at `buf[src..]`, the destination's id `d`): replies come to the
   * outside address of the uplink new flows leave by (`Npt6.pick`). Sets the
   * spec's reply and flags; ADMITTED or a `Drop` reason.
   */
  #nptOut(buf: Uint8Array, src: number, d: number, sport: number, dport: number, nowSec: number) {
    const npt = this.npt6, e = npt.pick(this.#a.health6);
    if (!npt.toOutside(e, buf, src)) return Drop.Npt6Unmappable;
    const o = this.ids.intern(npt.scratch, 0, 128, nowSec);
    if (o === 0) return Drop.Ipv6IdsFull;
    this.#spec.reply(d, dport, o, sport);
    this.#spec.flags = FLAG_SNAT;
    return ADMITTED;
  }

  /** True for TCP to the management port on WAN IPv6 slot `slot` (a management uplink's address). */
  #mgmtAt(proto: number, slot: number, port: number): boolean {
    return proto === PROTO_TCP && port === this.#mgmtPort && this.#mgmt[slot] === 1;
  }

  /** For TCP to the management port of a management address at `buf[dst..]`: its WAN slot, else -1. */
  #mgmtSlot(proto: number, buf: Uint8Array, dst: number, port: number): number {
    if (proto !== PROTO_TCP || port !== this.#mgmtPort) return -1;
    const slot = this.wanSlot(buf, dst);
    return slot >= 0 && this.#mgmt[slot] === 1 ? slot : -1;
  }

  /**
   * A new TCP connection from the WAN source at `buf[src..]` (its unlock key
   * `key`) to the management port on WAN slot `slot`, as over IPv4: with
   * `wanAccess` "knock", from an unlocked or allow-listed source, a flow
   * delivered to the appliance itself (gated: it keeps the unlock alive);
   * else `locked`.
   */
  #toManagement(
    buf: Uint8Array,
    src: number,
    sport: number,
    slot: number,
    dport: number,
    key: number,
    nowMs: number,
    pickUp: boolean,
  ): number {
    // The listener's sockets ended with the process: nothing to pick up after a restart.
    if (pickUp) return Drop.NoFlow;
    if (!this.#mgmtWan) return Drop.Locked;
    const listed = this.#allowListed(buf, src);
    if (!listed && this.#a.unlockedUser(key, nowMs) === null) return Drop.Locked;
    const s = this.ids.intern(buf, src, 128, Math.floor(nowMs / 1000));
    if (s === 0) return Drop.Ipv6IdsFull;
    this.#spec.original(PROTO_TCP, s, sport, this.#wanId[slot], dport);
    const v = this.#create(FLAG_LOCAL | (listed ? 0 : FLAG_GATED), -1, nowMs);
    if (v === ADMITTED && !listed) {
      this.prefix = key;
      this.#a.unlocks.admitFlow(key, nowMs);
    }
    return v;
  }

  /** A LAN host's new TCP connection to the management port on a WAN IPv6 address: no knock. */
  #fromLanToManagement(
    buf: Uint8Array,
    src: number,
    sport: number,
    slot: number,
    dport: number,
    nowMs: number,
    pickUp: boolean,
  ): number {
    if (pickUp) return Drop.NoFlow;
    const s = this.ids.intern(buf, src, 128, Math.floor(nowMs / 1000));
    if (s === 0) return Drop.Ipv6IdsFull;
    this.#spec.original(PROTO_TCP, s, sport, this.#wanId[slot], dport);
    return this.#create(FLAG_LOCAL, -1, nowMs);
  }

  /**
   * A LAN packet of no flow from `src:sport` to the WAN's `dst:dport` (UDP,
   * or TCP in mid stream: `pickUp`) that may be a NAT66 forward's server
   * answering a client whose flow a restart lost. The rules that have this
   * host and port as their private side and whose gate would admit `dst`
   * as a new flow's source (`#admits`) decide:
   * - none: LAN_OUT (a new outbound flow; TCP from a NAT66 server's port:
   *   Drop.NoFlow, as the client's next segment picks it up from the WAN);
   * - one pinhole: LAN_OUT (its flows are not translated: the outbound
   *   flow's tuples are the pinhole flow's, reversed);
   * - one NAT66 forward listening on one WAN address, one public port per
   *   private one: the forward's flow, its packet in the reply direction,
   *   leaving from that address and public port as before the restart;
   * - else Drop.NoFlow: which address or port the client used is unknown,
   *   and an untranslated datagram would hold the tuple the client's next
   *   one needs.
   * What this lets a LAN host do that it could not before: put a flow of a
   * NAT66 forward in the table toward a WAN host of its choosing and speak
   * to it from the forward's public address and port. Only toward a source
   * the forward admits right now (unlocked for one of its users,
   * allow-listed, or a rule without knocks): that source could open the
   * same flow with its own first datagram, so nothing opens from the WAN
   * side that the gate would refuse. The server's packets do not refresh
   * the unlock (only the client's do, as on any gated flow); like any
   * established flow, the server's traffic keeps this one alive.
   */
  #serverReply(
    proto: number,
    buf: Uint8Array,
    src: number,
    sport: number,
    dst: number,
    dport: number,
    nowMs: number,
    pickUp: boolean,
  ): number {
    const rules = this.#rules, nowSec = Math.floor(nowMs / 1000);
    let found = -1, admitting = 0, nat66 = false, key = 0;
    for (let e = 0; e < rules.length; e++) {
      const r = rules[e];
      if (r.proto !== proto || !this.#hostIs(r.host, buf, src)) continue;
      if (r.nat66 && r.slots.indexOf(1) < 0) continue; // it listens nowhere: no flow to answer
      const last = r.privFixed ? r.privLo : r.privLo + r.hi - r.lo;
      if (sport < r.privLo || sport > last) continue;
      nat66 ||= r.nat66;
      const k = this.#admits(r, buf, dst, nowSec, nowMs);
      if (k < 0) continue;
      admitting++;
      found = e;
      key = k;
    }
    if (admitting === 0) return pickUp && nat66 ? Drop.NoFlow : LAN_OUT;
    const r = rules[found];
    if (admitting === 1 && !r.nat66) return LAN_OUT;
    const slot = admitting === 1 && !r.privFixed ? this.#soleSlot(r) : -1;
    if (slot < 0) return Drop.NoFlow;
    const ids = this.ids;
    const host = ids.intern(buf, src, 128, nowSec), client = ids.intern(buf, dst, 128, nowSec);
    if (host === 0 || client === 0) return Drop.Ipv6IdsFull;
    const pub = r.lo + sport - r.privLo;
    this.#spec.original(proto, client, dport, this.#wanId[slot], pub).reply(
      host,
      sport,
      client,
      dport,
    );
    const v = this.#create(FLAG_DNAT | (key > 0 ? FLAG_GATED : 0), r.ruleId, nowMs, pickUp);
    if (v !== ADMITTED) return v;
    this.flowDir = DIR_REPLY;
    this.prefix = key;
    return v;
  }

  /**
   * Whether rule `r`'s gate admits the address at `buf[at..]` as a new
   * flow's source, creating nothing: -1 no; 0 yes, ungated (no knocks, or
   * allow-listed); else the id of its unlocked prefix.
   */
  #admits(r: Rule6, buf: Uint8Array, at: number, nowSec: number, nowMs: number): number {
    if (!r.enforceKnock || this.#allowListed(buf, at)) return 0;
    // An unlocked prefix holds its id: one not interned is not unlocked.
    const key = this.ids.find(buf, at, this.#unlockPrefix, nowSec);
    if (key === 0) return -1;
    const user = this.#a.unlockedUser(key, nowMs);
    return user !== null && (r.users.length === 0 || r.users.includes(user)) ? key : -1;
  }

  /** The one WAN IPv6 slot NAT66 rule `r` listens on, or -1 (none, or several). */
  #soleSlot(r: Rule6): number {
    let slot = -1;
    for (let i = 0; i < r.slots.length; i++) {
      if (r.slots[i] !== 1) continue;
      if (slot >= 0) return -1;
      slot = i;
    }
    return slot;
  }

  /** Creates the flow in `spec` (`pickUp`: taken in mid stream); its tuples hold their ids. */
  #create(flags: number, ruleId: number, nowMs: number, pickUp = false): number {
    const v = this.#a.createFlow(flags, ruleId, nowMs, pickUp);
    if (v !== ADMITTED) return v;
    const s = this.#spec, ids = this.ids;
    ids.ref(s.origSrc);
    ids.ref(s.origDst);
    ids.ref(s.replySrc);
    ids.ref(s.replyDst);
    this.flowId = this.#a.flowId;
    return ADMITTED;
  }

  /** Flow `id` leaves the table (`ConnTable.onExpire`): its tuples let go of their ids. */
  release(src: number, dst: number, replySrc: number, replyDst: number): void {
    if (!isIpv6Id(src)) return;
    const ids = this.ids;
    ids.unref(src);
    ids.unref(dst);
    ids.unref(replySrc);
    ids.unref(replyDst);
  }
}
