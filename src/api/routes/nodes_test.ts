import assert from "node:assert/strict";
import { DOWN_AFTER_MS } from "../../store/nodes.ts";
import { withApi } from "../_test_util.ts";

Deno.test("nodes: every registered node, down once its heartbeat is three intervals old", async () => {
  await withApi(async (h) => {
    const viewer = await h.userClient("vic", "viewer");
    const admin = await h.adminClient();
    const record = (name: string, heartbeatAt: number) => ({
      name,
      url: `https://192.0.2.1:8443/`,
      version: "0.9.0",
      startedAt: heartbeatAt - 1000,
      heartbeatAt,
      flows: 2,
      unlocks: 1,
    });
    await h.store.nodes.heartbeat(record("kg-b", h.clock.now() - DOWN_AFTER_MS - 1));
    await h.store.nodes.heartbeat(record("kg-a", h.clock.now()));
    const r = await viewer.json("GET", "/api/v1/nodes");
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(
      (r.body.nodes as { name: string; up: boolean; self: boolean }[]).map((n) => [
        n.name,
        n.up,
        n.self,
      ]),
      [["kg-a", true, false], ["kg-b", false, false]],
    );
    assert.equal(r.body.downAfterMs, DOWN_AFTER_MS);
    assert.equal((r.body.store as { backend: string }).backend, "kv");
    assert.equal((await viewer.json("DELETE", "/api/v1/nodes/kg-b")).status, 403);
    assert.equal((await admin.request("DELETE", "/api/v1/nodes/kg-b")).status, 204);
    const after = await viewer.json("GET", "/api/v1/nodes");
    assert.deepEqual((after.body.nodes as { name: string }[]).map((n) => n.name), ["kg-a"]);
    assert.equal((await h.anon.json("GET", "/api/v1/nodes")).status, 401);
  });
});
