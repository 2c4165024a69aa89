import assert from "node:assert/strict";
import { Doorbell } from "../device/mod.ts";
import {
  HANDOFF_MAX_PACKET,
  HANDOFF_PACKET,
  HANDOFF_REOPEN,
  HANDOFF_TOUCH,
  HandoffRing,
  sleepAll,
  wakeAll,
} from "./handoff.ts";
import { type HandoffJob, type HandoffResult, patternByte } from "./_handoff_job.ts";

const OFF = 16;

/** A packet buffer holding packet `seq` of `len` bytes at OFF, with `hr` headroom bytes before it. */
function packet(seq: number, len: number, hr: number): Uint8Array {
  const b = new Uint8Array(OFF + len + 8);
  for (let j = -hr; j < len; j++) b[OFF + j] = patternByte(seq, j);
  return b;
}

/** Pops one record into a fresh buffer and checks it is packet `seq` of `len` bytes. */
function popChecked(ring: HandoffRing, seq: number, len: number): void {
  const dst = new Uint8Array(OFF + HANDOFF_MAX_PACKET);
  assert.equal(ring.pop(dst, OFF), len, `packet ${seq}: length`);
  assert.equal(ring.arg, seq);
  for (let j = -ring.headroom; j < len; j++) {
    if (dst[OFF + j] !== patternByte(seq, j)) assert.fail(`packet ${seq}: byte ${j} differs`);
  }
}

Deno.test("a record carries kind, argument, value, checksum state, headroom and bytes", () => {
  const ring = new HandoffRing(HandoffRing.allocate(4096, 10));
  assert.equal(ring.capacity, 4096);
  assert.equal(ring.headroom, 10);
  const dst = new Uint8Array(OFF + 2000);
  assert.equal(ring.pop(dst, OFF), -1, "empty");
  const pkt = packet(7, 1500, 10);
  assert.equal(ring.push(HANDOFF_PACKET, 7, 1, pkt, OFF, 1500, 123), true);
  // A touch: an address above 2^31, a byte count near 2^32, no packet bytes.
  assert.equal(ring.push(HANDOFF_TOUCH, 0xcb00710a, 0, pkt, 0, 0, 0xfffffff0), true);
  assert.equal(ring.push(HANDOFF_REOPEN, 42, 2, pkt, OFF, 40, 9), true);
  assert.equal(ring.note(HANDOFF_TOUCH, 1, 2 ** 40), true, "value saturates");
  assert.equal(
    ring.stats().used,
    1528 + 16 + 72 + 16,
    "records are 16 + headroom + length, 8-aligned",
  );
  assert.equal(ring.pop(dst, OFF), 1500);
  assert.deepEqual([ring.kind, ring.arg, ring.csum, ring.value], [HANDOFF_PACKET, 7, 1, 123]);
  assert.deepEqual(dst.subarray(OFF - 10, OFF + 1500), pkt.subarray(OFF - 10, OFF + 1500));
  dst.fill(0xee);
  assert.equal(ring.pop(dst, OFF), 0);
  assert.deepEqual([ring.kind, ring.arg, ring.value], [HANDOFF_TOUCH, 0xcb00710a, 0xfffffff0]);
  assert.ok(dst.every((b) => b === 0xee), "a record without bytes writes nothing");
  assert.equal(ring.pop(dst, OFF), 40);
  assert.deepEqual([ring.kind, ring.arg, ring.csum, ring.value], [HANDOFF_REOPEN, 42, 2, 9]);
  assert.equal(ring.pop(dst, OFF), 0);
  assert.equal(ring.value, 0xffffffff);
  assert.equal(ring.pop(dst, OFF), -1);
  assert.deepEqual(ring.stats(), {
    pushed: 4,
    dropped: 0,
    rings: 0,
    popped: 4,
    unfit: 0,
    used: 0,
    capacity: 4096,
  });
});

Deno.test("records wrap around the end behind a skip record, intact", () => {
  const ring = new HandoffRing(HandoffRing.allocate(4096, 10));
  let seq = 0, next = 0;
  const sizes: number[] = [];
  // Sizes that leave every kind of remainder before the end, over about 200 laps; at most three
  // records of <= 928 bytes are in the ring.
  for (let round = 0; round < 500; round++) {
    for (let k = 0; k < 2; k++, seq++) {
      const len = 1 + ((seq * 389) % 900);
      assert.equal(ring.push(HANDOFF_PACKET, seq, 0, packet(seq, len, 10), OFF, len), true);
      sizes.push(len);
    }
    while (next < seq - 1) popChecked(ring, next, sizes[next++]);
  }
  while (next < seq) popChecked(ring, next, sizes[next++]);
  assert.equal(ring.stats().used, 0);
  assert.equal(ring.stats().dropped, 0);
});

