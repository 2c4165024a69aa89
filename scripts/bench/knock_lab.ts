/**
 * Knock-to-first-admitted-SYN latency in the appliance lab, timed on the
 * wire: tcpdump in client 2's namespace sees the knocks and the SYN leave,
 * tcpdump in the server's namespace sees the SYN arrive once the appliance
 * admitted and forwarded it. Every namespace shares the host's clock, so the
 * timestamps compare directly. The client side (knock_latency.ts) knocks
 * with UDP 20 ms apart and connects at once after its last knock; the
 * allow-listed baseline (client 1) connects as rarely, between the samples,
 * so both SYNs meet a path (caches, TLBs, the JIT's state, the host's load)
 * left alone for as long: the baseline once ran 20 ms apart, on a warm path.
 */
import type { RunningLab } from "../lab/appliance.ts";
import { LAB } from "../lab/topology.ts";
import type { KnockLatencyResult } from "./knock_latency.ts";
import { median, round } from "./stats.ts";

const here = new URL(".", import.meta.url).pathname;
/**
 * First ports of the users the samples knock as in turn: alice of
 * config/appliance.jsonc, then clones of her (benchConfig in lab_bench.ts).
 */
export const BENCH_KNOCK_PORTS = Array.from({ length: 12 }, (_, i) => 41001 + 10 * i);
/** Between two samples of either client: longer than the bench config's 1 s unlock. */
const SAMPLE_GAP_MS = 2200;

/** The latency figures (ms unless said otherwise). */
export interface KnockLatencySummary {
  definition: string;
  samples: number;
  /** Every pre-check connect timed out: the source was locked before each knock. */
  lockedBeforeAll: boolean;
  /** Last knock on client 2's wire -> first SYN at the server: median, min, max. */
  medianMs: number;
  minMs: number;
  maxMs: number;
  /** Of which the admitted SYN's transit, client wire -> server wire (median, us). */
  synTransitUs: number;
  /**
   * The same transit for an allow-listed source's SYN (client 1, no knock, as
   * far apart as client 2's samples and interleaved with them; median, us).
   */
  baselineSynTransitUs: number;
  /** As the client sees it: last knock sent -> connect complete (median). */
  clientConnectMs: number;
  /** The same connect from the allow-listed client 1 (median). */
  baselineConnectMs: number;
  /** Samples whose SYN never reached the server (or whose connect failed). */
  failures: number;
  rawMs: (number | null)[];
}

/** One captured packet. */
interface Seen {
  ts: number;
  src: string;
  sport: number;
  kind: "udp" | "syn";
}

/** tcpdump in namespace `ns`; `stop()` ends it and returns what it saw. */
function capture(lab: RunningLab, ns: keyof RunningLab["names"], filter: string) {
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", lab.names[ns], "tcpdump", "-i", "eth0", "-n", "-tt", "-l", filter],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = child.output();
  return {
    /** Gives tcpdump a second to start listening. */
    ready: () => new Promise((r) => setTimeout(r, 1000)),
    stop: async (): Promise<Seen[]> => {
      await new Promise((r) => setTimeout(r, 200)); // the last packets reach the capture
      try {
        child.kill("SIGINT");
      } catch { /* gone */ }
      const text = new TextDecoder().decode((await out).stdout);
      return parseTcpdump(text);
    },
  };
}

/** Parses `tcpdump -n -tt` lines such as `1795627509.023381 IP 203.0.113.20.34356 > ...: Flags [S]`. */
export function parseTcpdump(text: string): Seen[] {
  const seen: Seen[] = [];
  for (const line of text.split("\n")) {
    const m = line.match(/^(\d+\.\d+) IP (\d+\.\d+\.\d+\.\d+)\.(\d+) > [\d.]+: (UDP|Flags \[S\])/);
    if (m) {
      seen.push({
        ts: Number(m[1]) * 1000,
        src: m[2],
        sport: Number(m[3]),
        kind: m[4] === "UDP" ? "udp" : "syn",
      });
    }
  }
  return seen;
}

function probe(lab: RunningLab, ns: "client" | "client2", samples: number, extra: string[]) {
  return lab.tryExec(ns, [
    Deno.execPath(),
    "run",
    "-A",
    `${here}knock_latency.ts`,
    "--host",
    LAB.wan,
    "--port",
    "52201",
    "--samples",
    String(samples),
    ...extra,
  ]);
}

