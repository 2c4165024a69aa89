/**
 * A Worker of the TCP hammer in `shared_table_test.ts`: one owner and
 * trackers on one table with `workers` > 1, as the multi-queue datapath runs
 * it. The owner creates TCP flows from a key pool, removes and kills some,
 * advances the second and expires; the trackers look flows up and play the
 * two ends of real TCP connections (handshake, data within the windows,
 * FINs), each flow's two directions on different trackers, and check every
 * answer they can know. Bounded in batches and time. Posts a `HammerResult`.
 */
/// <reference lib="deno.worker" />
import {
  CREATE_CLASH,
  CREATE_FULL,
  GONE_EVICTED,
  GONE_KILLED,
  GONE_TIMEOUT,
  STATUS_DYING,
  TCP_ACK,
  TCP_CLOSE_WAIT,
  TCP_ESTABLISHED,
  TCP_FIN,
  TCP_FIN_WAIT,
  TCP_LAST_ACK,
  TCP_NONE,
  TCP_SYN,
  TCP_SYN_RECV,
  TCP_SYN_SENT,
  TCP_TIME_WAIT,
  TRACK_ACCEPT,
  TRACK_INVALID,
} from "./constants.ts";
import { FlowSpec } from "./flow_spec.ts";
import { TcpSegment } from "./segment.ts";
import { ConnTable } from "./table.ts";
import {
  HAMMER_DONE,
  HAMMER_IDLE,
  HAMMER_NOW,
  HAMMER_PROGRESS,
  HAMMER_STARTED,
  HAMMER_STOP,
  HAMMER_T0,
  HAMMER_TIMEOUTS,
  type HammerEnd,
  type HammerJob,
  type HammerResult,
  hammerTuples,
} from "./_shared_table_job.ts";

/** Operations per batch, between two quiescent points. */
const BATCH = 16;
/**
 * Batches per second of table time: the owner's clock ticks when it and
 * every tracker did this many since the last tick (a tracker touches each
 * key about 3 times in 16 batches), so flows expire by their state, not by
 * scheduling.
 */
const BATCHES_PER_SECOND = 16;
const WINDOW = 65535;

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

/** Counts itself in and waits (bounded) for all `n` Workers. */
function startTogether(sync: Int32Array, n: number): void {
  Atomics.add(sync, HAMMER_STARTED, 1);
  for (let i = 0; i < 2000 && Atomics.load(sync, HAMMER_STARTED) < n; i++) {
    Atomics.wait(sync, HAMMER_IDLE, 0, 5);
  }
}

/** Batches done by the slowest tracker. */
function slowestTracker(sync: Int32Array, trackers: number): number {
  let slowest = Infinity;
  for (let w = 1; w <= trackers; w++) {
    slowest = Math.min(slowest, Atomics.load(sync, HAMMER_PROGRESS + w));
  }
  return slowest;
}

