import assert from "node:assert/strict";
import {
  CREATE_FULL,
  GONE_EVICTED,
  PROTO_TCP,
  PROTO_UDP,
  STATUS_ASSURED,
  STATUS_DYING,
  TCP_ACK,
  TCP_ESTABLISHED,
  TCP_FIN_WAIT,
  TCP_LAST_ACK,
  TCP_SYN,
  TRACK_ACCEPT,
  TRACK_INVALID,
} from "./constants.ts";
import { FlowSpec } from "./flow_spec.ts";
import { TcpSegment } from "./segment.ts";
import { ConnTable, type ConnTableOptions, FLOW_RECORD_BYTES, REFRESH_RING } from "./table.ts";
import {
  HAMMER_SYNC_BYTES,
  HAMMER_TIMEOUTS,
  type HammerEnd,
  type HammerJob,
  type HammerResult,
  hammerTuples,
  keyTuples,
  type WorkerJob,
  type WorkerResult,
} from "./_shared_table_job.ts";
import type { IndexRaceJob, IndexRaceResult } from "./_index_race_worker.ts";

const KEYS = 60;
const CAPACITY = 64;

/** Runs two Workers on one table, one shard each, and returns their results (bounded in time). */
async function hammer(t: ConnTable, seed: number, ops: number): Promise<WorkerResult[]> {
  const sync = new SharedArrayBuffer(8);
  const workers = [0, 1].map(() =>
    new Worker(new URL("./_shared_table_worker.ts", import.meta.url).href, { type: "module" })
  );
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const results = workers.map((w) =>
      new Promise<WorkerResult>((resolve, reject) => {
        w.onmessage = (e: MessageEvent<WorkerResult>) => resolve(e.data);
        w.onerror = (e) => reject(new Error(e.message));
      })
    );
    workers.forEach((w, shard) =>
      w.postMessage(
        {
          buffer: t.buffer,
          sync,
          shard,
          seed: seed * 2 + shard + 1,
          ops,
          maxMs: 4000,
          keys: KEYS,
        } satisfies WorkerJob,
      )
    );
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("workers did not finish in 30 s")), 30_000);
    });
    return await Promise.race([Promise.all(results), timeout]);
  } finally {
    clearTimeout(timer);
    for (const w of workers) w.terminate();
  }
}

/** After the Workers: every held flow found by both tuples, no tuple held twice, nothing else in the index. */
function checkTable(t: ConnTable, results: WorkerResult[]): void {
  const tuples = new Map<string, number>();
  let total = 0;
  for (const r of results) {
    assert.deepEqual(r.errors, [], "the Workers' own checks");
    for (const [k, id] of r.held) {
      total++;
      const { orig, reply } = keyTuples(k);
      for (const [tuple, h] of [[orig, 2 * id], [reply, 2 * id + 1]] as const) {
        const was = tuples.get(tuple.join());
        assert.equal(was, undefined, `tuple ${tuple} held by handles ${was} and ${h}: doubled`);
        tuples.set(tuple.join(), h);
        const [p, s, sp, d, dp] = tuple;
        assert.equal(t.lookup(p, s, sp, d, dp), h, `key ${k} lost`);
      }
    }
  }
  assert.equal(t.size, total);
  assert.equal(t.indexCensus().entries, 2 * total);
  for (let k = 0; k < KEYS; k++) {
    const { orig } = keyTuples(k);
    const h = t.lookup(orig[0], orig[1], orig[2], orig[3], orig[4]);
    assert.equal(h, tuples.get(orig.join()) ?? -1, `key ${k}: a flow no Worker holds`);
  }
}

