/**
 * The HA-pair lab: two appliances, A and B, side by side between one WAN
 * segment and one LAN segment, each with its own keepalived moving the
 * virtual addresses (VRRP) to the node that is master.
 *
 * ```
 *                 client 203.0.113.10
 *                        | (bridge in `wan`)
 *        +---------------+----------------+
 *   wan0 198.51.100.2                wan0 198.51.100.3     virtual: 198.51.100.1/24
 *      appliance A                       appliance B
 *   lan0 192.0.2.2                   lan0 192.0.2.3        virtual: 192.0.2.1/24
 *        +---------------+----------------+
 *                        | (bridge in `lan`)
 *                 server 192.0.2.12 (default via 192.0.2.1)
 * ```
 *
 * Both appliances run the same configuration apart from their management
 * listener (each node's own LAN address, where its keepalived's health check
 * asks): the WAN address 198.51.100.1 and the LAN address 192.0.2.1 are the
 * virtual ones, so the node that holds them is the gateway, and the other
 * sees no traffic. VRRP adverts are multicast on the LAN segment (see
 * src/host/keepalived.ts for why not the WAN and not unicast), sourced from
 * each node's own LAN address. `net.ipv4.ip_nonlocal_bind` is on in both
 * appliance namespaces, so a backup's management listener on the WAN virtual
 * address (`wanAccess: "knock"`) binds before the address arrives.
 *
 * Each node's keepalived runs in the foreground (`-n`) with its own
 * configuration, pid files, log and state-change hook in the node's temp dir,
 * so a test starts, kills and inspects it like the appliance. It also tells
 * its appliance every transition (the notification socket beside the store:
 * the appliance loosens its TCP windows then). Each node has a store of its
 * own, both with one secret key (written before the first start, as an etcd
 * store's nodes share theirs), so both derive the same masquerade port key.
 *
 * With `ipv6` the pair is dual-stack (`HA6`, mirroring topology.ts's `LAB6`):
 * the WAN and LAN IPv6 addresses are virtual too and move with the IPv4
 * ones (keepalived's `virtual_ipaddress_excluded`, added without duplicate
 * address detection, announced by unsolicited neighbour advertisements); the
 * nodes have only their link-local IPv6 addresses of their own, and
 * `net.ipv6.ip_nonlocal_bind` is on beside the IPv4 one (the backup's
 * management listener on the WAN IPv6 address). The client routes the LAN
 * prefix via the WAN IPv6 address, the server's default route is the LAN
 * IPv6 address.
 *
 * With `etcd` both appliances keep their store on that cluster (their
 * configurations say so; see tests/lab/_etcd_relay.ts): each node's
 * namespace gets the relays to its members before its appliance starts, so
 * the pair shares users, sessions and unlocks, and a client knocking at the
 * master is admitted by the backup once it takes over.
 */
import { haSocketPath } from "../../src/host/ha_notify.ts";
import { keepalivedConfig, type VrrpNode } from "../../src/host/keepalived.ts";
import { run, runOk } from "../../src/host/run.ts";
import { type LabOptions, type RunningLab, startAppliance, stopAppliance } from "./appliance.ts";
import type { EtcdRelays } from "./etcd_relay.ts";
import { labDown, nsRun, runSuffix, vethPair, waitFor } from "./topology.ts";

/** Fixed addresses of the HA-pair lab (documentation ranges only). */
export const HA = {
  client: "203.0.113.10",
  /** The virtual addresses keepalived moves: the appliance's WAN and LAN addresses. */
  wanVip: "198.51.100.1",
  lanVip: "192.0.2.1",
  /** Each node's own addresses. */
  wanA: "198.51.100.2",
  wanB: "198.51.100.3",
  lanA: "192.0.2.2",
  lanB: "192.0.2.3",
  server: "192.0.2.12",
  /** The management port of config/appliance.jsonc. */
  mgmtPort: 8443,
  virtualRouterId: 51,
} as const;

