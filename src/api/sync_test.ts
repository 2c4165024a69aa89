import assert from "node:assert/strict";
import { ManualClock } from "../clock.ts";
import { defaultConfig } from "../config/defaults.ts";
import { openStore } from "../store/kv_store.ts";
import type { Store } from "../store/mod.ts";
import type { UserRecord } from "../store/users.ts";
import { importSeedRules, importSeedSettings, importSeedUsers } from "./bootstrap.ts";
import {
  datapathSettingsFrom,
  effectiveRuleUsers,
  InvalidConfigError,
  knockActive,
  loadDatapathState,
  NOBODY,
  syncDatapath,
} from "./sync.ts";
import { FakeDatapath, T0 } from "./_test_util.ts";

async function withSeededStore(fn: (store: Store) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kgt-api-sync-" });
  const store = await openStore(`${dir}/store.kv`, { clock: new ManualClock(T0) });
  try {
    const config = defaultConfig();
    await importSeedUsers(store, config.users);
    await importSeedRules(store, config.forwards, config.openPorts);
    await importSeedSettings(store, config);
    await fn(store);
  } finally {
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

function user(name: string, allowedRules: string[]): UserRecord {
  return { name, allowedRules } as UserRecord;
}

Deno.test("sync: the rule's users, narrowed by each user's allowedRules", () => {
  const all = [user("a", ["*"]), user("b", ["web"]), user("c", [])];
  assert.deepEqual(effectiveRuleUsers("web", [], [user("a", ["*"])]), []);
  assert.deepEqual(effectiveRuleUsers("web", [], all), ["a", "b"]);
  assert.deepEqual(effectiveRuleUsers("ssh", [], all), ["a"]);
  assert.deepEqual(effectiveRuleUsers("ssh", ["b"], all), [NOBODY]);
  assert.deepEqual(effectiveRuleUsers("web", ["b", "zed"], all), ["b"]);
  assert.deepEqual(effectiveRuleUsers("web", [], []), []);
});

Deno.test("sync: seeded store gives the data plane the config's users, rules and settings", async () => {
  await withSeededStore(async (store) => {
    const config = defaultConfig();
    const dp = new FakeDatapath();
    await syncDatapath(store, dp, config);
    assert.deepEqual(dp.users, [{
      user: "alice",
      secret: "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
      firstPort: 41001,
      length: 3,
      transport: "any",
    }]);
    const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);
    assert.deepEqual(dp.rules!.forwards.sort(byName), [...config.forwards].sort(byName));
    assert.deepEqual(dp.rules!.openPorts, []);
    // Seeded settings reproduce the config's data-plane settings.
    assert.deepEqual(dp.settings, {
      wanAddress: "198.51.100.1",
      uplinks: [{
        name: "wan",
        addresses: ["198.51.100.1"],
        addresses6: [],
        management: true,
        probe: null,
      }],
      masquerade: ["wan"],
      lanAddress: "192.0.2.1",
      lanNetwork: "192.0.2.0/24",
      managementPort: 8443,
      managementWanAccess: "knock",
      allow: [],
      maxFlows: config.conntrack.maxFlows,
      maxUnlocks: 65536,
      knock: config.knock,
      ipv6: null,
    });
    assert.equal(dp.pushes, 3);
  });
});

Deno.test("sync: only enrolled users with knocking enabled reach the data plane", async () => {
  await withSeededStore(async (store) => {
    const dp = new FakeDatapath();
    const config = defaultConfig();
    await store.users.createUser(
      {
        name: "bob",
        password: "bob-password",
        role: "viewer",
        knock: { enabled: true, firstPort: 41002 },
      },
      "t",
    );
    await store.users.createUser(
      { name: "carol", password: "carol-password", role: "viewer", knock: { enabled: false } },
      "t",
    );
    await store.users.confirmMfaEnrollment("carol", "t");
    const all = await store.users.listUsers();
    assert.deepEqual(all.filter(knockActive).map((u) => u.name), ["alice"]);
    await syncDatapath(store, dp, config);
    assert.deepEqual(dp.users!.map((u) => u.user), ["alice"]);
    await store.users.confirmMfaEnrollment("bob", "t");
    await syncDatapath(store, dp, config);
    assert.deepEqual(dp.users!.map((u) => u.user), ["alice", "bob"]);
    // bob has no allowed rules: every knock rule now names alice only.
    assert.ok(dp.rules!.forwards.every((r) => r.users.join() === "alice"));
  });
});

Deno.test("sync: concurrent syncs leave the latest state, in call order", async () => {
  await withSeededStore(async (store) => {
    const dp = new FakeDatapath();
    const config = defaultConfig();
    const calls: Promise<void>[] = [];
    for (let i = 0; i < 5; i++) {
      await store.settings.updateSettings({ idleTimeoutSeconds: 100 + i }, "t");
      calls.push(syncDatapath(store, dp, config));
    }
    await Promise.all(calls);
    assert.equal(dp.settings!.knock.idleTimeoutSec, 104);
    assert.equal(dp.pushes, 15);
  });
});

Deno.test("sync: store settings map onto the data plane's names", () => {
  const config = defaultConfig();
  const s = datapathSettingsFrom({
    wan: { interface: "x", address: "10.0.0.1/8", gateway: null },
    lan: { interface: "y", address: "10.1.0.1/16" },
    idleTimeoutSeconds: 120,
    syslog: { collectors: [] },
    knock: {
      sequenceWindowSeconds: 20,
      failureLimit: 4,
      failureWindowSeconds: 60,
      penaltySeconds: 30,
    },
    limits: { maxConnections: 5000, maxUnlocks: 10, maxPendingKnocks: 99 },
  }, config);
  assert.deepEqual(s.knock, {
    idleTimeoutSec: 120,
    lifetimeSec: config.knock.lifetimeSec,
    windowSec: 20,
    maxFailures: 4,
    failureWindowSec: 60,
    penaltySec: 30,
    maxInProgress: 99,
    maxPenalised: config.knock.maxPenalised,
  });
  assert.equal(s.maxFlows, 5000);
  assert.equal(s.maxUnlocks, 10);
  assert.equal(s.wanAddress, config.wan[0].addresses[0].address);
});

Deno.test("sync: an invalid stored set (an older release's) is refused, every problem named", async () => {
  await withSeededStore(async (store) => {
    // Written around the repositories, as a store from before the one validation could hold.
    const rule = {
      name: "loop",
      enabled: true,
      protocol: "tcp",
      publicPorts: { start: 41001, end: 41001 },
      privateAddress: "127.0.0.1",
      privatePorts: { start: 1, end: 1 },
      enforceKnock: false,
      users: [],
    };
    await store.kv.set(["rules", "byName", "loop"], {
      kind: "forward",
      rule,
      createdAt: T0,
      updatedAt: T0,
      version: 1,
    });
    await assert.rejects(loadDatapathState(store, defaultConfig()), (e) => {
      assert.ok(e instanceof InvalidConfigError);
      assert.deepEqual(e.problems, [
        'Cannot parse rule "loop": private address "127.0.0.1" is not a unicast host address',
        'user "alice": first knock port 41001 is a public tcp port of rule "loop"',
      ]);
      return true;
    });
    const dp = new FakeDatapath();
    await assert.rejects(syncDatapath(store, dp, defaultConfig()), /rule "loop"/);
    assert.equal(dp.pushes, 0);
    // With another bad address: both problems again, each named.
    await store.kv.set(["rules", "byName", "loop"], {
      kind: "forward",
      rule: { ...rule, privateAddress: "192.0.2.1" },
      createdAt: T0,
      updatedAt: T0,
      version: 1,
    });
    await assert.rejects(loadDatapathState(store, defaultConfig()), (e) => {
      assert.ok(e instanceof InvalidConfigError);
      assert.deepEqual(e.problems, [
        'rule "loop": private address 192.0.2.1 is the appliance\'s LAN address',
        'user "alice": first knock port 41001 is a public tcp port of rule "loop"',
      ]);
      return true;
    });
  });
});
