/**
 * Renders a benchmark run as Markdown: the targets of issue 11 with their
 * ratios and verdicts, kernel against appliance (with one uplink, IPv6
 * beside IPv4, then with two, beside the one-uplink ratios), the ceiling sections (stepped UDP,
 * `UDP_SEGMENT` senders, RTT under a SYN flood), then the in-memory figures
 * (pipeline fast path, conntrack, knock engine) and the conditions.
 */
import type { ConntrackBenchResult } from "./conntrack_bench.ts";
import type { KnockBenchResult } from "./knock_bench.ts";
import type { Ipv6SetupResult, LabBenchResult, SetupResult } from "./lab_bench.ts";
import type { PipelineBenchResult } from "./pipeline_bench.ts";
import type { CeilingResult, GsoResult, UdpCeilingSide, UdpStepSide } from "./ceiling.ts";
import { round } from "./stats.ts";

/** Everything one `deno task bench` run produced. */
export interface BenchRun {
  startedAt: string;
  finishedAt: string;
  mode: "full" | "quick";
  environment: {
    commit: string;
    kernel: string;
    deno: string;
    cpus: number;
    loadAvgStart: string;
    loadAvgEnd: string;
  };
  lab: LabBenchResult | null;
  /** The same lab measurements with two uplinks configured (the two-ISP lab). */
  labTwoUplinks: LabBenchResult | null;
  pipeline: PipelineBenchResult | null;
  conntrack: ConntrackBenchResult[] | null;
  knock: KnockBenchResult | null;
  errors: string[];
}

/** Issue 11's targets: ratios against the kernel (or the stated baseline) in one run. */
export const TARGETS = {
  tcp1Ratio: 0.9,
  tcp4Ratio: 0.8,
  tcp8Ratio: 0.8,
  /** Small-packet UDP: highest rate with 0 loss, against the kernel's. */
  udpCeilingRatio: 0.5,
  /** `UDP_SEGMENT` senders' received datagram rate, against the kernel's. */
  gsoRatio: 0.8,
  /** Added per-packet median ping RTT, us. */
  addedRttMedianUs: 20,
  /** p99 RTT under the SYN flood over the unflooded p99. */
  floodP99Ratio: 2,
  /** Bytes for a million flows (80 MB, taken as 10^6 bytes: the stricter reading). */
  flows1MBytes: 80e6,
  /** 1M-flow hit lookup over the 10k-flow one. */
  lookup1MRatio: 1.3,
  /** Admitted-after-knock SYN transit over an allow-listed SYN's. */
  admittedSynRatio: 1.2,
} as const;

const MB = 1e6;

function fmt(x: number | null | undefined, digits = 2): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return "n/a";
  return String(round(x, digits));
}

function verdict(ok: boolean | null): string {
  return ok === null ? "n/a" : ok ? "**met**" : "**not met**";
}

