/**
 * `deno task bench`: the performance figures of the appliance against the
 * kernel doing the same NAT, in one run. The in-memory benchmarks (datapath
 * pipeline, conntrack, knock engine) each run in a fresh Deno process (clean
 * heap, `--expose-gc` for steadier memory figures); then two dual-stack labs
 * come up (kernel NAT and appliance) and the transfers alternate between them
 * (IPv6 TCP too: the appliance's pinhole against an nftables inet forward); then
 * the same pair in the two-ISP lab (traffic over ISP A while ISP B is
 * configured and probed), each against its own kernel-NAT lab. In the
 * one-uplink lab the ceiling sections run too (ceiling.ts: stepped UDP from
 * several senders, `UDP_SEGMENT` senders, RTT under a SYN flood). Writes
 * artifacts/bench/<timestamp>.{json,md}, artifacts/bench/latest.md and, for a
 * full run, docs/bench.md. Benchmarks never run in the test suite.
 *
 *   deno task bench                 # full: 3 x 5 s per measurement, a few minutes
 *   deno task bench --quick         # 1 x 2 s
 *   deno task bench --reps 5 --seconds 10 --udp-seconds 5 --no-lab
 *   deno task bench --uplinks 2     # the lab with two uplinks only
 *   deno task bench --cluster       # only the cluster benchmark (cluster_bench.ts, ~5 min)
 */
import { parseArgs } from "node:util";
import { runConntrackBench } from "./conntrack_bench.ts";
import { runKnockBench } from "./knock_bench.ts";
import { runLabBench } from "./lab_bench.ts";
import { runPipelineBench } from "./pipeline_bench.ts";
import { renderCluster, runClusterBench } from "./cluster_bench.ts";
import { DEFAULT_STEPS } from "./ceiling.ts";
import { type BenchRun, renderMarkdown } from "./report.ts";
import { taskArgs } from "../../src/cli/task_args.ts";
import { DATAPLANE_V8_FLAGS } from "../../src/datapath/v8_flags.ts";
import { autoQueues } from "../../src/config/load.ts";

const root = new URL("../../", import.meta.url).pathname;
const self = new URL(import.meta.url).pathname;
const PARTS = ["pipeline", "conntrack", "knock"] as const;
type Part = typeof PARTS[number];

const USAGE = `Usage: deno task bench [--quick] [options]
  --quick              1 x 2 s per measurement (default 3 x 5 s); docs/bench.md untouched
  --reps N             repetitions per lab measurement (median reported)
  --seconds S          seconds per iperf3 run
  --udp-seconds S      seconds per UDP flood
  --udp-size B         UDP payload bytes of the flood (default 64)
  --ping-count N       pings per rep, 10 ms apart (default 50)
  --knock-samples N    knock-latency samples (default 5)
  --udp-senders N      paced senders of the stepped UDP ceiling flood (default 2)
  --step-seconds S     seconds per offered rate (default 3, quick 2)
  --steps A,B,C        offered rates in pps (default 50k up by x1.4 to ~1.5M)
  --flood-pps N        SYN flood rate for the RTT-under-flood run (default 200000)
  --flood-senders N    SYN flood processes sharing that rate (default 2)
  --flood-seconds S    seconds of pings per RTT run (default 5, quick 2)
  --no-ceiling         skip the ceiling sections (stepped UDP, UDP_SEGMENT, SYN flood)
  --sizes A,B,C        conntrack table sizes (default 10000,100000,1000000)
  --uplinks LIST       lab topologies: 1 (one uplink), 2 (two ISPs), or 1,2 (default)
  --queues N           the appliance's TUN queues, one Worker each (default: the config's "auto")
  --cluster            only the cluster benchmark: 3 etcd members, two nodes, a single box
                       (forwarding beside, knock at A to admitted at B, etcd writes under load)
  --cluster-knocks N   knocks of the A-to-B latency (default 30, quick 5)
  --unlocks N          unlocks refreshed by traffic while etcd's writes are counted (default 1000)
  --load-seconds S     seconds of that traffic (default 120, quick 30)
  --no-lab             only the in-memory benchmarks
  --no-micro           only the lab
  --docs / --no-docs   write docs/bench.md (default: for full runs of every part only)
  --part NAME          internal: run one in-memory part and print its JSON`;

