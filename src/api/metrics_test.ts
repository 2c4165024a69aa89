import assert from "node:assert/strict";
import {
  Drop,
  DROP_COUNT,
  KNOCK_STAT_BASE,
  KNOCK_STATS,
  knockFailureSlot,
  newCounters,
  RULE_BASE,
  Stat,
} from "../datapath/counters.ts";
import { METRICS_CONTENT_TYPE, renderMetrics } from "./metrics.ts";
import { twoUplinkConfig, twoUplinkStatus, withApi } from "./_test_util.ts";
import { APPLIANCE_VERSION } from "./version.ts";

/** Every sample line must be `name{labels} value` and every family typed before use. */
function assertExposition(text: string): void {
  const typed = new Set<string>(), helped = new Set<string>();
  for (const line of text.trimEnd().split("\n")) {
    const t = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge)$/.exec(line);
    if (t) {
      assert.ok(!typed.has(t[1]), `${t[1]} typed twice`);
      assert.equal(t[1].endsWith("_total"), t[2] === "counter", `${t[1]}: _total iff a counter`);
      typed.add(t[1]);
      continue;
    }
    const h = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(line);
    if (h) {
      helped.add(h[1]);
      // Real words: not the metric's own name, not a "Data plane: x" placeholder.
      assert.ok(h[2].split(" ").length >= 4, `${h[1]}: placeholder help "${h[2]}"`);
      continue;
    }
    const m =
      /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-z_]+="(?:[^"\\\n]|\\["\\n])*",?)+\})? (-?\d+(\.\d+)?(e[+-]?\d+)?)$/
        .exec(line);
    assert.ok(m, `bad sample line: ${line}`);
    assert.ok(typed.has(m[1]), `${m[1]} used before its TYPE`);
    assert.ok(helped.has(m[1]), `${m[1]} has no HELP`);
  }
}

Deno.test("metrics: counters, drops by reason, unlocks, conntrack in text format", () => {
  const c = newCounters(false);
  c[Stat.RxPackets] = 1234;
  c[Drop.Locked] = 7;
  const text = renderMetrics({
    counters: c,
    unlocks: 2,
    conntrack: { size: 5, capacity: 1024, inserted: 9 },
    uptimeSec: 60,
  });
  assertExposition(text);
  assert.match(text, /^knockgate_rx_packets_total 1234$/m);
  assert.match(text, /^knockgate_packets_dropped_total\{reason="locked"\} 7$/m);
  assert.match(text, /^knockgate_packets_dropped_total\{reason="no-rule"\} 0$/m);
  assert.equal(text.match(/^knockgate_packets_dropped_total\{/gm)!.length, DROP_COUNT - 1);
  assert.match(text, /^knockgate_unlocked_ips 2$/m);
  assert.match(text, /^knockgate_conntrack_flows 5$/m);
  assert.match(text, /^knockgate_conntrack_capacity_flows 1024$/m);
  assert.match(text, /^knockgate_conntrack_inserted_total 9$/m);
  assert.match(text, /^knockgate_uptime_seconds 60$/m);
});

Deno.test("metrics: served at /metrics to any signed-in role", async () => {
  await withApi(async (h) => {
    const viewer = await h.userClient("vic", "viewer");
    h.datapath.unlock("203.0.113.10", "alice", h.clock.now());
    const res = await viewer.request("GET", "/metrics");
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), METRICS_CONTENT_TYPE);
    assert.equal(res.headers.get("cache-control"), "no-store");
    const text = await res.text();
    assertExposition(text);
    assert.match(text, /^knockgate_unlocked_ips 1$/m);
    assert.equal((await h.anon.json("GET", "/metrics")).status, 401);
  });
});