function ratio(a: number, b: number): string {
  return Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${fmt(a / b)}x` : "n/a";
}

function finite(...xs: number[]): boolean {
  return xs.every((x) => Number.isFinite(x));
}

/** A table row: both sides, their ratio and its verdict against `target` (a ratio). */
function ratioRow(name: string, k: number, a: number, target: number): string {
  return `| ${name} | ${fmt(k)} | ${fmt(a)} | ${ratio(a, k)} | >= ${target}x kernel | ${
    verdict(finite(a, k) && k > 0 ? a / k >= target : null)
  } |`;
}

/** The IPv6 rows of the lab table: TCP through the inet forward and the pinhole, held to IPv4's targets. */
function ipv6Rows(v6: LabBenchResult["ipv6"]): string[] {
  if (!v6) return [];
  const k = v6.kernel, a = v6.appliance;
  return [
    ratioRow("TCP 1 stream over IPv6, Gbit/s", k.tcp1Gbps, a.tcp1Gbps, TARGETS.tcp1Ratio),
    ratioRow("TCP 4 streams over IPv6, Gbit/s", k.tcp4Gbps, a.tcp4Gbps, TARGETS.tcp4Ratio),
  ];
}

/** The IPv6 CPU rows of the lab table. */
function ipv6CpuRows(v6: LabBenchResult["ipv6"]): string[] {
  if (!v6) return [];
  const k = v6.kernel, a = v6.appliance;
  return [
    `| appliance CPU over IPv6, % of one core (TCP 1 / TCP 4) | | ${fmt(a.cpu.tcp1, 0)} / ${
      fmt(a.cpu.tcp4, 0)
    } | | | |`,
    `| host cores busy of 2 over IPv6 (TCP 1 / TCP 4) | ${fmt(k.hostCores.tcp1)} / ${
      fmt(k.hostCores.tcp4)
    } | ${fmt(a.hostCores.tcp1)} / ${fmt(a.hostCores.tcp4)} | | | |`,
  ];
}

function labTable(
  k: SetupResult,
  a: SetupResult,
  udpSize: number,
  v6: LabBenchResult["ipv6"] = null,
): string[] {
  const addedUs = (a.pingAvgMs - k.pingAvgMs) * 1000;
  const addedMedUs = (a.pingMedianMs - k.pingMedianMs) * 1000;
  const rows = [
    "| measurement | kernel DNAT | appliance | appliance / kernel | target | verdict |",
    "| --- | ---: | ---: | ---: | --- | --- |",
    ratioRow("TCP 1 stream, Gbit/s", k.tcp1Gbps, a.tcp1Gbps, TARGETS.tcp1Ratio),
    ratioRow("TCP 4 streams, Gbit/s", k.tcp4Gbps, a.tcp4Gbps, TARGETS.tcp4Ratio),
    ratioRow("TCP 8 streams, Gbit/s", k.tcp8Gbps, a.tcp8Gbps, TARGETS.tcp8Ratio),
    ...ipv6Rows(v6),
    `| UDP ${udpSize} B payload, one unpaced sender, received kpps | ${
      fmt(k.udpRxPps / 1000, 1)
    } | ${fmt(a.udpRxPps / 1000, 1)} | ${ratio(a.udpRxPps, k.udpRxPps)} | | |`,
    `| UDP sender rate, kpps | ${fmt(k.udpTxPps / 1000, 1)} | ${fmt(a.udpTxPps / 1000, 1)} | | | |`,
    `| ping RTT avg, ms | ${fmt(k.pingAvgMs, 3)} | ${fmt(a.pingAvgMs, 3)} | +${
      fmt(addedUs, 0)
    } us | | |`,
    `| ping RTT per-packet median, ms | ${fmt(k.pingMedianMs, 3)} | ${fmt(a.pingMedianMs, 3)} | +${
      fmt(addedMedUs, 0)
    } us | added <= ${TARGETS.addedRttMedianUs} us | ${
      verdict(finite(addedMedUs) ? addedMedUs <= TARGETS.addedRttMedianUs : null)
    } |`,
    `| ping RTT mdev / max, ms | ${fmt(k.pingMdevMs, 3)} / ${fmt(k.pingMaxMs, 3)} | ${
      fmt(a.pingMdevMs, 3)
    } / ${fmt(a.pingMaxMs, 3)} | | | |`,
    `| TCP connect time, ms | ${fmt(k.connectMs, 3)} | ${fmt(a.connectMs, 3)} | +${
      fmt((a.connectMs - k.connectMs) * 1000, 0)
    } us | | |`,
    `| appliance CPU, % of one core (TCP 1 / TCP 4 / TCP 8 / UDP) | | ${fmt(a.cpu.tcp1, 0)} / ${
      fmt(a.cpu.tcp4, 0)
    } / ${fmt(a.cpu.tcp8, 0)} / ${fmt(a.cpu.udp, 0)} | | | |`,
    `| host cores busy of 2 (TCP 1 / TCP 4 / TCP 8 / UDP) | ${fmt(k.hostCores.tcp1)} / ${
      fmt(k.hostCores.tcp4)
    } / ${fmt(k.hostCores.tcp8)} / ${fmt(k.hostCores.udp)} | ${fmt(a.hostCores.tcp1)} / ${
      fmt(a.hostCores.tcp4)
    } / ${fmt(a.hostCores.tcp8)} / ${fmt(a.hostCores.udp)} | | | |`,
    ...ipv6CpuRows(v6),
  ];
  return rows;
}

function runsSection(lab: LabBenchResult): string[] {
  const line = (name: string, k: number[], a: number[]) =>
    `| ${name} | ${k.map((x) => fmt(x, 3)).join(", ")} | ${a.map((x) => fmt(x, 3)).join(", ")} |`;
  const k = lab.kernel.runs, a = lab.appliance.runs;
  // Reps alternate kernel and appliance, so the ratio within a rep shares its background load.
  const paired = (x: number[], y: number[]) =>
    y.map((v, i) => v / x[i]).map((r) => `${fmt(r)}x`).join(", ");
  return [
    "| per rep | kernel | appliance |",
    "| --- | --- | --- |",
    line("TCP 1 stream, Gbit/s", k.tcp1, a.tcp1),
    `| TCP 1 stream, appliance / kernel within the rep | | ${paired(k.tcp1, a.tcp1)} |`,
    line("TCP 1 stream retransmits", k.tcp1Retransmits, a.tcp1Retransmits),
    line("TCP 4 streams, Gbit/s", k.tcp4, a.tcp4),
    line("TCP 8 streams, Gbit/s", k.tcp8, a.tcp8),
    ...ipv6Runs(lab.ipv6),
    line("UDP received, kpps", k.udpRx.map((x) => x / 1000), a.udpRx.map((x) => x / 1000)),
    line("UDP sent, kpps", k.udpTx.map((x) => x / 1000), a.udpTx.map((x) => x / 1000)),
    line("UDP loss, %", k.udpLossPct, a.udpLossPct),
    line("ping avg, ms", k.pingAvg, a.pingAvg),
    line("ping median, ms", k.pingMedian, a.pingMedian),
    line("TCP connect, ms", k.connectMs, a.connectMs),
    line("appliance CPU % (TCP 1)", [], a.cpuTcp1),
    line("appliance CPU % (TCP 4)", [], a.cpuTcp4),
    line("appliance CPU % (TCP 8)", [], a.cpuTcp8),
    line("appliance CPU % (UDP)", [], a.cpuUdp),
    ...(lab.ipv6
      ? [line("appliance CPU % (IPv6 TCP 1)", [], lab.ipv6.appliance.runs.cpuTcp1)]
      : []),
    ...(lab.ipv6
      ? [line("appliance CPU % (IPv6 TCP 4)", [], lab.ipv6.appliance.runs.cpuTcp4)]
      : []),
  ];
}

/** The IPv6 transfers' every rep, with the within-rep ratio of the single stream. */
function ipv6Runs(v6: LabBenchResult["ipv6"]): string[] {
  if (!v6) return [];
  const k = v6.kernel.runs, a = v6.appliance.runs;
  const line = (name: string, x: number[], y: number[]) =>
    `| ${name} | ${x.map((v) => fmt(v, 3)).join(", ")} | ${y.map((v) => fmt(v, 3)).join(", ")} |`;
  return [
    line("TCP 1 stream over IPv6, Gbit/s", k.tcp1, a.tcp1),
    `| TCP 1 stream over IPv6, appliance / kernel within the rep | | ${
      a.tcp1.map((v, i) => `${fmt(v / k.tcp1[i])}x`).join(", ")
    } |`,
    line("TCP 1 stream over IPv6 retransmits", k.tcp1Retransmits, a.tcp1Retransmits),
    line("TCP 4 streams over IPv6, Gbit/s", k.tcp4, a.tcp4),
  ];
}

/** The appliance / kernel ratios with one uplink and with two, side by side. */
function uplinksBeside(one: LabBenchResult | null, two: LabBenchResult): string[] {
  const r = (l: LabBenchResult | null, pick: (s: SetupResult) => number) =>
    l ? ratio(pick(l.appliance), pick(l.kernel)) : "n/a";
  const added = (l: LabBenchResult | null, pick: (s: SetupResult) => number) =>
    l && finite(pick(l.appliance), pick(l.kernel))
      ? `+${fmt((pick(l.appliance) - pick(l.kernel)) * 1000, 0)} us`
      : "n/a";
  const row = (name: string, f: typeof r, pick: (s: SetupResult) => number) =>
    `| ${name} | ${f(one, pick)} | ${f(two, pick)} |`;
  return [
    "| appliance against the kernel | one uplink | two uplinks |",
    "| --- | ---: | ---: |",
    row("TCP 1 stream, ratio", r, (s) => s.tcp1Gbps),
    row("TCP 4 streams, ratio", r, (s) => s.tcp4Gbps),
    row("TCP 8 streams, ratio", r, (s) => s.tcp8Gbps),
    row("UDP received, ratio", r, (s) => s.udpRxPps),
    row("ping RTT avg, added", added, (s) => s.pingAvgMs),
    row("TCP connect time, added", added, (s) => s.connectMs),
  ];
}

function pipelineSection(p: PipelineBenchResult): string[] {
  const row = (name: string, c: PipelineBenchResult["udp"]) =>
    `| ${name} | ${fmt(c.fast.pps / 1e6)} M (${fmt(c.fast.nsPerPacket, 0)} ns) | ${
      fmt(c.slow.pps / 1e6)
    } M (${fmt(c.slow.nsPerPacket, 0)} ns) | ${fmt(c.ratio)}x |`;
  return [
    "| packets | fast path: established flow, pps (ns/packet) | slow path: new flow each packet | fast / slow |",
    "| --- | ---: | ---: | ---: |",
    row("UDP, 64 B payload (92 B IP)", p.udp),
    row(`TCP: 64 B data + pure ACK alternating / SYN`, p.tcp),
    `| UDP, new flows from knock-unlocked sources (flow-admitted event each) | | ${
      fmt(p.udpGatedSlow.pps / 1e6)
    } M (${fmt(p.udpGatedSlow.nsPerPacket, 0)} ns) | |`,
    ...(p.tcp6Fast
      ? [
        `| IPv6 TCP through a pinhole: 64 B data + pure ACK alternating (no NAT) | ${
          fmt(p.tcp6Fast.pps / 1e6)
        } M (${fmt(p.tcp6Fast.nsPerPacket, 0)} ns) | | |`,
      ]
      : []),
    "",
    `${p.flows} established flows cycled; ${p.newFlowsPerRound} new flows per slow-path round ` +
    `(table emptied between rounds, untimed); each packet is first copied from its template ` +
    `(${fmt(p.copyNsPerPacket, 0)} ns of the figures); checksums verified in software.`,
  ];
}

function conntrackSection(c: ConntrackBenchResult[]): string[] {
  const rows = c.map((r) => {
    const isMillion = r.flows >= 900_000;
    const worst = Math.max(r.typedArrayBytes, r.rssDeltaBytes);
    return `| ${r.flows} | ${fmt(r.typedArrayBytes / MB, 1)} | ${r.bytesPerFlow} | ${
      fmt(r.rssDeltaBytes / MB, 1)
    } | ${fmt(r.insertNsPerOp, 0)} | ${fmt(r.lookupHitNsPerOp, 0)} | ${
      fmt(r.lookupMissNsPerOp, 0)
    } | ${fmt(r.packetNsPerOp, 0)} | ${
      isMillion
        ? `<= ${TARGETS.flows1MBytes / MB} MB: ${verdict(worst <= TARGETS.flows1MBytes)}`
        : ""
    } |`;
  });
  return [
    "| flows | table MB | bytes/flow | RSS growth MB | insert ns | lookup hit ns | lookup miss ns | lookup + track ns | target |",
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ...rows,
  ];
}

function knockSection(run: BenchRun): string[] {
  const out: string[] = [];
  const l = run.lab?.knock;
  if (l) {
    out.push(
      `- Knock to first admitted SYN: median ${fmt(l.medianMs, 2)} ms (min ${
        fmt(l.minMs, 2)
      }, max ${fmt(l.maxMs, 2)}; ${l.samples} samples, ${l.failures} failed; locked before ` +
        `every knock: ${l.lockedBeforeAll}), measured ${l.definition}. Of this, the admitted ` +
        `SYN's transit through the appliance: ${fmt(l.synTransitUs, 0)} us (an allow-listed ` +
        `source's SYN: ${fmt(l.baselineSynTransitUs, 0)} us). Seen by the client, last knock ` +
        `sent to connect complete: ${fmt(l.clientConnectMs, 2)} ms (allow-listed source's ` +
        `connect: ${fmt(l.baselineConnectMs, 2)} ms).`,
    );
  }
  const k = run.knock;
  if (k) {
    const u = k.unlockTable, v = k.verifier;
    out.push(
      `- 1M unlocked IPs: ${
        fmt(u.typedArrayBytes / MB, 1)
      } MB of typed arrays (${u.bytesPerEntry} ` +
        `B each), RSS growth ${fmt(u.rssDeltaBytes / MB, 1)} MB, filled in ${u.fillMs} ms; ` +
        `${fmt(u.lookupsPerSec / 1e6)} M lookups/s.`,
      `- Verifier, ${v.sourceIps} source IPs: ${fmt(v.notKnockPerSec / 1e6)} M/s ordinary ` +
        `packets, ${fmt(v.floodPerSec / 1e6)} M/s under a knock flood (starts, failures, ` +
        `penalties), ${fmt(v.validKnocksPerSec / 1e6)} M/s valid knocks (${
          fmt(v.unlocksPerSec / 1e3, 0)
        } k unlocks/s).`,
    );
  }
  return out;
}

