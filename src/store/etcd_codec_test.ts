import assert from "node:assert/strict";
import fc from "fast-check";
import {
  childrenEnd,
  childrenStart,
  compareBytes,
  decodeKey,
  decodeValue,
  encodeKey,
  encodeValue,
  revisionOf,
  versionstampOf,
} from "./etcd_codec.ts";
import { compareOf, lastPerKey } from "./etcd_kv.ts";

const keyPart = fc.oneof(
  fc.uint8Array({ maxLength: 6 }),
  fc.string({ maxLength: 6, unit: fc.constantFrom("a", "b", "\u0000", "\u00ff", "é", "\uffff") }),
  fc.double({ noNaN: true }),
  fc.bigInt({ min: -(1n << 80n), max: 1n << 80n }),
  fc.boolean(),
);
const key = fc.array(keyPart, { minLength: 1, maxLength: 4 });

Deno.test("etcd codec: every key round-trips", () => {
  fc.assert(
    fc.property(key, (k) => {
      assert.deepEqual(decodeKey(encodeKey(k)), k);
    }),
    { numRuns: 500 },
  );
});

Deno.test("etcd codec: encoded keys sort in byte order exactly as Deno KV sorts the tuples", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(key, { minLength: 2, maxLength: 30 }), async (keys) => {
        for await (const e of kv.list({ prefix: [] })) await kv.delete(e.key);
        for (const k of keys) await kv.set(k, 1);
        const byKv: Deno.KvKey[] = [];
        for await (const e of kv.list({ prefix: [] })) byKv.push(e.key);
        const byBytes = byKv.map(encodeKey).toSorted(compareBytes).map(decodeKey);
        assert.deepEqual(byBytes, byKv);
      }),
      { numRuns: 60 },
    );
  } finally {
    kv.close();
  }
});

Deno.test("etcd codec: the children of a prefix lie in [P 00, P ff), the prefix itself outside", () => {
  const p = encodeKey(["users"]);
  for (
    const k of [["users", ""], ["users", "zz", 3], ["users", new Uint8Array([255])], [
      "users",
      true,
    ]]
  ) {
    const e = encodeKey(k);
    assert.ok(compareBytes(e, childrenStart(p)) >= 0 && compareBytes(e, childrenEnd(p)) < 0);
  }
  for (const k of [["users"], ["usersx"], ["user"], ["users2", 1]]) {
    const e = encodeKey(k);
    assert.ok(compareBytes(e, childrenStart(p)) < 0 || compareBytes(e, childrenEnd(p)) >= 0);
  }
});

Deno.test("etcd codec: values round-trip, undefined properties drop, values of no form are refused", () => {
  const v = {
    a: [1, "x", null, true, { b: -0.5 }],
    bytes: new Uint8Array([0, 1, 255]),
    big: -12345678901234567890n,
    when: new Date(Date.UTC(2026, 0, 1)),
    odd: [NaN, Infinity, -Infinity],
    gone: undefined,
  };
  const { gone: _, ...kept } = v;
  assert.deepEqual(decodeValue(encodeValue(v)), kept);
  assert.equal(decodeValue(encodeValue(7)), 7);
  assert.throws(() => encodeValue(new Map()), TypeError);
  assert.throws(() => encodeValue({ s: new Set([1]) }), /\.s is a object/);
  assert.throws(() => encodeValue(undefined), TypeError);
});

Deno.test("etcd codec: a versionstamp is the revision in 20 hex digits", () => {
  assert.equal(versionstampOf(255), "000000000000000000ff");
  assert.equal(revisionOf(versionstampOf(123456789)), 123456789);
  assert.ok(Number.isNaN(revisionOf("zz")));
});

Deno.test("etcd txn mapping: a check compares mod_revision, an absent key version 0", () => {
  const k = encodeKey(["users", "alice"]);
  assert.deepEqual(compareOf(k, versionstampOf(42)), {
    key: btoa(String.fromCharCode(...k)),
    target: "MOD",
    result: "EQUAL",
    mod_revision: "42",
  });
  assert.deepEqual(compareOf(k, null), {
    key: btoa(String.fromCharCode(...k)),
    target: "VERSION",
    result: "EQUAL",
    version: "0",
  });
  assert.throws(() => compareOf(k, "not-a-stamp"), TypeError);
});

Deno.test("etcd txn mapping: of several mutations of one key the last is kept, in order", () => {
  const bytes = encodeValue(1);
  const ops = lastPerKey([
    { type: "set", key: ["a"], bytes },
    { type: "delete", key: ["b"] },
    { type: "delete", key: ["a"] },
    { type: "set", key: ["c"], bytes },
  ], encodeKey);
  assert.deepEqual(ops.map((o) => [o.m.type, decodeKey(o.key)]), [
    ["delete", ["b"]],
    ["delete", ["a"]],
    ["set", ["c"]],
  ]);
});
