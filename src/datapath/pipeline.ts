/**
 * The per-packet pipeline: parse and validate, fast path for tracked flows
 * (rewrite from the flow entry alone), and for everything else the verdict of
 * admission (`admission.ts`: knock watch, gate, rule lookup, flow creation),
 * applied here. Verdicts are booleans (true = send on); drops are counted by
 * reason. No allocation and no throw on the fast path.
 *
 * IPv6 (`settings.ipv6`): a packet whose version nibble is 6 goes to
 * `pipeline6.ts` on worker 0, and a tracker hands every one to worker 0
 * (the interned IPv6 ids have one writer); the IPv4 path pays one byte
 * compare for it, and drops any packet naming 240.0.0.0/4, the range the
 * ids are drawn from (`ipv6_ids.ts`).
 */
import { type Clock, systemClock } from "../clock.ts";
import { CSUM_NONE, CSUM_PARTIAL } from "../device/mod.ts";
import {
  ConnTable,
  FLAG_DNAT,
  FLAG_GATED,
  FLAG_LOCAL,
  FLAG_SNAT,
  LOCAL_FLOW_TIMEOUT_S,
  STATUS_ASSURED,
  STATUS_DYING,
  STATUS_SEEN_REPLY,
  TcpSegment,
  TRACK_ACCEPT,
  TRACK_INVALID,
  TRACK_OUT_OF_WINDOW,
} from "../conntrack/mod.ts";
import type { KnockStateRecord, KnockVerifier, SequenceCache, UnlockTable } from "../knock/mod.ts";
import type { ApplianceEvent } from "../log/events.ts";
import type { OpenPortsRule, PortForwardRule } from "../nat/rule.ts";
import {
  icmpErrorInnerOffset,
  rewriteDestination,
  rewriteIcmpErrorInner,
  rewriteSource,
} from "../nat/rewrite.ts";
import { incrementTtl } from "../nat/ttl.ts";
import {
  ICMP_ECHO_REPLY,
  ICMP_ECHO_REQUEST,
  Icmpv4Packet,
  IPV4_DST,
  Ipv4Packet,
  ParseError,
  parseIpv4,
  PROTO_ICMP,
  PROTO_TCP,
  PROTO_UDP,
  read16,
  read32,
  TCP_ACK,
  TCP_FIN,
  TCP_RST,
  TCP_SYN,
  TcpPacket,
  UdpPacket,
} from "../packet/mod.ts";
import { Admission, ADMITTED, type GateTables } from "./admission.ts";
import { HANDOFF_PACKET, HANDOFF_REOPEN, HANDOFF_TOUCH, type HandoffRing } from "./handoff.ts";
import { Drop, MAX_RULE_IDS, RULE_BASE, Stat } from "./counters.ts";
import { FlowSnapshots, type RestoreResult } from "./flow_snapshot.ts";
import { FragmentTable } from "./fragments.ts";
import { isIpv6Id } from "./ipv6_ids.ts";
import { Pipeline6 } from "./pipeline6.ts";
import type {
  DatapathQuery,
  DatapathSettings,
  FlowRecord,
  KnockClaim,
  KnockClaimAnswer,
  KnockUser,
  UnlockRecord,
} from "./messages.ts";
import type { PacketProcessor } from "./engine.ts";
import { type ProbeSender, UplinkMonitor } from "./uplink_monitor.ts";
import { type Probe6Socket, Uplink6Monitor } from "./uplink_probe6.ts";

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
  /** Receives each finished checkpoint of the flow table (see `flow_snapshot.ts`). */
  emitFlows?: (snapshot: Uint8Array) => void;
  /**
   * Completed knocks are claimed across the fleet before they unlock: they
   * go to `emitClaims` after the loop turn that saw them (`afterBatch`), and
   * `resolveClaims` takes the answers. Default false.
   */
  knockClaims?: boolean;
  /** Receives the knocks to claim (see `knockClaims`). */
  emitClaims?: (claims: KnockClaim[]) => void;
  /** Milliseconds between flow-table checkpoints (default 5000). */
  checkpointMs?: number;
  /** Time for control operations (packets carry their own `nowMs`). */
  clock?: Clock;
  /** Sends the uplink health probes; without one nothing is probed (every uplink up). */
  probeSender?: ProbeSender;
  /** The IPv6 gateway probes' sockets (index = uplink order); without them none is probed. */
  probe6Sockets?: readonly (Probe6Socket | null)[];
  /**
   * The device's `ipv4HeaderChecked`: every IPv4 header it reads was built
   * or verified by the kernel, so its checksum is not summed again. Default
   * false (verify).
   */
  ipv4HeaderChecked?: boolean;
  /**
   * The flow table shared by the queues' Workers (`ConnTable.createBuffer`)
   * and this Worker's number among `workers`; absent: a table of its own.
   */
  table?: { buffer: SharedArrayBuffer; workers: number; worker: number };
  /**
   * Makes this pipeline a tracker (a queue other than 0): it forwards packets
   * of flows in the shared table, drops the new flows the gate refuses
   * without the verifier (`Admission.trackerVerdict`), and hands everything
   * else (another new flow, a reopening SYN, an unknown fragment) to worker
   * 0 through this ring; it needs `gate`. Absent: this pipeline
   * admits (worker 0, or the only one).
   */
  handoff?: HandoffRing;
  /** The source-NAT port key every node of an HA pair holds (see `AdmissionInit.portKey`). */
  portKey?: readonly [number, number];
  /** The gate's tables shared by the queues' Workers (`Admission.gateBuffers`); absent: its own. */
  gate?: GateTables;
}