/** An RTT or RTT ratio where lost pings may make it endless (Infinity; null in the JSON). */
function rtt(x: number | null | undefined, digits = 3): string {
  return x === Infinity ? "lost (>1%)" : fmt(x, digits);
}

const kpps = (x: number | null | undefined) => (x === null || x === undefined ? NaN : x / 1000);

/** A ceiling figure: ">=" where the side lost nothing at any step it ran. */
function ceilingFigure(c: UdpCeilingSide): string {
  if (c.zeroLossRxPps === null) return "none (loss at the first step)";
  return `${c.lowerBound ? ">= " : ""}${fmt(c.zeroLossRxPps / 1000, 1)}`;
}

/** One row of the targets table: `ref` is the kernel or the stated baseline. */
function targetRow(
  name: string,
  ref: string,
  app: string,
  got: string,
  goal: string,
  ok: boolean | null,
  note: string,
): string {
  return `| ${name} | ${ref} | ${app} | ${got} | ${goal} | ${verdict(ok)} | ${note} |`;
}

function cpuNote(cpu: number | null | undefined, host?: number): string {
  const parts = [];
  if (cpu !== null && cpu !== undefined && Number.isFinite(cpu)) {
    parts.push(`appliance ${fmt(cpu, 0)}% of a core`);
  }
  if (host !== undefined && Number.isFinite(host)) parts.push(`host ${fmt(host)} of 2 cores busy`);
  return parts.join(", ");
}

