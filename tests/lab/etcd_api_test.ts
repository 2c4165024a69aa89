/**
 * Two appliances' APIs on one real 3-member etcd cluster (started by the
 * test on loopback, stopped even on failure): a user created through node A
 * signs in through node B, and with every member gone node B still answers
 * reads and refuses writes with 503. Skipped without Debian's etcd-server.
 */
import assert from "node:assert/strict";
import { withApi } from "../../src/api/_test_util.ts";
import { etcdInstalled, sleep, withEtcdCluster } from "../../src/store/_etcd_cluster.ts";
import type { StoreTarget } from "../../src/store/etcd_store.ts";

async function until(what: string, ok: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

Deno.test({
  name:
    "etcd api: a user created on node A signs in on node B; all members gone: B reads, writes 503",
  ignore: !etcdInstalled(),
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await withEtcdCluster(async (cluster) => {
    // One key file for both nodes, as copied at enrolment.
    const shared = await Deno.makeTempDir({ prefix: "kgt-etcd-api-" });
    const target = (): StoreTarget => ({
      backend: "etcd",
      path: `${shared}/kg`,
      endpoints: cluster.endpoints,
      prefix: "/kgapi/",
    });
    try {
      await withApi(
        async (a) => {
          await withApi(
            async (b) => {
              const password = "carol-password-1";
              await a.store.users.createUser(
                { name: "carol", password, role: "administrator" },
                "t",
              );
              await a.store.users.confirmMfaEnrollment("carol", "t");
              const { secret } = await a.store.users.getMfaSecrets("carol");
              const carol = await b.login("carol", password, secret);
              const listed = await carol.json("GET", "/api/v1/users");
              assert.equal(listed.status, 200);
              for (let i = 0; i < 3; i++) await cluster.kill(i);
              await until("B to turn degraded", () => !b.store.health().connected);
              const again = await carol.json("GET", "/api/v1/users");
              assert.equal(again.status, 200, JSON.stringify(again.body));
              assert.deepEqual(again.body, listed.body);
              const write = await carol.json("POST", "/api/v1/users", {
                body: { name: "dave", password: "dave-password-1", role: "viewer" },
              });
              assert.equal(write.status, 503, JSON.stringify(write.body));
              assert.equal((write.body.error as { code: string }).code, "store_unavailable");
              assert.equal(write.res.headers.get("retry-after"), "5");
            },
            {},
            undefined,
            target,
          );
        },
        {},
        undefined,
        target,
      );
    } finally {
      await Deno.remove(shared, { recursive: true });
    }
  });
});
