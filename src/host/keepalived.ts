/**
 * keepalived.conf for one node of an HA pair: VRRP (RFC 3768 v2, RFC 5798
 * v3) moves the WAN and LAN virtual addresses to the node that is master, and
 * a `vrrp_script` asks the node's own appliance for `/health` over HTTPS, so
 * a node whose appliance stopped answering goes to FAULT and gives the
 * addresses up at once (a priority-0 advert) instead of after the three
 * missed adverts a dead node costs.
 *
 * One instance carries every virtual address, whatever interface each lives
 * on: the WAN and LAN addresses must move together, or replies would leave by
 * the other node. Adverts go out of one interface (the LAN or a dedicated HA
 * link), never the WAN: the appliance's fail-closed table drops what the WAN
 * sends to the host's own stack.
 *
 * Multicast adverts (224.0.0.18) on the LAN reach keepalived although the
 * appliance's routing steers every LAN packet to its TUN device: the kernel
 * routes a multicast packet for a joined group before it consults the policy
 * rules (`ip_route_input_mc`). Unicast adverts to a peer's LAN address would
 * be steered to the TUN and dropped there; use unicast only on a link the
 * appliance does not steer.
 *
 * The advert's source must be the node's own address, not a virtual one: the
 * fail-closed table drops LAN packets from the LAN virtual address (the
 * appliance's LAN address), and keepalived would otherwise take the
 * interface's primary address, which may be the virtual one.
 *
 * IPv6 addresses (the WAN's `addresses6`, the LAN's `ipv6.lan.address`)
 * move in the same instance, as `virtual_ipaddress_excluded`: keepalived
 * refuses a family other than the instance's (IPv4, its adverts') in
 * `virtual_ipaddress` ("address family must match VRRP instance"), and an
 * excluded address is added and removed with the others, only not listed in
 * the adverts. keepalived adds an IPv6 address with `nodad` (usable at once,
 * never tentative: duplicate address detection would hold a moved address a
 * second, and the other node, which just gave it up, cannot answer for it)
 * and sends unsolicited neighbour advertisements for it (override flag, to
 * ff02::1) as it sends gratuitous ARPs for the IPv4 ones, `garpRepeat` of
 * each. A link-local virtual address is refused: each node's kernel has its
 * own on every interface, and neighbours reach a moved global address.
 *
 * Every transition is also told to the appliance (`applianceSocket`): its
 * flows' TCP windows go stale while the other node carries them, so it
 * loosens them on leaving and on taking the master role (see ha_notify.ts).
 *
 * Nothing here runs keepalived or touches the host; `keepalivedConfig`
 * returns the file's text and throws on a description keepalived would
 * refuse or misread (its parser knows no quoting inside words).
 */

import { isIPv6 } from "node:net";
import { VRRP_STATES, vrrpRequestPath } from "./ha_notify.ts";

/** A virtual address: `198.51.100.1/24` or `2001:db8:198::1/64` on `wan0`. */
export interface VirtualAddress {
  /** Address with prefix length, `a.b.c.d/n` or an IPv6 address (global) `/n`. */
  cidr: string;
  interface: string;
}

/** The appliance health check keepalived runs (a `vrrp_script` with curl). */
export interface HealthCheck {
  /** The node's own management URL of `/health`, e.g. `https://192.0.2.2:8443/api/v1/health`. */
  url: string;
  /** The management certificate (or its CA) curl verifies against: the store's `tls-cert.pem`. */
  caFile: string;
  /** Seconds between checks (default 1). */
  intervalSeconds?: number;
  /** Seconds a check may take before it counts as failed (default 1). */
  timeoutSeconds?: number;
  /** Failed checks in a row that put the node in FAULT (default 2). */
  fall?: number;
  /** Good checks in a row that bring it back (default 2). */
  rise?: number;
  /** curl's path (default /usr/bin/curl; keepalived runs it without a shell). */
  curl?: string;
}

/** State-change hooks: scripts keepalived runs with `INSTANCE NAME STATE PRIORITY` appended. */
export interface NotifyHooks {
  /** Any change (MASTER, BACKUP, FAULT, STOP). */
  any?: string;
  master?: string;
  backup?: string;
  fault?: string;
}

