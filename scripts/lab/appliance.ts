/**
 * Starting the lab: namespaces, the LAN server (HTTP, UDP echo, iperf3) and
 * the appliance process inside its namespace; and taking it all down.
 * Shared by `deno task lab`, the lab tests and the benchmark. Two topologies:
 * the one-uplink lab (`startLab`, topology.ts) and the two-ISP lab
 * (`startTwoUplinkLab`, two_uplinks.ts).
 */
import {
  LAB,
  labDown,
  type LabNames,
  labNames,
  labUp,
  nsRun,
  runSuffix,
  waitFor,
} from "./topology.ts";
import { TWO_UPLINKS, type TwoUplinkNames, twoUplinkNames, twoUplinksUp } from "./two_uplinks.ts";
import { run } from "../../src/host/run.ts";
import { DATAPLANE_V8_FLAGS } from "../../src/datapath/v8_flags.ts";

const root = new URL("../../", import.meta.url).pathname;

/** Namespace names of a topology, by role; every topology has an `appliance`. */
export type Names<N> = Record<keyof N, string> & { appliance: string };

/** A running lab with its appliance (`N`: the topology's namespace names). */
export interface RunningLab<N extends Names<N> = LabNames> {
  names: N;
  suffix: string;
  /** The appliance process (null when started with `appliance: false`). */
  appliance: Deno.ChildProcess | null;
  /** Where the appliance's stdout and stderr go. */
  logFile: string;
  /** A directory of this run's state (the appliance's KV store); removed by `down()`. */
  stateDir: string;
  /** Runs a command in a namespace; throws on failure. */
  exec(ns: keyof N, argv: string[]): Promise<string>;
  /** Runs a command in a namespace and returns its result, never throwing. */
  tryExec(
    ns: keyof N,
    argv: string[],
  ): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Stops the appliance (SIGTERM, bounded wait) and starts it again on the same store. */
  restartAppliance(): Promise<void>;
  /**
   * Stops the appliance with `signal` (SIGKILL: a crash) and waits for it to
   * exit; its fail-closed nftables table stays, as on a real host.
   */
  stopAppliance(signal?: "SIGTERM" | "SIGKILL"): Promise<void>;
  /** Starts the appliance again (after `stopAppliance`) on the same store. */
  startAppliance(): Promise<void>;
  /** Takes everything down; safe to call twice. */
  down(): Promise<void>;
}

/** Options for `startLab`. */
export interface LabOptions {
  /** Appliance config file (default config/appliance.jsonc). */
  config?: string;
  /** Start the appliance (default true); false leaves the appliance namespace bare. */
  appliance?: boolean;
  /** Extra arguments for the appliance. */
  args?: string[];
  /** Extra environment for the appliance. */
  env?: Record<string, string>;
  /** The dual-stack lab (`LAB6` addresses beside the IPv4 ones); one-uplink lab only. */
  ipv6?: boolean;
}

/** The one-uplink lab up (topology.ts); on any failure it is torn down before the error is rethrown. */
export function startLab(opts: LabOptions = {}): Promise<RunningLab> {
  const up = (n: LabNames) => labUp(n, { ipv6: opts.ipv6 });
  return startTopology({ names: labNames, up, servers: startServer }, opts);
}

/**
 * The two-ISP lab up (two_uplinks.ts), by default with the appliance on
 * config/lab-two-uplinks.jsonc; torn down on any failure, as `startLab`.
 */
export function startTwoUplinkLab(opts: LabOptions = {}): Promise<RunningLab<TwoUplinkNames>> {
  return startTopology(
    { names: twoUplinkNames, up: twoUplinksUp, servers: startTwoUplinkServers },
    { ...opts, config: opts.config ?? `${root}config/lab-two-uplinks.jsonc` },
  );
}

/** How to build one topology's namespaces and start its servers. */
interface Topology<N extends Names<N>> {
  names(suffix: string): N;
  up(names: N): Promise<void>;
  servers(lab: RunningLab<N>): Promise<void>;
}

async function startTopology<N extends Names<N>>(
  topology: Topology<N>,
  opts: LabOptions,
): Promise<RunningLab<N>> {
  const suffix = runSuffix();
  const names = topology.names(suffix);
  const logFile = await Deno.makeTempFile({ prefix: `knockgate-${suffix}-`, suffix: ".log" });
  const stateDir = await Deno.makeTempDir({ prefix: `knockgate-${suffix}-` });
  let appliance: Deno.ChildProcess | null = null;
  const lab: RunningLab<N> = {
    names,
    suffix,
    get appliance() {
      return appliance;
    },
    logFile,
    stateDir,
    exec: (ns, argv) => nsRun(names[ns], argv),
    tryExec: (ns, argv) => run(["ip", "netns", "exec", names[ns], ...argv]),
    restartAppliance: async () => {
      await stopAppliance(appliance);
      appliance = await startAppliance(lab, opts);
    },
    stopAppliance: async (signal = "SIGTERM") => {
      await stopAppliance(appliance, signal);
      appliance = null;
    },
    startAppliance: async () => {
      if (!appliance) appliance = await startAppliance(lab, opts);
    },
    down: async () => {
      await stopAppliance(appliance);
      appliance = null;
      await labDown(names);
      await Deno.remove(stateDir, { recursive: true }).catch(() => {});
      await Deno.remove(logFile).catch(() => {});
    },
  };
  try {
    await topology.up(names);
    await topology.servers(lab);
    if (opts.appliance !== false) appliance = await startAppliance(lab, opts);
    return lab;
  } catch (err) {
    await lab.down();
    throw err;
  }
}

