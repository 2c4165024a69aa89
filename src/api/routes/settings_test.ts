import assert from "node:assert/strict";
import { Logger } from "../../log/logger.ts";
import { SyslogSink } from "../../log/syslog.ts";
import { createApp } from "../app.ts";
import { Client, twoUplinkConfig, withApi } from "../_test_util.ts";

type ErrorJson = { error: { status: number; code: string; message: string; field?: string } };

Deno.test("settings: seeded from the config, shown with the network layout", async () => {
  await withApi(async (h) => {
    const op = await h.userClient("otto", "operator");
    const r = await op.json("GET", "/api/v1/settings");
    assert.equal(r.status, 200);
    assert.equal(r.body.idleTimeoutSeconds, 3600);
    assert.deepEqual(r.body.knock, {
      sequenceWindowSeconds: 15,
      failureLimit: 5,
      failureWindowSeconds: 600,
      penaltySeconds: 600,
    });
    assert.equal((r.body.limits as { maxConnections: number }).maxConnections, 262144);
    assert.deepEqual(r.body.network, {
      wanAddress: "198.51.100.1",
      uplinks: [{
        name: "wan",
        interface: "wan0",
        addresses: ["198.51.100.1/24"],
        addresses6: [],
        gateway: null,
        gateway6: null,
      }],
      lanAddress: "192.0.2.1",
      lanNetwork: "192.0.2.0/24",
      managementPort: 8443,
      managementWanAccess: "knock",
      ipv6: {
        enabled: false,
        lanAddress: null,
        lanNetwork: null,
        unlockPrefix: 64,
        pairFamilies: false,
      },
    });
    assert.equal(r.body.version, 1);
  });
});

Deno.test("settings: PATCH merges, applies to the data plane, and bumps the version", async () => {
  await withApi(async (h) => {
    const admin = await h.adminClient();
    const r = await admin.json("PATCH", "/api/v1/settings", {
      body: {
        idleTimeoutSeconds: 900,
        knock: { failureLimit: 3 },
        syslog: { collectors: [{ host: "192.0.2.99" }] },
        limits: { maxPendingKnocks: 1000 },
      },
      headers: { "if-match": "1" },
    });
    assert.equal(r.status, 200);
    assert.equal(r.body.idleTimeoutSeconds, 900);
    assert.equal((r.body.knock as { failureLimit: number }).failureLimit, 3);
    assert.equal((r.body.knock as { penaltySeconds: number }).penaltySeconds, 600);
    assert.deepEqual(r.body.syslog, {
      collectors: [{ host: "192.0.2.99", port: 514, format: "rfc5424" }],
    });
    assert.equal(r.body.version, 2);
    const k = h.datapath.settings!.knock;
    assert.equal(k.idleTimeoutSec, 900);
    assert.equal(k.maxFailures, 3);
    assert.equal(k.maxInProgress, 1000);
    assert.equal(h.datapath.settings!.wanAddress, "198.51.100.1");
    assert.deepEqual(h.changes, ["settings"]);
    const stale = await admin.json("PATCH", "/api/v1/settings", {
      body: { idleTimeoutSeconds: 60 },
      headers: { "if-match": "1" },
    });
    assert.equal(stale.status, 409);
  });
});

