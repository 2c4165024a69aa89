/**
 * The one validation of the appliance's forwarding configuration: the rules
 * (port forwards and open ports) and, when given, the users' first knock
 * ports, the management port and the addressing (the uplinks and their WAN
 * addresses, LAN address, LAN network). `validateConfig` returns every
 * problem at once, as values, each naming its subject, the field in the
 * operator's words and, for a clash, the other party, e.g. `Cannot parse rule "web": public port 70000 is
 * out of range`, `rule "ssh" overlaps rule "web" on tcp port 52201`,
 * `rule "b" overlaps rule "a" on tcp port 443 at 198.51.100.2` (a clash on
 * some of the WAN addresses names them) or `user "bob": first knock port
 * 52201 is a public tcp port of rule "web"`.
 *
 * A rule listens on the WAN addresses its `uplink` and `wanAddress` name
 * ("all" when absent), so two rules clash only where protocol, public ports
 * and addresses all meet. The management port clashes only on the
 * management uplinks' addresses; first knock ports clash on every address
 * (knocks are watched on all of them).
 *
 * Everything here is refused, nothing only warned about: each case either
 * makes a rule unusable (a forward to the appliance's own addresses, to the
 * LAN network or broadcast address, or outside the LAN network, which the
 * data plane's routing does not reach) or silently shadows another part of
 * the configuration for everyone (a port claimed twice).
 *
 * The store runs it inside its write transactions over the whole candidate
 * set; the config loader, the API's sync and `compileRules` call it too.
 */

import { type Cidr, cidrContains, formatCidr, parseCidr, parseIpv4 } from "../packet/address.ts";
import {
  canonicalIp,
  ipFamily,
  ipv6NotGlobal,
  isIpv6UniqueLocal,
  parseIp,
} from "../packet/ip_text.ts";
import { formatIpv6Prefix, ipv6PrefixContains, parseIpv6Prefix } from "../packet/ipv6_address.ts";
import type { OpenPortsRule, PortForwardRule, PortRange, RuleProtocol } from "./rule.ts";

/** Which list a rule sits in. */
export type RuleList = "forwards" | "openPorts";

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

/**
 * Why `addr` cannot be a private host address, or null when it can: an IPv4
 * unicast host, or an IPv6 global unicast one (a pinhole or NAT66 target;
 * whether it lies in the LAN prefix is checked against the addressing).
 */
export function privateAddressError(addr: string): string | null {
  const ip = parseIp(addr);
  if (ip === null) {
    return `private address ${JSON.stringify(addr)} is not an IPv4 or IPv6 address`;
  }
  if (ip.family === 6) {
    const why = ipv6NotGlobal(ip.addr);
    return why === null ? null : `private address ${addr} ${why}: a global unicast host is needed`;
  }
  const first = ip.addr >>> 24;
  // 0/8 "this network", 127/8 loopback, 224/4 multicast, 240/4 reserved and broadcast.
  if (first === 0 || first === 127 || first >= 224) {
    return `private address "${addr}" is not a unicast host address`;
  }
  return null;
}

/** Transports a user's knock sequence may use (as `KnockTransport`). */
export type KnockClaimTransport = "tcp" | "udp" | "any";

/** What validation needs of a user: the name, and the first knock port when knocking. */
export interface KnockClaim {
  name: string;
  /** Knocking enabled: the user's first knock port is claimed on the WAN address. */
  enabled: boolean;
  firstPort: number;
  transport: KnockClaimTransport;
}

/** One uplink as the rules may bind to it. */
export interface UplinkLayout {
  name: string;
  /** Its public addresses, dotted quads. */
  addresses: string[];
  /**
   * Its IPv6 addresses, RFC 5952 text (empty with IPv6 off). Absent: not
   * known to the caller, and IPv6 bindings are not checked.
   */
  addresses6?: string[];
  /** The management port answers (after a knock) on its addresses. */
  management: boolean;
}

/** What binding rules needs of an uplink: its name and addresses (dotted quads, in order). */
export interface UplinkAddresses {
  name: string;
  addresses: readonly string[];
  /** Its IPv6 addresses (RFC 5952); absent: IPv6 bindings are not checked. */
  addresses6?: readonly string[];
}

/** Most WAN addresses in all (the rule index keeps a 64-bit address mask per entry). */
export const MAX_WAN_ADDRESSES = 64;

/** The name of the one uplink of a layout that lists none (the old single `wan` object's). */
export const DEFAULT_UPLINK = "wan";

/** The uplinks of `n`: its list, or one uplink holding `wanAddress` (management on it). */
export function layoutOf(n: NetworkLayout): readonly UplinkLayout[] {
  return n.uplinks ?? [{ name: DEFAULT_UPLINK, addresses: [n.wanAddress], management: true }];
}