/** One node's VRRP description. */
export interface VrrpNode {
  /** keepalived's `router_id`, naming this node in its log (default the instance name). */
  routerId?: string;
  /** The VRRP instance's name (default `knockgate`); the same on both nodes. */
  instance?: string;
  /** The interface adverts go out of: the LAN, or a dedicated HA link. */
  interface: string;
  /** This node's own address on `interface`, the adverts' source. */
  sourceAddress: string;
  /** Unicast adverts to these addresses; absent or empty: multicast 224.0.0.18. */
  unicastPeers?: readonly string[];
  /** The virtual router id, 1..255, the same on both nodes and unique on the segment. */
  virtualRouterId: number;
  /** 1..254; the higher one is master. 255 is the address owner's, which an HA pair has none of. */
  priority: number;
  /** VRRP version (default 2 when `auth` is given, else 3). */
  version?: 2 | 3;
  /** Seconds between adverts (default 1); v3 takes hundredths (0.1), v2 whole seconds. */
  advertIntervalSeconds?: number;
  /**
   * VRRPv2 simple-text authentication (1..8 characters, the same on both
   * nodes). It only keeps two pairs on one segment apart: it is sent in clear.
   */
  auth?: string;
  /**
   * Both nodes start as BACKUP and a returning node does not take the
   * addresses back from a live master: one move per failure, not two.
   */
  noPreempt?: boolean;
  /** The addresses that move, every one on every node. */
  virtualAddresses: readonly VirtualAddress[];
  health?: HealthCheck;
  notify?: NotifyHooks;
  /**
   * The appliance's notification socket (`haSocketPath` of its store, e.g.
   * `/var/lib/knockgate/kg.kv.ha/notify.sock`): `notify_master`,
   * `notify_backup` and `notify_fault` post the state there with curl
   * (`health.curl`'s, default /usr/bin/curl). Excludes `notify.master`,
   * `notify.backup` and `notify.fault` (keepalived runs one of each).
   */
  applianceSocket?: string;
  /**
   * Gratuitous ARPs per IPv4 address, unsolicited neighbour advertisements
   * per IPv6 one, sent on becoming master (default 5, keepalived's).
   */
  garpRepeat?: number;
}

