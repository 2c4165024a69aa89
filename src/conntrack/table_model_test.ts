import assert from "node:assert/strict";
import fc from "fast-check";
import {
  CREATE_CLASH,
  CREATE_FULL,
  GONE_EVICTED,
  GONE_TIMEOUT,
  PROTO_ICMP,
  PROTO_UDP,
} from "./constants.ts";
import { Arena } from "./arena.ts";
import { defaultLines, FlowIndex } from "./flow_index.ts";
import { FlowSpec } from "./flow_spec.ts";
import { ConnTable } from "./table.ts";

/** A model flow: its tuples and what the table should know about it. */
interface ModelFlow {
  id: number;
  orig: number[];
  reply: number[];
  assured: boolean;
  seenReply: boolean;
  proto: number;
  lastSeen: number;
  expiresAt: number;
}

type Op =
  | { kind: "create"; tuple: number; nat: boolean }
  | { kind: "track"; pick: number; dir: number }
  | { kind: "remove"; pick: number }
  | { kind: "advance"; dt: number; budget: number };

const CAPACITY = 6;
const SERVER = 0xc0000264;

/** Tuple pool entry `i`: [proto, src, sport, dst, dport]; a third are ICMP echo. */
function origTuple(i: number): number[] {
  const icmp = i % 3 === 0;
  const sport = 1000 + (i >> 2);
  return [
    icmp ? PROTO_ICMP : PROTO_UDP,
    0xc0000200 + (i % 4),
    sport,
    0xcb007101,
    icmp ? sport : 53,
  ];
}

/** The reply tuple: inverted, or DNAT to the server (UDP only). */
function replyTuple(o: number[], nat: boolean): number[] {
  const [proto, src, sport, dst, dport] = o;
  if (nat && proto === PROTO_UDP) return [proto, SERVER, 8053, src, sport];
  return [proto, dst, dport, src, sport];
}

const key = (t: number[]) => t.join(",");

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("create" as const),
      tuple: fc.nat(15),
      nat: fc.boolean(),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("track" as const),
      pick: fc.nat(100),
      dir: fc.nat(1),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("remove" as const), pick: fc.nat(100) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("advance" as const),
      dt: fc.oneof(fc.nat(40), fc.nat(3000)),
      budget: fc.oneof(fc.constant(1e9), fc.integer({ min: 2, max: 8 })),
    }),
  },
);

/** Runs `ops` against a table and a Map model, checking after every step. */
function runModel(ops: Op[]): void {
  let now = 1_000_000;
  const model = new Map<number, ModelFlow>();
  const gone: [number, number][] = [];
  const t = new ConnTable({
    capacity: CAPACITY,
    evictScan: CAPACITY,
    wheelSlots: 16,
    onExpire: (id, why) => gone.push([id, why]),
  });
  for (const op of ops) {
    gone.length = 0;
    if (op.kind === "create") {
      const orig = origTuple(op.tuple);
      const reply = replyTuple(orig, op.nat);
      const live = new Set([...model.values()].flatMap((f) => [key(f.orig), key(f.reply)]));
      const clash = live.has(key(orig)) || live.has(key(reply));
      const expired = [...model.values()].filter((f) => f.expiresAt <= now);
      const unassured = [...model.values()].filter((f) => !f.assured);
      const room = model.size < CAPACITY || expired.length > 0 || unassured.length > 0;
      const id = t.create(
        new FlowSpec().original(orig[0], orig[1], orig[2], orig[3], orig[4]).reply(
          reply[1],
          reply[2],
          reply[3],
          reply[4],
        ),
        now,
      );
      if (clash || !room) {
        assert.equal(id, clash ? CREATE_CLASH : CREATE_FULL);
        assert.equal(gone.length, 0);
        continue;
      }
      assert.ok(id >= 0);
      checkEarlyDrop(model, gone, expired, unassured, now);
      model.set(id, {
        id,
        orig,
        reply,
        assured: false,
        seenReply: false,
        proto: orig[0],
        lastSeen: now,
        expiresAt: now + 30,
      });
    } else if (op.kind === "track") {
      if (model.size === 0) continue;
      const f = [...model.values()][op.pick % model.size];
      assert.equal(t.track(2 * f.id + op.dir, 100, now, null), 0);
      if (op.dir === 1) {
        f.seenReply = true;
        if (f.proto === PROTO_UDP) f.assured = true;
      }
      f.lastSeen = now;
      f.expiresAt = now + (f.proto === PROTO_UDP && f.seenReply ? 120 : 30);
    } else if (op.kind === "remove") {
      if (model.size === 0) continue;
      const f = [...model.values()][op.pick % model.size];
      assert.equal(t.remove(f.id), true);
      model.delete(f.id);
    } else {
      now += op.dt;
      t.expire(now, op.budget);
      for (const [id, why] of gone) {
        assert.equal(why, GONE_TIMEOUT);
        assert.ok(model.get(id)!.expiresAt <= now, `flow ${id} expired early`);
        model.delete(id);
      }
      if (op.budget >= 1e9) {
        for (const f of model.values()) {
          assert.ok(f.expiresAt > now, `flow ${f.id} outlived its expiry`);
        }
      }
    }
    checkAgainst(t, model);
  }
}

