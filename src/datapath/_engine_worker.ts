/**
 * A Worker of `engine_test.ts`: an Engine over an idle in-memory device, with
 * the once-a-while yield pushed out of reach, so messages from the test get
 * handled only through the posted/handled counters. Each message is answered
 * with its own number; "stop" ends the loop.
 */
/// <reference lib="deno.worker" />
import { MemoryDevice } from "../device/memory.ts";
import { Engine } from "./engine.ts";

let control: Int32Array | null = null;
let engine: Engine | null = null;

self.onmessage = (e: MessageEvent<{ control?: SharedArrayBuffer; n?: number; stop?: true }>) => {
  try {
    if (e.data.control) {
      control = new Int32Array(e.data.control);
      engine = new Engine(new MemoryDevice(), {
        process: () => false,
        housekeeping: () => {},
        countWriteError: () => {},
      }, { control, yieldMs: 3_600_000, waitMs: 2 });
      engine.run().then(() => self.postMessage({ stopped: true }));
      self.postMessage({ ready: true });
    } else if (e.data.stop) {
      engine?.stop();
    } else {
      self.postMessage({ n: e.data.n });
    }
  } finally {
    if (control !== null) Atomics.add(control, 1, 1);
  }
};