/** The addressing and the management port, from the configuration file. */
export interface NetworkLayout {
  /** The primary WAN address (the first uplink's first), dotted quad. */
  wanAddress: string;
  /** Every uplink; absent: one uplink holding `wanAddress` alone. */
  uplinks?: UplinkLayout[];
  /** The appliance's LAN address, dotted quad. */
  lanAddress: string;
  /** The LAN network, `a.b.c.d/n`. */
  lanNetwork: string;
  /**
   * TCP port of the management API. The data plane takes every WAN TCP packet
   * to it for the management API, so no forward may claim it.
   */
  managementPort: number;
  /** `knock`: reachable from the WAN after a knock (a first knock port on it would eat it). */
  managementWanAccess: "knock" | "never";
  /**
   * The LAN's IPv6 side when IPv6 is on (configuration `ipv6.lan`); absent or
   * null: IPv6 is off, and a rule to an IPv6 host is refused.
   */
  ipv6?: Ipv6Layout | null;
}

/** The LAN's IPv6 address and prefix, RFC 5952 text. */
export interface Ipv6Layout {
  /** The appliance's LAN IPv6 address. */
  lanAddress: string;
  /** The LAN prefix, `2001:db8:1::/64`; every IPv6 private address lies in it. */
  lanNetwork: string;
  /** Some uplink translates the LAN prefix (NPTv6): a unique local host is reachable. */
  npt6?: boolean;
}

/** A configuration to validate; without `users` or `network` those checks are skipped. */
export interface ConfigCandidate {
  forwards: readonly PortForwardRule[];
  openPorts: readonly OpenPortsRule[];
  /** Every user: rule `users` must name one of them; enabled ones claim their first port. */
  users?: readonly KnockClaim[];
  network?: NetworkLayout;
}

/** Whose field a problem is about. */
export type ProblemSubject =
  | { kind: "rule"; list: RuleList; index: number; name: string }
  | { kind: "user"; index: number; name: string }
  | { kind: "network" };

/** One thing wrong with a candidate configuration. */
export interface ConfigProblem {
  subject: ProblemSubject;
  /** Field path inside the subject, e.g. `publicPorts`, `ports[1].ports`, `users[0]`, `knock.firstPort`. */
  field: string;
  /** The complete message, naming the subject. */
  message: string;
  /** The reason alone, without the subject. */
  reason: string;
  /** For a clash, the other party and its field, e.g. `user "alice" knock.firstPort 41001`. */
  clash?: string;
  /** The other party's subject, for a clash with another rule, user or the network layout. */
  other?: ProblemSubject;
  /**
   * `unknown-user`: a rule names a user that does not exist. Refused when the
   * rule is written; left behind when the user is deleted, since the rule then
   * admits nobody by that name (never everyone), so deleting a user is not
   * blocked by the rules that name them.
   */
  code?: "unknown-user";
  /**
   * True on the second report of a clash, from the other party's side (every
   * clash is reported on both, so a writer of either finds it on its own
   * subject); whole-set readers skip these.
   */
  mirror?: true;
}

/** `rule "web"`, `user "alice"` or `network`. */
export function subjectLabel(s: ProblemSubject): string {
  return s.kind === "network" ? "network" : `${s.kind} "${s.name}"`;
}

/** True when `a` and `b` name the same rule (by name), user (by name) or the network. */
export function sameSubject(a: ProblemSubject, b: ProblemSubject): boolean {
  if (a.kind === "network" || b.kind === "network") return a.kind === b.kind;
  return a.kind === b.kind && a.name === b.name;
}

const PROTOCOLS: readonly string[] = ["tcp", "udp", "both"];

/** Collects problems; `add` and `own` report one on a subject, `clash` one on both sides. */
class Problems {
  readonly list: ConfigProblem[] = [];

  add(subject: ProblemSubject, field: string, message: string, reason: string): void {
    this.list.push({ subject, field, message, reason });
  }

  /** A problem of `subject` alone, worded `<label>: reason`; returns it. */
  own(subject: ProblemSubject, field: string, reason: string, clash?: string): ConfigProblem {
    const p: ConfigProblem = {
      subject,
      field,
      message: `${subjectLabel(subject)}: ${reason}`,
      reason,
    };
    if (clash !== undefined) p.clash = clash;
    this.list.push(p);
    return p;
  }

  /** A clash between two parties, reported on `a` and mirrored on `b`. */
  clash(
    a: { subject: ProblemSubject; field: string; reason: string; clash: string; message?: string },
    b: { subject: ProblemSubject; field: string; reason: string; clash: string },
  ): void {
    this.list.push({
      subject: a.subject,
      field: a.field,
      message: a.message ?? `${subjectLabel(a.subject)}: ${a.reason}`,
      reason: a.reason,
      clash: a.clash,
      other: b.subject,
    });
    this.list.push({
      subject: b.subject,
      field: b.field,
      message: `${subjectLabel(b.subject)}: ${b.reason}`,
      reason: b.reason,
      clash: b.clash,
      other: a.subject,
      mirror: true,
    });
  }
}

