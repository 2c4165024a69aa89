/**
 * The lab half of the benchmark: two labs up at once, one where the kernel
 * does the NAT (nftables DNAT + masquerade in the appliance namespace, the
 * ceiling) and one running the appliance; each measurement alternates
 * between them rep by rep, so slow drifts of the shared machine's load hit
 * both alike.
 *
 * Measured per setup: iperf3 TCP with 1, 4 and 8 streams (client to
 * 198.51.100.1:52202, forwarded to the server's 5201), a sendmmsg flood of
 * small UDP datagrams counted where they arrive (an nftables counter in the
 * server namespace), ping RTT from the server to a client through masquerade,
 * CPU during each transfer, TCP connect time; and in the appliance lab the
 * knock-to-first-admitted-SYN latency (knock_lab.ts). In the one-uplink lab,
 * the ceiling sections follow (ceiling.ts): stepped multi-sender UDP,
 * `UDP_SEGMENT` senders, RTT under a SYN flood.
 *
 * IPv6 (issue 13), one-uplink lab only: both labs are dual-stack
 * (topology.ts `LAB6`), and iperf3 TCP with 1 and 4 streams runs from the
 * client straight to the server's IPv6 address, alternated with the IPv4
 * transfers in the same reps. No NAT on either side: the kernel lab forwards
 * through a stateful nftables `inet` forward chain (`KERNEL_FORWARD6`), the
 * appliance through a pinhole (an open-ports rule to the server's IPv6
 * address, the client's /64 allow-listed). The kernel's filter is loaded
 * only around the IPv6 transfers, so every IPv4 figure of the kernel lab
 * (the ceiling sections too) keeps the unfiltered forward it had.
 *
 * Two topologies: the one-uplink lab, and the two-ISP lab (scripts/lab/
 * two_uplinks.ts) with the appliance on config/lab-two-uplinks.jsonc, where
 * the same traffic crosses ISP A (client A, WAN address 198.51.100.1, the same
 * addresses as the one-uplink lab) while ISP B is configured and both gateways
 * are probed. Each topology has its own kernel-NAT lab, so every ratio compares
 * the same paths.
 */
import { type Names, type RunningLab, startLab, startTwoUplinkLab } from "../lab/appliance.ts";
import { LAB, LAB6, waitFor } from "../lab/topology.ts";
import { TWO_UPLINKS } from "../lab/two_uplinks.ts";
import { parseJsonc } from "../../src/config/parse_jsonc.ts";
import { parseConfig } from "../../src/config/load.ts";
import { CpuSampler, median, round } from "./stats.ts";
import type { UdpFloodResult } from "./udp_flood.ts";
import type { KnockLatencyResult } from "./knock_latency.ts";
import { BENCH_KNOCK_PORTS, type KnockLatencySummary, runKnockLatency } from "./knock_lab.ts";
import { type CeilingOptions, type CeilingResult, KERNEL_GATE, runCeiling } from "./ceiling.ts";

const root = new URL("../../", import.meta.url).pathname;
const here = new URL(".", import.meta.url).pathname;

/** How long and how often to measure. */
export interface LabBenchOptions {
  /** Repetitions of every measurement (the median is reported). */
  reps: number;
  /** Seconds per iperf3 run. */
  seconds: number;
  /** Seconds per UDP flood. */
  udpSeconds: number;
  /** UDP payload bytes of the flood. */
  udpSize: number;
  /** Echo requests per ping run (10 ms apart). */
  pingCount: number;
  /** TCP connects timed per rep (20 ms apart). */
  connectSamples: number;
  /** Knock latency samples. */
  knockSamples: number;
  /** The appliance's `tun.queues` (one data-plane Worker each). */
  queues: number;
  /** The ceiling sections (one-uplink lab only); null skips them. */
  ceiling: Omit<CeilingOptions, "log" | "reps"> | null;
  /** Progress lines go here. */
  log: (line: string) => void;
}