Deno.test("two Workers on one shared table: no flow lost or doubled, every lookup right", async () => {
  for (const seed of [1, 2, 3]) {
    const t = new ConnTable({ capacity: CAPACITY, shards: 2, hashKey: [seed, 77], buckets: 36 });
    const results = await hammer(t, seed, 60_000);
    assert.ok(results.every((r) => r.ops > 1000), "both Workers ran");
    assert.ok(results.every((r) => r.clashes > 0 && r.created > 0), "they raced on shared keys");
    checkTable(t, results);
    // The main thread maps each shard in turn and empties the table: the index ends empty.
    for (const [shard, r] of results.entries()) {
      const view = new ConnTable({ buffer: t.buffer, shard });
      for (const [, id] of r.held) assert.equal(view.remove(id), true);
    }
    assert.equal(t.size, 0);
    assert.deepEqual(t.indexCensus(), { entries: 0, tombstones: 0, overflow: 0 });
  }
});

Deno.test("a mapped buffer keeps its geometry and key; a wrong capacity is refused", () => {
  const t = new ConnTable({ capacity: 100, shards: 2 });
  const view = new ConnTable({ buffer: t.buffer, shard: 1 });
  assert.equal(view.capacity, 100);
  assert.equal(view.byteLength, t.byteLength);
  assert.throws(() => new ConnTable({ buffer: t.buffer, capacity: 50 }), /capacity 50/);
  assert.throws(() => new ConnTable({ buffer: t.buffer, shard: 2 }), /shard 2 of 2/);
  assert.equal(ConnTable.bufferBytes({ capacity: 100, shards: 2 }), t.byteLength);
  assert.throws(
    () => new ConnTable({ buffer: new SharedArrayBuffer(1024), capacity: 100 }),
    /buffer of 1024 bytes/,
  );
});

Deno.test("the table's buffer starts on a page, so index lines and records are cache lines", () => {
  for (const capacity of [64, 100_000]) {
    const t = new ConnTable({ capacity });
    const at = Deno.UnsafePointer.value(Deno.UnsafePointer.of(t.buffer as unknown as ArrayBuffer));
    assert.equal(BigInt(at) % 4096n, 0n, `capacity ${capacity}`);
  }
});

// ---- one owner, trackers: refusals, grace period, refresh rings (one thread, several mappings) ----

const T0 = 1_700_000_000;
const C1 = 0xcb007101, WAN1 = 0xc6336402, SRV = 0xc000020a; // 203.0.113.1, 198.51.100.2, 192.0.2.10
const SEG = new TcpSegment();

/** The DNAT flow of client port `port`: C1:port -> WAN1:52201, reply SRV:8080 -> C1:port. */
function dnat(proto: number, port: number): FlowSpec {
  return new FlowSpec().original(proto, C1, port, WAN1, 52201).reply(SRV, 8080, C1, port);
}

/** An owner (worker 0) and `n - 1` trackers mapping one table of `capacity` flows, all quiesced once. */
function group(n: number, capacity = 8, extra: Partial<ConnTableOptions> = {}) {
  const owner = new ConnTable({ capacity, workers: n, hashKey: [3, 4], ...extra });
  const trackers = Array.from(
    { length: n - 1 },
    (_, i) => new ConnTable({ buffer: owner.buffer, worker: i + 1, role: "tracker", ...extra }),
  );
  for (const x of [owner, ...trackers]) x.quiescent();
  return { owner, trackers };
}

