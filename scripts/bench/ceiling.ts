/**
 * The bench sections that look for the appliance's ceiling (issue 11), each
 * run on the kernel-NAT lab and the appliance lab alike, alternating:
 *
 * - UDP at the ceiling: several paced sendmmsg senders (udp_flood.ts, one
 *   socket and so one flow each) step the offered rate up until the
 *   appliance loses more than 0.1%; the kernel goes on stepping until it
 *   loses too or the senders cannot offer more. The figure of each side is
 *   the received rate at its highest step with 0 loss at and below it.
 * - `UDP_SEGMENT` senders: one unpaced sender whose every message is 64 or 48
 *   datagrams the kernel cuts (QUIC's GSO sends), counted in datagrams.
 * - RTT under a SYN flood: ping from the server to client 1 through
 *   masquerade (an established flow), once alone and once while client 2
 *   floods 198.51.100.1:52201 with SYNs from locked, spoofed 198.18.0.0/15
 *   sources (syn_flood.ts); the kernel lab drops the same sources in its
 *   raw prerouting hook (a gate without knocks).
 *
 * Every datagram count comes from the server's nftables counter, which sees
 * a GSO super-packet as one packet of one IP+UDP header and many payloads:
 * datagrams = (bytes - 28 x packets) / payload.
 */
import { median, percentile, round } from "./stats.ts";
import type { CpuSampler } from "./stats.ts";
import type { UdpFloodResult } from "./udp_flood.ts";
import type { SynFloodResult } from "./syn_flood.ts";
import { LAB } from "../lab/topology.ts";
import { formatIpv4, parseIpv4 } from "../../src/packet/address.ts";

const here = new URL(".", import.meta.url).pathname;

/** A lab side as these sections need it (lab_bench.ts's `Setup` is one). */
export interface CeilingSide {
  name: "kernel" | "appliance";
  lab: {
    exec(role: "client" | "client2" | "server" | "appliance", argv: string[]): Promise<string>;
    tryExec(
      role: "client" | "client2" | "server" | "appliance",
      argv: string[],
    ): Promise<{ code: number; stdout: string; stderr: string }>;
  };
  pid: number | null;
  cpu: CpuSampler;
}

/** How the ceiling sections run. */
export interface CeilingOptions {
  /** Paced UDP senders, one process each. */
  udpSenders: number;
  /** UDP payload bytes of the stepped flood. */
  udpSize: number;
  /** Seconds per step. */
  stepSeconds: number;
  /** Offered rates (total datagrams a second), lowest first. */
  steps: number[];
  /** Seconds per `UDP_SEGMENT` run. */
  gsoSeconds: number;
  /** Repetitions of the `UDP_SEGMENT` runs and of the flood RTT runs. */
  reps: number;
  /** SYN flood rate, packets a second, summed over the flood's senders. */
  floodPps: number;
  /** SYN flood sender processes, each with its own 16,384 sources. */
  floodSenders: number;
  /** Seconds of pings per RTT run (one ping every 5 ms). */
  floodSeconds: number;
  log: (line: string) => void;
}

/** The default offered rates: 50 kpps up by x1.4 to about 1.5 Mpps. */
export const DEFAULT_STEPS = Array.from({ length: 11 }, (_, i) => Math.round(50_000 * 1.4 ** i));

/** Loss above which a side's stepping stops, %. */
const LOSS_STOP_PCT = 0.1;

/** One side at one offered rate. */
export interface UdpStepSide {
  txPps: number;
  rxPps: number;
  lossPct: number;
  /** Appliance process CPU, % of one core (null for the kernel). */
  cpuPct: number | null;
  hostCores: number;
  /** Packets the kernel dropped at the TUN (kn0 tx dropped): the appliance read too slowly. */
  tunDrops: number | null;
}

/** One offered rate: both sides' figures (null where that side had stopped). */
export interface UdpStep {
  offeredPps: number;
  kernel: UdpStepSide | null;
  appliance: UdpStepSide | null;
}

/** What the stepped flood found, per side. */
export interface UdpCeilingSide {
  /** Received rate at the highest step with 0 loss at and below it; null if the first lost. */
  zeroLossRxPps: number | null;
  /** Its offered rate. */
  zeroLossOfferedPps: number | null;
  /**
   * True when the side lost nothing at any step it ran: its senders fell short of the offer or
   * the steps ran out, so its ceiling is at least `zeroLossRxPps`.
   */
  lowerBound: boolean;
}

