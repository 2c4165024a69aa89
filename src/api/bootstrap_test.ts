import assert from "node:assert/strict";
import { ManualClock } from "../clock.ts";
import { defaultConfig } from "../config/defaults.ts";
import { verifyTotp } from "../knock/totp.ts";
import { openStore } from "../store/kv_store.ts";
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
