/**
 * Admission: may a packet open a flow, and with which translation? The one
 * home of the gate: the compiled rules, the knock verifier, the unlock table
 * and the allow-list. New flows, and flows reopened by a SYN on a
 * TIME_WAIT/CLOSE tuple (the pipeline kills the old entry first), both come
 * through `admit()`, so a revoked or expired source cannot get back in by
 * reusing a tuple.
 *
 * Several WAN uplinks, each with one or more addresses: a WAN packet to any
 * of them is judged for that address (its slot in the rule index; the
 * management port only on the management uplinks' addresses); knocks are
 * watched on every one and an unlock admits to knock-enforced rules on all.
 * Hairpin hides the LAN client behind the WAN address it targeted;
 * masquerade uses the primary address of the first uplink up in the
 * masquerade order (`setUplinkHealth`).
 *
 * Per packet nothing allocates or throws: `admit()` returns ADMITTED or a
 * drop reason; on ADMITTED the new flow is `flowId` (its tuples in `spec`,
 * its FLAG_* bits and stable rule id in the flow table) and the caller tracks
 * it and rewrites the packet as seen in direction `flowDir`.
 *
 * Loose pickup (Linux nf_conntrack_tcp_loose): after a restart that lost a
 * flow, a TCP segment in mid stream (ACK, no SYN, RST or FIN) of no tracked
 * flow is taken as ESTABLISHED when the rules alone determine its
 * translation and the gate would admit it: from the WAN to a forward (the
 * source unlocked, allow-listed, or the rule enforces no knock); a forward's
 * server answering a WAN client (the client likewise; only for a rule on
 * one WAN address, else the client's next segment picks it up from the WAN
 * side with the right one); from the LAN to the WAN (masquerade, from the
 * current masquerade address) and from the LAN to a forward (hairpin) when
 * the port allocator computes the flow's port again: the LAN host's own port
 * (unless two LAN hosts clash) or, with a `portKey`, the keyed port every
 * node holding the key derives from the flow (see port_alloc.ts). Without a
 * key a remapped flow is lost; the snapshot covers it after a restart.
 *
 * IPv6 (`admission6.ts` judges its new flows): rules whose private address
 * is IPv6 are compiled there, not into the IPv4 rule index; the unlock
 * table and the verifier key IPv6 sources by their interned prefix
 * (`ipv6_ids.ts`), so every string they write passes through `keys6`
 * (`ipv6_keys.ts`) on its way out (events, unlock and knock-state records)
 * and in (restored and merged records, revocations).
 */
