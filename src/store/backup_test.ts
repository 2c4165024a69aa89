import assert from "node:assert/strict";
import { ManualClock } from "../clock.ts";
import type { NetworkLayout } from "../nat/rule_validate.ts";
import {
  BACKUP_FORMAT,
  BackupError,
  exportBackup,
  importBackup,
  validateBackup,
} from "./backup.ts";
import { openStore, storeFiles } from "./kv_store.ts";
import type { Store } from "./mod.ts";
import type { RuleInput } from "./rules.ts";
import { loadKey } from "./secret_box.ts";
import { T0 } from "./_test_util.ts";

const NETWORK: NetworkLayout = {
  wanAddress: "198.51.100.1",
  uplinks: [
    { name: "isp-a", addresses: ["198.51.100.1", "198.51.100.2"], management: true },
    { name: "isp-b", addresses: ["198.51.100.65"], management: false },
  ],
  lanAddress: "192.0.2.1",
  lanNetwork: "192.0.2.0/24",
  managementPort: 8443,
  managementWanAccess: "knock",
};
const SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const PASSWORD = "correct horse battery staple";

function open(path: string): Promise<Store> {
  return openStore(path, { clock: new ManualClock(T0), network: NETWORK });
}

/** A store with a knock user, an administrator mid-rotation, two rules and changed settings. */
async function populate(store: Store): Promise<void> {
  await store.users.createUser({
    name: "alice",
    password: PASSWORD,
    role: "viewer",
    totpSecret: SECRET,
    knock: { enabled: true, firstPort: 41001, length: 3, transport: "any" },
    allowedRules: ["web"],
  }, "test");
  await store.users.confirmMfaEnrollment("alice", "test");
  await store.users.createUser({ name: "root", password: PASSWORD, role: "administrator" }, "t");
  await store.users.beginMfaEnrollment("root", "t");
  await store.rules.createRule({
    kind: "forward",
    rule: {
      name: "web",
      uplink: "isp-a",
      wanAddress: "198.51.100.2",
      enabled: true,
      protocol: "tcp",
      publicPorts: { start: 52201, end: 52201 },
      privateAddress: "192.0.2.12",
      privatePorts: { start: 8080, end: 8080 },
      enforceKnock: true,
      users: ["alice"],
    },
  }, "test");
  await store.rules.createRule({
    kind: "open",
    rule: {
      name: "mail",
      enabled: false,
      privateAddress: "192.0.2.25",
      ports: [{ protocol: "both", ports: { start: 60000, end: 60009 } }],
      enforceKnock: false,
      users: [],
    },
  }, "test");
  await store.settings.updateSettings({
    idleTimeoutSeconds: 900,
    knock: { failureLimit: 3 },
    syslog: { collectors: [{ host: "192.0.2.5", port: 514, format: "rfc3164" }] },
  }, "test");
}

/** Users (minus bookkeeping), rules and settings as comparable values. */
async function contents(store: Store) {
  const users = [];
  for (const u of await store.users.listUsers()) {
    users.push({
      name: u.name,
      role: u.role,
      knock: u.knock,
      allowedRules: u.allowedRules,
      passwordHash: u.passwordHash,
      secrets: await store.users.getMfaSecrets(u.name),
    });
  }
  const rules = (await store.rules.listRules()).map((r) => ({ kind: r.kind, rule: r.rule }));
  const { version: _v, updatedAt: _u, ...settings } = await store.settings.getSettings();
  return { users, rules, settings };
}