/** First arrival at the server of a SYN from `src`:`sport`, ms; NaN when none. */
function arrival(server: Seen[], src: string, sport: number): number {
  return server.find((s) => s.kind === "syn" && s.src === src && s.sport === sport)?.ts ?? NaN;
}

/** Knocks `samples` times from client 2 and times each first admitted SYN. */
export async function runKnockLatency(
  lab: RunningLab,
  samples: number,
): Promise<KnockLatencySummary> {
  const syn = "(tcp[tcpflags] & (tcp-syn|tcp-ack)) == tcp-syn";
  const cap1 = capture(lab, "client", `dst host ${LAB.wan} and ${syn}`);
  const cap2 = capture(lab, "client2", `dst host ${LAB.wan} and (udp or ${syn})`);
  const capS = capture(lab, "server", `tcp dst port 8080 and ${syn}`);
  await Promise.all([cap1.ready(), cap2.ready(), capS.ready()]);
  // alice of config/appliance.jsonc; 2.2 s apart so each 1 s unlock has lapsed. Client 1's
  // connects run beside them, as far apart and half a gap later (so they seldom share a read
  // batch with client 2's packets).
  const knockRun = probe(lab, "client2", samples, [
    "--first-port",
    BENCH_KNOCK_PORTS.join(","),
    "--secret",
    "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
    "--gap-ms",
    String(SAMPLE_GAP_MS),
  ]);
  const baseRun = new Promise((r) => setTimeout(r, SAMPLE_GAP_MS / 2)).then(() =>
    probe(lab, "client", samples, ["--no-knock", "--gap-ms", String(SAMPLE_GAP_MS)])
  );
  const [base, knock] = await Promise.all([baseRun, knockRun]);
  const [c1, c2, srv] = await Promise.all([cap1.stop(), cap2.stop(), capS.stop()]);
  if (base.code !== 0 || knock.code !== 0) {
    throw new Error(`knock latency probe failed: ${base.stderr.trim()} ${knock.stderr.trim()}`);
  }
  const b = JSON.parse(base.stdout) as KnockLatencyResult;
  const k = JSON.parse(knock.stdout) as KnockLatencyResult;
  // A SYN right after a knock is the sample's connect; earlier SYNs are the locked pre-checks.
  const wire: number[] = [], transit: number[] = [];
  for (let i = 1; i < c2.length; i++) {
    if (c2[i].kind !== "syn" || c2[i - 1].kind !== "udp") continue;
    const at = arrival(srv, LAB.client2, c2[i].sport);
    wire.push(at - c2[i - 1].ts);
    transit.push(at - c2[i].ts);
  }
  // Client 1's SYNs after a gap: the probe's warm-up connect runs right before its first sample.
  const baseTransit = c1.filter((s, i) => i === 0 || s.ts - c1[i - 1].ts >= SAMPLE_GAP_MS / 2)
    .map((s) => arrival(srv, LAB.client, s.sport) - s.ts);
  const ok = wire.filter(Number.isFinite);
  const connect = k.samples.map((x) => x.connectMs);
  return {
    definition: "from the last UDP knock on the client's wire to the first SYN arriving at the " +
      "server (tcpdump timestamps; the client connects right after its last knock, so this " +
      "includes the client's own delay between the two)",
    samples: k.samples.length,
    lockedBeforeAll: k.samples.every((x) => x.lockedBefore === true),
    medianMs: round(median(ok), 3),
    minMs: round(Math.min(...ok), 3),
    maxMs: round(Math.max(...ok), 3),
    synTransitUs: round(median(transit) * 1000, 0),
    baselineSynTransitUs: round(median(baseTransit) * 1000, 0),
    clientConnectMs: round(median(connect.filter((x): x is number => x !== null)), 3),
    baselineConnectMs: round(
      median(b.samples.map((x) => x.connectMs).filter((x): x is number => x !== null)),
      3,
    ),
    failures: Math.max(k.samples.length - ok.length, connect.filter((x) => x === null).length),
    rawMs: wire.map((x) => Number.isFinite(x) ? round(x, 3) : null),
  };
}