/** One setup's figures: medians over the reps, and every rep. */
export interface SetupResult {
  tcp1Gbps: number;
  tcp4Gbps: number;
  tcp8Gbps: number;
  udpRxPps: number;
  udpTxPps: number;
  /** ping from the server to client 1 through masquerade: avg, mdev, per-packet median, max. */
  pingAvgMs: number;
  pingMdevMs: number;
  pingMedianMs: number;
  pingMaxMs: number;
  /** TCP connect time, client 1 to 198.51.100.1:52201 (forwarded to the server's 8080), ms. */
  connectMs: number;
  /** Appliance process CPU, % of one core, per transfer (null for the kernel). */
  cpu: { tcp1: number | null; tcp4: number | null; tcp8: number | null; udp: number | null };
  /** Cores busy on the whole host (every namespace and other sessions), per transfer. */
  hostCores: { tcp1: number; tcp4: number; tcp8: number; udp: number };
  runs: {
    tcp1: number[];
    tcp4: number[];
    tcp8: number[];
    tcp1Retransmits: number[];
    udpRx: number[];
    udpTx: number[];
    udpLossPct: number[];
    pingAvg: number[];
    pingMdev: number[];
    pingMedian: number[];
    pingMax: number[];
    connectMs: number[];
    cpuTcp1: number[];
    cpuTcp4: number[];
    cpuTcp8: number[];
    cpuUdp: number[];
  };
}

/** One setup's IPv6 figures: TCP to the server's IPv6 address, medians over the reps, and every rep. */
export interface Ipv6SetupResult {
  tcp1Gbps: number;
  tcp4Gbps: number;
  /** Appliance process CPU, % of one core (null for the kernel). */
  cpu: { tcp1: number | null; tcp4: number | null };
  hostCores: { tcp1: number; tcp4: number };
  runs: {
    tcp1: number[];
    tcp4: number[];
    tcp1Retransmits: number[];
    cpuTcp1: number[];
    cpuTcp4: number[];
  };
}

/** Which lab the figures come from. */
export type BenchTopology = "one-uplink" | "two-uplinks";

/** Everything the lab half measured. */
export interface LabBenchResult {
  topology: BenchTopology;
  options: Omit<LabBenchOptions, "log">;
  appliancePid: number | null;
  kernel: SetupResult;
  appliance: SetupResult;
  knock: KnockLatencySummary | null;
  /** IPv6 TCP, inet forward against the pinhole (one-uplink lab only). */
  ipv6: { kernel: Ipv6SetupResult; appliance: Ipv6SetupResult } | null;
  /** The ceiling sections (one-uplink lab only). */
  ceiling: CeilingResult | null;
  errors: string[];
}

/** The namespaces a measurement runs in, by role, whatever the topology. */
type Role = "client" | "client2" | "server" | "appliance";

