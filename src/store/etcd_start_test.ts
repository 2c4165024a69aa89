/**
 * An etcd store opened while no member answers (`startUnreachable`), against
 * a real 3-member cluster the test stops and starts: nothing is served
 * before the first answer, everything after it; a wrong key still refuses
 * the node. Skipped where Debian's etcd-server is not installed.
 */
import assert from "node:assert/strict";
import { type EtcdCluster, etcdInstalled, sleep, withEtcdCluster } from "./_etcd_cluster.ts";
import { StoreUnavailableError } from "./errors.ts";
import { type EtcdStoreTarget, openEtcdStore } from "./etcd_store.ts";
import type { StoreChange } from "./store_kv.ts";

const opts = { ignore: !etcdInstalled(), sanitizeOps: false, sanitizeResources: false };
const knobs = { requestTimeoutMs: 1000, probeIntervalMs: 250 };

/** `p`, or a rejection naming `what` after `ms`. */
async function within<T>(what: string, p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function killAll(cluster: EtcdCluster): Promise<void> {
  for (let i = 0; i < cluster.members.length; i++) await cluster.kill(i);
}

function restartAll(cluster: EtcdCluster): void {
  for (let i = 0; i < cluster.members.length; i++) cluster.restart(i);
}

/** A cluster that already holds a user "carol", and the target its node opens. */
async function withSeededCluster(
  fn: (cluster: EtcdCluster, target: EtcdStoreTarget, dir: string) => Promise<void>,
): Promise<void> {
  await withEtcdCluster(async (cluster) => {
    const dir = await Deno.makeTempDir({ prefix: "kgt-etcd-start-" });
    const target: EtcdStoreTarget = {
      backend: "etcd",
      path: `${dir}/kg`,
      endpoints: cluster.endpoints,
      prefix: `/kgt-start-${crypto.randomUUID().slice(0, 8)}/`,
    };
    try {
      const first = await openEtcdStore(target, knobs);
      await first.users.createUser({ name: "carol", password: "carol-pw-1", role: "viewer" }, "t");
      first.close();
      await fn(cluster, target, dir);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test({
  ...opts,
  name: "etcd start: opened while every member is down, nothing served, then everything",
}, async () => {
  await withSeededCluster(async (cluster, target) => {
    await killAll(cluster);
    // Without the option the node refuses to start, as before.
    await assert.rejects(openEtcdStore(target, knobs), StoreUnavailableError);
    const said: string[] = [];
    const store = await openEtcdStore(target, {
      ...knobs,
      startUnreachable: true,
      onUnreachable: (why, waiting) => said.push(`${waiting} ${why}`),
    });
    const changes: StoreChange[] = [];
    store.onChange((c) => changes.push(c));
    let ready = false;
    store.ready.then(() => ready = true);
    try {
      assert.equal(said.length, 1);
      assert.match(said[0], /^false no etcd member of http:\/\/127\.0\.0\.1:\d+/);
      const h = store.health();
      assert.deepEqual([h.backend, h.connected, h.loaded, h.revision], ["etcd", false, false, 0]);
      // No last known state: reads are refused too (an empty answer would read as "no users").
      await assert.rejects(store.users.listUsers(), StoreUnavailableError);
      await assert.rejects(store.users.findUser("carol"), StoreUnavailableError);
      await assert.rejects(store.settings.getSettings(), StoreUnavailableError);
      await assert.rejects(
        store.users.createUser({ name: "dave", password: "dave-pw-12", role: "viewer" }, "t"),
        StoreUnavailableError,
      );
      await assert.rejects(store.audit.countAudit(), StoreUnavailableError);
      await sleep(1000); // the supervisor keeps trying; still nothing
      assert.equal(ready, false);
      assert.equal(store.health().loaded, false);
      restartAll(cluster);
      await cluster.waitHealthy();
      await within("the store ready", store.ready, 30_000);
      assert.equal(store.health().loaded, true);
      assert.equal(store.health().connected, true);
      assert.deepEqual((await store.users.listUsers()).map((u) => u.name), ["carol"]);
      // The first listing is not reported as changes (`ready` stands for it); later writes are.
      assert.equal(changes.length, 0, JSON.stringify(changes));
      await store.users.createUser({ name: "dave", password: "dave-pw-12", role: "viewer" }, "t");
      const deadline = Date.now() + 10_000;
      while (!changes.some((c) => c.areas.includes("users")) && Date.now() < deadline) {
        await sleep(20);
      }
      assert.ok(changes.some((c) => c.areas.includes("users")), JSON.stringify(changes));
    } finally {
      store.close();
    }
  });
});

Deno.test({
  ...opts,
  name: "etcd start: a wrong key opened while members are down is refused once they answer",
}, async () => {
  await withSeededCluster(async (cluster, target, dir) => {
    await killAll(cluster);
    // Another key file (0600, 32 bytes) than the one the cluster's secrets are sealed with.
    const other = `${dir}/other.key`;
    await Deno.writeFile(other, crypto.getRandomValues(new Uint8Array(32)), { mode: 0o600 });
    await Deno.chmod(other, 0o600);
    const store = await openEtcdStore(target, { ...knobs, keyFile: other, startUnreachable: true });
    try {
      restartAll(cluster);
      await cluster.waitHealthy();
      await assert.rejects(
        within("the key check", store.ready, 30_000),
        /key file ".*other\.key" has id [0-9a-f]{16}, the cluster's secrets are sealed with key/,
      );
      assert.equal(store.health().loaded, false);
      await assert.rejects(store.users.listUsers(), StoreUnavailableError);
    } finally {
      store.close();
    }
  });
});

Deno.test({
  ...opts,
  name: "etcd start: a node without a key file waits for a member before it opens",
}, async () => {
  await withSeededCluster(async (cluster, target, dir) => {
    await killAll(cluster);
    const waits: boolean[] = [];
    let opened = false;
    const opening = openEtcdStore({ ...target, path: `${dir}/new-node` }, {
      ...knobs,
      startUnreachable: true,
      onUnreachable: (_why, waiting) => waits.push(waiting),
    }).then((s) => {
      opened = true;
      return s;
    });
    opening.catch(() => {});
    await sleep(1500);
    assert.deepEqual([opened, waits], [false, [true]]);
    restartAll(cluster);
    await cluster.waitHealthy();
    // Once a member answers it learns the cluster has a key it lacks: refused, as before.
    await assert.rejects(
      within("the open", opening, 30_000),
      /this node has no key file ".*new-node\.key" and the cluster's secrets are sealed with key/,
    );
  });
});