/** Problems of one rule on its own (not against other rules). */
function ruleShapeProblems(
  out: Problems,
  subject: ProblemSubject & { kind: "rule" },
  rule: PortForwardRule | OpenPortsRule,
  npt6: boolean,
): void {
  const add = (field: string, reason: string) =>
    out.add(subject, field, `Cannot parse rule "${rule.name}": ${reason}`, reason);
  if (typeof rule.name !== "string" || !NAME.test(rule.name)) {
    add("name", "a rule name must be 1-64 letters, digits, '.', '_' or '-'");
  }
  if (typeof rule.enabled !== "boolean") add("enabled", "enabled must be true or false");
  if (typeof rule.enforceKnock !== "boolean") {
    add("enforceKnock", "enforceKnock must be true or false");
  }
  const addrError = typeof rule.privateAddress === "string"
    ? privateAddressError(rule.privateAddress)
    : "private address is not an IPv4 or IPv6 address";
  if (addrError) add("privateAddress", addrError);
  else if (!("publicPorts" in rule)) {
    const ip = parseIp(rule.privateAddress);
    // With NPTv6 the host is reachable at its outside address.
    if (ip?.family === 6 && isIpv6UniqueLocal(ip.addr) && !npt6) {
      add(
        "privateAddress",
        `a pinhole to ${rule.privateAddress} (unique local, fc00::/7) cannot be reached from ` +
          "the Internet: forward to it with a port forward (NAT66) instead",
      );
    }
  }
  if (!Array.isArray(rule.users)) add("users", "users must be a list of user names");
  else {
    const seen = new Set<string>();
    rule.users.forEach((user, i) => {
      if (typeof user !== "string" || user === "") add(`users[${i}]`, "a user name is empty");
      else if (seen.has(user)) add(`users[${i}]`, `user "${user}" is listed twice`);
      seen.add(user);
    });
  }
  if ("publicPorts" in rule) forwardPortProblems(rule, add);
  else openPortProblems(rule, add);
  const why = bindingShapeError(rule);
  if (why) add(why.field, why.reason);
}

/** A binding to every uplink, or to every address of one. */
const ALL = "all";

/**
 * Where a rule's public ports are: the WAN addresses it listens on ("all" or
 * an uplink, "all" or one address) of its private host's family; for a
 * pinhole (an open-ports rule to an IPv6 host) the host's own address.
 */
interface Scope {
  uplink: string;
  /** "all" or one address, canonical (RFC 5952 for IPv6). */
  address: string;
  /** 4: the uplinks' IPv4 addresses; 6: their IPv6 addresses, or a pinhole's host. */
  family: 4 | 6;
  /** A pinhole's LAN host (canonical), else null. */
  pinhole: string | null;
}

/** 6 when the rule's private host is an IPv6 address, else 4 (malformed ones too). */
function ruleFamily(rule: PortForwardRule | OpenPortsRule): 4 | 6 {
  return typeof rule.privateAddress === "string" && ipFamily(rule.privateAddress) === 6 ? 6 : 4;
}

function scopeOf(rule: PortForwardRule | OpenPortsRule): Scope {
  const family = ruleFamily(rule);
  const written = rule.wanAddress ?? ALL;
  const address = typeof written === "string" && written !== ALL
    ? canonicalIp(written) ?? written
    : written;
  const pinhole = family === 6 && !("publicPorts" in rule)
    ? canonicalIp(rule.privateAddress)
    : null;
  return { uplink: rule.uplink ?? ALL, address, family, pinhole };
}

/** What is wrong with a rule's uplink binding on its own (without the uplinks), or null. */
function bindingShapeError(
  rule: PortForwardRule | OpenPortsRule,
): { field: "uplink" | "wanAddress"; reason: string } | null {
  const { uplink, address, family, pinhole } = scopeOf(rule);
  if (typeof uplink !== "string" || uplink === "") {
    return { field: "uplink", reason: 'uplink must be "all" or an uplink name' };
  }
  if (typeof address !== "string" || (address !== ALL && parseIp(address) === null)) {
    return {
      field: "wanAddress",
      reason: `WAN address ${JSON.stringify(address)} is not "all" or an IPv4 or IPv6 address`,
    };
  }
  if (pinhole !== null && uplink !== ALL) {
    // The TUN carries no ingress interface: a packet to a LAN host's own address looks the
    // same whichever uplink it came in by, so a binding could not be kept.
    return {
      field: "uplink",
      reason: `uplink ${uplink}: an open-ports rule to an IPv6 host is a pinhole to ${pinhole} ` +
        `itself, reached by whichever uplink routes the LAN prefix, and the data plane cannot ` +
        `tell which one a packet came in by, so uplink must be "all"`,
    };
  }
  if (address === ALL) return null;
  if (pinhole !== null) {
    return {
      field: "wanAddress",
      reason: `WAN address ${address}: an open-ports rule to an IPv6 host is a pinhole to ` +
        `${pinhole} itself (no NAT), so wanAddress must be "all"`,
    };
  }
  const wanFamily = ipFamily(address);
  if (wanFamily !== family && parseIp(rule.privateAddress) !== null) {
    const name = (f: number) => f === 6 ? "IPv6" : "IPv4";
    return {
      field: "wanAddress",
      reason: `WAN address ${address} is ${name(wanFamily!)} but private address ` +
        `${rule.privateAddress} is ${name(family)}: a forward stays in one family`,
    };
  }
  if (uplink === ALL) {
    return {
      field: "wanAddress",
      reason: `WAN address ${address} needs its uplink named (uplink is "all")`,
    };
  }
  return null;
}