Deno.test("a tracker creates, removes, kills, expires, restores and picks up nothing; it tracks", () => {
  const { owner, trackers: [tr] } = group(2);
  const id = owner.create(dnat(PROTO_TCP, 40000), T0);
  assert.equal(tr.create(dnat(PROTO_TCP, 40001), T0), CREATE_FULL);
  assert.equal(tr.remove(id), false);
  assert.equal(tr.kill(id, T0), false);
  assert.equal(tr.expire(T0 + 1_000_000), 0);
  tr.pickUp(id);
  assert.equal(owner.tcpState(id), 0, "pickUp by a tracker left the flow as it was");
  const rec = new DataView(new ArrayBuffer(FLOW_RECORD_BYTES));
  owner.saveFlow(id, rec, 0);
  owner.remove(id);
  assert.equal(tr.restoreFlow(rec, 0, T0, false), CREATE_FULL);
  assert.deepEqual([owner.size, owner.isLive(id)], [0, false]);

  // The owner creates; the two directions are tracked by the owner and the tracker.
  const f = owner.create(dnat(PROTO_TCP, 40002), T0);
  assert.equal(tr.lookup(PROTO_TCP, SRV, 8080, C1, 40002), 2 * f + 1);
  assert.equal(owner.track(2 * f, 60, T0, SEG.set(TCP_SYN, 100, 0, 65535)), TRACK_ACCEPT);
  assert.equal(
    tr.track(2 * f + 1, 60, T0, SEG.set(TCP_SYN | TCP_ACK, 500, 101, 65535)),
    TRACK_ACCEPT,
  );
  assert.equal(owner.track(2 * f, 52, T0, SEG.set(TCP_ACK, 101, 501, 65535)), TRACK_ACCEPT);
  assert.equal(tr.tcpState(f), TCP_ESTABLISHED);
  assert.equal(tr.status(f) & STATUS_ASSURED, STATUS_ASSURED);
  // A handle of a freed flow is refused, by either.
  owner.remove(f);
  assert.equal(tr.track(2 * f + 1, 52, T0, SEG.set(TCP_ACK, 501, 101, 65535)), TRACK_INVALID);
});

Deno.test("a freed id waits in limbo until every Worker passed a quiescent point; a stuck tracker blocks its reuse", () => {
  const { owner, trackers: [tr] } = group(2, 2);
  const a = owner.create(dnat(PROTO_UDP, 1), T0), b = owner.create(dnat(PROTO_UDP, 2), T0);
  tr.track(2 * b + 1, 60, T0, null); // answered: assured, so early drop leaves it
  assert.equal(owner.remove(a), true);
  assert.deepEqual(owner.slotCensus(), { live: 1, free: 0, limbo: 1 });
  // The tracker holds whatever it looked up in this batch: the id stays out of reach.
  for (let i = 0; i < 5; i++) {
    owner.quiescent();
    owner.expire(T0);
    assert.equal(owner.create(dnat(PROTO_UDP, 3), T0), CREATE_FULL, `round ${i}`);
  }
  assert.equal(owner.stats().limbo, 1);
  tr.quiescent(); // its next batch: it holds nothing from before
  owner.quiescent();
  owner.expire(T0);
  assert.deepEqual(owner.slotCensus(), { live: 1, free: 1, limbo: 0 });
  const c = owner.create(dnat(PROTO_UDP, 3), T0);
  assert.equal(c, a, "the id came back");
  assert.equal(owner.generation(c), 3, "created, freed, created");
  assert.deepEqual([owner.isLive(b), owner.size], [true, 2]);
});

Deno.test("an offline Worker does not hold back the grace period, nor one that was offline at the snapshot", () => {
  const { owner, trackers: [t1, t2] } = group(3, 4);
  const ids = [1, 2, 3].map((p) => owner.create(dnat(PROTO_UDP, p), T0));
  t1.offline(); // blocked in poll
  owner.remove(ids[0]);
  owner.quiescent();
  owner.expire(T0); // closes the batch: snapshot with t1 offline, t2 online
  t1.quiescent(); // back, and stays in its batch: it cannot hold the freed flow
  t2.quiescent();
  owner.quiescent();
  owner.expire(T0);
  assert.deepEqual(owner.slotCensus(), { live: 2, free: 2, limbo: 0 });
  // Offline since the snapshot counts as passed too.
  owner.remove(ids[1]);
  owner.quiescent();
  owner.expire(T0);
  t1.offline();
  t2.offline();
  owner.quiescent();
  owner.expire(T0);
  assert.deepEqual(owner.slotCensus(), { live: 1, free: 3, limbo: 0 });
});