/** The stepped UDP flood. */
export interface UdpCeilingResult {
  senders: number;
  payloadBytes: number;
  stepSeconds: number;
  steps: UdpStep[];
  kernel: UdpCeilingSide;
  appliance: UdpCeilingSide;
}

/** One side of the `UDP_SEGMENT` runs (medians over reps, and every rep). */
export interface GsoSide {
  txPps: number;
  rxPps: number;
  lossPct: number;
  cpuPct: number | null;
  runs: { tx: number[]; rx: number[]; lossPct: number[]; cpu: number[]; tunDrops: number[] };
}

/** One `UDP_SEGMENT` shape: `segments` datagrams of `payloadBytes` per message. */
export interface GsoResult {
  payloadBytes: number;
  segments: number;
  seconds: number;
  kernel: GsoSide;
  appliance: GsoSide;
}

/** One side's RTT alone and under the flood. */
export interface FloodRttSide {
  /** Per-packet ping RTT, ms, pooled over reps. */
  quiet: { medianMs: number; p99Ms: number; samples: number; lost: number };
  flood: { medianMs: number; p99Ms: number; samples: number; lost: number };
  /** p99 under flood / p99 alone. */
  p99Ratio: number;
  /** The flood's achieved rates, one per rep. */
  floodPps: number[];
  /** Appliance CPU during the flooded pings, % of one core. */
  cpuPct: number | null;
  /** Host cores busy (of all, every process and the kernel) during the flooded pings, median. */
  hostCores?: number | null;
  /** Packets dropped at the appliance's TUN per flooded rep (null for the kernel). */
  tunDrops: (number | null)[];
}

/** RTT under the SYN flood. */
export interface FloodRttResult {
  offeredPps: number;
  /** Flood sender processes. */
  senders: number;
  seconds: number;
  reps: number;
  kernel: FloodRttSide;
  appliance: FloodRttSide;
}

/** Everything the ceiling sections measured. */
export interface CeilingResult {
  udp: UdpCeilingResult | null;
  gso: GsoResult[];
  floodRtt: FloodRttResult | null;
}

/** The nftables rules the kernel lab adds: the gate's drop of locked sources, before conntrack. */
export const KERNEL_GATE = `
table ip kgbenchgate {
  set unlocked { type ipv4_addr; elements = { ${LAB.client} } }
  chain raw {
    type filter hook prerouting priority raw; policy accept;
    iifname "wan0" ip daddr ${LAB.wan} tcp dport 52201 ip saddr != @unlocked drop
  }
}
`;

/** The flood's spoofed sources: 16,384 a sender from 198.18.0.0 (RFC 2544's benchmarking /15). */
const FLOOD_FIRST = parseIpv4("198.18.0.0")!, FLOOD_SOURCES = 16384;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Datagrams and packets of the server's flood counter. */
async function serverCount(s: CeilingSide): Promise<{ packets: number; bytes: number }> {
  const out = await s.lab.exec("server", ["nft", "list", "counter", "inet", "kgbench", "udpflood"]);
  const m = out.match(/packets (\d+) bytes (\d+)/);
  if (!m) throw new Error(`Cannot read the server's UDP counter: ${out.trim()}`);
  return { packets: Number(m[1]), bytes: Number(m[2]) };
}

/** The appliance's TUN drops (kn0 tx dropped); null for the kernel lab, which has no TUN. */
async function tunDrops(s: CeilingSide): Promise<number | null> {
  if (s.pid === null) return null;
  const r = await s.lab.tryExec("appliance", ["ip", "-j", "-s", "link", "show", "dev", "kn0"]);
  if (r.code !== 0) return null;
  const j = JSON.parse(r.stdout) as { stats64?: { tx?: { dropped?: number } } }[];
  return j[0]?.stats64?.tx?.dropped ?? null;
}

const delta = (a: number | null, b: number | null) => (a === null || b === null ? null : b - a);

