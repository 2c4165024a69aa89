/**
 * A Worker of `handoff_test.ts`: the producer pushes `count` packets of
 * seeded random sizes in bursts (retrying each refused push: a full ring),
 * flushing with the doorbell after each burst; the consumer pops them,
 * checks sequence, size, kind, checksum state and every byte, and sleeps
 * on the doorbell whenever the ring is empty (`consumeAll`: worker 0's way,
 * several rings and one doorbell). All are bounded in time.
 */
/// <reference lib="deno.worker" />
import { Doorbell } from "../device/mod.ts";
import { HANDOFF_MAX_PACKET, HandoffRing, sleepAll, wakeAll } from "./handoff.ts";
import { type HandoffJob, type HandoffResult, patternByte, rng } from "./_handoff_job.ts";

const OFF = 16;

function start(job: HandoffJob): number {
  const sync = new Int32Array(job.sync);
  Atomics.add(sync, 0, 1);
  const all = job.workers ?? 2;
  for (let i = 0; i < 1000 && Atomics.load(sync, 0) < all; i++) Atomics.wait(sync, 1, 0, 5);
  return performance.now() + job.maxMs;
}

function pause(us: number): void {
  const until = performance.now() + us / 1000;
  while (performance.now() < until) { /* spin: shorter than any sleep */ }
}

function produce(job: HandoffJob, ring: HandoffRing, bell: Doorbell | null): HandoffResult {
  const r = rng(job.seed);
  const hr = ring.headroom;
  const buf = new Uint8Array(OFF + HANDOFF_MAX_PACKET);
  const deadline = start(job);
  let seq = 0, refused = 0;
  while (seq < job.count && performance.now() < deadline) {
    const n = 1 + (r() % job.burst);
    for (let b = 0; b < n && seq < job.count; b++, seq++) {
      const len = 1 + (r() % job.maxSize);
      for (let j = -hr; j < len; j++) buf[OFF + j] = patternByte(seq, j);
      while (!ring.push(1 + (seq % 3), seq, seq & 3, buf, OFF, len, len * 3)) {
        refused++;
        ring.flush(bell); // the consumer may sleep on a full ring: wake it
        if (performance.now() > deadline) break;
        pause(20);
      }
    }
    ring.flush(bell);
    if (job.pauseUs > 0) pause(r() % job.pauseUs);
  }
  return { done: seq, refused, sleeps: 0, lostWakeups: 0, errors: [] };
}

function consume(job: HandoffJob, ring: HandoffRing, bell: Doorbell | null): HandoffResult {
  const hr = ring.headroom;
  const dst = new Uint8Array(OFF + HANDOFF_MAX_PACKET);
  const errors: string[] = [];
  const fail = (m: string) => errors.length < 20 && errors.push(m);
  const deadline = start(job);
  let seq = 0, sleeps = 0, lost = 0;
  while (seq < job.count && performance.now() < deadline) {
    const len = ring.pop(dst, OFF);
    if (len < 0) {
      if (bell === null || !ring.sleep()) continue;
      sleeps++;
      const rung = bell.wait(1000);
      ring.wake();
      // The producer pauses far less than a second: a timeout with records waiting lost a ring.
      if (!rung && ring.stats().used > 0) lost++;
      continue;
    }
    if (ring.arg !== seq) fail(`packet ${seq}: got sequence ${ring.arg}`);
    if (ring.kind !== 1 + (seq % 3) || ring.csum !== (seq & 3) || ring.value !== len * 3) {
      fail(`packet ${seq}: kind ${ring.kind} csum ${ring.csum} value ${ring.value} len ${len}`);
    }
    for (let j = -hr; j < len; j++) {
      if (dst[OFF + j] !== patternByte(seq, j)) {
        fail(`packet ${seq} (${len} bytes): byte ${j} is ${dst[OFF + j]}`);
        break;
      }
    }
    seq = ring.arg + 1;
  }
  return { done: seq, refused: 0, sleeps, lostWakeups: lost, errors };
}