/** Parse, track, apply admission's verdict, translate. One instance per data-plane Worker. */
export class Pipeline implements PacketProcessor {
  readonly ct: ConnTable;
  readonly admission: Admission;
  readonly unlocks: UnlockTable;
  readonly fragments = new FragmentTable();
  readonly snapshots: FlowSnapshots;
  readonly uplinks: UplinkMonitor;
  readonly uplinks6: Uplink6Monitor;
  readonly #emitFlows: ((snapshot: Uint8Array) => void) | undefined;
  readonly #emitClaims: (claims: KnockClaim[]) => void;
  /** Second at which each flow last refreshed its unlock. */
  readonly #touchedAt: Uint32Array;
  readonly #c: Float64Array;
  readonly #clock: Clock;
  readonly #ipv4HeaderChecked: boolean;
  readonly #handoff: HandoffRing | null;
  /** IPv6 on worker 0, or null (a tracker, or no IPv6). */
  readonly v6: Pipeline6 | null;
  /** IPv6 crosses: worker 0 processes it, a tracker hands it over. */
  readonly #v6on: boolean;
  // The current packet's checksum state and length, for a handoff.
  #csum = 0;
  #len = 0;
  readonly #ip = new Ipv4Packet();
  readonly #tcp = new TcpPacket();
  readonly #udp = new UdpPacket();
  readonly #icmp = new Icmpv4Packet();
  readonly #inner = new Ipv4Packet();
  /** The current TCP packet's segment for the tracker, set by #parseL4. */
  readonly #seg = new TcpSegment();
  // The current packet's L4 fields, set by #parseL4.
  #sport = 0;
  #dport = 0;
  #flags = 0;
  #icmpType = 0;

