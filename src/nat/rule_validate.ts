/**
 * Validation of port-forwarding and open-ports rules before they are
 * compiled: every problem is reported (not only the first), each naming the
 * rule and the field, e.g. `Cannot parse rule "web": public port 70000 is out
 * of range` or `rule "ssh" overlaps rule "web" on tcp port 52201`.
 */

import { parseIpv4 } from "../packet/address.ts";
import type { OpenPortsRule, PortForwardRule, PortRange, RuleProtocol } from "./rule.ts";

/** Which list a rule sits in. */
export type RuleList = "forwards" | "openPorts";

/** One thing wrong with a rule. */
export interface RuleProblem {
  list: RuleList;
  /** Position of the rule in its list. */
  index: number;
  /** Field path inside the rule, e.g. `publicPorts`, `ports[1].ports`, `users[0]`. */
  field: string;
  /** The complete message, naming the rule. */
  message: string;
  /** The reason alone, for callers that name the rule themselves (e.g. `public port 70000 is out of range`). */
  reason: string;
}

/** Thrown by `assertValidRules` (and so by `compileRules`) with every problem found. */
export class RuleValidationError extends Error {
  /** All problems, in rule order. */
  readonly problems: RuleProblem[];
  /** An error whose message lists `problems`, one per line. */
  constructor(problems: RuleProblem[]) {
    super(problems.map((p) => p.message).join("\n"));
    this.name = "RuleValidationError";
    this.problems = problems;
  }
}

/** Rule names: 1-64 letters, digits, `.`, `_` or `-`, starting with a letter or digit. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** `52201` or `52210-52219`. */
export function formatPortRange(r: PortRange): string {
  return r.start === r.end ? String(r.start) : `${r.start}-${r.end}`;
}

/** Number of ports in `r`. */
export function portRangeWidth(r: PortRange): number {
  return r.end - r.start + 1;
}

/**
 * Parses a port (`52201`, `"52201"`) or a range (`"52210-52219"`), ports
 * 1..65535, into a `PortRange`; returns `{ error }` with a reason otherwise.
 */
export function parsePortRange(value: number | string): { range: PortRange } | { error: string } {
  if (typeof value === "number") {
    const error = portError(value, "port");
    return error ? { error } : { range: { start: value, end: value } };
  }
  const m = /^(\d+)(?:-(\d+))?$/.exec(value);
  if (!m) return { error: `"${value}" is not a port or a port range (N or A-B)` };
  const range = { start: Number(m[1]), end: Number(m[2] ?? m[1]) };
  return checkPortRange(range, "") ?? { range };
}

/**
 * Checks a range's ports are integers 1..65535 and in order; `what` prefixes
 * the noun (`public` gives `public port 70000 is out of range`). Returns the
 * reason, or null when the range is fine.
 */
export function checkPortRange(r: PortRange, what: string): { error: string } | null {
  const noun = what === "" ? "port" : `${what} port`;
  const error = portError(r.start, noun) ?? portError(r.end, noun);
  if (error) return { error };
  if (r.end < r.start) return { error: `${noun} range ${r.start}-${r.end} ends before it starts` };
  return null;
}

function portError(port: number, noun: string): string | null {
  if (!Number.isInteger(port)) return `${noun} ${port} is not an integer`;
  if (port < 1 || port > 65535) return `${noun} ${port} is out of range`;
  return null;
}

/** Why `addr` cannot be a private host address, or null when it can. */
export function privateAddressError(addr: string): string | null {
  const n = parseIpv4(addr);
  if (n === null) return `private address "${addr}" is not an IPv4 address`;
  const first = n >>> 24;
  // 0/8 "this network", 127/8 loopback, 224/4 multicast, 240/4 reserved and broadcast.
  if (first === 0 || first === 127 || first >= 224) {
    return `private address "${addr}" is not a unicast host address`;
  }
  return null;
}

/** Problems of one rule on its own (not against other rules). */
function ruleShapeProblems(
  list: RuleList,
  index: number,
  rule: PortForwardRule | OpenPortsRule,
): RuleProblem[] {
  const out: RuleProblem[] = [];
  const add = (field: string, reason: string) =>
    out.push({
      list,
      index,
      field,
      message: `Cannot parse rule "${rule.name}": ${reason}`,
      reason,
    });
  if (!NAME.test(rule.name)) {
    add("name", "a rule name must be 1-64 letters, digits, '.', '_' or '-'");
  }
  const addrError = privateAddressError(rule.privateAddress);
  if (addrError) add("privateAddress", addrError);
  const seen = new Set<string>();
  rule.users.forEach((user, i) => {
    if (user === "") add(`users[${i}]`, "a user name is empty");
    else if (seen.has(user)) add(`users[${i}]`, `user "${user}" is listed twice`);
    seen.add(user);
  });
  if ("publicPorts" in rule) forwardPortProblems(rule, add);
  else openPortProblems(rule, add);
  return out;
}