Deno.test("settings: out-of-range and unknown fields are 400 naming the field", async () => {
  await withApi(async (h) => {
    const admin = await h.adminClient();
    const cases: [unknown, string][] = [
      [{ idleTimeoutSeconds: 5 }, "idleTimeoutSeconds"],
      [{ idleTimeoutSeconds: "long" }, "idleTimeoutSeconds"],
      [{ knock: { failureLimit: 0 } }, "knock.failureLimit"],
      [{ knock: { bogus: 1 } }, "knock"],
      [{ syslog: { collectors: [{ host: "bad host!" }] } }, "syslog.collectors[0].host"],
      [{ syslog: { collectors: [{ host: "a..b" }] } }, "syslog.collectors[0].host"],
      [{ syslog: { collectors: [{ host: "-lead.example" }] } }, "syslog.collectors[0].host"],
      [
        { syslog: { collectors: [{ host: `${"a".repeat(64)}.example` }] } },
        "syslog.collectors[0].host",
      ],
      [{ syslog: { collectors: [{ host: "h", format: "json" }] } }, "syslog.collectors[0].format"],
      [{ limits: { maxConnections: 1 } }, "limits.maxConnections"],
      [{ wan: { address: "1.2.3.4/8" } }, ""],
    ];
    for (const [body, field] of cases) {
      const r = await admin.json("PATCH", "/api/v1/settings", { body });
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal((r.body as ErrorJson).error.field ?? "", field, JSON.stringify(r.body));
    }
    assert.equal((await admin.json("GET", "/api/v1/settings")).body.version, 1);
  });
});

Deno.test("settings: operators read, only administrators write, viewers neither", async () => {
  await withApi(async (h) => {
    const op = await h.userClient("otto", "operator");
    const viewer = await h.userClient("vic", "viewer");
    assert.equal((await op.json("PATCH", "/api/v1/settings", { body: {} })).status, 403);
    assert.equal((await viewer.json("GET", "/api/v1/settings")).status, 403);
    assert.equal((await h.anon.json("GET", "/api/v1/settings")).status, 401);
  });
});

Deno.test("settings: a syslog collector whose name does not resolve is saved at once, resolved in the background", async () => {
  await withApi(async (h) => {
    const token = (await h.adminClient()).creds;
    // As the composition root does: the settings' collectors become a new sink.
    let syslog = new SyslogSink({ collectors: [] });
    const logger = new Logger({ clock: h.clock, sinks: [syslog] });
    const app = createApp({
      store: h.store,
      datapath: h.datapath,
      logger,
      clock: h.clock,
      config: h.config,
      clockHealth: () =>
        Promise.resolve({ synchronised: true, detail: "test", now: h.clock.now() }),
      onChange: async (what) => {
        if (what !== "settings") return;
        const { collectors } = (await h.store.settings.getSettings()).syslog;
        const next = new SyslogSink({ collectors });
        logger.addSink(next);
        logger.removeSink(syslog);
        const old = syslog;
        syslog = next;
        await old.close();
      },
    });
    const admin = new Client(app, token);
    const collectors = [{ host: "collector.invalid", port: 514 }];
    const r = await admin.json("PATCH", "/api/v1/settings", { body: { syslog: { collectors } } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.syslog, { collectors: [{ ...collectors[0], format: "rfc5424" }] });
    // Answered while the name is still unresolved; the next change does not wait on it either.
    assert.equal(syslog.collectors()[0].address, null);
    const again = await admin.json("PATCH", "/api/v1/settings", {
      body: { syslog: { collectors: [{ host: "other.invalid" }] } },
    });
    assert.equal(again.status, 200);
    logger.record("appliance-stop", { reason: "test" });
    assert.ok(syslog.collectors()[0].queued >= 1, "messages wait for the name");
    await logger.close();
  });
});

Deno.test("settings: the network section lists every uplink; wanAddress is the primary", async () => {
  await withApi(
    async (h) => {
      const viewer = await h.userClient("otto", "operator");
      const net = (await viewer.json("GET", "/api/v1/settings")).body.network as Record<
        string,
        unknown
      >;
      assert.equal(net.wanAddress, "198.51.100.1");
      assert.deepEqual(net.uplinks, [
        {
          name: "isp-a",
          interface: "wan0",
          addresses: ["198.51.100.1/26", "198.51.100.2/26"],
          addresses6: [],
          gateway: "198.51.100.62",
          gateway6: null,
        },
        {
          name: "isp-b",
          interface: "wan1",
          addresses: ["198.51.100.65/26"],
          addresses6: [],
          gateway: "198.51.100.126",
          gateway6: null,
        },
      ]);
    },
    {},
    twoUplinkConfig(),
  );
});
