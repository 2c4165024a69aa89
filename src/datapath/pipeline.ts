/**
 * The per-packet pipeline: parse and validate, fast path for tracked flows
 * (rewrite from the flow entry alone), and for everything else the slow
 * path: knock watch, admission gate, rule lookup, flow creation and NAT.
 * Verdicts are booleans (true = send on); drops are counted by reason. No
 * allocation and no throw on the fast path.
 */
import { type Clock, systemClock } from "../clock.ts";
import {
  ConnTable,
  FLAG_DNAT,
  FLAG_GATED,
  FLAG_HAIRPIN,
  FLAG_LOCAL,
  FLAG_SNAT,
  STATUS_ASSURED,
  STATUS_SEEN_REPLY,
  TRACK_INVALID,
} from "../conntrack/mod.ts";
import {
  type KnockStateRecord,
  type KnockTunables,
  KnockVerdict,
  KnockVerifier,
  SequenceCache,
  UnlockTable,
} from "../knock/mod.ts";
import type { KnockEvent, UnlockEvent } from "../knock/events.ts";
import type { KnockProfile } from "../knock/profile.ts";
import type { ApplianceEvent } from "../log/events.ts";
import { Severity } from "../log/events.ts";
import { compileRules, RuleIndex } from "../nat/rule_index.ts";
import type { OpenPortsRule, PortForwardRule } from "../nat/rule.ts";
import {
  icmpErrorInnerOffset,
  rewriteDestination,
  rewriteIcmpErrorInner,
  rewriteSource,
} from "../nat/rewrite.ts";
import {
  type Cidr,
  cidrContains,
  formatIpv4,
  ICMP_ECHO_REPLY,
  ICMP_ECHO_REQUEST,
  Icmpv4Packet,
  Ipv4Packet,
  parseCidr,
  ParseError,
  parseIpv4,
  PROTO_ICMP,
  PROTO_TCP,
  PROTO_UDP,
  read16,
  TCP_ACK,
  TCP_FIN,
  TCP_RST,
  TCP_SYN,
  TcpPacket,
  UdpPacket,
} from "../packet/mod.ts";
import { Drop, Stat } from "./counters.ts";
import { FragmentTable } from "./fragments.ts";
import type { DatapathSettings, FlowRecord, KnockUser, UnlockRecord } from "./messages.ts";
import type { PacketProcessor } from "./engine.ts";

/** Source ports used for masquerade (LAN to WAN) and hairpin. */
const SNAT_LO = 32768, SNAT_HI = 60999;
/** Idle timeout of flows delivered to the appliance itself (only one direction is seen). */
const LOCAL_FLOW_TIMEOUT_S = 3600;

/** What a pipeline starts with. */
export interface PipelineInit {
  settings: DatapathSettings;
  forwards: PortForwardRule[];
  openPorts: OpenPortsRule[];
  counters: Float64Array;
  /** Receives events in batches, once per housekeeping tick. */
  emit: (events: ApplianceEvent[]) => void;
  /** Receives the verifier's changed state records (for the store), once per housekeeping tick. */
  emitKnockState?: (records: KnockStateRecord[]) => void;
  /** Time for control operations (packets carry their own `nowMs`). */
  clock?: Clock;
}

/** Parsed settings the hot path reads. */
interface Addressing {
  wan: number;
  lan: number;
  lanNet: Cidr;
  allow: Cidr[];
  mgmtPort: number;
  mgmtWan: boolean;
}

function addressing(s: DatapathSettings): Addressing {
  return {
    wan: parseIpv4(s.wanAddress)!,
    lan: parseIpv4(s.lanAddress)!,
    lanNet: parseCidr(s.lanNetwork)!,
    allow: s.allow.map((c) => parseCidr(c)!),
    mgmtPort: s.managementPort,
    mgmtWan: s.managementWanAccess === "knock",
  };
}

