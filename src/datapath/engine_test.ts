/**
 * The run loop hands control-plane messages to the event loop while it
 * spins on the device: a Worker whose loop never takes its periodic yield
 * still answers every message (the posted/handled counters of
 * `EngineOptions.control`); worker 0 writes what trackers handed it through
 * the queue the kernel should steer the flow to.
 */
import assert from "node:assert/strict";
import { MemoryDevice } from "../device/memory.ts";
import { buildIpv6Tcp } from "../packet/ipv6_build.ts";
import { buildTcp } from "../packet/mod.ts";
import { Engine } from "./engine.ts";
import { HANDOFF_PACKET, HandoffRing } from "./handoff.ts";

Deno.test("engine: every message posted to a busy loop is handled without the periodic yield", async () => {
  const worker = new Worker(new URL("./_engine_worker.ts", import.meta.url), { type: "module" });
  const control = new Int32Array(new SharedArrayBuffer(8));
  const replies: ((d: Record<string, unknown>) => void)[] = [];
  worker.onmessage = (e) => replies.shift()?.(e.data);
  const next = (ms: number) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no reply within ${ms} ms`)), ms);
      replies.push((d) => {
        clearTimeout(t);
        resolve(d);
      });
    });
  const send = (m: unknown) => {
    worker.postMessage(m);
    Atomics.add(control, 0, 1);
  };
  try {
    let reply = next(10_000);
    send({ control: control.buffer });
    assert.deepEqual(await reply, { ready: true });
    for (let n = 0; n < 50; n++) {
      reply = next(10_000);
      send({ n });
      assert.deepEqual(await reply, { n });
    }
    reply = next(10_000);
    send({ stop: true });
    assert.deepEqual(await reply, { stopped: true });
    assert.deepEqual(Atomics.load(control, 0), Atomics.load(control, 1));
  } finally {
    worker.terminate();
  }
});

Deno.test("engine: worker 0 writes a handed-off IPv4 packet through the tracker's queue, an IPv6 one through its own", async () => {
  const own = new MemoryDevice({ name: "q0" }), tracker = new MemoryDevice({ name: "q1" });
  const ring = new HandoffRing(HandoffRing.allocate(1 << 16));
  const v4 = buildTcp({ src: "203.0.113.10", dst: "192.0.2.12", srcPort: 40000, dstPort: 80 });
  const v6 = buildIpv6Tcp({
    src: "2001:db8:203::10",
    dst: "2001:db8:192::12",
    srcPort: 40000,
    dstPort: 80,
  });
  for (const p of [v4, v6, v4]) assert.ok(ring.push(HANDOFF_PACKET, 0, 0, p, 0, p.length));
  let handled = 0;
  const engine = new Engine(own, {
    process: () => true,
    housekeeping: () => {},
    countWriteError: () => assert.fail("a write was refused"),
    processHandoff: () => ++handled > 0,
  }, { handoffIn: [{ ring, writer: tracker }], waitMs: 5, yieldMs: 5 });
  const running = engine.run();
  for (let k = 0; k < 200 && handled < 3; k++) await new Promise((r) => setTimeout(r, 5));
  engine.stop();
  await running;
  assert.equal(handled, 3);
  assert.deepEqual(tracker.takeWritten(), [v4, v4], "IPv4 settles on the tracker");
  assert.deepEqual(own.takeWritten(), [v6], "IPv6 is pulled to queue 0, the only one judging it");
});
