import assert from "node:assert/strict";
import type { UnlockEvent } from "./events.ts";
import { UnlockTable, type UnlockTableOptions } from "./unlock_table.ts";

const NOW = 1_764_028_800_000;
const IP1 = 0xcb007107; // 203.0.113.7
const IP2 = 0xcb007108; // 203.0.113.8
const HOUR = 3_600_000;

function table(options: UnlockTableOptions = {}) {
  const events: UnlockEvent[] = [];
  const t = new UnlockTable({ ...options, onEvent: (e) => events.push(e) });
  return { t, events };
}

Deno.test("an unlock admits its IP only, and names its user", () => {
  const { t } = table();
  assert.equal(t.isUnlocked(IP1, NOW), false);
  assert.equal(t.userOf(IP1), null);
  t.unlock(IP1, "alice", -1, NOW);
  assert.equal(t.isUnlocked(IP1, NOW), true);
  assert.equal(t.isUnlocked(IP2, NOW), false);
  assert.equal(t.userOf(IP1), "alice");
  assert.equal(t.size, 1);
  assert.deepEqual(t.get(IP1), {
    ip: "203.0.113.7",
    user: "alice",
    unlockedAt: NOW,
    lastSeen: NOW,
    expiresAt: NOW + HOUR,
    drift: -1,
    flows: 0,
    bytes: 0,
    wanAddress: "",
  });
});

Deno.test("an unlock ends after the idle timeout; traffic and new flows refresh it", () => {
  const { t, events } = table();
  t.unlock(IP1, "alice", 0, NOW);
  assert.equal(t.admitFlow(IP1, NOW + 1_000), true);
  assert.equal(t.touch(IP1, NOW + HOUR - 1, 1500), true);
  assert.equal(t.isUnlocked(IP1, NOW + HOUR + 500), true);
  assert.deepEqual(t.expire(NOW + HOUR + 500), []);
  const info = t.get(IP1)!;
  assert.equal(info.flows, 1);
  assert.equal(info.bytes, 1500);
  assert.equal(info.expiresAt, NOW + 2 * HOUR - 1);
  assert.equal(t.isUnlocked(IP1, NOW + 2 * HOUR - 1), false);
  const gone = t.expire(NOW + 2 * HOUR);
  assert.deepEqual(gone, [{
    type: "unlock-expired",
    ip: "203.0.113.7",
    user: "alice",
    reason: "idle",
  }]);
  assert.deepEqual(events, gone);
  assert.equal(t.size, 0);
  assert.equal(t.touch(IP1, NOW, 1), false);
  assert.equal(t.admitFlow(IP1, NOW), false);
});

Deno.test("the idle timeout is configurable and a new knock refreshes the unlock", () => {
  const { t } = table({ idleTimeoutMs: 60_000 });
  t.unlock(IP1, "alice", 0, NOW);
  t.unlock(IP1, "alice", 1, NOW + 50_000);
  assert.equal(t.isUnlocked(IP1, NOW + 100_000), true);
  assert.equal(t.get(IP1)!.drift, 1);
  assert.equal(t.isUnlocked(IP1, NOW + 110_000), false);
});

Deno.test("the absolute lifetime ends an unlock whatever the traffic", () => {
  const { t, events } = table({ lifetimeMs: 2 * HOUR });
  t.unlock(IP1, "alice", 0, NOW);
  for (let m = 1; m < 120; m++) t.touch(IP1, NOW + m * 60_000, 100);
  assert.equal(t.get(IP1)!.expiresAt, NOW + 2 * HOUR);
  assert.equal(t.isUnlocked(IP1, NOW + 2 * HOUR - 1), true);
  assert.equal(t.isUnlocked(IP1, NOW + 2 * HOUR), false);
  t.expire(NOW + 2 * HOUR);
  assert.deepEqual(events, [
    { type: "unlock-expired", ip: "203.0.113.7", user: "alice", reason: "lifetime" },
  ]);
});

Deno.test("a knock for another user from the same IP switches user and resets counts", () => {
  const { t } = table();
  t.unlock(IP1, "alice", 0, NOW);
  t.admitFlow(IP1, NOW);
  t.unlock(IP1, "bob", 0, NOW + 1);
  assert.equal(t.userOf(IP1), "bob");
  assert.equal(t.get(IP1)!.flows, 0);
});