/** Parse, track, gate, translate. One instance per data-plane Worker. */
export class Pipeline implements PacketProcessor {
  readonly ct: ConnTable;
  readonly unlocks: UnlockTable;
  readonly verifier: KnockVerifier;
  readonly sequences = new SequenceCache();
  readonly fragments = new FragmentTable();
  #rules: RuleIndex;
  #a: Addressing;
  #profiles: KnockProfile[] = [];
  #pending: ApplianceEvent[] = [];
  /** Second at which each flow last refreshed its unlock. */
  readonly #touchedAt: Uint32Array;
  readonly #c: Float64Array;
  readonly #emit: (events: ApplianceEvent[]) => void;
  readonly #emitKnockState: (records: KnockStateRecord[]) => void;
  readonly #clock: Clock;
  readonly #ip = new Ipv4Packet();
  readonly #tcp = new TcpPacket();
  readonly #udp = new UdpPacket();
  readonly #icmp = new Icmpv4Packet();
  readonly #inner = new Ipv4Packet();
  // The current packet's L4 fields, set by #parseL4.
  #sport = 0;
  #dport = 0;
  #flags = 0;
  #icmpType = 0;

  /** Builds the tables from `init`; throws on invalid rules (configuration time). */
  constructor(init: PipelineInit) {
    const s = init.settings;
    this.#c = init.counters;
    this.#emit = init.emit;
    this.#emitKnockState = init.emitKnockState ?? (() => {});
    this.#clock = init.clock ?? systemClock;
    this.#a = addressing(s);
    this.#rules = compileRules(init.forwards, init.openPorts);
    this.ct = new ConnTable({ capacity: s.maxFlows });
    this.#touchedAt = new Uint32Array(s.maxFlows);
    const onEvent = (e: KnockEvent | UnlockEvent) => this.#event(e);
    this.unlocks = new UnlockTable({
      maxEntries: s.maxUnlocks,
      idleTimeoutMs: s.knock.idleTimeoutSec * 1000,
      lifetimeMs: s.knock.lifetimeSec * 1000,
      onEvent,
    });
    this.verifier = new KnockVerifier(this.sequences, {
      ...verifierTunables(s.knock),
      onEvent: (e) => this.#event(e),
      // A step's first IP may repeat it only while the unlock it gave is live.
      unlockLive: (ip, user, nowMs) =>
        this.unlocks.isUnlocked(ip, nowMs) && this.unlocks.userOf(ip) === user,
    });
  }

  // ---- control -------------------------------------------------------------

  /** Replaces the rules; established flows keep their translation. */
  setRules(forwards: PortForwardRule[], openPorts: OpenPortsRule[]): void {
    this.#rules = compileRules(forwards, openPorts);
  }