/** The dual-stack HA pair's IPv6 addresses (documentation prefix; `LAB6`'s). */
export const HA6 = {
  client: "2001:db8:203::10",
  clientNetwork: "2001:db8:203::/64",
  /** The virtual ones, moving with `HA.wanVip` and `HA.lanVip`. */
  wanVip: "2001:db8:198::1",
  wanNetwork: "2001:db8:198::/64",
  lanVip: "2001:db8:192::1",
  lanNetwork: "2001:db8:192::/64",
  server: "2001:db8:192::12",
} as const;

/** Namespace names of one HA-pair lab. */
export interface HaNames {
  /** The WAN segment: a bridge joining the client and both WAN ports. */
  wan: string;
  client: string;
  a: string;
  b: string;
  /** The LAN segment: a bridge joining both LAN ports and the server. */
  lan: string;
  server: string;
}

/** One node's view of the lab: `appliance` is that node's namespace, so the lab helpers act on it. */
export type HaView = HaNames & { appliance: string };

/** A VRRP state keepalived reported through its notify hook, and when (ms since the epoch). */
export interface VrrpState {
  at: number;
  state: string;
}

/** One node: its appliance (the `RunningLab` part, for the lab helpers) and its keepalived. */
export interface HaNode extends RunningLab<HaView> {
  readonly id: "a" | "b";
  /** Its own WAN and LAN addresses. */
  readonly own: { wan: string; lan: string };
  /** Its keepalived.conf, as generated. */
  readonly keepalivedConf: string;
  /** Where keepalived's output goes. */
  readonly keepalivedLog: string;
  /** keepalived's process, or null when not running. */
  readonly keepalived: Deno.ChildProcess | null;
  startKeepalived(): Promise<void>;
  /** SIGTERM: it gives the addresses up (a priority-0 advert); SIGKILL: they stay on the node. */
  stopKeepalived(signal?: "SIGTERM" | "SIGKILL"): Promise<void>;
  /** The states its notify hook recorded, oldest first. */
  states(): Promise<VrrpState[]>;
  /** True when every virtual address (IPv6 ones too, with `ipv6`) is on its interfaces. */
  holdsVips(): Promise<boolean>;
}

/** A running HA pair. */
export interface HaPair {
  names: HaNames;
  suffix: string;
  a: HaNode;
  b: HaNode;
  /** Takes everything down (keepalived, appliances, namespaces, temp dirs); safe to call twice. */
  down(): Promise<void>;
}

/** Options of `startHaPair`. */
export interface HaOptions {
  /** Each node's appliance configuration (their `management.listen` must be the node's LAN address). */
  configs: { a: string; b: string };
  /** VRRP fields both nodes share; priorities are A 150, B 100. */
  vrrp?: Pick<VrrpNode, "advertIntervalSeconds" | "auth" | "version" | "noPreempt">;
  /** The health check's interval, timeout, fall and rise (defaults: 1 s, 3 s, 2, 2). */
  health?: { intervalSeconds?: number; timeoutSeconds?: number; fall?: number; rise?: number };
  /** Start keepalived on both nodes and wait for A to be master (default true). */
  keepalived?: boolean;
  /** Dual-stack: the `HA6` addresses, the IPv6 ones virtual too (the configs must enable IPv6). */
  ipv6?: boolean;
  /** The relays to an etcd cluster both configs keep their store on; joined before each start. */
  etcd?: EtcdRelays;
}

/** Builds the namespace names for `suffix`. */
export function haNames(suffix: string): HaNames {
  return {
    wan: `kgw-${suffix}`,
    client: `kgc-${suffix}`,
    a: `kgha-${suffix}`,
    b: `kghb-${suffix}`,
    lan: `kgl-${suffix}`,
    server: `kgs-${suffix}`,
  };
}

/** A veth pair, `ifA` in `a` and `ifB` in `b`, both up; `bridge`: `ifB` joins br0 there. */
async function link(a: string, ifA: string, b: string, ifB: string, bridge = true): Promise<void> {
  await vethPair(a, ifA, b, ifB);
  await nsRun(a, ["ip", "link", "set", ifA, "up"]);
  if (bridge) await nsRun(b, ["ip", "link", "set", ifB, "master", "br0"]);
  await nsRun(b, ["ip", "link", "set", ifB, "up"]);
}

