import assert from "node:assert/strict";
import { ManualClock } from "../clock.ts";
import { LoginThrottle } from "./throttle.ts";

Deno.test("throttle: the limit-th failure in the window blocks until the oldest ages out", () => {
  const clock = new ManualClock(0);
  const t = new LoginThrottle(clock, { limit: 3, windowMs: 60_000 });
  for (let i = 0; i < 3; i++) {
    assert.equal(t.retryAfter(["k"]), 0);
    t.fail(["k"]);
    clock.advance(10_000);
  }
  // Failures at 0, 10 s, 20 s; now 30 s: blocked until 60 s.
  assert.equal(t.retryAfter(["k"]), 30);
  assert.equal(t.retryAfter(["other"]), 0);
  clock.set(60_001);
  assert.equal(t.retryAfter(["k"]), 0);
  t.fail(["k"]);
  // Failures at 10 s, 20 s, 60 s: blocked until 70 s.
  assert.equal(t.retryAfter(["k"]), 10);
  t.reset("k");
  assert.equal(t.retryAfter(["k"]), 0);
});

Deno.test("throttle: the most restricted key decides, and memory is bounded", () => {
  const clock = new ManualClock(0);
  const t = new LoginThrottle(clock, { limit: 1, windowMs: 1000, maxKeys: 100 });
  t.fail(["a"]);
  assert.equal(t.retryAfter(["b", "a"]), 1);
  for (let i = 0; i < 1000; i++) t.fail([`ip:${i}`]);
  assert.equal(t.retryAfter(["a"]), 0); // evicted as the least recently failed
  assert.equal(t.retryAfter(["ip:999"]), 1);
});
