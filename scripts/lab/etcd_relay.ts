/**
 * Lab appliances reaching a real etcd cluster on the host's loopback: a
 * loopback listener per member in each appliance namespace, joined over
 * Unix sockets to the members (`tests/lab/_unix_relay.ts`), so no link into
 * the host's network is made. Used by the fleet lab tests and the cluster
 * benchmark; `close` stops every relay.
 */
import type { EtcdCluster } from "../../src/store/_etcd_cluster.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

function spawnRelay(args: string[], ns?: string): Deno.ChildProcess {
  const argv = [Deno.execPath(), "run", "-A", `${ROOT}tests/lab/_unix_relay.ts`, ...args];
  const [cmd, ...rest] = ns ? ["ip", "netns", "exec", ns, ...argv] : argv;
  return new Deno.Command(cmd, {
    args: rest,
    env: { DENO_NO_UPDATE_CHECK: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
}

/** Waits (at most 20 s) for a relay's `relay ready`. */
async function relayReady(child: Deno.ChildProcess): Promise<void> {
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const timer = setTimeout(() => reader.cancel().catch(() => {}), 20_000);
  let seen = "";
  try {
    while (!seen.includes("relay ready")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`relay exited or timed out before it was ready: ${seen}`);
      seen += value;
    }
  } finally {
    clearTimeout(timer);
    reader.releaseLock();
  }
}

async function stopRelay(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGKILL");
  } catch { /* already gone */ }
  await child.status.catch(() => {});
  await child.stdout.cancel().catch(() => {});
}

/** The relays joining labs to a cluster's members. */
export class EtcdRelays {
  readonly #children: Deno.ChildProcess[] = [];

  private constructor(readonly dir: string, readonly ports: string[]) {}

  /** The host side: one Unix socket per member of `cluster`. */
  static async start(cluster: EtcdCluster): Promise<EtcdRelays> {
    const dir = await Deno.makeTempDir({ prefix: "knockgate-etcd-relay-" });
    const relays = new EtcdRelays(dir, cluster.endpoints.map((e) => new URL(e).port));
    try {
      const host = spawnRelay([
        "unix",
        ...relays.ports.map((p, i) => `${dir}/m${i}.sock=127.0.0.1:${p}`),
      ]);
      relays.#children.push(host);
      await relayReady(host);
    } catch (err) {
      await relays.close();
      throw err;
    }
    return relays;
  }

  /** The namespace side in `lab`: its loopback's member ports lead to the members. */
  async join(lab: { names: { appliance: string } }): Promise<void> {
    const inside = this.ports.map((p, i) => `127.0.0.1:${p}=${this.dir}/m${i}.sock`);
    const child = spawnRelay(["tcp", ...inside], lab.names.appliance);
    this.#children.push(child);
    await relayReady(child);
  }

  /** Stops every relay and removes the sockets. */
  async close(): Promise<void> {
    for (const c of this.#children) await stopRelay(c);
    this.#children.length = 0;
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}
