import assert from "node:assert/strict";
import { sha256Hex } from "./_ids.ts";
import { dumpKv, T0, withStore } from "./_test_util.ts";

Deno.test("sessions: create, get, list, delete; ids are stored hashed", async () => {
  await withStore(async ({ sessions, kv }) => {
    const { id, session } = await sessions.createSession({
      user: "alice",
      role: "operator",
      kind: "cookie",
      ttlMs: 60_000,
    });
    assert.match(id, /^[0-9a-f]{64}$/);
    assert.equal(session.idHash, await sha256Hex(id));
    assert.match(session.csrfToken, /^[0-9a-f]{64}$/);
    assert.equal(session.expiresAt, T0 + 60_000);
    assert.ok(!(await dumpKv(kv)).includes(id), "clear id stored");
    assert.deepEqual(await sessions.getSession(id), session);
    assert.equal(await sessions.getSession("00".repeat(32)), null);
    const token = await sessions.createSession({
      user: "alice",
      role: "operator",
      kind: "token",
      ttlMs: 86_400_000,
    });
    assert.equal((await sessions.listSessions("alice")).length, 2);
    assert.equal(await sessions.deleteSession(id, "alice"), true);
    assert.equal(await sessions.deleteSession(id, "alice"), false);
    assert.equal(await sessions.getSession(id), null);
    assert.deepEqual((await sessions.listSessions("alice")).map((s) => s.kind), ["token"]);
    assert.equal(await sessions.deleteSessionByHash(token.session.idHash, "root"), true);
    assert.deepEqual(await sessions.listSessions("alice"), []);
  });
});

Deno.test("sessions: own expiry, purgeExpired, deleteUserSessions", async () => {
  await withStore(async ({ sessions }, { clock }) => {
    const short = await sessions.createSession({
      user: "alice",
      role: "viewer",
      kind: "cookie",
      ttlMs: 1000,
    });
    const long = await sessions.createSession({
      user: "alice",
      role: "viewer",
      kind: "token",
      ttlMs: 10_000,
    });
    await sessions.createSession({ user: "bob", role: "viewer", kind: "cookie", ttlMs: 10_000 });
    clock.advance(1000);
    assert.equal(await sessions.getSession(short.id), null, "expired at expiresAt");
    assert.ok(await sessions.getSession(long.id));
    assert.equal(await sessions.purgeExpired(), 1);
    assert.equal(await sessions.purgeExpired(), 0);
    assert.equal(await sessions.deleteUserSessions("alice", "root"), 1);
    assert.equal(await sessions.getSession(long.id), null);
    assert.equal((await sessions.listSessions("bob")).length, 1);
    await assert.rejects(
      sessions.createSession({ user: "bob", role: "viewer", kind: "cookie", ttlMs: 0 }),
      /ttl 0 ms is not positive/,
    );
  });
});
