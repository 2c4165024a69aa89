/**
 * `deno task lab [-- FILE]`: brings the lab up with the appliance on
 * config/appliance.jsonc (or FILE), prints what to try, and takes it all down
 * on SIGINT (Ctrl-C), SIGTERM, SIGHUP (the terminal closed), when its stdout
 * breaks (the reader of a pipe went away), when its parent dies and when the
 * appliance exits.
 */
import { parseArgs } from "node:util";
import { type RunningLab, startLab } from "./appliance.ts";
import { LAB } from "./topology.ts";
import { taskArgs } from "../../src/cli/task_args.ts";

const USAGE = `Usage: deno task lab [-- FILE]
  FILE   appliance configuration (default config/appliance.jsonc)`;

let parsed;
try {
  parsed = parseArgs({
    args: taskArgs(Deno.args),
    options: { help: { type: "boolean" } },
    allowPositionals: true,
  });
} catch (e) {
  console.error(`${(e as Error).message}\n${USAGE}`);
  Deno.exit(2);
}
if (parsed.values.help) {
  console.log(USAGE);
  Deno.exit(0);
}
if (parsed.positionals.length > 1) {
  console.error(`Expected at most one FILE, got ${parsed.positionals.length}\n${USAGE}`);
  Deno.exit(2);
}

/** Prints, never throwing: a closed pipe or a hung-up terminal must not skip the teardown. */
function say(text: string): void {
  try {
    console.log(text);
  } catch { /* stdout is gone; the teardown goes on */ }
}

let lab: RunningLab | null = null;
let tail: Deno.ChildProcess | null = null;
let stopping = false;
let stopped: Promise<never> | null = null;
const stop = (why: string, code = 0): Promise<never> => {
  stopped ??= (async () => {
    stopping = true;
    say(`\nTaking the lab down (${why})...`);
    try {
      tail?.kill();
    } catch { /* gone */ }
    await lab?.down();
    Deno.exit(code);
  })();
  return stopped;
};
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  Deno.addSignalListener(signal, () => stop(signal));
}
// `deno task` runs the npm package's launcher (node_modules/.bin/deno, a spawnSync shim) as our
// parent; a signal ends the launcher without reaching us. Orphaned, we take the lab down.
const parentPid = () =>
  Number(Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ")[1]);
const parent = parentPid();
setInterval(() => {
  if (parentPid() !== parent) stop("parent process gone");
}, 250);
// A write to a broken stdout rejects somewhere we do not await: still take the lab down.
globalThis.addEventListener("unhandledrejection", (e) => {
  e.preventDefault();
  stop(`error: ${e.reason}`, 1);
});
globalThis.addEventListener("error", (e) => {
  e.preventDefault();
  stop(`error: ${e.message}`, 1);
});

say("Starting the Knockgate lab (namespaces, LAN server, appliance)...");
try {
  lab = await startLab({ config: parsed.positionals[0] });
} catch (e) {
  try {
    console.error((e as Error).message);
  } catch { /* stderr is gone too */ }
  Deno.exit(1);
}
// A signal that came while the lab was coming up: startLab has returned, take it down now.
if (stopping) await stop("signal during start");
const n = lab.names;
tail = new Deno.Command("tail", {
  args: ["-n", "+1", "-f", lab.logFile],
  stdout: "inherit",
  stderr: "null",
}).spawn();
// GNU tail -f exits as soon as its output pipe has no reader (it polls for it), even when the
// log is quiet: the lab's stdout broke.
tail.status.then(() => stop("stdout closed"));
say(`
Lab up. Namespaces: client ${n.client} (${LAB.client}), second client ${n.client2} (${LAB.client2}),
appliance ${n.appliance} (WAN ${LAB.wan}, LAN ${LAB.lan}), server ${n.server} (${LAB.server}).

Try, in another terminal:
  # locked: the forward enforces knocking, so this times out
  ip netns exec ${n.client} curl -m 3 http://${LAB.wan}:52201/
  # knock as the lab user "alice" (secret and first port from config/appliance.jsonc)
  ip netns exec ${n.client} npx deno task knock --host ${LAB.wan} --first-port 41001 \\
      --secret GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ --then-connect 52201
  ip netns exec ${n.client} curl http://${LAB.wan}:52201/
  ip netns exec ${n.client} iperf3 -c ${LAB.wan} -p 52202 -t 5
  ip netns exec ${n.server} ping -c 3 ${LAB.client}      # LAN to WAN through masquerade
  ip netns exec ${n.client} nmap -Pn -p 52201-52205 ${LAB.wan}
  # management over HTTPS from the LAN, verified by the appliance's self-signed certificate
  ip netns exec ${n.server} curl --cacert ${lab.stateDir}/tls-cert.pem https://${LAB.lan}:8443/api/v1/health

Appliance log: ${lab.logFile} (followed below). Ctrl-C takes the lab down.
`);
await lab.appliance?.status;
if (!stopping) say("The appliance exited.");
await stop("appliance exited");