/** When create made room, the victim was a timed-out flow, else the stalest unassured one. */
function checkEarlyDrop(
  model: Map<number, ModelFlow>,
  gone: [number, number][],
  expired: ModelFlow[],
  unassured: ModelFlow[],
  now: number,
): void {
  if (model.size < CAPACITY) return assert.equal(gone.length, 0);
  assert.equal(gone.length, 1);
  const [victim, why] = gone[0];
  const f = model.get(victim)!;
  if (expired.length > 0) {
    assert.equal(why, GONE_TIMEOUT);
    assert.ok(f.expiresAt <= now);
  } else {
    assert.equal(why, GONE_EVICTED);
    assert.equal(f.assured, false);
    assert.equal(f.lastSeen, Math.min(...unassured.map((u) => u.lastSeen)));
  }
  model.delete(victim);
}

/** Every model flow is found both ways; every other pool tuple is absent. */
function checkAgainst(t: ConnTable, model: Map<number, ModelFlow>): void {
  assert.equal(t.size, model.size);
  const want = new Map<string, number>();
  for (const f of model.values()) {
    want.set(key(f.reply), 2 * f.id + 1);
    want.set(key(f.orig), 2 * f.id);
    assert.equal(t.expiresAt(f.id), f.expiresAt);
  }
  for (let i = 0; i < 16; i++) {
    for (const nat of [false, true]) {
      for (const tuple of [origTuple(i), replyTuple(origTuple(i), nat)]) {
        const [p, s, sp, d, dp] = tuple;
        assert.equal(t.lookup(p, s, sp, d, dp), want.get(key(tuple)) ?? -1);
      }
    }
  }
}

Deno.test("random operations agree with a Map model", () => {
  fc.assert(fc.property(fc.array(opArb, { maxLength: 150, size: "max" }), runModel), {
    numRuns: 400,
  });
});

// ---- the flow index alone, against a Map ----------------------------------

/** A FlowIndex of `flows` records in `lines` lines, with the table's way to enter a tuple. */
function flowIndex(flows: number, lines: number) {
  const a = Arena.measure();
  new FlowIndex(flows, lines, 5, 6, a, false);
  const x = new FlowIndex(
    flows,
    lines,
    5,
    6,
    Arena.over(new SharedArrayBuffer(a.byteLength), true),
    false,
  );
  const hash = (t: number[]) => x.hash(t[0], t[1], t[2], t[3], t[4]);
  const find = (t: number[]) => x.find(hash(t), t[0], t[1], t[2], t[3], t[4]);
  /** Claims and publishes `t` for `handle`: its entry's offset, or -1 (no room). */
  const enter = (t: number[], handle: number) => {
    const at = x.claim(hash(t), handle, t[1], t[2], t[3], t[4]);
    if (at >= 0) x.publish(at, t[0], handle);
    return at;
  };
  /** Removes the entry at `at` as a one-Worker table does: unhashed, then emptied. */
  const drop = (at: number, handle: number) => x.unhash(at) && x.clear(at, handle);
  return { x, hash, find, enter, drop };
}

/** Pool tuple `i` of the index tests: few addresses and ports, so tags and lines collide. */
function poolTuple(i: number): number[] {
  return [
    i % 5 === 0 ? PROTO_ICMP : PROTO_UDP,
    0xc0000200 + (i & 7),
    1000 + (i >> 3),
    0xcb007101,
    53,
  ];
}

type IndexOp = { kind: "insert"; tuple: number } | { kind: "remove"; pick: number };