/** Issue 11's targets, each with its measured ratio and verdict, from this run. */
function targetsSection(run: BenchRun): string[] {
  const rows: string[] = [];
  const lab = run.lab;
  const ratioCheck = (
    a: number,
    k: number,
    t: number,
  ) => (finite(a, k) && k > 0 ? a / k >= t : null);
  if (lab) {
    const k = lab.kernel, a = lab.appliance;
    const tcp = (n: string, kk: number, aa: number, t: number, cpu: number | null, host: number) =>
      targetRow(
        `TCP ${n}, Gbit/s`,
        fmt(kk),
        fmt(aa),
        ratio(aa, kk),
        `>= ${t}x`,
        ratioCheck(aa, kk, t),
        cpuNote(cpu, host),
      );
    rows.push(
      tcp("1 stream", k.tcp1Gbps, a.tcp1Gbps, TARGETS.tcp1Ratio, a.cpu.tcp1, a.hostCores.tcp1),
      tcp("4 streams", k.tcp4Gbps, a.tcp4Gbps, TARGETS.tcp4Ratio, a.cpu.tcp4, a.hostCores.tcp4),
      tcp("8 streams", k.tcp8Gbps, a.tcp8Gbps, TARGETS.tcp8Ratio, a.cpu.tcp8, a.hostCores.tcp8),
    );
    const v6 = lab.ipv6;
    if (v6) {
      const k6: Ipv6SetupResult = v6.kernel, a6: Ipv6SetupResult = v6.appliance;
      rows.push(
        tcp(
          "1 stream over IPv6",
          k6.tcp1Gbps,
          a6.tcp1Gbps,
          TARGETS.tcp1Ratio,
          a6.cpu.tcp1,
          a6.hostCores.tcp1,
        ),
        tcp(
          "4 streams over IPv6",
          k6.tcp4Gbps,
          a6.tcp4Gbps,
          TARGETS.tcp4Ratio,
          a6.cpu.tcp4,
          a6.hostCores.tcp4,
        ),
      );
    }
  }
  const c = lab?.ceiling;
  const u = c?.udp;
  if (u) {
    const kr = u.kernel.zeroLossRxPps, ar = u.appliance.zeroLossRxPps;
    // The first step the appliance lost at: what its CPU was doing there.
    const lossy = u.steps.find((st) => st.appliance && st.appliance.lossPct > 0)?.appliance;
    rows.push(
      targetRow(
        `UDP ${u.payloadBytes} B at the ceiling (highest 0-loss rate), received kpps`,
        ceilingFigure(u.kernel),
        ceilingFigure(u.appliance),
        ar === null || kr === null ? "n/a" : `${u.kernel.lowerBound ? "<= " : ""}${ratio(ar, kr)}`,
        `>= ${TARGETS.udpCeilingRatio}x, 0 loss below`,
        ar === null ? false : kr === null ? null : ar / kr >= TARGETS.udpCeilingRatio,
        lossy
          ? `first loss ${fmt(lossy.lossPct, 3)}% at ${fmt(kpps(lossy.txPps), 0)} kpps sent, ${
            fmt(lossy.tunDrops, 0)
          } dropped at the TUN; ${cpuNote(lossy.cpuPct, lossy.hostCores)}`
          : "the appliance lost nothing at any step",
      ),
    );
  }
  for (const g of c?.gso ?? []) {
    rows.push(
      targetRow(
        `UDP_SEGMENT sender, ${g.segments} x ${g.payloadBytes} B a send, received kpps`,
        fmt(kpps(g.kernel.rxPps), 1),
        fmt(kpps(g.appliance.rxPps), 1),
        ratio(g.appliance.rxPps, g.kernel.rxPps),
        `>= ${TARGETS.gsoRatio}x`,
        ratioCheck(g.appliance.rxPps, g.kernel.rxPps, TARGETS.gsoRatio),
        `loss kernel ${fmt(g.kernel.lossPct, 2)}%, appliance ${fmt(g.appliance.lossPct, 2)}%, ${
          g.appliance.runs.tunDrops.map((x) => fmt(x, 0)).join(", ") || "n/a"
        } dropped at the TUN; ${cpuNote(g.appliance.cpuPct)}`,
      ),
    );
  }
  if (lab) {
    const k = lab.kernel, a = lab.appliance;
    const added = (a.pingMedianMs - k.pingMedianMs) * 1000;
    rows.push(
      targetRow(
        "ping RTT per-packet median, ms (added)",
        fmt(k.pingMedianMs, 3),
        fmt(a.pingMedianMs, 3),
        finite(added) ? `+${fmt(added, 0)} us` : "n/a",
        `<= ${TARGETS.addedRttMedianUs} us added`,
        finite(added) ? added <= TARGETS.addedRttMedianUs : null,
        "",
      ),
    );
  }
  const f = c?.floodRtt;
  if (f) {
    const side = (x: typeof f.kernel) =>
      `p99 ${rtt(x.quiet.p99Ms)} -> ${rtt(x.flood.p99Ms)} ms (${rtt(x.p99Ratio, 2)}x)`;
    rows.push(
      targetRow(
        `RTT p99 under a ${fmt(f.offeredPps / 1000, 0)} kpps SYN flood / unflooded`,
        side(f.kernel),
        side(f.appliance),
        `${rtt(f.appliance.p99Ratio, 2)}x`,
        `<= ${TARGETS.floodP99Ratio}x`,
        Number.isNaN(f.appliance.p99Ratio) ? null : f.appliance.p99Ratio <= TARGETS.floodP99Ratio,
        `flood achieved ${f.appliance.floodPps.map((x) => fmt(x / 1000, 0)).join(", ")} kpps, ${
          f.appliance.tunDrops.map((x) => fmt(x, 0)).join(", ")
        } dropped at the TUN; ${cpuNote(f.appliance.cpuPct, f.appliance.hostCores ?? undefined)}`,
      ),
    );
  }
  const ct = run.conntrack;
  const m = ct?.find((r) => r.flows >= 900_000), small = ct?.[0];
  if (m) {
    const worst = Math.max(m.typedArrayBytes, m.rssDeltaBytes);
    rows.push(
      targetRow(
        "1M flows, MB",
        "",
        fmt(worst / MB, 1),
        `${m.bytesPerFlow} B/flow`,
        `<= ${TARGETS.flows1MBytes / MB} MB`,
        worst <= TARGETS.flows1MBytes,
        `typed arrays ${fmt(m.typedArrayBytes / MB, 1)} MB, RSS growth ${
          fmt(m.rssDeltaBytes / MB, 1)
        } MB`,
      ),
    );
    if (small && small !== m) {
      const r = m.lookupHitNsPerOp / small.lookupHitNsPerOp;
      rows.push(
        targetRow(
          `hit lookup, 1M flows against ${small.flows}, ns`,
          fmt(small.lookupHitNsPerOp, 0),
          fmt(m.lookupHitNsPerOp, 0),
          `${fmt(r)}x`,
          `<= ${TARGETS.lookup1MRatio}x`,
          finite(r) ? r <= TARGETS.lookup1MRatio : null,
          "",
        ),
      );
    }
  }
  const kn = lab?.knock;
  if (kn) {
    const r = kn.synTransitUs / kn.baselineSynTransitUs;
    rows.push(
      targetRow(
        "admitted-after-knock SYN transit against an allow-listed one, us",
        fmt(kn.baselineSynTransitUs, 0),
        fmt(kn.synTransitUs, 0),
        `${fmt(r)}x`,
        `<= ${TARGETS.admittedSynRatio}x`,
        finite(r) ? r <= TARGETS.admittedSynRatio : null,
        `${kn.samples} samples, ${kn.failures} failed`,
      ),
    );
  }
  if (rows.length === 0) return [];
  return [
    "## Targets (issue 11)",
    "",
    "| target | kernel (or baseline) | appliance | appliance / reference | goal | verdict | measured beside it |",
    "| --- | ---: | ---: | ---: | --- | --- | --- |",
    ...rows,
    "",
    "Every ratio is from this run: the kernel-NAT lab and the appliance lab alternate, both " +
    "up at once. The lookup's reference is the smallest table of the same run, the admitted " +
    "SYN's an allow-listed source's SYN. A UDP ceiling marked >= lost nothing at any step " +
    "(its senders fell short of the offer, or the steps ran out): a kernel ceiling so marked " +
    "makes the ratio an upper bound. The IPv6 rows (issue 13: the appliance's pinhole " +
    "against the kernel's stateful nftables inet forward, no NAT on either side) are held " +
    "to IPv4's goals.",
    "",
  ];
}