Deno.test("a full ring refuses and counts pushes, and what it holds stays intact", () => {
  const ring = new HandoffRing(HandoffRing.allocate(8192, 0));
  // 16 records of 16 + 496 bytes fill 8192 exactly.
  for (let seq = 0; seq < 16; seq++) {
    assert.equal(ring.push(HANDOFF_PACKET, seq, 0, packet(seq, 496, 0), OFF, 496), true);
  }
  assert.equal(ring.stats().used, 8192);
  assert.equal(ring.push(HANDOFF_PACKET, 99, 0, packet(99, 100, 0), OFF, 100), false);
  assert.equal(ring.push(HANDOFF_TOUCH, 1, 0, new Uint8Array(0), 0, 0), false);
  assert.equal(ring.stats().dropped, 2);
  popChecked(ring, 0, 496);
  assert.equal(ring.push(HANDOFF_PACKET, 16, 0, packet(16, 100, 0), OFF, 100), true, "room again");
  assert.equal(ring.push(HANDOFF_TOUCH, 17, 0, new Uint8Array(0), 0, 0), true);
  // 512 - 120 - 16 = 376 bytes free, but only at the start: the next 400-byte record is refused.
  assert.equal(ring.push(HANDOFF_PACKET, 18, 0, packet(18, 400, 0), OFF, 400), false);
  for (let s = 1; s < 16; s++) popChecked(ring, s, 496);
  popChecked(ring, 16, 100);
  const dst = new Uint8Array(OFF + 200);
  assert.equal(ring.pop(dst, OFF), 0);
  assert.equal(ring.arg, 17);
  assert.equal(ring.pop(dst, OFF), -1);
  assert.equal(ring.stats().dropped, 3);
});

Deno.test("push refuses malformed records and pop discards what the destination cannot hold", () => {
  const ring = new HandoffRing(HandoffRing.allocate(1024, 10));
  const pkt = packet(1, 100, 10);
  assert.equal(ring.push(0, 1, 0, pkt, OFF, 10), false, "kind 0");
  assert.equal(ring.push(255, 1, 0, pkt, OFF, 10), false, "kind 255 is the skip record");
  assert.equal(ring.push(HANDOFF_PACKET, 1, 0, pkt, 5, 10), false, "no room for the headroom");
  assert.equal(ring.push(HANDOFF_PACKET, 1, 0, pkt, OFF, 200), false, "past the buffer");
  assert.equal(ring.push(HANDOFF_PACKET, 1, 0, pkt, OFF, -1), false);
  assert.equal(ring.push(HANDOFF_PACKET, 1, 0, new Uint8Array(70000), OFF, 65536), false);
  assert.equal(ring.push(HANDOFF_PACKET, 1, 0, new Uint8Array(2000), OFF, 1500), false, "> ring");
  assert.equal(ring.stats().dropped, 7);
  assert.equal(ring.push(HANDOFF_PACKET, 1, 0, pkt, OFF, 100), true);
  assert.equal(ring.push(HANDOFF_PACKET, 2, 0, packet(2, 20, 10), OFF, 20), true);
  assert.equal(ring.pop(new Uint8Array(OFF + 50), OFF), 20, "the 100-byte record does not fit");
  assert.equal(ring.arg, 2);
  assert.equal(ring.stats().unfit, 1);
  assert.throws(() => new HandoffRing(new SharedArrayBuffer(4096)), /not made by allocate/);
  assert.throws(() => HandoffRing.allocate(1 << 29), /at most 2\^28/);
});

Deno.test("positions keep working across the 32-bit wrap", () => {
  const buffer = HandoffRing.allocate(2048, 0);
  const ctl = new Int32Array(buffer);
  ctl[0] = ctl[16] = 0x7fffffff - 600; // head and tail just below 2^31
  const ring = new HandoffRing(buffer);
  let next = 0;
  for (let seq = 0; seq < 100; seq++) {
    assert.equal(ring.push(HANDOFF_PACKET, seq, 0, packet(seq, 300, 0), OFF, 300), true);
    if (seq % 2 === 1) { while (next <= seq) popChecked(ring, next++, 300); }
  }
  assert.ok(ctl[0] < 0, "head went past 2^31");
  assert.equal(ring.stats().used, 0);
});