Deno.test("with several Workers early drop's victim goes to limbo: the create that evicted fails, a later one reuses it", () => {
  const gone: number[][] = [];
  const { owner, trackers: [tr] } = group(2, 2, {});
  owner.onExpire = (id, why) => gone.push([id, why]);
  const a = owner.create(dnat(PROTO_UDP, 1), T0);
  owner.create(dnat(PROTO_UDP, 2), T0 + 1);
  assert.equal(owner.create(dnat(PROTO_UDP, 3), T0 + 2), CREATE_FULL);
  assert.deepEqual(gone, [[a, GONE_EVICTED]], "the least recently seen unassured flow");
  assert.equal(tr.lookup(PROTO_UDP, C1, 1, WAN1, 52201), -1);
  assert.deepEqual(owner.slotCensus(), { live: 1, free: 0, limbo: 1 });
  owner.quiescent();
  owner.expire(T0 + 2); // the victim's batch closes: a snapshot
  tr.quiescent();
  owner.quiescent();
  assert.equal(owner.create(dnat(PROTO_UDP, 3), T0 + 2), a);
  assert.equal(gone.length, 1, "nothing more evicted");
});

Deno.test("a tracker's earlier expiry reaches the owner's wheel through its refresh ring; later ones need nothing", () => {
  const { owner, trackers: [tr] } = group(2, 8, { timeouts: { tcpSynSent: 100, tcpSynRecv: 10 } });
  const f = owner.create(dnat(PROTO_TCP, 40000), T0);
  owner.track(2 * f, 60, T0, SEG.set(TCP_SYN, 100, 0, 65535)); // SYN_SENT: T0 + 100
  tr.track(2 * f + 1, 60, T0, SEG.set(TCP_SYN | TCP_ACK, 500, 101, 65535)); // SYN_RECV: T0 + 10
  assert.equal(owner.expiresAt(f), T0 + 10);
  assert.equal(owner.expire(T0 + 9), 0);
  assert.equal(owner.stats().refreshed, 1);
  assert.equal(owner.expire(T0 + 10), 1, "gone at the tracker's expiry, not the owner's old slot");
  // A later expiry (ESTABLISHED) is left to the lazy wheel: nothing pushed.
  const g = owner.create(dnat(PROTO_UDP, 5), T0 + 10);
  tr.track(2 * g + 1, 60, T0 + 11, null);
  assert.equal(owner.expire(T0 + 11), 0);
  assert.equal(owner.stats().refreshed, 1);
  assert.equal(tr.stats().refreshOverflows, 0);
});

Deno.test("a full refresh ring is counted; those flows expire at their old slot", () => {
  const n = REFRESH_RING + 100;
  const { owner, trackers: [tr] } = group(2, n);
  const ids: number[] = [];
  for (let p = 0; p < n; p++) ids.push(owner.create(dnat(PROTO_UDP, 1024 + p), T0)); // expire at T0 + 30
  for (const id of ids) assert.equal(tr.touch(2 * id + 1, 60, T0, 5), true); // now T0 + 5: earlier
  assert.equal(tr.stats().refreshOverflows, 100);
  assert.equal(owner.expire(T0 + 5), REFRESH_RING);
  assert.equal(owner.size, 100);
  assert.equal(owner.expire(T0 + 30), 100);
  assert.equal(owner.size, 0);
});

Deno.test("mapping a table of several Workers checks the worker, the role and the Worker count", () => {
  const t = new ConnTable({ capacity: 16, workers: 3 });
  assert.throws(() => new ConnTable({ buffer: t.buffer, worker: 3 }), /worker 3 of 3/);
  assert.throws(
    () => new ConnTable({ buffer: t.buffer, workers: 2 }),
    /2 workers, the buffer holds 3/,
  );
  assert.throws(
    () => new ConnTable({ buffer: t.buffer, role: "reader" as unknown as "owner" }),
    /unknown role "reader"/,
  );
  assert.throws(() => new ConnTable({ workers: 0 }), /0 workers is out of range/);
  assert.ok(
    ConnTable.bufferBytes({ capacity: 16, workers: 3 }) > ConnTable.bufferBytes({ capacity: 16 }),
  );
  // One Worker: quiescent() and offline() do nothing, a freed id is reused at once.
  const one = new ConnTable({ capacity: 1 });
  one.offline();
  const id = one.create(dnat(PROTO_UDP, 1), T0);
  one.remove(id);
  assert.equal(one.create(dnat(PROTO_UDP, 2), T0), id);
  assert.equal(one.stats().limbo, 0);
});

