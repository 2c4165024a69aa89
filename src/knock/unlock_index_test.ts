import assert from "node:assert/strict";
import { UnlockIndex } from "./unlock_index.ts";
import { UnlockTable } from "./unlock_table.ts";
import {
  CHURN_BASE,
  churnUsers,
  type HammerJob,
  type HammerResult,
  STABLE_BASE,
  STABLE_USERS,
} from "./_unlock_hammer_job.ts";

const NOW = 1_764_028_800_000;
const MIN = 60_000;
const IP1 = 0xcb007107; // 203.0.113.7

function shared(maxEntries: number, workers: number, idleTimeoutMs = 60 * MIN) {
  const buffer = UnlockTable.createBuffer(maxEntries, workers);
  const owner = new UnlockTable({ buffer, worker: 0, maxEntries, idleTimeoutMs });
  return { buffer, owner };
}

Deno.test("a reader Worker's view: lookups, expiry by the owner's timeouts, touches folded at the owner", () => {
  const { buffer, owner } = shared(16, 3, MIN);
  const reader = new UnlockTable({ buffer, worker: 2 });
  assert.equal(reader.owner, false);
  assert.equal(owner.unlock(IP1, "alice", 0, NOW), true);
  assert.equal(reader.isUnlocked(IP1, NOW + 1000), true);
  assert.equal(reader.isUnlocked(IP1 + 1, NOW), false);
  assert.equal(reader.touch(IP1, NOW + 50_000, 700), true);
  assert.equal(reader.touch(IP1 + 1, NOW, 1), false);
  // The reader's touch is in its own column: the owner's expiry and the API see it.
  assert.equal(owner.isUnlocked(IP1, NOW + 100_000), true);
  assert.deepEqual(owner.expire(NOW + 100_000), []);
  assert.equal(owner.get(IP1)?.lastSeen, NOW + 50_000);
  assert.equal(owner.get(IP1)?.bytes, 700);
  owner.touch(IP1, NOW + 60_000, 50);
  assert.equal(owner.get(IP1)?.bytes, 750);
  assert.equal(owner.get(IP1)?.expiresAt, NOW + 120_000);
  // Timeouts are the owner's, in the buffer: a reader's own call changes nothing.
  reader.setTimeouts(1, 1);
  assert.equal(reader.idleTimeoutMs, MIN);
  owner.setTimeouts(10 * MIN, 0);
  assert.equal(reader.isUnlocked(IP1, NOW + 5 * MIN), true);
  // A reader writes nothing else.
  assert.equal(reader.unlock(IP1 + 1, "bob", 0, NOW), false);
  assert.equal(reader.revoke(IP1), false);
  assert.deepEqual(reader.expire(NOW + 99 * MIN), []);
  assert.equal(reader.restore([], NOW), 0);
  assert.equal(owner.size, 1);
  owner.revoke(IP1);
  assert.equal(reader.isUnlocked(IP1, NOW + 1000), false);
});

Deno.test("knock ports: the users' first ports (set by the owner) and the whole derived range", () => {
  const { buffer, owner } = shared(16, 2);
  const reader = new UnlockTable({ buffer, worker: 1 });
  assert.equal(reader.isKnockPort(41001), false);
  owner.setFirstPorts([41001, 7]);
  assert.equal(reader.isKnockPort(41001), true);
  assert.equal(reader.isKnockPort(7), true);
  assert.equal(reader.isKnockPort(16384), true);
  assert.equal(reader.isKnockPort(32767), true);
  assert.equal(reader.isKnockPort(32768), false);
  assert.equal(reader.isKnockPort(16383), false);
  assert.equal(reader.isKnockPort(52201), false);
  reader.setFirstPorts([52201]);
  assert.equal(reader.isKnockPort(52201), false, "a reader's call changes nothing");
  owner.setFirstPorts([7]);
  assert.equal(reader.isKnockPort(41001), false);
  assert.equal(reader.isKnockPort(7), true);
});

Deno.test("a removed slot waits until every reader passed a quiescent point; an offline one holds nothing", () => {
  const { buffer, owner } = shared(4, 2);
  const reader = new UnlockIndex(buffer, 1);
  const capacity = reader.capacity;
  reader.quiescent();
  owner.unlock(IP1, "alice", 0, NOW);
  const held = reader.find(IP1);
  owner.revoke(IP1);
  // Churn through every other slot: each removed one goes to limbo behind the stuck reader.
  let made = 0;
  for (let i = 0; i < 2 * capacity; i++) {
    if (!owner.unlock(0x0a000000 + i, "bob", 0, NOW)) break;
    made++;
    owner.revoke(0x0a000000 + i);
    owner.expire(NOW);
  }
  assert.equal(made, capacity - 1, "every slot but the held one was fresh once");
  assert.equal(owner.unlock(0x0b000000, "bob", 0, NOW), false, "no slot may be reused yet");
  assert.equal(reader.key[held], IP1, "the held slot was not rewritten");
  reader.quiescent();
  owner.expire(NOW); // the waiting batch is free, the closing one waits now
  reader.quiescent();
  owner.expire(NOW);
  assert.equal(owner.limbo, 0);
  assert.equal(owner.unlock(0x0b000000, "bob", 0, NOW), true);
  // An offline reader does not hold the grace period back.
  owner.revoke(0x0b000000);
  reader.offline();
  owner.expire(NOW);
  owner.expire(NOW);
  assert.equal(owner.limbo, 0);
});