  /** Builds the tables from `init`; throws on invalid rules (configuration time). */
  constructor(init: PipelineInit) {
    const s = init.settings;
    this.#c = init.counters;
    this.#clock = init.clock ?? systemClock;
    this.#ipv4HeaderChecked = init.ipv4HeaderChecked ?? false;
    this.#handoff = init.handoff ?? null;
    // A tracker gates on the unlocks: a table of its own would hold none and refuse every one.
    if (this.#handoff !== null && (init.gate?.worker ?? 0) === 0) {
      throw new Error("Cannot start a tracker without the gate's shared tables");
    }
    const t = init.table;
    this.ct = new ConnTable({
      capacity: s.maxFlows,
      buffer: t?.buffer,
      workers: t?.workers ?? 1,
      worker: t?.worker ?? 0,
      role: this.#handoff === null ? "owner" : "tracker",
    });
    this.#touchedAt = new Uint32Array(s.maxFlows);
    this.#v6on = !!s.ipv6;
    // A tracker hands IPv6 over: its admission interns nothing.
    const own = this.#handoff === null ? s : { ...s, ipv6: null };
    this.admission = new Admission({ ...init, settings: own, ct: this.ct });
    this.unlocks = this.admission.unlocks;
    this.v6 = this.admission.ids === null ? null : new Pipeline6({
      ct: this.ct,
      admission: this.admission,
      settings: s,
      forwards: init.forwards,
      openPorts: init.openPorts,
      counters: init.counters,
    });
    const v6 = this.v6;
    if (v6 !== null) this.ct.onExpire = (id) => v6.release(id);
    this.snapshots = new FlowSnapshots(
      this.ct,
      (id) => this.admission.ruleName(id),
      (name) => this.admission.ruleIdOf(name),
      { periodMs: init.checkpointMs },
    );
    this.#emitFlows = init.emitFlows;
    this.#emitClaims = init.emitClaims ?? (() => {});
    this.uplinks = new UplinkMonitor({
      uplinks: s.uplinks,
      sender: init.probeSender ?? null,
      emit: init.emit,
      onHealth: (up) => this.admission.setUplinkHealth(up),
    });
    this.uplinks6 = new Uplink6Monitor({
      uplinks: s.uplinks,
      sockets: init.probe6Sockets ?? null,
      emit: init.emit,
      onHealth: (up6) => this.admission.setUplink6Health(up6),
    });
  }

  /** Restores a flow-table snapshot taken before a restart (before any packet passes). */
  restoreFlows(snapshot: Uint8Array, nowMs: number): RestoreResult {
    return this.snapshots.restore(snapshot, nowMs);
  }

  /** The whole flow table's snapshot, for a data plane that has stopped. */
  finalSnapshot(nowMs: number): Uint8Array {
    return this.snapshots.final(nowMs);
  }

  /** The knock verifier (admission's). */
  get verifier(): KnockVerifier {
    return this.admission.verifier;
  }

  /** The users' knock sequences (admission's). */
  get sequences(): SequenceCache {
    return this.admission.sequences;
  }

  // ---- control -------------------------------------------------------------

  /** Replaces the rules; established flows keep their translation and rule. */
  setRules(forwards: PortForwardRule[], openPorts: OpenPortsRule[]): void {
    this.admission.setRules(forwards, openPorts);
    this.v6?.admission.setRules(forwards, openPorts);
  }

  /** Replaces the knock users; resolves once their sequences are derived. */
  setUsers(users: KnockUser[]): Promise<void> {
    return this.admission.setUsers(users);
  }

