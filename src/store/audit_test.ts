import assert from "node:assert/strict";
import { withStore } from "./_test_util.ts";
import { redact } from "./audit.ts";
import type { RuleInput } from "./rules.ts";

const web: RuleInput = {
  kind: "forward",
  rule: {
    name: "web",
    enabled: true,
    protocol: "tcp",
    publicPorts: { start: 443, end: 443 },
    privateAddress: "192.0.2.10",
    privatePorts: { start: 443, end: 443 },
    enforceKnock: true,
    users: [],
  },
};

Deno.test("audit: every change writes one redacted entry, newest first", async () => {
  await withStore(async ({ users, rules, settings, sessions, audit }, { clock }) => {
    await users.createUser({ name: "alice", password: "password1", role: "viewer" }, "root");
    clock.advance(5);
    await users.updateUser("alice", { password: "password2" }, "alice");
    await rules.createRule(web, "root");
    await rules.deleteRule("web", "root");
    await settings.updateSettings({ idleTimeoutSeconds: 60 }, "root");
    const { id } = await sessions.createSession({
      user: "alice",
      role: "viewer",
      kind: "cookie",
      ttlMs: 1000,
    });
    await sessions.deleteSession(id, "alice");
    await users.deleteUser("alice", "root");

    const entries = await audit.listAudit();
    assert.deepEqual(entries.map((e) => e.action), [
      "user.delete",
      "session.delete",
      "session.create",
      "settings.update",
      "rule.delete",
      "rule.create",
      "user.update",
      "user.create",
    ]);
    const ids = entries.map((e) => e.id);
    assert.deepEqual([...ids].sort().reverse(), ids);
    const create = entries[7];
    assert.equal(create.actor, "root");
    assert.equal(create.target, "alice");
    assert.equal(create.before, null);
    const after = create.after as { passwordHash: string; mfa: { secretEnc: unknown } };
    assert.equal(after.passwordHash, "[redacted]");
    assert.equal(after.mfa.secretEnc, "[redacted]");
    assert.equal(entries[1].after, null);
    const text = JSON.stringify(entries);
    assert.ok(!text.includes("scrypt$") && !text.includes("ciphertext") && !text.includes(id));
    const session = entries[2].after as { csrfToken: string; idHash: string };
    assert.equal(session.csrfToken, "[redacted]");
    assert.equal(session.idHash, "[redacted]");
  });
});

Deno.test("audit: a refused change writes no entry", async () => {
  await withStore(async ({ users, audit }) => {
    await users.createUser({ name: "alice", password: "password1", role: "viewer" }, "root");
    await assert.rejects(
      users.createUser({ name: "alice", password: "password1", role: "viewer" }, "root"),
    );
    await assert.rejects(users.updateUser("nobody", { role: "viewer" }, "root"));
    assert.equal((await audit.listAudit()).length, 1);
  });
});

Deno.test("audit: paging with limit and before", async () => {
  await withStore(async ({ settings, audit }, { clock }) => {
    for (let i = 0; i < 7; i++) {
      await settings.updateSettings({ idleTimeoutSeconds: 100 + i }, "root");
      if (i % 2 === 0) clock.advance(1); // several entries share a millisecond
    }
    const page1 = await audit.listAudit({ limit: 3 });
    const page2 = await audit.listAudit({ limit: 3, before: page1[2].id });
    const page3 = await audit.listAudit({ limit: 3, before: page2[2].id });
    const seen = [...page1, ...page2, ...page3].map((e) =>
      (e.after as { idleTimeoutSeconds: number }).idleTimeoutSeconds
    );
    assert.deepEqual(seen, [106, 105, 104, 103, 102, 101, 100]);
  });
});

Deno.test("redact replaces secret fields at any depth", () => {
  assert.deepEqual(
    redact({
      a: 1,
      passwordHash: "x",
      nested: [{ secretEnc: { iv: "i" }, keep: "k" }],
      gone: undefined,
    }),
    { a: 1, passwordHash: "[redacted]", nested: [{ secretEnc: "[redacted]", keep: "k" }] },
  );
});