Deno.test("metrics: each uplink's health, probes and the masquerade in use", async () => {
  await withApi(
    async (h) => {
      const viewer = await h.userClient("vic", "viewer");
      // A data plane that cannot tell: no uplink families.
      const none = await (await viewer.request("GET", "/metrics")).text();
      assert.doesNotMatch(none, /knockgate_uplink_/);
      h.datapath.uplinkTable = twoUplinkStatus();
      const text = await (await viewer.request("GET", "/metrics")).text();
      assertExposition(text);
      assert.match(text, /^knockgate_uplink_up\{uplink="isp-a"\} 0$/m);
      assert.match(text, /^knockgate_uplink_up\{uplink="isp-b"\} 1$/m);
      assert.match(text, /^knockgate_uplink_probes_sent_total\{uplink="isp-a"\} 12$/m);
      assert.match(text, /^knockgate_uplink_probes_received_total\{uplink="isp-a"\} 9$/m);
      assert.match(text, /^knockgate_masquerade_uplink\{uplink="isp-a"\} 0$/m);
      assert.match(text, /^knockgate_masquerade_uplink\{uplink="isp-b"\} 1$/m);
      assert.doesNotMatch(text, /knockgate_uplink_ipv6_/, "no IPv6 probe, no IPv6 families");
      // An IPv6 probe on isp-a only: its series, none for isp-b; the IPv4 ones unchanged.
      h.datapath.uplinkTable = twoUplinkStatus().map((u, i) => ({
        ...u,
        ipv6: i === 0
          ? { up: false, target: "fe80::1", sent: 7, received: 4, lastRttMs: null, changedAt: 1 }
          : null,
      }));
      const six = await (await viewer.request("GET", "/metrics")).text();
      assertExposition(six);
      assert.match(six, /^knockgate_uplink_ipv6_up\{uplink="isp-a"\} 0$/m);
      assert.match(six, /^knockgate_uplink_ipv6_probes_sent_total\{uplink="isp-a"\} 7$/m);
      assert.match(six, /^knockgate_uplink_ipv6_probes_received_total\{uplink="isp-a"\} 4$/m);
      assert.doesNotMatch(six, /knockgate_uplink_ipv6_\w+\{uplink="isp-b"\}/);
      assert.match(six, /^knockgate_uplink_up\{uplink="isp-a"\} 0$/m);
    },
    {},
    twoUplinkConfig(),
  );
});

Deno.test("metrics: build info, knock, sign-in, per-rule, host and clock families", () => {
  const c = newCounters(false);
  c[Stat.Unlocks] = 3;
  c[knockFailureSlot("wrong-port")] = 2;
  c[KNOCK_STAT_BASE + KNOCK_STATS.indexOf("replays")] = 1;
  c[KNOCK_STAT_BASE + KNOCK_STATS.indexOf("penalties")] = 4;
  c[RULE_BASE + 2 * 7] = 10;
  c[RULE_BASE + 2 * 7 + 1] = 1500;
  const text = renderMetrics({
    counters: c,
    unlocks: 0,
    conntrack: { size: 0, capacity: 8, outOfWindow: 5 },
    uptimeSec: 1,
    rules: [{ id: 7, name: 'ssh "jump" \\ box' }, { id: 2, name: "web" }],
    signInFailures: [["bad-password", 2], ["throttled", 1]],
    host: { "wan-input": 12, "lan-spoofed": 0 },
    clockSynchronised: false,
    build: { version: "1.2.3", deno: "2.9.6" },
  });
  assertExposition(text);
  assert.match(text, /^knockgate_build_info\{version="1\.2\.3",deno="2\.9\.6"\} 1$/m);
  assert.match(text, /^knockgate_knock_successes_total 3$/m);
  assert.match(text, /^knockgate_knock_failures_total\{reason="wrong-port"\} 2$/m);
  assert.match(text, /^knockgate_knock_failures_total\{reason="window-expired"\} 0$/m);
  assert.match(text, /^knockgate_knock_replays_total 1$/m);
  assert.match(text, /^knockgate_knock_penalties_total 4$/m);
  assert.match(text, /^knockgate_knock_throttled_total 0$/m);
  assert.match(text, /^knockgate_knock_strays_total 0$/m);
  assert.match(text, /^knockgate_sign_in_failures_total\{reason="bad-password"\} 2$/m);
  assert.ok(text.includes('knockgate_rule_packets_total{rule="ssh \\"jump\\" \\\\ box"} 10\n'));
  assert.ok(text.includes('knockgate_rule_bytes_total{rule="ssh \\"jump\\" \\\\ box"} 1500\n'));
  assert.match(text, /^knockgate_rule_packets_total\{rule="web"\} 0$/m);
  assert.match(text, /^knockgate_host_filter_packets_total\{rule="wan-input"\} 12$/m);
  assert.match(text, /^knockgate_clock_synchronised 0$/m);
  assert.match(text, /^knockgate_conntrack_out_of_window_total 5$/m);
  assert.doesNotMatch(text, /^knockgate_drops_total/m, "the sum of the drops by reason");
});