function udpCeilingSection(u: NonNullable<CeilingResult["udp"]>): string[] {
  // A side that had stopped stepping leaves its three cells empty.
  const side = (x: UdpStepSide | null) =>
    x ? `${fmt(kpps(x.txPps), 1)} | ${fmt(kpps(x.rxPps), 1)} | ${fmt(x.lossPct, 3)}` : " |  | ";
  return [
    `### UDP ${u.payloadBytes} B at the ceiling: ${u.senders} paced senders, ${u.stepSeconds} s a step`,
    "",
    "| offered kpps | kernel sent kpps | kernel received kpps | kernel loss % | appliance sent kpps | appliance received kpps | appliance loss % | appliance CPU % | dropped at the TUN | host cores busy (kernel / appliance) |",
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ...u.steps.map((st) =>
      `| ${fmt(st.offeredPps / 1000, 0)} | ${side(st.kernel)} | ${side(st.appliance)} | ${
        fmt(st.appliance?.cpuPct, 0)
      } | ${fmt(st.appliance?.tunDrops, 0)} | ${fmt(st.kernel?.hostCores)} / ${
        fmt(st.appliance?.hostCores)
      } |`
    ),
    "",
    `Highest rate with 0 loss at it and every step below: kernel ${
      ceilingFigure(u.kernel)
    } kpps received (offered ${fmt(kpps(u.kernel.zeroLossOfferedPps), 0)}${
      u.kernel.lowerBound ? ", no loss at any step: the senders or the steps ran out" : ""
    }), appliance ${ceilingFigure(u.appliance)} kpps (offered ${
      fmt(kpps(u.appliance.zeroLossOfferedPps), 0)
    }${
      u.appliance.lowerBound ? ", no loss at any step: the senders or the steps ran out" : ""
    }). ` +
    "Each sender is one process with one connected socket (one flow), paced to its share " +
    "of the offer in sendmmsg batches of 64 (scripts/bench/udp_flood.ts --pps); a side stops " +
    "stepping after a loss above 0.1% or when its senders fall 10% short of the offer.",
    "",
  ];
}

