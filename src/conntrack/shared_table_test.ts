import assert from "node:assert/strict";
import { ConnTable } from "./table.ts";
import { keyTuples, type WorkerJob, type WorkerResult } from "./_shared_table_job.ts";

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
  assert.deepEqual(t.indexCensus(), { entries: 2 * total, overflow: t.indexCensus().overflow });
  for (let k = 0; k < KEYS; k++) {
    const { orig } = keyTuples(k);
    const h = t.lookup(orig[0], orig[1], orig[2], orig[3], orig[4]);
    assert.equal(h, tuples.get(orig.join()) ?? -1, `key ${k}: a flow no Worker holds`);
  }
}

Deno.test("two Workers on one shared table: no flow lost or doubled, every lookup right", async () => {
  for (const seed of [1, 2, 3]) {
    const t = new ConnTable({ capacity: CAPACITY, shards: 2, hashKey: [seed, 77], buckets: 9 });
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
    assert.deepEqual(t.indexCensus(), { entries: 0, overflow: 0 });
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
