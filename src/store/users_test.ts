import assert from "node:assert/strict";
import { dumpKv, T0, withStore } from "./_test_util.ts";
import { ConfigProblemError, ConflictError, NotFoundError, ValidationError } from "./errors.ts";
import { toPublicUser } from "./users.ts";

const SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

Deno.test("users: create, get, list, update, delete", async () => {
  await withStore(async ({ users }, { clock }) => {
    const alice = await users.createUser(
      {
        name: "alice",
        password: "hunter2hunter2",
        role: "operator",
        knock: { enabled: true, firstPort: 41001 },
      },
      "root",
    );
    assert.equal(alice.version, 1);
    assert.equal(alice.createdAt, T0);
    assert.deepEqual(alice.knock, { enabled: true, firstPort: 41001, length: 3, transport: "any" });
    assert.deepEqual(alice.allowedRules, []);
    assert.equal(alice.mfa.enrolled, false);
    assert.deepEqual(await users.getUser("alice"), alice);
    await users.createUser({ name: "bob", password: "bobbobbob", role: "viewer" }, "root");
    assert.deepEqual((await users.listUsers()).map((u) => u.name), ["alice", "bob"]);

    clock.advance(1000);
    const updated = await users.updateUser(
      "alice",
      { role: "administrator", allowedRules: ["*"], knock: { length: 5 } },
      "root",
      1,
    );
    assert.equal(updated.version, 2);
    assert.equal(updated.updatedAt, T0 + 1000);
    assert.equal(updated.role, "administrator");
    assert.equal(updated.knock.length, 5);
    assert.equal(updated.knock.firstPort, 41001);
    assert.equal(updated.passwordHash, alice.passwordHash);

    await assert.rejects(
      users.updateUser("alice", { role: "viewer" }, "root", 1),
      (e) => e instanceof ConflictError && e.field === "version",
    );
    await users.deleteUser("bob", "root");
    await assert.rejects(users.getUser("bob"), NotFoundError);
    await assert.rejects(users.deleteUser("bob", "root"), /user "bob" does not exist/);
    assert.equal(await users.findUser("bob"), null);
  });
});

Deno.test("users: invalid input is refused with the field named", async () => {
  await withStore(async ({ users }) => {
    const cases: [Parameters<typeof users.createUser>[0], string][] = [
      [{ name: "Alice", password: "long enough", role: "viewer" }, "name"],
      [{ name: "a".repeat(33), password: "long enough", role: "viewer" }, "name"],
      [{ name: "carol", password: "short", role: "viewer" }, "password"],
      [{ name: "carol", password: "long enough", role: "root" as "viewer" }, "role"],
      [
        { name: "carol", password: "long enough", role: "viewer", knock: { enabled: true } },
        "knock.firstPort",
      ],
      [
        { name: "carol", password: "long enough", role: "viewer", knock: { length: 9 } },
        "knock.length",
      ],
      [{ name: "carol", password: "long enough", role: "viewer", totpSecret: "abc" }, "totpSecret"],
    ];
    for (const [input, field] of cases) {
      await assert.rejects(
        users.createUser(input, "root"),
        (e) => e instanceof ValidationError && e.field === field,
        field,
      );
    }
    assert.deepEqual(await users.listUsers(), []);
  });
});

Deno.test("users: duplicate name and taken first port are conflicts", async () => {
  await withStore(async ({ users }) => {
    const knock = { enabled: true, firstPort: 41001 };
    await users.createUser({ name: "alice", password: "password1", role: "viewer", knock }, "root");
    await assert.rejects(
      users.createUser({ name: "alice", password: "password1", role: "viewer" }, "root"),
      (e) => e instanceof ConflictError && e.field === "name",
    );
    await assert.rejects(
      users.createUser({ name: "bob", password: "password1", role: "viewer", knock }, "root"),
      (e) =>
        e instanceof ConfigProblemError && e.conflict && e.field === "knock.firstPort" &&
        e.message === 'Cannot save user "bob": first knock port 41001 is also user "alice"\'s' &&
        e.problems[0].clash === 'user "alice" knock.firstPort 41001',
    );
    // A disabled knock does not hold its port.
    await users.createUser(
      { name: "bob", password: "password1", role: "viewer", knock: { ...knock, enabled: false } },
      "root",
    );
    await assert.rejects(
      users.updateUser("bob", { knock: { enabled: true } }, "root"),
      ConfigProblemError,
    );
  });
});

Deno.test("users: concurrent creates claiming one first port: exactly one wins", async () => {
  await withStore(async ({ users, kv }) => {
    for (let round = 0; round < 5; round++) {
      const port = 42000 + round;
      const names = ["a", "b", "c"].map((n) => `${n}${round}`);
      const results = await Promise.allSettled(
        names.map((name) =>
          users.createUser(
            {
              name,
              password: "password1",
              role: "viewer",
              knock: { enabled: true, firstPort: port },
            },
            "root",
          )
        ),
      );
      const won = results.filter((r) => r.status === "fulfilled");
      const lost = results.filter((r) => r.status === "rejected");
      assert.equal(won.length, 1, `round ${round}`);
      for (const r of lost) {
        assert.ok(
          r.reason instanceof ConfigProblemError && r.reason.field === "knock.firstPort",
          String(r.reason),
        );
      }
      const winner = (won[0] as PromiseFulfilledResult<{ name: string }>).value.name;
      assert.equal((await kv.get(["idx", "user-firstport", port])).value, winner);
    }
    assert.equal((await users.listUsers()).length, 5);
  });
});