/**
 * Why a well-shaped binding does not fit uplink `u` (null when it does, or
 * when the caller did not say which IPv6 addresses `u` has).
 */
function bindingMisfit(
  s: Scope,
  u: UplinkLayout,
): { field: "uplink" | "wanAddress"; reason: string; clash: string } | null {
  if (s.family === 4) {
    if (s.address === ALL || u.addresses.includes(s.address)) return null;
    const own = u.addresses.join(", ");
    return {
      field: "wanAddress",
      reason: `${s.address} is not an address of uplink "${u.name}" (${own})`,
      clash: `uplink "${u.name}" addresses ${own}`,
    };
  }
  const v6 = u.addresses6;
  if (s.pinhole !== null || v6 === undefined) return null;
  if (s.address === ALL) {
    return v6.length > 0 ? null : {
      field: "uplink",
      reason: `uplink "${u.name}" has no IPv6 address (wan[].addresses6) for an IPv6 forward`,
      clash: `uplink "${u.name}" addresses6 none`,
    };
  }
  if (v6.includes(s.address)) return null;
  const own = v6.length === 0 ? "none" : v6.join(", ");
  return {
    field: "wanAddress",
    reason: `${s.address} is not an IPv6 address of uplink "${u.name}" (${own})`,
    clash: `uplink "${u.name}" addresses6 ${own}`,
  };
}

/** Problems of rule bindings against the uplinks: an unknown uplink, an address not of it. */
function bindingProblems(out: Problems, c: ConfigCandidate, layout: readonly UplinkLayout[]): void {
  const names = layout.map((u) => u.name).join(", ");
  for (const { subject, rule } of ruleSubjects(c)) {
    if (bindingShapeError(rule) !== null) continue;
    const scope = scopeOf(rule);
    if (scope.uplink === ALL) continue;
    const u = layout.find((l) => l.name === scope.uplink);
    if (u === undefined) {
      out.own(
        subject,
        "uplink",
        `uplink "${scope.uplink}" does not exist (uplinks: ${names})`,
        `uplinks ${names}`,
      );
      continue;
    }
    const misfit = bindingMisfit(scope, u);
    if (misfit !== null) out.own(subject, misfit.field, misfit.reason, misfit.clash);
  }
}

/** True when the binding names uplinks and addresses that exist (always, without `layout`). */
function bindingKnown(
  rule: PortForwardRule | OpenPortsRule,
  layout: readonly UplinkLayout[] | null,
): boolean {
  if (bindingShapeError(rule) !== null) return false;
  const scope = scopeOf(rule);
  if (scope.uplink === ALL || layout === null) return true;
  const u = layout.find((l) => l.name === scope.uplink);
  return u !== undefined && bindingMisfit(scope, u) === null;
}

/**
 * The addresses two well-bound scopes share, or null: exact, as an address
 * belongs to one uplink and a named address to the uplink named with it.
 * Families never meet; pinholes meet only at the same host (whatever the
 * uplinks: a packet to the host comes in by any of them).
 */
function meet(a: Scope, b: Scope): Scope | null {
  if (a.family !== b.family) return null;
  if (a.pinhole !== null || b.pinhole !== null) {
    return a.pinhole === b.pinhole ? { ...a, uplink: ALL, address: ALL } : null;
  }
  if (a.uplink === ALL) return b;
  if (b.uplink === ALL) return a;
  if (a.uplink !== b.uplink) return null;
  if (a.address === ALL) return b;
  if (b.address === ALL || a.address === b.address) return a;
  return null;
}

/**
 * ` at 198.51.100.2` (` at A, B`, or ` on uplink isp-a` without the uplinks)
 * for a scope short of every WAN IPv4 address, "" for every one; for IPv6
 * the same with ` at every WAN IPv6 address` for every one, and ` to H` for
 * a pinhole to host H.
 */
function scopeSuffix(s: Scope, layout: readonly UplinkLayout[] | null): string {
  if (s.pinhole !== null) return ` to ${s.pinhole}`;
  const every = s.family === 6 ? " at every WAN IPv6 address" : "";
  if (s.uplink === ALL) return every;
  if (layout === null) {
    const on = s.family === 6 ? ` on uplink ${s.uplink} (IPv6)` : ` on uplink ${s.uplink}`;
    return s.address === ALL ? on : ` at ${s.address}`;
  }
  const of = (u: UplinkLayout) => (s.family === 6 ? u.addresses6 ?? [] : u.addresses);
  const addrs = s.address === ALL
    ? of(layout.find((u) => u.name === s.uplink) ?? { name: "", addresses: [], management: false })
    : [s.address];
  const total = layout.reduce((n, u) => n + of(u).length, 0);
  return addrs.length === total ? every : ` at ${addrs.join(", ")}`;
}

function protocolProblem(p: unknown): string | null {
  return PROTOCOLS.includes(p as string)
    ? null
    : `protocol ${JSON.stringify(p)} is not tcp, udp or both`;
}

