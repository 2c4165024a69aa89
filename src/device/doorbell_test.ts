import assert from "node:assert/strict";
import { Doorbell } from "./doorbell.ts";
import { poll, POLLIN } from "./libc.ts";

/** A pollfd for `fd`, to see readability without draining. */
function readable(fd: number): boolean {
  const pfd = new Uint8Array(8);
  const v = new DataView(pfd.buffer);
  v.setInt32(0, fd, true);
  v.setInt16(4, POLLIN, true);
  return poll(pfd, 1n, 0) > 0;
}

Deno.test("a doorbell is readable once rung, until drained; many rings wake once", () => {
  const bell = Doorbell.open();
  try {
    assert.equal(readable(bell.fd), false);
    assert.equal(bell.wait(0), false, "an unrung bell does not wake");
    bell.drain(); // unrung: EAGAIN, ignored
    bell.ring();
    assert.equal(readable(bell.fd), true);
    assert.equal(bell.wait(0), true, "a ring before the wait is kept");
    assert.equal(readable(bell.fd), false, "wait drains it");
    for (let i = 0; i < 1000; i++) bell.ring();
    assert.equal(bell.wait(0), true);
    assert.equal(bell.wait(0), false, "a thousand rings wake one wait");
  } finally {
    bell.close();
  }
});

Deno.test("a mapped doorbell rings the opener's fd and leaves it open when closed", () => {
  const bell = Doorbell.open();
  const copy = Doorbell.fromFd(bell.fd);
  try {
    copy.ring();
    assert.equal(bell.wait(0), true);
    copy.close();
    copy.ring(); // a closed copy does nothing
    assert.equal(bell.wait(0), false);
    bell.ring();
    assert.equal(readable(bell.fd), true, "the copy's close left the fd open");
    bell.drain();
  } finally {
    bell.close();
  }
  assert.throws(() => Doorbell.fromFd(-1), /Cannot map doorbell fd -1/);
});

Deno.test("a doorbell rung by another Worker wakes a blocking wait early", async () => {
  const bell = Doorbell.open();
  const w = new Worker(new URL("./_doorbell_worker.ts", import.meta.url).href, { type: "module" });
  try {
    const ready = new Promise<void>((resolve, reject) => {
      w.onmessage = () => resolve();
      w.onerror = (e) => reject(new Error(e.message));
    });
    w.postMessage({ fd: bell.fd, delayMs: 50 });
    await ready; // the Worker rings about 50 ms after this
    // A timeout would return false: true means the ring, not the clock, ended the 5 s wait.
    assert.equal(bell.wait(5000), true);
    assert.equal(bell.wait(0), false);
  } finally {
    w.terminate();
    bell.close();
  }
});