Deno.test("sleep, flush and the doorbell: a ring only when the consumer sleeps, once per sleep", () => {
  const bell = Doorbell.open();
  try {
    const ring = new HandoffRing(HandoffRing.allocate(4096, 0));
    const pkt = packet(0, 64, 0);
    ring.flush(bell);
    assert.equal(bell.wait(0), false, "nothing pushed: no ring");
    ring.push(HANDOFF_PACKET, 0, 0, pkt, OFF, 64);
    ring.flush(bell);
    assert.equal(bell.wait(0), false, "the consumer is awake: no ring");
    assert.equal(ring.sleep(), false, "records waiting: the consumer may not sleep");
    ring.pop(new Uint8Array(OFF + 64), OFF);
    assert.equal(ring.sleep(), true);
    ring.push(HANDOFF_PACKET, 1, 0, pkt, OFF, 64);
    ring.flush(bell);
    ring.push(HANDOFF_PACKET, 2, 0, pkt, OFF, 64);
    ring.flush(bell);
    assert.equal(bell.wait(0), true, "asleep: rung");
    assert.equal(ring.stats().rings, 1, "the second flush found the consumer woken");
    ring.wake();
    // sleepAll is all or nothing.
    const other = new HandoffRing(HandoffRing.allocate(4096, 0));
    assert.equal(sleepAll([other, ring]), false, "ring holds records");
    other.push(HANDOFF_PACKET, 0, 0, pkt, OFF, 64);
    other.flush(bell);
    assert.equal(bell.wait(0), false, "sleepAll woke the first ring again");
    other.pop(new Uint8Array(OFF + 64), OFF);
    ring.pop(new Uint8Array(OFF + 64), OFF);
    ring.pop(new Uint8Array(OFF + 64), OFF);
    assert.equal(sleepAll([other, ring]), true);
    wakeAll([other, ring]);
    ring.push(HANDOFF_PACKET, 3, 0, pkt, OFF, 64);
    ring.flush(bell);
    assert.equal(bell.wait(0), false, "woken: no ring");
  } finally {
    bell.close();
  }
});

/** Runs a producer and a consumer Worker on one ring (bounded in time) and returns both results. */
async function pair(
  ring: HandoffRing,
  bell: Doorbell | null,
  job: Omit<HandoffJob, "role" | "ring" | "bellFd" | "sync">,
  roles: [HandoffJob["role"], HandoffJob["role"]] = ["produce", "consume"],
): Promise<[HandoffResult, HandoffResult]> {
  const sync = new SharedArrayBuffer(8);
  const url = new URL("./_handoff_worker.ts", import.meta.url).href;
  const workers = [0, 1].map(() => new Worker(url, { type: "module" }));
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const results = workers.map((w) =>
      new Promise<HandoffResult>((resolve, reject) => {
        w.onmessage = (e: MessageEvent<HandoffResult>) => resolve(e.data);
        w.onerror = (e) => reject(new Error(e.message));
      })
    );
    roles.forEach((role, i) =>
      workers[i].postMessage(
        { ...job, role, ring: ring.buffer, bellFd: bell?.fd ?? -1, sync } satisfies HandoffJob,
      )
    );
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("workers did not finish in 60 s")), 60_000);
    });
    const [p, c] = await Promise.race([Promise.all(results), timeout]);
    return [p, c];
  } finally {
    clearTimeout(timer);
    for (const w of workers) w.terminate();
  }
}

Deno.test("two Workers: packets of 1..65535 bytes arrive intact, in order, once, through a full ring", async () => {
  const bell = Doorbell.open();
  try {
    const ring = new HandoffRing(HandoffRing.allocate(256 * 1024, 10));
    const count = 1500;
    const [p, c] = await pair(ring, bell, {
      seed: 11,
      count,
      maxSize: HANDOFF_MAX_PACKET,
      burst: 16,
      pauseUs: 0,
      maxMs: 30_000,
    });
    assert.deepEqual(c.errors, []);
    assert.equal(p.done, count);
    assert.equal(c.done, count, "every packet arrived");
    const s = ring.stats();
    assert.equal(s.popped, count, "none doubled");
    assert.equal(s.pushed, count);
    assert.ok(p.refused > 0, "the ring was full at times");
    assert.equal(s.dropped, p.refused, "every refusal counted");
    assert.equal(s.used, 0);
    console.log(`  ${count} packets, ${p.refused} refused pushes, ${c.sleeps} consumer sleeps`);
  } finally {
    bell.close();
  }
});

