/**
 * The compiled rule index: which rule owns a public port on a WAN address,
 * without allocating. Built once per rule-set change by `compileRules()` and
 * swapped in whole; the data path only reads it.
 *
 * An entry is one enabled rule's port range on one or both transports, on a
 * set of WAN addresses: a 64-bit mask over the address slots (every WAN
 * address in uplink order, then address order), kept as two Uint32Arrays.
 * Its fields sit in flat typed arrays indexed by entry id.
 *
 * Two `Int32Array(65536)` tables (TCP, UDP) map a public port to the first
 * node of its chain (-1: no rule); a node names an entry and the next node.
 * Entries share a port only on different addresses (validation refuses the
 * rest), so a chain is almost always one node, and the walk stops at the
 * first entry whose mask holds the packet's slot. The chains are per port,
 * not per entry: ranges on different addresses may overlap partly (80-90 on
 * one address, 85 and 88-95 on another), so one `next` per entry could not
 * serve every port of its range; ports with the same entries share nodes.
 */

import { parseIpv4 } from "../packet/address.ts";
import type { OpenPortsRule, PortForwardRule, PortRange, RuleProtocol } from "./rule.ts";
import { assertValidRules, MAX_WAN_ADDRESSES, type UplinkAddresses } from "./rule_validate.ts";

/** Entry id meaning "no rule owns this port". */
export const NO_ENTRY = -1;

/** Entry kinds. */
export const RuleKind = {
  /** From a `PortForwardRule`. */
  Forward: 0,
  /** From an `OpenPortsRule` (public port N to private port N). */
  OpenPorts: 1,
} as const;

/** An entry kind. */
export type RuleKind = typeof RuleKind[keyof typeof RuleKind];

/** IP protocol numbers the index answers for. */
const TCP = 6;
const UDP = 17;

/** One entry before it is laid out flat. */
interface EntrySource {
  ruleId: number;
  kind: RuleKind;
  protocol: RuleProtocol;
  privateAddr: number;
  publicPorts: PortRange;
  privatePorts: PortRange;
  enforceKnock: boolean;
  users: readonly string[];
  /** The address slots it listens on, bits 0-31 and 32-63. */
  maskLo: number;
  maskHi: number;
}

/** A compiled, read-only rule index. */
export class RuleIndex {
  /** Public TCP port to the first node of its chain, -1 when none. */
  readonly tcp: Int32Array = new Int32Array(65536).fill(NO_ENTRY);
  /** Public UDP port to the first node of its chain, -1 when none. */
  readonly udp: Int32Array = new Int32Array(65536).fill(NO_ENTRY);
  /** Per node: the entry it names. */
  readonly nodeEntry: Int32Array;
  /** Per node: the next node of the chain, -1 at its end. */
  readonly next: Int32Array;
  /** Per entry: address slots 0-31 it listens on, one bit each. */
  readonly maskLo: Uint32Array;
  /** Per entry: address slots 32-63. */
  readonly maskHi: Uint32Array;
  /** Per entry: its one address slot, or -1 when it listens on several (or none). */
  readonly soleSlot: Int8Array;
  /** Per entry: its lowest address slot, or -1 when none. */
  readonly firstSlot: Int8Array;
  /** Per entry: index into `ruleNames`. */
  readonly entryRule: Int32Array;
  /** Per entry: a `RuleKind`. */
  readonly kind: Uint8Array;
  /** Per entry: private host address (u32). */
  readonly privateAddr: Uint32Array;
  /** Per entry: first public port of the range. */
  readonly publicPortBase: Uint16Array;
  /** Per entry: first private port of the range. */
  readonly privatePortBase: Uint16Array;
  /** Per entry: 1 when every public port maps to the single `privatePortBase`. */
  readonly fixedPrivatePort: Uint8Array;
  /** Per entry: 1 when new flows need a knock-unlocked source. */
  readonly enforceKnockFlag: Uint8Array;
  /** Per entry: the users whose unlocks admit, or null for any user. */
  readonly allowedUsers: readonly (ReadonlySet<string> | null)[];
  /** Names of the enabled rules, by rule id. */
  readonly ruleNames: readonly string[];

