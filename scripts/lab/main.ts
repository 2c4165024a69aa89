/**
 * `deno task lab`: brings the lab up with the appliance on
 * config/appliance.jsonc, prints what to try, and takes it all down on Ctrl-C.
 */
import { startLab } from "./appliance.ts";
import { LAB } from "./topology.ts";

const config = Deno.args[0];
console.log("Starting the Knockgate lab (namespaces, LAN server, appliance)...");
const lab = await startLab({ config });
const n = lab.names;
const tail = new Deno.Command("tail", { args: ["-n", "+1", "-f", lab.logFile], stdout: "inherit" })
  .spawn();
console.log(`
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
  ip netns exec ${n.server} curl http://${LAB.lan}:8443/   # management API from the LAN

Appliance log: ${lab.logFile} (followed below). Ctrl-C takes the lab down.
`);
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  console.log("\nTaking the lab down...");
  try {
    tail.kill();
  } catch { /* gone */ }
  await lab.down();
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
await lab.appliance?.status;
if (!stopping) console.log("The appliance exited.");
await stop();