/** Datagrams between two readings of a counter that sees GSO super-packets whole. */
export function datagrams(
  a: { packets: number; bytes: number },
  b: { packets: number; bytes: number },
  payload: number,
): number {
  const packets = b.packets - a.packets, bytes = b.bytes - a.bytes;
  return Math.round((bytes - 28 * packets) / payload);
}

/** Runs `senders` udp_flood.ts processes in the client namespace, started together. */
async function floodUdp(
  s: CeilingSide,
  senders: number,
  args: string[],
): Promise<UdpFloodResult[]> {
  const startAt = Date.now() + 1000 + 150 * senders; // every Deno is up by then
  const runs = Array.from({ length: senders }, () =>
    s.lab.tryExec("client", [
      Deno.execPath(),
      "run",
      "-A",
      `${here}udp_flood.ts`,
      "--host",
      LAB.wan,
      "--port",
      "52202",
      "--start-at",
      String(startAt),
      ...args,
    ]));
  const out = await Promise.all(runs);
  const bad = out.find((r) => r.code !== 0);
  if (bad) throw new Error(`udp sender via ${s.name} failed: ${bad.stderr.trim()}`);
  return out.map((r) => JSON.parse(r.stdout) as UdpFloodResult);
}

/** One flood of `args` with the server counting; the side's figures. */
async function measureUdp(
  s: CeilingSide,
  senders: number,
  payload: number,
  args: string[],
): Promise<UdpStepSide> {
  const before = await serverCount(s), tunBefore = await tunDrops(s);
  const f = await floodUdp(s, senders, ["--size", String(payload), ...args]);
  await sleep(300); // let queues drain
  const received = datagrams(before, await serverCount(s), payload);
  const tun = delta(tunBefore, await tunDrops(s));
  const sent = f.reduce((a, x) => a + x.sent, 0);
  const seconds = f.reduce((a, x) => a + x.seconds, 0) / f.length;
  const from = Math.min(...f.map((x) => x.startedAt)), to = Math.max(...f.map((x) => x.endedAt));
  const w = s.cpu.window(from, to);
  return {
    txPps: Math.round(sent / seconds),
    rxPps: Math.round(received / seconds),
    lossPct: round(Math.max(0, 1 - received / Math.max(1, sent)) * 100, 3),
    cpuPct: s.pid === null ? null : w.procPct,
    hostCores: w.hostCores,
    tunDrops: tun,
  };
}

/** A side's ceiling: its highest step with 0 loss there and at every step below. */
export function zeroLossCeiling(steps: UdpStep[], side: "kernel" | "appliance"): UdpCeilingSide {
  let best: UdpStep | null = null, lost = false;
  for (const st of steps) {
    const r = st[side];
    if (!r) break;
    if (r.lossPct > 0) {
      lost = true;
      break;
    }
    best = st;
  }
  return {
    zeroLossRxPps: best?.[side]?.rxPps ?? null,
    zeroLossOfferedPps: best?.offeredPps ?? null,
    lowerBound: best !== null && !lost,
  };
}

/**
 * Steps the offered UDP rate up on both sides; a side stops once it loses more
 * than 0.1% or its senders fall short of the offer (more would not be offered).
 */
export async function udpCeiling(
  sides: CeilingSide[],
  o: CeilingOptions,
): Promise<UdpCeilingResult> {
  const steps: UdpStep[] = [];
  const going = new Set(sides.map((s) => s.name));
  for (const offered of o.steps) {
    if (going.size === 0) break;
    const step: UdpStep = { offeredPps: offered, kernel: null, appliance: null };
    for (const s of sides) {
      if (!going.has(s.name)) continue;
      o.log(`ceiling: udp ${o.udpSize} B, ${o.udpSenders} senders, ${offered} pps via ${s.name}`);
      const r = await measureUdp(s, o.udpSenders, o.udpSize, [
        "--seconds",
        String(o.stepSeconds),
        "--pps",
        String(Math.ceil(offered / o.udpSenders)),
      ]);
      step[s.name] = r;
      if (r.lossPct > LOSS_STOP_PCT || r.txPps < 0.9 * offered) going.delete(s.name);
    }
    steps.push(step);
  }
  return {
    senders: o.udpSenders,
    payloadBytes: o.udpSize,
    stepSeconds: o.stepSeconds,
    steps,
    kernel: zeroLossCeiling(steps, "kernel"),
    appliance: zeroLossCeiling(steps, "appliance"),
  };
}