Deno.test("TCP slots with several Workers: an evicted TCP slot waits out the grace period while UDP still finds room", () => {
  const gone: number[][] = [];
  const { owner, trackers: [tr] } = group(2, 4, { tcpShare: 0.5 }); // ids 0 and 1 hold TCP state
  owner.onExpire = (id, why) => gone.push([id, why]);
  const a = owner.create(dnat(PROTO_TCP, 40000), T0);
  const b = owner.create(dnat(PROTO_TCP, 40001), T0 + 1);
  assert.deepEqual([a, b], [0, 1]);
  assert.equal(owner.track(2 * a, 60, T0, SEG.set(TCP_SYN, 100, 0, 65535)), TRACK_ACCEPT);
  owner.track(2 * b, 60, T0 + 1, SEG.set(TCP_SYN, 100, 0, 65535));
  tr.track(2 * b + 1, 60, T0 + 1, SEG.set(TCP_SYN | TCP_ACK, 500, 101, 65535));
  owner.track(2 * b, 52, T0 + 1, SEG.set(TCP_ACK, 101, 501, 65535)); // assured
  // No TCP slot: the unassured TCP flow goes to limbo, this create fails.
  assert.equal(owner.create(dnat(PROTO_TCP, 40002), T0 + 2), CREATE_FULL);
  assert.deepEqual(gone, [[a, GONE_EVICTED]]);
  assert.equal(owner.create(dnat(PROTO_UDP, 1), T0 + 2), 2, "UDP takes one of its own ids");
  assert.deepEqual(owner.slotCensus(), { live: 2, free: 1, limbo: 1 });
  assert.equal(
    tr.track(2 * a + 1, 60, T0 + 2, SEG.set(TCP_SYN | TCP_ACK, 500, 101, 65535)),
    TRACK_INVALID,
  );
  // The batch closes; the tracker has not quiesced since: the slot stays out of reach.
  owner.quiescent();
  owner.expire(T0 + 2);
  assert.equal(owner.create(dnat(PROTO_TCP, 40002), T0 + 2), CREATE_FULL);
  assert.equal(gone.length, 1, "nothing more evicted: b is assured");
  tr.quiescent();
  owner.quiescent();
  const c = owner.create(dnat(PROTO_TCP, 40002), T0 + 3);
  assert.equal(c, a, "the TCP slot came back, to TCP");
  assert.equal(owner.generation(c), 3);
  assert.equal(owner.tcpState(c), 0);
  assert.equal(owner.create(dnat(PROTO_UDP, 2), T0 + 3), 3);
  assert.deepEqual(owner.slotCensus(), { live: 4, free: 0, limbo: 0 });
});

const HAMMER_KEYS = 96;
const HAMMER_CAPACITY = 128;

/** Runs the owner (worker 0) and `trackers` tracker Workers on table `t`; bounded in time. */
async function tcpHammer(
  t: ConnTable,
  seed: number,
  trackers: number,
): Promise<{ owner: HammerResult; trackers: HammerResult[] }> {
  const sync = new SharedArrayBuffer(HAMMER_SYNC_BYTES);
  const workers = Array.from(
    { length: trackers + 1 },
    () => new Worker(new URL("./_tcp_hammer_worker.ts", import.meta.url).href, { type: "module" }),
  );
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const results = workers.map((w) =>
      new Promise<HammerResult>((resolve, reject) => {
        w.onmessage = (e: MessageEvent<HammerResult>) => resolve(e.data);
        w.onerror = (e) => reject(new Error(e.message));
      })
    );
    workers.forEach((w, worker) =>
      w.postMessage(
        {
          role: worker === 0 ? "owner" : "tracker",
          buffer: t.buffer,
          sync,
          worker,
          trackers,
          seed: seed * 8 + worker + 1,
          batches: 2_000_000,
          maxMs: 2500,
          keys: HAMMER_KEYS,
        } satisfies HammerJob,
      )
    );
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("hammer Workers did not finish in 30 s")), 30_000);
    });
    const [owner, ...rest] = await Promise.race([Promise.all(results), timeout]);
    return { owner, trackers: rest };
  } finally {
    clearTimeout(timer);
    for (const w of workers) w.terminate();
  }
}

