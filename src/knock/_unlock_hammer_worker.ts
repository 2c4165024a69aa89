/**
 * A reader Worker of `unlock_index_test.ts`'s hammer: maps the shared unlock
 * table and looks up and touches addresses while the owner churns, checking
 * every answer it can know, for a bounded count and time. Posts
 * `{ errors, ops, stableTouches, churnTouches }`.
 */
/// <reference lib="deno.worker" />
import { UnlockIndex } from "./unlock_index.ts";
import {
  ABSENT_BASE,
  CHURN_BASE,
  churnUsers,
  type HammerJob,
  type HammerResult,
  STABLE_BASE,
  stableUser,
} from "./_unlock_hammer_job.ts";

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

function run(job: HammerJob): HammerResult {
  const x = new UnlockIndex(job.buffer, job.worker);
  const sync = new Int32Array(job.sync);
  const r = rng(job.seed);
  const errors: string[] = [];
  const fail = (m: string) => {
    if (errors.length < 20) errors.push(m);
  };
  const stableTouches = new Array<number>(job.stable).fill(0);
  const churnTouches = new Array<number>(job.churn).fill(0);
  Atomics.add(sync, 0, 1);
  const deadline = performance.now() + job.maxMs;
  let n = 0;
  x.quiescent();
  for (; n < job.ops && Atomics.load(sync, 1) === 0; n++) {
    if ((n & 63) === 0) {
      x.quiescent(); // between "batches": no slot held
      if (performance.now() > deadline) break;
    }
    const now = Date.now();
    const pick = r() % 8;
    if (pick < 4) {
      const i = r() % job.stable, ip = (STABLE_BASE + i) >>> 0;
      const s = x.find(ip);
      if (s < 0) {
        fail(`stable ${i}: not found`);
        continue;
      }
      if (!x.liveAt(s, now)) fail(`stable ${i}: not live`);
      if (x.user[s] !== stableUser(i)) fail(`stable ${i}: user ${x.user[s]}`);
      x.touch(s, now, 3);
      stableTouches[i]++;
    } else if (pick < 7) {
      const j = r() % job.churn, ip = (CHURN_BASE + j) >>> 0;
      const s = x.find(ip);
      if (s < 0) continue;
      if (x.key[s] !== ip) fail(`churn ${j}: key ${x.key[s]}`);
      const u = x.user[s], [a, b] = churnUsers(j);
      if (u !== a && u !== b) fail(`churn ${j}: user ${u}, not ${a} or ${b} (torn or reused)`);
      x.touch(s, now, 1);
      churnTouches[j]++;
    } else {
      const ip = (ABSENT_BASE + (r() % 4096)) >>> 0;
      if (x.find(ip) >= 0) fail(`absent ${ip}: found`);
    }
  }
  x.offline();
  return { errors, ops: n, stableTouches, churnTouches };
}

self.onmessage = (e: MessageEvent<HammerJob>) => {
  self.postMessage(run(e.data));
};