Deno.test("two Workers: a consumer sleeping on the doorbell never misses a burst", async () => {
  const bell = Doorbell.open();
  try {
    const ring = new HandoffRing(HandoffRing.allocate(64 * 1024, 10));
    const count = 30_000;
    const [p, c] = await pair(ring, bell, {
      seed: 5,
      count,
      maxSize: 200,
      burst: 8,
      pauseUs: 300,
      maxMs: 30_000,
    });
    assert.deepEqual(c.errors, []);
    assert.equal(p.done, count);
    assert.equal(c.done, count);
    assert.equal(c.lostWakeups, 0, "no sleep outlived a waiting record");
    assert.ok(c.sleeps > 0 && ring.stats().rings > 0, "the consumer slept and was rung awake");
    console.log(`  ${c.sleeps} sleeps, ${ring.stats().rings} rings for ${count} packets`);
  } finally {
    bell.close();
  }
});

Deno.test("three producers and worker 0's loop: every ring drained in order, one doorbell, no lost wakeup", async () => {
  const bell = Doorbell.open();
  const url = new URL("./_handoff_worker.ts", import.meta.url).href;
  const rings = [0, 1, 2].map(() => new HandoffRing(HandoffRing.allocate(32 * 1024, 10)));
  const workers = [0, 1, 2, 3].map(() => new Worker(url, { type: "module" }));
  const sync = new SharedArrayBuffer(8);
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const results = workers.map((w) =>
      new Promise<HandoffResult>((resolve, reject) => {
        w.onmessage = (e: MessageEvent<HandoffResult>) => resolve(e.data);
        w.onerror = (e) => reject(new Error(e.message));
      })
    );
    const count = 4000;
    const base = {
      bellFd: bell.fd,
      sync,
      count,
      maxSize: 300,
      burst: 6,
      maxMs: 30_000,
      workers: 4,
    };
    rings.forEach((ring, k) =>
      workers[k].postMessage(
        {
          ...base,
          role: "produce",
          ring: ring.buffer,
          seed: 20 + k,
          pauseUs: 200 * (k + 1),
        } satisfies HandoffJob,
      )
    );
    workers[3].postMessage(
      {
        ...base,
        role: "consumeAll",
        ring: rings[0].buffer,
        rings: rings.map((r) => r.buffer),
        seed: 0,
        pauseUs: 0,
      } satisfies HandoffJob,
    );
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("workers did not finish in 60 s")), 60_000);
    });
    const all = await Promise.race([Promise.all(results), timeout]);
    const c = all[3];
    assert.deepEqual(c.errors, []);
    assert.equal(c.done, 3 * count, "every record of every ring arrived");
    assert.equal(c.lostWakeups, 0);
    assert.ok(c.sleeps > 0);
    for (const r of rings) assert.equal(r.stats().popped, count);
    const rung = rings.map((r) => r.stats().rings);
    console.log(`  ${c.sleeps} sleeps; rings rung per producer: ${rung.join(", ")}`);
  } finally {
    clearTimeout(timer);
    for (const w of workers) w.terminate();
    bell.close();
  }
});

Deno.test("two Workers: latency from push to pop across a doorbell wakeup (printed)", async () => {
  const bell = Doorbell.open();
  try {
    const ring = new HandoffRing(HandoffRing.allocate(64 * 1024, 0));
    const [p, c] = await pair(ring, bell, {
      seed: 1,
      count: 300,
      maxSize: 64,
      burst: 1,
      pauseUs: 1000,
      maxMs: 20_000,
    }, ["stamp", "time"]);
    assert.equal(c.done, p.done);
    const l = c.latenciesUs!;
    const at = (q: number) => l[Math.min(l.length - 1, Math.floor(q * l.length))].toFixed(0);
    console.log(
      `  ${l.length} records 1 ms apart, ${c.sleeps} sleeps: median ${at(0.5)} us, ` +
        `p90 ${at(0.9)} us, p99 ${at(0.99)} us`,
    );
  } finally {
    bell.close();
  }
});

Deno.test("handoff cost per record, push and pop (printed, not asserted)", () => {
  const ring = new HandoffRing(HandoffRing.allocate(1 << 20, 10));
  const src = packet(1, HANDOFF_MAX_PACKET, 10);
  const dst = new Uint8Array(OFF + HANDOFF_MAX_PACKET);
  for (const len of [0, 64, 1500, 65535]) {
    const n = len > 10_000 ? 2000 : 100_000;
    for (let i = 0; i < 2000; i++) {
      ring.push(HANDOFF_PACKET, i, 0, src, OFF, len);
      ring.pop(dst, OFF);
    }
    const t = performance.now();
    for (let i = 0; i < n; i++) {
      ring.push(HANDOFF_PACKET, i, 0, src, OFF, len);
      ring.pop(dst, OFF);
    }
    console.log(`  ${len} bytes: ${((performance.now() - t) * 1e6 / n).toFixed(0)} ns push + pop`);
  }
});