function forwardPortProblems(
  rule: PortForwardRule,
  add: (field: string, reason: string) => void,
): void {
  const pub = checkPortRange(rule.publicPorts, "public");
  const priv = checkPortRange(rule.privatePorts, "private");
  if (pub) add("publicPorts", pub.error);
  if (priv) add("privatePorts", priv.error);
  if (pub || priv) return;
  const pw = portRangeWidth(rule.publicPorts);
  const vw = portRangeWidth(rule.privatePorts);
  // A wider public range maps port-for-port onto an equally wide private range, or all onto one.
  if (vw !== 1 && vw !== pw) {
    add(
      "privatePorts",
      `public ports ${formatPortRange(rule.publicPorts)} span ${pw} ports but private ports ` +
        `${formatPortRange(rule.privatePorts)} span ${vw} (give the same width or one port)`,
    );
  }
}

function openPortProblems(rule: OpenPortsRule, add: (field: string, reason: string) => void): void {
  if (rule.ports.length === 0) add("ports", "an open-ports rule needs at least one port");
  rule.ports.forEach((p, i) => {
    const e = checkPortRange(p.ports, "");
    if (e) add(`ports[${i}].ports`, e.error);
  });
}

/** One claim of ports by a rule, for the overlap check. */
interface Claim {
  list: RuleList;
  index: number;
  field: string;
  name: string;
  protocol: RuleProtocol;
  ports: PortRange;
}

function claimsOf(forwards: readonly PortForwardRule[], opens: readonly OpenPortsRule[]): Claim[] {
  const claims: Claim[] = [];
  forwards.forEach((r, index) => {
    if (!r.enabled) return;
    claims.push({
      list: "forwards",
      index,
      field: "publicPorts",
      name: r.name,
      protocol: r.protocol,
      ports: r.publicPorts,
    });
  });
  opens.forEach((r, index) => {
    if (!r.enabled) return;
    r.ports.forEach((p, i) => {
      claims.push({
        list: "openPorts",
        index,
        field: `ports[${i}].ports`,
        name: r.name,
        protocol: p.protocol,
        ports: p.ports,
      });
    });
  });
  return claims;
}

/** Problems where enabled rules claim the same public port on the same transport. */
function overlapProblems(claims: Claim[]): RuleProblem[] {
  const out: RuleProblem[] = [];
  for (const proto of ["tcp", "udp"] as const) {
    const owner = new Int32Array(65536).fill(-1);
    claims.forEach((c, ci) => {
      if (c.protocol !== proto && c.protocol !== "both") return;
      const reported = new Set<number>();
      for (let port = c.ports.start; port <= c.ports.end; port++) {
        const prev = owner[port];
        if (prev === -1) {
          owner[port] = ci;
          continue;
        }
        if (reported.has(prev)) continue;
        reported.add(prev);
        const other = claims[prev].list === c.list && claims[prev].index === c.index
          ? "itself"
          : `rule "${claims[prev].name}"`;
        const message = `rule "${c.name}" overlaps ${other} on ${proto} port ${port}`;
        out.push({ list: c.list, index: c.index, field: c.field, message, reason: message });
      }
    });
  }
  return out;
}

/** Problems of rule names used more than once across both lists. */
function duplicateNameProblems(
  forwards: readonly PortForwardRule[],
  opens: readonly OpenPortsRule[],
): RuleProblem[] {
  const out: RuleProblem[] = [];
  const seen = new Set<string>();
  const check = (list: RuleList, index: number, name: string) => {
    if (seen.has(name)) {
      const message = `rule name "${name}" is used twice`;
      out.push({ list, index, field: "name", message, reason: message });
    }
    seen.add(name);
  };
  forwards.forEach((r, i) => check("forwards", i, r.name));
  opens.forEach((r, i) => check("openPorts", i, r.name));
  return out;
}

/**
 * Every problem of a rule set: each rule's own shape (names, ports, widths,
 * addresses, users), names used twice, and public ports claimed twice on the
 * same transport by enabled rules. An empty array means the set compiles.
 */
export function validateRules(
  forwards: readonly PortForwardRule[],
  openPorts: readonly OpenPortsRule[],
): RuleProblem[] {
  const shape = [
    ...forwards.flatMap((r, i) => ruleShapeProblems("forwards", i, r)),
    ...openPorts.flatMap((r, i) => ruleShapeProblems("openPorts", i, r)),
  ];
  const names = duplicateNameProblems(forwards, openPorts);
  // Overlaps only mean something once every range is well formed.
  const overlaps = shape.length === 0 ? overlapProblems(claimsOf(forwards, openPorts)) : [];
  return [...shape, ...names, ...overlaps];
}

/** Throws a `RuleValidationError` listing every problem, if there is any. */
export function assertValidRules(
  forwards: readonly PortForwardRule[],
  openPorts: readonly OpenPortsRule[],
): void {
  const problems = validateRules(forwards, openPorts);
  if (problems.length > 0) throw new RuleValidationError(problems);
}
