/**
 * The cluster benchmark (`deno task bench --cluster`): a real 3-member etcd
 * cluster on the host's loopback, two appliance labs on it (nodes A and B,
 * each reaching the members through `scripts/lab/etcd_relay.ts`) and, in
 * the same run, a single box on its KV file. All three labs have the same
 * addressing and the benchmark's configuration (`benchConfig`: client 1
 * allow-listed, twelve knock users of one secret).
 *
 * (a) Forwarding: iperf3, one TCP stream from client 1 through the forward
 *     52202 -> server:5201, alternating rep by rep between the single box and
 *     node A (B idle meanwhile, both nodes heart-beating into etcd).
 * (b) Knock at A, admitted at B: client 2 of A's lab knocks (UDP, 20 ms
 *     apart, `fleet_probe.ts knock`) while client 2 of B's lab, the same
 *     address, connects to B's forward every 10 ms (`fleet_probe.ts
 *     connect`); the figure is the epoch time B's connect completed minus the
 *     time A's last knock was sent (the namespaces share the host's clock).
 *     Between samples the unlock is revoked at A (ending it at B too) and B is
 *     checked locked before the next knock; a user's TOTP step is used once.
 * (c) etcd writes under 1,000 unlocks refreshed by traffic: 1,000 unlocks of
 *     spoofed sources (198.18.0.0/22 less 24, their last traffic spread over
 *     the minute before) are merged into the shared table, both nodes take
 *     them in, and SYNs from those sources reach A for `loadSeconds` (each
 *     source about every 2.5 s). Counted on etcd itself: the
 *     `etcd_mvcc_put_total` / `etcd_mvcc_delete_total` and revision deltas of
 *     a member's `/metrics`, and a watch on the prefix that sorts every
 *     written key by area (unlocks, node heartbeats, the rest).
 *
 * Not part of the default bench (it takes about five minutes).
 */
import { type RunningLab, startLab } from "../lab/appliance.ts";
import { EtcdRelays } from "../lab/etcd_relay.ts";
import { LAB } from "../lab/topology.ts";
import { EtcdCluster } from "../../src/store/_etcd_cluster.ts";
import { EtcdClient } from "../../src/store/etcd_client.ts";
import { decodeKey } from "../../src/store/etcd_codec.ts";
import { openEtcdStore } from "../../src/store/etcd_store.ts";
import { formatIpv4, parseIpv4 } from "../../src/packet/address.ts";
import { api, signIn } from "../../tests/lab/_api.ts";
import { benchConfig } from "./lab_bench.ts";
import { BENCH_KNOCK_PORTS } from "./knock_lab.ts";
import { median, percentile, round } from "./stats.ts";

const here = new URL(".", import.meta.url).pathname;
const ALICE_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const FLOOD_FIRST = "198.18.0.0";
/** A user's TOTP step is accepted once: reuse a user only in a later 30 s step. */
const STEP_MS = 30_000;

/** How long and how much to measure. */
export interface ClusterBenchOptions {
  reps: number;
  seconds: number;
  knockSamples: number;
  unlocks: number;
  /** Seconds of refreshing traffic while etcd's writes are counted. */
  loadSeconds: number;
  log: (line: string) => void;
}

/** What the cluster benchmark measured. */
export interface ClusterBenchResult {
  forwarding: {
    seconds: number;
    singleGbps: number[];
    clusterGbps: number[];
    singleMedian: number;
    clusterMedian: number;
  } | null;
  knockAtoB: {
    samples: number;
    failures: number;
    rawMs: (number | null)[];
    medianMs: number;
    p99Ms: number;
    minMs: number;
    maxMs: number;
  } | null;
  writes: {
    unlocks: number;
    /** Unlocks node A held when the traffic started. */
    unlocksAtA: number;
    windowSeconds: number;
    floodPps: number;
    puts: number;
    deletes: number;
    revisions: number;
    putsPerSecond: number;
    revisionsPerSecond: number;
    /** Keys written (puts and deletes seen by the watch) by area. */
    byArea: Record<string, number>;
    unlockWritesPerSecond: number;
  } | null;
  errors: string[];
}

/** A long-lived `fleet_probe.ts` in a lab namespace, driven a line at a time. */
class Probe {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #reader: ReadableStreamDefaultReader<string>;
  #buf = "";