function gsoSection(gs: GsoResult[]): string[] {
  if (gs.length === 0) return [];
  const row = (g: GsoResult) =>
    `| ${g.segments} x ${g.payloadBytes} B | ${fmt(kpps(g.kernel.txPps), 1)} / ${
      fmt(kpps(g.kernel.rxPps), 1)
    } | ${fmt(g.kernel.lossPct, 2)} | ${fmt(kpps(g.appliance.txPps), 1)} / ${
      fmt(kpps(g.appliance.rxPps), 1)
    } | ${fmt(g.appliance.lossPct, 2)} | ${ratio(g.appliance.rxPps, g.kernel.rxPps)} | ${
      fmt(g.appliance.cpuPct, 0)
    } | ${g.appliance.runs.rx.map((x) => fmt(x / 1000, 1)).join(", ")} |`;
  return [
    "### UDP_SEGMENT senders (QUIC-style GSO sends)",
    "",
    "| datagrams a send | kernel sent / received kpps | kernel loss % | appliance sent / received kpps | appliance loss % | appliance / kernel | appliance CPU % | appliance received per rep |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ...gs.map(row),
    "",
    `One unpaced sender (udp_flood.ts --gso N), ${gs[0].seconds} s a rep, medians; ` +
    "counted in datagrams at the server: (counter bytes - 28 x counter packets) / payload, " +
    "whether the datagrams arrive cut or as GSO super-packets.",
    "",
  ];
}

