/**
 * Lab test: an appliance on a real 3-member etcd cluster (started by the
 * test on the host's loopback, reached through `_etcd_relay.ts`) restarted
 * while every member is down. It must come up closed rather than exit (no
 * crash loop): `/health` 503 `waiting-for-store` with the store's state,
 * management 503 `store_unavailable`, nothing forwarded even for a valid
 * knock. When the members return it loads everything and admits. The time
 * from the members answering to the node serving is printed, not asserted.
 * Skipped without root, /dev/net/tun or etcd-server.
 */
import assert from "node:assert/strict";
import { type RunningLab, startLab } from "../../scripts/lab/appliance.ts";
import { LAB } from "../../scripts/lab/topology.ts";
import { etcdInstalled, withEtcdCluster } from "../../src/store/_etcd_cluster.ts";
import { api, signIn } from "./_api.ts";
import { etcdLabConfig, EtcdRelays } from "./_etcd_relay.ts";
import { curl, knock, labSupported, readLog, removeTestConfig, sleep } from "./_helpers.ts";

const FORWARD = `http://${LAB.wan}:52201/`;
const HELLO = `hello from ${LAB.server}:8080 to ${LAB.client}\n`;

interface HealthBody {
  status: string;
  store: { backend: string; connected: boolean; loaded: boolean; revision: number };
}

/** Runs `fn`; on a failure prints the appliance's log before rethrowing. */
async function logged(lab: RunningLab, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    console.error(`--- appliance log ---\n${(await readLog(lab)).slice(-4000)}`);
    throw err;
  }
}

/** Whether `child` is still running (not exited). */
async function running(child: Deno.ChildProcess | null): Promise<boolean> {
  if (child === null) return false;
  const exited = await Promise.race([child.status.then(() => true), sleep(50).then(() => false)]);
  return !exited;
}

Deno.test({
  name: "lab: a node started while etcd is down comes up closed, then loads and admits",
  ignore: !labSupported() || !etcdInstalled(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    await withEtcdCluster(async (cluster) => {
      const relays = await EtcdRelays.start(cluster);
      const prefix = `/kgstart-${crypto.randomUUID().slice(0, 8)}/`;
      const config = await etcdLabConfig(cluster.endpoints, prefix);
      let lab: RunningLab | null = null;
      try {
        lab = await startLab({ config, appliance: false, args: ["--node-name", "kg-a"] });
        const a = lab;
        await relays.join(a);
        await a.startAppliance(); // the first start seeds the empty cluster
        const token = await signIn(a);
        await a.stopAppliance();
        for (let i = 0; i < 3; i++) await cluster.kill(i);

        await t.step(
          "every member down: the node starts closed and stays up",
          () =>
            logged(a, async () => {
              await a.startAppliance(); // resolves on "appliance ready"
              assert.match(await readLog(a), /store: no etcd member of .* starting closed/);
              const h = await api<HealthBody>(a, "GET", "/health");
              assert.equal(h.status, 503, JSON.stringify(h.body));
              assert.equal(h.body.status, "waiting-for-store");
              assert.deepEqual(
                [h.body.store.backend, h.body.store.connected, h.body.store.loaded],
                ["etcd", false, false],
              );
              const users = await api<{ error: { code: string } }>(a, "GET", "/users", { token });
              assert.equal(users.status, 503, JSON.stringify(users.body));
              assert.equal(users.body.error.code, "store_unavailable");
              // A valid knock opens nothing: the node knows no user and no rule yet.
              const k = await knock(a, "client", ["--transport", "tcp"]);
              assert.equal(k.code, 0, k.stdout + k.stderr);
              assert.equal(await curl(a, "client", FORWARD, 2), null, "forwarded while closed");
              await sleep(2000);
              assert.ok(await running(a.appliance), "the appliance exited while etcd was down");
              assert.equal((await api(a, "GET", "/health")).status, 503);
            }),
        );

        await t.step(
          "members back: the node loads the store and admits",
          () =>
            logged(a, async () => {
              for (let i = 0; i < 3; i++) cluster.restart(i);
              await cluster.waitHealthy();
              const t0 = performance.now();
              let h = await api<HealthBody>(a, "GET", "/health");
              const deadline = t0 + 30_000;
              while (h.status !== 200 && performance.now() < deadline) {
                await sleep(100);
                h = await api<HealthBody>(a, "GET", "/health");
              }
              const ms = Math.round(performance.now() - t0);
              assert.equal(h.status, 200, JSON.stringify(h.body));
              assert.deepEqual([h.body.status, h.body.store.loaded], ["ok", true]);
              console.log(`fleet start: members healthy to /health 200 after ${ms} ms`);
              const users = await api<{ users: { name: string }[] }>(a, "GET", "/users", { token });
              assert.equal(users.status, 200, JSON.stringify(users.body));
              assert.ok(users.body.users.some((u) => u.name === "alice"));
              // The data plane is loaded once the log says so; then a knock opens the forward.
              const logDeadline = performance.now() + 15_000;
              while (!/store: read; .* admitting/.test(await readLog(a))) {
                assert.ok(performance.now() < logDeadline, "no 'store: read' line within 15 s");
                await sleep(100);
              }
              // A data-plane Worker derives the users' sequences at its loop's next yield (up to
              // 1 s a step): knock again until the forward opens, as a client would.
              let opened: string | null = null;
              for (let i = 0; i < 8 && opened !== HELLO; i++) {
                const k = await knock(a, "client", ["--transport", "tcp"]);
                assert.equal(k.code, 0, k.stdout + k.stderr);
                opened = await curl(a, "client", FORWARD, 2);
              }
              assert.equal(opened, HELLO);
              const admitted = Math.round(performance.now() - t0);
              console.log(`fleet start: members healthy to a knock admitted after ${admitted} ms`);
              assert.ok(await running(a.appliance));
            }),
        );
      } finally {
        await lab?.down();
        await relays.close();
        await removeTestConfig(config);
      }
    });
  },
});