/** Stops an appliance: `signal` (SIGTERM: up to 5 s for a clean stop, it saves its unlock table), then SIGKILL. */
export async function stopAppliance(
  child: Deno.ChildProcess | null,
  signal: "SIGTERM" | "SIGKILL" = "SIGTERM",
): Promise<void> {
  if (!child) return;
  try {
    child.kill(signal);
  } catch { /* already gone */ }
  await Promise.race([child.status, new Promise((r) => setTimeout(r, 5000))]);
  try {
    child.kill("SIGKILL");
  } catch { /* already gone */ }
}

/** Starts the lab's HTTP server (server.ts) answering as `address` in namespace `ns`. */
function spawnServer(ns: string, argv: string[]): void {
  new Deno.Command("ip", {
    args: ["netns", "exec", ns, ...argv],
    // Deno's update check would send DNS queries from the LAN through the appliance.
    env: { DENO_NO_UPDATE_CHECK: "1" },
    stdout: "null",
    stderr: "null",
  }).spawn();
}

function httpServer(address: string): string[] {
  return [Deno.execPath(), "run", "-A", `${root}scripts/lab/server.ts`, address];
}

/** Waits (at most 15 s) until something listens on TCP 8080 in namespace `ns`. */
async function listening(ns: string, what: string): Promise<void> {
  const up = await waitFor(
    async () =>
      (await run(["ip", "netns", "exec", ns, "ss", "-Hltn", "sport = :8080"])).stdout.includes(
        "8080",
      ),
    15000,
  );
  if (!up) throw new Error(`${what} did not start within 15 s`);
}

async function startServer(lab: RunningLab): Promise<void> {
  const s = lab.names.server;
  spawnServer(s, httpServer(LAB.server));
  spawnServer(s, ["iperf3", "-s", "-B", LAB.server, "-p", "5201"]);
  await listening(s, "lab server");
}

/** The two LAN servers (iperf3 beside the first) and the remote server on the Internet. */
async function startTwoUplinkServers(lab: RunningLab<TwoUplinkNames>): Promise<void> {
  const n = lab.names, T = TWO_UPLINKS;
  spawnServer(n.server, httpServer(T.server));
  spawnServer(n.server, ["iperf3", "-s", "-B", T.server, "-p", "5201"]);
  spawnServer(n.server2, httpServer(T.server2));
  spawnServer(n.remote, httpServer(T.remote));
  await listening(n.server, "lab server");
  await listening(n.server2, "second lab server");
  await listening(n.remote, "remote server");
}

/**
 * Starts the appliance in `lab.names.appliance` with its store in
 * `lab.stateDir` and its output appended to `lab.logFile`; resolves once it
 * logs that it is ready (at most 30 s).
 */
export async function startAppliance<N extends Names<N>>(
  lab: RunningLab<N>,
  opts: LabOptions,
): Promise<Deno.ChildProcess> {
  const config = opts.config ?? `${root}config/appliance.jsonc`;
  const argv = [
    "ip",
    "netns",
    "exec",
    lab.names.appliance,
    Deno.execPath(),
    "run",
    "-A",
    `--v8-flags=${DATAPLANE_V8_FLAGS}`,
    `${root}mod.ts`,
    "--config",
    config,
    // Each lab run has its own store, so runs never share state.
    "--store",
    `${lab.stateDir}/knockgate.kv`,
    "--routing",
    ...(opts.args ?? []),
  ];
  const readyBefore = await readyCount(lab.logFile);
  // The process writes straight into the log file, so nothing is lost if this parent dies.
  const child = new Deno.Command("sh", {
    args: ["-c", 'exec "$@" >>"$KG_LOG" 2>&1', "sh", ...argv],
    env: { ...opts.env, KG_LOG: lab.logFile },
    stdin: "null",
  }).spawn();
  let exited = false;
  child.status.then(() => exited = true);
  const ready = await waitFor(
    // A process that exited (a bad config, say) will not become ready: stop waiting.
    async () => exited || (await readyCount(lab.logFile)) > readyBefore,
    30000,
    100,
  );
  if (!ready || exited) {
    throw new Error(
      `appliance ${exited ? "exited" : "did not start within 30 s"}:\n${await Deno.readTextFile(
        lab.logFile,
      )}`,
    );
  }
  return child;
}

/** How many times the log says the appliance became ready. */
async function readyCount(logFile: string): Promise<number> {
  return (await Deno.readTextFile(logFile)).split("appliance ready").length - 1;
}
