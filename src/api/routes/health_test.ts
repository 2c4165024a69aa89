import assert from "node:assert/strict";
import { withApi } from "../_test_util.ts";

Deno.test("health: answers without sign-in, with the clock's and the store's state", async () => {
  await withApi(async ({ anon, clock }) => {
    const r = await anon.json("GET", "/api/v1/health");
    assert.equal(r.status, 200);
    const { store, ...rest } = r.body as { store: Record<string, unknown> };
    assert.deepEqual(rest, {
      status: "ok",
      clock: { synchronised: true, detail: "test", now: clock.now() },
    });
    // The KV file: always connected, no revision.
    assert.deepEqual({ ...store, lastContactMs: 0 }, {
      backend: "kv",
      connected: true,
      lastContactMs: 0,
      revision: 0,
      loaded: true,
    });
  });
});

Deno.test("health: 503 waiting-for-store while the store was never read", async () => {
  await withApi(async ({ anon, store }) => {
    const real = store.health;
    store.health = () => ({ ...real(), backend: "etcd", connected: false, loaded: false });
    const r = await anon.json("GET", "/api/v1/health");
    assert.equal(r.status, 503);
    assert.equal(r.res.headers.get("retry-after"), "5");
    const body = r.body as { status: string; store: { loaded: boolean; connected: boolean } };
    assert.equal(body.status, "waiting-for-store");
    assert.deepEqual([body.store.connected, body.store.loaded], [false, false]);
  });
});
