import assert from "node:assert/strict";
import { withApi } from "../_test_util.ts";

Deno.test("health: answers without sign-in, with the clock's state", async () => {
  await withApi(async ({ anon, clock }) => {
    const r = await anon.json("GET", "/api/v1/health");
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, {
      status: "ok",
      clock: { synchronised: true, detail: "test", now: clock.now() },
    });
  });
});