import { type Clock, systemClock } from "../clock.ts";
import {
  ConnTable,
  CREATE_CLASH,
  DIR_ORIGINAL,
  DIR_REPLY,
  FLAG_DNAT,
  FLAG_GATED,
  FLAG_HAIRPIN,
  FLAG_LOCAL,
  FLAG_SNAT,
  FlowSpec,
} from "../conntrack/mod.ts";
import {
  ClaimResult,
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
import { PortAllocator } from "../nat/port_alloc.ts";
import { compileRules, type RuleIndex } from "../nat/rule_index.ts";
import { MAX_WAN_ADDRESSES } from "../nat/rule_validate.ts";
import type { OpenPortsRule, PortForwardRule } from "../nat/rule.ts";
import {
  type Cidr,
  cidrContains,
  formatIpv4,
  parseCidr,
  parseIpv4,
  PROTO_ICMP,
  PROTO_TCP,
} from "../packet/mod.ts";
import { AdmittedLog } from "./admitted_log.ts";
import { ClaimQueue } from "./claim_queue.ts";
import { idCapacityFor, Ipv6Ids, isIpv6Id } from "./ipv6_ids.ts";
import { Ipv6Keys } from "./ipv6_keys.ts";
import { Drop, KNOCK_STAT_BASE, KNOCK_STATS, knockFailureSlot, Stat } from "./counters.ts";
import type {
  DatapathSettings,
  KnockClaim,
  KnockClaimAnswer,
  KnockUser,
  RuleIdName,
  UnlockRecord,
} from "./messages.ts";

/** Verdict of `admit()`: the flow was created (see `flowId`). Any other value is a `Drop` reason. */
export const ADMITTED = 0;

/** `#forwardFrom`: several rule entries forward to the server port. */
const AMBIGUOUS = -2;

/** Source ports used for masquerade (LAN to WAN) and hairpin. */
const SNAT_LO = 32768, SNAT_HI = 60999;

/** What admission starts with. */
export interface AdmissionInit {
  settings: DatapathSettings;
  forwards: PortForwardRule[];
  openPorts: OpenPortsRule[];
  /** The flow table new flows go into. */
  ct: ConnTable;
  counters: Float64Array;
  /** Receives events in batches, on `flush()`. */
  emit: (events: ApplianceEvent[]) => void;
  /** Receives the verifier's changed state records (for the store), on `flush()`. */
  emitKnockState?: (records: KnockStateRecord[]) => void;
  /** Time for control operations and events. */
  clock?: Clock;
  /** Seed of the NAT port probes; random by default. For tests. */
  portSeed?: number;
  /**
   * A completed knock unlocks only once its step is claimed across the fleet
   * (the etcd store): it is queued for `takeClaims`, and `resolveClaims`
   * brings the answers. Default false (one box: unlocked at once).
   */
  knockClaims?: boolean;
  /**
   * The source-NAT port key (`portKeyFromSecret` over the store's secret
   * key): every node holding the same key remaps a clashing LAN flow to the
   * same port, so a node taking it over in mid stream rewrites it as the
   * other did. Absent: random probes, and a remapped flow is not picked up.
   */
  portKey?: readonly [number, number];
  /**
   * The gate's tables shared by the queues' Workers (`Admission.gateBuffers`)
   * and this Worker's number (0: it writes them); absent: an unlock table of
   * its own (one Worker).
   */
  gate?: GateTables;
}

/** The gate's shared tables: the unlocks, and the sources with a knock sequence in progress. */
export interface GateTables {
  unlocks: SharedArrayBuffer;
  knocking: SharedArrayBuffer;
  worker: number;
}

/** Most entries of the knocking table (twice the sequences the verifier holds, see `#knocking`). */
const MAX_KNOCKING = 1 << 21;

/** Parsed settings the gate reads. */
interface Addressing {
  /** Every WAN address by slot: uplink order, then address order. */
  wan: Uint32Array;
  /** The lowest and highest WAN address, for a quick miss. */
  wanMin: number;
  wanMax: number;
  /** Per uplink: its primary address (masquerade's). */
  primary: Uint32Array;
  /** Slots where the management port answers (uplinks with `management`), bits 0-31 and 32-63. */
  mgmtLo: number;
  mgmtHi: number;
  /** Uplink indexes masquerade may use, in order of preference. */
  masquerade: Int32Array;
  lan: number;
  lanNet: Cidr;
  allow: Cidr[];
  mgmtPort: number;
  mgmtWan: boolean;
}

/** True for a rule whose private host is IPv6 (a pinhole or a NAT66 forward: `admission6.ts`). */
export function isIpv6Rule(r: { privateAddress: string }): boolean {
  return r.privateAddress.includes(":");
}

/** The IPv4 rules of `rules`. */
function ipv4Rules<R extends { privateAddress: string }>(rules: R[]): R[] {
  return rules.filter((r) => !isIpv6Rule(r));
}

/** Parses the addressing; throws (configuration time) beyond 64 WAN addresses. */
function addressing(s: DatapathSettings): Addressing {
  const wan: number[] = [];
  let mgmtLo = 0, mgmtHi = 0;
  for (const u of s.uplinks) {
    for (const a of u.addresses) {
      const slot = wan.push(parseIpv4(a)!) - 1;
      if (!u.management) continue;
      if (slot < 32) mgmtLo |= 1 << slot;
      else mgmtHi |= 1 << (slot - 32);
    }
  }
  if (wan.length > MAX_WAN_ADDRESSES) {
    throw new Error(`${wan.length} WAN addresses: at most ${MAX_WAN_ADDRESSES} in all`);
  }
  const names = s.uplinks.map((u) => u.name);
  return {
    wan: Uint32Array.from(wan),
    wanMin: Math.min(...wan),
    wanMax: Math.max(...wan),
    primary: Uint32Array.from(s.uplinks, (u) => parseIpv4(u.addresses[0])!),
    mgmtLo: mgmtLo >>> 0,
    mgmtHi: mgmtHi >>> 0,
    masquerade: Int32Array.from(
      s.masquerade.filter((n) => names.includes(n)),
      (n) => names.indexOf(n),
    ),
    lan: parseIpv4(s.lanAddress)!,
    lanNet: parseCidr(s.lanNetwork)!,
    allow: s.allow.filter((c) => !c.includes(":")).map((c) => parseCidr(c)!),
    mgmtPort: s.managementPort,
    mgmtWan: s.managementWanAccess === "knock",
  };
}

/**
 * Rule names to ids that stay put while rules are added, edited and deleted:
 * a flow names its rule by id, and an id is never given to another name
 * while a flow may hold it.
 */
class RuleIds {
  readonly #byName = new Map<string, number>();
  readonly #names = new Map<number, string>();
  #next = 0;

  /** The id of `name`, given one if it has none. */
  idOf(name: string): number {
    let id = this.#byName.get(name);
    if (id === undefined) {
      id = this.#next++;
      this.#byName.set(name, id);
      this.#names.set(id, name);
    }
    return id;
  }

  /** The name of rule `id`, or null. */
  nameOf(id: number): string | null {
    return this.#names.get(id) ?? null;
  }

  /** Forgets the names neither in `current` nor held by a flow (their ids are never reused). */
  prune(current: ReadonlySet<string>, held: ReadonlySet<number>): void {
    for (const [name, id] of this.#byName) {
      if (current.has(name) || held.has(id)) continue;
      this.#byName.delete(name);
      this.#names.delete(id);
    }
  }

  get size(): number {
    return this.#byName.size;
  }

  /** Every (id, name) held. */
  list(): RuleIdName[] {
    return [...this.#names].map(([id, name]) => ({ id, name }));
  }
}

/** The gate for new flows. One instance per pipeline. */
export class Admission {
  readonly ct: ConnTable;
  readonly unlocks: UnlockTable;
  readonly sequences = new SequenceCache();
  readonly verifier: KnockVerifier;
  /** The tuples of the flow `admit()` last tried to create. */
  readonly spec = new FlowSpec();
  /** The flow the last ADMITTED verdict created; -1 after any other. */
  flowId = -1;
  /** The direction the packet of the last ADMITTED verdict travels in its flow (a picked-up server reply: DIR_REPLY). */
  flowDir = DIR_ORIGINAL;
  /** The interned IPv6 addresses and prefixes; null without `settings.ipv6`. */
  readonly ids: Ipv6Ids | null;
  /** The knock layer's IPv6 keys as text, and the ids they hold; null without `settings.ipv6`. */
  readonly keys6: Ipv6Keys | null;
  #rules: RuleIndex;
  /** Per rule-index entry: the stable id of its rule. */
  #entryRule: Int32Array;
  readonly #ruleIds = new RuleIds();
  readonly #ports: PortAllocator;
  #a: Addressing;
  /** The uplinks as the rule index numbers their address slots. */
  #uplinks: DatapathSettings["uplinks"];
  /** The rules in force, compiled again when the uplinks change. */
  #forwards: PortForwardRule[];
  #openPorts: OpenPortsRule[];
  /** Per uplink: 1 while up (its probe answers, or it has none). */
  #up: Uint8Array;
  /** Per uplink, by its IPv6 probe: 1 up, 0 down, -1 not probed (its IPv4 health counts). */
  #up6: Int8Array;
  /** The uplinks' IPv6 health, for NPTv6's choice of uplink (`uplinkUp6`). */
  readonly health6 = { uplinkUp: (i: number) => this.uplinkUp6(i) };
  /** The uplink masquerade uses now (index), -1 when the masquerade list is empty. */
  #masqUplink = -1;
  /** Its primary address. */
  #masqAddr = 0;
  /** The destination of the packet `verifier.observe()` is judging (a knock's WAN address). */
  #knockDst = 0;
  #profiles: KnockProfile[] = [];
  #pending: ApplianceEvent[] = [];
  /** The flow-admitted events not yet in `#pending` (built on `flush()`). */
  readonly #admittedLog = new AdmittedLog();
  /**
   * With several Workers: the sources whose last packet the verifier took as
   * a knock (KNOCK), by time, "unlocked" for the sequence window (+1 ms:
   * a sequence lives while now - start <= window, and start <= that
   * knock). Worker 0 writes it; trackers leave those sources' packets to
   * the verifier (a stray counts against their sequence). It holds the
   * sources of the last knocks, twice as many as the verifier holds
   * sequences: of those knocked after a sequence in progress started, fewer
   * than N started later (it is among the N newest) and fewer than N started
   * earlier and are still in progress, so it is never evicted here.
   */
  readonly #knocking: UnlockTable | null;
  /** The user `#unlockAdmits` last found unlocked, or null. */
  #unlockUser: string | null = null;
  readonly #c: Float64Array;
  readonly #emit: (events: ApplianceEvent[]) => void;
  readonly #emitKnockState: (records: KnockStateRecord[]) => void;
  readonly #clock: Clock;
  /** Completed knocks not yet taken by `takeClaims` (a fleet's). */
  readonly #claims = new ClaimQueue();

  /** The gate's shared tables for `workers` Workers on `settings` (`AdmissionInit.gate`, worker 0 fills them). */
  static gateBuffers(
    settings: DatapathSettings,
    workers: number,
  ): { unlocks: SharedArrayBuffer; knocking: SharedArrayBuffer } {
    return {
      unlocks: UnlockTable.createBuffer(settings.maxUnlocks ?? 65536, workers),
      knocking: UnlockTable.createBuffer(knockingEntries(settings), workers),
    };
  }

  /** Builds the tables from `init`; throws on invalid rules (configuration time). */
  constructor(init: AdmissionInit) {
    const s = init.settings;
    this.ct = init.ct;
    this.#c = init.counters;
    this.#emit = init.emit;
    this.#emitKnockState = init.emitKnockState ?? (() => {});
    this.#clock = init.clock ?? systemClock;
    this.#ports = new PortAllocator(init.ct, { seed: init.portSeed, key: init.portKey });
    // Held ids: a flow's peer (its LAN host is shared) and an unlock's prefix; the power of two
    // above leaves room for the sources recycling. Beyond, new sources are refused, counted.
    this.ids = s.ipv6 ? new Ipv6Ids(idCapacityFor(s.maxFlows + (s.maxUnlocks ?? 65536))) : null;
    this.keys6 = s.ipv6 ? new Ipv6Keys(this.ids!, s.ipv6.unlockPrefix) : null;
    this.#a = addressing(s);
    this.#uplinks = s.uplinks;
    this.#up = new Uint8Array(s.uplinks.length).fill(1);
    this.#up6 = new Int8Array(s.uplinks.length).fill(-1);
    this.#pickMasquerade();
    this.#forwards = init.forwards;
    this.#openPorts = init.openPorts;
    this.#rules = compileRules(ipv4Rules(init.forwards), ipv4Rules(init.openPorts), this.#uplinks);
    this.#entryRule = this.#stableIds(this.#rules);
    this.unlocks = new UnlockTable({
      maxEntries: s.maxUnlocks,
      idleTimeoutMs: s.knock.idleTimeoutSec * 1000,
      lifetimeMs: s.knock.lifetimeSec * 1000,
      onEvent: (e) => this.#event(e),
      buffer: init.gate?.unlocks,
      worker: init.gate?.worker,
    });
    this.#knocking = init.gate
      ? new UnlockTable({
        buffer: init.gate.knocking,
        worker: init.gate.worker,
        maxEntries: knockingEntries(s),
        idleTimeoutMs: s.knock.windowSec * 1000 + 1,
      })
      : null;
    this.verifier = new KnockVerifier(this.sequences, {
      ...verifierTunables(s.knock),
      claims: init.knockClaims ?? false,
      pairFamilies: s.ipv6?.pairFamilies ?? false,
      familyOf: (ip) => isIpv6Id(ip) ? 6 : 4,
      onEvent: (e) => this.#event(e),
      // A step's first IP may repeat it only while the unlock it gave is live.
      unlockLive: (ip, user, nowMs) =>
        this.unlocks.isUnlocked(ip, nowMs) && this.unlocks.userOf(ip) === user,
    });
  }

  #stableIds(rules: RuleIndex): Int32Array {
    const ids = new Int32Array(rules.size);
    for (let e = 0; e < rules.size; e++) ids[e] = this.#ruleIds.idOf(rules.ruleName(e));
    return ids;
  }

  // ---- control -------------------------------------------------------------

  /** Replaces the rules (throws on invalid ones); established flows keep their translation and rule. */
  setRules(forwards: PortForwardRule[], openPorts: OpenPortsRule[]): void {
    const rules = compileRules(ipv4Rules(forwards), ipv4Rules(openPorts), this.#uplinks);
    this.#forwards = forwards;
    this.#openPorts = openPorts;
    this.#swapRules(rules);
  }

  #swapRules(rules: RuleIndex): void {
    const held = new Set<number>();
    this.ct.forEach((id) => {
      if (this.ct.ruleId[id] >= 0) held.add(this.ct.ruleId[id]);
    });
    // The IPv6 rules' names keep their ids too (admission6.ts counts by them).
    const v6 = [...this.#forwards, ...this.#openPorts].filter(isIpv6Rule).map((r) => r.name);
    this.#ruleIds.prune(new Set([...rules.ruleNames, ...v6]), held);
    this.#entryRule = this.#stableIds(rules);
    this.#rules = rules;
  }

  /** The stable id of the rule named `name`, given one if it has none (restored flows name their rule). */
  ruleIdOf(name: string): number {
    return this.#ruleIds.idOf(name);
  }

  /** The name of the rule with stable id `id` (as flows hold it), or null. */
  ruleName(id: number): string | null {
    return id < 0 ? null : this.#ruleIds.nameOf(id);
  }

  /** The rules by stable id: the current rules and those flows still name. */
  ruleIds(): RuleIdName[] {
    return this.#ruleIds.list();
  }

  /** Rule names holding an id: the current rules and those flows still name. */
  get knownRuleNames(): number {
    return this.#ruleIds.size;
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
    this.unlocks.setFirstPorts(this.#profiles.map((p) => p.firstPort));
  }

  /**
   * Applies new addressing, gate and knock settings. Unlock timeouts apply to
   * existing unlocks; the verifier is retuned in place (sequences, replay
   * memory, failures and penalties kept). New uplink addresses bind the
   * rules again. `maxFlows` takes a restart.
   */
  setSettings(s: DatapathSettings): void {
    const a = addressing(s);
    // New address slots: the rules are bound again (throwing, before any change, if they cannot be).
    if (JSON.stringify(wanLayout(s.uplinks)) !== JSON.stringify(wanLayout(this.#uplinks))) {
      this.#swapRules(
        compileRules(ipv4Rules(this.#forwards), ipv4Rules(this.#openPorts), s.uplinks),
      );
    }
    this.#a = a;
    if (this.keys6 !== null && s.ipv6) this.keys6.unlockPrefix = s.ipv6.unlockPrefix;
    this.verifier.pairFamilies = s.ipv6?.pairFamilies ?? false;
    this.#uplinks = s.uplinks;
    if (this.#up.length !== s.uplinks.length) this.#up = new Uint8Array(s.uplinks.length).fill(1);
    if (this.#up6.length !== s.uplinks.length) this.#up6 = new Int8Array(s.uplinks.length).fill(-1);
    this.#pickMasquerade();
    this.unlocks.setTimeouts(s.knock.idleTimeoutSec * 1000, s.knock.lifetimeSec * 1000);
    this.#knocking?.setTimeouts(s.knock.windowSec * 1000 + 1, 0);
    this.verifier.retune(verifierTunables(s.knock), this.#clock.now());
  }

  /**
   * Takes the uplinks' health, `up[i]` for uplink `i` in settings order (a
   * missing entry counts as up): masquerade moves to the primary address of
   * the first uplink up in the masquerade order (all down: the first in
   * order). Flows already masqueraded keep their address.
   */
  setUplinkHealth(up: readonly boolean[]): void {
    for (let i = 0; i < this.#up.length; i++) this.#up[i] = up[i] === false ? 0 : 1;
    this.#pickMasquerade();
  }

  /** True while uplink `i` (settings order) is up by its probe (`setUplinkHealth`). */
  uplinkUp(i: number): boolean {
    return this.#up[i] === 1;
  }

  /** Takes the IPv6 probes' health, `up6[i]` for uplink `i`; null: not probed. */
  setUplink6Health(up6: readonly (boolean | null)[]): void {
    for (let i = 0; i < this.#up6.length; i++) {
      const u = up6[i];
      this.#up6[i] = u === true ? 1 : u === false ? 0 : -1;
    }
  }

  /** Uplink `i`'s IPv6 health: its IPv6 probe's, or its IPv4 one's when it has none. */
  uplinkUp6(i: number): boolean {
    const u = this.#up6[i];
    return u === -1 ? this.#up[i] === 1 : u === 1;
  }

  /** The uplink (index in settings order) masquerade uses now; -1 when the masquerade list is empty. */
  masqueradeUplink(): number {
    return this.#masqUplink;
  }

  #pickMasquerade(): void {
    const order = this.#a.masquerade;
    let pick = order.length > 0 ? order[0] : -1;
    for (let i = 0; i < order.length; i++) {
      if (this.#up[order[i]] === 1) {
        pick = order[i];
        break;
      }
    }
    this.#masqUplink = pick;
    this.#masqAddr = pick >= 0 ? this.#a.primary[pick] : 0;
  }

  /** True for one of the appliance's own WAN or LAN addresses (packets delivered locally, not forwarded). */
  isOwnAddress(addr: number): boolean {
    return addr === this.#a.lan || this.#wanSlot(addr) >= 0;
  }

  /** The slot of WAN address `addr`, or -1 when it is none of ours. Hot path. */
  #wanSlot(addr: number): number {
    const a = this.#a;
    if (addr < a.wanMin || addr > a.wanMax) return -1;
    const wan = a.wan;
    for (let i = 0; i < wan.length; i++) if (wan[i] === addr) return i;
    return -1;
  }

  /** Whether the management port answers on the WAN address in `slot`. */
  #mgmtAt(slot: number): boolean {
    const a = this.#a;
    return ((slot < 32 ? a.mgmtLo : a.mgmtHi) & (1 << (slot & 31))) !== 0;
  }

  /** Restores unlocks saved before a restart (IPv6 ones are interned again; without IPv6, skipped). */
  restoreUnlocks(records: UnlockRecord[], nowMs: number): void {
    const k = this.keys6;
    this.unlocks.restore(k ? k.internalUnlocks(records, Math.floor(nowMs / 1000)) : records, nowMs);
    k?.recountUnlocks(this.unlocks);
  }

  /** Restores the verifier's replay memory, failures and penalties saved before a restart. */
  restoreKnockState(records: KnockStateRecord[], nowMs: number): number {
    const k = this.keys6;
    return this.verifier.restoreState(k ? k.internalKnockState(records, nowMs) : records, nowMs);
  }

  /** The dotted id of WAN IPv6 address `text`, or "" when it is none of ours. */
  wanAddressId(text: string): string {
    return this.keys6?.wanAddress(text, this.#nowSec()) ?? "";
  }

  #nowSec(): number {
    return Math.floor(this.#clock.now() / 1000);
  }

  /** Merges the knock state other nodes wrote (a fleet's store feed) into the verifier. */
  mergeKnockState(records: readonly KnockStateRecord[], nowMs: number): number {
    const k = this.keys6;
    return this.verifier.mergeState(k ? k.internalKnockState(records, nowMs) : records, nowMs);
  }

  /** The completed knocks queued for a claim since the last call, or null for none. */
  takeClaims(): KnockClaim[] | null {
    const claims = this.#claims.take((step) => this.verifier.claimExpiry(step));
    if (claims === null || this.keys6 === null) return claims;
    // The store holds IPv6 sources as their prefix's text: node-local ids never leave.
    for (const c of claims) {
      // Paired by family, the IPv6 half of a step is claimed under its own key.
      if (this.verifier.pairFamilies && isIpv6Id(parseIpv4(c.ip) ?? 0)) c.family = 6;
      c.ip = this.externalIp(c.ip);
      c.wanAddress = this.externalIp(c.wanAddress);
    }
    return claims;
  }

  /**
   * Applies the control plane's answers to claims: a granted one unlocks its
   * source (for the WAN address it knocked) with the usual events, a taken
   * one is a replay, a refused one is counted. Events are flushed at once.
   */
  resolveClaims(answers: readonly KnockClaimAnswer[], nowMs: number): void {
    for (const a of answers) {
      const ip = parseIpv4(this.internalIp(a.ip) ?? "");
      const wanText = a.wanAddress.includes(":") ? this.wanAddressId(a.wanAddress) : a.wanAddress;
      const wan = parseIpv4(wanText) ?? 0;
      if (ip === null) continue;
      const result = a.result === "granted"
        ? ClaimResult.GRANTED
        : a.result === "taken"
        ? ClaimResult.TAKEN
        : ClaimResult.UNREACHABLE;
      const first = a.firstIp === undefined ? 0 : parseIpv4(this.internalIp(a.firstIp) ?? "") ?? 0;
      this.#knockDst = wan; // the success event names the address knocked
      if (this.verifier.resolveClaim(ip, a.user, a.step, a.drift, result, first, nowMs)) {
        this.unlockSource(ip, a.user, a.drift, nowMs, wan);
      }
    }
    this.#copyKnockStats();
    this.flush();
  }

  /** Queues the claim of the `PENDING` completion from `src` to `dst`; full: refused. */
  #queueClaim(src: number, dst: number, nowMs: number): void {
    const v = this.verifier;
    if (this.#claims.push(src, dst, v.lastUser, v.lastStep, v.lastDrift, nowMs)) return;
    v.resolveClaim(src, v.lastUser, v.lastStep, v.lastDrift, ClaimResult.DROPPED, 0, nowMs);
  }

  /** Ends the unlock of `ip` on behalf of `by` (a user name); returns what it was, or null. */
  revoke(ip: string, by = "operator"): UnlockRecord | null {
    const n = parseIpv4(this.internalIp(ip, false) ?? "");
    if (n === null) return null;
    const info = this.unlocks.get(n);
    if (!info || !this.unlocks.revoke(n, by)) return null;
    this.flush();
    return this.externalUnlock(info);
  }

  /**
   * An address as the knock layer keys it (`Ipv6Keys.internal`): IPv4 text
   * as it is, IPv6 as its prefix's id (interned when `create`); null when
   * it is neither, or IPv6 is off.
   */
  internalIp(ip: string, create = true): string | null {
    if (this.keys6 !== null) return this.keys6.internal(ip, this.#nowSec(), create);
    return typeof ip === "string" && !ip.includes(":") ? ip : null;
  }

  /** A string the knock layer wrote, with an interned id turned into its IPv6 text. */
  externalIp(s: string): string {
    return this.keys6 === null ? s : this.keys6.external(s);
  }

  /** Address `n` as text: a dotted quad, or an interned id's IPv6 text. */
  formatIp(n: number): string {
    return this.keys6 === null ? formatIpv4(n) : this.keys6.format(n);
  }

  /** An unlock record as the control plane reads it (IPv6 keys as text). */
  externalUnlock(r: UnlockRecord): UnlockRecord {
    return this.keys6 === null ? r : this.keys6.externalUnlock(r);
  }

  /** The unlock records in the control plane's form, for the status table. */
  listUnlocks(): UnlockRecord[] {
    const list = this.unlocks.list();
    return this.keys6 === null ? list : list.map((r) => this.keys6!.externalUnlock(r));
  }

  /** Unlocks `src` for `user` (from a knock to `dst`, or a merged record); holds an IPv6 id. */
  unlockSource(src: number, user: string, drift: number, nowMs: number, dst: number): void {
    this.unlocks.unlock(src, user, drift, nowMs, dst);
    this.keys6?.holdUnlock(src);
  }

  /** Expiry of unlocks and sequences in progress; sequence refresh; event flush. */
  async housekeeping(nowMs: number): Promise<void> {
    this.unlocks.expire(nowMs);
    this.#knocking?.expire(nowMs);
    this.verifier.sweep(nowMs);
    this.keys6?.releasePenalties(this.verifier, nowMs);
    this.#copyKnockStats();
    await this.sequences.refresh(nowMs);
    this.flush();
  }

  /** Publishes the verifier's counts in the shared counters. */
  #copyKnockStats(): void {
    const st = this.verifier.stats;
    for (let i = 0; i < KNOCK_STATS.length; i++) this.#c[KNOCK_STAT_BASE + i] = st[KNOCK_STATS[i]];
  }

  /** Hands the verifier's changed state and the pending events on. */
  flush(): void {
    const state = this.verifier.drainState();
    if (state.length > 0) {
      const k = this.keys6;
      this.#emitKnockState(k === null ? state : state.map((r) => ({ ...r, ip: k.external(r.ip) })));
    }
    const batch = this.#admittedLog.drainInto(this.#pending, this.#formatIp);
    if (batch.length === 0) return;
    this.#pending = [];
    this.#emit(batch);
  }

  readonly #formatIp = (n: number): string => this.formatIp(n);

  #event(e: KnockEvent | UnlockEvent): void {
    const severity = e.type === "knock-success" ? Severity.Notice : Severity.Warning;
    const time = this.#clock.now();
    // A success comes out of `verifier.observe()` (or `resolveClaims`), for the knock to `#knockDst`.
    const wan = e.type === "knock-success" ? { wan: this.formatIp(this.#knockDst) } : {};
    if (this.keys6 !== null) e = this.keys6.externalEvent(e);
    this.#pending.push({ ...e, ...wan, time, severity } as ApplianceEvent);
    if (e.type === "knock-success") this.#c[Stat.Unlocks]++;
    else if (e.type === "knock-failure") this.#c[knockFailureSlot(e.reason)]++;
  }

  // ---- per packet ------------------------------------------------------------

  /**
   * Judges a packet of no tracked flow, (proto, src:srcPort -> dst:dstPort)
   * (ICMP echo: identifier as both ports); `opening` when it may start a
   * flow (TCP SYN alone, UDP, ICMP echo request); `midStream` for a TCP
   * segment with ACK and without SYN, RST or FIN (loose pickup). Knocks are
   * consumed here. Returns ADMITTED (the flow is `flowId`) or a `Drop` reason.
   */
  admit(
    proto: number,
    src: number,
    srcPort: number,
    dst: number,
    dstPort: number,
    opening: boolean,
    nowMs: number,
    midStream = false,
  ): number {
    this.flowId = -1;
    this.flowDir = DIR_ORIGINAL;
    if (cidrContains(this.#a.lanNet, src)) {
      if (opening) return this.#fromLan(proto, src, srcPort, dst, dstPort, nowMs);
      return midStream
        ? this.#pickUpFromLan(proto, src, srcPort, dst, dstPort, nowMs)
        : Drop.NoFlow;
    }
    const slot = this.#wanSlot(dst);
    if (slot < 0) return Drop.NotForUs;
    if (!opening) {
      return midStream
        ? this.#pickUpFromWan(proto, src, srcPort, dst, slot, dstPort, nowMs)
        : Drop.NoFlow;
    }
    if (proto === PROTO_ICMP) return Drop.NoRule; // stealth: the WAN addresses answer no ping
    const k = this.watchKnock(src, proto, dstPort, dst, nowMs);
    if (k !== ADMITTED) return k;
    return this.#fromWan(proto, src, srcPort, dst, slot, dstPort, nowMs);
  }

  /**
   * The knock watch on a packet that may open a flow from `src` (the
   * source, or an IPv6 source's interned prefix) to WAN address `dst`:
   * ADMITTED when it is no knock (judge it as a flow), else the drop reason
   * (a knock, consumed; a penalised source).
   */
  watchKnock(src: number, proto: number, dstPort: number, dst: number, nowMs: number): number {
    // Knocks are watched on every WAN address; the verifier keys on the source alone.
    this.#knockDst = dst;
    switch (this.verifier.observe(src, proto as 6 | 17, dstPort, nowMs)) {
      case KnockVerdict.KNOCK:
        this.#knocking?.unlock(src, "", 0, nowMs); // trackers leave src's strays to the verifier
        return Drop.Knock;
      case KnockVerdict.REPLAY:
        return Drop.Knock;
      case KnockVerdict.UNLOCKED:
        this.unlockSource(src, this.verifier.lastUser, this.verifier.lastDrift, nowMs, dst);
        return Drop.Knock;
      case KnockVerdict.PENDING:
        this.#queueClaim(src, dst, nowMs);
        return Drop.Knock;
      case KnockVerdict.PENALISED:
      case KnockVerdict.THROTTLED:
        return Drop.Penalised;
    }
    return ADMITTED;
  }

  /**
   * A SYN started a new connection on the tuple of flow `id`, a finished one
   * (conntrack's TRACK_REOPEN, or any SYN on a flow to the appliance itself):
   * as Linux does (nf_conntrack_proto_tcp kills the old entry and repeats the
   * packet as new), the old flow goes and the packet is judged as a new one,
   * so a source revoked or expired since cannot reuse the tuple. Returns
   * what `admit()` does.
   */
  reopen(
    id: number,
    proto: number,
    src: number,
    srcPort: number,
    dst: number,
    dstPort: number,
    nowMs: number,
  ): number {
    this.ct.kill(id, Math.floor(nowMs / 1000));
    return this.admit(proto, src, srcPort, dst, dstPort, true, nowMs);
  }

  /** A new flow from the WAN to WAN address `dst` (in `slot`): management, forward, or nothing. */
  #fromWan(
    proto: number,
    src: number,
    srcPort: number,
    dst: number,
    slot: number,
    dstPort: number,
    nowMs: number,
  ): number {
    const v = this.#wanGate(proto, src, slot, dstPort, nowMs, false);
    if (v !== ADMITTED) return v;
    const e = this.#gateEntry, listed = this.#gateListed;
    if (e < 0) {
      this.spec.original(proto, src, srcPort, dst, dstPort);
      const m = this.#create(FLAG_LOCAL | (listed ? 0 : FLAG_GATED), -1, nowMs);
      if (m === ADMITTED && !listed) this.unlocks.admitFlow(src, nowMs);
      return m;
    }
    // Gated: admitted by a knock (allow-listed sources need none).
    const gated = this.#rules.enforceKnock(e) && !listed;
    const f = this.#createForward(e, proto, src, srcPort, dst, dstPort, gated, nowMs, false);
    if (f === ADMITTED && gated) this.#admitted(e, nowMs);
    return f;
  }

  /** Set by `#wanGate`: the rule entry it passed (-1: the management interface), and whether the source is allow-listed. */
  #gateEntry = -1;
  #gateListed = false;

  /**
   * The gate for a new flow from WAN source `src` to `dstPort` on the WAN
   * address in `slot`, after the knock watch: Drop.Locked, Drop.NoRule, or
   * ADMITTED (it passes: `#gateEntry`, `#gateListed`). Changes no table.
   * For a `tracker` any live unlock passes (the user is worker 0's to check).
   */
  #wanGate(
    proto: number,
    src: number,
    slot: number,
    dstPort: number,
    nowMs: number,
    tracker: boolean,
  ): number {
    const a = this.#a, rules = this.#rules;
    const listed = this.#allowListed(src);
    this.#gateListed = listed;
    this.#gateEntry = -1;
    if (proto === PROTO_TCP && dstPort === a.mgmtPort && this.#mgmtAt(slot)) {
      if (!a.mgmtWan) return Drop.Locked;
      return listed || this.#unlockGate(src, -1, nowMs, tracker) ? ADMITTED : Drop.Locked;
    }
    const e = rules.lookup(proto, slot, dstPort);
    if (e < 0) return Drop.NoRule;
    this.#gateEntry = e;
    if (!rules.enforceKnock(e) || listed) return ADMITTED;
    return this.#unlockGate(src, e, nowMs, tracker) ? ADMITTED : Drop.Locked;
  }

  #unlockGate(src: number, e: number, nowMs: number, tracker: boolean): boolean {
    return tracker ? this.unlocks.isUnlocked(src, nowMs) : this.#unlockAdmits(src, e, nowMs);
  }

  /**
   * A tracker's verdict on a packet of no tracked flow that may open one
   * (TCP SYN alone, UDP, ICMP echo request; `admit()`'s `opening`): the
   * Drop reason `admit()` in worker 0 would return, when it can be told
   * here without the knock verifier and without creating anything, or 0
   * (hand the packet to worker 0). Decided here: a source outside the LAN
   * to one of the WAN addresses, an echo request (stealth: no rule), or,
   * from a source with no sequence in progress (`#knocking`), a port that
   * can be no knock (`UnlockTable.isKnockPort`) whose gate is shut: no
   * rule, or locked (neither unlocked nor allow-listed). For such a packet
   * the verifier answers NOT_KNOCK and changes nothing, and admit() goes on
   * to the same gate. Pure: no table changes.
   */
  trackerVerdict(proto: number, src: number, dst: number, dstPort: number, nowMs: number): number {
    if (cidrContains(this.#a.lanNet, src)) return 0;
    const slot = this.#wanSlot(dst);
    if (slot < 0) return 0;
    if (proto === PROTO_ICMP) return Drop.NoRule;
    if (this.unlocks.isKnockPort(dstPort)) return 0;
    const k = this.#knocking;
    // A sequence may be in progress (or the table is too small for the verifier's to be sure).
    if (k === null || k.isUnlocked(src, nowMs)) return 0;
    if (2 * this.verifier.tunables.maxInProgress > k.maxEntries) return 0;
    return this.#wanGate(proto, src, slot, dstPort, nowMs, true);
  }

  /** Creates the DNAT flow of WAN client `src` to rule entry `e`: answers come from its private host. */
  #createForward(
    e: number,
    proto: number,
    src: number,
    srcPort: number,
    dst: number,
    dstPort: number,
    gated: boolean,
    nowMs: number,
    pickUp: boolean,
  ): number {
    const rules = this.#rules;
    const priv = rules.privateAddress(e), privPort = rules.privatePort(e, dstPort);
    this.spec.original(proto, src, srcPort, dst, dstPort).reply(priv, privPort, src, srcPort);
    return this.#create(FLAG_DNAT | (gated ? FLAG_GATED : 0), e, nowMs, pickUp);
  }

  /** A new flow from the LAN: the management interface, hairpin to a forward, or masquerade. */
  #fromLan(
    proto: number,
    src: number,
    srcPort: number,
    dst: number,
    dstPort: number,
    nowMs: number,
  ): number {
    const a = this.#a, rules = this.#rules;
    const slot = this.#wanSlot(dst);
    if (slot >= 0) {
      if (proto === PROTO_TCP && dstPort === a.mgmtPort && this.#mgmtAt(slot)) {
        this.spec.original(proto, src, srcPort, dst, dstPort);
        return this.#create(FLAG_LOCAL, -1, nowMs);
      }
      const e = rules.lookup(proto, slot, dstPort);
      if (e < 0) return Drop.NoRule;
      const priv = rules.privateAddress(e), privPort = rules.privatePort(e, dstPort);
      // Hairpin: the server must answer through us, so the client is hidden behind the WAN
      // address it targeted (its replies then arrive on the LAN port, which is steered to us;
      // the LAN address would be delivered locally).
      const np = this.#ports.pick(proto, priv, privPort, dst, SNAT_LO, SNAT_HI, srcPort, src);
      if (np < 0) return Drop.NatExhausted;
      this.spec.original(proto, src, srcPort, dst, dstPort).reply(priv, privPort, dst, np);
      return this.#create(FLAG_DNAT | FLAG_SNAT | FLAG_HAIRPIN, e, nowMs);
    }
    if (cidrContains(a.lanNet, dst) || dst === a.lan) return Drop.LanLocal;
    if (this.#masqUplink < 0) return Drop.NoUplink;
    const icmp = proto === PROTO_ICMP, masq = this.#masqAddr;
    const np = this.#ports.pick(
      proto,
      dst,
      dstPort,
      masq,
      icmp ? 1 : SNAT_LO,
      icmp ? 65535 : SNAT_HI,
      srcPort,
      src,
    );
    if (np < 0) return Drop.NatExhausted;
    // Masquerade: answers go to the masquerade address (an echo's identifier is rewritten too).
    this.spec.original(proto, src, srcPort, dst, dstPort).reply(
      dst,
      icmp ? np : dstPort,
      masq,
      np,
    );
    return this.#create(FLAG_SNAT, -1, nowMs);
  }

  /** Creates the flow in `spec` with datapath `flags` for rule entry `e` (-1: none); `pickUp`: in mid stream. */
  #create(flags: number, e: number, nowMs: number, pickUp = false): number {
    return this.createFlow(flags, e >= 0 ? this.#entryRule[e] : -1, nowMs, pickUp);
  }

  /**
   * Creates the flow in `spec` with datapath `flags` for the rule with
   * stable id `ruleId` (-1: none); ADMITTED (`flowId`) or the drop reason.
   */
  createFlow(flags: number, ruleId: number, nowMs: number, pickUp = false): number {
    // Flags, rule and pickup go in with the tuples: a tracker may find the flow before we return.
    const spec = this.spec;
    spec.flags = flags;
    spec.ruleId = ruleId;
    spec.pickUp = pickUp;
    const id = this.ct.create(spec, Math.floor(nowMs / 1000));
    if (id < 0) return id === CREATE_CLASH ? Drop.NatClash : Drop.TableFull;
    this.#c[Stat.FlowsCreated]++;
    if (pickUp) this.#c[Stat.PickedUp]++;
    this.flowId = id;
    return ADMITTED;
  }

  /** Loose pickup of a segment from the WAN to WAN address `dst` (in `slot`): a forward the gate admits. */
  #pickUpFromWan(
    proto: number,
    src: number,
    srcPort: number,
    dst: number,
    slot: number,
    dstPort: number,
    nowMs: number,
  ): number {
    const a = this.#a, rules = this.#rules;
    // The management interface's sockets ended with the process: nothing to pick up.
    if (proto !== PROTO_TCP || (dstPort === a.mgmtPort && this.#mgmtAt(slot))) return Drop.NoFlow;
    const e = rules.lookup(proto, slot, dstPort);
    if (e < 0) return Drop.NoFlow;
    const gated = rules.enforceKnock(e) && !this.#allowListed(src);
    if (gated && !this.#unlockAdmits(src, e, nowMs)) return Drop.NoFlow;
    const v = this.#createForward(e, proto, src, srcPort, dst, dstPort, gated, nowMs, true);
    if (v === ADMITTED && gated) this.unlocks.admitFlow(src, nowMs);
    return v;
  }

  /** Loose pickup of a segment from the LAN: a forward's server answering, or masquerade. */
  #pickUpFromLan(
    proto: number,
    src: number,
    srcPort: number,
    dst: number,
    dstPort: number,
    nowMs: number,
  ): number {
    const a = this.#a;
    if (proto !== PROTO_TCP || dst === a.lan || cidrContains(a.lanNet, dst)) return Drop.NoFlow;
    const slot = this.#wanSlot(dst);
    if (slot >= 0) return this.#pickUpHairpin(proto, src, srcPort, dst, slot, dstPort, nowMs);
    const e = this.#forwardFrom(proto, src, srcPort);
    if (e === AMBIGUOUS) return Drop.NoFlow;
    if (e >= 0) {
      // Which WAN address the client used is known only when the rule has one.
      const slot = this.#rules.soleSlot[e];
      if (slot < 0) return Drop.NoFlow;
      const gated = this.#rules.enforceKnock(e) && !this.#allowListed(dst);
      if (gated && !this.#unlockAdmits(dst, e, nowMs)) return Drop.NoFlow;
      this.spec.original(proto, dst, dstPort, a.wan[slot], this.#publicPort).reply(
        src,
        srcPort,
        dst,
        dstPort,
      );
      const v = this.#create(FLAG_DNAT | (gated ? FLAG_GATED : 0), e, nowMs, true);
      if (v === ADMITTED) this.flowDir = DIR_REPLY;
      return v;
    }
    if (this.#masqUplink < 0) return Drop.NoFlow;
    const masq = this.#masqAddr;
    const np = this.#ports.pick(proto, dst, dstPort, masq, SNAT_LO, SNAT_HI, srcPort, src);
    if (!this.#derivable(np, srcPort)) return Drop.NoFlow;
    this.spec.original(proto, src, srcPort, dst, dstPort).reply(dst, dstPort, masq, np);
    return this.#create(FLAG_SNAT, -1, nowMs, true);
  }

  /** Loose pickup of a LAN client's segment to a forward on WAN address `dst` (hairpin). */
  #pickUpHairpin(
    proto: number,
    src: number,
    srcPort: number,
    dst: number,
    slot: number,
    dstPort: number,
    nowMs: number,
  ): number {
    const rules = this.#rules;
    if (dstPort === this.#a.mgmtPort && this.#mgmtAt(slot)) return Drop.NoFlow;
    // A forward's server answering a hairpin client (to its WAN address and port): not derivable.
    if (this.#forwardFrom(proto, src, srcPort) !== -1) return Drop.NoFlow;
    const e = rules.lookup(proto, slot, dstPort);
    if (e < 0) return Drop.NoFlow;
    const priv = rules.privateAddress(e), privPort = rules.privatePort(e, dstPort);
    const np = this.#ports.pick(proto, priv, privPort, dst, SNAT_LO, SNAT_HI, srcPort, src);
    if (!this.#derivable(np, srcPort)) return Drop.NoFlow;
    this.spec.original(proto, src, srcPort, dst, dstPort).reply(priv, privPort, dst, np);
    return this.#create(FLAG_DNAT | FLAG_SNAT | FLAG_HAIRPIN, e, nowMs, true);
  }

  /**
   * True when port `np`, picked again for a flow in mid stream, may be the
   * one the flow began with: the LAN host's own port, or with a port key the
   * keyed port (the first node's choice unless the two tables disagreed on
   * the ports probed before it). Without a key a remapped port is unknown.
   */
  #derivable(np: number, srcPort: number): boolean {
    return np === srcPort || (np >= 0 && this.#ports.deterministic);
  }

  /** Set by `#forwardFrom`: the public port of the entry it found. */
  #publicPort = 0;

  /**
   * The rule entry forwarding to private `addr:port` whose public port is
   * unambiguous (one public port per private one), or -1; sets `#publicPort`.
   * AMBIGUOUS when several entries do (two public ports or addresses to one
   * server port: the server's reply does not tell which the client used).
   */
  #forwardFrom(proto: number, addr: number, port: number): number {
    const r = this.#rules;
    let found = -1;
    for (let e = 0; e < r.size; e++) {
      if (r.privateAddress(e) !== addr) continue;
      const fixed = r.fixedPrivatePort[e] === 1, slot = r.firstSlot[e];
      const pub = r.publicPortBase[e] + (fixed ? 0 : port - r.privatePortBase[e]);
      if (
        pub < 0 || pub > 65535 || r.lookup(proto, slot, pub) !== e || r.privatePort(e, pub) !== port
      ) {
        continue;
      }
      if (fixed && pub < 65535 && r.lookup(proto, slot, pub + 1) === e) continue; // many to one
      if (found >= 0) return AMBIGUOUS;
      this.#publicPort = pub;
      found = e;
    }
    return found;
  }

  /**
   * True when an unlock of `src` admits a flow to rule entry `e` (-1: the
   * management interface); its user is then `#unlockUser`.
   */
  #unlockAdmits(src: number, e: number, nowMs: number): boolean {
    const user = this.unlockedUser(src, nowMs);
    return user !== null && (e < 0 || this.#rules.userAllowed(e, user));
  }

  /** The user `key` is unlocked for now, or null; `recordAdmitted` names that user. */
  unlockedUser(key: number, nowMs: number): string | null {
    const user = this.unlocks.liveUser(key, nowMs);
    this.#unlockUser = user;
    return user;
  }

  #allowListed(src: number): boolean {
    const allow = this.#a.allow;
    for (let i = 0; i < allow.length; i++) if (cidrContains(allow[i], src)) return true;
    return false;
  }

  /**
   * A knock admitted the flow in `spec` for `#unlockUser`: it refreshes the
   * unlock and is recorded, to be reported on `flush()` (after the packet).
   */
  #admitted(e: number, nowMs: number): void {
    this.recordAdmitted(this.spec.origSrc, this.#rules.ruleName(e), nowMs);
  }

  /**
   * A knock of `key` (the source, or an IPv6 source's prefix id) admitted
   * the flow in `spec` to rule `rule` for the user `unlockAdmits` found.
   */
  recordAdmitted(key: number, rule: string, nowMs: number): void {
    const s = this.spec, log = this.#admittedLog;
    this.unlocks.admitFlow(key, nowMs);
    this.#c[Stat.FlowsAdmittedByKnock]++;
    if (log.full) this.#pending = log.drainInto(this.#pending, this.#formatIp);
    log.record(
      this.#pending.length,
      nowMs,
      s.proto,
      s.origSrc,
      s.origSrcPort,
      s.origDst,
      s.origDstPort,
      s.replySrc,
      s.replySrcPort,
      rule,
      this.#unlockUser,
    );
  }
}

/** Entries of the knocking table for `s` (see `Admission.#knocking`). */
function knockingEntries(s: DatapathSettings): number {
  return Math.min(MAX_KNOCKING, 2 * s.knock.maxInProgress);
}

/** What the rule index's address slots depend on: the uplinks' names and addresses. */
function wanLayout(uplinks: DatapathSettings["uplinks"]): [string, string[]][] {
  return uplinks.map((u) => [u.name, u.addresses]);
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