/** The name of the generated health check. */
export const HEALTH_SCRIPT = "knockgate_health";

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
/** What keepalived reads as one word: no blanks, quotes, braces or comment marks. */
const WORD = /^[^\s"'{}#!\\]+$/;

function fail(why: string): never {
  throw new Error(`Cannot generate keepalived.conf: ${why}`);
}

function checkIpv4(what: string, a: string): void {
  if (!IPV4.test(a)) fail(`${what} ${JSON.stringify(a)} is not an IPv4 address`);
}

function checkWord(what: string, s: string): void {
  if (!WORD.test(s)) fail(`${what} ${JSON.stringify(s)} must be one word without quotes or braces`);
}

function checkInt(what: string, n: number, lo: number, hi: number): void {
  if (!Number.isInteger(n) || n < lo || n > hi) fail(`${what} ${n} is out of range (${lo}-${hi})`);
}

/** The first 16 bits of IPv6 address `a` (valid text, no zone). */
function firstHextet(a: string): number {
  return a.startsWith("::") ? 0 : parseInt(a.slice(0, a.indexOf(":")), 16);
}

/** Why IPv6 address `a` cannot move between nodes, or null. */
function unmovableIpv6(a: string): string | null {
  const top = firstHextet(a);
  if ((top & 0xffc0) === 0xfe80) return "link-local (each node has its own)";
  if ((top & 0xff00) === 0xff00) return "multicast";
  if (top === 0) return "not a global unicast address";
  return null;
}

/** The family of virtual address `c`, `a.b.c.d/n` or `IPV6/n`; throws naming `what`. */
function checkCidr(what: string, c: string): 4 | 6 {
  const [addr, len, ...rest] = c.split("/");
  const v6 = addr.includes(":");
  const max = v6 ? 128 : 32;
  if (rest.length > 0 || len === undefined || !/^\d{1,3}$/.test(len) || Number(len) > max) {
    fail(`${what} ${JSON.stringify(c)} is not a.b.c.d/n or an IPv6 address/n`);
  }
  if (!v6) {
    checkIpv4(what, addr);
    return 4;
  }
  if (!isIPv6(addr) || addr.includes("%") || addr.includes(".")) {
    fail(`${what} ${JSON.stringify(c)} is not a.b.c.d/n or an IPv6 address/n`);
  }
  const why = unmovableIpv6(addr);
  if (why) fail(`${what} ${JSON.stringify(c)} is ${why}; move a global address`);
  return 6;
}

/** IPv6 text `a` in one spelling to compare by: eight words, lower-case hex, no leading zeros. */
function sameIpv6Text(a: string): string {
  const [head, tail = ""] = a.toLowerCase().split("::");
  const h = head ? head.split(":") : [], t = tail ? tail.split(":") : [];
  const words = a.includes("::") ? [...h, ...Array(8 - h.length - t.length).fill("0"), ...t] : h;
  return words.map((w) => parseInt(w, 16).toString(16)).join(":");
}

/** The address of virtual address `cidr`, IPv6 in `sameIpv6Text` spelling. */
function addressOf(cidr: string): string {
  const a = cidr.split("/")[0];
  return a.includes(":") ? sameIpv6Text(a) : a;
}

/** A script line: each argument one word (keepalived splits on blanks, with no shell). */
function scriptLine(argv: readonly string[]): string {
  for (const a of argv) checkWord("script argument", a);
  return `"${argv.join(" ")}"`;
}

/** VRRPv2 carries whole seconds in 8 bits, v3 hundredths of a second in 12 bits. */
function checkAdvert(version: 2 | 3, advert: number): void {
  const cs = Math.round(advert * 100);
  const ok = version === 2
    ? Number.isInteger(advert) && advert >= 1 && advert <= 255
    : Math.abs(cs - advert * 100) < 1e-6 && cs >= 1 && cs <= 4095;
  if (ok) return;
  const range = version === 2 ? "whole seconds 1-255" : "hundredths 0.01-40.95";
  fail(`advert interval ${advert} s does not fit VRRPv${version} (${range})`);
}

function checkHealth(h: HealthCheck, virtual: readonly string[]): void {
  const m = /^https:\/\/(?:\[([0-9a-fA-F:]+)\]|([^\s"'{}#!\\/:\[\]]+))(:\d+)?\/[^\s"'{}#!\\]*$/
    .exec(h.url);
  if (!m) fail(`health URL ${JSON.stringify(h.url)} is not https://HOST[:PORT]/PATH`);
  const host = m[1] !== undefined ? sameIpv6Text(m[1]) : m[2];
  // On the backup a virtual address is the master's: the check would ask the other node.
  if (virtual.includes(host)) {
    fail(`health URL ${h.url} names a virtual address, not the node's own`);
  }
  checkInt("health interval", h.intervalSeconds ?? 1, 1, 3600);
  checkInt("health timeout", h.timeoutSeconds ?? 1, 1, 3600);
  checkInt("health fall", h.fall ?? 2, 1, 255);
  checkInt("health rise", h.rise ?? 2, 1, 255);
}

function validate(n: VrrpNode): { version: 2 | 3; advert: number } {
  checkWord("interface", n.interface);
  checkIpv4("source address", n.sourceAddress);
  for (const p of n.unicastPeers ?? []) checkIpv4("unicast peer", p);
  checkInt("virtual router id", n.virtualRouterId, 1, 255);
  checkInt("priority", n.priority, 1, 254);
  if (n.routerId !== undefined) checkWord("router id", n.routerId);
  if (n.instance !== undefined) checkWord("instance name", n.instance);
  const version = n.version ?? (n.auth !== undefined ? 2 : 3);
  if (n.auth !== undefined) {
    if (version !== 2) fail("authentication exists in VRRPv2 only (RFC 5798 removed it)");
    checkWord("auth", n.auth);
    if (n.auth.length > 8) fail("auth is longer than 8 characters (VRRPv2 carries 8)");
  }
  const advert = n.advertIntervalSeconds ?? 1;
  checkAdvert(version, advert);
  if (n.virtualAddresses.length === 0) fail("no virtual addresses");
  let ipv4 = 0;
  for (const v of n.virtualAddresses) {
    if (checkCidr("virtual address", v.cidr) === 4) ipv4++;
    checkWord("interface", v.interface);
  }
  // The instance is IPv4 (its adverts are); keepalived wants one address of its family.
  if (ipv4 === 0) fail("no IPv4 virtual address (the IPv6 ones move with an IPv4 instance)");
  const virtual = n.virtualAddresses.map((v) => addressOf(v.cidr));
  if (new Set(virtual).size < virtual.length) fail("a virtual address is listed twice");
  // The fail-closed table drops LAN packets from the LAN virtual address (the appliance's own).
  if (virtual.includes(n.sourceAddress)) {
    fail(`source address ${n.sourceAddress} is a virtual address; adverts need the node's own`);
  }
  if (n.garpRepeat !== undefined) checkInt("gratuitous ARP repeat", n.garpRepeat, 1, 255);
  if (n.health) checkHealth(n.health, virtual);
  if (n.applianceSocket !== undefined) {
    if (!n.applianceSocket.startsWith("/")) fail("appliance socket must be an absolute path");
    checkWord("appliance socket", n.applianceSocket);
    for (const k of VRRP_STATES) {
      if (n.notify?.[k] !== undefined) {
        fail(`notify.${k} and applianceSocket both claim notify_${k}`);
      }
    }
  }
  return { version, advert };
}

/** The `vrrp_script` block of health check `h`. */
function healthBlock(h: HealthCheck): string[] {
  const timeout = h.timeoutSeconds ?? 1;
  // -f: an HTTP error status fails too; curl's own deadline is the check's timeout.
  const curl = [
    h.curl ?? "/usr/bin/curl",
    "-sf",
    "-o",
    "/dev/null",
    "--max-time",
    String(timeout),
    "--cacert",
    h.caFile,
    h.url,
  ];
  return [
    `vrrp_script ${HEALTH_SCRIPT} {`,
    `  script ${scriptLine(curl)}`,
    `  interval ${h.intervalSeconds ?? 1}`,
    // keepalived's own kill deadline, a second after curl's.
    `  timeout ${timeout + 1}`,
    `  fall ${h.fall ?? 2}`,
    `  rise ${h.rise ?? 2}`,
    "}",
  ];
}

/** Where adverts go: multicast from the node's address, or unicast to the peers. */
function advertLines(n: VrrpNode): string[] {
  const peers = n.unicastPeers ?? [];
  if (peers.length === 0) return [`  mcast_src_ip ${n.sourceAddress}`];
  return [
    `  unicast_src_ip ${n.sourceAddress}`,
    "  unicast_peer {",
    ...peers.map((p) => `    ${p}`),
    "  }",
  ];
}

const HOOKS: readonly [keyof NotifyHooks, string][] = [
  ["any", "notify"],
  ["master", "notify_master"],
  ["backup", "notify_backup"],
  ["fault", "notify_fault"],
];

/** The `vrrp_instance` block of node `n`. */
function instanceBlock(n: VrrpNode, instance: string, advert: number): string[] {
  const out = [
    `vrrp_instance ${instance} {`,
    // Both nodes start as BACKUP and the election decides (a node never claims the addresses
    // before it has heard the other's priority).
    "  state BACKUP",
    `  interface ${n.interface}`,
    `  virtual_router_id ${n.virtualRouterId}`,
    `  priority ${n.priority}`,
    `  advert_int ${advert}`,
    ...(n.noPreempt ? ["  nopreempt"] : []),
    ...advertLines(n),
  ];
  if (n.auth !== undefined) {
    out.push("  authentication {", "    auth_type PASS", `    auth_pass ${n.auth}`, "  }");
  }
  const v6 = n.virtualAddresses.filter((v) => v.cidr.includes(":"));
  out.push("  virtual_ipaddress {");
  for (const v of n.virtualAddresses) {
    if (!v.cidr.includes(":")) out.push(`    ${v.cidr} dev ${v.interface}`);
  }
  out.push("  }");
  if (v6.length > 0) {
    // Moved with the rest, not listed in the (IPv4) adverts; added nodad by keepalived.
    out.push("  virtual_ipaddress_excluded {");
    for (const v of v6) out.push(`    ${v.cidr} dev ${v.interface}`);
    out.push("  }");
  }
  if (n.garpRepeat !== undefined) out.push(`  garp_master_repeat ${n.garpRepeat}`);
  if (n.health) out.push("  track_script {", `    ${HEALTH_SCRIPT}`, "  }");
  for (const [key, field] of HOOKS) {
    const script = n.notify?.[key];
    if (script !== undefined) out.push(`  ${field} ${scriptLine([script])}`);
  }
  if (n.applianceSocket !== undefined) {
    const curl = n.health?.curl ?? "/usr/bin/curl";
    for (const state of VRRP_STATES) {
      // notify_* scripts get no arguments appended (only `notify` does).
      const argv = [curl, "-sf", "-o", "/dev/null", "--max-time", "5", "-X", "POST"];
      argv.push("--unix-socket", n.applianceSocket, `http://knockgate${vrrpRequestPath(state)}`);
      out.push(`  notify_${state} ${scriptLine(argv)}`);
    }
  }
  out.push("}");
  return out;
}

/** The keepalived.conf text of node `n`; throws an Error naming the first field it cannot write. */
export function keepalivedConfig(n: VrrpNode): string {
  const { version, advert } = validate(n);
  const instance = n.instance ?? "knockgate";
  return [
    "# Generated by knockgate (src/host/keepalived.ts); edits are lost when it is written again.",
    "global_defs {",
    `  router_id ${n.routerId ?? instance}`,
    "  enable_script_security",
    "  script_user root",
    `  vrrp_version ${version}`,
    "}",
    ...(n.health ? healthBlock(n.health) : []),
    ...instanceBlock(n, instance, advert),
  ].join("\n") + "\n";
}