Deno.test("an owner and two trackers on one table: TCP flows tracked from both sides, no flow lost, doubled or reused under a reader", async () => {
  for (const seed of [1, 2]) {
    const t = new ConnTable({
      capacity: HAMMER_CAPACITY,
      workers: 3,
      role: "tracker", // the test thread only reads
      hashKey: [seed, 99],
      timeouts: HAMMER_TIMEOUTS,
    });
    const { owner, trackers } = await tcpHammer(t, seed, 2);
    if (Deno.env.get("HAMMER_VERBOSE")) {
      console.log(
        JSON.stringify({
          owner: [owner.counts, owner.stats],
          trackers: trackers.map((r) => [r.batches, r.counts, r.stats]),
        }),
      );
    }
    assert.deepEqual(owner.errors, [], "the owner's checks");
    for (const r of trackers) assert.deepEqual(r.errors, [], "a tracker's checks");
    const c = owner.counts, s = owner.stats;
    // The run did what it is for: churn through every way out, handshakes, FINs, earlier expiries.
    assert.ok(
      c.created > 200 && c.removed > 0 && c.killedGone > 0 && c.timeout > 0,
      JSON.stringify(c),
    );
    for (const r of trackers) {
      assert.ok(r.counts.established > 50 && r.counts.fins > 5, JSON.stringify(r.counts));
      assert.ok(r.batches > 500, `tracker batches ${r.batches}`);
    }
    assert.ok(s.refreshed > 0, "trackers' earlier expiries reached the owner's wheel");

    // Limbo drained once every Worker went offline; no id lost: live + free = capacity.
    assert.equal(s.limbo, 0);
    assert.equal(s.census_limbo, 0);
    assert.equal(s.census_live + s.census_free, HAMMER_CAPACITY);
    assert.equal(s.census_live, t.size);

    // Every live flow is found by both tuples, once; no key is held twice.
    let live = 0;
    t.forEach((id) => {
      live++;
      assert.equal(t.status(id) & STATUS_DYING, 0, `flow ${id}: killed, still there`);
    });
    assert.equal(live, t.size);
    assert.deepEqual(t.indexCensus().entries, 2 * live);
    const found = new Set<number>();
    for (let k = 0; k < HAMMER_KEYS; k++) {
      const { orig, reply } = hammerTuples(k);
      const ho = t.lookup(orig[0], orig[1], orig[2], orig[3], orig[4]);
      const hr = t.lookup(reply[0], reply[1], reply[2], reply[3], reply[4]);
      assert.equal(hr, ho < 0 ? -1 : ho + 1, `key ${k}: tuples of different flows`);
      if (ho >= 0) {
        assert.ok(!found.has(ho >> 1), `flow ${ho >> 1} holds two keys`);
        found.add(ho >> 1);
      }
    }
    assert.equal(found.size, live);

    // TCP state and windows as the two ends left them.
    const ends = new Map<string, HammerEnd[]>();
    for (const r of trackers) {
      for (const e of r.ends) {
        const at = `${e.id}/${e.generation}`;
        ends.set(at, [...(ends.get(at) ?? []), e]);
      }
    }
    let checked = 0;
    for (const [at, pair] of ends) {
      const id = pair[0].id;
      if (t.generation(id) !== pair[0].generation) continue;
      for (const e of pair) {
        const h = 2 * id + e.dir;
        const w = t.tcpWindow(h);
        assert.equal(
          w.end,
          e.next >>> 0,
          `flow ${at} dir ${e.dir}: td_end is what its sender sent`,
        );
        assert.ok(
          ((w.maxEnd - w.end) | 0) >= 0,
          `flow ${at} dir ${e.dir}: sender within its window`,
        );
      }
      const state = t.tcpState(id);
      const client = pair.find((e) => e.dir === 0), server = pair.find((e) => e.dir === 1);
      if (client?.fin) assert.ok(state >= TCP_FIN_WAIT, `flow ${at}: client FIN lost (${state})`);
      if (server?.fin) assert.ok(state >= TCP_LAST_ACK, `flow ${at}: server FIN lost (${state})`);
      if (client && server && !client.fin && (client.data > 0 || server.data > 0)) {
        assert.equal(state, TCP_ESTABLISHED, `flow ${at}`);
      }
      checked++;
    }
    // Under a loaded machine the owner's clock can outrun every flow (0 live at the end): then
    // only the in-run checks above speak; a table with survivors must have them checked.
    assert.ok(
      checked > 0 || live === 0,
      `some flows were live at the end: ${live} live, ${ends.size} ends, ${
        JSON.stringify([...ends.values()].slice(0, 3))
      } gens ${
        [...ends.values()].slice(0, 3).map((p) => t.generation(p[0].id))
      } batches ${owner.batches} ${trackers.map((r) => r.batches)} ${
        JSON.stringify(trackers.map((r) => r.counts))
      } ${JSON.stringify(owner.counts)}`,
    );
  }
});