function forwardPortProblems(
  rule: PortForwardRule,
  add: (field: string, reason: string) => void,
): void {
  const proto = protocolProblem(rule.protocol);
  if (proto) add("protocol", proto);
  const pub = checkPortRange(rule.publicPorts ?? {}, "public");
  const priv = checkPortRange(rule.privatePorts ?? {}, "private");
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
  if (!Array.isArray(rule.ports) || rule.ports.length === 0) {
    add("ports", "an open-ports rule needs at least one port");
    return;
  }
  rule.ports.forEach((p, i) => {
    const proto = protocolProblem(p?.protocol);
    if (proto) add(`ports[${i}].protocol`, proto);
    const e = checkPortRange(p?.ports ?? {}, "");
    if (e) add(`ports[${i}].ports`, e.error);
  });
}

/** One claim of public ports by an enabled rule. */
interface Claim {
  subject: ProblemSubject & { kind: "rule" };
  field: string;
  protocol: RuleProtocol;
  ports: PortRange;
  scope: Scope;
}

function ruleSubjects(c: ConfigCandidate): {
  subject: ProblemSubject & { kind: "rule" };
  rule: PortForwardRule | OpenPortsRule;
}[] {
  return [
    ...c.forwards.map((rule, index) => ({
      subject: { kind: "rule" as const, list: "forwards" as const, index, name: rule.name },
      rule,
    })),
    ...c.openPorts.map((rule, index) => ({
      subject: { kind: "rule" as const, list: "openPorts" as const, index, name: rule.name },
      rule,
    })),
  ];
}

/**
 * The claims of enabled rules, leaving out malformed ones and those bound to
 * an uplink or address that does not exist (their own problem is reported).
 */
function claimsOf(c: ConfigCandidate, layout: readonly UplinkLayout[] | null): Claim[] {
  const claims: Claim[] = [];
  const claim = (cl: Claim) => {
    if (protocolProblem(cl.protocol) === null && checkPortRange(cl.ports ?? {}, "") === null) {
      claims.push(cl);
    }
  };
  for (const { subject, rule } of ruleSubjects(c)) {
    if (rule.enabled !== true || !bindingKnown(rule, layout)) continue;
    const scope = scopeOf(rule);
    if ("publicPorts" in rule) {
      claim({
        subject,
        field: "publicPorts",
        protocol: rule.protocol,
        ports: rule.publicPorts,
        scope,
      });
    } else if (Array.isArray(rule.ports)) {
      rule.ports.forEach((p, i) => {
        claim({
          subject,
          field: `ports[${i}].ports`,
          protocol: p?.protocol,
          ports: p?.ports,
          scope,
        });
      });
    }
  }
  return claims;
}

function claimsProto(c: Claim, proto: "tcp" | "udp"): boolean {
  return c.protocol === proto || c.protocol === "both";
}

function claimsPort(c: Claim, proto: "tcp" | "udp", port: number): boolean {
  return claimsProto(c, proto) && c.ports.start <= port && port <= c.ports.end;
}

/**
 * Clashes where enabled rules claim a port twice on one transport and on a
 * shared WAN address: each later claim against each earlier one it meets,
 * at their first common port.
 */
function overlapProblems(
  out: Problems,
  claims: Claim[],
  layout: readonly UplinkLayout[] | null,
): void {
  for (const proto of ["tcp", "udp"] as const) {
    claims.forEach((c, ci) => {
      if (!claimsProto(c, proto)) return;
      const found: { port: number; p: Claim; at: Scope }[] = [];
      for (let pi = 0; pi < ci; pi++) {
        const p = claims[pi];
        const port = Math.max(p.ports.start, c.ports.start);
        if (!claimsProto(p, proto) || port > Math.min(p.ports.end, c.ports.end)) continue;
        const at = meet(p.scope, c.scope);
        if (at !== null) found.push({ port, p, at });
      }
      found.sort((x, y) => x.port - y.port);
      for (const { port, p, at } of found) {
        overlapClash(out, proto, port, c, p, scopeSuffix(at, layout));
      }
    });
  }
}

/** Reports claim `c` overlapping the earlier claim `p` on `proto` `port` (`where`: the addresses). */
function overlapClash(
  out: Problems,
  proto: "tcp" | "udp",
  port: number,
  c: Claim,
  p: Claim,
  where: string,
): void {
  const name = c.subject.name;
  if (sameSubject(p.subject, c.subject)) {
    const message = `rule "${name}" overlaps itself on ${proto} port ${port}${where}`;
    out.list.push({
      subject: c.subject,
      field: c.field,
      message,
      reason: message,
      clash: `rule "${name}" ${p.field} ${formatPortRange(p.ports)}`,
    });
    return;
  }
  const message =
    `rule "${name}" overlaps rule "${p.subject.name}" on ${proto} port ${port}${where}`;
  out.clash({
    subject: c.subject,
    field: c.field,
    reason: message,
    message,
    clash: `rule "${p.subject.name}" ${p.field} ${formatPortRange(p.ports)}`,
  }, {
    subject: p.subject,
    field: p.field,
    reason: `overlaps rule "${name}" on ${proto} port ${port}${where}`,
    clash: `rule "${name}" ${c.field} ${formatPortRange(c.ports)}`,
  });
}

