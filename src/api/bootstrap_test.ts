import assert from "node:assert/strict";
import { ManualClock } from "../clock.ts";
import { defaultConfig } from "../config/defaults.ts";
import { verifyTotp } from "../knock/totp.ts";
import { openStore } from "../store/kv_store.ts";
import { etcdInstalled, withEtcdCluster } from "../store/_etcd_cluster.ts";
import type { Store } from "../store/mod.ts";
import {
  bootstrapAdmin,
  bootstrapStore,
  importSeedRules,
  importSeedSettings,
  importSeedUsers,
  randomPassword,
  seedSettings,
} from "./bootstrap.ts";
import { T0 } from "./_test_util.ts";
import { totpCode } from "../knock/totp.ts";

async function withStore(fn: (store: Store, path: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kgt-api-boot-" });
  const store = await openStore(`${dir}/store.kv`, { clock: new ManualClock(T0) });
  try {
    await fn(store, `${dir}/store.kv`);
  } finally {
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("bootstrap: an empty store gets an enrolled administrator, once", async () => {
  await withStore(async (store) => {
    const admin = await bootstrapAdmin(store);
    assert.ok(admin !== null);
    assert.equal(admin.name, "admin");
    assert.equal(admin.password.length, 24);
    assert.match(admin.totpSecret, /^[A-Z2-7]{32}$/);
    assert.match(admin.otpauthUri, /^otpauth:\/\/totp\//);
    const u = await store.users.verifyUserPassword("admin", admin.password);
    assert.equal(u?.role, "administrator");
    assert.equal(u?.mfa.enrolled, true);
    const { secret } = await store.users.getMfaSecrets("admin");
    const now = T0 / 1000;
    assert.equal(verifyTotp(secret, totpCode(admin.totpSecret, now), now), 0);
    assert.equal(await bootstrapAdmin(store), null);
  });
});

Deno.test("bootstrap: a half-made admin (crash before enrolment) is replaced", async () => {
  await withStore(async (store) => {
    await store.users.createUser(
      { name: "admin", password: "leftover-pw", role: "administrator" },
      "system",
    );
    const admin = await bootstrapAdmin(store);
    assert.ok(admin !== null);
    assert.ok(await store.users.verifyUserPassword("admin", admin.password));
    assert.equal(await store.users.verifyUserPassword("admin", "leftover-pw"), null);
  });
});

Deno.test("bootstrap: seeds go into an empty store only, then the admin", async () => {
  await withStore(async (store) => {
    const config = defaultConfig();
    const admin = await bootstrapStore(store, config);
    assert.ok(admin !== null);
    const users = await store.users.listUsers();
    assert.deepEqual(users.map((u) => [u.name, u.role, u.mfa.enrolled]), [
      ["admin", "administrator", true],
      ["alice", "viewer", true],
    ]);
    const alice = users[1];
    assert.deepEqual(alice.knock, { enabled: true, firstPort: 41001, length: 3, transport: "any" });
    assert.deepEqual(alice.allowedRules, ["*"]);
    assert.equal((await store.users.getMfaSecrets("alice")).secret, config.users[0].secret);
    assert.equal((await store.rules.listRules()).length, 4);
    assert.equal((await store.settings.getSettings()).version, 1);
    // A second start changes nothing, even after the operator removed a seed.
    await store.users.deleteUser("alice", "admin");
    await store.rules.deleteRule("web", "admin");
    assert.equal(await bootstrapStore(store, config), null);
    assert.equal(await importSeedUsers(store, config.users), 0);
    assert.equal(await importSeedRules(store, config.forwards, config.openPorts), 0);
    assert.equal(await importSeedSettings(store, config), false);
    assert.equal(await store.users.findUser("alice"), null);
    assert.equal((await store.rules.listRules()).length, 3);
  });
});

Deno.test("bootstrap: seed settings are clamped to the store's ranges", () => {
  const config = defaultConfig();
  config.knock.penaltySec = 7 * 86400;
  config.conntrack.maxFlows = 1 << 24;
  const s = seedSettings(config);
  assert.equal(s.knock?.penaltySeconds, 86400);
  assert.equal(s.limits?.maxConnections, 1 << 22);
});

Deno.test("bootstrap: random passwords are 24 url-safe characters and differ", () => {
  const a = randomPassword();
  assert.match(a, /^[A-Za-z0-9_-]{24}$/);
  assert.notEqual(a, randomPassword());
});

/** Every node's store on one etcd prefix, with the same key file (docs/cluster.md). */
async function fleetStores(endpoints: string[], nodes: number, dir: string): Promise<Store[]> {
  const prefix = `/kgt-boot-${crypto.randomUUID().slice(0, 8)}/`;
  const target = { backend: "etcd" as const, endpoints, prefix, path: `${dir}/kg` };
  const first = await openStore({ ...target, path: `${dir}/n0` });
  const stores = [first];
  for (let i = 1; i < nodes; i++) {
    await Deno.copyFile(`${dir}/n0.key`, `${dir}/n${i}.key`);
    await Deno.chmod(`${dir}/n${i}.key`, 0o600);
    stores.push(await openStore({ ...target, path: `${dir}/n${i}` }));
  }
  return stores;
}

Deno.test({
  name: "bootstrap: nodes starting at once on an empty etcd cluster make one admin, printed once",
  ignore: !etcdInstalled(),
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await withEtcdCluster(async (cluster) => {
    const dir = await Deno.makeTempDir({ prefix: "kgt-api-boot-etcd-" });
    const config = defaultConfig();
    try {
      for (let round = 0; round < 4; round++) {
        const stores = await fleetStores(cluster.endpoints, 3, dir);
        try {
          const results = await Promise.all(stores.map((s) => bootstrapStore(s, config)));
          const made = results.filter((r) => r !== null);
          assert.equal(made.length, 1, `round ${round}: ${made.length} admins printed`);
          for (const s of stores) {
            const users = await s.users.listUsers();
            assert.deepEqual(users.map((u) => [u.name, u.mfa.enrolled]), [
              ["admin", true],
              ["alice", true],
            ]);
            assert.ok(await s.users.verifyUserPassword("admin", made[0]!.password));
            assert.equal((await s.rules.listRules()).length, 4);
            assert.equal((await s.settings.getSettings()).version, 1);
          }
          // Later starts of any node print nothing.
          assert.deepEqual(await Promise.all(stores.map((s) => bootstrapAdmin(s))), [
            null,
            null,
            null,
          ]);
        } finally {
          for (const s of stores) s.close();
        }
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test({
  name: "bootstrap: a half-made admin on etcd is replaced by exactly one of the nodes",
  ignore: !etcdInstalled(),
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await withEtcdCluster(async (cluster) => {
    const dir = await Deno.makeTempDir({ prefix: "kgt-api-boot-etcd-" });
    try {
      for (let round = 0; round < 3; round++) {
        const stores = await fleetStores(cluster.endpoints, 2, dir);
        try {
          await stores[0].users.createUser(
            { name: "admin", password: "leftover-pw", role: "administrator" },
            "system",
          );
          const results = await Promise.all(stores.map((s) => bootstrapAdmin(s)));
          const made = results.filter((r) => r !== null);
          assert.equal(made.length, 1, `round ${round}: ${made.length} admins printed`);
          for (const s of stores) {
            assert.ok(await s.users.verifyUserPassword("admin", made[0]!.password));
            assert.equal(await s.users.verifyUserPassword("admin", "leftover-pw"), null);
          }
        } finally {
          for (const s of stores) s.close();
        }
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