Deno.test("metrics: sign-in failures, per-rule traffic and build info from the running API", async () => {
  await withApi(async (h) => {
    const scraper = await h.userClient("prom", "viewer");
    const bad = await h.anon.json("POST", "/api/v1/auth/login", {
      body: { username: h.admin.name, password: "not-the-password", code: "000000" },
    });
    assert.equal(bad.status, 401);
    h.datapath.ruleIdTable = [{ id: 0, name: "web" }];
    h.datapath.counters[RULE_BASE] = 4;
    h.datapath.counters[RULE_BASE + 1] = 480;
    const text = await (await scraper.request("GET", "/metrics")).text();
    assertExposition(text);
    assert.match(text, /^knockgate_sign_in_failures_total\{reason="bad-password"\} 1$/m);
    assert.match(text, /^knockgate_sign_in_failures_total\{reason="code-reused"\} 0$/m);
    assert.match(text, /^knockgate_rule_packets_total\{rule="web"\} 4$/m);
    assert.match(text, /^knockgate_rule_bytes_total\{rule="web"\} 480$/m);
    assert.match(text, /^knockgate_clock_synchronised 1$/m);
    const info = /^knockgate_build_info\{version="([^"]+)",deno="([^"]+)"\} 1$/m.exec(text);
    assert.ok(info, "build_info");
    assert.deepEqual([info[1], info[2]], [APPLIANCE_VERSION, Deno.version.deno]);
  });
});

/** promtool from Debian's `prometheus` package (scripts/setup.sh installs it), or null. */
function promtool(): string | null {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin").split(":")) {
    try {
      if (Deno.statSync(`${dir}/promtool`).isFile) return `${dir}/promtool`;
    } catch {
      // not in this directory
    }
  }
  return null;
}

Deno.test({
  name: "metrics: promtool check metrics passes on the running API's /metrics",
  ignore: promtool() === null,
  fn: async () => {
    await withApi(
      async (h) => {
        const scraper = await h.userClient("prom", "viewer");
        await h.anon.json("POST", "/api/v1/auth/login", {
          body: { username: h.admin.name, password: "wrong", code: "000000" },
        });
        h.datapath.ruleIdTable = [{ id: 0, name: "web" }, { id: 1, name: 'odd "name"' }];
        // With an IPv6 probe on isp-a: its families pass too.
        h.datapath.uplinkTable = twoUplinkStatus().map((u, i) => ({
          ...u,
          ipv6: i === 0
            ? { up: true, target: "fe80::1", sent: 4, received: 3, lastRttMs: 0.2, changedAt: 0 }
            : null,
        }));
        h.datapath.unlock("203.0.113.10", "alice", h.clock.now());
        const res = await scraper.request("GET", "/metrics");
        assert.equal(res.status, 200);
        const child = new Deno.Command(promtool()!, {
          args: ["check", "metrics"],
          stdin: "piped",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        const w = child.stdin.getWriter();
        await w.write(new TextEncoder().encode(await res.text()));
        await w.close();
        const r = await child.output();
        const said = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
        assert.equal(r.code, 0, said);
        assert.equal(said.trim(), "", `promtool has remarks:\n${said}`);
      },
      {},
      twoUplinkConfig(),
    );
  },
});

Deno.test("metrics: the store's connection, last contact and revision", () => {
  const base = { counters: newCounters(false), unlocks: 0, conntrack: {}, uptimeSec: 1 };
  const now = Date.UTC(2026, 0, 1);
  const down = renderMetrics({
    ...base,
    store: {
      health: { backend: "etcd", connected: false, lastContactMs: now - 12_500, revision: 42 },
      now,
    },
  });
  assertExposition(down);
  assert.match(down, /^knockgate_store_connected\{backend="etcd"\} 0$/m);
  assert.match(down, /^knockgate_store_last_contact_seconds\{backend="etcd"\} 12\.5$/m);
  assert.match(down, /^knockgate_store_revision\{backend="etcd"\} 42$/m);
  const kv = renderMetrics({
    ...base,
    store: { health: { backend: "kv", connected: true, lastContactMs: now, revision: 0 }, now },
  });
  assert.match(kv, /^knockgate_store_connected\{backend="kv"\} 1$/m);
  assert.match(kv, /^knockgate_store_last_contact_seconds\{backend="kv"\} 0$/m);
});