/** Problems of rule names used more than once across both lists. */
function duplicateNameProblems(out: Problems, c: ConfigCandidate): void {
  const seen = new Set<string>();
  for (const { subject, rule } of ruleSubjects(c)) {
    if (seen.has(rule.name)) {
      const message = `rule name "${rule.name}" is used twice`;
      out.list.push({
        subject,
        field: "name",
        message,
        reason: message,
        clash: `rule "${rule.name}"`,
      });
    }
    seen.add(rule.name);
  }
}

/** The LAN layout as numbers, or null (with problems reported) when it is malformed. */
interface Lan {
  wan: number;
  /** Every WAN address (u32) to its uplink's name. */
  wans: Map<number, string>;
  lan: number;
  net: Cidr;
  /** The network and broadcast addresses; null for /31 and /32, which have neither. */
  netAddr: number | null;
  broadcast: number | null;
}

function lanOf(out: Problems, n: NetworkLayout): Lan | null {
  const network: ProblemSubject = { kind: "network" };
  const wan = parseIpv4(n.wanAddress);
  const lan = parseIpv4(n.lanAddress);
  const net = parseCidr(n.lanNetwork);
  if (wan === null) out.own(network, "wanAddress", `"${n.wanAddress}" is not an IPv4 address`);
  if (lan === null) out.own(network, "lanAddress", `"${n.lanAddress}" is not an IPv4 address`);
  if (net === null) out.own(network, "lanNetwork", `"${n.lanNetwork}" is not a network a.b.c.d/n`);
  if (!Number.isInteger(n.managementPort) || n.managementPort < 1 || n.managementPort > 65535) {
    out.own(network, "managementPort", `management port ${n.managementPort} is out of range`);
  }
  const wans = new Map<number, string>();
  for (const u of layoutOf(n)) {
    for (const a of u.addresses) {
      const x = parseIpv4(a);
      if (x === null) {
        out.own(network, "uplinks", `"${a}" of uplink "${u.name}" is not an IPv4 address`);
      } else wans.set(x, u.name);
    }
  }
  if (wans.size > MAX_WAN_ADDRESSES) {
    out.own(network, "uplinks", `${wans.size} WAN addresses: at most ${MAX_WAN_ADDRESSES} in all`);
  }
  if (wan === null || lan === null || net === null) return null;
  if (!cidrContains(net, lan)) {
    out.own(network, "lanAddress", `${n.lanAddress} is outside the LAN network ${formatCidr(net)}`);
  }
  if (cidrContains(net, wan)) {
    out.own(network, "wanAddress", `${n.wanAddress} is inside the LAN network ${formatCidr(net)}`);
  }
  const hostBits = net.prefix >= 31 ? 0 : (2 ** (32 - net.prefix)) - 1;
  return {
    wan,
    wans,
    lan,
    net,
    netAddr: net.prefix >= 31 ? null : net.addr,
    broadcast: net.prefix >= 31 ? null : (net.addr + hostBits) >>> 0,
  };
}

/** A rule's private host must be a LAN host other than the appliance. */
function addressProblems(out: Problems, c: ConfigCandidate, n: NetworkLayout, lan: Lan): void {
  const net = formatCidr(lan.net);
  for (const { subject, rule } of ruleSubjects(c)) {
    if (ruleFamily(rule) === 6) {
      if (privateAddressError(rule.privateAddress) === null) {
        ipv6AddressProblem(out, subject, rule, n);
      }
      continue;
    }
    const a = typeof rule.privateAddress === "string" ? parseIpv4(rule.privateAddress) : null;
    const addr = rule.privateAddress;
    if (a === null || privateAddressError(addr) !== null) continue; // the shape check's
    const why = (reason: string, clash: string) =>
      out.own(subject, "privateAddress", reason, clash);
    const uplink = lan.wans.get(a);
    if (a === lan.wan && lan.wans.size <= 1) {
      why(`private address ${addr} is the WAN address`, `WAN address ${n.wanAddress}`);
    } else if (uplink !== undefined || a === lan.wan) {
      why(
        `private address ${addr} is a WAN address of uplink "${uplink ?? layoutOf(n)[0].name}"`,
        `WAN address ${addr}`,
      );
    } else if (a === lan.lan) {
      why(`private address ${addr} is the appliance's LAN address`, `LAN address ${n.lanAddress}`);
    } else if (a === lan.netAddr) {
      why(`private address ${addr} is the LAN network address`, `LAN network ${net}`);
    } else if (a === lan.broadcast) {
      why(`private address ${addr} is the LAN broadcast address`, `LAN network ${net}`);
    } else if (!cidrContains(lan.net, a)) {
      why(`private address ${addr} is outside the LAN network ${net}`, `LAN network ${net}`);
    }
  }
}

