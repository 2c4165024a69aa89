import assert from "node:assert/strict";
import type { UnlockRecord } from "../../datapath/messages.ts";
import { Stat } from "../../datapath/counters.ts";
import type { FlowRecord } from "../../datapath/messages.ts";
import { withApi } from "../_test_util.ts";

Deno.test("status: counters, conntrack, unlock count, clock, uptime", async () => {
  await withApi(async (h) => {
    const viewer = await h.userClient("vic", "viewer");
    h.datapath.counters[Stat.RxPackets] = 42;
    h.datapath.counters[1] = 3; // first parse error reason
    h.datapath.unlock("203.0.113.10", "alice", h.clock.now());
    h.datapath.conntrackStats = { size: 7, capacity: 1024 };
    const r = await viewer.json("GET", "/api/v1/status");
    assert.equal(r.status, 200);
    const counters = r.body.counters as {
      stats: Record<string, number>;
      drops: Record<string, number>;
    };
    assert.equal(counters.stats.rx_packets, 42);
    assert.equal(Object.values(counters.drops)[0], 3);
    assert.deepEqual(r.body.conntrack, { size: 7, capacity: 1024 });
    assert.equal(r.body.unlocks, 1);
    assert.equal((r.body.store as { backend: string }).backend, "kv");
    assert.equal((r.body.clock as { synchronised: boolean }).synchronised, true);
    assert.ok((r.body.uptimeSec as number) >= 30); // the sign-ins moved the clock
  });
});

Deno.test("status: unlocks list and revoke", async () => {
  await withApi(async (h) => {
    const op = await h.userClient("otto", "operator");
    const viewer = await h.userClient("vic", "viewer");
    const u = h.datapath.unlock("203.0.113.10", "alice", h.clock.now());
    await h.store.unlocks.saveUnlock(u);
    const list = await viewer.json("GET", "/api/v1/status/unlocks");
    // The WAN address the knock arrived on is shown.
    assert.equal((list.body.unlocks as { wanAddress: string }[])[0].wanAddress, "198.51.100.1");
    assert.deepEqual(list.body, { unlocks: [u] });
    assert.equal((await viewer.json("DELETE", "/api/v1/status/unlocks/203.0.113.10")).status, 403);
    const bad = await op.json("DELETE", "/api/v1/status/unlocks/203.0.113.999");
    assert.equal(bad.status, 400);
    assert.equal((bad.body.error as { field: string }).field, "ip");
    const del = await op.json("DELETE", "/api/v1/status/unlocks/203.0.113.10");
    assert.equal(del.status, 200);
    assert.deepEqual(del.body, { unlock: u });
    // The audit names who revoked it, not a role.
    assert.equal(h.datapath.revokedBy.get("203.0.113.10"), "otto");
    assert.deepEqual(await h.store.unlocks.listUnlocks(), []);
    // The other nodes of a shared store end their copy on this note.
    assert.deepEqual(
      (await h.store.unlocks.listRevocations()).map((n) => [n.ip, n.by]),
      [["203.0.113.10", "otto"]],
    );
    const again = await op.json("DELETE", "/api/v1/status/unlocks/203.0.113.10");
    assert.equal(again.status, 404);
    assert.match((again.body.error as { message: string }).message, /not unlocked/);
  });
});

Deno.test("status: flows with limit", async () => {
  await withApi(async (h) => {
    const viewer = await h.userClient("vic", "viewer");
    const flow: FlowRecord = {
      proto: 6,
      state: "ESTABLISHED",
      origSrc: "203.0.113.10",
      origSrcPort: 40000,
      origDst: "198.51.100.1",
      origDstPort: 52201,
      replySrc: "192.0.2.12",
      replySrcPort: 8080,
      replyDst: "203.0.113.10",
      replyDstPort: 40000,
      packets: 10,
      bytes: 1000,
      expiresInSec: 300,
      rule: "web",
      assured: true,
    };
    h.datapath.flowTable = Array.from(
      { length: 5 },
      (_, i) => ({ ...flow, origSrcPort: 40000 + i }),
    );
    const r = await viewer.json("GET", "/api/v1/status/flows?limit=2");
    assert.equal((r.body.flows as FlowRecord[]).length, 2);
    assert.equal(((await viewer.json("GET", "/api/v1/status/flows")).body.flows as []).length, 5);
    const bad = await viewer.json("GET", "/api/v1/status/flows?limit=0");
    assert.equal(bad.status, 400);
    assert.equal((bad.body.error as { field: string }).field, "limit");
    assert.equal((await viewer.json("GET", "/api/v1/status/flows?limit=abc")).status, 400);
    assert.equal((await h.anon.json("GET", "/api/v1/status/flows")).status, 401);
  });
});

Deno.test("status: an unlock the data plane reports without a WAN address shows it empty", async () => {
  await withApi(async (h) => {
    const viewer = await h.userClient("vic", "viewer");
    const t = h.clock.now();
    h.datapath.unlockTable.set("203.0.113.11", {
      ip: "203.0.113.11",
      user: "alice",
      unlockedAt: t,
      lastSeen: t,
      expiresAt: t + 60_000,
      drift: 0,
      flows: 0,
      bytes: 0,
    } as UnlockRecord);
    const list = await viewer.json("GET", "/api/v1/status/unlocks");
    assert.equal((list.body.unlocks as { wanAddress: string }[])[0].wanAddress, "");
  });
});