/** A lab as the measurements see it. */
interface BenchLab {
  exec(role: Role, argv: string[]): Promise<string>;
  tryExec(role: Role, argv: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  readonly appliance: Deno.ChildProcess | null;
  logFile: string;
  down(): Promise<void>;
}

function benchLab<N extends Names<N>>(lab: RunningLab<N>, roles: Record<Role, keyof N>): BenchLab {
  return {
    exec: (role, argv) => lab.exec(roles[role], argv),
    tryExec: (role, argv) => lab.tryExec(roles[role], argv),
    get appliance() {
      return lab.appliance;
    },
    logFile: lab.logFile,
    down: () => lab.down(),
  };
}

interface Setup {
  name: "kernel" | "appliance";
  lab: BenchLab;
  pid: number | null;
  cpu: CpuSampler;
  runs: SetupResult["runs"];
  host: { tcp1: number[]; tcp4: number[]; tcp8: number[]; udp: number[] };
  v6: { runs: Ipv6SetupResult["runs"]; host: { tcp1: number[]; tcp4: number[] } };
}

const KERNEL_NAT = `
table ip kgbench {
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr ${LAB.wan} tcp dport 52202 dnat to ${LAB.server}:5201
    ip daddr ${LAB.wan} udp dport 52202 dnat to ${LAB.server}:5201
    ip daddr ${LAB.wan} tcp dport 52201 dnat to ${LAB.server}:8080
  }
  chain post {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan0" ip saddr 192.0.2.0/24 masquerade
  }
}
`;

/**
 * The pinhole's kernel twin: a stateful IPv6 forward, replies and related
 * ICMPv6 errors accepted, the LAN out accepted, and new TCP from the WAN only
 * from the client's /64 to the server's iperf3 port. IPv4 is accepted first
 * (no IPv4 crosses while it is loaded, but a stray packet must not be dropped).
 */
const KERNEL_FORWARD6 = `
table inet kgbench6 {
  chain forward6 {
    type filter hook forward priority filter; policy drop;
    meta nfproto ipv4 accept
    ct state established,related accept
    iifname "lan0" oifname "wan0" accept
    iifname "wan0" oifname "lan0" ip6 saddr ${LAB6.clientNetwork} ip6 daddr ${LAB6.server} tcp dport 5201 ct state new accept
  }
}
`;

// Counts the flood where it lands and drops it there, so no ICMP port unreachable comes back.
const SERVER_COUNTER = `
table inet kgbench {
  counter udpflood { }
  chain in {
    type filter hook input priority 0; policy accept;
    udp dport 5201 counter name "udpflood" drop
  }
}
`;

async function nftLoad(lab: BenchLab, ns: "appliance" | "server", text: string): Promise<void> {
  const file = await Deno.makeTempFile({ prefix: "kgbench-", suffix: ".nft" });
  try {
    await Deno.writeTextFile(file, text);
    await lab.exec(ns, ["nft", "-f", file]);
  } finally {
    await Deno.remove(file).catch(() => {});
  }
}

/**
 * The benchmark's appliance config: the lab's (`source`, relative to the
 * repository), with client 1 allow-listed, 1 s unlocks and the knock-latency
 * users (`BENCH_KNOCK_PORTS`); with `ipv6`, for the dual-stack lab: IPv6 on,
 * a pinhole to the server's IPv6 iperf3 port and the client's /64 allow-listed.
 */
export async function benchConfig(
  dir: string,
  source = "config/appliance.jsonc",
  queues?: number,
  ipv6 = false,
): Promise<string> {
  const text = await Deno.readTextFile(`${root}${source}`);
  const c = parseJsonc(text).value as Record<string, Record<string, unknown>>;
  if (queues !== undefined) c.tun = { ...c.tun, queues };
  // Client 1 skips the gate for the transfers; client 2 knocks, and its unlock lapses after 1 s.
  c.admission = { allow: [`${LAB.client}/32`] };
  c.knock = { ...c.knock, lifetimeSeconds: 1 };
  // A user's step is accepted once (its unlock lapsed, a repeat is a replay): the knock
  // samples take turns over users of one secret, so one 30 s step holds them all.
  const users = c.users as unknown as Record<string, unknown>[];
  for (const port of BENCH_KNOCK_PORTS.slice(1)) {
    users.push({ ...users[0], name: `bench${port}`, firstPort: port });
  }
  if (ipv6) {
    const wan = c.wan as unknown as Record<string, unknown>[];
    wan[0] = { ...wan[0], addresses6: [`${LAB6.wan}/64`] };
    c.ipv6 = { enabled: true, lan: { address: LAB6.lan, network: LAB6.lanNetwork } };
    c.admission.allow = [...(c.admission.allow as string[]), LAB6.clientNetwork];
    (c as Record<string, unknown>).openPorts = [{
      name: "iperf6",
      privateAddress: LAB6.server,
      enforceKnock: true,
      ports: [{ protocol: "tcp", ports: "5201" }],
    }];
  }
  c.store = { path: `${dir}/knockgate.kv` };
  const json = JSON.stringify(c, null, 2);
  parseConfig(json, "bench config"); // fail here, not in the appliance's log
  const file = `${dir}/${source.slice(source.lastIndexOf("/") + 1).replace(/\.jsonc$/, "")}.json`;
  await Deno.writeTextFile(file, json);
  return file;
}

/** The deno process behind the lab's `sh -c exec ip netns exec ... deno` chain. */
export function resolveDenoPid(pid: number): number | null {
  for (let depth = 0; depth < 4; depth++) {
    try {
      const comm = Deno.readTextFileSync(`/proc/${pid}/comm`).trim();
      if (comm === "deno") return pid;
      const kids = Deno.readTextFileSync(`/proc/${pid}/task/${pid}/children`).trim().split(/\s+/);
      if (!kids[0]) return null;
      pid = Number(kids[0]);
    } catch {
      return null;
    }
  }
  return null;
}

/** One iperf3 TCP run from the client: the receiver's rate and the CPU over its window. */
async function iperfRun(s: Setup, target: string[], streams: number, seconds: number) {
  const t0 = Date.now();
  const r = await s.lab.tryExec("client", [
    "iperf3",
    ...target,
    "-t",
    String(seconds),
    "-P",
    String(streams),
    "-J",
  ]);
  const t1 = Date.now();
  const j = JSON.parse(r.stdout || "{}");
  if (r.code !== 0 || !j.end?.sum_received) {
    throw new Error(
      `iperf3 ${target.join(" ")} -P ${streams} via ${s.name} failed: ${
        j.error ?? r.stderr.trim()
      }`,
    );
  }
  // iperf3 starts within a few ms; skip its connect and the final exchange.
  return {
    gbps: round(j.end.sum_received.bits_per_second / 1e9, 3),
    cpu: s.cpu.window(t0 + 150, t1 - 50),
    retransmits: (j.end.sum_sent?.retransmits ?? NaN) as number,
  };
}

async function iperf(s: Setup, streams: number, seconds: number): Promise<number> {
  const { gbps, cpu: w, retransmits } = await iperfRun(
    s,
    ["-c", LAB.wan, "-p", "52202"],
    streams,
    seconds,
  );
  const key = streams === 1 ? "tcp1" : streams === 4 ? "tcp4" : "tcp8";
  s.runs[key].push(gbps);
  s.host[key].push(w.hostCores);
  if (s.pid !== null) {
    s.runs[streams === 1 ? "cpuTcp1" : streams === 4 ? "cpuTcp4" : "cpuTcp8"].push(w.procPct);
  }
  if (streams === 1) s.runs.tcp1Retransmits.push(retransmits);
  return gbps;
}

/** iperf3 over IPv6 to the server's address: through the pinhole or the inet forward. */
async function iperf6(s: Setup, streams: 1 | 4, seconds: number): Promise<number> {
  const { gbps, cpu: w, retransmits } = await iperfRun(
    s,
    ["-6", "-c", LAB6.server, "-p", "5201"],
    streams,
    seconds,
  );
  const key = streams === 1 ? "tcp1" : "tcp4";
  s.v6.runs[key].push(gbps);
  s.v6.host[key].push(w.hostCores);
  if (s.pid !== null) s.v6.runs[streams === 1 ? "cpuTcp1" : "cpuTcp4"].push(w.procPct);
  if (streams === 1) s.v6.runs.tcp1Retransmits.push(retransmits);
  return gbps;
}

async function udpCounter(s: Setup): Promise<number> {
  const out = await s.lab.exec("server", ["nft", "list", "counter", "inet", "kgbench", "udpflood"]);
  const m = out.match(/packets (\d+)/);
  if (!m) throw new Error(`Cannot read the server's UDP counter: ${out.trim()}`);
  return Number(m[1]);
}

async function udp(s: Setup, o: LabBenchOptions): Promise<number> {
  const before = await udpCounter(s);
  const r = await s.lab.tryExec("client", [
    Deno.execPath(),
    "run",
    "-A",
    `${here}udp_flood.ts`,
    "--host",
    LAB.wan,
    "--port",
    "52202",
    "--seconds",
    String(o.udpSeconds),
    "--size",
    String(o.udpSize),
  ]);
  if (r.code !== 0) throw new Error(`udp flood via ${s.name} failed: ${r.stderr.trim()}`);
  const f = JSON.parse(r.stdout) as UdpFloodResult;
  await new Promise((res) => setTimeout(res, 300)); // let queues drain
  const received = (await udpCounter(s)) - before;
  const rx = Math.round(received / f.seconds);
  const w = s.cpu.window(f.startedAt, f.endedAt);
  s.runs.udpRx.push(rx);
  s.runs.udpTx.push(f.pps);
  s.runs.udpLossPct.push(round((1 - received / Math.max(1, f.sent)) * 100, 1));
  s.host.udp.push(w.hostCores);
  if (s.pid !== null) s.runs.cpuUdp.push(w.procPct);
  return rx;
}

async function ping(s: Setup, count: number): Promise<number> {
  const r = await s.lab.tryExec("server", [
    "ping",
    "-c",
    String(count),
    "-i",
    "0.01",
    "-W",
    "1",
    "-n",
    LAB.client,
  ]);
  const m = r.stdout.match(/= ([\d.]+)\/([\d.]+)\/([\d.]+)\/([\d.]+) ms/);
  if (!m) throw new Error(`ping via ${s.name} failed: ${r.stdout.trim()} ${r.stderr.trim()}`);
  const times = [...r.stdout.matchAll(/time=([\d.]+) ms/g)].map((x) => Number(x[1]));
  s.runs.pingAvg.push(Number(m[2]));
  s.runs.pingMdev.push(Number(m[4]));
  s.runs.pingMedian.push(median(times));
  s.runs.pingMax.push(Number(m[3]));
  return Number(m[2]);
}

async function connect(s: Setup, samples: number): Promise<number> {
  const r = await s.lab.tryExec("client", [
    Deno.execPath(),
    "run",
    "-A",
    `${here}knock_latency.ts`,
    "--host",
    LAB.wan,
    "--port",
    "52201",
    "--no-knock",
    "--samples",
    String(samples),
    "--gap-ms",
    "20",
  ]);
  if (r.code !== 0) throw new Error(`connect probe via ${s.name} failed: ${r.stderr.trim()}`);
  const res = JSON.parse(r.stdout) as KnockLatencyResult;
  const ms = median(res.samples.map((x) => x.connectMs ?? NaN));
  s.runs.connectMs.push(round(ms, 3));
  return ms;
}

function newSetup(name: Setup["name"], lab: BenchLab, pid: number | null): Setup {
  return {
    name,
    lab,
    pid,
    cpu: new CpuSampler(pid),
    runs: {
      tcp1: [],
      tcp4: [],
      tcp8: [],
      tcp1Retransmits: [],
      udpRx: [],
      udpTx: [],
      udpLossPct: [],
      pingAvg: [],
      pingMdev: [],
      pingMedian: [],
      pingMax: [],
      connectMs: [],
      cpuTcp1: [],
      cpuTcp4: [],
      cpuTcp8: [],
      cpuUdp: [],
    },
    host: { tcp1: [], tcp4: [], tcp8: [], udp: [] },
    v6: {
      runs: { tcp1: [], tcp4: [], tcp1Retransmits: [], cpuTcp1: [], cpuTcp4: [] },
      host: { tcp1: [], tcp4: [] },
    },
  };
}

function summarise(s: Setup): SetupResult {
  const r = s.runs, app = s.pid !== null;
  return {
    tcp1Gbps: median(r.tcp1),
    tcp4Gbps: median(r.tcp4),
    tcp8Gbps: median(r.tcp8),
    udpRxPps: median(r.udpRx),
    udpTxPps: median(r.udpTx),
    pingAvgMs: median(r.pingAvg),
    pingMdevMs: median(r.pingMdev),
    pingMedianMs: median(r.pingMedian),
    pingMaxMs: median(r.pingMax),
    connectMs: median(r.connectMs),
    cpu: {
      tcp1: app ? median(r.cpuTcp1) : null,
      tcp4: app ? median(r.cpuTcp4) : null,
      tcp8: app ? median(r.cpuTcp8) : null,
      udp: app ? median(r.cpuUdp) : null,
    },
    hostCores: {
      tcp1: median(s.host.tcp1),
      tcp4: median(s.host.tcp4),
      tcp8: median(s.host.tcp8),
      udp: median(s.host.udp),
    },
    runs: r,
  };
}

function summarise6(s: Setup): Ipv6SetupResult {
  const r = s.v6.runs, app = s.pid !== null;
  return {
    tcp1Gbps: median(r.tcp1),
    tcp4Gbps: median(r.tcp4),
    cpu: { tcp1: app ? median(r.cpuTcp1) : null, tcp4: app ? median(r.cpuTcp4) : null },
    hostCores: { tcp1: median(s.v6.host.tcp1), tcp4: median(s.v6.host.tcp4) },
    runs: r,
  };
}

/** Starts iperf3 on the server's IPv6 address (a daemon; the lab's teardown kills it). */
async function serveIperf6(lab: BenchLab): Promise<void> {
  await lab.exec("server", ["iperf3", "-s", "-D", "-B", LAB6.server, "-p", "5201"]);
  const up = await waitFor(
    async () =>
      (await lab.exec("server", ["ss", "-Hltn", "sport = :5201"])).includes(`[${LAB6.server}]`),
    10000,
  );
  if (!up) throw new Error("iperf3 on the server's IPv6 address did not start within 10 s");
}

/** Runs `fn`, recording its failure in `errors` instead of throwing. */
async function attempt(errors: string[], fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    errors.push(e instanceof Error ? e.message : String(e));
  }
}