/** Runs `ops` on an index of 24 flows in 14 lines (48 tuples in 56 slots) beside a Map. */
function runIndexModel(ops: IndexOp[]): void {
  const FLOWS = 24;
  const { x, hash, find, enter, drop } = flowIndex(FLOWS, 14);
  const model = new Map<string, number>(); // tuple -> handle
  const free = Array.from({ length: FLOWS }, (_, i) => FLOWS - 1 - i);
  const live = new Map<number, [number[], number, number[], number]>(); // id -> [orig, at, reply, at]
  for (const op of ops) {
    if (op.kind === "insert") {
      const o = poolTuple(op.tuple), r = poolTuple(op.tuple + 200);
      if (model.has(key(o)) || model.has(key(r)) || free.length === 0) continue;
      const id = free.pop()!;
      // The table's create: each tuple under its home line's lock.
      const at: number[] = [];
      for (const [t, h] of [[o, 2 * id], [r, 2 * id + 1]] as const) {
        x.lock(x.home(hash(t)));
        at.push(enter(t, h));
        x.unlock(x.home(hash(t)));
        assert.ok(at[at.length - 1] >= 0, "room within the probe bound at a load of 0.86");
        model.set(key(t), h);
      }
      live.set(id, [o, at[0], r, at[1]]);
    } else if (live.size > 0) {
      const id = [...live.keys()][op.pick % live.size];
      const [o, ao, r, ar] = live.get(id)!;
      assert.equal(drop(ao, 2 * id), true);
      assert.equal(drop(ar, 2 * id + 1), true);
      assert.equal(x.unhash(ao), false, "removed once");
      model.delete(key(o));
      model.delete(key(r));
      live.delete(id);
      free.push(id);
    }
    for (let i = 0; i < 400; i++) {
      const t = poolTuple(i);
      assert.equal(find(t), model.get(key(t)) ?? -1, `tuple ${i}`);
    }
    assert.equal(x.census().entries, model.size);
  }
  for (const [id, [, ao, , ar]] of live) {
    drop(ao, 2 * id);
    drop(ar, 2 * id + 1);
  }
  assert.deepEqual(x.census(), { entries: 0, tombstones: 0, overflow: 0 }, "no debris once empty");
}

const indexOpArb: fc.Arbitrary<IndexOp> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("insert" as const), tuple: fc.nat(199) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("remove" as const), pick: fc.nat(100) }) },
);

Deno.test("the flow index agrees with a Map under random churn (crowded lines, overflow)", () => {
  fc.assert(fc.property(fc.array(indexOpArb, { maxLength: 200, size: "max" }), runIndexModel), {
    numRuns: 100,
  });
});

Deno.test("a year of churn leaves no debris: overflow counts follow the load", () => {
  // 2 million creates and removes on a full-ish table; the counts return to what the live flows need.
  const FLOWS = 3000, { x, find, enter, drop } = flowIndex(FLOWS, defaultLines(FLOWS));
  const ids: number[] = [];
  const tuples = new Map<number, number[][]>();
  const at = new Int32Array(2 * FLOWS);
  let seq = 0, worst = 0;
  const make = (id: number) => {
    const n = seq++;
    const o = [PROTO_UDP, 0xcb000000 + (n >>> 10), 1024 + (n & 1023), 0xc0000201, 53];
    const r = [PROTO_UDP, 0xc0000201, 53, o[1], o[2]];
    at[2 * id] = enter(o, 2 * id);
    at[2 * id + 1] = enter(r, 2 * id + 1);
    assert.ok(at[2 * id] >= 0 && at[2 * id + 1] >= 0);
    tuples.set(id, [o, r]);
  };
  for (let id = 0; id < FLOWS; id++) make(id), ids.push(id);
  const r = (() => {
    let s = 12345;
    return () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0);
  })();
  for (let n = 0; n < 1_000_000; n++) {
    const id = ids[r() % FLOWS];
    assert.ok(drop(at[2 * id], 2 * id) && drop(at[2 * id + 1], 2 * id + 1));
    make(id);
    if (n % 100_000 === 0) worst = Math.max(worst, x.census().overflow);
  }
  for (const [id, [o, rep]] of tuples) {
    assert.equal(find(o), 2 * id);
    assert.equal(find(rep), 2 * id + 1);
  }
  const { entries, overflow } = x.census();
  assert.equal(entries, 2 * FLOWS);
  assert.ok(worst < entries / 2, `overflow ${worst} of ${entries} entries`);
  assert.ok(overflow < entries / 2, `overflow ${overflow} of ${entries} entries at the end`);
});
