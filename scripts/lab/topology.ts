/**
 * The lab: network namespaces that emulate the appliance VM and its two
 * networks. An "internet" namespace holds a bridge joining two clients
 * (203.0.113.10 and .20) and the appliance's WAN port (198.51.100.1); the
 * appliance's LAN port (192.0.2.1) faces a server (192.0.2.12). Every name
 * carries a run-unique suffix so two runs cannot collide.
 *
 * Dual-stack (`labUp(n, { ipv6: true })`, or `labIpv6Up` on a lab already
 * up): the same links get IPv6 addresses from the documentation prefix
 * 2001:db8::/32 that mirror the IPv4 ones (`LAB6`), and the clients route
 * the LAN prefix via the appliance's WAN address, as an ISP routes a
 * customer's prefix to its router: IPv6 has no NAT to reach the LAN through.
 */
import { run, runOk } from "../../src/host/run.ts";

/** Fixed addresses of the lab (documentation ranges only). */
export const LAB = {
  client: "203.0.113.10",
  client2: "203.0.113.20",
  wan: "198.51.100.1",
  lan: "192.0.2.1",
  server: "192.0.2.12",
} as const;

/** The dual-stack lab's IPv6 addresses (documentation prefix, mirroring `LAB`). */
export const LAB6 = {
  client: "2001:db8:203::10",
  client2: "2001:db8:203::20",
  clientNetwork: "2001:db8:203::/64",
  wan: "2001:db8:198::1",
  wanNetwork: "2001:db8:198::/64",
  lan: "2001:db8:192::1",
  lanNetwork: "2001:db8:192::/64",
  server: "2001:db8:192::12",
} as const;

/** Namespace names of one lab instance. */
export interface LabNames {
  inet: string;
  client: string;
  client2: string;
  appliance: string;
  server: string;
}

/** A short run-unique suffix: pid and a random part, fits interface-name limits. */
export function runSuffix(): string {
  return `${Deno.pid.toString(36)}${Math.floor(Math.random() * 36 ** 3).toString(36)}`;
}

/** Builds the namespace names for `suffix`. */
export function labNames(suffix: string): LabNames {
  return {
    inet: `kgi-${suffix}`,
    client: `kgc-${suffix}`,
    client2: `kgd-${suffix}`,
    appliance: `kga-${suffix}`,
    server: `kgs-${suffix}`,
  };
}

/** Runs a command inside namespace `ns`, throwing on failure. */
export function nsRun(ns: string, argv: string[]): Promise<string> {
  return runOk(["ip", "netns", "exec", ns, ...argv]);
}

/** A veth pair: `ifA` in namespace `a`, its peer `ifB` in `b` (both still down). */
export function vethPair(a: string, ifA: string, b: string, ifB: string): Promise<string> {
  return runOk([
    "ip",
    "link",
    "add",
    ifA,
    "netns",
    a,
    "type",
    "veth",
    "peer",
    "name",
    ifB,
    "netns",
    b,
  ]);
}

/** Joins `ns` to the internet bridge with address `addr`. */
async function attachClient(n: LabNames, ns: string, addr: string): Promise<void> {
  const port = `p${ns.slice(2, 3)}`;
  await vethPair(ns, "eth0", n.inet, port);
  await nsRun(n.inet, ["ip", "link", "set", port, "master", "br0", "up"]);
  await nsRun(ns, ["ip", "addr", "add", `${addr}/24`, "dev", "eth0"]);
  await nsRun(ns, ["ip", "link", "set", "eth0", "up"]);
  await nsRun(ns, ["ip", "link", "set", "lo", "up"]);
  // The "Internet": the appliance's WAN network is reached on-link.
  await nsRun(ns, ["ip", "route", "add", "198.51.100.0/24", "dev", "eth0"]);
}

/** Creates the namespaces, links and addresses (not the appliance process); `ipv6`: dual-stack. */
export async function labUp(n: LabNames, opts: { ipv6?: boolean } = {}): Promise<void> {
  for (const ns of Object.values(n)) await runOk(["ip", "netns", "add", ns]);
  await nsRun(n.inet, ["ip", "link", "add", "br0", "type", "bridge"]);
  await nsRun(n.inet, ["ip", "link", "set", "br0", "up"]);
  await attachClient(n, n.client, LAB.client);
  await attachClient(n, n.client2, LAB.client2);
  const a = n.appliance;
  await vethPair(a, "wan0", n.inet, "pa");
  await nsRun(n.inet, ["ip", "link", "set", "pa", "master", "br0", "up"]);
  await vethPair(a, "lan0", n.server, "eth0");
  await nsRun(a, ["ip", "addr", "add", `${LAB.wan}/24`, "dev", "wan0"]);
  await nsRun(a, ["ip", "addr", "add", `${LAB.lan}/24`, "dev", "lan0"]);
  for (const dev of ["lo", "wan0", "lan0"]) await nsRun(a, ["ip", "link", "set", dev, "up"]);
  await nsRun(a, ["ip", "route", "add", "203.0.113.0/24", "dev", "wan0"]);
  await nsRun(n.server, ["ip", "addr", "add", `${LAB.server}/24`, "dev", "eth0"]);
  for (const dev of ["lo", "eth0"]) await nsRun(n.server, ["ip", "link", "set", dev, "up"]);
  await nsRun(n.server, ["ip", "route", "add", "default", "via", LAB.lan]);
  if (opts.ipv6) await labIpv6Up(n);
}

/** Adds `LAB6`'s addresses and routes to a lab `labUp` built (no duplicate address detection). */
export async function labIpv6Up(n: LabNames): Promise<void> {
  const addr = (ns: string, a: string, dev: string) =>
    nsRun(ns, ["ip", "-6", "addr", "add", a, "dev", dev, "nodad"]);
  for (const [ns, a] of [[n.client, LAB6.client], [n.client2, LAB6.client2]]) {
    await addr(ns, `${a}/64`, "eth0");
    await nsRun(ns, ["ip", "-6", "route", "add", LAB6.wanNetwork, "dev", "eth0"]);
    await nsRun(ns, ["ip", "-6", "route", "add", LAB6.lanNetwork, "via", LAB6.wan, "dev", "eth0"]);
  }
  await addr(n.appliance, `${LAB6.wan}/64`, "wan0");
  await addr(n.appliance, `${LAB6.lan}/64`, "lan0");
  await nsRun(n.appliance, ["ip", "-6", "route", "add", LAB6.clientNetwork, "dev", "wan0"]);
  await addr(n.server, `${LAB6.server}/64`, "eth0");
  await nsRun(n.server, ["ip", "-6", "route", "add", "default", "via", LAB6.lan]);
}

/** Deletes every namespace of a lab (and so their links); never throws. */
export async function labDown<N extends Record<keyof N, string>>(n: N): Promise<void> {
  for (const ns of Object.values<string>(n)) {
    await run(["ip", "netns", "pids", ns]).then(async (r) => {
      for (const pid of r.stdout.split(/\s+/).filter(Boolean)) await run(["kill", "-9", pid]);
    });
    await run(["ip", "netns", "del", ns]);
  }
}

/** Waits until `check` resolves true, polling every `stepMs`, at most `timeoutMs`. */
export async function waitFor(
  check: () => Promise<boolean>,
  timeoutMs: number,
  stepMs = 50,
): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check().catch(() => false)) return true;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return false;
}