  /** Lays out `entries`; use `compileRules()` rather than calling this directly. */
  constructor(ruleNames: readonly string[], entries: readonly EntrySource[]) {
    const n = entries.length;
    this.ruleNames = ruleNames;
    this.entryRule = new Int32Array(n);
    this.kind = new Uint8Array(n);
    this.privateAddr = new Uint32Array(n);
    this.publicPortBase = new Uint16Array(n);
    this.privatePortBase = new Uint16Array(n);
    this.fixedPrivatePort = new Uint8Array(n);
    this.enforceKnockFlag = new Uint8Array(n);
    this.maskLo = new Uint32Array(n);
    this.maskHi = new Uint32Array(n);
    this.soleSlot = new Int8Array(n);
    this.firstSlot = new Int8Array(n);
    this.allowedUsers = entries.map((e) => (e.users.length === 0 ? null : new Set(e.users)));
    entries.forEach((e, id) => this.#place(id, e));
    const nodes: number[] = [];
    chainPorts(this.tcp, entries, "udp", nodes);
    chainPorts(this.udp, entries, "tcp", nodes);
    this.nodeEntry = new Int32Array(nodes.length / 2);
    this.next = new Int32Array(nodes.length / 2);
    for (let i = 0; i < this.next.length; i++) {
      this.nodeEntry[i] = nodes[2 * i];
      this.next[i] = nodes[2 * i + 1];
    }
  }

  #place(id: number, e: EntrySource): void {
    this.entryRule[id] = e.ruleId;
    this.kind[id] = e.kind;
    this.privateAddr[id] = e.privateAddr;
    this.publicPortBase[id] = e.publicPorts.start;
    this.privatePortBase[id] = e.privatePorts.start;
    this.fixedPrivatePort[id] = e.privatePorts.start === e.privatePorts.end ? 1 : 0;
    this.enforceKnockFlag[id] = e.enforceKnock ? 1 : 0;
    this.maskLo[id] = e.maskLo;
    this.maskHi[id] = e.maskHi;
    const count = popcount(e.maskLo) + popcount(e.maskHi);
    const first = e.maskLo !== 0
      ? lowestBit(e.maskLo)
      : e.maskHi !== 0
      ? 32 + lowestBit(e.maskHi)
      : -1;
    this.firstSlot[id] = first;
    this.soleSlot[id] = count === 1 ? first : -1;
  }

  /** An index with no rules. */
  static empty(): RuleIndex {
    return new RuleIndex([], []);
  }

  /** Number of entries. */
  get size(): number {
    return this.entryRule.length;
  }

  /**
   * The entry owning public `port` for IP protocol `proto` (6 or 17) on the
   * WAN address in slot `wanSlot` (0-63), or -1 (also for any other protocol
   * or slot). Hot path: no allocation, never throws.
   */
  lookup(proto: number, wanSlot: number, port: number): number {
    let node = proto === TCP
      ? this.tcp[port & 0xffff]
      : proto === UDP
      ? this.udp[port & 0xffff]
      : -1;
    if (wanSlot < 0 || wanSlot >= MAX_WAN_ADDRESSES) return NO_ENTRY;
    const lo = wanSlot < 32, bit = 1 << (wanSlot & 31);
    while (node >= 0) {
      const e = this.nodeEntry[node];
      if (((lo ? this.maskLo[e] : this.maskHi[e]) & bit) !== 0) return e;
      node = this.next[node];
    }
    return NO_ENTRY;
  }

  /** Whether `entry` listens on the WAN address in slot `wanSlot`. */
  hasSlot(entry: number, wanSlot: number): boolean {
    if (wanSlot < 0 || wanSlot >= MAX_WAN_ADDRESSES) return false;
    const mask = wanSlot < 32 ? this.maskLo[entry] : this.maskHi[entry];
    return (mask & (1 << (wanSlot & 31))) !== 0;
  }

  /** The private port public `port` of `entry` maps to. */
  privatePort(entry: number, port: number): number {
    const base = this.privatePortBase[entry];
    return this.fixedPrivatePort[entry] === 1 ? base : base + (port - this.publicPortBase[entry]);
  }

  /** The private host of `entry`, as u32. */
  privateAddress(entry: number): number {
    return this.privateAddr[entry];
  }

  /** Whether new flows to `entry` need a knock-unlocked source IP. */
  enforceKnock(entry: number): boolean {
    return this.enforceKnockFlag[entry] === 1;
  }

  /** Whether an unlock by `user` admits flows to `entry` (true when the rule names no users). */
  userAllowed(entry: number, user: string): boolean {
    const users = this.allowedUsers[entry];
    return users === null || users.has(user);
  }

  /** Name of the rule `entry` came from. */
  ruleName(entry: number): string {
    return this.ruleNames[this.entryRule[entry]];
  }
}

/** Bits set in a 32-bit word. */
function popcount(x: number): number {
  let n = 0;
  for (let v = x >>> 0; v !== 0; v &= v - 1) n++;
  return n;
}