function runOwner(job: HammerJob): HammerResult {
  const errors: string[] = [];
  const fail = (m: string) => {
    if (errors.length < 20) errors.push(m);
  };
  const counts: Record<string, number> = {
    created: 0,
    removed: 0,
    killed: 0,
    full: 0,
    timeout: 0,
    evicted: 0,
    killedGone: 0,
    limboSum: 0,
  };
  const live = new Map<number, number>(); // key -> id
  const keyOf = new Map<number, number>(); // id -> key
  const dying = new Set<number>(); // ids killed, not yet expired
  let settleUntil = Infinity;
  const t = new ConnTable({
    buffer: job.buffer,
    worker: job.worker,
    role: "owner",
    timeouts: HAMMER_TIMEOUTS,
    onExpire: (id, reason) => {
      const k = keyOf.get(id);
      if (k === undefined) return fail(`onExpire(${id}): no key holds it`);
      if (reason === GONE_KILLED) counts.killedGone++;
      else if (reason === GONE_TIMEOUT) {
        counts.timeout++;
      } else if (reason === GONE_EVICTED) counts.evicted++;
      if ((reason === GONE_KILLED) !== dying.has(id)) fail(`onExpire(${id}): reason ${reason}`);
      keyOf.delete(id);
      live.delete(k);
      dying.delete(id);
    },
  });
  const sync = new Int32Array(job.sync);
  const r = rng(job.seed);
  const spec = new FlowSpec();
  let now = HAMMER_T0;
  Atomics.store(sync, HAMMER_NOW, now);
  startTogether(sync, job.trackers + 1);
  const deadline = performance.now() + job.maxMs;
  // The last part of the run (a quarter, and 64 tracker batches at least) removes and kills
  // nothing: the limbo drains and the trackers bring flows to every state for the final checks.
  const settleAt = deadline - job.maxMs / 4;
  let b = 0, slowest = 0, bAtTick = 0;
  const atTick = new Int32Array(job.trackers + 1); // each tracker's batches at the last tick
  for (; b < job.batches && (performance.now() < deadline || slowest < settleUntil); b++) {
    if (settleUntil === Infinity && performance.now() >= settleAt) {
      settleUntil = slowest + 64;
    }
    const destroy = settleUntil === Infinity;
    if ((b & 255) === 0 && performance.now() > deadline + job.maxMs) break; // trackers stalled
    // Paced by the slowest tracker: churn as fast as the trackers track, whatever the scheduler does.
    for (let i = 0; i < 200 && b > slowest; i++) {
      Atomics.wait(sync, HAMMER_IDLE, 0, 0.05);
      slowest = slowestTracker(sync, job.trackers);
    }
    t.quiescent();
    for (let j = 0; j < BATCH; j++) {
      const k = r() % job.keys;
      const { orig, reply } = hammerTuples(k);
      const id = live.get(k);
      if (id === undefined) {
        spec.original(orig[0], orig[1], orig[2], orig[3], orig[4]);
        const c = t.create(spec.reply(reply[1], reply[2], reply[3], reply[4]), now);
        if (c === CREATE_CLASH) fail(`key ${k}: clash, but no live flow holds it`);
        else if (c === CREATE_FULL) counts.full++;
        else if (keyOf.has(c)) fail(`key ${k}: id ${c} of key ${keyOf.get(c)} handed out again`);
        else {
          live.set(k, c);
          keyOf.set(c, k);
          counts.created++;
        }
        continue;
      }
      const op = destroy ? r() % 64 : 2;
      if (op === 0 && !dying.has(id)) {
        if (!t.remove(id)) fail(`key ${k}: remove(${id}) refused`);
        live.delete(k);
        keyOf.delete(id);
        counts.removed++;
      } else if (op === 1 && !dying.has(id)) {
        if (!t.kill(id, now)) fail(`key ${k}: kill(${id}) refused`);
        dying.add(id);
        counts.killed++;
      } else {
        const ho = t.lookup(orig[0], orig[1], orig[2], orig[3], orig[4]);
        const hr = t.lookup(reply[0], reply[1], reply[2], reply[3], reply[4]);
        const want = dying.has(id) ? [-1, -1] : [2 * id, 2 * id + 1];
        if (ho !== want[0] || hr !== want[1]) {
          fail(`key ${k}: lookups ${ho}, ${hr}, want ${want} (flow ${id})`);
        }
      }
    }
    // A tick once every tracker did BATCHES_PER_SECOND batches in the current second.
    slowest = slowestTracker(sync, job.trackers);
    let tick = b >= bAtTick + BATCHES_PER_SECOND;
    for (let w = 1; w <= job.trackers && tick; w++) {
      tick = Atomics.load(sync, HAMMER_PROGRESS + w) >= atTick[w] + BATCHES_PER_SECOND;
    }
    if (tick) {
      for (let w = 1; w <= job.trackers; w++) atTick[w] = Atomics.load(sync, HAMMER_PROGRESS + w);
      bAtTick = b;
      Atomics.store(sync, HAMMER_NOW, ++now);
    }
    t.expire(now);
    if (t.size !== live.size) fail(`batch ${b}: size ${t.size}, ${live.size} flows live`);
    counts.limboSum += t.stats().limbo;
    if ((b & 511) === 511) {
      t.offline(); // blocked in poll for a moment: holds nothing
      Atomics.wait(sync, HAMMER_IDLE, 0, 1);
    }
  }
  // The trackers finish and go offline; then two grace periods empty the limbo.
  Atomics.store(sync, HAMMER_STOP, 1);
  for (let i = 0; i < 2000 && Atomics.load(sync, HAMMER_DONE) < job.trackers; i++) {
    Atomics.wait(sync, HAMMER_IDLE, 0, 5);
  }
  if (Atomics.load(sync, HAMMER_DONE) < job.trackers) fail("trackers did not finish");
  Atomics.store(sync, HAMMER_NOW, ++now); // a flow killed in the last second is due at the next
  for (let i = 0; i < 4; i++) {
    t.quiescent();
    t.expire(now); // killed flows leave, limbo batches move on
  }
  counts.seconds = now - HAMMER_T0;
  const census = t.slotCensus();
  const s = t.stats();
  if (t.size !== live.size) fail(`end: size ${t.size}, ${live.size} flows live`);
  return {
    errors,
    batches: b,
    counts,
    stats: {
      ...s,
      ...Object.fromEntries(Object.entries(census).map(([k, v]) => [`census_${k}`, v])),
    },
    ends: [],
  };
}

