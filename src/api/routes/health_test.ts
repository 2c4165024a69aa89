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
    });
  });
});