const ONE_UPLINK_ROLES = {
  client: "client",
  client2: "client2",
  server: "server",
  appliance: "appliance",
} as const;
// Client B is a router hop away from the WAN port: the SYN flood runs in the one-uplink lab only.
const TWO_UPLINK_ROLES = {
  client: "clienta",
  client2: "clientb",
  server: "server",
  appliance: "appliance",
} as const;

/** The kernel-NAT lab of `topology`: the appliance namespace forwards and NATs with nftables. */
async function startKernelLab(topology: BenchTopology, labs: BenchLab[]): Promise<BenchLab> {
  let kl: BenchLab;
  if (topology === "one-uplink") {
    kl = benchLab(await startLab({ appliance: false, ipv6: true }), ONE_UPLINK_ROLES);
    labs.push(kl);
    // The knock gate's kernel twin for the SYN flood: locked sources dropped before conntrack.
    await nftLoad(kl, "appliance", KERNEL_GATE);
    // Its filter (KERNEL_FORWARD6) is loaded only around the IPv6 transfers.
    await kl.exec("appliance", ["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
  } else {
    kl = benchLab(await startTwoUplinkLab({ appliance: false }), TWO_UPLINK_ROLES);
    labs.push(kl);
    // Without the appliance nothing routes by uplink; all of the bench's traffic is ISP A's.
    await kl.exec("appliance", ["ip", "route", "add", "default", "via", TWO_UPLINKS.gatewayA]);
  }
  await kl.exec("appliance", ["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
  await nftLoad(kl, "appliance", KERNEL_NAT);
  return kl;
}

/** The appliance lab of `topology` on `config`; the one-uplink lab also for the knock latency. */
async function startApplianceLab(
  topology: BenchTopology,
  config: string,
  labs: BenchLab[],
): Promise<{ lab: BenchLab; knockLab: RunningLab | null }> {
  if (topology === "one-uplink") {
    const al = await startLab({ config, ipv6: true });
    const lab = benchLab(al, ONE_UPLINK_ROLES);
    labs.push(lab);
    return { lab, knockLab: al };
  }
  const lab = benchLab(await startTwoUplinkLab({ config }), TWO_UPLINK_ROLES);
  labs.push(lab);
  return { lab, knockLab: null };
}

/**
 * Brings both labs of `topology` up (kernel NAT and appliance), measures, and
 * always takes them down. The knock latency is measured in the one-uplink lab only.
 */
export async function runLabBench(
  o: LabBenchOptions,
  topology: BenchTopology = "one-uplink",
): Promise<LabBenchResult> {
  const T = TWO_UPLINKS;
  // The measurements address client 1, the WAN address and the server by the one-uplink
  // lab's names; the two-uplink lab puts client A, ISP A's primary address and the first
  // LAN server at the same addresses.
  if (T.clientA !== LAB.client || T.wanA !== LAB.wan || T.server !== LAB.server) {
    throw new Error("Cannot bench two uplinks: the labs' measured addresses differ");
  }
  const errors: string[] = [];
  const dir = await Deno.makeTempDir({ prefix: "kgbench-" });
  const labs: BenchLab[] = [];
  const setups: Setup[] = [];
  let knock: KnockLatencySummary | null = null;
  // Ctrl-C must not leave namespaces behind: take the labs down, then exit.
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) return;
    interrupted = true;
    o.log("lab: interrupted, taking the labs down");
    Promise.all(labs.map((l) => l.down())).finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const what = topology === "one-uplink" ? "" : " (two uplinks)";
  try {
    const config = await benchConfig(
      dir,
      topology === "one-uplink" ? "config/appliance.jsonc" : "config/lab-two-uplinks.jsonc",
      o.queues,
      topology === "one-uplink",
    );
    o.log(`lab: starting the kernel-NAT lab${what}`);
    const kl = await startKernelLab(topology, labs);
    await nftLoad(kl, "server", SERVER_COUNTER);
    o.log(`lab: starting the appliance lab${what}`);
    const { lab: al, knockLab } = await startApplianceLab(topology, config, labs);
    await nftLoad(al, "server", SERVER_COUNTER);
    const v6 = topology === "one-uplink";
    if (v6) { for (const l of [kl, al]) await serveIperf6(l); }
    const pid = al.appliance ? resolveDenoPid(al.appliance.pid) : null;
    if (pid === null) errors.push("appliance pid not found: no CPU figures");
    setups.push(newSetup("kernel", kl, null), newSetup("appliance", al, pid));
    for (const s of setups) s.cpu.start();
    for (const s of setups) {
      o.log(`lab: warm-up via ${s.name}${what}`);
      await attempt(errors, () => iperf(s, 1, 1).then(() => s.runs.tcp1.length = 0));
      s.runs.tcp1Retransmits.length = s.runs.cpuTcp1.length = s.host.tcp1.length = 0;
    }
    /** Runs `transfers` with the kernel lab's IPv6 filter loaded, then takes it out. */
    const filtered6 = async (transfers: () => Promise<void>) => {
      await nftLoad(kl, "appliance", KERNEL_FORWARD6);
      try {
        await transfers();
      } finally {
        await kl.exec("appliance", ["nft", "delete", "table", "inet", "kgbench6"]);
      }
    };
    if (v6) {
      await attempt(errors, () =>
        filtered6(async () => {
          for (const s of setups) {
            o.log(`lab: IPv6 warm-up via ${s.name}`);
            await attempt(errors, () => iperf6(s, 1, 1));
            for (const xs of [...Object.values(s.v6.runs), ...Object.values(s.v6.host)]) {
              xs.length = 0;
            }
          }
        }));
    }
    for (let rep = 0; rep < o.reps; rep++) {
      for (const s of setups) {
        o.log(`lab: rep ${rep + 1}/${o.reps} ${s.name}${what}: tcp 1 stream`);
        await attempt(errors, () => iperf(s, 1, o.seconds));
      }
      for (const s of setups) {
        o.log(`lab: rep ${rep + 1}/${o.reps} ${s.name}${what}: tcp 4 streams`);
        await attempt(errors, () => iperf(s, 4, o.seconds));
      }
      for (const s of setups) {
        o.log(`lab: rep ${rep + 1}/${o.reps} ${s.name}${what}: tcp 8 streams`);
        await attempt(errors, () => iperf(s, 8, o.seconds));
      }
      if (v6) {
        await attempt(errors, () =>
          filtered6(async () => {
            for (const streams of [1, 4] as const) {
              for (const s of setups) {
                const what6 = streams === 1 ? "1 stream" : "4 streams";
                o.log(`lab: rep ${rep + 1}/${o.reps} ${s.name}: IPv6 tcp ${what6}`);
                await attempt(errors, () => iperf6(s, streams, o.seconds));
              }
            }
          }));
      }
      for (const s of setups) {
        o.log(`lab: rep ${rep + 1}/${o.reps} ${s.name}${what}: udp ${o.udpSize} B flood`);
        await attempt(errors, () => udp(s, o));
      }
      for (const s of setups) {
        o.log(`lab: rep ${rep + 1}/${o.reps} ${s.name}${what}: ping`);
        await attempt(errors, () => ping(s, o.pingCount));
      }
      for (const s of setups) {
        o.log(`lab: rep ${rep + 1}/${o.reps} ${s.name}${what}: tcp connect`);
        await attempt(errors, () => connect(s, o.connectSamples));
      }
    }
    let ceiling: CeilingResult | null = null;
    if (topology === "one-uplink" && o.ceiling) {
      ceiling = await runCeiling(setups, { ...o.ceiling, reps: o.reps, log: o.log }, errors);
    }
    if (knockLab) {
      o.log("lab: knock latency");
      await attempt(errors, async () => knock = await runKnockLatency(knockLab, o.knockSamples));
    }
    if (errors.length > 0) {
      const log = await Deno.readTextFile(al.logFile).catch(() => "");
      errors.push(`appliance log tail:\n${log.split("\n").slice(-30).join("\n")}`);
    }
    const { log: _log, ...options } = o;
    return {
      topology,
      options,
      appliancePid: pid,
      kernel: summarise(setups[0]),
      appliance: summarise(setups[1]),
      knock,
      ipv6: v6 ? { kernel: summarise6(setups[0]), appliance: summarise6(setups[1]) } : null,
      ceiling,
      errors,
    };
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    for (const s of setups) s.cpu.stop();
    for (const l of labs) {
      await l.down();
      await Deno.remove(l.logFile).catch(() => {}); // its tail is in `errors` when it mattered
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
