import assert from "node:assert/strict";
import type { KnockClaim, KnockClaimAnswer, UnlockRecord } from "../datapath/messages.ts";
import type { SavedUnlock } from "../store/unlocks.ts";
import type { UserRecord } from "../store/users.ts";
import { FleetSync, KnockClaims, NodeHeartbeat, revocationOf, unlocksToMerge } from "./fleet.ts";
import { T0, withApi } from "./_test_util.ts";
import { openStore, type Store } from "../store/mod.ts";
import { type EtcdStoreTarget, openEtcdStore } from "../store/etcd_store.ts";
import { etcdInstalled, withEtcdCluster } from "../store/_etcd_cluster.ts";
import type { KnockStateRecord } from "../knock/verifier.ts";
import { knockSequenceAt } from "../knock/sequence.ts";
import { Pipeline } from "../datapath/pipeline.ts";
import { newCounters } from "../datapath/counters.ts";
import { SECRET, SETTINGS, WAN } from "../datapath/_test_fixtures.ts";
import { buildTcp } from "../packet/build.ts";
import { parseIpv4, TCP_SYN } from "../packet/mod.ts";
import type { ApplianceEvent } from "../log/events.ts";
import { systemClock } from "../clock.ts";

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

Deno.test("fleet: knock-state records from the feed reach the verifier; a re-list merges them all", async () => {
  await withApi(async ({ store, datapath, config, clock }) => {
    const fleet = new FleetSync({ store, datapath, config, onError: (e) => assert.fail(e) });
    const penalty = {
      type: "failures" as const,
      ip: "203.0.113.9",
      level: 0,
      lastFailure: clock.now(),
      penaltyUntil: clock.now() + 600_000,
      expiresAt: clock.now() + 600_000,
    };
    fleet.note(["knockState"], [penalty]);
    await fleet.idle();
    assert.deepEqual(datapath.knockStateMerges, [[penalty]]);
    // No records with the area (a re-list after an outage): everything stored is merged.
    await store.knockState.save([penalty, { ...penalty, ip: "203.0.113.10" }]);
    fleet.note(["knockState"]);
    await fleet.idle();
    assert.equal(datapath.knockStateMerges.at(-1)?.length, 2);
    await fleet.stop();
  });
});

Deno.test("fleet: KnockClaims grants a free step, names the holder of a taken one, refuses (logged once) when the store fails", async () => {
  await withApi(async ({ store, clock }) => {
    const answers: KnockClaimAnswer[] = [];
    const lines: string[] = [];
    const claims = new KnockClaims(
      store,
      { answerClaims: (a) => answers.push(...a) },
      clock,
      (l) => lines.push(l),
    );
    const claim = (ip: string, step = 100): KnockClaim => ({
      ip,
      user: "alice",
      step,
      drift: 0,
      wanAddress: "198.51.100.1",
      expiresAt: clock.now() + 90_000,
      at: clock.now(),
    });
    await claims.handle([claim("203.0.113.1")]);
    await claims.handle([claim("203.0.113.2"), claim("203.0.113.1")]);
    assert.deepEqual(answers.map((a) => [a.ip, a.result, a.firstIp]), [
      ["203.0.113.1", "granted", undefined],
      ["203.0.113.2", "taken", "203.0.113.1"],
      ["203.0.113.1", "granted", undefined],
    ]);
    assert.deepEqual(claims.stats, { granted: 2, taken: 1, refused: 0, lastMs: 0, maxMs: 0 });
    // A store that refuses writes (here: a real one, closed) refuses every claim, reported once.
    const dir = await Deno.makeTempDir({ prefix: "kgt-claims-" });
    const closed = await openStore(`${dir}/store.kv`, { clock });
    closed.close();
    const down = new KnockClaims(
      closed,
      { answerClaims: (a) => answers.push(...a) },
      clock,
      (l) => lines.push(l),
    );
    await down.handle([claim("203.0.113.3", 101), claim("203.0.113.4", 102)]);
    await down.handle([claim("203.0.113.5", 103)]);
    assert.deepEqual(answers.slice(3).map((a) => a.result), [
      "unreachable",
      "unreachable",
      "unreachable",
    ]);
    assert.equal(lines.length, 1);
    assert.match(lines[0], /knock claims refused: .*fail closed/);
    await Deno.remove(dir, { recursive: true });
  });
});

