/**
 * The two-uplink lab: the appliance between two ISPs, as at a site with two
 * Internet connections.
 *
 * ```
 *  clienta 203.0.113.10          clientb 203.0.113.70        remote 203.0.113.200
 *        | .1 (203.0.113.0/26)         | .65 (203.0.113.64/26)      | .193 (203.0.113.192/26)
 *      ispa ---- 198.51.100.128/30 ---- core ---- 198.51.100.132/30 ---- ispb
 *        | .62 (198.51.100.0/26)                                          | .126 (198.51.100.64/26)
 *      wan0 .1 and .2 ---------------- appliance ------------------- wan1 .65
 *                                    lan0 192.0.2.1
 *                                        | (bridge in `lan`)
 *                         server 192.0.2.12   server2 192.0.2.13
 * ```
 *
 * The core joins the two ISPs, so every client reaches both WAN networks
 * (client A reaches WAN B through ISP A, the core and ISP B). Each ISP drops
 * what arrives from the appliance's link with a source outside the block it
 * assigned (BCP 38, an nftables counter `bcp38` in the ISP's namespace), so a
 * reply that leaves by the wrong uplink is lost, as on the real Internet.
 *
 * The appliance namespace has no default route of its own: its main table
 * holds only the connected networks (the two WAN /26s and the LAN). Everything
 * bound for the Internet, forwarded replies and masqueraded flows alike, must
 * be routed by the per-uplink tables the appliance installs (`--routing`: rules
 * by source address, each table's default via its gateway). A default route
 * via ISP A would carry WAN B's replies to ISP A, whose BCP 38 drop would hide
 * the mistake as a timeout; without one, a missing rule fails as "no route".
 */
import { run, runOk } from "../../src/host/run.ts";
import { nsRun, vethPair } from "./topology.ts";

/** Fixed addresses of the two-uplink lab (documentation ranges only). */
export const TWO_UPLINKS = {
  /** ISP A's block on the appliance's wan0: the primary address and a second one. */
  wanA: "198.51.100.1",
  wanA2: "198.51.100.2",
  gatewayA: "198.51.100.62",
  networkA: "198.51.100.0/26",
  /** ISP B's block on wan1. */
  wanB: "198.51.100.65",
  gatewayB: "198.51.100.126",
  networkB: "198.51.100.64/26",
  lan: "192.0.2.1",
  server: "192.0.2.12",
  server2: "192.0.2.13",
  /** A customer of ISP A, and one of ISP B. */
  clientA: "203.0.113.10",
  clientB: "203.0.113.70",
  /** A server on the Internet behind the core: it answers with the address it sees. */
  remote: "203.0.113.200",
} as const;

/** Namespace names of one two-uplink lab instance. */
export interface TwoUplinkNames {
  core: string;
  ispa: string;
  ispb: string;
  clienta: string;
  clientb: string;
  remote: string;
  appliance: string;
  /** The LAN switch: a bridge joining lan0 and the two servers. */
  lan: string;
  server: string;
  server2: string;
}

/** Builds the namespace names for `suffix`. */
export function twoUplinkNames(suffix: string): TwoUplinkNames {
  return {
    core: `kgx-${suffix}`,
    ispa: `kgpa-${suffix}`,
    ispb: `kgpb-${suffix}`,
    clienta: `kgca-${suffix}`,
    clientb: `kgcb-${suffix}`,
    remote: `kgr-${suffix}`,
    appliance: `kga-${suffix}`,
    lan: `kgl-${suffix}`,
    server: `kgs-${suffix}`,
    server2: `kgt-${suffix}`,
  };
}

/** A veth pair: `ifA` in namespace `a`, `ifB` in `b`, both up. */
async function link(a: string, ifA: string, b: string, ifB: string): Promise<void> {
  await vethPair(a, ifA, b, ifB);
  await nsRun(a, ["ip", "link", "set", ifA, "up"]);
  await nsRun(b, ["ip", "link", "set", ifB, "up"]);
}

async function addr(ns: string, dev: string, cidr: string): Promise<void> {
  await nsRun(ns, ["ip", "addr", "add", cidr, "dev", dev]);
}

async function route(ns: string, dst: string, via: string): Promise<void> {
  await nsRun(ns, ["ip", "route", "add", dst, "via", via]);
}