  constructor(lab: RunningLab, ns: "client" | "client2", args: string[]) {
    this.#child = new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        lab.names[ns],
        Deno.execPath(),
        "run",
        "-A",
        `${here}fleet_probe.ts`,
        ...args,
      ],
      env: { DENO_NO_UPDATE_CHECK: "1" },
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    this.#reader = this.#child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  }

  /** The next output line, waiting at most `ms`. */
  async line(ms = 20_000): Promise<string> {
    const deadline = Date.now() + ms;
    while (!this.#buf.includes("\n")) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("fleet probe: no answer in time");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const r = await Promise.race([
        this.#reader.read(),
        new Promise<null>((res) => timer = setTimeout(() => res(null), left)),
      ]);
      clearTimeout(timer);
      if (r === null) continue;
      if (r.done) throw new Error("fleet probe exited");
      this.#buf += r.value;
    }
    const nl = this.#buf.indexOf("\n");
    const out = this.#buf.slice(0, nl).trim();
    this.#buf = this.#buf.slice(nl + 1);
    return out;
  }

  async send(line: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(`${line}\n`));
  }

  async close(): Promise<void> {
    await this.send("quit").catch(() => {});
    await this.#writer.close().catch(() => {});
    const done = await Promise.race([
      this.#child.status.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), 3000)),
    ]);
    if (!done) {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* gone */ }
    }
    await this.#reader.cancel().catch(() => {});
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** `file` (a benchConfig JSON) rewritten by `edit` into `out`. */
async function variant(file: string, out: string, edit: (c: Record<string, unknown>) => void) {
  const c = JSON.parse(await Deno.readTextFile(file)) as Record<string, unknown>;
  edit(c);
  await Deno.writeTextFile(out, JSON.stringify(c, null, 2));
  return out;
}

async function iperf1(lab: RunningLab, seconds: number): Promise<number> {
  const argv = ["iperf3", "-c", LAB.wan, "-p", "52202", "-t", String(seconds), "-J"];
  const r = await lab.tryExec("client", argv);
  const j = JSON.parse(r.stdout || "{}");
  if (r.code !== 0 || !j.end?.sum_received) {
    throw new Error(`iperf3 failed: ${j.error ?? r.stderr.trim()}`);
  }
  return round(j.end.sum_received.bits_per_second / 1e9, 3);
}

interface Metrics {
  puts: number;
  deletes: number;
  revision: number;
}

async function metrics(endpoint: string): Promise<Metrics> {
  const text = await (await fetch(`${endpoint}/metrics`, { signal: AbortSignal.timeout(5000) }))
    .text();
  const value = (name: string) => {
    const m = text.match(new RegExp(`^${name} (\\S+)$`, "m"));
    if (m === null) throw new Error(`etcd /metrics has no ${name}`);
    return Number(m[1]);
  };
  return {
    puts: value("etcd_mvcc_put_total"),
    deletes: value("etcd_mvcc_delete_total"),
    revision: value("etcd_debugging_mvcc_current_revision"),
  };
}

/** Counts every key written under `prefix` by its first tuple element, until `stop`. */
function countByArea(endpoints: string[], prefix: string, fromRevision: number) {
  const client = new EtcdClient({ endpoints });
  const abort = new AbortController();
  const counts: Record<string, number> = {};
  const enc = new TextEncoder();
  const p = enc.encode(prefix);
  const end = p.slice();
  end[end.length - 1]++;
  const b64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));
  const done = (async () => {
    const create = { key: b64(p), range_end: b64(end), start_revision: String(fromRevision + 1) };
    try {
      for await (const msg of client.watch(create, abort.signal)) {
        for (const ev of msg.events ?? []) {
          const raw = Uint8Array.from(atob(ev.kv.key), (c) => c.charCodeAt(0));
          let area = "?";
          try {
            area = String(decodeKey(raw.subarray(p.length))[0]);
          } catch { /* not a tuple key */ }
          counts[area] = (counts[area] ?? 0) + 1;
        }
      }
    } catch (err) {
      if (!abort.signal.aborted) throw err;
    }
  })();
  return {
    counts,
    stop: async () => {
      abort.abort();
      await done.catch(() => {});
      client.close();
    },
  };
}