function flags() {
  return parseArgs({
    args: taskArgs(Deno.args),
    options: {
      quick: { type: "boolean", default: false },
      reps: { type: "string" },
      seconds: { type: "string" },
      "udp-seconds": { type: "string" },
      "udp-size": { type: "string", default: "64" },
      "ping-count": { type: "string" },
      "knock-samples": { type: "string" },
      "udp-senders": { type: "string" },
      "step-seconds": { type: "string" },
      steps: { type: "string" },
      "flood-pps": { type: "string" },
      "flood-seconds": { type: "string" },
      "flood-senders": { type: "string" },
      "no-ceiling": { type: "boolean", default: false },
      sizes: { type: "string", default: "10000,100000,1000000" },
      uplinks: { type: "string", default: "1,2" },
      queues: { type: "string" },
      cluster: { type: "boolean", default: false },
      "cluster-knocks": { type: "string" },
      unlocks: { type: "string" },
      "load-seconds": { type: "string" },
      "no-lab": { type: "boolean", default: false },
      "no-micro": { type: "boolean", default: false },
      docs: { type: "boolean" },
      "no-docs": { type: "boolean", default: false },
      part: { type: "string" },
      help: { type: "boolean", default: false },
    },
  }).values;
}

type Flags = ReturnType<typeof flags>;

function positive(name: string, v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!(n > 0)) throw new Error(`Cannot bench: --${name} ${v} is not a positive number`);
  return n;
}

/** Runs one in-memory part in this process (the child side of `--part`). */
async function runPart(part: Part, f: Flags): Promise<unknown> {
  if (part === "pipeline") {
    return await runPipelineBench(
      f.quick ? { rounds: 3, fastPackets: 300_000, slowPackets: 50_000 } : {},
    );
  }
  if (part === "conntrack") return await runConntrackBench(f.sizes.split(",").map(Number));
  return await runKnockBench();
}

/** Runs one in-memory part in a fresh Deno process and parses its JSON. */
async function spawnPart(part: Part, f: Flags): Promise<unknown> {
  // The appliance's own V8 flags, so the figures are the appliance's.
  const v8 = `--v8-flags=--expose-gc,${DATAPLANE_V8_FLAGS}`;
  const args = ["run", "-A", v8, self, "--part", part, "--sizes", f.sizes];
  if (f.quick) args.push("--quick");
  const out = await new Deno.Command(Deno.execPath(), { args, cwd: root, stderr: "inherit" })
    .output();
  if (!out.success) throw new Error(`Cannot bench ${part}: the child exited ${out.code}`);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

async function text(argv: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(argv[0], { args: argv.slice(1), cwd: root }).output();
    return new TextDecoder().decode(out.stdout).trim();
  } catch {
    return "unknown";
  }
}

/** The hand-written end of docs/bench.md, from its "## Notes" heading on: kept across runs. */
async function keptNotes(file: string): Promise<string> {
  const old = await Deno.readTextFile(file).catch(() => "");
  const at = old.indexOf("\n## Notes\n");
  return at < 0 ? "" : old.slice(at + 1);
}

