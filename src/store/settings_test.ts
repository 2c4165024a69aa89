import assert from "node:assert/strict";
import { T0, withStore } from "./_test_util.ts";
import { ConflictError, ValidationError } from "./errors.ts";
import { DEFAULT_SETTINGS } from "./settings.ts";

Deno.test("settings: defaults at version 0, partial updates merge", async () => {
  await withStore(async ({ settings }) => {
    const fresh = await settings.getSettings();
    assert.equal(fresh.version, 0);
    assert.deepEqual({ ...fresh, version: undefined, updatedAt: undefined }, {
      ...DEFAULT_SETTINGS,
      version: undefined,
      updatedAt: undefined,
    });
    const s1 = await settings.updateSettings(
      { idleTimeoutSeconds: 600, wan: { gateway: "198.51.100.254" } },
      "root",
      0,
    );
    assert.equal(s1.version, 1);
    assert.equal(s1.updatedAt, T0);
    assert.equal(s1.idleTimeoutSeconds, 600);
    assert.deepEqual(s1.wan, {
      interface: "wan0",
      address: "198.51.100.1/24",
      gateway: "198.51.100.254",
    });
    const s2 = await settings.updateSettings({
      syslog: { collectors: [{ host: "192.0.2.5", port: 514, format: "rfc5424" }] },
      limits: { maxUnlocks: 100 },
    }, "root");
    assert.equal(s2.version, 2);
    assert.equal(s2.idleTimeoutSeconds, 600);
    assert.equal(s2.limits.maxUnlocks, 100);
    assert.equal(s2.limits.maxConnections, DEFAULT_SETTINGS.limits.maxConnections);
    assert.deepEqual(await settings.getSettings(), s2);
    assert.equal(DEFAULT_SETTINGS.wan.gateway, null); // defaults untouched
  });
});

Deno.test("settings: invalid values and stale versions are refused", async () => {
  await withStore(async ({ settings }) => {
    await assert.rejects(
      settings.updateSettings({ wan: { address: "198.51.100.1" } }, "root"),
      (e) => e instanceof ValidationError && e.field === "wan.address",
    );
    await assert.rejects(
      settings.updateSettings({ idleTimeoutSeconds: 1 }, "root"),
      /Cannot save settings: idleTimeoutSeconds 1 is out of range 10..604800/,
    );
    await assert.rejects(
      settings.updateSettings(
        { syslog: { collectors: [{ host: "h", port: 514, format: "json" as "rfc5424" }] } },
        "root",
      ),
      (e) => e instanceof ValidationError && e.field === "syslog.collectors[0].format",
    );
    await settings.updateSettings({ idleTimeoutSeconds: 60 }, "root");
    await assert.rejects(
      settings.updateSettings({ idleTimeoutSeconds: 70 }, "root", 0),
      ConflictError,
    );
    assert.equal((await settings.getSettings()).idleTimeoutSeconds, 60);
  });
});

Deno.test("settings: a syslog collector may be an IPv6 address; brackets or a zone are refused", async () => {
  await withStore(async ({ settings }) => {
    const collectors = [{ host: "2001:db8:5::514", port: 514, format: "rfc5424" as const }];
    const saved = await settings.updateSettings({ syslog: { collectors } }, "root");
    assert.deepEqual(saved.syslog.collectors, collectors);
    for (const host of ["[2001:db8::1]", "fe80::1%lan0"]) {
      await assert.rejects(
        settings.updateSettings({ syslog: { collectors: [{ ...collectors[0], host }] } }, "root"),
        (e) => e instanceof ValidationError && e.field === "syslog.collectors[0].host",
      );
    }
  });
});