async function wanMac(lab: RunningLab): Promise<string> {
  const out = await lab.exec("appliance", ["ip", "-j", "link", "show", "dev", "wan0"]);
  return (JSON.parse(out) as { address: string }[])[0].address;
}

async function unlockCount(lab: RunningLab, token: string): Promise<number> {
  const r = await api<{ unlocks: number }>(lab, "GET", "/status", { token });
  return r.status === 200 ? r.body.unlocks : -1;
}

async function forwarding(single: RunningLab, node: RunningLab, o: ClusterBenchOptions) {
  const singleGbps: number[] = [], clusterGbps: number[] = [];
  await iperf1(single, 1); // warm both paths (JIT, ARP, caches)
  await iperf1(node, 1);
  for (let rep = 0; rep < o.reps; rep++) {
    o.log(`cluster: TCP 1 stream, rep ${rep + 1}: single box, then node A`);
    singleGbps.push(await iperf1(single, o.seconds));
    clusterGbps.push(await iperf1(node, o.seconds));
  }
  return {
    seconds: o.seconds,
    singleGbps,
    clusterGbps,
    singleMedian: median(singleGbps),
    clusterMedian: median(clusterGbps),
  };
}

async function knockAtoB(a: RunningLab, b: RunningLab, token: string, o: ClusterBenchOptions) {
  const knocker = new Probe(a, "client2", ["knock", "--host", LAB.wan, "--secret", ALICE_SECRET]);
  const prober = new Probe(b, "client2", ["connect", "--host", LAB.wan, "--port", "52201"]);
  const rawMs: (number | null)[] = [];
  const lastUse = new Map<number, number>();
  try {
    await knocker.line();
    await prober.line();
    for (let i = 0; i < o.knockSamples; i++) {
      const port = BENCH_KNOCK_PORTS[i % BENCH_KNOCK_PORTS.length];
      const wait = (lastUse.get(port) ?? -Infinity) + STEP_MS + 1000 - Date.now();
      if (wait > 0) await sleep(wait);
      // B must be locked for client 2 before the knock (the last revocation has reached it).
      let locked = false;
      for (let t = 0; t < 10 && !locked; t++) {
        await prober.send("locked");
        locked = (await prober.line()) === "locked";
        if (!locked) await sleep(500);
      }
      if (!locked) throw new Error("client 2 still admitted at B before a knock");
      await prober.send("probe 10000");
      await sleep(30); // the first connects are on their way
      await knocker.send(String(port));
      lastUse.set(port, Date.now());
      const sent = Number((await knocker.line()).split(" ")[1]);
      const seen = (await prober.line()).split(" ");
      const ms = seen[0] === "open" ? Number(seen[1]) - sent : null;
      rawMs.push(ms);
      o.log(`cluster: knock at A -> admitted at B, sample ${i + 1}: ${ms ?? "timeout"} ms`);
      const r = await api(a, "DELETE", `/status/unlocks/${LAB.client2}`, { token });
      if (r.status !== 200) {
        throw new Error(`revocation at A: ${r.status} ${JSON.stringify(r.body)}`);
      }
      await sleep(1000);
    }
  } finally {
    await knocker.close();
    await prober.close();
  }
  const ok = rawMs.filter((x): x is number => x !== null);
  return {
    samples: rawMs.length,
    failures: rawMs.length - ok.length,
    rawMs,
    medianMs: round(median(ok), 1),
    p99Ms: round(percentile(ok, 99), 1),
    minMs: Math.min(...ok),
    maxMs: Math.max(...ok),
  };
}

