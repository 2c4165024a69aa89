import assert from "node:assert/strict";
import { openStore } from "./kv_store.ts";
import type { KnockStateRecord } from "./knock_state.ts";
import { T0, withStore } from "./_test_util.ts";
import { ValidationError } from "./errors.ts";
import { UnlockJournal, type UnlockRecord } from "./unlocks.ts";

function replay(user: string, step: number, ip: string, expiresAt = T0 + 90_000): KnockStateRecord {
  return { type: "replay", user, step, ip, expiresAt };
}

function failures(ip: string, level: number, expiresAt = T0 + 600_000): KnockStateRecord {
  return { type: "failures", ip, level, lastFailure: T0, penaltyUntil: 0, expiresAt };
}

Deno.test("knock state: saved, replaced per key, listed until it expires", async () => {
  await withStore(async ({ knockState }, { clock }) => {
    await knockState.save([
      replay("alice", 100, "203.0.113.7"),
      failures("203.0.113.8", 1),
      failures("*", 3, T0 + 10_000),
    ]);
    await knockState.save([failures("203.0.113.8", 2), replay("bob", 100, "203.0.113.9")]);
    const listed = await knockState.list();
    assert.equal(listed.length, 4);
    assert.deepEqual(listed.find((r) => r.ip === "203.0.113.8"), failures("203.0.113.8", 2));
    clock.advance(10_000);
    assert.deepEqual((await knockState.list()).map((r) => r.ip).sort(), [
      "203.0.113.7",
      "203.0.113.8",
      "203.0.113.9",
    ]);
    clock.advance(80_000);
    assert.deepEqual((await knockState.list()).map((r) => r.ip), ["203.0.113.8"]);
    // An expired record is not even written.
    await knockState.save([replay("carol", 1, "203.0.113.10", T0)]);
    assert.equal((await knockState.list()).length, 1);
    await assert.rejects(knockState.save([replay("a", 1, "203.0.113.500")]), ValidationError);
    await assert.rejects(knockState.save([failures("nope", 1)]), ValidationError);
  });
});

Deno.test("knock state survives closing and reopening the KV file; many records in batches", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kgt-store-" });
  const path = `${dir}/store.kv`;
  try {
    const now = Date.now();
    const many = Array.from(
      { length: 1200 },
      (_, i) => replay("alice", i, `198.51.${i >> 8}.${i & 255}`, now + 60_000),
    );
    const a = await openStore(path);
    await a.knockState.save(many);
    a.close();
    const b = await openStore(path);
    try {
      const listed = await b.knockState.list();
      assert.equal(listed.length, 1200);
    } finally {
      b.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A WAN address a knock arrived on. */
const B = "198.51.100.65";

/** Data-plane events as the journal sees them (the log's ApplianceEvent shapes). */
function events(...e: object[]): { type: string }[] {
  return e as { type: string }[];
}

Deno.test("unlock journal: each new unlock saved as its event arrives, each end removed", async () => {
  await withStore(async ({ unlocks }) => {
    const journal = new UnlockJournal(unlocks, () => 3_600_000);
    await journal.apply(events(
      { type: "knock-success", time: T0, ip: "203.0.113.7", user: "alice", drift: 0, step: 1 },
      { type: "knock-failure", ip: "203.0.113.8" },
      {
        type: "knock-success",
        time: T0,
        ip: "203.0.113.9",
        user: "bob",
        drift: 1,
        step: 1,
        wan: B,
      },
    ));
    assert.deepEqual(
      (await unlocks.listUnlocks()).map((u) => [u.ip, u.expiresAt, u.wanAddress]),
      [["203.0.113.7", T0 + 3_600_000, ""], ["203.0.113.9", T0 + 3_600_000, B]],
    );
    await journal.apply(events({ type: "unlock-revoked", ip: "203.0.113.7" }));
    assert.deepEqual((await unlocks.listUnlocks()).map((u) => u.ip), ["203.0.113.9"]);
  });
});

Deno.test("unlock journal: a revoke racing with a snapshot is not undone by it", async () => {
  await withStore(async ({ unlocks }) => {
    const journal = new UnlockJournal(unlocks, () => 3_600_000);
    const live: UnlockRecord = {
      ip: "203.0.113.7",
      user: "alice",
      unlockedAt: T0,
      lastSeen: T0,
      expiresAt: T0 + 3_600_000,
      drift: 0,
      flows: 2,
      bytes: 10,
      wanAddress: "198.51.100.1",
    };
    // The snapshot is read from the data plane, then the revoke arrives before it is written.
    const snap = journal.snapshot(async () => {
      const table = [live];
      await Promise.resolve();
      journal.apply(events({ type: "unlock-revoked", ip: live.ip }));
      return table;
    });
    await snap;
    await journal.apply([]);
    assert.deepEqual(await unlocks.listUnlocks(), []);
  });
});

Deno.test("knock state: a step is claimed once; the same IP again is granted, another is told the holder", async () => {
  await withStore(async ({ knockState }, { clock }) => {
    const r = replay("alice", 100, "203.0.113.7") as Extract<KnockStateRecord, { type: "replay" }>;
    assert.deepEqual(await knockState.claim(r), { granted: true });
    assert.deepEqual(await knockState.claim(r), { granted: true });
    assert.deepEqual(await knockState.claim({ ...r, ip: "203.0.113.8" }), {
      granted: false,
      firstIp: "203.0.113.7",
    });
    // Another step, another user: free.
    assert.deepEqual(await knockState.claim({ ...r, step: 101, ip: "203.0.113.8" }), {
      granted: true,
    });
    assert.deepEqual(await knockState.claim({ ...r, user: "bob", ip: "203.0.113.9" }), {
      granted: true,
    });
    // The claims are the replay memory a restart restores.
    assert.equal((await knockState.list()).length, 3);
    clock.advance(90_000);
    assert.equal((await knockState.list()).length, 0);
    await assert.rejects(knockState.claim({ ...r, ip: "nope" }), ValidationError);
  });
});
