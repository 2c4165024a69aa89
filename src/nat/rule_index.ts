/**
 * The compiled rule index: which rule owns a public port, in O(1) and without
 * allocating. Built once per rule-set change by `compileRules()` and swapped
 * in whole; the data path only reads it.
 *
 * Layout: two `Int32Array(65536)` tables (TCP, UDP) map a public port to an
 * entry id (-1: no rule). An entry is one enabled rule's port range on one or
 * both transports; its fields sit in flat typed arrays indexed by entry id.
 */

import { parseIpv4 } from "../packet/address.ts";
import type { OpenPortsRule, PortForwardRule, PortRange, RuleProtocol } from "./rule.ts";
import { assertValidRules } from "./rule_validate.ts";

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
}

/** A compiled, read-only rule index. */
export class RuleIndex {
  /** Public TCP port to entry id, -1 when none. */
  readonly tcp: Int32Array = new Int32Array(65536).fill(NO_ENTRY);
  /** Public UDP port to entry id, -1 when none. */
  readonly udp: Int32Array = new Int32Array(65536).fill(NO_ENTRY);
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
    this.allowedUsers = entries.map((e) => (e.users.length === 0 ? null : new Set(e.users)));
    entries.forEach((e, id) => this.#place(id, e));
  }

  #place(id: number, e: EntrySource): void {
    this.entryRule[id] = e.ruleId;
    this.kind[id] = e.kind;
    this.privateAddr[id] = e.privateAddr;
    this.publicPortBase[id] = e.publicPorts.start;
    this.privatePortBase[id] = e.privatePorts.start;
    this.fixedPrivatePort[id] = e.privatePorts.start === e.privatePorts.end ? 1 : 0;
    this.enforceKnockFlag[id] = e.enforceKnock ? 1 : 0;
    for (let port = e.publicPorts.start; port <= e.publicPorts.end; port++) {
      if (e.protocol !== "udp") this.tcp[port] = id;
      if (e.protocol !== "tcp") this.udp[port] = id;
    }
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
   * The entry owning public `port` for IP protocol `proto` (6 or 17), or -1
   * (also for any other protocol). Hot path: no allocation, never throws.
   */
  lookup(proto: number, port: number): number {
    if (proto === TCP) return this.tcp[port & 0xffff];
    if (proto === UDP) return this.udp[port & 0xffff];
    return NO_ENTRY;
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

/**
 * Validates the rules (throwing a `RuleValidationError` listing every
 * problem) and compiles the enabled ones into a `RuleIndex`.
 */
export function compileRules(
  forwards: readonly PortForwardRule[],
  openPorts: readonly OpenPortsRule[],
): RuleIndex {
  assertValidRules(forwards, openPorts);
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
    });
  }
  for (const r of openPorts) {
    if (!r.enabled) continue;
    const ruleId = names.push(r.name) - 1;
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
      });
    }
  }
  return new RuleIndex(names, entries);
}