/** Turns on forwarding in a router namespace; reverse-path filtering off, BCP 38 does the job. */
async function router(ns: string): Promise<void> {
  await nsRun(ns, [
    "sysctl",
    "-qw",
    "net.ipv4.ip_forward=1",
    "net.ipv4.conf.all.rp_filter=0",
    "net.ipv4.conf.default.rp_filter=0",
  ]);
}

/**
 * BCP 38 on an ISP's link to the appliance (`app`): packets from it whose
 * source is outside `network` are dropped and counted, before routing, so a
 * packet to the router itself is filtered like one it would forward.
 */
function bcp38(network: string): string {
  return `table inet bcp38 {
  chain pre {
    type filter hook prerouting priority raw; policy accept;
    iifname "app" ip saddr != ${network} counter drop comment "bcp38"
  }
}
`;
}

async function nftIn(ns: string, rules: string): Promise<void> {
  await runOk(["ip", "netns", "exec", ns, "nft", "-f", "-"], rules);
}

/** One ISP: its link to the appliance (`app`), its customer (`cust`) and the core (`core`). */
async function isp(
  ns: string,
  spec: { gateway: string; network: string; customer: string; transit: string; core: string },
): Promise<void> {
  await addr(ns, "app", `${spec.gateway}/26`);
  await addr(ns, "cust", spec.customer);
  await addr(ns, "core", spec.transit);
  await nsRun(ns, ["ip", "link", "set", "lo", "up"]);
  await route(ns, "default", spec.core);
  await router(ns);
  await nftIn(ns, bcp38(spec.network));
}

/** A host with one interface `eth0`, address `cidr` and a default route via `gateway`. */
async function host(ns: string, cidr: string, gateway: string): Promise<void> {
  await addr(ns, "eth0", cidr);
  await nsRun(ns, ["ip", "link", "set", "lo", "up"]);
  await route(ns, "default", gateway);
}

/** Creates the namespaces, links, addresses and routes (not the appliance process). */
export async function twoUplinksUp(n: TwoUplinkNames): Promise<void> {
  const T = TWO_UPLINKS;
  for (const ns of Object.values(n)) await runOk(["ip", "netns", "add", ns]);
  await link(n.ispa, "app", n.appliance, "wan0");
  await link(n.ispb, "app", n.appliance, "wan1");
  await link(n.ispa, "cust", n.clienta, "eth0");
  await link(n.ispb, "cust", n.clientb, "eth0");
  await link(n.ispa, "core", n.core, "ispa");
  await link(n.ispb, "core", n.core, "ispb");
  await link(n.core, "remote", n.remote, "eth0");
  await link(n.appliance, "lan0", n.lan, "pa");
  await link(n.server, "eth0", n.lan, "ps");
  await link(n.server2, "eth0", n.lan, "pt");

  await addr(n.core, "ispa", "198.51.100.129/30");
  await addr(n.core, "ispb", "198.51.100.133/30");
  await addr(n.core, "remote", "203.0.113.193/26");
  await nsRun(n.core, ["ip", "link", "set", "lo", "up"]);
  await router(n.core);
  await route(n.core, T.networkA, "198.51.100.130");
  await route(n.core, "203.0.113.0/26", "198.51.100.130");
  await route(n.core, T.networkB, "198.51.100.134");
  await route(n.core, "203.0.113.64/26", "198.51.100.134");
  await isp(n.ispa, {
    gateway: T.gatewayA,
    network: T.networkA,
    customer: "203.0.113.1/26",
    transit: "198.51.100.130/30",
    core: "198.51.100.129",
  });
  await isp(n.ispb, {
    gateway: T.gatewayB,
    network: T.networkB,
    customer: "203.0.113.65/26",
    transit: "198.51.100.134/30",
    core: "198.51.100.133",
  });
  await host(n.clienta, `${T.clientA}/26`, "203.0.113.1");
  await host(n.clientb, `${T.clientB}/26`, "203.0.113.65");
  await host(n.remote, `${T.remote}/26`, "203.0.113.193");

  const a = n.appliance;
  await addr(a, "wan0", `${T.wanA}/26`);
  await addr(a, "wan0", `${T.wanA2}/26`);
  await addr(a, "wan1", `${T.wanB}/26`);
  await addr(a, "lan0", `${T.lan}/24`);
  await nsRun(a, ["ip", "link", "set", "lo", "up"]);
  // No default route here: see the module comment.

  await nsRun(n.lan, ["ip", "link", "add", "br0", "type", "bridge"]);
  for (const port of ["pa", "ps", "pt"]) {
    await nsRun(n.lan, ["ip", "link", "set", port, "master", "br0"]);
  }
  await nsRun(n.lan, ["ip", "link", "set", "br0", "up"]);
  await host(n.server, `${T.server}/24`, T.lan);
  await host(n.server2, `${T.server2}/24`, T.lan);
}

