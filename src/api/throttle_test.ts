import assert from "node:assert/strict";
import { ManualClock } from "../clock.ts";
import { LoginThrottle, SignInThrottle, sourceKey } from "./throttle.ts";

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

Deno.test("sign-in throttle: per (user, source) and per source; no user-wide lock", () => {
  const clock = new ManualClock(0);
  const t = new SignInThrottle(clock, { limit: 2, sourceLimit: 3, windowMs: 60_000 });
  for (let i = 0; i < 100; i++) t.fail("admin", `198.51.100.${i}`);
  assert.equal(t.retryAfter("admin", "192.0.2.50"), 0, "the admin's own place is never locked");
  t.fail("admin", "192.0.2.9");
  assert.equal(t.retryAfter("admin", "192.0.2.9"), 0);
  t.fail("admin", "192.0.2.9");
  assert.equal(t.retryAfter("admin", "192.0.2.9"), 60, "2 per (user, source)");
  assert.equal(t.retryAfter("bob", "192.0.2.9"), 0);
  t.fail("bob", "192.0.2.9");
  assert.equal(t.retryAfter("carol", "192.0.2.9"), 60, "3 per source, any user");
  t.succeeded("admin", "192.0.2.9");
  assert.equal(t.retryAfter("admin", "192.0.2.9"), 60, "a success does not lift the source limit");
  clock.advance(60_001);
  assert.equal(t.retryAfter("carol", "192.0.2.9"), 0);
});

Deno.test("sign-in throttle: an IPv6 source is its /64, a mapped IPv4 is the IPv4", () => {
  assert.equal(sourceKey("203.0.113.7"), "203.0.113.7");
  assert.equal(sourceKey("::ffff:203.0.113.7"), "203.0.113.7");
  assert.equal(sourceKey("2001:db8:0:1::5"), "2001:db8:0:1::/64");
  assert.equal(sourceKey("2001:DB8:0000:1:aaaa:bbbb:cccc:dddd"), "2001:db8:0:1::/64");
  assert.equal(sourceKey("2001:db8::1"), "2001:db8:0:0::/64");
  const t = new SignInThrottle(new ManualClock(0), { limit: 1, sourceLimit: 1 });
  t.fail("admin", "2001:db8:0:1::5");
  assert.ok(t.retryAfter("admin", "2001:db8:0:1::6") > 0);
  assert.equal(t.retryAfter("admin", "2001:db8:0:2::5"), 0);
});