/** `UDP_SEGMENT` runs: one unpaced sender, `segments` datagrams of `payload` per message. */
export async function gsoRun(
  sides: CeilingSide[],
  o: CeilingOptions,
  payload: number,
  segments: number,
): Promise<GsoResult> {
  const runs = new Map(
    sides.map((s): [string, GsoSide["runs"]] => [
      s.name,
      { tx: [], rx: [], lossPct: [], cpu: [], tunDrops: [] },
    ]),
  );
  for (let rep = 0; rep < o.reps; rep++) {
    for (const s of sides) {
      o.log(`ceiling: UDP_SEGMENT ${segments} x ${payload} B, rep ${rep + 1} via ${s.name}`);
      const r = await measureUdp(s, 1, payload, [
        "--seconds",
        String(o.gsoSeconds),
        "--gso",
        String(segments),
      ]);
      const x = runs.get(s.name)!;
      x.tx.push(r.txPps);
      x.rx.push(r.rxPps);
      x.lossPct.push(r.lossPct);
      if (r.cpuPct !== null) x.cpu.push(r.cpuPct);
      if (r.tunDrops !== null) x.tunDrops.push(r.tunDrops);
    }
  }
  const side = (name: string): GsoSide => {
    const x = runs.get(name) ?? { tx: [], rx: [], lossPct: [], cpu: [], tunDrops: [] };
    return {
      txPps: median(x.tx),
      rxPps: median(x.rx),
      lossPct: median(x.lossPct),
      cpuPct: x.cpu.length ? median(x.cpu) : null,
      runs: x,
    };
  };
  return {
    payloadBytes: payload,
    segments,
    seconds: o.gsoSeconds,
    kernel: side("kernel"),
    appliance: side("appliance"),
  };
}

/** Per-packet RTTs (ms) of `count` pings 5 ms apart from the server to client 1, and how many were lost. */
async function pingTimes(
  s: CeilingSide,
  count: number,
): Promise<{ times: number[]; lost: number }> {
  const r = await s.lab.tryExec("server", [
    "ping",
    "-c",
    String(count),
    "-i",
    "0.005",
    "-W",
    "1",
    "-n",
    LAB.client,
  ]);
  const times = [...r.stdout.matchAll(/time=([\d.]+) ms/g)].map((x) => Number(x[1]));
  if (times.length === 0) {
    throw new Error(`ping via ${s.name} failed: ${r.stdout.trim()} ${r.stderr.trim()}`);
  }
  return { times, lost: count - times.length };
}

async function wanMac(s: CeilingSide): Promise<string> {
  const out = await s.lab.exec("appliance", ["ip", "-j", "link", "show", "dev", "wan0"]);
  return (JSON.parse(out) as { address: string }[])[0].address;
}

/** One side's pooled pings, alone and flooded, and the flood's rates and appliance CPU. */
interface RttRuns {
  quiet: number[];
  quietLost: number;
  flood: number[];
  floodLost: number;
  pps: number[];
  cpu: number[];
  hostCores: number[];
  tunDrops: (number | null)[];
}

/** The 99th percentile of RTTs with `lost` pings counted as endless: Infinity past 1% lost. */
function p99(times: number[], lost: number): number {
  return percentile([...times, ...Array<number>(lost).fill(Infinity)], 99);
}

