/**
 * Renders a benchmark run as Markdown: kernel against appliance with the
 * ratio and the targets of the performance issue (with one uplink, then with
 * two, beside the one-uplink ratios), then the in-memory
 * figures (pipeline fast path, conntrack, knock engine) and the conditions.
 */
import type { ConntrackBenchResult } from "./conntrack_bench.ts";
import type { KnockBenchResult } from "./knock_bench.ts";
import type { LabBenchResult, SetupResult } from "./lab_bench.ts";
import type { PipelineBenchResult } from "./pipeline_bench.ts";
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

/** The issue's targets. */
export const TARGETS = {
  tcp1Ratio: 0.7,
  udpKpps: 130,
  addedRttUs: 60,
  /** Bytes for a million flows (256 MB, taken as 10^6 bytes: the stricter reading). */
  flows1MBytes: 256e6,
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

function labTable(k: SetupResult, a: SetupResult, udpSize: number): string[] {
  const addedUs = (a.pingAvgMs - k.pingAvgMs) * 1000;
  const addedMedUs = (a.pingMedianMs - k.pingMedianMs) * 1000;
  const rows = [
    "| measurement | kernel DNAT | appliance | appliance / kernel | target | verdict |",
    "| --- | ---: | ---: | ---: | --- | --- |",
    `| TCP 1 stream, Gbit/s | ${fmt(k.tcp1Gbps)} | ${fmt(a.tcp1Gbps)} | ${
      ratio(a.tcp1Gbps, k.tcp1Gbps)
    } | >= ${TARGETS.tcp1Ratio}x kernel | ${
      verdict(
        finite(a.tcp1Gbps, k.tcp1Gbps) ? a.tcp1Gbps >= TARGETS.tcp1Ratio * k.tcp1Gbps : null,
      )
    } |`,
    `| TCP 4 streams, Gbit/s | ${fmt(k.tcp4Gbps)} | ${fmt(a.tcp4Gbps)} | ${
      ratio(a.tcp4Gbps, k.tcp4Gbps)
    } | | |`,
    `| UDP ${udpSize} B payload, received kpps | ${fmt(k.udpRxPps / 1000, 1)} | ${
      fmt(a.udpRxPps / 1000, 1)
    } | ${ratio(a.udpRxPps, k.udpRxPps)} | >= ${TARGETS.udpKpps} kpps | ${
      verdict(finite(a.udpRxPps) ? a.udpRxPps >= TARGETS.udpKpps * 1000 : null)
    } |`,
    `| UDP sender rate, kpps | ${fmt(k.udpTxPps / 1000, 1)} | ${fmt(a.udpTxPps / 1000, 1)} | | | |`,
    `| ping RTT avg, ms | ${fmt(k.pingAvgMs, 3)} | ${fmt(a.pingAvgMs, 3)} | +${
      fmt(addedUs, 0)
    } us | added <= ${TARGETS.addedRttUs} us | ${
      verdict(finite(addedUs) ? addedUs <= TARGETS.addedRttUs : null)
    } |`,
    `| ping RTT per-packet median, ms | ${fmt(k.pingMedianMs, 3)} | ${fmt(a.pingMedianMs, 3)} | +${
      fmt(addedMedUs, 0)
    } us | | |`,
    `| ping RTT mdev / max, ms | ${fmt(k.pingMdevMs, 3)} / ${fmt(k.pingMaxMs, 3)} | ${
      fmt(a.pingMdevMs, 3)
    } / ${fmt(a.pingMaxMs, 3)} | | | |`,
    `| TCP connect time, ms | ${fmt(k.connectMs, 3)} | ${fmt(a.connectMs, 3)} | +${
      fmt((a.connectMs - k.connectMs) * 1000, 0)
    } us | | |`,
    `| appliance CPU, % of one core (TCP 1 / TCP 4 / UDP) | | ${fmt(a.cpu.tcp1, 0)} / ${
      fmt(a.cpu.tcp4, 0)
    } / ${fmt(a.cpu.udp, 0)} | | | |`,
    `| host cores busy of 2 (TCP 1 / TCP 4 / UDP) | ${fmt(k.hostCores.tcp1)} / ${
      fmt(k.hostCores.tcp4)
    } / ${fmt(k.hostCores.udp)} | ${fmt(a.hostCores.tcp1)} / ${fmt(a.hostCores.tcp4)} / ${
      fmt(a.hostCores.udp)
    } | | | |`,
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
    line("UDP received, kpps", k.udpRx.map((x) => x / 1000), a.udpRx.map((x) => x / 1000)),
    line("UDP sent, kpps", k.udpTx.map((x) => x / 1000), a.udpTx.map((x) => x / 1000)),
    line("UDP loss, %", k.udpLossPct, a.udpLossPct),
    line("ping avg, ms", k.pingAvg, a.pingAvg),
    line("ping median, ms", k.pingMedian, a.pingMedian),
    line("TCP connect, ms", k.connectMs, a.connectMs),
    line("appliance CPU % (TCP 1)", [], a.cpuTcp1),
    line("appliance CPU % (TCP 4)", [], a.cpuTcp4),
    line("appliance CPU % (UDP)", [], a.cpuUdp),
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
      isMillion ? `<= 256 MB: ${verdict(worst <= TARGETS.flows1MBytes)}` : ""
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
  const lab = run.lab;
  if (lab) {
    const o = lab.options;
    out.push(
      "## Kernel NAT against the appliance (lab)",
      "",
      ...labTable(lab.kernel, lab.appliance, o.udpSize),
      "",
      `Medians of ${o.reps} x ${o.seconds} s (iperf3), ${o.reps} x ${o.udpSeconds} s (UDP), ` +
        `${o.reps} x ${o.pingCount} pings 10 ms apart, ${o.reps} x ${o.connectSamples} connects; ` +
        "kernel and appliance alternate rep by rep, both labs up at once.",
      "",
      "- Kernel: the appliance namespace without TUN, nftables DNAT " +
        "198.51.100.1:52202 -> 192.0.2.12:5201 (tcp+udp), 52201 -> 8080, masquerade of " +
        "192.0.2.0/24 out of wan0, ip_forward=1. Appliance: config/appliance.jsonc with " +
        "203.0.113.10/32 allow-listed (no knock for the transfers) and 1 s unlocks.",
      "- TCP: iperf3 from client 203.0.113.10 to 198.51.100.1:52202, receiver's rate.",
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
