/**
 * A Worker of the index race in `shared_table_test.ts`: the owner (worker 0)
 * creates and removes flows of a small key pool as fast as it can, crowding
 * a few index lines, and moves the limbo on so that ids and slots come back
 * quickly; reader Workers look the pool's tuples up in batches and check
 * that every handle they get names the tuple they looked for (read through
 * the handle's record, which cannot change while the reader holds it).
 * Bounded in time. Posts an `IndexRaceResult`.
 */
/// <reference lib="deno.worker" />
import { PROTO_UDP } from "./constants.ts";
import { FlowSpec } from "./flow_spec.ts";
import { ConnTable } from "./table.ts";

/** What the test sends. */
export interface IndexRaceJob {
  role: "owner" | "reader";
  buffer: SharedArrayBuffer;
  /** Int32 words: [Workers started, owner done, a word nobody changes (to sleep on)]. */
  sync: SharedArrayBuffer;
  worker: number;
  workers: number;
  seed: number;
  maxMs: number;
  keys: number;
}

/** What a Worker answers. */
export interface IndexRaceResult {
  errors: string[];
  /** Owner: creates and removes; reader: lookups, hits. */
  ops: number;
  hits: number;
}

const WAN = 0xc6336402; // 198.51.100.2
const SERVER = 0xc000020a; // 192.0.2.10

/**
 * Key `k`'s tuples: eight clients of 203.0.113.0/24, ports from 1000, to
 * WAN:52201, DNATed to SERVER:8080. Keys share their words pairwise (the
 * same source with another port, the same port from another source), so a
 * reader that mixed two entries' words would match a third key.
 */
export function raceTuples(k: number): { orig: number[]; reply: number[] } {
  const src = 0xcb007100 + (k & 7), sport = 1000 + (k >> 3);
  return {
    orig: [PROTO_UDP, src, sport, WAN, 52201],
    reply: [PROTO_UDP, SERVER, 8080, src, sport],
  };
}

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

function owner(t: ConnTable, job: IndexRaceJob, sync: Int32Array): IndexRaceResult {
  const r = rng(job.seed), spec = new FlowSpec(), errors: string[] = [];
  const held = new Int32Array(job.keys).fill(-1), keyOf = new Int32Array(t.capacity).fill(-1);
  // A full table's create evicts an unanswered flow: it is no longer held.
  t.onExpire = (id) => {
    held[keyOf[id]] = -1;
  };
  const deadline = performance.now() + job.maxMs;
  let ops = 0;
  const now = 1000; // no flow times out: every free is the owner's remove
  for (; (ops & 255) !== 0 || performance.now() < deadline; ops++) {
    if ((ops & 7) === 0) {
      t.quiescent();
      t.expire(now); // moves the limbo on: freed ids and their slots come back
    }
    const k = r() % job.keys;
    if (held[k] < 0) {
      const { orig: o, reply: p } = raceTuples(k);
      const id = t.create(
        spec.original(o[0], o[1], o[2], o[3], o[4]).reply(p[1], p[2], p[3], p[4]),
        now,
      );
      if (id >= 0) {
        held[k] = id;
        keyOf[id] = k;
      }
    } else if (!t.remove(held[k])) {
      if (errors.length < 10) errors.push(`key ${k}: remove(${held[k]}) refused`);
    } else {
      held[k] = -1;
    }
  }
  t.offline();
  Atomics.store(sync, 1, 1);
  return { errors, ops, hits: 0 };
}

function reader(t: ConnTable, job: IndexRaceJob, sync: Int32Array): IndexRaceResult {
  const r = rng(job.seed), errors: string[] = [];
  const keys = new Int32Array(BATCH), handles = new Int32Array(BATCH);
  let ops = 0, hits = 0;
  for (let batch = 0; Atomics.load(sync, 1) === 0 && batch < 50_000_000; batch++) {
    t.quiescent();
    let n = 0;
    for (let i = 0; i < BATCH; i++, ops++) {
      const k = r() % job.keys, dir = r() & 1;
      const [p, s, sp, d, dp] = tupleOf(k, dir);
      const h = t.lookup(p, s, sp, d, dp);
      if (h < 0) continue;
      keys[n] = 2 * k + dir;
      handles[n++] = h;
      check(t, k, dir, h, errors);
    }
    // Held across the batch, as the datapath holds them until its next quiescent point.
    for (let i = 0; i < n; i++) check(t, keys[i] >> 1, keys[i] & 1, handles[i], errors);
    hits += n;
  }
  t.offline();
  return { errors, ops, hits };
}

const BATCH = 64;

function tupleOf(k: number, dir: number): number[] {
  const { orig, reply } = raceTuples(k);
  return dir === 0 ? orig : reply;
}

/** Handle `h`, found for key `k`'s tuple of direction `dir`, names that tuple (read through its record). */
function check(t: ConnTable, k: number, dir: number, h: number, errors: string[]): void {
  const [, s, sp, d, dp] = tupleOf(k, dir);
  const id = h >> 1;
  const got = (h & 1) === 0
    ? [t.origSrc(id), t.origSrcPort(id), t.origDst(id), t.origDstPort(id)]
    : [t.replySrc(id), t.replySrcPort(id), t.replyDst(id), t.replyDstPort(id)];
  const want = [s >>> 0, sp, d >>> 0, dp];
  if (got.join() !== want.join() && errors.length < 10) {
    errors.push(`key ${k} dir ${dir}: handle ${h} holds ${got}, looked up ${want}`);
  }
}

self.onmessage = (e: MessageEvent<IndexRaceJob>) => {
  const job = e.data;
  let result: IndexRaceResult;
  try {
    const t = new ConnTable({
      buffer: job.buffer,
      worker: job.worker,
      role: job.role === "owner" ? "owner" : "tracker",
    });
    const sync = new Int32Array(job.sync);
    Atomics.add(sync, 0, 1);
    for (let i = 0; i < 2000 && Atomics.load(sync, 0) < job.workers; i++) {
      Atomics.wait(sync, 2, 0, 5);
    }
    result = job.role === "owner" ? owner(t, job, sync) : reader(t, job, sync);
  } catch (err) {
    result = { errors: [String(err)], ops: 0, hits: 0 };
  }
  self.postMessage(result);
};
