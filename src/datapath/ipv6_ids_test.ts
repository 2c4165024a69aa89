import assert from "node:assert/strict";
import { formatIpv4, parseIpv6 } from "../packet/mod.ts";
import { idCapacityFor, Ipv6Ids, isIpv6Id, RECLAIM_SCAN } from "./ipv6_ids.ts";

function bytes(a: string): Uint8Array {
  const w = parseIpv6(a)!, b = new Uint8Array(16);
  for (let i = 0; i < 4; i++) new DataView(b.buffer).setUint32(4 * i, w[i]);
  return b;
}

function intern(ids: Ipv6Ids, a: string, plen = 128, now = 100): number {
  return ids.intern(bytes(a), 0, plen, now);
}

Deno.test("ids are class E, stable for a key, distinct per key and prefix length", () => {
  const ids = new Ipv6Ids(1024);
  const a = intern(ids, "2001:db8:1:2::10");
  assert.ok(isIpv6Id(a), formatIpv4(a));
  assert.equal(intern(ids, "2001:db8:1:2::10"), a);
  assert.equal(ids.find(bytes("2001:db8:1:2::10"), 0, 128, 100), a);
  const p = intern(ids, "2001:db8:1:2::10", 64);
  assert.notEqual(p, a, "the /64 prefix is a key of its own");
  assert.equal(intern(ids, "2001:db8:1:2:aaaa::1", 64), p, "another address of the /64");
  assert.notEqual(intern(ids, "2001:db8:1:3::10", 64), p, "another /64");
  assert.equal(ids.text(a), "2001:db8:1:2::10");
  assert.equal(ids.text(p), "2001:db8:1:2::/64");
  assert.equal(ids.find(bytes("2001:db8:9::1"), 0, 128, 100), 0, "find never interns");
  assert.equal(ids.size, 3);
});

Deno.test("text crosses the knock layer's dotted keys both ways", () => {
  const ids = new Ipv6Ids(1024);
  const dotted = ids.internal("2001:db8:1:2:3:4:5:6", 64, 1)!;
  assert.ok(isIpv6Id(Number(dotted.split(".")[0]) << 24 >>> 0), dotted);
  assert.equal(ids.external(dotted), "2001:db8:1:2::/64");
  assert.equal(ids.internal("2001:db8:1:2::/64", 64, 1), dotted, "the prefix text finds it");
  assert.equal(ids.internal("2001:db8:1:2::99", 64, 1, false), dotted, "an address inside it too");
  assert.equal(ids.internal("2001:db8:7::1", 64, 1, false), null, "unknown, not created");
  assert.equal(ids.internal("203.0.113.10", 64, 1), "203.0.113.10");
  assert.equal(ids.external("203.0.113.10"), "203.0.113.10");
  assert.equal(ids.internal("nonsense", 64, 1), null);
});

Deno.test("a held or pinned id is never reclaimed; an unheld one is, with a new id", () => {
  const ids = new Ipv6Ids(1024);
  const held = intern(ids, "2001:db8::1", 128, 1);
  const pinned = intern(ids, "2001:db8::2", 128, 1);
  const loose = intern(ids, "2001:db8::3", 128, 1);
  ids.ref(held);
  ids.pin(pinned);
  // Fill every slot, then keep asking (a flood of new sources, one second later).
  for (let i = 4; i <= 1024; i++) {
    assert.notEqual(intern(ids, `2001:db8::${i.toString(16)}`, 128, 1), 0);
  }
  assert.equal(ids.size, 1024);
  let got = 0;
  for (let i = 0; i < 5000; i++) {
    if (intern(ids, `2001:db8:f::${i.toString(16)}`, 128, 2 + Math.floor(i / 500)) !== 0) got++;
  }
  assert.equal(got, 5000, "unheld ids of earlier seconds make room");
  assert.equal(ids.text(held), "2001:db8::1");
  assert.equal(ids.text(pinned), "2001:db8::2");
  assert.equal(ids.slotOf(loose), -1, "the reclaimed id names nothing");
  const again = intern(ids, "2001:db8::3", 128, 3);
  assert.notEqual(again, loose, "its slot comes back under another id");
  assert.ok(ids.reclaimed >= 5000);
});