Deno.test("fleet: KnockClaims claims the IPv6 half of a paired step apart from the IPv4 one", async () => {
  await withApi(async ({ store, clock }) => {
    const answers: KnockClaimAnswer[] = [];
    const claims = new KnockClaims(store, { answerClaims: (a) => answers.push(...a) }, clock);
    const claim = (ip: string, family?: 6): KnockClaim => ({
      ip,
      user: "alice",
      step: 100,
      drift: 0,
      ...(family ? { family } : {}),
      wanAddress: "198.51.100.1",
      expiresAt: clock.now() + 90_000,
      at: clock.now(),
    });
    await claims.handle([claim("203.0.113.1"), claim("2001:db8:1:2::/64", 6)]);
    await claims.handle([claim("2001:db8:9:9::/64", 6), claim("2001:db8:9:9::/64")]);
    assert.deepEqual(answers.map((a) => [a.ip, a.result, a.firstIp]), [
      ["203.0.113.1", "granted", undefined],
      ["2001:db8:1:2::/64", "granted", undefined],
      ["2001:db8:9:9::/64", "taken", "2001:db8:1:2::/64"],
      ["2001:db8:9:9::/64", "taken", "203.0.113.1"],
    ]);
  });
});

/** A node of the two-node test: its store, its data plane (a real pipeline, no device) and its claims. */
interface ClaimNode {
  store: Store;
  p: Pipeline;
  claims: KnockClaims;
  /** Claims whose answers the pipeline has taken. */
  answered: number;
  /** Knock-state records merged from the feed. */
  merged: number;
  events: ApplianceEvent[];
  /** The verifier's changed state the pipeline handed on (main.ts saves it). */
  drained: KnockStateRecord[];
}

const SECRET_BOB = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

async function claimNode(store: Store): Promise<ClaimNode> {
  const events: ApplianceEvent[] = [];
  const node = { store, answered: 0, merged: 0, events, drained: [] } as unknown as ClaimNode;
  const p = new Pipeline({
    settings: SETTINGS,
    forwards: [],
    openPorts: [],
    counters: newCounters(false),
    emit: (e) => events.push(...e),
    emitKnockState: (r) => node.drained.push(...r),
    knockClaims: true,
    emitClaims: (c) => void node.claims.handle(c),
  });
  await p.setUsers([
    { user: "alice", secret: SECRET, firstPort: 41001, length: 3, transport: "tcp" },
    { user: "bob", secret: SECRET_BOB, firstPort: 41002, length: 3, transport: "tcp" },
  ]);
  node.p = p;
  node.claims = new KnockClaims(
    store,
    {
      answerClaims: (a) => {
        p.resolveClaims(a, Date.now());
        node.answered += a.length;
      },
    },
    systemClock,
    () => {},
  );
  // What FleetSync does with the feed's knock-state records.
  store.onChange((c) => {
    if (c.knockState === undefined) return;
    p.mergeKnockState(c.knockState, Date.now());
    node.merged += c.knockState.length;
  });
  return node;
}

/** `src` knocks `ports` (TCP SYNs to the WAN address) at `n`, then the loop turn ends. */
function knockAt(n: ClaimNode, src: string, ports: number[], now = Date.now()): void {
  for (const port of ports) {
    const pkt = buildTcp({ src, dst: WAN, srcPort: 40000, dstPort: port, flags: TCP_SYN });
    n.p.process(pkt, 0, pkt.length, 0, now);
  }
  n.p.afterBatch();
  n.p.admission.flush(); // the events now, not at the next tick
}