  /** Replaces the knock users; resolves once their sequences are derived. */
  async setUsers(users: KnockUser[]): Promise<void> {
    const now = this.#clock.now();
    const keep = new Set(users.map((u) => u.user));
    for (const p of this.sequences.profiles()) {
      if (!keep.has(p.user)) this.sequences.removeUser(p.user);
    }
    await Promise.all(
      users.map(({ secret, ...profile }) => this.sequences.setUser(profile, secret, now)),
    );
    this.#profiles = users.map(({ secret: _s, ...profile }) => profile);
    this.verifier.setProfiles(this.#profiles);
  }

  /**
   * Applies new addressing, gate and knock settings. Unlock timeouts apply to
   * existing unlocks; the verifier is retuned in place (sequences, replay
   * memory, failures and penalties kept). `maxFlows` takes a restart.
   */
  setSettings(s: DatapathSettings): void {
    this.#a = addressing(s);
    this.unlocks.setTimeouts(s.knock.idleTimeoutSec * 1000, s.knock.lifetimeSec * 1000);
    this.verifier.retune(verifierTunables(s.knock), this.#clock.now());
  }

  /** Restores unlocks saved before a restart. */
  restoreUnlocks(records: UnlockRecord[], nowMs: number): void {
    this.unlocks.restore(records, nowMs);
  }

  /** Restores the verifier's replay memory, failures and penalties saved before a restart. */
  restoreKnockState(records: KnockStateRecord[], nowMs: number): number {
    return this.verifier.restoreState(records, nowMs);
  }

  /** Ends the unlock of `ip`; returns what it was, or null. */
  revoke(ip: string, _nowMs: number): UnlockRecord | null {
    const n = parseIpv4(ip);
    if (n === null) return null;
    const info = this.unlocks.get(n);
    if (!info || !this.unlocks.revoke(n, "operator")) return null;
    this.#flush();
    return info;
  }

  /** Answers a status query. */
  query(what: "unlocks" | "flows" | "conntrack", limit: number): unknown {
    if (what === "unlocks") return this.unlocks.list();
    if (what === "conntrack") return { ...this.ct.stats(), fragments: this.fragments.size };
    return this.flows(limit);
  }

  /** Up to `limit` tracked flows for the status table. */
  flows(limit: number): FlowRecord[] {
    const now = Math.floor(this.#clock.now() / 1000);
    return this.ct.snapshot(limit).map((f) => ({
      proto: f.proto,
      state: f.tcpState ?? (f.status & STATUS_SEEN_REPLY ? "REPLIED" : "UNREPLIED"),
      origSrc: formatIpv4(f.orig.src),
      origSrcPort: f.orig.srcPort,
      origDst: formatIpv4(f.orig.dst),
      origDstPort: f.orig.dstPort,
      replySrc: formatIpv4(f.reply.src),
      replySrcPort: f.reply.srcPort,
      replyDst: formatIpv4(f.reply.dst),
      replyDstPort: f.reply.dstPort,
      packets: this.ct.packets(2 * f.id) + this.ct.packets(2 * f.id + 1),
      bytes: this.ct.bytes(2 * f.id) + this.ct.bytes(2 * f.id + 1),
      expiresInSec: Math.max(0, this.ct.expiresAt(f.id) - now),
      rule: this.ct.ruleId[f.id] >= 0 ? this.#rules.ruleNames[this.ct.ruleId[f.id]] ?? null : null,
      assured: (f.status & STATUS_ASSURED) !== 0,
    }));
  }

  /** Expiry of flows, unlocks, sequences and fragments; sequence refresh; event flush. */
  async housekeeping(nowMs: number): Promise<void> {
    this.ct.expire(Math.floor(nowMs / 1000));
    this.unlocks.expire(nowMs);
    this.verifier.sweep(nowMs);
    this.fragments.sweep(nowMs);
    await this.sequences.refresh(nowMs);
    this.#flush();
  }

  /** Counts packets the device would not take. */
  countWriteError(n: number): void {
    this.#c[Drop.WriteError] += n;
    this.#c[Stat.Drops] += n;
  }

  #event(e: KnockEvent | UnlockEvent): void {
    const severity = e.type === "knock-success" ? Severity.Notice : Severity.Warning;
    this.#pending.push({ ...e, time: this.#clock.now(), severity } as ApplianceEvent);
    if (e.type === "knock-success") this.#c[Stat.Unlocks]++;
  }

  #flush(): void {
    const state = this.verifier.drainState();
    if (state.length > 0) this.#emitKnockState(state);
    if (this.#pending.length === 0) return;
    const batch = this.#pending;
    this.#pending = [];
    this.#emit(batch);
  }

  // ---- per packet ------------------------------------------------------------

  #drop(reason: number): false {
    this.#c[reason]++;
    this.#c[Stat.Drops]++;
    return false;
  }

  /** Processes one packet in place; true to send it on. */
  process(buf: Uint8Array, off: number, len: number, csumPartial: number, nowMs: number): boolean {
    const c = this.#c;
    c[Stat.RxPackets]++;
    c[Stat.RxBytes] += len;
    const pass = this.#decide(buf, off, len, csumPartial === 1, nowMs);
    if (pass) {
      c[Stat.TxPackets]++;
      c[Stat.TxBytes] += len;
    }
    return pass;
  }

  /** Validates, tracks and translates one packet; true to send it on. */
  #decide(buf: Uint8Array, off: number, len: number, partial: boolean, nowMs: number): boolean {
    const ip = this.#ip.bind(buf, off, len);
    const err = ip.check();
    if (err !== ParseError.None) return this.#drop(err);
    if (!ip.verifyChecksum()) return this.#drop(ParseError.BadChecksum);
    if (ip.isFragment()) {
      this.#c[Stat.Fragments]++;
      if (ip.fragOffset() !== 0) return this.#laterFragment(ip, partial, nowMs);
    }
    const proto = ip.protocol();
    const perr = this.#parseL4(ip, proto, partial);
    if (perr !== ParseError.None) return this.#drop(perr);
    if (
      proto === PROTO_ICMP && this.#icmpType !== ICMP_ECHO_REQUEST &&
      this.#icmpType !== ICMP_ECHO_REPLY
    ) {
      return this.#icmpError(ip, nowMs);
    }
    const src = ip.src(), dst = ip.dst();
    const h = this.ct.lookup(proto, src, this.#sport, dst, this.#dport);
    const pass = h >= 0
      ? this.#fastPath(h, ip, len, partial, nowMs)
      : this.#slowPath(ip, proto, src, dst, len, partial, nowMs);
    if (pass && ip.moreFragments()) this.#rememberFragment(ip, src, dst, proto, nowMs);
    return pass;
  }

  /** Validates the L4 header and reads its ports and flags. */
  #parseL4(ip: Ipv4Packet, proto: number, partial: boolean): number {
    const off = ip.payloadOffset(), len = ip.payloadLen();
    // The L4 checksum of a fragment covers the whole datagram; a partial one is the kernel's to finish.
    const verify = !partial && !ip.isFragment();
    if (proto === PROTO_TCP) {
      const t = this.#tcp.bind(ip.buf, off, len);
      const e = t.check();
      if (e !== ParseError.None) return e;
      if (verify && !t.verifyChecksum(ip.src(), ip.dst())) return ParseError.BadL4Checksum;
      this.#sport = t.srcPort();
      this.#dport = t.dstPort();
      this.#flags = t.flags();
      return ParseError.None;
    }
    if (proto === PROTO_UDP) {
      const u = this.#udp.bind(ip.buf, off, len);
      // A first fragment holds the UDP header but not the whole datagram its length names.
      const e = ip.isFragment() ? (len < 8 ? ParseError.Truncated : ParseError.None) : u.check();
      if (e !== ParseError.None) return e;
      if (verify && !u.verifyChecksum(ip.src(), ip.dst())) return ParseError.BadL4Checksum;
      this.#sport = u.srcPort();
      this.#dport = u.dstPort();
      this.#flags = 0;
      return ParseError.None;
    }
    if (proto === PROTO_ICMP) {
      const m = this.#icmp.bind(ip.buf, off, len);
      if (ip.isFragment()) return Drop.Protocol; // fragmented ICMP: nothing legitimate needs it
      const e = m.check();
      if (e !== ParseError.None) return e;
      this.#icmpType = m.type();
      // NAT treats the echo identifier as both ports.
      this.#sport = this.#dport = m.ident();
      this.#flags = 0;
      return ParseError.None;
    }
    return Drop.Protocol;
  }

