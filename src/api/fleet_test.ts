import assert from "node:assert/strict";
import type { UnlockRecord } from "../datapath/messages.ts";
import type { SavedUnlock } from "../store/unlocks.ts";
import type { UserRecord } from "../store/users.ts";
import { FleetSync, NodeHeartbeat, revocationOf, unlocksToMerge } from "./fleet.ts";
import { T0, withApi } from "./_test_util.ts";

function unlock(ip: string, user = "alice", at = T0, lastSeen = at): SavedUnlock {
  return {
    ip,
    user,
    unlockedAt: at,
    lastSeen,
    expiresAt: lastSeen + 3_600_000,
    drift: 0,
    flows: 0,
    bytes: 0,
    wanAddress: "198.51.100.1",
  };
}

Deno.test("fleet: unlocksToMerge takes new ones, later traffic, later knocks of another user", () => {
  const local: UnlockRecord[] = [unlock("203.0.113.1"), unlock("203.0.113.2", "bob", T0 + 5)];
  const stored = [
    unlock("203.0.113.1"), // the same: nothing to do
    unlock("203.0.113.2", "alice", T0 + 1), // another user's older knock: keep the local one
    unlock("203.0.113.3"), // new
    unlock("203.0.113.4", "mallory"), // a user who does not knock
    unlock("203.0.113.5", "alice", T0, T0 + 10), // revoked after its knock
    unlock("203.0.113.6", "alice", T0 + 20), // knocked again after a revocation
  ];
  const later = { ...unlock("203.0.113.1"), lastSeen: T0 + 9 };
  const revoked = new Map([["203.0.113.5", T0 + 1], ["203.0.113.6", T0 + 1]]);
  const active = new Set(["alice", "bob"]);
  assert.deepEqual(
    unlocksToMerge(stored, local, active, revoked).map((u) => u.ip),
    ["203.0.113.3", "203.0.113.6"],
  );
  assert.deepEqual(unlocksToMerge([later], local, active, revoked), [later]);
  const newerKnock = unlock("203.0.113.2", "alice", T0 + 6);
  assert.deepEqual(unlocksToMerge([newerKnock], local, active, revoked), [newerKnock]);
});

Deno.test("fleet: revocationOf ends an unlock on a newer note or when its user stops knocking", () => {
  const user = (name: string, enabled = true) =>
    ({ name, knock: { enabled } }) as unknown as UserRecord;
  const users = new Map([["alice", user("alice")], ["bob", user("bob", false)]]);
  const notes = new Map([["203.0.113.1", { at: T0 + 5, by: "carol" }]]);
  assert.equal(revocationOf(unlock("203.0.113.1", "alice", T0 + 5), users, notes), "carol");
  assert.equal(revocationOf(unlock("203.0.113.1", "alice", T0 + 6), users, notes), null);
  assert.equal(revocationOf(unlock("203.0.113.2", "bob"), users, notes), "knock-disabled");
  assert.equal(revocationOf(unlock("203.0.113.2", "eve"), users, notes), "user-deleted");
  assert.equal(revocationOf(unlock("203.0.113.2", "alice"), users, notes), null);
});

Deno.test("fleet: store changes reach the data plane: unlocks merged, revocations applied", async () => {
  await withApi(async ({ store, datapath, config, clock }) => {
    const fleet = new FleetSync({ store, datapath, config, onError: (e) => assert.fail(e) });
    const now = clock.now();
    // Written by another node: the data plane gets it once.
    await store.unlocks.saveUnlock(unlock("203.0.113.7", "alice", now));
    await store.unlocks.saveUnlock(unlock("203.0.113.8", "nobody-here", now));
    fleet.note(["unlocks"]);
    await fleet.idle();
    assert.deepEqual([...datapath.unlockTable.keys()], ["203.0.113.7"]);
    assert.equal(datapath.merges, 1);
    fleet.note(["unlocks"]);
    await fleet.idle();
    assert.equal(datapath.merges, 1, "nothing new: no merge");
    // Revoked on another node: ended here, and not taken back from the store.
    clock.advance(1000);
    await store.unlocks.revokeUnlock("203.0.113.7", "carol");
    await store.unlocks.saveUnlock(unlock("203.0.113.7", "alice", now)); // a late snapshot
    datapath.unlock("203.0.113.9", "alice", clock.now() + 1); // knocked here after the note
    await store.unlocks.revokeUnlock("203.0.113.9", "carol");
    fleet.note(["unlocks"]);
    await fleet.idle();
    assert.equal(datapath.revokedBy.get("203.0.113.7"), "carol");
    assert.deepEqual([...datapath.unlockTable.keys()], ["203.0.113.9"]);
    // A user deleted on another node: their unlocks end here too.
    await store.users.deleteUser("alice", "test");
    fleet.note(["users"]);
    await fleet.idle();
    assert.equal(datapath.revokedBy.get("203.0.113.9"), "user-deleted");
    assert.equal(datapath.unlockTable.size, 0);
    assert.ok(datapath.users !== null && !datapath.users.some((u) => u.user === "alice"));
    await fleet.stop();
  });
});

Deno.test("fleet: the heartbeat registers this node with its counts", async () => {
  await withApi(async ({ store, datapath, clock }) => {
    datapath.unlock("203.0.113.7", "alice", clock.now());
    datapath.conntrackStats = { size: 4, capacity: 1024 };
    const self = { name: "kg-a", url: "https://192.0.2.1:8443/", version: "0.9.0", startedAt: T0 };
    const node = new NodeHeartbeat(self, store, datapath, clock);
    await node.beat();
    assert.deepEqual(await store.nodes.list(), [
      { ...self, heartbeatAt: clock.now(), flows: 4, unlocks: 1, up: true },
    ]);
    await node.stop();
  });
});