async function until(what: string, ok: () => boolean, ms = 10_000): Promise<number> {
  const t0 = performance.now();
  while (!ok()) {
    if (performance.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
  return performance.now() - t0;
}

Deno.test({
  name:
    "fleet on etcd: two nodes' knocks of one step at once: one unlocks; a replay at the other, a penalty there; etcd down: refused",
  ignore: !etcdInstalled(),
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await withEtcdCluster(async (cluster) => {
    const dir = await Deno.makeTempDir({ prefix: "kgt-fleet-claims-" });
    const target: EtcdStoreTarget = {
      backend: "etcd",
      path: `${dir}/a.kv`,
      endpoints: cluster.endpoints,
      prefix: "/kgclaims/",
    };
    const knobs = { requestTimeoutMs: 1000, probeIntervalMs: 250 };
    const stores: Store[] = [];
    try {
      stores.push(await openEtcdStore(target, knobs));
      await Deno.copyFile(`${dir}/a.kv.key`, `${dir}/b.kv.key`);
      stores.push(await openEtcdStore({ ...target, path: `${dir}/b.kv` }, knobs));
      const [a, b] = [await claimNode(stores[0]), await claimNode(stores[1])];
      const ip = (n: number) => parseIpv4(`203.0.113.${n}`)!;
      const step = Math.floor(Date.now() / 30_000);
      const latency: number[] = [];
      // Steps T-1, T and T+1 are all live candidates: one race each, IP .1 at A against .2 at B.
      for (const s of [step - 1, step, step + 1]) {
        const seq = await knockSequenceAt(SECRET, s * 30, 41001, 3);
        const [wa, wb] = [a.answered, b.answered];
        const t0 = performance.now();
        knockAt(a, "203.0.113.1", seq);
        knockAt(b, "203.0.113.2", seq);
        await until("both answers", () => a.answered > wa && b.answered > wb);
        latency.push(performance.now() - t0);
        const won = [
          a.p.unlocks.isUnlocked(ip(1), Date.now()),
          b.p.unlocks.isUnlocked(ip(2), Date.now()),
        ];
        assert.equal(won.filter(Boolean).length, 1, `step ${s}: ${won}`);
        const loser = won[0] ? b : a;
        assert.ok(loser.events.some((e) => e.type === "knock-replay" && e.step === s));
        // Revoke the winner so the next round starts clean.
        a.p.revoke("203.0.113.1", Date.now());
        b.p.revoke("203.0.113.2", Date.now());
      }
      latency.sort((x, y) => x - y);
      console.log(
        `knock completed to claim answered (both nodes racing, 3 members on loopback): ` +
          `${latency.map((l) => l.toFixed(1)).join(", ")} ms`,
      );
      // Bob's step at A; then a third IP replays it at B, which learnt it from the feed.
      await until("B to learn A's steps", () => b.merged >= 3);
      const claimsAtB = b.claims.stats.granted + b.claims.stats.taken;
      const now0 = Math.floor(Date.now() / 1000);
      const seqLater = await knockSequenceAt(SECRET_BOB, now0, 41002, 3);
      const merged = b.merged;
      const t1 = performance.now();
      knockAt(a, "203.0.113.5", seqLater);
      await until("A's unlock", () => a.p.unlocks.isUnlocked(ip(5), Date.now()));
      await until("B to learn the step", () => b.merged > merged);
      console.log(
        `bob's knock completed at A to its step known at B: ${
          (performance.now() - t1).toFixed(1)
        } ms`,
      );
      knockAt(b, "203.0.113.6", seqLater);
      assert.ok(b.events.some((e) => e.type === "knock-replay" && e.ip === "203.0.113.6"));
      assert.equal(
        b.claims.stats.granted + b.claims.stats.taken,
        claimsAtB,
        "refused with no claim",
      );
      assert.equal(b.p.unlocks.isUnlocked(ip(6), Date.now()), false);
      // A source penalised at A (6 failures: F, then a wrong port) is penalised at B.
      const now = Date.now();
      const strays = Array.from({ length: 9 }, (_, k) => 1000 + k); // 8 tolerated, the 9th fails
      for (let i = 0; i < 6; i++) knockAt(a, "203.0.113.7", [41001, ...strays], now + i);
      assert.equal(a.p.verifier.isPenalised(ip(7), now + 10), true);
      const before = b.merged;
      const t0 = performance.now();
      a.p.admission.flush(); // the tick hands the changed records on: main.ts saves them
      await stores[0].knockState.save(a.drained.splice(0));
      await until("the penalty at B", () => b.p.verifier.isPenalised(ip(7), Date.now()));
      console.log(
        `a penalty at A holds at B after ${(performance.now() - t0).toFixed(1)} ms (save included)`,
      );
      assert.ok(b.merged > before);
      // Every member down: a new knock is refused (fail closed); the unlock A holds stays.
      for (let i = 0; i < 3; i++) await cluster.kill(i);
      const next = await knockSequenceAt(SECRET_BOB, now0 + 30, 41002, 3); // bob's T+1
      const w = a.answered;
      knockAt(a, "203.0.113.8", next);
      await until("the refusal", () => a.answered > w, 15_000);
      assert.equal(a.p.unlocks.isUnlocked(ip(8), Date.now()), false);
      assert.equal(a.claims.stats.refused, 1);
      assert.equal(a.p.unlocks.isUnlocked(ip(5), Date.now()), true);
    } finally {
      for (const s of stores) s.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
});