  /** A packet of a tracked flow: account and rewrite from the flow entry. */
  #fastPath(h: number, ip: Ipv4Packet, len: number, partial: boolean, nowMs: number): boolean {
    const ct = this.ct, id = h >> 1;
    const flags = ct.flags[id];
    const nowSec = Math.floor(nowMs / 1000);
    if ((flags & FLAG_LOCAL) !== 0) {
      // Only the client's half is seen: keep the flow alive without TCP state checks.
      ct.touch(
        h,
        len,
        nowSec,
        (this.#flags & (TCP_RST | TCP_FIN)) !== 0 ? 10 : LOCAL_FLOW_TIMEOUT_S,
      );
    } else if (ct.track(h, this.#flags, len, nowSec) === TRACK_INVALID) {
      return this.#drop(Drop.InvalidTcp);
    }
    if ((flags & FLAG_GATED) !== 0 && (h & 1) === 0 && ct.lastSeen(id) !== this.#touchedAt[id]) {
      // An admitted flow keeps its unlock alive; once a second is enough.
      this.#touchedAt[id] = ct.lastSeen(id);
      this.unlocks.touch(ct.origSrc(id), nowMs, len);
    }
    this.#c[Stat.FastPath]++;
    if ((flags & (FLAG_DNAT | FLAG_SNAT)) === 0) return true;
    return this.#translate(ip.buf, ip.off, h, ip, partial);
  }

  /** Rewrites the packet with handle `h`'s translation. */
  #translate(buf: Uint8Array, off: number, h: number, ip: Ipv4Packet, partial: boolean): boolean {
    const ct = this.ct;
    const ns = ct.translatedSrc(h), nsp = ct.translatedSrcPort(h);
    const nd = ct.translatedDst(h), ndp = ct.translatedDstPort(h);
    if (ns !== ip.src() || nsp !== this.#sport) {
      if (!rewriteSource(buf, off, ns, nsp, partial)) return this.#drop(ParseError.Truncated);
    }
    if (nd !== ip.dst() || ndp !== this.#dport) {
      if (!rewriteDestination(buf, off, nd, ndp, partial)) return this.#drop(ParseError.Truncated);
    }
    return true;
  }