/** Ping alone, then ping while client 2 floods locked SYNs; `reps` times per side, pooled. */
export async function floodRtt(sides: CeilingSide[], o: CeilingOptions): Promise<FloodRttResult> {
  const count = Math.round(o.floodSeconds * 200);
  const acc = new Map(sides.map((s): [string, RttRuns] => [s.name, {
    quiet: [],
    quietLost: 0,
    flood: [],
    floodLost: 0,
    pps: [],
    cpu: [],
    hostCores: [],
    tunDrops: [],
  }]));
  const macs = new Map<string, string>();
  for (const s of sides) {
    macs.set(s.name, await wanMac(s));
    // On the Internet the spoofed range is reachable by the default route; without a route
    // back, wan0's strict reverse-path filter would drop the flood before the appliance sees it.
    await s.lab.exec("appliance", ["ip", "route", "replace", "198.18.0.0/15", "dev", "wan0"]);
  }
  for (let rep = 0; rep < o.reps; rep++) {
    for (const s of sides) {
      const a = acc.get(s.name)!;
      o.log(`ceiling: ping alone, rep ${rep + 1} via ${s.name}`);
      const q = await pingTimes(s, count);
      a.quiet.push(...q.times);
      a.quietLost += q.lost;
      o.log(`ceiling: ping under a ${o.floodPps} pps SYN flood, rep ${rep + 1} via ${s.name}`);
      const tunBefore = await tunDrops(s);
      const startAt = Date.now() + 1500;
      const flood = Promise.all(
        Array.from({ length: o.floodSenders }, (_, i) =>
          s.lab.tryExec("client2", [
            Deno.execPath(),
            "run",
            "-A",
            `${here}syn_flood.ts`,
            "--iface",
            "eth0",
            "--mac",
            macs.get(s.name)!,
            "--dst",
            LAB.wan,
            "--port",
            "52201",
            "--pps",
            String(Math.ceil(o.floodPps / o.floodSenders)),
            "--first-source",
            formatIpv4((FLOOD_FIRST + i * FLOOD_SOURCES) >>> 0),
            "--sources",
            String(FLOOD_SOURCES),
            "--seconds",
            String(o.floodSeconds + 1.5),
            "--start-at",
            String(startAt),
          ])),
      );
      await sleep(startAt + 500 - Date.now());
      const t0 = Date.now();
      const f = await pingTimes(s, count);
      const t1 = Date.now();
      const fr = await flood;
      const bad = fr.find((r) => r.code !== 0);
      if (bad) throw new Error(`SYN flood via ${s.name} failed: ${bad.stderr.trim()}`);
      const res = fr.map((r) => JSON.parse(r.stdout) as SynFloodResult);
      a.flood.push(...f.times);
      a.floodLost += f.lost;
      a.pps.push(res.reduce((sum, x) => sum + x.pps, 0));
      a.tunDrops.push(delta(tunBefore, await tunDrops(s)));
      const w = s.cpu.window(t0, t1);
      if (s.pid !== null) a.cpu.push(w.procPct);
      a.hostCores.push(w.hostCores);
      await sleep(300);
    }
  }
  const side = (name: string): FloodRttSide => {
    const a = acc.get(name)!;
    const quietP99 = p99(a.quiet, a.quietLost), floodP99 = p99(a.flood, a.floodLost);
    return {
      quiet: {
        medianMs: median(a.quiet),
        p99Ms: quietP99,
        samples: a.quiet.length,
        lost: a.quietLost,
      },
      flood: {
        medianMs: median(a.flood),
        p99Ms: floodP99,
        samples: a.flood.length,
        lost: a.floodLost,
      },
      p99Ratio: round(floodP99 / quietP99, 2),
      floodPps: a.pps,
      cpuPct: a.cpu.length ? median(a.cpu) : null,
      hostCores: a.hostCores.length ? median(a.hostCores) : null,
      tunDrops: a.tunDrops,
    };
  };
  return {
    offeredPps: o.floodPps,
    senders: o.floodSenders,
    seconds: o.floodSeconds,
    reps: o.reps,
    kernel: side("kernel"),
    appliance: side("appliance"),
  };
}

/** Runs every ceiling section, recording failures in `errors` and going on. */
export async function runCeiling(
  sides: CeilingSide[],
  o: CeilingOptions,
  errors: string[],
): Promise<CeilingResult> {
  const result: CeilingResult = { udp: null, gso: [], floodRtt: null };
  const attempt = async (fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (e) {
      errors.push(`ceiling: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  await attempt(async () => {
    result.udp = await udpCeiling(sides, o);
  });
  // QUIC-style: small datagrams 64 a send, and 1200-byte ones as many as fit in one message.
  for (const [payload, segments] of [[64, 64], [1200, 48]]) {
    await attempt(async () => {
      result.gso.push(await gsoRun(sides, o, payload, segments));
    });
  }
  await attempt(async () => {
    result.floodRtt = await floodRtt(sides, o);
  });
  return result;
}