/** Creates the namespaces, bridges, links, addresses and routes (no process). */
export async function haPairUp(n: HaNames, opts: { ipv6?: boolean } = {}): Promise<void> {
  for (const ns of Object.values(n)) await runOk(["ip", "netns", "add", ns]);
  for (const ns of [n.wan, n.lan]) {
    await nsRun(ns, ["ip", "link", "add", "br0", "type", "bridge"]);
    await nsRun(ns, ["ip", "link", "set", "br0", "up"]);
  }
  await link(n.client, "eth0", n.wan, "pc");
  await nsRun(n.client, ["ip", "addr", "add", `${HA.client}/24`, "dev", "eth0"]);
  await nsRun(n.client, ["ip", "link", "set", "lo", "up"]);
  // The "Internet": the appliance's WAN network is on-link.
  await nsRun(n.client, ["ip", "route", "add", "198.51.100.0/24", "dev", "eth0"]);
  for (
    const [ns, port, wan, lan] of [
      [n.a, "pa", HA.wanA, HA.lanA],
      [n.b, "pb", HA.wanB, HA.lanB],
    ]
  ) {
    await link(ns, "wan0", n.wan, port);
    await link(ns, "lan0", n.lan, port);
    await nsRun(ns, ["ip", "addr", "add", `${wan}/24`, "dev", "wan0"]);
    await nsRun(ns, ["ip", "addr", "add", `${lan}/24`, "dev", "lan0"]);
    await nsRun(ns, ["ip", "link", "set", "lo", "up"]);
    await nsRun(ns, ["ip", "route", "add", "203.0.113.0/24", "dev", "wan0"]);
    await nsRun(ns, ["sysctl", "-qw", "net.ipv4.ip_nonlocal_bind=1"]);
  }
  await link(n.server, "eth0", n.lan, "ps");
  await nsRun(n.server, ["ip", "addr", "add", `${HA.server}/24`, "dev", "eth0"]);
  await nsRun(n.server, ["ip", "link", "set", "lo", "up"]);
  await nsRun(n.server, ["ip", "route", "add", "default", "via", HA.lanVip]);
  if (opts.ipv6) await haPairIpv6Up(n);
}

/** `HA6`'s addresses and routes; the virtual ones are keepalived's to add. */
async function haPairIpv6Up(n: HaNames): Promise<void> {
  const addr = (ns: string, a: string) =>
    nsRun(ns, ["ip", "-6", "addr", "add", a, "dev", "eth0", "nodad"]);
  await addr(n.client, `${HA6.client}/64`);
  await nsRun(n.client, ["ip", "-6", "route", "add", HA6.wanNetwork, "dev", "eth0"]);
  await nsRun(n.client, ["ip", "-6", "route", "add", HA6.lanNetwork, "via", HA6.wanVip]);
  for (const ns of [n.a, n.b]) {
    await nsRun(ns, ["ip", "-6", "route", "add", HA6.clientNetwork, "dev", "wan0"]);
    await nsRun(ns, ["sysctl", "-qw", "net.ipv6.ip_nonlocal_bind=1"]);
  }
  await addr(n.server, `${HA6.server}/64`);
  await nsRun(n.server, ["ip", "-6", "route", "add", "default", "via", HA6.lanVip]);
}