Deno.test("an entry stays findable while its neighbours in the probe run come and go (no backward shift)", () => {
  // A table of one index line pair: every address collides into a few lines.
  const { owner } = shared(40, 1);
  const ips = Array.from({ length: 40 }, (_, i) => 0x0a000000 + i);
  for (const ip of ips) assert.equal(owner.unlock(ip, "a", 0, NOW), true);
  for (let round = 0; round < 50; round++) {
    for (let i = round % 2; i < 40; i += 2) owner.revoke(ips[i]);
    for (let i = 1 - (round % 2); i < 40; i += 2) {
      assert.equal(owner.isUnlocked(ips[i], NOW), true, `round ${round}: ${i}`);
    }
    for (let i = round % 2; i < 40; i += 2) owner.unlock(ips[i], "a", 0, NOW);
  }
  assert.equal(owner.size, 40);
});

Deno.test("hammer: the owner unlocks, revokes and expires while two readers look up and touch: no live entry missed, no torn user", async () => {
  const stable = 256, churn = 1024, maxEntries = 2048;
  const { buffer, owner } = shared(maxEntries, 3, 10 * MIN);
  const start = Date.now();
  for (let i = 0; i < stable; i++) owner.unlock(STABLE_BASE + i, `s${i % STABLE_USERS}`, 0, start);
  // Churn users' names take ids 7..16, in the order churnUsers() numbers them.
  for (let k = 0; k < 10; k++) {
    owner.unlock(0x0d000000, `c${k}`, 0, start);
    owner.revoke(0x0d000000);
  }
  const sync = new Int32Array(new SharedArrayBuffer(8));
  const workers = [1, 2].map(() =>
    new Worker(new URL("./_unlock_hammer_worker.ts", import.meta.url).href, { type: "module" })
  );
  try {
    const results = workers.map((w, k) =>
      new Promise<HammerResult>((resolve, reject) => {
        w.onmessage = (e) => resolve(e.data);
        w.onerror = (e) => reject(new Error(e.message));
        const job: HammerJob = {
          buffer,
          sync: sync.buffer as SharedArrayBuffer,
          worker: k + 1,
          stable,
          churn,
          ops: 5_000_000,
          maxMs: 8000,
          seed: 0x9e3779b9 * (k + 1),
        };
        w.postMessage(job);
      })
    );
    for (let i = 0; i < 500 && Atomics.load(sync, 0) < 2; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(Atomics.load(sync, 0), 2, "both readers started");
    let x = 12345, ops = 0, unlocks = 0;
    const deadline = performance.now() + 1500;
    for (; ops < 2_000_000 && performance.now() < deadline; ops++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      const j = (x >>> 0) % churn, ip = CHURN_BASE + j, op = (x >>> 16) % 10;
      const now = Date.now();
      const [a] = churnUsers(j);
      const user = `c${a - STABLE_USERS + ((x >>> 8) & 1)}`;
      if (op < 5) unlocks += owner.unlock(ip, user, 0, now) ? 1 : 0;
      else if (op < 7) owner.revoke(ip);
      else if (op < 9) unlocks += owner.unlock(ip, user, 0, now - 20 * MIN) ? 1 : 0; // ended already
      else owner.expire(now);
    }
    Atomics.store(sync, 1, 1);
    const done = await Promise.all(results);
    for (const r of done) assert.deepEqual(r.errors, []);
    for (const r of done) assert.ok(r.ops > 10_000, `a reader did ${r.ops} operations`);
    assert.ok(unlocks > 4 * maxEntries, `${unlocks} unlocks: removed slots were reused`);
    // Every touch of a stable entry reached the owner, and only those.
    for (let i = 0; i < stable; i++) {
      const touches = done.reduce((n, r) => n + r.stableTouches[i], 0);
      const info = owner.get(STABLE_BASE + i)!;
      assert.equal(info.bytes, 3 * touches, `stable ${i}`);
      if (touches > 0) assert.ok(info.lastSeen >= start);
    }
    // A churn entry holds no more bytes than were touched on its own address.
    for (let j = 0; j < churn; j++) {
      const info = owner.get(CHURN_BASE + j);
      const touches = done.reduce((n, r) => n + r.churnTouches[j], 0);
      if (info) assert.ok(info.bytes <= touches, `churn ${j}: ${info.bytes} > ${touches}`);
    }
  } finally {
    for (const w of workers) w.terminate();
  }
});