/** One end of one flow generation, as the tracker playing it knows it. */
interface End {
  generation: number;
  dir: number;
  next: number;
  synSent: boolean;
  fin: boolean;
  data: number;
}

function runTracker(job: HammerJob): HammerResult {
  const errors: string[] = [];
  const fail = (m: string) => {
    if (errors.length < 20) errors.push(m);
  };
  const t = new ConnTable({
    buffer: job.buffer,
    worker: job.worker,
    role: "tracker",
    timeouts: HAMMER_TIMEOUTS,
  });
  const sync = new Int32Array(job.sync);
  const r = rng(job.seed);
  const seg = new TcpSegment();
  const ends = new Map<number, End>(); // id -> the end this tracker plays
  const held: number[] = []; // handle, generation, key per lookup of the batch
  const counts: Record<string, number> = {
    found: 0,
    missed: 0,
    accepted: 0,
    freedRace: 0,
    raced: 0,
    established: 0,
    fins: 0,
  };
  let lockTimeouts = 0;
  startTogether(sync, job.trackers + 1);
  const deadline = performance.now() + 2 * job.maxMs; // a bound in case the owner died
  let b = 0;
  for (; b < job.batches && Atomics.load(sync, HAMMER_STOP) === 0; b++) {
    if ((b & 255) === 0 && performance.now() > deadline) break;
    t.quiescent();
    const now = Atomics.load(sync, HAMMER_NOW);
    held.length = 0;
    for (let j = 0; j < BATCH; j++) {
      const k = r() % job.keys;
      const dir = (k + job.worker) & 1; // the other tracker plays the other direction
      const { orig, reply } = hammerTuples(k);
      const tu = dir === 0 ? orig : reply;
      const h = t.lookup(tu[0], tu[1], tu[2], tu[3], tu[4]);
      if (h < 0) {
        counts.missed++;
        continue;
      }
      counts.found++;
      if ((h & 1) !== dir) fail(`key ${k}: handle ${h} for direction ${dir}`);
      const id = h >> 1, generation = t.generation(id);
      if (!t.isLive(id)) continue; // freed since the lookup: the generation read is the next one
      held.push(h, generation, k);
      let end = ends.get(id);
      if (end === undefined || end.generation !== generation) {
        end = { generation, dir, next: r() | 0, synSent: false, fin: false, data: 0 };
        ends.set(id, end);
      }
      const step = nextSegment(t, h, end, seg, r);
      if (step < 0) continue;
      const v = t.track(h, 40 + seg.payloadLen, now, seg);
      if (v === TRACK_ACCEPT) {
        counts.accepted++;
        end.next = (end.next + step) | 0;
        if (seg.flags & TCP_SYN) end.synSent = true;
        if (seg.flags & TCP_FIN) {
          end.fin = true;
          counts.fins++;
        }
        if (seg.payloadLen > 0) end.data++;
        if (t.tcpState(id) === TCP_ESTABLISHED) counts.established++;
        continue;
      }
      // The owner frees in this order: DYING (expiry, eviction, kill), the generation, status 0.
      // Read in the other order (an atomic between: V8 keeps the loads in order), status 0 and
      // an unchanged generation cannot both be seen for a flow being freed.
      const dying = (t.status(id) & STATUS_DYING) !== 0;
      Atomics.load(sync, HAMMER_NOW);
      if (t.generation(id) !== generation) {
        // Freed during `track`: refused after the lock, or (the owner's bounded spin gave up
        // on a stalled tracker) `step` ran on a state being cleared. Either way the packet is lost.
        counts.freedRace++;
      } else if (
        v === TRACK_INVALID && (dying || t.stats().lockTimeouts !== lockTimeouts)
      ) {
        counts.raced++; // dying (killed, or being freed), or the lock holder stalled
        lockTimeouts = t.stats().lockTimeouts;
      } else {
        fail(
          `key ${k} dir ${dir}: verdict ${v} for flags ${seg.flags} seq ${seg.seq} len ${seg.payloadLen} ` +
            `in state ${t.tcpState(id)}, ${JSON.stringify(end)}`,
        );
      }
    }
    // No handle is used across a reuse: until this quiescent point each held
    // slot still holds its flow (same generation), or it was freed (one more, proto 0).
    for (let i = 0; i < held.length; i += 3) {
      const id = held[i] >> 1, g = held[i + 1], k = held[i + 2];
      const now = t.generation(id);
      const { orig } = hammerTuples(k);
      if (now === g) continue;
      if (now !== ((g + 1) & 0xffffff) || t.isLive(id)) {
        fail(
          `flow ${id} of key ${k}: generation ${g} -> ${now} (live ${
            t.isLive(id)
          }) before quiescence`,
        );
      } else if (t.origSrc(id) !== orig[1] >>> 0 || t.origSrcPort(id) !== orig[2]) {
        fail(`flow ${id} of key ${k}: freed record rewritten before quiescence`);
      }
    }
    Atomics.store(sync, HAMMER_PROGRESS + job.worker, b + 1);
    if ((b & 255) === 255) {
      t.offline();
      Atomics.wait(sync, HAMMER_IDLE, 0, 1);
    }
  }
  t.offline();
  const out: HammerEnd[] = [];
  for (const [id, e] of ends) {
    if (t.generation(id) !== e.generation || !t.isLive(id) || !e.synSent) continue;
    out.push({ id, generation: e.generation, dir: e.dir, next: e.next, fin: e.fin, data: e.data });
  }
  Atomics.add(sync, HAMMER_DONE, 1);
  return { errors, batches: b, counts, stats: { ...t.stats() }, ends: out };
}

