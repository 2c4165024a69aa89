/**
 * `deno task lab [-- [--uplinks 2] FILE]`: brings the lab up with the
 * appliance on config/appliance.jsonc (or, with `--uplinks 2`, the two-ISP lab
 * on config/lab-two-uplinks.jsonc; or FILE), prints what to try, and takes it all down
 * on SIGINT (Ctrl-C), SIGTERM, SIGHUP (the terminal closed), when its stdout
 * breaks (the reader of a pipe went away), when its parent dies and when the
 * appliance exits.
 */
import { parseArgs } from "node:util";
import { type Names, type RunningLab, startLab, startTwoUplinkLab } from "./appliance.ts";
import { LAB, type LabNames } from "./topology.ts";
import { TWO_UPLINKS, type TwoUplinkNames } from "./two_uplinks.ts";
import { taskArgs } from "../../src/cli/task_args.ts";

const USAGE = `Usage: deno task lab [-- [--uplinks N] FILE]
  --uplinks N   1: one uplink (default); 2: two ISPs (scripts/lab/two_uplinks.ts)
  FILE          appliance configuration (default config/appliance.jsonc, with
                --uplinks 2 config/lab-two-uplinks.jsonc)`;

let parsed;
try {
  parsed = parseArgs({
    args: taskArgs(Deno.args),
    options: { help: { type: "boolean" }, uplinks: { type: "string", default: "1" } },
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
const uplinks = parsed.values.uplinks;
const config: string | undefined = parsed.positionals[0];
if (uplinks !== "1" && uplinks !== "2") {
  console.error(`--uplinks takes 1 or 2, got ${uplinks}\n${USAGE}`);
  Deno.exit(2);
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

let lab: RunningLab<LabNames> | RunningLab<TwoUplinkNames> | null = null;
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

say(
  `Starting the Knockgate lab (${
    uplinks === "2" ? "two ISPs, " : ""
  }namespaces, LAN server, appliance)...`,
);
try {
  lab = uplinks === "2" ? await startTwoUplinkLab({ config }) : await startLab({ config });
} catch (e) {
  try {
    console.error((e as Error).message);
  } catch { /* stderr is gone too */ }
  Deno.exit(1);
}
// A signal that came while the lab was coming up: startLab has returned, take it down now.
if (stopping) await stop("signal during start");
tail = new Deno.Command("tail", {
  args: ["-n", "+1", "-f", lab.logFile],
  stdout: "inherit",
  stderr: "null",
}).spawn();
// GNU tail -f exits as soon as its output pipe has no reader (it polls for it), even when the
// log is quiet: the lab's stdout broke.
tail.status.then(() => stop("stdout closed"));
say(
  uplinks === "2"
    ? twoUplinkHelp(lab as RunningLab<TwoUplinkNames>)
    : oneUplinkHelp(lab as RunningLab),
);
await lab.appliance?.status;
if (!stopping) say("The appliance exited.");
await stop("appliance exited");

function footer<N extends Names<N>>(lab: RunningLab<N>): string {
  return `Appliance log: ${lab.logFile} (followed below). Ctrl-C takes the lab down.
`;
}

function oneUplinkHelp(lab: RunningLab): string {
  const n = lab.names;
  return `
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

${footer(lab)}`;
}

function twoUplinkHelp(lab: RunningLab<TwoUplinkNames>): string {
  const n = lab.names, T = TWO_UPLINKS;
  const api = `curl --cacert ${lab.stateDir}/tls-cert.pem https://${T.lan}:8443/api/v1`;
  return `
Lab up, two ISPs (scripts/lab/two_uplinks.ts), appliance on ${
    config ?? "config/lab-two-uplinks.jsonc"
  }. Namespaces:
  ISP A ${n.ispa} (gateway ${T.gatewayA}), client A ${n.clienta} (${T.clientA}) behind it
  ISP B ${n.ispb} (gateway ${T.gatewayB}), client B ${n.clientb} (${T.clientB}) behind it
  core ${n.core} joining them, remote server ${n.remote} (${T.remote}, answers with the address it sees)
  appliance ${n.appliance}: wan0 ${T.wanA} and ${T.wanA2} (isp-a), wan1 ${T.wanB} (isp-b), lan0 ${T.lan}
  LAN switch ${n.lan}; servers ${n.server} (${T.server}) and ${n.server2} (${T.server2})

Try, in another terminal:
  # bound to isp-a: open on WAN A, closed on WAN B
  ip netns exec ${n.clienta} curl -m 3 http://${T.wanA}:52301/
  ip netns exec ${n.clienta} curl -m 3 http://${T.wanB}:52301/
  # one public port, two servers: ${T.wanA2} -> ${T.server}, ${T.wanB} -> ${T.server2}
  ip netns exec ${n.clientb} curl http://${T.wanA2}:52302/
  ip netns exec ${n.clientb} curl http://${T.wanB}:52302/
  # knock on WAN A, then the knock-enforced forward opens on WAN B too
  ip netns exec ${n.clienta} npx deno task knock --host ${T.wanA} --first-port 41001 \\
      --secret GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ
  ip netns exec ${n.clienta} curl http://${T.wanB}:52303/
  # replies leave by the uplink they came in on: watch wan1 (and wan0 stay quiet)
  ip netns exec ${n.appliance} tcpdump -n -i wan1 tcp port 52302
  # masquerade from the LAN: the remote sees ISP A's address; take ISP A's gateway away
  # and it sees ISP B's (put it back with "ip addr add ${T.gatewayA}/26 dev app")
  ip netns exec ${n.server} curl http://${T.remote}:8080/
  ip netns exec ${n.ispa} ip addr del ${T.gatewayA}/26 dev app
  ip netns exec ${n.server} curl http://${T.remote}:8080/
  ip netns exec ${n.server} ${api}/health
  # each ISP drops packets from the appliance with a source not its own (BCP 38)
  ip netns exec ${n.ispb} nft list chain inet bcp38 pre

${footer(lab)}`;
}