Deno.test("revoke and revokeUser end unlocks with an unlock-revoked event", () => {
  const { t, events } = table();
  t.unlock(IP1, "alice", 0, NOW);
  t.unlock(IP2, "bob", 0, NOW);
  t.unlock(0xcb007109, "alice", 0, NOW);
  assert.equal(t.revoke(IP2, "admin"), true);
  assert.equal(t.revoke(IP2), false);
  assert.equal(t.revokeUser("alice"), 2);
  assert.equal(t.revokeUser("nobody"), 0);
  assert.equal(t.size, 0);
  assert.deepEqual(events.map((e) => e.type === "unlock-revoked" ? [e.ip, e.by] : []), [
    ["203.0.113.8", "admin"],
    ["203.0.113.7", "user-deleted"],
    ["203.0.113.9", "user-deleted"],
  ]);
});

Deno.test("a full table evicts the least recently unlocked IP", () => {
  const { t, events } = table({ maxEntries: 2 });
  t.unlock(1, "a", 0, NOW);
  t.unlock(2, "b", 0, NOW);
  t.unlock(1, "a", 0, NOW + 1); // refreshed: now the newest
  t.unlock(3, "c", 0, NOW + 2);
  assert.deepEqual(t.list().map((u) => u.ip), ["0.0.0.1", "0.0.0.3"]);
  assert.deepEqual(events, [{
    type: "unlock-expired",
    ip: "0.0.0.2",
    user: "b",
    reason: "evicted",
  }]);
});

Deno.test("an unlock keeps the WAN address of its knock; a later knock replaces it", () => {
  const { t } = table();
  t.unlock(IP1, "alice", 0, NOW, 0xc6336441); // 198.51.100.65
  assert.equal(t.get(IP1)?.wanAddress, "198.51.100.65");
  t.unlock(IP1, "alice", 0, NOW + 1_000, 0xc6336401); // 198.51.100.1
  assert.equal(t.get(IP1)?.wanAddress, "198.51.100.1");
  assert.equal(t.list()[0].wanAddress, "198.51.100.1");
});

Deno.test("toJSON and restore carry unlocks across a restart, dropping ended ones", () => {
  const { t } = table();
  t.unlock(IP1, "alice", 1, NOW, 0xc6336441);
  t.admitFlow(IP1, NOW + 10);
  t.touch(IP1, NOW + 20, 4096);
  t.unlock(IP2, "bob", 0, NOW - HOUR);
  const saved = JSON.parse(JSON.stringify(t));
  const { t: t2 } = table();
  assert.equal(t2.restore(saved, NOW + 1_000), 1);
  assert.deepEqual(t2.get(IP1), { ...t.get(IP1)!, expiresAt: NOW + 20 + HOUR });
  assert.equal(t2.get(IP1)?.wanAddress, "198.51.100.65");
  assert.equal(t2.isUnlocked(IP2, NOW + 1_000), false);
  assert.equal(t2.restore([{ ...saved[0], ip: "not an ip" }], NOW), 0);
  // A record saved before unlocks named their WAN address restores with "".
  const { wanAddress: _, ...old } = saved[0];
  assert.equal(t2.restore([old], NOW + 1_000), 1);
  assert.equal(t2.get(IP1)?.wanAddress, "");
});

Deno.test("a million unlocked IPs fit, and lookups still answer", () => {
  const t = new UnlockTable({ maxEntries: 1 << 20 });
  for (let i = 0; i < 1_000_000; i++) t.unlock((0x0a000000 + i * 7) >>> 0, `u${i % 100}`, 0, NOW);
  assert.equal(t.size, 1_000_000);
  assert.equal(t.isUnlocked(0x0a000000 + 7 * 999_999, NOW), true);
  assert.equal(t.userOf(0x0a000000 + 7 * 123), "u23");
  assert.ok(t.byteLength < 80 * 1024 * 1024, `${t.byteLength} bytes`);
  assert.equal(t.expire(NOW + HOUR).length, 1_000_000);
  assert.equal(t.size, 0);
});
