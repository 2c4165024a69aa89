import assert from "node:assert/strict";
import { TimerWheel } from "./timer_wheel.ts";

/** A wheel over `n` ids plus a log of due ids. */
function setup(n: number, slots = 8, start = 1000) {
  const expiresAt = new Uint32Array(n);
  const wheel = new TimerWheel(n, slots, expiresAt);
  wheel.start(start);
  const due: number[] = [];
  const onDue = (id: number) => due.push(id);
  const at = (id: number, t: number) => {
    expiresAt[id] = t;
    wheel.schedule(id);
  };
  return { expiresAt, wheel, due, onDue, at };
}

Deno.test("ids fire in the second their expiry passes", () => {
  const { wheel, due, onDue, at } = setup(4);
  at(0, 1003);
  at(1, 1001);
  at(2, 1003);
  wheel.advance(1000, 1e9, onDue);
  assert.deepEqual(due, []);
  wheel.advance(1002, 1e9, onDue);
  assert.deepEqual(due, [1]);
  wheel.advance(1003, 1e9, onDue);
  assert.deepEqual(due.sort(), [0, 1, 2]);
  assert.equal(wheel.isScheduled(0), false);
});

Deno.test("expiries beyond one revolution wait for their round", () => {
  const { wheel, due, onDue, at } = setup(2, 8);
  at(0, 1000 + 8 * 5 + 3); // five revolutions ahead
  for (let t = 1000; t < 1043; t++) wheel.advance(t, 1e9, onDue);
  assert.deepEqual(due, []);
  wheel.advance(1043, 1e9, onDue);
  assert.deepEqual(due, [0]);
});

Deno.test("a later expiry is rescheduled lazily when its old slot fires", () => {
  const { wheel, expiresAt, due, onDue, at } = setup(2);
  at(0, 1005);
  expiresAt[0] = 1020;
  wheel.refresh(0);
  wheel.advance(1005, 1e9, onDue);
  assert.deepEqual(due, []);
  assert.equal(wheel.isScheduled(0), true);
  wheel.advance(1019, 1e9, onDue);
  assert.deepEqual(due, []);
  wheel.advance(1020, 1e9, onDue);
  assert.deepEqual(due, [0]);
});

Deno.test("an earlier expiry moves the entry at once", () => {
  const { wheel, expiresAt, due, onDue, at } = setup(2);
  at(0, 1500);
  expiresAt[0] = 1002;
  wheel.refresh(0);
  wheel.advance(1002, 1e9, onDue);
  assert.deepEqual(due, [0]);
});

Deno.test("cancel removes an entry; past expiries fire at the next advance", () => {
  const { wheel, due, onDue, at } = setup(3);
  at(0, 1001);
  at(1, 900); // already in the past
  wheel.cancel(0);
  wheel.cancel(0); // twice is harmless
  wheel.advance(1001, 1e9, onDue);
  assert.deepEqual(due, [1]);
});

Deno.test("a long pause is caught up with one revolution", () => {
  const { wheel, due, onDue, at } = setup(100, 8);
  for (let i = 0; i < 100; i++) at(i, 1000 + i * 3);
  const work = wheel.advance(1000 + 10_000, 1e9, onDue);
  assert.equal(due.length, 100);
  assert.ok(work <= 8 + 100, `work ${work}`);
  assert.equal(wheel.cursor, 11001);
});

Deno.test("the budget bounds work and the next call resumes mid-slot", () => {
  const { wheel, due, onDue, at } = setup(1000, 8);
  for (let i = 0; i < 1000; i++) at(i, i < 500 ? 1001 : 1001 + 8 * 100); // same slot, two rounds
  const seen: number[] = [];
  for (let calls = 0; calls < 100 && due.length < 500; calls++) {
    const work = wheel.advance(1001, 50, onDue);
    assert.ok(work <= 50);
    seen.push(work);
  }
  assert.equal(due.length, 500);
  assert.ok(seen.length >= 10 && seen.length <= 25, `calls ${seen.length}`);
});

Deno.test("onDue may cancel the entry the wheel would visit next", () => {
  const { wheel, due, at } = setup(4);
  for (let i = 0; i < 4; i++) at(i, 1001);
  // The slot's list runs 3, 2, 1, 0 (newest first); each callback cancels the next one.
  wheel.advance(1001, 1e9, (id) => {
    due.push(id);
    if (id > 0) wheel.cancel(id - 1);
  });
  assert.deepEqual(due, [3, 1]);
  for (let i = 0; i < 4; i++) assert.equal(wheel.isScheduled(i), false);
});

Deno.test("slots must be a power of two", () => {
  assert.throws(() => new TimerWheel(1, 1000, new Uint32Array(1)), /not a power of two/);
});

Deno.test("an entry due now, scheduled while a slot is half done, is not lost", () => {
  const { wheel, due, onDue, at } = setup(10, 8);
  for (let i = 0; i < 5; i++) at(i, 1001);
  wheel.advance(1001, 3, onDue); // stops inside slot 1001
  assert.ok(due.length < 5);
  at(9, 1001); // as kill() does: expire "now"
  wheel.advance(1002, 1e9, onDue);
  assert.deepEqual(due.sort((a, b) => a - b), [0, 1, 2, 3, 4, 9]);
});

Deno.test("a doomed id is due at its slot even when its expiry moved later (a kill racing a refresh)", () => {
  const expiresAt = new Uint32Array(3);
  const doomed = new Uint8Array(3);
  const wheel = new TimerWheel(3, 8, expiresAt, {
    heads: new Int32Array(8),
    next: new Int32Array(3),
    prev: new Int32Array(3),
    at: new Uint32Array(3),
    fresh: true,
    doomed,
    doomBit: 0x04,
  });
  wheel.start(1000);
  const due: number[] = [];
  for (const id of [0, 1, 2]) {
    expiresAt[id] = 1002;
    wheel.schedule(id);
  }
  expiresAt[0] = expiresAt[1] = 1500; // refreshed after the kill's expiry was set
  doomed[0] = 0x04; // killed
  doomed[2] = 0x01; // another bit: no effect
  wheel.advance(1002, 1e9, (id) => due.push(id));
  assert.deepEqual(due.sort(), [0, 2]);
  assert.equal(wheel.isScheduled(1), true, "the refreshed, live id moved on");
});
