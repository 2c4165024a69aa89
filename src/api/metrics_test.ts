import assert from "node:assert/strict";
import { Drop, DROP_COUNT, Stat } from "../datapath/counters.ts";
import { METRICS_CONTENT_TYPE, renderMetrics } from "./metrics.ts";
import { withApi } from "./_test_util.ts";
import { newCounters } from "../datapath/counters.ts";

/** Every sample line must be `name{labels} value` and every family typed before use. */
function assertExposition(text: string): void {
  const typed = new Set<string>();
  for (const line of text.trimEnd().split("\n")) {
    const t = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge)$/.exec(line);
    if (t) {
      assert.ok(!typed.has(t[1]), `${t[1]} typed twice`);
      typed.add(t[1]);
      continue;
    }
    if (line.startsWith("# HELP ")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-z_]+="[^"\\\n]*"\})? (-?\d+(\.\d+)?(e[+-]?\d+)?)$/
      .exec(line);
    assert.ok(m, `bad sample line: ${line}`);
    assert.ok(typed.has(m[1]), `${m[1]} used before its TYPE`);
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
  assert.match(text, /^knockgate_conntrack_capacity 1024$/m);
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