Deno.test("nothing used in the current second is reclaimed: a full second is a counted refusal", () => {
  const ids = new Ipv6Ids(1024);
  for (let i = 0; i < 1024; i++) {
    assert.notEqual(intern(ids, `2001:db8::${i.toString(16)}`, 128, 7), 0);
  }
  assert.equal(intern(ids, "2001:db8:1::1", 128, 7), 0, "all used this second");
  assert.notEqual(intern(ids, "2001:db8:1::1", 128, 8), 0, "the next second");
});

Deno.test("every slot held: a new key is refused, the held ones stay", () => {
  const ids = new Ipv6Ids(1024);
  const all: number[] = [];
  for (let i = 0; i < 1024; i++) {
    const id = intern(ids, `2001:db8::${i.toString(16)}`, 128, 1);
    ids.ref(id);
    all.push(id);
  }
  assert.equal(intern(ids, "2001:db8:1::1", 128, 50), 0);
  for (const id of all) assert.ok(ids.slotOf(id) >= 0);
  ids.unref(all[10]);
  assert.notEqual(intern(ids, "2001:db8:1::1", 128, 50), 0, "one let go: room for one");
  assert.equal(ids.slotOf(all[10]), -1);
});

Deno.test("a reclaim scans a bounded number of slots", () => {
  const ids = new Ipv6Ids(1024);
  for (let i = 0; i < 1024; i++) {
    const id = intern(ids, `2001:db8::${i.toString(16)}`, 128, 1);
    if (i >= RECLAIM_SCAN) ids.ref(id); // only the first RECLAIM_SCAN are free to take
  }
  let got = 0;
  for (let i = 0; i < 3 * RECLAIM_SCAN; i++) {
    if (intern(ids, `2001:db8:2::${i}`, 128, 2) !== 0) got++;
  }
  assert.ok(got >= 1 && got <= RECLAIM_SCAN, `${got}`);
});

Deno.test("random churn keeps the hash consistent with a model", () => {
  const ids = new Ipv6Ids(1024);
  const model = new Map<string, number>();
  let seed = 12345;
  const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  for (let round = 0; round < 40_000; round++) {
    const now = 10 + Math.floor(round / 200);
    const a = `2001:db8:${Math.floor(rnd() * 4)}::${Math.floor(rnd() * 3000).toString(16)}`;
    const id = intern(ids, a, 128, now);
    if (id === 0) continue;
    assert.equal(ids.text(id), parseIpv6(a) && ids.text(id));
    assert.equal(ids.find(bytes(a), 0, 128, now), id);
    model.set(a, id);
  }
  let live = 0;
  for (const [a, id] of model) {
    const found = ids.find(bytes(a), 0, 128, 9999);
    if (ids.slotOf(id) >= 0) {
      live++;
      assert.equal(found, id, a);
      assert.equal(ids.text(id), ids.text(found));
    } else assert.notEqual(found, id);
  }
  assert.equal(live, ids.size);
});

Deno.test("findAddress (the per-packet find) agrees with find through churn and reclaims", () => {
  const ids = new Ipv6Ids(1024);
  const a = bytes("2001:db8:7::1");
  const id = ids.intern(a, 0, 128, 1);
  assert.equal(ids.findAddress(a, 0, 1), id);
  // Every slot goes to other keys at later seconds: a's id ends with its slot.
  for (let i = 0; i < 4096 && ids.slotOf(id) >= 0; i++) {
    ids.intern(bytes(`2001:db8:8::${i.toString(16)}`), 0, 128, 2 + Math.floor(i / 64));
  }
  assert.equal(ids.slotOf(id), -1, "a was reclaimed");
  assert.equal(ids.findAddress(a, 0, 100), 0, "a reclaimed address is not found");
  let seed = 777;
  const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  for (let round = 0; round < 40_000; round++) {
    const now = 200 + Math.floor(round / 100);
    const b = bytes(`2001:db8:${Math.floor(rnd() * 3)}::${Math.floor(rnd() * 2000).toString(16)}`);
    if (rnd() < 0.5) ids.intern(b, 0, 128, now);
    assert.equal(ids.findAddress(b, 0, now), ids.find(b, 0, 128, now));
  }
});

Deno.test("capacity sizing", () => {
  assert.equal(idCapacityFor(10), 1024);
  assert.equal(idCapacityFor(2 * 1024 + 65536), 131072);
  assert.equal(idCapacityFor(1e9), 1 << 20);
  assert.throws(() => new Ipv6Ids(1000), /power of two/);
});
