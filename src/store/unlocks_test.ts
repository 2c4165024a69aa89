import assert from "node:assert/strict";
import { T0, withStore } from "./_test_util.ts";
import { ValidationError } from "./errors.ts";
import {
  REFRESH_STEP_MS,
  REVOCATION_KEEP_MS,
  type UnlockChange,
  UnlockJournal,
  type UnlockRecord,
} from "./unlocks.ts";

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

Deno.test("unlocks: a shared store merges a node's table: new and moved unlocks, never another's", async () => {
  await withStore(async ({ unlocks }, { clock }) => {
    // Another node's unlock, and one this node also holds.
    await unlocks.saveUnlock(unlock("203.0.113.1"));
    await unlocks.saveUnlock(unlock("203.0.113.2"));
    const mine = [
      { ...unlock("203.0.113.2"), expiresAt: T0 + 3_600_000 + REFRESH_STEP_MS - 1 }, // too small a move
      unlock("203.0.113.3"), // new
    ];
    assert.equal(await unlocks.mergeAll(mine), 1);
    assert.deepEqual((await unlocks.listUnlocks()).map((u) => [u.ip, u.expiresAt]), [
      ["203.0.113.1", T0 + 3_600_000],
      ["203.0.113.2", T0 + 3_600_000],
      ["203.0.113.3", T0 + 3_600_000],
    ]);
    // Traffic moved this node's expiry a step: the later expiry wins; the store's earlier knock stays.
    const later = { ...unlock("203.0.113.2"), unlockedAt: T0 + 5, lastSeen: T0 + REFRESH_STEP_MS };
    later.expiresAt = later.lastSeen + 3_600_000;
    assert.equal(await unlocks.mergeAll([later]), 1);
    const two = (await unlocks.listUnlocks()).find((u) => u.ip === "203.0.113.2")!;
    assert.deepEqual([two.unlockedAt, two.lastSeen, two.expiresAt], [
      T0,
      later.lastSeen,
      later.expiresAt,
    ]);
    // An older table never pulls a stored expiry back.
    assert.equal(await unlocks.mergeAll([unlock("203.0.113.2")]), 0);
    // Expired stored entries go; a fresh unlock replaces an expired one of another user.
    clock.advance(3_600_000);
    assert.equal(await unlocks.mergeAll([unlock("203.0.113.1", T0 + 7_200_000, "bob")]), 2);
    assert.deepEqual((await unlocks.listUnlocks()).map((u) => [u.ip, u.user]), [
      ["203.0.113.1", "bob"],
      ["203.0.113.2", "alice"],
    ]);
  });
});

Deno.test("unlocks: on a shared store a node's idle expiry keeps an unlock another node refreshed", async () => {
  await withStore(async ({ unlocks }, { clock }) => {
    const kept = new UnlockJournal(unlocks, () => 3_600_000, { shared: true });
    await unlocks.saveUnlock(unlock("203.0.113.1", T0 + 1000));
    await unlocks.saveUnlock(unlock("203.0.113.2", T0 + 9000));
    clock.advance(2000);
    const expired: UnlockChange[] = [
      { type: "unlock-expired", ip: "203.0.113.1" },
      { type: "unlock-expired", ip: "203.0.113.2" }, // refreshed elsewhere until T0 + 9 s
    ];
    await kept.apply(expired);
    assert.deepEqual((await unlocks.listUnlocks()).map((u) => u.ip), ["203.0.113.2"]);
    const revoked: UnlockChange[] = [{ type: "unlock-revoked", ip: "203.0.113.2" }];
    await kept.apply(revoked); // a revocation is fleet-wide
    assert.deepEqual(await unlocks.listUnlocks(), []);
    // The snapshot of a shared journal merges instead of replacing.
    await unlocks.saveUnlock(unlock("203.0.113.7", T0 + 60_000));
    await kept.snapshot(() => Promise.resolve([unlock("203.0.113.8", T0 + 60_000)]));
    assert.deepEqual((await unlocks.listUnlocks()).map((u) => u.ip), [
      "203.0.113.7",
      "203.0.113.8",
    ]);
  });
});

Deno.test("unlocks: revokeUnlock removes it and leaves a note the other nodes read", async () => {
  await withStore(async ({ unlocks }, { clock }) => {
    await unlocks.saveUnlock(unlock("203.0.113.5"));
    await unlocks.saveUnlock(unlock("203.0.113.6"));
    clock.advance(1000);
    await unlocks.revokeUnlock("203.0.113.5", "carol");
    await unlocks.revokeUnlock("203.0.113.99", "carol"); // not unlocked: a note all the same
    assert.deepEqual((await unlocks.listUnlocks()).map((u) => u.ip), ["203.0.113.6"]);
    assert.deepEqual(await unlocks.listRevocations(), [
      { ip: "203.0.113.5", at: T0 + 1000, by: "carol" },
      { ip: "203.0.113.99", at: T0 + 1000, by: "carol" },
    ]);
    clock.advance(REVOCATION_KEEP_MS);
    assert.deepEqual(await unlocks.listRevocations(), []);
  });
});

Deno.test("unlocks: IPv6 unlocks (a prefix, or one address) round-trip; other spellings are refused", async () => {
  await withStore(async ({ unlocks }) => {
    const prefix = { ...unlock("2001:db8:1:2::/64"), wanAddress: "2001:db8:a::1" };
    const host = { ...unlock("2001:db8:1:2::99"), wanAddress: "2001:db8:a::1" };
    await unlocks.saveUnlock(prefix);
    await unlocks.saveUnlock(host);
    await unlocks.saveUnlock(unlock("203.0.113.5"));
    assert.deepEqual(
      (await unlocks.listUnlocks()).map((u) => [u.ip, u.wanAddress]).sort(),
      [
        ["2001:db8:1:2::/64", "2001:db8:a::1"],
        ["2001:db8:1:2::99", "2001:db8:a::1"],
        ["203.0.113.5", "198.51.100.1"],
      ],
    );
    await unlocks.revokeUnlock("2001:db8:1:2::/64", "admin");
    assert.deepEqual((await unlocks.listRevocations()).map((r) => r.ip), ["2001:db8:1:2::/64"]);
    assert.equal((await unlocks.listUnlocks()).length, 2);
    const refused = async (ip: string, reason: string) => {
      const e = await unlocks.saveUnlock(unlock(ip)).then(() => null, (e) => e);
      assert.ok(e instanceof ValidationError, ip);
      assert.equal(e.field, "ip");
      assert.equal(e.message, `Cannot save unlock: ${JSON.stringify(ip)} ${reason}`);
    };
    await refused("2001:DB8:1:2::/64", "is not in canonical form (2001:db8:1:2::/64)");
    await refused("2001:db8:1:2::5/64", "is not in canonical form (2001:db8:1:2::/64)");
    await refused("2001:db8::1/128", "is not in canonical form (2001:db8::1)");
    await refused("2001:db8::/129", "is not an IPv4 address, an IPv6 address or an IPv6 prefix");
    await assert.rejects(
      unlocks.saveUnlock({ ...unlock("2001:db8::/64"), wanAddress: "2001:DB8::1" }),
      /WAN address "2001:DB8::1" is not an IPv4 or IPv6 address \(RFC 5952 text\)/,
    );
  });
});