/**
 * A rule's IPv6 host must be a LAN host other than the appliance: IPv6 on,
 * inside `ipv6.lan.network`, not the appliance's LAN address nor the prefix's
 * subnet-router anycast address (RFC 4291 §2.6.1).
 */
function ipv6AddressProblem(
  out: Problems,
  subject: ProblemSubject & { kind: "rule" },
  rule: PortForwardRule | OpenPortsRule,
  n: NetworkLayout,
): void {
  const addr = canonicalIp(rule.privateAddress)!;
  const why = (reason: string, clash: string) => out.own(subject, "privateAddress", reason, clash);
  const kind = "publicPorts" in rule ? "an IPv6 forward (NAT66)" : "a pinhole";
  if (!n.ipv6) {
    why(
      `private address ${addr} is IPv6, but IPv6 is off: ${kind} needs ipv6.enabled`,
      "ipv6.enabled false",
    );
    return;
  }
  const net = parseIpv6Prefix(n.ipv6.lanNetwork);
  if (net === null) return; // the configuration's own check
  const prefix = formatIpv6Prefix(net);
  const words = parseIp(addr)!.addr as Uint32Array;
  if (!ipv6PrefixContains(net, words)) {
    why(
      `private address ${addr} is outside the LAN prefix ${prefix} (ipv6.lan.network)`,
      `ipv6.lan.network ${prefix}`,
    );
  } else if (addr === canonicalIp(n.ipv6.lanAddress)) {
    why(
      `private address ${addr} is the appliance's LAN IPv6 address`,
      `ipv6.lan.address ${addr}`,
    );
  } else if (net.prefix < 128 && words.every((w, i) => w === net.addr[i])) {
    why(
      `private address ${addr} is the subnet-router anycast address of ${prefix} ` +
        "(RFC 4291 §2.6.1), not a host",
      `ipv6.lan.network ${prefix}`,
    );
  }
}

/**
 * The management port (TCP) must not be a public TCP port of an enabled rule
 * on a management uplink's address.
 */
function managementProblems(
  out: Problems,
  claims: Claim[],
  layout: readonly UplinkLayout[],
  port: number,
): void {
  const mgmt = layout.filter((u) => u.management).map((u) => u.name);
  for (const c of claims) {
    if (c.scope.pinhole !== null || !claimsPort(c, "tcp", port)) continue;
    if (c.scope.uplink === ALL ? mgmt.length === 0 : !mgmt.includes(c.scope.uplink)) continue;
    managementClash(out, c, port);
  }
}

function managementClash(out: Problems, c: Claim, port: number): void {
  out.clash({
    subject: c.subject,
    field: c.field,
    reason: `public tcp port ${port} is the management port`,
    clash: `management port ${port}`,
  }, {
    subject: { kind: "network" },
    field: "managementPort",
    reason: `management port ${port} is a public tcp port of rule "${c.subject.name}"`,
    clash: `rule "${c.subject.name}" ${c.field} ${formatPortRange(c.ports)}`,
  });
}

/** Rule `users` must name existing users. */
function ruleUserProblems(out: Problems, c: ConfigCandidate, users: readonly KnockClaim[]): void {
  const names = new Set(users.map((u) => u.name));
  for (const { subject, rule } of ruleSubjects(c)) {
    if (!Array.isArray(rule.users)) continue;
    rule.users.forEach((name, i) => {
      if (typeof name === "string" && name !== "" && !names.has(name)) {
        out.own(subject, `users[${i}]`, `user "${name}" does not exist`, `user "${name}"`)
          .code = "unknown-user";
      }
    });
  }
}

/**
 * An enabled user's first knock
 * port must be its own: not another user's on any transport (the verifier
 * maps a port to one user), and not a rule's public port nor the management
 * port (TCP, when reachable from the WAN) on a transport the user knocks
 * with. The other transport does not clash: the verifier starts a sequence
 * only for a packet of the user's own transport on `F` (`KnockVerifier`'s
 * transport bits), so a TCP SYN to a UDP-only user's `F` reaches the forward,
 * as the config loader has always allowed.
 */
function knockPortProblems(
  out: Problems,
  users: readonly KnockClaim[],
  claims: Claim[],
  managementPort: number | null,
  managementFromWan: boolean,
): void {
  const firstPorts = new Map<number, number>();
  users.forEach((u, index) => {
    if (!u.enabled) return;
    const subject: ProblemSubject = { kind: "user", index, name: u.name };
    const f = u.firstPort;
    if (!Number.isInteger(f) || f < 1 || f > 65535) return; // the user's own shape check
    const mine = `user "${u.name}" knock.firstPort ${f}`;
    const prev = firstPorts.get(f);
    if (prev !== undefined) {
      const p = users[prev];
      out.clash({
        subject,
        field: "knock.firstPort",
        reason: `first knock port ${f} is also user "${p.name}"'s`,
        clash: `user "${p.name}" knock.firstPort ${f}`,
      }, {
        subject: { kind: "user", index: prev, name: p.name },
        field: "knock.firstPort",
        reason: `first knock port ${f} is also user "${u.name}"'s`,
        clash: mine,
      });
    } else firstPorts.set(f, index);
    const knocksWith = (proto: "tcp" | "udp") => u.transport === "any" || u.transport === proto;
    const reported = new Set<Claim>();
    for (const proto of ["tcp", "udp"] as const) {
      if (!knocksWith(proto)) continue;
      // Knocks are watched on every WAN address: a rule on any of them clashes.
      for (const r of claims) {
        // A pinhole's ports are on its LAN host's address, where no knock is watched.
        if (r.scope.pinhole !== null || reported.has(r) || !claimsPort(r, proto, f)) continue;
        reported.add(r); // one report per claim
        knockClash(out, u, index, proto, r);
      }
    }
    if (managementPort !== null && managementFromWan && knocksWith("tcp") && f === managementPort) {
      out.clash({
        subject,
        field: "knock.firstPort",
        reason: `first knock port ${f} is the management port`,
        clash: `management port ${f}`,
      }, {
        subject: { kind: "network" },
        field: "managementPort",
        reason: `management port ${f} is user "${u.name}"'s first knock port`,
        clash: mine,
      });
    }
  });
}