  /** A packet without a flow: may it start one, and where does it go? */
  #slowPath(
    ip: Ipv4Packet,
    proto: number,
    src: number,
    dst: number,
    len: number,
    partial: boolean,
    nowMs: number,
  ): boolean {
    this.#c[Stat.SlowPath]++;
    const opening = proto === PROTO_TCP
      ? (this.#flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN)) === TCP_SYN
      : proto === PROTO_UDP || this.#icmpType === ICMP_ECHO_REQUEST;
    if (cidrContains(this.#a.lanNet, src)) {
      return this.#fromLan(ip, proto, src, dst, len, opening, partial, nowMs);
    }
    if (dst !== this.#a.wan) return this.#drop(Drop.NotForUs);
    if (!opening) return this.#drop(Drop.NoFlow);
    if (proto === PROTO_ICMP) return this.#drop(Drop.NoRule); // stealth: the WAN address answers no ping
    switch (this.verifier.observe(src, proto as 6 | 17, this.#dport, nowMs)) {
      case KnockVerdict.KNOCK:
      case KnockVerdict.REPLAY:
        return this.#drop(Drop.Knock);
      case KnockVerdict.UNLOCKED:
        this.unlocks.unlock(src, this.verifier.lastUser, this.verifier.lastDrift, nowMs);
        return this.#drop(Drop.Knock);
      case KnockVerdict.PENALISED:
      case KnockVerdict.THROTTLED:
        return this.#drop(Drop.Penalised);
    }
    return this.#fromWan(ip, proto, src, len, partial, nowMs);
  }

  /** A new flow from the WAN to the WAN address: management, forward, or nothing. */
  #fromWan(
    ip: Ipv4Packet,
    proto: number,
    src: number,
    len: number,
    partial: boolean,
    nowMs: number,
  ): boolean {
    const a = this.#a, dport = this.#dport;
    const listed = this.#allowListed(src);
    if (proto === PROTO_TCP && dport === a.mgmtPort) {
      if (!a.mgmtWan || (!listed && !this.#unlockAdmits(src, -1, nowMs))) {
        return this.#drop(Drop.Locked);
      }
      return this.#createLocal(ip, proto, src, len, !listed, nowMs);
    }
    const e = this.#rules.lookup(proto, dport);
    if (e < 0) return this.#drop(Drop.NoRule);
    // Gated: admitted by a knock (allow-listed sources need none).
    const gated = this.#rules.enforceKnock(e) && !listed;
    if (gated && !this.#unlockAdmits(src, e, nowMs)) return this.#drop(Drop.Locked);
    const priv = this.#rules.privateAddress(e), pport = this.#rules.privatePort(e, dport);
    const id = this.ct.create(
      proto,
      src,
      this.#sport,
      a.wan,
      dport,
      priv,
      pport,
      src,
      this.#sport,
      Math.floor(nowMs / 1000),
    );
    if (id < 0) return this.#drop(Drop.TableFull);
    this.#newFlow(id, e, FLAG_DNAT | (gated ? FLAG_GATED : 0), len, nowMs);
    if (gated) this.#admitEvent(src, dport, priv, pport, e, proto, nowMs);
    return this.#translate(ip.buf, ip.off, 2 * id, ip, partial);
  }

  /** True when an unlock of `src` admits a flow to rule entry `e` (-1: the management interface). */
  #unlockAdmits(src: number, e: number, nowMs: number): boolean {
    if (!this.unlocks.isUnlocked(src, nowMs)) return false;
    return e < 0 || this.#rules.userAllowed(e, this.unlocks.userOf(src) ?? "");
  }

  #allowListed(src: number): boolean {
    const allow = this.#a.allow;
    for (let i = 0; i < allow.length; i++) if (cidrContains(allow[i], src)) return true;
    return false;
  }

  #newFlow(id: number, e: number, flags: number, len: number, nowMs: number): void {
    this.ct.flags[id] = flags;
    this.ct.ruleId[id] = e >= 0 ? this.#rules.entryRule[e] : -1;
    this.ct.track(2 * id, this.#flags, len, Math.floor(nowMs / 1000));
    this.#c[Stat.FlowsCreated]++;
  }

  #admitEvent(
    src: number,
    dport: number,
    priv: number,
    pport: number,
    e: number,
    proto: number,
    nowMs: number,
  ): void {
    this.unlocks.admitFlow(src, nowMs);
    this.#c[Stat.FlowsAdmittedByKnock]++;
    this.#pending.push({
      type: "flow-admitted",
      time: nowMs,
      severity: Severity.Notice,
      proto: proto as 6 | 17,
      src: formatIpv4(src),
      srcPort: this.#sport,
      dst: formatIpv4(this.#a.wan),
      dstPort: dport,
      privateAddr: formatIpv4(priv),
      privatePort: pport,
      rule: this.#rules.ruleName(e),
      user: this.unlocks.userOf(src) ?? undefined,
    });
  }

  /**
   * A new flow to the appliance itself (the management interface): passed on
   * unchanged; `gated` when a knock admitted it (it then refreshes the unlock).
   */
  #createLocal(
    ip: Ipv4Packet,
    proto: number,
    src: number,
    len: number,
    gated: boolean,
    nowMs: number,
  ): boolean {
    const d = ip.dst();
    const id = this.ct.create(
      proto,
      src,
      this.#sport,
      d,
      this.#dport,
      d,
      this.#dport,
      src,
      this.#sport,
      Math.floor(nowMs / 1000),
    );
    if (id < 0) return this.#drop(Drop.TableFull);
    this.ct.flags[id] = FLAG_LOCAL | (gated ? FLAG_GATED : 0);
    this.ct.touch(2 * id, len, Math.floor(nowMs / 1000), LOCAL_FLOW_TIMEOUT_S);
    if (gated) this.unlocks.admitFlow(src, nowMs);
    this.#c[Stat.FlowsCreated]++;
    return true;
  }

  /** A new flow from the LAN: hairpin to a forward, or masquerade to the WAN. */
  #fromLan(
    ip: Ipv4Packet,
    proto: number,
    src: number,
    dst: number,
    len: number,
    opening: boolean,
    partial: boolean,
    nowMs: number,
  ): boolean {
    if (!opening) return this.#drop(Drop.NoFlow);
    const a = this.#a, nowSec = Math.floor(nowMs / 1000);
    if (dst === a.wan) {
      if (proto === PROTO_TCP && this.#dport === a.mgmtPort) {
        return this.#createLocal(ip, proto, src, len, false, nowMs);
      }
      const e = this.#rules.lookup(proto, this.#dport);
      if (e < 0) return this.#drop(Drop.NoRule);
      const priv = this.#rules.privateAddress(e), pport = this.#rules.privatePort(e, this.#dport);
      // Hairpin: the server must answer through us, so the client is hidden behind the WAN
      // address (its replies then arrive on the LAN port, which is steered to us; the LAN
      // address would be delivered locally).
      const np = this.ct.findFreePort(proto, priv, pport, a.wan, SNAT_LO, SNAT_HI, this.#sport);
      if (np < 0) return this.#drop(Drop.NatExhausted);
      const id = this.ct.create(
        proto,
        src,
        this.#sport,
        dst,
        this.#dport,
        priv,
        pport,
        a.wan,
        np,
        nowSec,
      );
      if (id < 0) return this.#drop(Drop.TableFull);
      this.#newFlow(id, e, FLAG_DNAT | FLAG_SNAT | FLAG_HAIRPIN, len, nowMs);
      return this.#translate(ip.buf, ip.off, 2 * id, ip, partial);
    }
    if (cidrContains(a.lanNet, dst) || dst === a.lan) return this.#drop(Drop.LanLocal);
    const icmp = proto === PROTO_ICMP;
    const np = this.ct.findFreePort(
      proto,
      dst,
      this.#dport,
      a.wan,
      icmp ? 1 : SNAT_LO,
      icmp ? 65535 : SNAT_HI,
      this.#sport,
    );
    if (np < 0) return this.#drop(Drop.NatExhausted);
    const rport = icmp ? np : this.#dport;
    const id = this.ct.create(
      proto,
      src,
      this.#sport,
      dst,
      this.#dport,
      dst,
      rport,
      a.wan,
      np,
      nowSec,
    );
    if (id < 0) return this.#drop(Drop.TableFull);
    this.#newFlow(id, -1, FLAG_SNAT, len, nowMs);
    return this.#translate(ip.buf, ip.off, 2 * id, ip, partial);
  }

  /**
   * An ICMP error: find the flow of the packet it quotes and translate the
   * error as a packet of that flow travelling the opposite way (RFC 5508 §4).
   */
  #icmpError(ip: Ipv4Packet, nowMs: number): boolean {
    const buf = ip.buf, inOff = icmpErrorInnerOffset(buf, ip.off);
    if (inOff < 0) return this.#drop(Drop.IcmpUnmatched);
    const inner = this.#inner.bind(buf, inOff, ip.off + ip.totalLen() - inOff);
    if (inner.checkHeader() !== ParseError.None) return this.#drop(Drop.IcmpUnmatched);
    const proto = inner.protocol(), l4 = inOff + inner.headerLen();
    if (ip.off + ip.totalLen() - l4 < 8) return this.#drop(Drop.IcmpUnmatched);
    const isIcmp = proto === PROTO_ICMP;
    const sp = read16(buf, isIcmp ? l4 + 4 : l4), dp = isIcmp ? sp : read16(buf, l4 + 2);
    // The quoted packet went inner.src -> inner.dst; the error travels back, so look up its inverse.
    const h = this.ct.lookup(proto, inner.dst(), dp, inner.src(), sp);
    if (h < 0) return this.#drop(Drop.IcmpUnmatched);
    const ct = this.ct, flags = ct.flags[h >> 1];
    if ((flags & FLAG_LOCAL) !== 0) return true;
    const nd = ct.translatedDst(h), ns = ct.translatedSrc(h);
    if (ip.dst() !== nd) rewriteDestination(buf, ip.off, nd, 0, false);
    if (ip.src() === inner.dst() && ns !== ip.src()) rewriteSource(buf, ip.off, ns, 0, false);
    rewriteIcmpErrorInner(buf, ip.off, nd, ct.translatedDstPort(h), ns, ct.translatedSrcPort(h));
    ct.track(h, 0, 0, Math.floor(nowMs / 1000));
    this.#c[Stat.IcmpErrorsTranslated]++;
    return true;
  }

  #rememberFragment(ip: Ipv4Packet, src: number, dst: number, proto: number, nowMs: number): void {
    this.fragments.remember(src, dst, proto, ip.ident(), ip.src(), ip.dst(), nowMs);
  }

  /** A non-first fragment: translated like its first fragment, or dropped. */
  #laterFragment(ip: Ipv4Packet, partial: boolean, nowMs: number): boolean {
    const f = this.fragments.find(ip.src(), ip.dst(), ip.protocol(), ip.ident(), nowMs);
    if (!f) return this.#drop(Drop.FragmentOrphan);
    if (f.newSrc !== f.src) rewriteSource(ip.buf, ip.off, f.newSrc, 0, partial);
    if (f.newDst !== f.dst) rewriteDestination(ip.buf, ip.off, f.newDst, 0, partial);
    return true;
  }
}

/** The verifier's tunables from the knock settings. */
function verifierTunables(k: DatapathSettings["knock"]): KnockTunables {
  return {
    windowMs: k.windowSec * 1000,
    maxFailures: k.maxFailures,
    failureWindowMs: k.failureWindowSec * 1000,
    penaltyMs: k.penaltySec * 1000,
    maxInProgress: k.maxInProgress,
    maxPenalised: k.maxPenalised,
  };
}
