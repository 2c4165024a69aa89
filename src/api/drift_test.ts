import assert from "node:assert/strict";
import { ManualClock } from "../clock.ts";
import { defaultConfig } from "../config/defaults.ts";
import { openStore } from "../store/kv_store.ts";
import type { Store } from "../store/mod.ts";
import { bootstrapStore, networkLayout } from "./bootstrap.ts";
import { configDrift } from "./drift.ts";
import { T0 } from "./_test_util.ts";

const FILE = "config/appliance.jsonc";

async function withSeeded(fn: (store: Store) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kgt-api-drift-" });
  const config = defaultConfig();
  const store = await openStore(`${dir}/store.kv`, {
    clock: new ManualClock(T0),
    network: networkLayout(config),
  });
  try {
    await bootstrapStore(store, config);
    await fn(store);
  } finally {
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("drift: a freshly seeded store matches its file", async () => {
  await withSeeded(async (store) => {
    assert.deepEqual(await configDrift(store, defaultConfig(), FILE), []);
  });
});

Deno.test("drift: every differing rule, user and setting is named once", async () => {
  await withSeeded(async (store) => {
    const config = defaultConfig();
    config.forwards[0].publicPorts = { start: 52204, end: 52204 };
    config.forwards[0].users = ["alice"];
    config.forwards.pop(); // udp-echo: only the store has it now
    config.openPorts.push({
      name: "mail",
      enabled: true,
      privateAddress: "192.0.2.25",
      ports: [{ protocol: "tcp", ports: { start: 25, end: 25 } }],
      enforceKnock: true,
      users: [],
    });
    config.users[0].firstPort = 41002;
    config.users[0].secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    config.users.push({ ...config.users[0], name: "bob", firstPort: 41003 });
    config.knock.maxFailures = 3;
    config.syslog = [{ host: "192.0.2.5", port: 514, format: "rfc5424", facility: 16 }];
    const advice = "the store's is in force — export/import to change it";
    assert.deepEqual(await configDrift(store, config, FILE), [
      `config: forward "web" in ${FILE} differs from the store (publicPorts 52204 vs 52201, ` +
      `users [alice] vs []); ${advice}`,
      `config: openPorts "mail" in ${FILE} is not in the store; ${advice}`,
      `config: forward "udp-echo" in the store is not in ${FILE}; ${advice}`,
      `config: user "alice" in ${FILE} differs from the store (firstPort 41002 vs 41001, ` +
      `secret differs); ${advice}`,
      `config: user "bob" in ${FILE} is not in the store; ${advice}`,
      `config: settings in ${FILE} differ from the store (knock.failureLimit 3 vs 5, ` +
      `syslog [192.0.2.5:514/rfc5424] vs []); ${advice}`,
    ]);
  });
});

Deno.test("drift: a change through the store is reported against the unchanged file", async () => {
  await withSeeded(async (store) => {
    const web = await store.rules.getRule("web");
    assert.equal(web.kind, "forward");
    if (web.kind !== "forward") return;
    await store.rules.updateRule("web", {
      kind: "forward",
      rule: { ...web.rule, enabled: false },
    }, "test");
    await store.settings.updateSettings({ idleTimeoutSeconds: 900 }, "test");
    const lines = await configDrift(store, defaultConfig(), FILE);
    assert.equal(lines.length, 2);
    assert.match(lines[0], /forward "web" .* \(enabled true vs false\)/);
    assert.match(lines[1], /settings .* \(idleTimeoutSeconds 3600 vs 900\)/);
  });
});