/** The packets ISP `ns`'s BCP 38 rule has dropped so far. */
export async function bcp38Drops(ns: string): Promise<number> {
  const r = await run(["ip", "netns", "exec", ns, "nft", "list", "chain", "inet", "bcp38", "pre"]);
  const m = r.stdout.match(/counter packets (\d+) bytes \d+ drop comment "bcp38"/);
  if (!m) throw new Error(`Cannot read the BCP 38 counter in ${ns}: ${r.stdout}${r.stderr}`);
  return Number(m[1]);
}

/**
 * The two-uplink lab's IPv6 addresses (documentation prefix): each ISP's
 * link to the appliance a /64 (ISP A's router also on fe80::1, the
 * link-local next hop a router advertises), each ISP's customers a /64 of
 * their own, and the LAN's prefix, which each ISP routes to the appliance.
 */
export const TWO_UPLINKS6 = {
  wanA: "2001:db8:a::1",
  networkA: "2001:db8:a::/64",
  routerA: "2001:db8:a::fe",
  /** ISP A's router's link-local address on the appliance's link (its IPv6 next hop). */
  gatewayA: "fe80::1",
  wanB: "2001:db8:b::1",
  networkB: "2001:db8:b::/64",
  gatewayB: "2001:db8:b::fe",
  lan: "2001:db8:192::1",
  lanNetwork: "2001:db8:192::/64",
  server: "2001:db8:192::12",
  clientA: "2001:db8:203:a::10",
  clientB: "2001:db8:203:b::10",
} as const;

/**
 * Adds `TWO_UPLINKS6` to a lab `twoUplinksUp` built (no duplicate address
 * detection). The IPv6 side has no core: a customer of one ISP is reachable
 * only through that ISP, and the appliance's main table holds only its
 * connected prefixes (no IPv6 default route), so its IPv6 reaches a client
 * only by the table of the client's uplink.
 */
export async function twoUplinksIpv6Up(n: TwoUplinkNames): Promise<void> {
  const T = TWO_UPLINKS6;
  const addr6 = (ns: string, dev: string, cidr: string) =>
    nsRun(ns, ["ip", "-6", "addr", "add", cidr, "dev", dev, "nodad"]);
  const route6 = (ns: string, dst: string, via: string, dev: string) =>
    nsRun(ns, ["ip", "-6", "route", "add", dst, "via", via, "dev", dev]);
  for (
    const [ns, wan, router, customer] of [
      [n.ispa, T.wanA, T.routerA, "2001:db8:203:a::1"],
      [n.ispb, T.wanB, T.gatewayB, "2001:db8:203:b::1"],
    ]
  ) {
    await addr6(ns, "app", `${router}/64`);
    await addr6(ns, "cust", `${customer}/64`);
    await nsRun(ns, ["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
    await route6(ns, T.lanNetwork, wan, "app");
  }
  await addr6(n.ispa, "app", `${T.gatewayA}/64`);
  await addr6(n.clienta, "eth0", `${T.clientA}/64`);
  await nsRun(n.clienta, ["ip", "-6", "route", "add", "default", "via", "2001:db8:203:a::1"]);
  await addr6(n.clientb, "eth0", `${T.clientB}/64`);
  await nsRun(n.clientb, ["ip", "-6", "route", "add", "default", "via", "2001:db8:203:b::1"]);
  await addr6(n.appliance, "wan0", `${T.wanA}/64`);
  await addr6(n.appliance, "wan1", `${T.wanB}/64`);
  await addr6(n.appliance, "lan0", `${T.lan}/64`);
  await addr6(n.server, "eth0", `${T.server}/64`);
  await nsRun(n.server, ["ip", "-6", "route", "add", "default", "via", T.lan]);
}