  /** Applies new addressing, gate and knock settings (see `Admission.setSettings`). */
  setSettings(s: DatapathSettings): void {
    this.admission.setSettings(this.#handoff === null ? s : { ...s, ipv6: null });
    if (s.ipv6) this.v6?.admission.setSettings(s);
  }

  /** Restores the verifier's replay memory, failures and penalties saved before a restart. */
  restoreKnockState(records: KnockStateRecord[], nowMs: number): number {
    return this.admission.restoreKnockState(records, nowMs);
  }

  /** Merges the knock state other nodes wrote (replay memory, failures, penalties). */
  mergeKnockState(records: readonly KnockStateRecord[], nowMs: number): number {
    return this.admission.mergeKnockState(records, nowMs);
  }

  /** Applies the answers to knock claims (see `Admission.resolveClaims`). */
  resolveClaims(answers: readonly KnockClaimAnswer[], nowMs: number): void {
    this.admission.resolveClaims(answers, nowMs);
  }

  /** After each loop turn: hands on the knocks to claim, so none waits for the tick. */
  afterBatch(): void {
    const claims = this.admission.takeClaims();
    if (claims !== null) this.#emitClaims(claims);
  }

  /** Restores unlocks saved before a restart. */
  restoreUnlocks(records: UnlockRecord[], nowMs: number): void {
    this.admission.restoreUnlocks(records, nowMs);
  }

  /**
   * Merges unlocks other nodes admitted (a shared store's copy) into the
   * running table: a new source is unlocked with the record's times, a known
   * one of the same user takes the later last-seen time, another user's
   * replaces it only when its knock was later. No event: the store has them.
   * Records already ended are skipped. Returns how many it added or moved.
   */
  mergeUnlocks(records: readonly UnlockRecord[], nowMs: number): number {
    let n = 0;
    const a = this.admission;
    for (const r of records) {
      const ip = parseIpv4(a.internalIp(r.ip) ?? "");
      if (ip === null || !(r.expiresAt > nowMs)) continue;
      const had = this.unlocks.get(ip);
      if (had === null || (had.user !== r.user && r.unlockedAt > had.unlockedAt)) {
        const wan = parseIpv4(
          typeof r.wanAddress === "string" && r.wanAddress.includes(":")
            ? a.wanAddressId(r.wanAddress)
            : r.wanAddress,
        ) ?? 0;
        a.unlockSource(ip, r.user, r.drift | 0, r.unlockedAt, wan);
      } else if (had.user !== r.user || r.lastSeen <= had.lastSeen) continue;
      this.unlocks.touch(ip, r.lastSeen);
      n++;
    }
    return n;
  }

  /**
   * Loosens every TCP flow's window checks until each sender fits again
   * (`ConnTable.loosenTcp`): an HA node whose peer carried its flows holds
   * stale windows. Returns the flows loosened.
   */
  loosenTcp(): number {
    return this.ct.loosenTcp();
  }

  /** Ends the unlock of `ip` on behalf of `by` (a user name); returns what it was, or null. */
  revoke(ip: string, _nowMs: number, by = "operator"): UnlockRecord | null {
    return this.admission.revoke(ip, by);
  }

  /** Answers a status query. */
  query(what: DatapathQuery, limit: number): unknown {
    if (what === "unlocks") return this.admission.listUnlocks();
    if (what === "uplinks") {
      return this.uplinks.status(this.admission.masqueradeUplink())
        .map((s, i) => ({ ...s, ipv6: this.uplinks6.status(i) }));
    }
    if (what === "rules") return this.admission.ruleIds();
    if (what === "conntrack") {
      const ids = this.admission.ids;
      return {
        ...this.ct.stats(),
        fragments: this.fragments.size + (this.v6?.fragments.size ?? 0),
        ...(ids === null ? {} : {
          ipv6Ids: { size: ids.size, capacity: ids.capacity, reclaimed: ids.reclaimed },
        }),
      };
    }
    return this.flows(limit);
  }

  /** Up to `limit` tracked flows for the status table. */
  flows(limit: number): FlowRecord[] {
    const now = Math.floor(this.#clock.now() / 1000);
    const ip = (n: number) => this.admission.formatIp(n);
    // A killed flow (a refused reopen) is gone for every lookup; it is swept at the next tick.
    return this.ct.snapshot(limit).filter((f) => (f.status & STATUS_DYING) === 0).map((f) => ({
      proto: f.proto,
      state: f.tcpState ?? (f.status & STATUS_SEEN_REPLY ? "REPLIED" : "UNREPLIED"),
      origSrc: ip(f.orig.src),
      origSrcPort: f.orig.srcPort,
      origDst: ip(f.orig.dst),
      origDstPort: f.orig.dstPort,
      replySrc: ip(f.reply.src),
      replySrcPort: f.reply.srcPort,
      replyDst: ip(f.reply.dst),
      replyDstPort: f.reply.dstPort,
      packets: this.ct.packets(2 * f.id) + this.ct.packets(2 * f.id + 1),
      bytes: this.ct.bytes(2 * f.id) + this.ct.bytes(2 * f.id + 1),
      expiresInSec: Math.max(0, this.ct.expiresAt(f.id) - now),
      rule: this.admission.ruleName(f.ruleId),
      assured: (f.status & STATUS_ASSURED) !== 0,
    }));
  }

  /** Expiry of flows, unlocks, sequences and fragments; flow checkpoints; uplink probes; sequence refresh; event flush. */
  async housekeeping(nowMs: number): Promise<void> {
    if (this.#handoff !== null) {
      this.fragments.sweep(nowMs); // worker 0 does the rest
      return;
    }
    this.ct.expire(Math.floor(nowMs / 1000));
    this.uplinks.tick(nowMs);
    this.uplinks6.tick(nowMs);
    if (this.#emitFlows !== undefined) {
      const snap = this.snapshots.tick(nowMs);
      if (snap !== null) this.#emitFlows(snap);
    }
    this.fragments.sweep(nowMs);
    this.v6?.fragments.sweep(nowMs);
    await this.admission.housekeeping(nowMs);
  }

  /** Counts packets the device would not take. */
  countWriteError(n: number): void {
    this.#c[Drop.WriteError] += n;
    this.#c[Stat.Drops] += n;
  }

  // ---- per packet ------------------------------------------------------------

  #drop(reason: number): false {
    this.#c[reason]++;
    this.#c[Stat.Drops]++;
    return false;
  }

  /**
   * Processes one packet in place; true to send it on. `csum` is the
   * device's L4 checksum state: only `CSUM_NONE` is verified here, and a
   * `CSUM_PARTIAL` one (a GSO super packet among them) is rewritten as a
   * pseudo-header sum, passing NAT whole.
   */
  process(buf: Uint8Array, off: number, len: number, csum: number, nowMs: number): boolean {
    const c = this.#c;
    c[Stat.RxPackets]++;
    c[Stat.RxBytes] += len;
    if (buf[off] >>> 4 === 6 && this.#v6on) return this.#ipv6(buf, off, len, csum, nowMs);
    return this.#sent(this.#decide(buf, off, len, csum, nowMs), buf, off, len);
  }

  /** An IPv6 packet: worker 0 processes it, a tracker hands it over. */
  #ipv6(buf: Uint8Array, off: number, len: number, csum: number, nowMs: number): boolean {
    if (this.v6 !== null) return this.v6.process(buf, off, len, csum, nowMs);
    if (this.#handoff === null) return this.#drop(ParseError.BadVersion);
    if (!this.#handoff.push(HANDOFF_PACKET, 0, csum, buf, off, len)) {
      return this.#drop(Drop.HandoffFull);
    }
    this.#c[Stat.HandedOff]++;
    return false;
  }

  /**
   * Processes one record of a tracker's handoff ring (worker 0): a packet
   * for the slow path, a reopening SYN of flow `arg`, or an unlock refresh
   * of source `arg` by `value` bytes (no packet). True to send the packet on.
   */
  processHandoff(
    kind: number,
    arg: number,
    value: number,
    buf: Uint8Array,
    off: number,
    len: number,
    csum: number,
    nowMs: number,
  ): boolean {
    if (kind === HANDOFF_TOUCH) {
      this.unlocks.touch(arg >>> 0, nowMs, value);
      return false;
    }
    this.#c[Stat.HandoffReceived]++;
    if (buf[off] >>> 4 === 6 && this.#v6on) return this.#ipv6(buf, off, len, csum, nowMs);
    const pass = kind === HANDOFF_REOPEN
      ? this.#decideReopen(buf, off, len, csum, arg, nowMs)
      : this.#decide(buf, off, len, csum, nowMs);
    return this.#sent(pass, buf, off, len);
  }

  /** This Worker holds no flow handle (between batches; see ConnTable.quiescent). */
  quiescent(): void {
    this.ct.quiescent();
    this.unlocks.quiescent();
  }

  /** This Worker is about to block on its device. */
  offline(): void {
    this.ct.offline();
    this.unlocks.offline();
  }

  /** Counts a packet that passes and takes its hop off. */
  #sent(pass: boolean, buf: Uint8Array, off: number, len: number): boolean {
    const c = this.#c;
    if (pass) {
      // Forwarded (not to our own addresses), it lost a hop into the TUN and loses one out of it.
      const d = read32(buf, off + IPV4_DST);
      if (!this.admission.isOwnAddress(d)) incrementTtl(buf, off);
      c[Stat.TxPackets]++;
      c[Stat.TxBytes] += len;
    }
    return pass;
  }

  /** Validates, tracks and translates one packet; true to send it on. */
  #decide(buf: Uint8Array, off: number, len: number, csum: number, nowMs: number): boolean {
    this.#csum = csum;
    this.#len = len;
    const ip = this.#ip.bind(buf, off, len);
    const err = ip.check();
    if (err !== ParseError.None) return this.#drop(err);
    // A TUN's packets passed ip_rcv_core (version, IHL, lengths, header checksum) before routing
    // sent them to us, or were built by ip_output (src/device/tun.ts); other devices cannot say.
    if (!this.#ipv4HeaderChecked && !ip.verifyChecksum()) return this.#drop(ParseError.BadChecksum);
    // 240.0.0.0/4 is reserved, and holds the interned IPv6 ids: no IPv4 tuple may name one.
    const src = ip.src(), dst = ip.dst();
    if (isIpv6Id(src) || isIpv6Id(dst)) return this.#drop(Drop.ReservedAddress);
    const partial = csum === CSUM_PARTIAL;
    if (ip.isFragment()) {
      this.#c[Stat.Fragments]++;
      if (ip.fragOffset() !== 0) return this.#laterFragment(ip, partial, nowMs);
    }
    const proto = ip.protocol();
    const perr = this.#parseL4(ip, proto, csum === CSUM_NONE);
    if (perr !== ParseError.None) return this.#drop(perr);
    if (
      proto === PROTO_ICMP && this.#icmpType !== ICMP_ECHO_REQUEST &&
      this.#icmpType !== ICMP_ECHO_REPLY
    ) {
      return this.#icmpError(ip, nowMs);
    }
    const h = this.ct.lookup(proto, src, this.#sport, dst, this.#dport);
    const pass = h >= 0
      ? this.#fastPath(h, ip, len, partial, nowMs)
      : this.#slowPath(ip, proto, len, partial, nowMs);
    if (pass && ip.moreFragments()) this.#rememberFragment(ip, src, dst, proto, nowMs);
    return pass;
  }

  /**
   * A SYN a tracker found reopening flow `id`: judged by admission if the
   * tuple still names that flow, else like any packet (the flow left meanwhile).
   */
  #decideReopen(
    buf: Uint8Array,
    off: number,
    len: number,
    csum: number,
    id: number,
    nowMs: number,
  ): boolean {
    const ip = this.#ip.bind(buf, off, len);
    if (ip.check() !== ParseError.None || ip.isFragment()) {
      return this.#decide(buf, off, len, csum, nowMs);
    }
    const proto = ip.protocol();
    const perr = this.#parseL4(ip, proto, false);
    if (perr !== ParseError.None) return this.#drop(perr);
    this.#csum = csum;
    this.#len = len;
    const h = this.ct.lookup(proto, ip.src(), this.#sport, ip.dst(), this.#dport);
    if (h < 0 || h >> 1 !== id) return this.#decide(buf, off, len, csum, nowMs);
    return this.#reopen(id, ip, len, csum === CSUM_PARTIAL, nowMs);
  }

  /**
   * A tracker hands the current packet (with the virtio-net header before
   * it) to worker 0; false: it is not sent from here.
   */
  #handOff(kind: number, arg: number, ip: Ipv4Packet): false {
    const ok = this.#handoff!.push(kind, arg, this.#csum, ip.buf, ip.off, this.#len);
    if (!ok) return this.#drop(Drop.HandoffFull);
    this.#c[Stat.HandedOff]++;
    return false;
  }

  /** Validates the L4 header (its checksum when `unchecked`) and reads its ports and flags. */
  #parseL4(ip: Ipv4Packet, proto: number, unchecked: boolean): number {
    const off = ip.payloadOffset(), len = ip.payloadLen();
    // The L4 checksum of a fragment covers the whole datagram.
    const verify = unchecked && !ip.isFragment();
    if (proto === PROTO_TCP) {
      const t = this.#tcp.bind(ip.buf, off, len);
      const e = t.check();
      if (e !== ParseError.None) return e;
      if (verify && !t.verifyChecksum(ip.src(), ip.dst())) return ParseError.BadL4Checksum;
      this.#sport = t.srcPort();
      this.#dport = t.dstPort();
      this.#flags = this.#seg.read(t).flags;
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
      // Verified whatever the state: no offload covers ICMP (DATA_VALID is the TCP/UDP checksum's).
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

  /**
   * A packet of a tracked flow: account and rewrite from the flow entry.
   * Kept under V8's inlining limit (460 bytecodes) so that it is inlined into
   * `#decide`; the rare branches live in `#localFlow` and `#notAccepted`.
   */
  #fastPath(h: number, ip: Ipv4Packet, len: number, partial: boolean, nowMs: number): boolean {
    const ct = this.ct, id = h >> 1;
    const flags = ct.flags[id];
    if ((flags & FLAG_LOCAL) !== 0) {
      if (!this.#localFlow(h, len, nowMs)) return this.#reopen(id, ip, len, partial, nowMs);
    } else {
      const v = ct.track(h, len, Math.floor(nowMs / 1000), this.#seg);
      if (v !== TRACK_ACCEPT) return this.#notAccepted(v, id, ip, len, partial, nowMs);
    }
    if ((flags & FLAG_GATED) !== 0 && (h & 1) === 0 && ct.lastSeen(id) !== this.#touchedAt[id]) {
      // An admitted flow keeps its unlock alive; once a second is enough.
      this.#touchedAt[id] = ct.lastSeen(id);
      this.unlocks.touch(ct.origSrc(id), nowMs, len); // a tracker in its own column: no handoff
    }
    this.#c[Stat.FastPath]++;
    this.#countRule(ct.ruleId[id], len);
    if ((flags & (FLAG_DNAT | FLAG_SNAT)) === 0) return true;
    return this.#translate(ip.buf, ip.off, h, ip, partial);
  }

  /**
   * Accounts a packet of a flow delivered to the appliance itself; false when
   * it is a SYN, which starts a new connection on the tuple (only the client's
   * half is seen, so no TCP state says so): it passes admission again.
   */
  #localFlow(h: number, len: number, nowMs: number): boolean {
    if ((this.#flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN)) === TCP_SYN) return false;
    const timeout = (this.#flags & (TCP_RST | TCP_FIN)) !== 0 ? 10 : LOCAL_FLOW_TIMEOUT_S;
    this.ct.touch(h, len, Math.floor(nowMs / 1000), timeout);
    return true;
  }

  /** A tracked packet the tracker did not accept as is: drop it, or judge a reopening SYN. */
  #notAccepted(
    v: number,
    id: number,
    ip: Ipv4Packet,
    len: number,
    partial: boolean,
    nowMs: number,
  ): boolean {
    if (v === TRACK_INVALID) return this.#drop(Drop.InvalidTcp);
    if (v === TRACK_OUT_OF_WINDOW) return this.#drop(Drop.TcpOutOfWindow);
    return this.#reopen(id, ip, len, partial, nowMs); // TRACK_REOPEN
  }

  /** A SYN starts a new connection on a finished flow's tuple: admission judges it anew. */
  #reopen(id: number, ip: Ipv4Packet, len: number, partial: boolean, nowMs: number): boolean {
    if (this.#handoff !== null) return this.#handOff(HANDOFF_REOPEN, id, ip);
    this.#c[Stat.SlowPath]++;
    const v = this.admission.reopen(
      id,
      ip.protocol(),
      ip.src(),
      this.#sport,
      ip.dst(),
      this.#dport,
      nowMs,
    );
    return this.#apply(v, ip, len, partial, nowMs);
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

  /** A packet without a flow: admission decides; an admitted one is tracked and translated. */
  #slowPath(ip: Ipv4Packet, proto: number, len: number, partial: boolean, nowMs: number): boolean {
    if (this.#handoff !== null) return this.#trackerMiss(ip, proto, nowMs);
    if (
      proto === PROTO_ICMP && this.#icmpType === ICMP_ECHO_REPLY &&
      this.uplinks.onReply(ip.buf, ip.payloadOffset(), ip.payloadLen(), ip.src(), ip.dst(), nowMs)
    ) {
      this.#c[Stat.ProbeReplies]++;
      return false;
    }
    this.#c[Stat.SlowPath]++;
    const opening = proto === PROTO_TCP
      ? (this.#flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN)) === TCP_SYN
      : proto === PROTO_UDP || this.#icmpType === ICMP_ECHO_REQUEST;
    const midStream = proto === PROTO_TCP &&
      (this.#flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN)) === TCP_ACK;
    const v = this.admission.admit(
      proto,
      ip.src(),
      this.#sport,
      ip.dst(),
      this.#dport,
      opening,
      nowMs,
      midStream,
    );
    return this.#apply(v, ip, len, partial, nowMs);
  }

  /**
   * A tracker's packet of no flow: dropped here, counted as worker 0 would,
   * when it opens a flow admission's gate certainly refuses (a locked
   * source's SYN flood stays off worker 0: `Admission.trackerVerdict`);
   * anything else goes to worker 0.
   */
  #trackerMiss(ip: Ipv4Packet, proto: number, nowMs: number): false {
    const opening = proto === PROTO_TCP
      ? (this.#flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN)) === TCP_SYN
      : proto === PROTO_UDP || this.#icmpType === ICMP_ECHO_REQUEST;
    const v = opening
      ? this.admission.trackerVerdict(proto, ip.src(), ip.dst(), this.#dport, nowMs)
      : 0;
    if (v === 0) return this.#handOff(HANDOFF_PACKET, 0, ip);
    this.#c[Stat.SlowPath]++;
    return this.#drop(v);
  }

  /** Applies admission's verdict: drop, or track the new flow and translate. */
  #apply(v: number, ip: Ipv4Packet, len: number, partial: boolean, nowMs: number): boolean {
    if (v !== ADMITTED) return this.#drop(v);
    const ct = this.ct, id = this.admission.flowId, flags = ct.flags[id];
    const nowSec = Math.floor(nowMs / 1000);
    if ((flags & FLAG_LOCAL) !== 0) {
      ct.touch(2 * id, len, nowSec, LOCAL_FLOW_TIMEOUT_S);
      return true;
    }
    const h = 2 * id + this.admission.flowDir;
    ct.track(h, len, nowSec, this.#seg);
    this.#countRule(ct.ruleId[id], len);
    return this.#translate(ip.buf, ip.off, h, ip, partial);
  }

  /** Counts a packet of `len` bytes against stable rule id `rule` (-1: none). */
  #countRule(rule: number, len: number): void {
    if (rule < 0 || rule >= MAX_RULE_IDS) return;
    const c = this.#c, i = RULE_BASE + 2 * rule;
    c[i]++;
    c[i + 1] += len;
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
    if (isIpv6Id(inner.src()) || isIpv6Id(inner.dst())) return this.#drop(Drop.ReservedAddress);
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
    ct.track(h, 0, Math.floor(nowMs / 1000), null);
    this.#c[Stat.IcmpErrorsTranslated]++;
    return true;
  }

  #rememberFragment(ip: Ipv4Packet, src: number, dst: number, proto: number, nowMs: number): void {
    this.fragments.remember(src, dst, proto, ip.ident(), ip.src(), ip.dst(), nowMs);
  }

  /** A non-first fragment: translated like its first fragment, or dropped. */
  #laterFragment(ip: Ipv4Packet, partial: boolean, nowMs: number): boolean {
    const f = this.fragments.find(ip.src(), ip.dst(), ip.protocol(), ip.ident(), nowMs);
    if (!f && this.#handoff !== null) return this.#handOff(HANDOFF_PACKET, 0, ip);
    if (!f) return this.#drop(Drop.FragmentOrphan);
    if (f.newSrc !== f.src) rewriteSource(ip.buf, ip.off, f.newSrc, 0, partial);
    if (f.newDst !== f.dst) rewriteDestination(ip.buf, ip.off, f.newDst, 0, partial);
    return true;
  }
}