async function writesUnderLoad(
  cluster: EtcdCluster,
  prefix: string,
  a: RunningLab,
  b: RunningLab,
  token: string,
  dir: string,
  o: ClusterBenchOptions,
) {
  const store = await openEtcdStore(
    { backend: "etcd", endpoints: cluster.endpoints, prefix, path: `${dir}/bench` },
    { keyFile: `${a.stateDir}/knockgate.kv.key` },
  );
  const first = parseIpv4(FLOOD_FIRST)!;
  try {
    const now = Date.now();
    const records = Array.from({ length: o.unlocks }, (_, i) => {
      // Last traffic spread over the minute before: the refresh writes come in steady ticks.
      const lastSeen = now - 1000 - (i % 60) * 1000;
      return {
        ip: formatIpv4((first + i) >>> 0),
        user: "alice",
        unlockedAt: now - 120_000,
        lastSeen,
        expiresAt: lastSeen + 3_600_000,
        drift: 0,
        flows: 0,
        bytes: 0,
        wanAddress: LAB.wan,
      };
    });
    o.log(`cluster: ${o.unlocks} unlocks into the shared table`);
    await store.unlocks.mergeAll(records);
  } finally {
    store.close();
  }
  let atA = 0, atB = 0;
  const deadline = Date.now() + 30_000;
  while ((atA < o.unlocks || atB < o.unlocks) && Date.now() < deadline) {
    await sleep(500);
    [atA, atB] = [await unlockCount(a, token), await unlockCount(b, token)];
  }
  if (atA < o.unlocks || atB < o.unlocks) {
    throw new Error(`the unlocks did not reach both nodes: A ${atA}, B ${atB}`);
  }
  // The spoofed range has a route back through wan0, or its reverse-path filter drops it.
  await a.exec("appliance", ["ip", "route", "replace", "198.18.0.0/15", "dev", "wan0"]);
  const mac = await wanMac(a);
  const pps = Math.round(o.unlocks / 2.5);
  const m0 = await metrics(cluster.endpoints[0]);
  const watch = countByArea(cluster.endpoints, prefix, m0.revision);
  const t0 = Date.now();
  o.log(`cluster: ${o.loadSeconds} s of SYNs from the unlocked sources at ${pps} pps via A`);
  let left = o.loadSeconds;
  while (left > 0) {
    const seconds = Math.min(60, left);
    const r = await a.tryExec("client2", [
      Deno.execPath(),
      "run",
      "-A",
      `${here}syn_flood.ts`,
      "--iface",
      "eth0",
      "--mac",
      mac,
      "--dst",
      LAB.wan,
      "--port",
      "52201",
      "--pps",
      String(pps),
      "--first-source",
      FLOOD_FIRST,
      "--sources",
      String(o.unlocks),
      "--seconds",
      String(seconds),
    ]);
    if (r.code !== 0) throw new Error(`syn_flood: ${r.stderr.trim()}`);
    left -= seconds;
  }
  const m1 = await metrics(cluster.endpoints[0]);
  const t1 = Date.now();
  await sleep(500); // the watch's last events
  await watch.stop();
  const window = (t1 - t0) / 1000;
  const unlockWrites = watch.counts["unlocks"] ?? 0;
  return {
    unlocks: o.unlocks,
    unlocksAtA: atA,
    windowSeconds: round(window, 1),
    floodPps: pps,
    puts: m1.puts - m0.puts,
    deletes: m1.deletes - m0.deletes,
    revisions: m1.revision - m0.revision,
    putsPerSecond: round((m1.puts - m0.puts) / window, 1),
    revisionsPerSecond: round((m1.revision - m0.revision) / window, 2),
    byArea: watch.counts,
    unlockWritesPerSecond: round(unlockWrites / window, 1),
  };
}