Deno.test("users: changing the first port moves the index atomically", async () => {
  await withStore(async ({ users, kv }) => {
    await users.createUser(
      {
        name: "alice",
        password: "password1",
        role: "viewer",
        knock: { enabled: true, firstPort: 41001 },
      },
      "root",
    );
    await users.updateUser("alice", { knock: { firstPort: 41002 } }, "root");
    assert.equal((await kv.get(["idx", "user-firstport", 41001])).value, null);
    assert.equal((await kv.get(["idx", "user-firstport", 41002])).value, "alice");
    await users.createUser(
      {
        name: "bob",
        password: "password1",
        role: "viewer",
        knock: { enabled: true, firstPort: 41001 },
      },
      "root",
    );
    await users.updateUser("alice", { knock: { enabled: false } }, "root");
    assert.equal((await kv.get(["idx", "user-firstport", 41002])).value, null);
    await users.deleteUser("bob", "root");
    assert.equal((await kv.get(["idx", "user-firstport", 41001])).value, null);
    assert.deepEqual(await users.knockProfiles(), []);
  });
});

Deno.test("users: knockProfiles lists enabled users", async () => {
  await withStore(async ({ users }) => {
    await users.createUser(
      {
        name: "alice",
        password: "password1",
        role: "viewer",
        knock: { enabled: true, firstPort: 41001, length: 4, transport: "udp" },
      },
      "root",
    );
    await users.createUser({ name: "bob", password: "password1", role: "viewer" }, "root");
    assert.deepEqual(await users.knockProfiles(), [
      { user: "alice", firstPort: 41001, length: 4, transport: "udp" },
    ]);
  });
});

Deno.test("users: secrets and passwords are never stored in clear", async () => {
  await withStore(async ({ users, kv }) => {
    await users.createUser(
      { name: "alice", password: "my-clear-password", role: "viewer", totpSecret: SECRET },
      "root",
    );
    const pending = await users.beginMfaEnrollment("alice", "alice");
    const raw = await dumpKv(kv);
    for (const clear of [SECRET, pending, "my-clear-password"]) {
      assert.ok(!raw.includes(clear), `found ${clear} in the KV file`);
    }
    assert.deepEqual(await users.getMfaSecrets("alice"), {
      secret: SECRET,
      enrolled: false,
      pending,
    });
  });
});

Deno.test("users: password check, unknown user costs the same and fails", async () => {
  await withStore(async ({ users }) => {
    await users.createUser({ name: "alice", password: "password1", role: "viewer" }, "root");
    assert.equal((await users.verifyUserPassword("alice", "password1"))?.name, "alice");
    assert.equal(await users.verifyUserPassword("alice", "password2"), null);
    assert.equal(await users.verifyUserPassword("nobody", "password1"), null);
    await users.updateUser("alice", { password: "password2" }, "alice");
    assert.equal(await users.verifyUserPassword("alice", "password1"), null);
    assert.equal((await users.verifyUserPassword("alice", "password2"))?.name, "alice");
  });
});

Deno.test("users: MFA enrolment and rotation", async () => {
  await withStore(async ({ users }) => {
    await users.createUser({ name: "alice", password: "password1", role: "viewer" }, "root");
    const first = (await users.getMfaSecrets("alice")).secret;
    assert.match(first, /^[A-Z2-7]{32}$/);
    await users.confirmMfaEnrollment("alice", "alice");
    assert.deepEqual(await users.getMfaSecrets("alice"), {
      secret: first,
      enrolled: true,
      pending: null,
    });

    const next = await users.beginMfaEnrollment("alice", "alice", SECRET);
    assert.equal(next, SECRET);
    assert.equal(toPublicUser(await users.getUser("alice")).mfa.rotating, true);
    assert.equal((await users.getMfaSecrets("alice")).secret, first); // old one still valid
    await users.confirmMfaEnrollment("alice", "alice");
    const after = await users.getUser("alice");
    assert.deepEqual(await users.getMfaSecrets("alice"), {
      secret: SECRET,
      enrolled: true,
      pending: null,
    });
    assert.equal(after.mfa.pendingSecretEnc, undefined);
  });
});

Deno.test("users: toPublicUser drops hash and secrets", async () => {
  await withStore(async ({ users }) => {
    const u = await users.createUser(
      { name: "alice", password: "password1", role: "viewer" },
      "root",
    );
    const text = JSON.stringify(toPublicUser(u));
    assert.ok(
      !text.includes("scrypt") && !text.includes("ciphertext") && !text.includes("passwordHash"),
    );
  });
});
