import assert from "node:assert/strict";
import { withStore } from "./_test_util.ts";
import { type AuditLog, PRUNE_INTERVAL_MS, redact } from "./audit.ts";
import type { StoreKv } from "./store_kv.ts";
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

/** `n` audit entries staged in a few atomic operations (no repository write per entry). */
async function fill(kv: StoreKv, audit: AuditLog, n: number, tag: string): Promise<void> {
  for (let i = 0; i < n; i += 50) {
    const op = kv.atomic();
    for (let j = i; j < Math.min(n, i + 50); j++) {
      audit.stage(op, { actor: "root", action: "test.fill", target: `${tag}${j}` });
    }
    assert.ok((await op.commit()).ok);
  }
}

const KEEP_ALL = { maxEntries: 1_000_000, maxAgeDays: 365 };

Deno.test("audit: pruning by age deletes what is older, in batches of at most 100", async () => {
  await withStore(async ({ kv, audit }, { clock }) => {
    await fill(kv, audit, 230, "old");
    clock.advance(200 * 86_400_000);
    await fill(kv, audit, 5, "mid");
    clock.advance(200 * 86_400_000); // "old" is 400 days old now, "mid" 200
    await fill(kv, audit, 5, "new");
    const r = await audit.prune(KEEP_ALL);
    assert.deepEqual(r, { ran: true, expired: 230, excess: 0, batches: 3 });
    assert.equal(await audit.countAudit(), 10);
    const left = (await audit.listAudit()).map((e) => e.target);
    assert.deepEqual(left.slice(0, 2), ["new4", "new3"]);
    assert.equal(left.at(-1), "mid0");
  });
});

Deno.test("audit: pruning by count leaves 90 % of the bound, only once it is passed", async () => {
  await withStore(async ({ kv, audit }, { clock }) => {
    const bound = { maxEntries: 200, maxAgeDays: 365 };
    await fill(kv, audit, 200, "a");
    assert.deepEqual(await audit.prune(bound, { force: true }), {
      ran: true,
      expired: 0,
      excess: 0,
      batches: 0,
    });
    clock.advance(1);
    await fill(kv, audit, 50, "b");
    const r = await audit.prune(bound, { force: true });
    assert.deepEqual(r, { ran: true, expired: 0, excess: 70, batches: 1 });
    assert.equal(await audit.countAudit(), 180);
    const oldest = await audit.listAudit({ limit: 1000 });
    assert.equal(oldest.at(-1)?.target, "a70"); // the oldest 70 went
    assert.equal(oldest[0].target, "b49");
    // Below the bound again: one more entry deletes nothing.
    await fill(kv, audit, 1, "c");
    assert.equal((await audit.prune(bound, { force: true })).excess, 0);
  });
});

Deno.test("audit: nodes sharing a store take turns: a fresh claim skips the run", async () => {
  await withStore(async ({ kv, audit }, { clock }) => {
    await fill(kv, audit, 3, "x");
    clock.advance(400 * 86_400_000);
    assert.equal((await audit.prune(KEEP_ALL)).expired, 3);
    await fill(kv, audit, 2, "y");
    // The claim (one node's, or another's sharing the store) is younger than the interval.
    assert.deepEqual(await audit.prune(KEEP_ALL), {
      ran: false,
      expired: 0,
      excess: 0,
      batches: 0,
    });
    assert.equal(await audit.countAudit(), 2);
    clock.advance(400 * 86_400_000 + PRUNE_INTERVAL_MS);
    assert.deepEqual(await audit.prune(KEEP_ALL), {
      ran: true,
      expired: 2,
      excess: 0,
      batches: 1,
    });
  });
});
