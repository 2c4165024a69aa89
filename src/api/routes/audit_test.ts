import assert from "node:assert/strict";
import { withApi } from "../_test_util.ts";

type Entry = { id: string; actor: string; action: string; target: string; after: unknown };

Deno.test("audit: newest first, with actors, secrets redacted, paged with before", async () => {
  await withApi(async (h) => {
    const admin = await h.adminClient();
    await admin.json("POST", "/api/v1/rules/forwards", {
      body: { name: "ssh", publicPorts: { start: 52222, end: 52222 }, privateAddress: "192.0.2.5" },
    });
    const r = await admin.json("GET", "/api/v1/audit?limit=2");
    assert.equal(r.status, 200);
    const entries = r.body.entries as Entry[];
    assert.equal(entries.length, 2);
    assert.equal(entries[0].action, "rule.create");
    assert.equal(entries[0].actor, "admin");
    assert.equal(entries[0].target, "ssh");
    const older = await admin.json("GET", `/api/v1/audit?before=${entries[1].id}&limit=1000`);
    const rest = older.body.entries as Entry[];
    assert.ok(rest.length > 0);
    assert.ok(rest.every((e) => e.id < entries[1].id));
    const text = JSON.stringify(rest);
    assert.ok(!text.includes(h.admin.totpSecret));
    assert.ok(text.includes("[redacted]"));
    assert.equal((await admin.json("GET", "/api/v1/audit?before=nope")).status, 400);
  });
});

Deno.test("audit: administrators only", async () => {
  await withApi(async (h) => {
    const op = await h.userClient("otto", "operator");
    assert.equal((await op.json("GET", "/api/v1/audit")).status, 403);
    assert.equal((await h.anon.json("GET", "/api/v1/audit")).status, 401);
  });
});
