import assert from "node:assert/strict";
import { T0, withStore } from "./_test_util.ts";
import { ValidationError } from "./errors.ts";
import type { UnlockRecord } from "./unlocks.ts";

function unlock(ip: string, expiresAt = T0 + 3_600_000, user = "alice"): UnlockRecord {
  return {
    ip,
    user,
    unlockedAt: T0,
    lastSeen: T0,
    expiresAt,
    drift: 0,
    flows: 1,
    bytes: 100,
    wanAddress: "198.51.100.1",
  };
}

Deno.test("unlocks: save, list, remove; expired ones are filtered out", async () => {
  await withStore(async ({ unlocks }, { clock }) => {
    await unlocks.saveUnlock(unlock("203.0.113.5"));
    await unlocks.saveUnlock(unlock("203.0.113.6", T0 + 1000));
    await unlocks.saveUnlock({ ...unlock("203.0.113.5"), flows: 7 }); // replaces
    assert.deepEqual(await unlocks.listUnlocks(), [
      { ...unlock("203.0.113.5"), flows: 7 },
      unlock("203.0.113.6", T0 + 1000),
    ]);
    clock.advance(1000);
    assert.deepEqual((await unlocks.listUnlocks()).map((u) => u.ip), ["203.0.113.5"]);
    await unlocks.removeUnlock("203.0.113.5");
    await unlocks.removeUnlock("203.0.113.99"); // absent: no error
    assert.deepEqual(await unlocks.listUnlocks(), []);
    await assert.rejects(unlocks.saveUnlock(unlock("203.0.113.500")), ValidationError);
  });
});

Deno.test("unlocks: replaceAll swaps the whole snapshot, also beyond one atomic batch", async () => {
  await withStore(async ({ unlocks, kv }) => {
    await unlocks.saveUnlock(unlock("203.0.113.1"));
    const many = Array.from({ length: 1200 }, (_, i) => unlock(`198.51.${i >> 8}.${i & 255}`));
    await unlocks.replaceAll(many);
    const listed = await unlocks.listUnlocks();
    assert.equal(listed.length, 1200);
    assert.ok(!listed.some((u) => u.ip === "203.0.113.1"));
    await unlocks.replaceAll([unlock("203.0.113.2")]);
    assert.deepEqual((await unlocks.listUnlocks()).map((u) => u.ip), ["203.0.113.2"]);
    let stored = 0;
    for await (const _ of kv.list({ prefix: ["unlocks", "entries"] })) stored++;
    assert.equal(stored, 1, "old generations are deleted");
  });
});

Deno.test("unlocks: leftovers of a crashed replaceAll are ignored and cleaned", async () => {
  await withStore(async ({ unlocks, kv }) => {
    await unlocks.saveUnlock(unlock("203.0.113.1"));
    // A crash after writing generation 1 but before the flip.
    await kv.set(["unlocks", "entries", 1, "203.0.113.66"], unlock("203.0.113.66"));
    assert.deepEqual((await unlocks.listUnlocks()).map((u) => u.ip), ["203.0.113.1"]);
    await unlocks.replaceAll([unlock("203.0.113.2")]);
    assert.deepEqual((await unlocks.listUnlocks()).map((u) => u.ip), ["203.0.113.2"]);
  });
});

Deno.test("unlocks: the WAN address is kept; a record saved before it existed reads as empty", async () => {
  await withStore(async ({ unlocks, kv }) => {
    await unlocks.saveUnlock({ ...unlock("203.0.113.5"), wanAddress: "198.51.100.65" });
    const { wanAddress: _, ...old } = unlock("203.0.113.6");
    await kv.set(["unlocks", "entries", 0, old.ip], old);
    assert.deepEqual(
      (await unlocks.listUnlocks()).map((u) => [u.ip, u.wanAddress]),
      [["203.0.113.5", "198.51.100.65"], ["203.0.113.6", ""]],
    );
    await assert.rejects(
      unlocks.saveUnlock({ ...unlock("203.0.113.7"), wanAddress: "wan0" }),
      (e) => e instanceof ValidationError && e.field === "wanAddress",
    );
  });
});