/** Reports user `u`'s first knock port (a `proto` port) claimed by rule claim `r`. */
function knockClash(
  out: Problems,
  u: KnockClaim,
  index: number,
  proto: "tcp" | "udp",
  r: Claim,
): void {
  const f = u.firstPort;
  out.clash({
    subject: { kind: "user", index, name: u.name },
    field: "knock.firstPort",
    reason: `first knock port ${f} is a public ${proto} port of rule "${r.subject.name}"`,
    clash: `rule "${r.subject.name}" ${r.field} ${formatPortRange(r.ports)}`,
  }, {
    subject: r.subject,
    field: r.field,
    reason: `public ${proto} port ${f} is user "${u.name}"'s first knock port`,
    clash: `user "${u.name}" knock.firstPort ${f}`,
  });
}

/**
 * Every problem of a candidate configuration: each rule's own shape (names,
 * protocols, ports, widths, addresses, users), names used twice, public
 * ports claimed twice on one transport by enabled rules (well-formed claims
 * only, so a bad range does not hide another rule's clash); with `network`, the
 * private addresses against the addressing and the management port against
 * the rules; with `users`, rule users that do not exist and first knock
 * ports claimed twice. An empty array means the set is good.
 */
export function validateConfig(c: ConfigCandidate): ConfigProblem[] {
  return problemsOf(c, c.network ? layoutOf(c.network) : null);
}

/** `validateConfig` with the rules bound against `layout` (null: bindings not checked). */
function problemsOf(c: ConfigCandidate, layout: readonly UplinkLayout[] | null): ConfigProblem[] {
  const out = new Problems();
  const npt6 = c.network?.ipv6?.npt6 === true;
  for (const { subject, rule } of ruleSubjects(c)) ruleShapeProblems(out, subject, rule, npt6);
  duplicateNameProblems(out, c);
  if (layout !== null) bindingProblems(out, c, layout);
  const lan = c.network ? lanOf(out, c.network) : null;
  if (c.network && lan) addressProblems(out, c, c.network, lan);
  if (c.users) ruleUserProblems(out, c, c.users);
  const claims = claimsOf(c, layout);
  overlapProblems(out, claims, layout);
  const mgmt = c.network?.managementPort ?? null;
  if (mgmt !== null && layout !== null && Number.isInteger(mgmt) && mgmt >= 1 && mgmt <= 65535) {
    managementProblems(out, claims, layout, mgmt);
  }
  const fromWan = c.network?.managementWanAccess !== "never";
  if (c.users) knockPortProblems(out, c.users, claims, mgmt, fromWan);
  return out.list;
}

/** One thing wrong with a rule (the rules-only view of a `ConfigProblem`). */
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

/**
 * Every problem of a rule set alone (`validateConfig` without users and
 * network), each clash once, on the later rule; with `uplinks`, the rules'
 * bindings are checked against them. An empty array means the set compiles.
 */
export function validateRules(
  forwards: readonly PortForwardRule[],
  openPorts: readonly OpenPortsRule[],
  uplinks?: readonly UplinkAddresses[],
): RuleProblem[] {
  const layout = uplinks?.map((u): UplinkLayout => ({
    name: u.name,
    addresses: [...u.addresses],
    ...(u.addresses6 === undefined ? {} : { addresses6: [...u.addresses6] }),
    management: false,
  }));
  return problemsOf({ forwards, openPorts }, layout ?? null).flatMap((p) =>
    p.subject.kind === "rule" && !p.mirror
      ? [{
        list: p.subject.list,
        index: p.subject.index,
        field: p.field,
        message: p.message,
        reason: p.reason,
      }]
      : []
  );
}

/** Throws a `RuleValidationError` listing every problem, if there is any. */
export function assertValidRules(
  forwards: readonly PortForwardRule[],
  openPorts: readonly OpenPortsRule[],
  uplinks?: readonly UplinkAddresses[],
): void {
  const problems = validateRules(forwards, openPorts, uplinks);
  if (problems.length > 0) throw new RuleValidationError(problems);
}