/** The keepalived description of node `id` whose appliance keeps its store in `stateDir`. */
export function haVrrpNode(id: "a" | "b", stateDir: string, opts: HaOptions): VrrpNode {
  const lan = id === "a" ? HA.lanA : HA.lanB;
  return {
    routerId: `knockgate-${id}`,
    interface: "lan0",
    sourceAddress: lan,
    virtualRouterId: HA.virtualRouterId,
    priority: id === "a" ? 150 : 100,
    ...opts.vrrp,
    virtualAddresses: [
      { cidr: `${HA.lanVip}/24`, interface: "lan0" },
      { cidr: `${HA.wanVip}/24`, interface: "wan0" },
      ...(opts.ipv6
        ? [
          { cidr: `${HA6.lanVip}/64`, interface: "lan0" },
          { cidr: `${HA6.wanVip}/64`, interface: "wan0" },
        ]
        : []),
    ],
    health: {
      url: `https://${lan}:${HA.mgmtPort}/api/v1/health`,
      caFile: `${stateDir}/tls-cert.pem`,
      // Two cores shared by every test: a slow answer must not move the addresses. A dead
      // appliance's port refuses at once, so the timeout does not slow the failover down.
      timeoutSeconds: 3,
      ...opts.health,
    },
    notify: { any: `${stateDir}/notify.sh` },
    applianceSocket: haSocketPath(`${stateDir}/knockgate.kv`)!,
  };
}

/** keepalived's notify hook: one line `MILLISECONDS STATE` per change (args: TYPE NAME STATE PRIORITY). */
function notifyScript(log: string): string {
  return `#!/bin/sh\necho "$(date +%s%3N) $3" >> '${log}'\n`;
}

/** Stops `child` with `signal`, waits at most 5 s, then SIGKILL. */
async function stopProcess(child: Deno.ChildProcess | null, signal: Deno.Signal): Promise<void> {
  if (!child) return;
  try {
    child.kill(signal);
  } catch { /* already gone */ }
  await Promise.race([child.status, new Promise((r) => setTimeout(r, 5000))]);
  try {
    child.kill("SIGKILL");
  } catch { /* already gone */ }
  await child.status.catch(() => {});
}

async function makeNode(
  id: "a" | "b",
  names: HaNames,
  suffix: string,
  opts: HaOptions,
  key: Uint8Array,
  downAll: () => Promise<void>,
): Promise<HaNode> {
  const ns = names[id];
  const view: HaView = { ...names, appliance: ns };
  const stateDir = await Deno.makeTempDir({ prefix: `knockgate-${suffix}-${id}-` });
  // The pair's one secret key (as an etcd store's nodes hold it): both derive the same NAT port key.
  const keyFile = `${stateDir}/knockgate.kv.key`;
  await Deno.writeFile(keyFile, key, { mode: 0o600 });
  await Deno.chmod(keyFile, 0o600);
  const logFile = `${stateDir}/appliance.log`;
  const keepalivedLog = `${stateDir}/keepalived.log`;
  const notifyLog = `${stateDir}/notify.log`;
  await Deno.writeTextFile(logFile, "");
  await Deno.writeTextFile(notifyLog, "");
  await Deno.writeTextFile(`${stateDir}/notify.sh`, notifyScript(notifyLog), { mode: 0o700 });
  const conf = keepalivedConfig(haVrrpNode(id, stateDir, opts));
  await Deno.writeTextFile(`${stateDir}/keepalived.conf`, conf);
  // On one etcd prefix every node needs a name of its own.
  const appOpts: LabOptions = {
    config: opts.configs[id],
    args: opts.etcd ? ["--node-name", `knockgate-${id}`] : [],
  };
  let appliance: Deno.ChildProcess | null = null;
  let keepalived: Deno.ChildProcess | null = null;
  const node: HaNode = {
    id,
    own: id === "a" ? { wan: HA.wanA, lan: HA.lanA } : { wan: HA.wanB, lan: HA.lanB },
    names: view,
    suffix,
    get appliance() {
      return appliance;
    },
    get keepalived() {
      return keepalived;
    },
    logFile,
    stateDir,
    keepalivedConf: conf,
    keepalivedLog,
    exec: (k, argv) => nsRun(view[k], argv),
    tryExec: (k, argv) => run(["ip", "netns", "exec", view[k], ...argv]),
    restartAppliance: async () => {
      await stopAppliance(appliance);
      appliance = await startAppliance(node, appOpts);
    },
    stopAppliance: async (signal = "SIGTERM") => {
      await stopAppliance(appliance, signal);
      appliance = null;
    },
    startAppliance: async () => {
      if (!appliance) appliance = await startAppliance(node, appOpts);
    },
    startKeepalived: async () => {
      if (keepalived) return;
      const d = stateDir;
      // keepalived's own parser judges the generated file, with the node's interfaces present.
      const test = await run([
        "ip",
        "netns",
        "exec",
        ns,
        "keepalived",
        "--config-test",
        "--use-file",
        `${d}/keepalived.conf`,
      ]);
      if (test.code !== 0) {
        throw new Error(`keepalived refused ${d}/keepalived.conf: ${test.stdout}${test.stderr}`);
      }
      keepalived = new Deno.Command("sh", {
        args: [
          "-c",
          'exec "$@" >>"$KG_LOG" 2>&1',
          "sh",
          "ip",
          "netns",
          "exec",
          ns,
          "keepalived",
          "--dont-fork",
          "--log-console",
          "--log-detail",
          "--vrrp",
          "--use-file",
          `${d}/keepalived.conf`,
          "--pid",
          `${d}/keepalived.pid`,
          "--vrrp_pid",
          `${d}/vrrp.pid`,
          "--checkers_pid",
          `${d}/checkers.pid`,
        ],
        env: { KG_LOG: keepalivedLog },
        stdin: "null",
      }).spawn();
    },
    stopKeepalived: async (signal = "SIGTERM") => {
      await stopProcess(keepalived, signal);
      keepalived = null;
    },
    states: async () => {
      const text = await Deno.readTextFile(notifyLog).catch(() => "");
      return text.split("\n").filter(Boolean).map((l) => {
        const [at, state] = l.split(" ");
        return { at: Number(at), state };
      });
    },
    holdsVips: async () => {
      const out = (await run(["ip", "netns", "exec", ns, "ip", "-o", "addr", "show"])).stdout;
      const vips = [`${HA.wanVip}/24`, `${HA.lanVip}/24`];
      if (opts.ipv6) vips.push(`${HA6.wanVip}/64`, `${HA6.lanVip}/64`);
      return vips.every((v) => out.includes(` ${v} `));
    },
    down: downAll,
  };
  return node;
}