function floodSection(f: NonNullable<CeilingResult["floodRtt"]>): string[] {
  const row = (name: string, x: typeof f.kernel) =>
    `| ${name} | ${fmt(x.quiet.medianMs, 3)} / ${rtt(x.quiet.p99Ms)} | ${
      fmt(x.flood.medianMs, 3)
    } / ${rtt(x.flood.p99Ms)} | ${rtt(x.p99Ratio, 2)}x | ${x.quiet.lost} / ${x.flood.lost} | ${
      x.floodPps.map((p) => fmt(p / 1000, 0)).join(", ")
    } | ${fmt(x.cpuPct, 0)} | ${fmt(x.hostCores ?? undefined)} | ${
      x.tunDrops.map((d) => fmt(d, 0)).join(", ")
    } |`;
  return [
    `### RTT under a ${fmt(f.offeredPps / 1000, 0)} kpps SYN flood from locked sources`,
    "",
    "| side | alone: median / p99 ms | flooded: median / p99 ms | p99 flooded / alone | pings lost (alone / flooded) | flood achieved kpps per rep | appliance CPU % | host cores busy of 2 | dropped at the TUN per rep |",
    "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |",
    row("kernel", f.kernel),
    row("appliance", f.appliance),
    "",
    `${f.reps} x ${f.seconds} s of pings 5 ms apart per condition, pooled: the server pings ` +
    "client 1 through masquerade (an established flow) while client 2 sends SYNs to " +
    `198.51.100.1:52201 from ${f.senders} processes, 16,384 spoofed 198.18.0.0/15 sources ` +
    "each, none unlocked (scripts/bench/syn_flood.ts, AF_PACKET sendmmsg, paced; the " +
    "appliance namespace has a route back to them, as a default route would give). The kernel lab drops the same " +
    "sources in a raw-priority prerouting rule (a gate with client 1 in its set, before " +
    "conntrack); the appliance drops them as locked.",
    "",
  ];
}