Deno.test("readers racing the owner's creates and removes on crowded index lines never get a handle of another tuple", async () => {
  const READERS = 1, KEYS = 64; // one reader: the owner keeps a core on a 2-core box, its limbo drains
  for (const seed of [1, 2]) {
    // 48 flows, 96 tuples in 28 lines of 4: every line churns, entries spill, slots come back.
    const t = new ConnTable({
      capacity: 48,
      buckets: 28,
      workers: 1 + READERS,
      hashKey: [seed, 5],
    });
    const sync = new SharedArrayBuffer(12);
    const url = new URL("./_index_race_worker.ts", import.meta.url).href;
    const workers = Array.from({ length: 1 + READERS }, () => new Worker(url, { type: "module" }));
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const results = workers.map((w) =>
        new Promise<IndexRaceResult>((resolve, reject) => {
          w.onmessage = (e: MessageEvent<IndexRaceResult>) => resolve(e.data);
          w.onerror = (e) => reject(new Error(e.message));
        })
      );
      workers.forEach((w, worker) =>
        w.postMessage(
          {
            role: worker === 0 ? "owner" : "reader",
            buffer: t.buffer,
            sync,
            worker,
            workers: 1 + READERS,
            seed: seed * 4 + worker,
            maxMs: 2000,
            keys: KEYS,
          } satisfies IndexRaceJob,
        )
      );
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("race Workers did not finish in 30 s")), 30_000);
      });
      const [owner, ...readers] = await Promise.race([Promise.all(results), timeout]);
      assert.deepEqual(owner.errors, [], "the owner's checks");
      for (const r of readers) assert.deepEqual(r.errors, [], "a reader's checks");
      assert.ok(owner.ops > 2000, `owner ops ${owner.ops}`);
      for (const r of readers) assert.ok(r.hits > 100, `reader lookups ${r.ops}, hits ${r.hits}`);
      // Every Worker is offline: one more pass empties the limbo and its tombstones.
      const view = new ConnTable({ buffer: t.buffer, worker: 0 });
      view.expire(1000);
      view.expire(1000);
      const census = t.indexCensus();
      assert.deepEqual([census.entries, census.tombstones], [2 * t.size, 0]);
    } finally {
      clearTimeout(timer);
      for (const w of workers) w.terminate();
    }
  }
});
