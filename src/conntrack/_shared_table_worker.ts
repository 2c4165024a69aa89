/**
 * A Worker of `shared_table_test.ts`: maps the shared table as one shard and
 * creates, looks up and removes flows from a key pool both Workers draw
 * from, checking every answer it can know, for a bounded count and time.
 * Posts `{ held, errors, ops }`: the keys it holds at the end, with their ids.
 */
/// <reference lib="deno.worker" />
import { CREATE_CLASH, CREATE_FULL } from "./constants.ts";
import { FlowSpec } from "./flow_spec.ts";
import { ConnTable } from "./table.ts";
import { keyTuples, type WorkerJob, type WorkerResult } from "./_shared_table_job.ts";

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

function run(job: WorkerJob): WorkerResult {
  const t = new ConnTable({ buffer: job.buffer, shard: job.shard });
  const sync = new Int32Array(job.sync);
  const r = rng(job.seed);
  const held = new Map<number, number>(); // key -> id, flows this shard created and holds
  const errors: string[] = [];
  const spec = new FlowSpec();
  const lo = Math.floor((job.shard * t.capacity) / 2),
    hi = Math.floor(((job.shard + 1) * t.capacity) / 2);
  const fail = (m: string) => {
    if (errors.length < 20) errors.push(m);
  };
  // Start together: each side counts itself in, then waits (bounded) for the other.
  Atomics.add(sync, 0, 1);
  for (let i = 0; i < 1000 && Atomics.load(sync, 0) < 2; i++) Atomics.wait(sync, 1, 0, 5);
  const deadline = performance.now() + job.maxMs;
  let created = 0, clashes = 0, n = 0;
  for (; n < job.ops && (n & 255 || performance.now() < deadline); n++) {
    const k = r() % job.keys;
    const { orig, reply } = keyTuples(k);
    const op = r() % 8; // 0-3 create, 4-5 look up, 6-7 remove
    if (op < 4) {
      const id = t.create(
        spec.original(orig[0], orig[1], orig[2], orig[3], orig[4]).reply(
          reply[1],
          reply[2],
          reply[3],
          reply[4],
        ),
        1000,
      );
      if (id === CREATE_FULL) fail(`key ${k}: table full`);
      else if (id === CREATE_CLASH) clashes++;
      else if (held.has(k)) fail(`key ${k}: created twice by shard ${job.shard}`);
      else if (id < lo || id >= hi) fail(`key ${k}: id ${id} outside shard ${job.shard}`);
      else {
        held.set(k, id);
        created++;
      }
    } else if (op < 6) {
      const want = held.get(k);
      const ho = t.lookup(orig[0], orig[1], orig[2], orig[3], orig[4]);
      const hr = t.lookup(reply[0], reply[1], reply[2], reply[3], reply[4]);
      if (want !== undefined) {
        if (ho !== 2 * want) fail(`key ${k}: orig lookup ${ho}, want ${2 * want}`);
        if (hr !== 2 * want + 1) fail(`key ${k}: reply lookup ${hr}, want ${2 * want + 1}`);
      } else {
        // Not ours: absent, or the other shard's flow; one of ours only by a shared reply tuple.
        if (ho >= 0 && (ho >> 1) >= lo && (ho >> 1) < hi) {
          fail(`key ${k}: orig lookup found ${ho}, a flow of this shard for another key`);
        }
        if (hr >= 0 && (hr >> 1) >= lo && (hr >> 1) < hi) {
          const mine = [...held].find(([, id]) => id === hr >> 1);
          if (mine === undefined || keyTuples(mine[0]).reply.join() !== reply.join()) {
            fail(`key ${k}: reply lookup found ${hr}, a flow of this shard for another tuple`);
          }
        }
      }
    } else if (held.size > 0) {
      const id = held.get(k);
      if (id !== undefined) {
        if (!t.remove(id)) fail(`key ${k}: remove(${id}) refused`);
        held.delete(k);
        if ((t.lookup(orig[0], orig[1], orig[2], orig[3], orig[4]) >> 1) === id) {
          fail(`key ${k}: found after remove`);
        }
      }
    }
  }
  return { held: [...held], errors, ops: n, created, clashes };
}

self.onmessage = (e: MessageEvent<WorkerJob>) => {
  let result: WorkerResult;
  try {
    result = run(e.data);
  } catch (err) {
    result = { held: [], errors: [String(err)], ops: 0, created: 0, clashes: 0 };
  }
  self.postMessage(result);
};
