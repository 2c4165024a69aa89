/**
 * A Worker of `doorbell_test.ts`: maps the bell whose fd it is posted, says
 * it is ready, sleeps `delayMs` and rings it once.
 */
/// <reference lib="deno.worker" />
import { Doorbell } from "./doorbell.ts";

self.onmessage = (e: MessageEvent<{ fd: number; delayMs: number }>) => {
  const bell = Doorbell.fromFd(e.data.fd);
  self.postMessage("ready");
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, e.data.delayMs);
  bell.ring();
  bell.close();
};