/** Checks packet `seq` of `len` bytes in `dst`; returns an error or null. */
function check(ring: HandoffRing, dst: Uint8Array, seq: number, len: number): string | null {
  if (ring.arg !== seq) return `packet ${seq}: got sequence ${ring.arg}`;
  if (ring.kind !== 1 + (seq % 3) || ring.csum !== (seq & 3) || ring.value !== len * 3) {
    return `packet ${seq}: kind ${ring.kind} csum ${ring.csum} value ${ring.value} len ${len}`;
  }
  for (let j = -ring.headroom; j < len; j++) {
    if (dst[OFF + j] !== patternByte(seq, j)) {
      return `packet ${seq} (${len} bytes): byte ${j} is ${dst[OFF + j]}`;
    }
  }
  return null;
}

/** Worker 0's loop over several rings: pop each in turn, sleep on the one doorbell when all are empty. */
function consumeAll(job: HandoffJob, _ring: HandoffRing, bell: Doorbell | null): HandoffResult {
  const rings = job.rings!.map((b) => new HandoffRing(b));
  const next = rings.map(() => 0);
  const dst = new Uint8Array(OFF + HANDOFF_MAX_PACKET);
  const errors: string[] = [];
  const deadline = start(job);
  let done = 0, sleeps = 0, lost = 0;
  while (done < job.count * rings.length && performance.now() < deadline) {
    let popped = false;
    for (let k = 0; k < rings.length; k++) {
      const len = rings[k].pop(dst, OFF);
      if (len < 0) continue;
      popped = true;
      const err = check(rings[k], dst, next[k], len);
      if (err !== null && errors.length < 20) errors.push(`ring ${k}: ${err}`);
      next[k] = rings[k].arg + 1;
      done++;
    }
    if (popped || bell === null || !sleepAll(rings)) continue;
    sleeps++;
    const rung = bell.wait(1000);
    wakeAll(rings);
    if (!rung && rings.some((r) => r.stats().used > 0)) lost++;
  }
  return { done, refused: 0, sleeps, lostWakeups: lost, errors };
}

/** Now on a clock both Workers share (each Worker's `performance.now()` has its own origin). */
const now = () => performance.timeOrigin + performance.now();

function stamp(job: HandoffJob, ring: HandoffRing, bell: Doorbell | null): HandoffResult {
  const buf = new Uint8Array(OFF + 64);
  const t = new Float64Array(buf.buffer, OFF, 1);
  const deadline = start(job);
  let seq = 0;
  for (; seq < job.count && performance.now() < deadline; seq++) {
    pause(job.pauseUs);
    t[0] = now();
    ring.push(1, seq, 0, buf, OFF, 64);
    ring.flush(bell);
  }
  return { done: seq, refused: 0, sleeps: 0, lostWakeups: 0, errors: [] };
}

function time(job: HandoffJob, ring: HandoffRing, bell: Doorbell | null): HandoffResult {
  const dst = new Uint8Array(OFF + 64);
  const t = new Float64Array(dst.buffer, OFF, 1);
  const latencies: number[] = [];
  const deadline = start(job);
  let sleeps = 0;
  while (latencies.length < job.count && performance.now() < deadline) {
    if (ring.pop(dst, OFF) >= 0) {
      latencies.push((now() - t[0]) * 1000);
      continue;
    }
    if (bell === null || !ring.sleep()) continue;
    sleeps++;
    bell.wait(1000);
    ring.wake();
  }
  latencies.sort((a, b) => a - b);
  return {
    done: latencies.length,
    refused: 0,
    sleeps,
    lostWakeups: 0,
    errors: [],
    latenciesUs: latencies,
  };
}

const ROLES = { produce, consume, stamp, time, consumeAll };

self.onmessage = (e: MessageEvent<HandoffJob>) => {
  const job = e.data;
  const ring = new HandoffRing(job.ring);
  const bell = job.bellFd < 0 ? null : Doorbell.fromFd(job.bellFd);
  self.postMessage(ROLES[job.role](job, ring, bell));
};
