import assert from "node:assert/strict";
import { base32Decode } from "./base32.ts";
import { loadVectors } from "./_vectors.ts";
import { knockSequence } from "./sequence.ts";
import { SequenceCache } from "./sequence_cache.ts";

const STEP_MS = 30_000;

Deno.test("SequenceCache holds every vector's sequence at its step", async () => {
  for (const v of await loadVectors()) {
    const cache = new SequenceCache();
    const profile = {
      user: "u",
      firstPort: v.firstPort,
      length: v.length,
      transport: "any" as const,
    };
    await cache.setUser(profile, v.secret, v.unixTime * 1000);
    assert.deepEqual([...cache.sequence("u", v.step)!], v.sequence);
  }
});

Deno.test("SequenceCache holds T-1..T+2 and refresh moves the window", async () => {
  const v = (await loadVectors())[1];
  const cache = new SequenceCache();
  const now = v.step * STEP_MS;
  await cache.setUser({ user: "a", firstPort: 41001, length: 3, transport: "tcp" }, v.secret, now);
  const bytes = base32Decode(v.secret);
  for (let d = -1; d <= 2; d++) {
    const want = await knockSequence(bytes, v.step + d, 41001, 3);
    assert.deepEqual([...cache.sequence("a", v.step + d)!], want);
  }
  assert.equal(cache.sequence("a", v.step - 2), null);
  assert.equal(cache.sequence("a", v.step + 3), null);
  assert.equal(cache.sequence("nobody", v.step), null);

  await cache.refresh(now + 3 * STEP_MS);
  assert.equal(cache.sequence("a", v.step + 1), null);
  assert.deepEqual(
    [...cache.sequence("a", v.step + 5)!],
    await knockSequence(bytes, v.step + 5, 41001, 3),
  );
  assert.equal(cache.removeUser("a"), true);
  assert.equal(cache.sequence("a", v.step + 3), null);
  assert.equal(cache.size, 0);
});

Deno.test("SequenceCache replaces a user's sequences when the user changes", async () => {
  const v = (await loadVectors())[1];
  const cache = new SequenceCache();
  const now = v.unixTime * 1000;
  await cache.setUser({ user: "a", firstPort: 41001, length: 3, transport: "tcp" }, v.secret, now);
  await cache.setUser({ user: "a", firstPort: 41002, length: 2, transport: "tcp" }, v.secret, now);
  assert.equal(cache.sequence("a", v.step)![0], 41002);
  assert.equal(cache.sequence("a", v.step)!.length, 3);
  assert.deepEqual(cache.profiles().map((p) => p.firstPort), [41002]);
});

Deno.test("SequenceCache has no sequence before the epoch", async () => {
  const cache = new SequenceCache();
  await cache.setUser(
    { user: "a", firstPort: 1000, length: 3, transport: "any" },
    "JBSWY3DPEHPK3PXP",
    0,
  );
  assert.equal(cache.sequence("a", -1)!.length, 0);
  assert.equal(cache.sequence("a", 0)!.length, 4);
});

Deno.test("SequenceCache keeps serving a user's old sequences while new ones are derived", async () => {
  const v = (await loadVectors())[0];
  const cache = new SequenceCache();
  const profile = {
    user: "u",
    firstPort: v.firstPort,
    length: v.length,
    transport: "any" as const,
  };
  const now = v.unixTime * 1000;
  await cache.setUser(profile, v.secret, now);
  const pending = cache.setUser({ ...profile }, v.secret, now);
  assert.deepEqual([...cache.sequence("u", v.step)!], v.sequence, "not blank meanwhile");
  await pending;
  assert.deepEqual([...cache.sequence("u", v.step)!], v.sequence);
  // A removal during a derivation wins.
  const again = cache.setUser({ ...profile }, v.secret, now);
  cache.removeUser("u");
  await again;
  assert.equal(cache.sequence("u", v.step), null);
});