/** Index of the lowest set bit of a non-zero 32-bit word. */
function lowestBit(x: number): number {
  return 31 - Math.clz32(x & -x);
}

/**
 * Fills `table` (one transport; entries of protocol `other` alone are left
 * out) with chain heads, appending nodes to `nodes` as (entry, next) pairs.
 * A sweep over the ports: between two range boundaries the entries holding a
 * port do not change, so those ports share one chain, in entry order.
 */
function chainPorts(
  table: Int32Array,
  entries: readonly EntrySource[],
  other: RuleProtocol,
  nodes: number[],
): void {
  // Port -> entries whose range starts there or ends just before it.
  const edges = new Map<number, number[]>();
  const edge = (port: number, id: number) => {
    const list = edges.get(port);
    if (list) list.push(id);
    else edges.set(port, [id]);
  };
  entries.forEach((e, id) => {
    if (e.protocol === other || (e.maskLo | e.maskHi) === 0) return;
    edge(e.publicPorts.start, id);
    edge(e.publicPorts.end + 1, id);
  });
  const live = new Set<number>();
  let head = NO_ENTRY;
  const ports = [...edges.keys()].sort((a, b) => a - b);
  ports.forEach((port, i) => {
    if (port > 65535) return;
    for (const id of edges.get(port)!) {
      if (entries[id].publicPorts.start === port) live.add(id);
      else live.delete(id);
    }
    head = NO_ENTRY;
    for (const id of [...live].sort((a, b) => b - a)) {
      nodes.push(id, head);
      head = nodes.length / 2 - 1;
    }
    table.fill(head, port, Math.min(ports[i + 1] ?? 65536, 65536));
  });
}

/** The address mask of a rule's binding: bits of the slots its uplink and address name. */
function maskOf(
  rule: PortForwardRule | OpenPortsRule,
  wan: readonly UplinkAddresses[] | undefined,
): { maskLo: number; maskHi: number } {
  const uplink = rule.uplink ?? "all", address = rule.wanAddress ?? "all";
  // Without the uplinks a rule on "all" holds every slot (and a bound one none).
  if (wan === undefined) {
    return uplink === "all" ? { maskLo: -1 >>> 0, maskHi: -1 >>> 0 } : { maskLo: 0, maskHi: 0 };
  }
  let maskLo = 0, maskHi = 0, slot = 0;
  for (const u of wan) {
    for (const a of u.addresses) {
      const holds = uplink === "all" || (u.name === uplink && (address === "all" || a === address));
      if (holds && slot < 32) maskLo |= 1 << slot;
      else if (holds && slot < MAX_WAN_ADDRESSES) maskHi |= 1 << (slot - 32);
      slot++;
    }
  }
  return { maskLo: maskLo >>> 0, maskHi: maskHi >>> 0 };
}

/**
 * Validates the rules against the uplinks `wan` (throwing a
 * `RuleValidationError` listing every problem) and compiles the enabled ones
 * into a `RuleIndex`. `wan` gives the address slots: every uplink's
 * addresses in order (`UplinkLayout[]`, or the data plane's uplinks).
 * Without it bindings are not checked: a rule on "all" holds every slot, one
 * bound to an uplink none.
 */
export function compileRules(
  forwards: readonly PortForwardRule[],
  openPorts: readonly OpenPortsRule[],
  wan?: readonly UplinkAddresses[],
): RuleIndex {
  assertValidRules(forwards, openPorts, wan);
  const names: string[] = [];
  const entries: EntrySource[] = [];
  for (const r of forwards) {
    if (!r.enabled) continue;
    entries.push({
      ruleId: names.push(r.name) - 1,
      kind: RuleKind.Forward,
      protocol: r.protocol,
      privateAddr: parseIpv4(r.privateAddress)!,
      publicPorts: r.publicPorts,
      privatePorts: r.privatePorts,
      enforceKnock: r.enforceKnock,
      users: r.users,
      ...maskOf(r, wan),
    });
  }
  for (const r of openPorts) {
    if (!r.enabled) continue;
    const ruleId = names.push(r.name) - 1;
    const mask = maskOf(r, wan);
    for (const p of r.ports) {
      entries.push({
        ruleId,
        kind: RuleKind.OpenPorts,
        protocol: p.protocol,
        privateAddr: parseIpv4(r.privateAddress)!,
        publicPorts: p.ports,
        privatePorts: p.ports,
        enforceKnock: r.enforceKnock,
        users: r.users,
        ...mask,
      });
    }
  }
  return new RuleIndex(names, entries);
}