/** The Markdown report of `run`. */
export function renderMarkdown(run: BenchRun): string {
  const e = run.environment;
  const out = [
    `# Knockgate benchmark (${run.mode} mode)`,
    "",
    `Run ${run.startedAt} to ${run.finishedAt}, commit ${e.commit}, kernel ${e.kernel}, ` +
    `Deno ${e.deno}, ${e.cpus} CPUs; load average ${e.loadAvgStart} at start, ` +
    `${e.loadAvgEnd} at the end. Produced by \`deno task bench\` (scripts/bench/main.ts).`,
    "",
  ];
  out.push(...targetsSection(run));
  const lab = run.lab;
  if (lab) {
    const o = lab.options;
    out.push(
      "## Kernel NAT against the appliance (lab)",
      "",
      ...labTable(lab.kernel, lab.appliance, o.udpSize, lab.ipv6),
      "",
      `Medians of ${o.reps} x ${o.seconds} s (iperf3), ${o.reps} x ${o.udpSeconds} s (UDP), ` +
        `${o.reps} x ${o.pingCount} pings 10 ms apart, ${o.reps} x ${o.connectSamples} connects; ` +
        "kernel and appliance alternate rep by rep, both labs up at once.",
      "",
      "- Kernel: the appliance namespace without TUN, nftables DNAT " +
        "198.51.100.1:52202 -> 192.0.2.12:5201 (tcp+udp), 52201 -> 8080, masquerade of " +
        "192.0.2.0/24 out of wan0, ip_forward=1, and (the gate's twin, for the SYN flood) a " +
        "raw-priority prerouting drop of TCP to 52201 from sources outside a set holding " +
        "203.0.113.10. Appliance: config/appliance.jsonc " +
        `(${o.queues ?? 1} TUN queues, one data-plane Worker each) with ` +
        "203.0.113.10/32 allow-listed (no knock for the transfers) and 1 s unlocks.",
      "- TCP: iperf3 from client 203.0.113.10 to 198.51.100.1:52202, receiver's rate.",
      ...(lab.ipv6
        ? [
          "- IPv6 (both labs dual-stack, scripts/lab/topology.ts LAB6): iperf3 -6 from client " +
          "2001:db8:203::10 straight to the server's 2001:db8:192::12:5201 (the client routes " +
          "the LAN /64 via the WAN address), no NAT, in the same reps, after the IPv4 " +
          "transfers. Kernel: net.ipv6.conf.all.forwarding=1 and an nftables inet filter " +
          "forward chain, policy drop, loaded only around the IPv6 transfers (the IPv4 rows " +
          "keep their unfiltered forward): established/related accepted, LAN out accepted, " +
          "new TCP to the server's 5201 only from 2001:db8:203::/64. Appliance: ipv6 enabled, WAN " +
          "2001:db8:198::1/64, an open-ports rule (pinhole) to the server's TCP 5201 with " +
          "knocks enforced and 2001:db8:203::/64 allow-listed.",
        ]
        : []),
      `- UDP: ${o.udpSize}-byte UDP payload (${o.udpSize + 28} B IP packet, ${
        o.udpSize + 42
      } B Ethernet frame), sendmmsg in batches of 64 from one socket ` +
        "(scripts/bench/udp_flood.ts), counted by an nftables counter in the server namespace.",
      "- RTT: ping from the server 192.0.2.12 to the client through masquerade (the WAN " +
        "address answers no ping); TCP connect: client to 198.51.100.1:52201 -> server:8080, " +
        "from Deno's node:net (adds its own overhead to both).",
      "- CPU: the appliance process (all threads, /proc/<pid>/stat) as % of one core; host " +
        "cores busy from /proc/stat over the same window (every namespace and every other " +
        "session on the machine). Both cores are shared by client, appliance, server and " +
        "the kernel's forwarding work, so the sender competes with the appliance; other " +
        "sessions' work lands on the same cores, so single reps can differ by 2x (see every " +
        "rep below, and the host's load average above).",
      "",
      "<details><summary>Every rep</summary>",
      "",
      ...runsSection(lab),
      "",
      "</details>",
      "",
    );
  }
  const c = lab?.ceiling;
  if (c && (c.udp || c.gso.length > 0 || c.floodRtt)) {
    out.push("## At the ceiling (lab, one uplink)", "");
    if (c.udp) out.push(...udpCeilingSection(c.udp));
    out.push(...gsoSection(c.gso));
    if (c.floodRtt) out.push(...floodSection(c.floodRtt));
  }
  const two = run.labTwoUplinks;
  if (two) {
    const o = two.options;
    out.push(
      "## Kernel NAT against the appliance, two uplinks (lab)",
      "",
      ...uplinksBeside(lab, two),
      "",
      ...labTable(two.kernel, two.appliance, o.udpSize),
      "",
      `Medians of ${o.reps} x ${o.seconds} s (iperf3), ${o.reps} x ${o.udpSeconds} s (UDP), ` +
        `${o.reps} x ${o.pingCount} pings, ${o.reps} x ${o.connectSamples} connects, the same ` +
        "measurements as above; kernel and appliance alternate rep by rep, both two-ISP labs up " +
        "at once (after the one-uplink labs are down).",
      "",
      "- The two-ISP lab (scripts/lab/two_uplinks.ts): client A 203.0.113.10 is ISP A's " +
        "customer, one router hop from the appliance's wan0 (the one-uplink lab's client is on " +
        "a bridge), so each ratio compares with a kernel-NAT lab of the same topology.",
      "- Kernel: the appliance namespace without TUN, the same nftables DNAT and masquerade, " +
        "a default route via ISP A's gateway. Appliance: config/lab-two-uplinks.jsonc (isp-a " +
        "with 198.51.100.1 and .2, isp-b with 198.51.100.65, both gateways probed every " +
        "200 ms, per-uplink routing tables) with 203.0.113.10/32 allow-listed and 1 s unlocks. " +
        "All measured traffic crosses ISP A; ISP B is configured and probed. No knock latency here.",
      "",
      "<details><summary>Every rep, two uplinks</summary>",
      "",
      ...runsSection(two),
      "",
      "</details>",
      "",
    );
  }
  if (run.pipeline) {
    out.push(
      "## Fast-path gain (datapath pipeline in memory)",
      "",
      ...pipelineSection(run.pipeline),
      "",
    );
  }
  if (run.conntrack) {
    out.push(
      "## Connection tracking",
      "",
      ...conntrackSection(run.conntrack),
      "",
      "Table MB: the typed arrays (10^6 bytes). RSS growth: the process's resident set " +
        "while allocating and filling. Lookups are random over the whole table.",
      "",
    );
  }
  if (run.knock || lab?.knock) out.push("## Port knocking", "", ...knockSection(run), "");
  if (run.errors.length > 0) {
    out.push("## Errors", "", ...run.errors.map((x) => "```\n" + x + "\n```"), "");
  }
  return out.join("\n");
}