/** The last state node `node` reported, or null. */
export async function lastState(node: HaNode): Promise<string | null> {
  return (await node.states()).at(-1)?.state ?? null;
}

/**
 * The HA pair up: namespaces, both appliances (A first), then (by default)
 * both keepalived, waiting until A is master and holds the addresses and B is
 * backup. On any failure everything is torn down before the error is rethrown.
 */
export async function startHaPair(opts: HaOptions): Promise<HaPair> {
  const suffix = runSuffix();
  const names = haNames(suffix);
  const nodes: HaNode[] = [];
  let downed = false;
  const down = async () => {
    if (downed) return;
    downed = true;
    for (const n of nodes) await n.stopKeepalived();
    for (const n of nodes) await n.stopAppliance();
    await labDown(names);
    for (const n of nodes) await Deno.remove(n.stateDir, { recursive: true }).catch(() => {});
  };
  try {
    const key = crypto.getRandomValues(new Uint8Array(32));
    nodes.push(await makeNode("a", names, suffix, opts, key, down));
    nodes.push(await makeNode("b", names, suffix, opts, key, down));
    const [a, b] = nodes;
    await haPairUp(names, opts);
    if (opts.etcd) { for (const n of nodes) await opts.etcd.join(n); }
    await a.startAppliance();
    await b.startAppliance();
    if (opts.keepalived !== false) {
      await a.startKeepalived();
      await b.startKeepalived();
      const elected = await waitFor(
        async () =>
          (await lastState(a)) === "MASTER" && (await lastState(b)) === "BACKUP" &&
          await a.holdsVips(),
        20000,
        100,
      );
      if (!elected) {
        const log = async (n: HaNode) =>
          `${n.id}: states ${JSON.stringify(await n.states())}\n` +
          (await Deno.readTextFile(n.keepalivedLog).catch(() => "")).slice(-3000);
        throw new Error(
          `keepalived did not elect A within 20 s:\n${await log(a)}\n${await log(b)}`,
        );
      }
    }
    return { names, suffix, a, b, down };
  } catch (err) {
    await down();
    throw err;
  }
}