/**
 * Fills `seg` with what the end of handle `h` sends next in the flow's
 * state, within the window its peer announced; returns the sequence space
 * it takes, or -1 when this end has nothing to send now.
 */
function nextSegment(t: ConnTable, h: number, end: End, seg: TcpSegment, r: () => number): number {
  const id = h >> 1, client = (h & 1) === 0;
  const state = t.tcpState(id);
  const peer = t.tcpWindow(h ^ 1).end | 0; // what this end acknowledges
  const allowed = t.tcpWindow(h).maxEnd | 0;
  const ack = (flags: number, len = 0) => seg.set(flags | TCP_ACK, end.next, peer, WINDOW, len);
  if (client) {
    if (state === TCP_NONE) {
      seg.set(TCP_SYN, end.next, 0, WINDOW);
      return 1;
    }
    if (state === TCP_SYN_SENT || state >= TCP_TIME_WAIT || !end.synSent) return -1;
    if (state === TCP_SYN_RECV || state >= TCP_FIN_WAIT) {
      ack(0); // completes the handshake; acknowledges the server's data and FIN
      return 0;
    }
  } else {
    if (state === TCP_NONE) return -1;
    if (state === TCP_SYN_SENT) {
      seg.set(TCP_SYN | TCP_ACK, end.next, peer, WINDOW);
      return 1;
    }
    if (!end.synSent || state === TCP_SYN_RECV || state >= TCP_LAST_ACK) return -1;
    if (state === TCP_FIN_WAIT) {
      ack(0); // the client's FIN: half closed
      return 0;
    }
    if (state === TCP_CLOSE_WAIT && !end.fin) {
      ack(TCP_FIN);
      return 1;
    }
    if (state === TCP_CLOSE_WAIT) return -1;
  }
  // ESTABLISHED: data within the peer's window, now and then the client's FIN.
  if (client && end.data >= 8 && r() % 8 === 0) {
    ack(TCP_FIN);
    return 1;
  }
  const room = (allowed - end.next) | 0;
  const len = Math.min(1 + (r() % 1400), room);
  ack(0, len > 0 ? len : 0);
  return len > 0 ? len : 0;
}

self.onmessage = (e: MessageEvent<HammerJob>) => {
  let result: HammerResult;
  try {
    result = e.data.role === "owner" ? runOwner(e.data) : runTracker(e.data);
  } catch (err) {
    result = {
      errors: [String((err as Error).stack ?? err)],
      batches: 0,
      counts: {},
      stats: {},
      ends: [],
    };
    if (e.data.role === "tracker") Atomics.add(new Int32Array(e.data.sync), HAMMER_DONE, 1);
  }
  self.postMessage(result);
};