async function wipe(path: string, key: boolean): Promise<void> {
  for (const f of [...storeFiles(path), ...(key ? [`${path}.key`] : [])]) {
    await Deno.remove(f).catch(() => {});
  }
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kgt-backup-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("backup: export, wipe the KV file, import: the same users, rules and settings", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/kg.kv`;
    const store = await open(path);
    await populate(store);
    const before = await contents(store);
    const doc = JSON.parse(JSON.stringify(await exportBackup(store)));
    store.close();
    assert.equal(doc.format, BACKUP_FORMAT);
    assert.equal(doc.version, 1);
    // Secrets and passwords leave only as ciphertext and hashes.
    const text = JSON.stringify(doc);
    assert.ok(!text.includes(SECRET) && !text.includes(PASSWORD));
    await wipe(path, false);
    const restored = await open(path);
    try {
      assert.deepEqual((await contents(restored)).users, []);
      const r = await importBackup(restored, doc, { network: NETWORK });
      assert.deepEqual(r, { users: 2, rules: 2, resealed: false });
      assert.deepEqual(await contents(restored), before);
      // The WAN binding travels with the rule; the rule without one is bound to every address.
      assert.deepEqual(
        doc.rules.map((x: RuleInput) => [x.rule.name, x.rule.uplink, x.rule.wanAddress]),
        [["mail", "all", "all"], ["web", "isp-a", "198.51.100.2"]],
      );
      assert.ok(await restored.users.verifyUserPassword("alice", PASSWORD));
      assert.deepEqual(await restored.users.knockProfiles(), [
        { user: "alice", firstPort: 41001, length: 3, transport: "any" },
      ]);
    } finally {
      restored.close();
    }
  });
});

Deno.test("backup: a store with a new key imports with --key, re-sealing every secret", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/kg.kv`;
    const store = await open(path);
    await populate(store);
    const before = await contents(store);
    const doc = await exportBackup(store);
    store.close();
    await Deno.rename(`${path}.key`, `${dir}/old.key`);
    await wipe(path, true);
    const fresh = await open(path);
    try {
      const refused = await importBackup(fresh, doc).catch((e) => e);
      assert.ok(refused instanceof BackupError);
      assert.match(refused.message, /keyId: the secrets are sealed with key [0-9a-f]{16}.*--key/);
      const r = await importBackup(fresh, doc, { key: await loadKey(`${dir}/old.key`) });
      assert.equal(r.resealed, true);
      assert.deepEqual(await contents(fresh), before);
      const again = await importBackup(fresh, doc, { key: await loadKey(`${dir}/old.key`) })
        .catch((e) => e);
      assert.match(String(again), /import into an empty store or pass --replace/);
      await fresh.rules.deleteRule("mail", "t");
      await importBackup(fresh, await exportBackup(fresh), { replace: true });
      assert.deepEqual((await contents(fresh)).rules.map((x) => x.rule.name), ["web"]);
    } finally {
      fresh.close();
    }
  });
});

Deno.test("backup: validation reports every problem at once, at its path", () => {
  const doc = {
    format: BACKUP_FORMAT,
    version: 1,
    exportedAt: "2026-01-01T00:00:00.000Z",
    keyId: "00",
    users: [
      {
        name: "Bad Name",
        role: "root",
        passwordHash: "plain",
        mfa: { secretEnc: { iv: "a", ciphertext: "b" }, enrolled: true },
        knock: { enabled: true, firstPort: 52201, length: 3, transport: "any" },
        allowedRules: ["*"],
        createdAt: 0,
      },
    ],
    rules: [{
      kind: "forward",
      rule: {
        name: "web",
        enabled: true,
        protocol: "tcp",
        publicPorts: { start: 52201, end: 52201 },
        privateAddress: "203.0.113.9",
        privatePorts: { start: 80, end: 80 },
        enforceKnock: true,
        users: [],
      },
    }],
    settings: { idleTimeoutSeconds: 1 },
  };
  const paths = validateBackup(doc, NETWORK).map((p) => p.path);
  assert.ok(paths.includes("settings.idleTimeoutSeconds"), paths.join());
  // The settings problem stops before the records; fix it and see them all.
  doc.settings.idleTimeoutSeconds = 60;
  const all = validateBackup(doc, NETWORK);
  const at = all.map((p) => p.path);
  for (const p of ["users[0].name", "users[0].role", "users[0].passwordHash"]) {
    assert.ok(at.includes(p), `${p} not in ${at.join(", ")}`);
  }
  doc.users[0].name = "bob";
  doc.users[0].role = "viewer";
  doc.users[0].passwordHash = "scrypt$x";
  const set = validateBackup(doc, NETWORK).map((p) => `${p.path}: ${p.message}`);
  assert.ok(set.some((l) => l.startsWith("rules[0].privateAddress")), set.join("\n"));
  assert.ok(set.some((l) => /52201/.test(l)), set.join("\n"));
  assert.deepEqual(validateBackup({ format: "x" }), [{
    path: "format",
    message: `is not "${BACKUP_FORMAT}"`,
  }]);
  assert.equal(validateBackup({ format: BACKUP_FORMAT, version: 2 })[0].path, "version");
});
