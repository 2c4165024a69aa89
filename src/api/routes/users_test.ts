import assert from "node:assert/strict";
import { verifyTotp } from "../../knock/totp.ts";
import { Client, codeAt, withApi } from "../_test_util.ts";

type ErrorJson = { error: { status: number; code: string; message: string; field?: string } };
type Enrollment = { secret: string; otpauthUri: string; qrSvg: string };
type UserJson = {
  name: string;
  role: string;
  mfa: { enrolled: boolean; rotating: boolean };
  knock: { enabled: boolean; firstPort: number };
  allowedRules: string[];
  version: number;
};

const alice = {
  name: "alice2",
  password: "alice-password",
  role: "viewer",
  knock: { enabled: true, firstPort: 42001, length: 3, transport: "tcp" },
};

Deno.test("users: enrolment flow: create -> QR -> wrong code 400 -> right code -> active", async () => {
  await withApi(async (h) => {
    const admin = await h.adminClient();
    const created = await admin.json("POST", "/api/v1/users", { body: alice });
    assert.equal(created.status, 201);
    const user = created.body.user as UserJson;
    const enr = created.body.enrollment as Enrollment;
    assert.deepEqual(user.mfa, { enrolled: false, rotating: false });
    assert.deepEqual(user.allowedRules, ["*"]);
    assert.match(enr.secret, /^[A-Z2-7]{32}$/);
    assert.match(enr.otpauthUri, /^otpauth:\/\/totp\/Knockgate:alice2\?/);
    assert.match(enr.otpauthUri, new RegExp(`secret=${enr.secret}`));
    assert.match(enr.qrSvg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    assert.match(enr.qrSvg, /<path/);
    // Not active: the data plane does not know the user, and they cannot sign in.
    assert.deepEqual(h.datapath.users?.map((u) => u.user) ?? [], ["alice"]);
    const early = await h.anon.json("POST", "/api/v1/auth/login", {
      body: { username: "alice2", password: alice.password, code: codeAt(enr.secret, h.clock) },
    });
    assert.equal(early.status, 401);

    const right = codeAt(enr.secret, h.clock);
    const wrong = String((Number(right) + 1) % 1_000_000).padStart(6, "0");
    const bad = await admin.json("POST", "/api/v1/users/alice2/mfa/verify", {
      body: { code: wrong },
    });
    assert.equal(bad.status, 400);
    assert.equal((bad.body as ErrorJson).error.code, "invalid_code");
    assert.equal((bad.body as ErrorJson).error.field, "code");
    const ok = await admin.json("POST", "/api/v1/users/alice2/mfa/verify", {
      body: { code: right },
    });
    assert.equal(ok.status, 200);
    assert.equal((ok.body as UserJson).mfa.enrolled, true);
    const pushed = h.datapath.users!.find((u) => u.user === "alice2")!;
    assert.deepEqual(pushed, {
      user: "alice2",
      secret: enr.secret,
      firstPort: 42001,
      length: 3,
      transport: "tcp",
    });
    // Now enrolled: a second verify has nothing to confirm.
    const again = await admin.json("POST", "/api/v1/users/alice2/mfa/verify", {
      body: { code: right },
    });
    assert.equal(again.status, 409);
    await h.login("alice2", alice.password, enr.secret);
  });
});

Deno.test("users: rotation keeps the old secret until the new one is verified", async () => {
  await withApi(async (h) => {
    const admin = await h.adminClient();
    const created = await admin.json("POST", "/api/v1/users", { body: alice });
    const oldSecret = (created.body.enrollment as Enrollment).secret;
    await admin.json("POST", "/api/v1/users/alice2/mfa/verify", {
      body: { code: codeAt(oldSecret, h.clock) },
    });
    const self = await h.login("alice2", alice.password, oldSecret);
    const rot = await self.json("POST", "/api/v1/users/alice2/mfa/rotate");
    assert.equal(rot.status, 200);
    const newSecret = (rot.body.enrollment as Enrollment).secret;
    assert.notEqual(newSecret, oldSecret);
    assert.deepEqual((rot.body.user as UserJson).mfa, { enrolled: true, rotating: true });
    // The old secret still signs in and still knocks.
    await h.login("alice2", alice.password, oldSecret);
    assert.equal(h.datapath.users!.find((u) => u.user === "alice2")!.secret, oldSecret);
    // A code of the old secret does not confirm the new one.
    h.clock.advance(30_000);
    const oldCode = codeAt(oldSecret, h.clock);
    if (verifyTotp(newSecret, oldCode, Math.floor(h.clock.now() / 1000)) === null) {
      const wrong = await self.json("POST", "/api/v1/users/alice2/mfa/verify", {
        body: { code: oldCode },
      });
      assert.equal(wrong.status, 400);
    }
    const ok = await self.json("POST", "/api/v1/users/alice2/mfa/verify", {
      body: { code: codeAt(newSecret, h.clock) },
    });
    assert.equal(ok.status, 200);
    assert.deepEqual((ok.body as UserJson).mfa, { enrolled: true, rotating: false });
    assert.equal(h.datapath.users!.find((u) => u.user === "alice2")!.secret, newSecret);
    await h.login("alice2", alice.password, newSecret);
    await assert.rejects(h.login("alice2", alice.password, oldSecret), /401/);
  });
});

Deno.test("users: others may not rotate or read someone else's user", async () => {
  await withApi(async (h) => {
    const viewer = await h.userClient("vic", "viewer");
    assert.equal((await viewer.json("GET", "/api/v1/users/vic")).status, 200);
    assert.equal((await viewer.json("GET", "/api/v1/users/admin")).status, 403);
    assert.equal((await viewer.json("POST", "/api/v1/users/admin/mfa/rotate")).status, 403);
    assert.equal((await viewer.json("GET", "/api/v1/users")).status, 403);
    assert.equal((await viewer.json("POST", "/api/v1/users", { body: alice })).status, 403);
    const op = await h.userClient("otto", "operator");
    assert.equal((await op.json("DELETE", "/api/v1/users/vic")).status, 403);
    assert.equal((await op.json("PATCH", "/api/v1/users/vic", { body: {} })).status, 403);
    assert.equal((await h.anon.json("GET", "/api/v1/users")).status, 401);
  });
});

Deno.test("users: list, get, update, delete", async () => {
  await withApi(async (h) => {
    const admin = await h.adminClient();
    await admin.json("POST", "/api/v1/users", { body: alice });
    const list = await admin.json("GET", "/api/v1/users");
    assert.deepEqual((list.body.users as UserJson[]).map((u) => u.name), [
      "admin",
      "alice",
      "alice2",
    ]);
    const got = await admin.json("GET", "/api/v1/users/alice2");
    assert.equal((got.body as UserJson).knock.firstPort, 42001);
    assert.equal((await admin.json("GET", "/api/v1/users/nobody")).status, 404);

    const patched = await admin.json("PATCH", "/api/v1/users/alice2", {
      body: { role: "operator", knock: { firstPort: 42002 }, allowedRules: ["web"] },
      headers: { "if-match": "1" },
    });
    assert.equal(patched.status, 200);
    const u = patched.body as UserJson;
    assert.equal(u.role, "operator");
    assert.equal(u.knock.firstPort, 42002);
    assert.deepEqual(u.allowedRules, ["web"]);
    assert.equal(u.version, 2);
    const stale = await admin.json("PATCH", "/api/v1/users/alice2", {
      body: { role: "viewer" },
      headers: { "if-match": "1" },
    });
    assert.equal(stale.status, 409);
    assert.equal((stale.body as ErrorJson).error.field, "version");
    const badMatch = await admin.json("PATCH", "/api/v1/users/alice2", {
      body: {},
      headers: { "if-match": "yesterday" },
    });
    assert.equal(badMatch.status, 400);

    const del = await admin.request("DELETE", "/api/v1/users/alice2");
    assert.equal(del.status, 204);
    assert.equal((await admin.json("GET", "/api/v1/users/alice2")).status, 404);
    assert.equal((await admin.json("DELETE", "/api/v1/users/alice2")).status, 404);
    assert.ok(h.changes.includes("users"));
  });
});

Deno.test("users: bad input is 400 naming the field", async () => {
  await withApi(async (h) => {
    const admin = await h.adminClient();
    const cases: [unknown, string][] = [
      [{ ...alice, knock: { ...alice.knock, firstPort: 70000 } }, "knock.firstPort"],
      [{ ...alice, knock: { ...alice.knock, length: 0 } }, "knock.length"],
      [{ ...alice, role: "root" }, "role"],
      [{ ...alice, name: "Bad Name!" }, "name"],
      [{ ...alice, password: "short" }, "password"],
      [{ ...alice, extra: 1 }, ""],
      [{ ...alice, knock: { ...alice.knock, enabled: true, firstPort: 0 } }, "knock.firstPort"],
    ];
    for (const [body, field] of cases) {
      const r = await admin.json("POST", "/api/v1/users", { body });
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal((r.body as ErrorJson).error.field ?? "", field, JSON.stringify(r.body));
    }
    assert.equal((await admin.json("GET", "/api/v1/users")).status, 200);
    assert.equal(((await admin.json("GET", "/api/v1/users")).body.users as unknown[]).length, 2);
  });
});

Deno.test("users: two parallel creates with the same first knock port: one 201, one 409", async () => {
  await withApi(async (h) => {
    const admin = await h.adminClient();
    const [a, b] = await Promise.all([
      admin.json("POST", "/api/v1/users", { body: { ...alice, name: "p1" } }),
      admin.json("POST", "/api/v1/users", { body: { ...alice, name: "p2" } }),
    ]);
    assert.deepEqual([a.status, b.status].sort(), [201, 409]);
    const loser = a.status === 409 ? a : b;
    assert.equal((loser.body as ErrorJson).error.field, "knock.firstPort");
    const names = ((await admin.json("GET", "/api/v1/users")).body.users as UserJson[])
      .map((u) => u.name);
    assert.equal(names.filter((n) => n === "p1" || n === "p2").length, 1);
    // Same name twice in parallel: one wins too.
    const [c, d] = await Promise.all([
      admin.json("POST", "/api/v1/users", { body: { ...alice, name: "p3", knock: undefined } }),
      admin.json("POST", "/api/v1/users", { body: { ...alice, name: "p3", knock: undefined } }),
    ]);
    assert.deepEqual([c.status, d.status].sort(), [201, 409]);
  });
});

Deno.test("users: the last administrator cannot be deleted or demoted", async () => {
  await withApi(async (h) => {
    const admin = await h.adminClient();
    const del = await admin.json("DELETE", "/api/v1/users/admin");
    assert.equal(del.status, 409);
    assert.match((del.body as ErrorJson).error.message, /last administrator/);
    const demote = await admin.json("PATCH", "/api/v1/users/admin", { body: { role: "viewer" } });
    assert.equal(demote.status, 409);
    await h.userClient("second", "administrator");
    assert.equal(
      (await admin.json("PATCH", "/api/v1/users/admin", { body: { role: "operator" } })).status,
      200,
    );
  });
});

Deno.test("users: a password change ends the user's sessions and tokens", async () => {
  await withApi(async (h) => {
    const admin = await h.adminClient();
    const op = await h.userClient("otto", "operator");
    assert.equal((await op.json("GET", "/api/v1/status")).status, 200);
    const r = await admin.json("PATCH", "/api/v1/users/otto", {
      body: { password: "new-otto-pass" },
    });
    assert.equal(r.status, 200);
    assert.equal((await op.json("GET", "/api/v1/status")).status, 401);
  });
});

Deno.test("users: deleting or disabling a knock user ends their unlocks", async () => {
  await withApi(async (h) => {
    const admin = await h.adminClient();
    h.datapath.unlock("203.0.113.10", "alice", h.clock.now());
    h.datapath.unlock("203.0.113.11", "bob", h.clock.now());
    await admin.json("PATCH", "/api/v1/users/alice", { body: { knock: { enabled: false } } });
    assert.deepEqual([...h.datapath.unlockTable.keys()], ["203.0.113.11"]);
    assert.deepEqual(h.datapath.users, []);
    h.datapath.unlock("203.0.113.12", "alice", h.clock.now());
    assert.equal((await admin.request("DELETE", "/api/v1/users/alice")).status, 204);
    assert.deepEqual([...h.datapath.unlockTable.keys()], ["203.0.113.11"]);
  });
});

Deno.test("users: a deleted user's session stops working", async () => {
  await withApi(async (h) => {
    const admin = await h.adminClient();
    const op = await h.userClient("otto", "operator");
    await admin.request("DELETE", "/api/v1/users/otto");
    assert.equal((await op.json("GET", "/api/v1/status")).status, 401);
    assert.ok(op instanceof Client);
  });
});

Deno.test("users: a first knock port browsers refuse is a 400 naming knock.firstPort", async () => {
  await withApi(async (h) => {
    const admin = await h.adminClient();
    const r = await admin.json("POST", "/api/v1/users", {
      body: { ...alice, knock: { ...alice.knock, firstPort: 6000 } },
    });
    assert.equal(r.status, 400);
    assert.equal((r.body as ErrorJson).error.field, "knock.firstPort");
    assert.match((r.body as ErrorJson).error.message, /refused by web browsers/);
  });
});