/** Runs (a), (b) and (c) on one cluster and one single box; everything is taken down after. */
export async function runClusterBench(o: ClusterBenchOptions): Promise<ClusterBenchResult> {
  const result: ClusterBenchResult = {
    forwarding: null,
    knockAtoB: null,
    writes: null,
    errors: [],
  };
  const dir = await Deno.makeTempDir({ prefix: "knockgate-cluster-bench-" });
  const labs: RunningLab[] = [];
  let cluster: EtcdCluster | null = null;
  let relays: EtcdRelays | null = null;
  try {
    o.log("cluster: 3 etcd members, a single box and nodes A and B");
    cluster = await EtcdCluster.start(3);
    relays = await EtcdRelays.start(cluster);
    const prefix = `/kgbench-${crypto.randomUUID().slice(0, 8)}/`;
    const base = await benchConfig(dir);
    // The knock samples end each unlock by revocation: unlocks keep the default lifetime.
    const plain = (c: Record<string, unknown>) => {
      const knock = c.knock as Record<string, unknown>;
      delete knock.lifetimeSeconds;
    };
    const singleCfg = await variant(base, `${dir}/single.json`, plain);
    const endpoints = cluster.endpoints;
    const clusterCfg = await variant(base, `${dir}/node.json`, (c) => {
      plain(c);
      c.store = { backend: "etcd", endpoints, prefix, path: `${dir}/node.kv` };
    });
    const single = await startLab({ config: singleCfg });
    labs.push(single);
    const a = await startLab({
      config: clusterCfg,
      appliance: false,
      args: ["--node-name", "kg-a"],
    });
    labs.push(a);
    await relays.join(a);
    await a.startAppliance();
    const b = await startLab({
      config: clusterCfg,
      appliance: false,
      args: ["--node-name", "kg-b"],
    });
    labs.push(b);
    await relays.join(b);
    await Deno.copyFile(`${a.stateDir}/knockgate.kv.key`, `${b.stateDir}/knockgate.kv.key`);
    await Deno.chmod(`${b.stateDir}/knockgate.kv.key`, 0o600);
    await b.startAppliance();
    const token = await signIn(a);
    try {
      result.forwarding = await forwarding(single, a, o);
    } catch (e) {
      result.errors.push(`forwarding: ${(e as Error).message}`);
    }
    try {
      result.knockAtoB = await knockAtoB(a, b, token, o);
    } catch (e) {
      result.errors.push(`knock at A to B: ${(e as Error).message}`);
    }
    try {
      result.writes = await writesUnderLoad(cluster, prefix, a, b, token, dir, o);
    } catch (e) {
      result.errors.push(`etcd writes: ${(e as Error).message}`);
    }
  } catch (e) {
    result.errors.push(`cluster: ${(e as Error).stack ?? e}`);
  } finally {
    for (const lab of labs) await lab.down().catch(() => {});
    await relays?.close();
    await cluster?.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return result;
}

const f = (x: number | null | undefined, d = 2) =>
  x === null || x === undefined || !Number.isFinite(x) ? "n/a" : x.toFixed(d);

/** The cluster figures as a markdown section. */
export function renderCluster(r: ClusterBenchResult, note: string): string {
  const out = ["## Cluster (3 etcd members, nodes A and B, a single box beside)", "", note, ""];
  const fw = r.forwarding;
  if (fw) {
    out.push(
      `| TCP 1 stream (${fw.seconds} s runs, median of ${fw.singleGbps.length}) | Gbit/s | runs |`,
      "| --- | --- | --- |",
      `| single box (KV file) | ${f(fw.singleMedian)} | ${
        fw.singleGbps.map((x) => f(x)).join(", ")
      } |`,
      `| node A of the cluster | ${f(fw.clusterMedian)} | ${
        fw.clusterGbps.map((x) => f(x)).join(", ")
      } |`,
      `| node / single | ${f(fw.clusterMedian / fw.singleMedian)} | |`,
      "",
    );
  }
  const k = r.knockAtoB;
  if (k) {
    out.push(
      `Knock at A (last knock sent) to a connect through B completed, ${k.samples} knocks: ` +
        `median ${f(k.medianMs, 0)} ms, p99 ${
          f(k.p99Ms, 0)
        } ms, min ${k.minMs} ms, max ${k.maxMs} ms` +
        `${k.failures > 0 ? `, ${k.failures} not admitted within 10 s` : ""}.`,
      "",
    );
  }
  const w = r.writes;
  if (w) {
    const areas = Object.entries(w.byArea).map(([a, n]) => `${a} ${n}`).join(", ");
    out.push(
      `etcd writes with ${w.unlocks} unlocks refreshed by traffic at A (${w.floodPps} SYN/s over ` +
        `${w.windowSeconds} s, both nodes holding them): ${w.puts} puts and ${w.deletes} deletes ` +
        `(\`etcd_mvcc_put_total\`, \`etcd_mvcc_delete_total\`), ${w.revisions} revisions: ` +
        `**${f(w.putsPerSecond, 1)} puts/s**, ${f(w.revisionsPerSecond)} txns/s; ` +
        `unlock keys ${f(w.unlockWritesPerSecond, 1)}/s (by area: ${areas}).`,
      "",
    );
  }
  if (r.errors.length > 0) out.push(...r.errors.map((e) => `- error: ${e}`), "");
  return out.join("\n");
}
