/**
 * The run loop hands control-plane messages to the event loop while it
 * spins on the device: a Worker whose loop never takes its periodic yield
 * still answers every message (the posted/handled counters of
 * `EngineOptions.control`).
 */
import assert from "node:assert/strict";

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
