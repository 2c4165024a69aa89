import assert from "node:assert/strict";
import { IpSlotMap } from "./ip_slot_map.ts";

function order(m: IpSlotMap): number[] {
  const out: number[] = [];
  for (let s = m.oldest(); s !== -1; s = m.newer(s)) out.push(m.keyOf(s));
  return out;
}

Deno.test("IpSlotMap agrees with a Map under random inserts and deletes", () => {
  const m = new IpSlotMap(3000, 16);
  const ref = new Map<number, number>();
  let x = 12345;
  const rnd = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0);
  for (let i = 0; i < 200_000; i++) {
    // A small key space forces collisions, probe runs and slot reuse.
    const ip = (0xc6336400 + (rnd() % 5000)) >>> 0;
    const slot = m.find(ip);
    assert.equal(slot !== -1, ref.has(ip));
    if (slot !== -1) {
      assert.equal(ref.get(ip), slot);
      if (rnd() % 2 === 0) {
        m.delete(slot);
        ref.delete(ip);
      }
    } else if (!m.full) {
      const s = m.insert(ip);
      assert.ok(s >= 0 && s < m.capacity);
      ref.set(ip, s);
    } else {
      assert.equal(m.insert(ip), -1);
    }
    assert.equal(m.size, ref.size);
  }
  assert.deepEqual(order(m), [...ref.keys()]);
});

Deno.test("IpSlotMap keeps insertion order and moves an entry to the newest end", () => {
  const m = new IpSlotMap(4);
  const a = m.insert(1);
  m.insert(0xffffffff);
  m.insert(3);
  assert.deepEqual(order(m), [1, 0xffffffff, 3]);
  m.moveToNewest(a);
  assert.deepEqual(order(m), [0xffffffff, 3, 1]);
  m.delete(m.find(3));
  assert.deepEqual(order(m), [0xffffffff, 1]);
  assert.equal(m.find(0xffffffff) >= 0, true);
  assert.equal(m.find(-1), m.find(0xffffffff)); // signed and unsigned spellings agree
  m.clear();
  assert.equal(m.size, 0);
  assert.equal(m.oldest(), -1);
  assert.equal(m.find(1), -1);
});

Deno.test("IpSlotMap refuses a size that is not a positive integer", () => {
  assert.throws(() => new IpSlotMap(0), /size 0 is not a positive integer/);
});