const loadAvg = () => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
const log = (line: string) =>
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}`);

async function main(): Promise<number> {
  let f: Flags;
  try {
    f = flags();
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (f.help) {
    console.log(USAGE);
    return 0;
  }
  if (f.part) {
    if (!(PARTS as readonly string[]).includes(f.part)) throw new Error(`unknown part ${f.part}`);
    console.log(JSON.stringify(await runPart(f.part as Part, f)));
    return 0;
  }
  if (f.cluster) return await clusterMain(f);
  const uplinks = f.uplinks.split(",").map((x) => x.trim());
  if (uplinks.length === 0 || uplinks.some((x) => x !== "1" && x !== "2")) {
    console.error(`--uplinks takes 1, 2 or 1,2; got ${f.uplinks}\n${USAGE}`);
    return 2;
  }
  const q = f.quick;
  const labOpts = {
    reps: positive("reps", f.reps, q ? 1 : 3),
    seconds: positive("seconds", f.seconds, q ? 2 : 5),
    udpSeconds: positive("udp-seconds", f["udp-seconds"], q ? 2 : 5),
    udpSize: positive("udp-size", f["udp-size"], 64),
    pingCount: positive("ping-count", f["ping-count"], q ? 20 : 50),
    connectSamples: q ? 5 : 20,
    knockSamples: positive("knock-samples", f["knock-samples"], q ? 2 : 5),
    queues: f.queues ? Math.round(positive("queues", f.queues, 1)) : autoQueues(),
    ceiling: f["no-ceiling"] ? null : {
      udpSenders: Math.round(positive("udp-senders", f["udp-senders"], 2)),
      udpSize: positive("udp-size", f["udp-size"], 64),
      stepSeconds: positive("step-seconds", f["step-seconds"], q ? 2 : 3),
      steps: f.steps
        ? f.steps.split(",").map((x) => positive("steps", x.trim(), 1))
        : DEFAULT_STEPS,
      gsoSeconds: positive("udp-seconds", f["udp-seconds"], q ? 2 : 5),
      floodPps: positive("flood-pps", f["flood-pps"], 200_000),
      floodSenders: Math.round(positive("flood-senders", f["flood-senders"], 2)),
      floodSeconds: positive("flood-seconds", f["flood-seconds"], q ? 2 : 5),
    },
    log,
  };
  const startedAt = new Date();
  const run: BenchRun = {
    startedAt: startedAt.toISOString(),
    finishedAt: "",
    mode: q ? "quick" : "full",
    environment: {
      commit: await text(["git", "rev-parse", "--short", "HEAD"]),
      kernel: await text(["uname", "-r"]),
      deno: Deno.version.deno,
      cpus: navigator.hardwareConcurrency,
      loadAvgStart: loadAvg(),
      loadAvgEnd: "",
    },
    lab: null,
    labTwoUplinks: null,
    pipeline: null,
    conntrack: null,
    knock: null,
    errors: [],
  };
  if (!f["no-micro"]) {
    for (const part of PARTS) {
      log(`${part}: in-memory benchmark`);
      try {
        const r = await spawnPart(part, f);
        if (part === "pipeline") run.pipeline = r as BenchRun["pipeline"];
        else if (part === "conntrack") run.conntrack = r as BenchRun["conntrack"];
        else run.knock = r as BenchRun["knock"];
      } catch (e) {
        run.errors.push((e as Error).message);
      }
    }
  }
  if (!f["no-lab"] && uplinks.includes("1")) {
    try {
      run.lab = await runLabBench(labOpts, "one-uplink");
      run.errors.push(...run.lab.errors);
    } catch (e) {
      run.errors.push(`lab: ${(e as Error).stack ?? e}`);
    }
  }
  if (!f["no-lab"] && uplinks.includes("2")) {
    try {
      run.labTwoUplinks = await runLabBench(labOpts, "two-uplinks");
      run.errors.push(...run.labTwoUplinks.errors.map((x) => `two uplinks: ${x}`));
    } catch (e) {
      run.errors.push(`lab (two uplinks): ${(e as Error).stack ?? e}`);
    }
  }
  run.finishedAt = new Date().toISOString();
  run.environment.loadAvgEnd = loadAvg();
  const md = renderMarkdown(run);
  const dir = `${root}artifacts/bench`;
  await Deno.mkdir(dir, { recursive: true });
  const stamp = run.startedAt.replace(/[:.]/g, "-");
  await Deno.writeTextFile(`${dir}/${stamp}.json`, JSON.stringify(run, null, 2) + "\n");
  await Deno.writeTextFile(`${dir}/${stamp}.md`, md);
  await Deno.writeTextFile(`${dir}/latest.md`, md);
  const docs = f.docs ??
    (!q && !f["no-docs"] && !f["no-lab"] && !f["no-micro"] && !f["no-ceiling"] &&
      uplinks.length === 2);
  if (docs && !f["no-docs"]) {
    const notes = await keptNotes(`${root}docs/bench.md`);
    await Deno.writeTextFile(`${root}docs/bench.md`, notes ? `${md.trimEnd()}\n\n${notes}` : md);
  }
  console.log(md);
  log(
    `wrote artifacts/bench/${stamp}.{json,md}${docs && !f["no-docs"] ? " and docs/bench.md" : ""}`,
  );
  return run.errors.length > 0 ? 1 : 0;
}

/** `--cluster`: the cluster benchmark alone, into artifacts/bench/cluster-<timestamp>.{json,md}. */
async function clusterMain(f: Flags): Promise<number> {
  const q = f.quick;
  const startedAt = new Date().toISOString();
  const loadStart = loadAvg();
  const result = await runClusterBench({
    reps: positive("reps", f.reps, q ? 1 : 3),
    seconds: positive("seconds", f.seconds, q ? 2 : 5),
    knockSamples: Math.round(positive("cluster-knocks", f["cluster-knocks"], q ? 5 : 30)),
    unlocks: Math.round(positive("unlocks", f.unlocks, 1000)),
    loadSeconds: positive("load-seconds", f["load-seconds"], q ? 30 : 120),
    log,
  });
  const commit = await text(["git", "rev-parse", "--short", "HEAD"]);
  const note = `Run ${startedAt} (commit ${commit}, Deno ${Deno.version.deno}, ` +
    `${navigator.hardwareConcurrency} CPUs, load ${loadStart} -> ${loadAvg()}).`;
  const md = renderCluster(result, note);
  const dir = `${root}artifacts/bench`;
  await Deno.mkdir(dir, { recursive: true });
  const stamp = `cluster-${startedAt.replace(/[:.]/g, "-")}`;
  await Deno.writeTextFile(
    `${dir}/${stamp}.json`,
    JSON.stringify({ startedAt, commit, ...result }, null, 2) + "\n",
  );
  await Deno.writeTextFile(`${dir}/${stamp}.md`, md);
  console.log(md);
  log(`wrote artifacts/bench/${stamp}.{json,md}`);
  return result.errors.length > 0 ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main());
