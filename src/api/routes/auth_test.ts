import assert from "node:assert/strict";
import { hasControl } from "../../log/escape.ts";
import { formatLine } from "../../log/stdout.ts";
import { createApp } from "../app.ts";
import { Client, codeAt, withApi } from "../_test_util.ts";

type ErrorJson = { error: { status: number; code: string; message: string; field?: string } };

Deno.test("auth: login sets a strict HttpOnly cookie and returns the CSRF token", async () => {
  await withApi(async ({ anon, admin, clock, logger }) => {
    clock.advance(30_000);
    const r = await anon.json("POST", "/api/v1/auth/login", {
      body: { username: "admin", password: admin.password, code: codeAt(admin.totpSecret, clock) },
    });
    assert.equal(r.status, 200);
    const cookie = r.res.headers.get("set-cookie")!;
    assert.match(cookie, /^kg_session=[0-9a-f]{64};/);
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    assert.match(cookie, /Path=\//);
    assert.match(r.body.csrfToken as string, /^[0-9a-f]{64}$/);
    assert.equal(r.body.role, "administrator");
    assert.equal((r.body.user as { name: string }).name, "admin");
    assert.equal("passwordHash" in (r.body.user as object), false);
    const last = logger.recent(1)[0];
    assert.equal(last.type, "management-login");
    assert.equal(last.type === "management-login" && last.success, true);
  });
});

Deno.test("auth: wrong password, wrong code, unenrolled user and reused code are 401", async () => {
  await withApi(async ({ anon, admin, clock, store, logger }) => {
    clock.advance(30_000);
    const code = codeAt(admin.totpSecret, clock);
    const wrongPw = await anon.json("POST", "/api/v1/auth/login", {
      body: { username: "admin", password: "not-the-password", code },
    });
    assert.equal(wrongPw.status, 401);
    assert.equal((wrongPw.body as ErrorJson).error.code, "invalid_credentials");
    const wrongCode = await anon.json("POST", "/api/v1/auth/login", {
      body: {
        username: "admin",
        password: admin.password,
        code: code === "000000" ? "111111" : "000000",
      },
    });
    assert.equal(wrongCode.status, 401);

    await store.users.createUser(
      { name: "newbie", password: "newbie-pass", role: "operator" },
      "t",
    );
    const { secret } = await store.users.getMfaSecrets("newbie");
    const unenrolled = await anon.json("POST", "/api/v1/auth/login", {
      body: { username: "newbie", password: "newbie-pass", code: codeAt(secret, clock) },
    });
    assert.equal(unenrolled.status, 401);

    const ok = await anon.json("POST", "/api/v1/auth/login", {
      body: { username: "admin", password: admin.password, code },
    });
    assert.equal(ok.status, 200);
    const replay = await anon.json("POST", "/api/v1/auth/login", {
      body: { username: "admin", password: admin.password, code },
    });
    assert.equal(replay.status, 401);
    const reasons = logger.recent().flatMap((e) =>
      e.type === "management-login" && !e.success ? [e.reason] : []
    );
    assert.deepEqual(reasons, ["bad-password", "bad-code", "mfa-not-enrolled", "code-reused"]);
  });
});

Deno.test("auth: bad login bodies are 400 naming the field", async () => {
  await withApi(async ({ anon }) => {
    const r = await anon.json("POST", "/api/v1/auth/login", {
      body: { username: "admin", password: "x", code: "12345" },
    });
    assert.equal(r.status, 400);
    assert.equal((r.body as ErrorJson).error.field, "code");
    assert.match((r.body as ErrorJson).error.message, /code: must be 6 digits/);
    const extra = await anon.json("POST", "/api/v1/auth/login", {
      body: { username: "admin", password: "x", code: "123456", remember: true },
    });
    assert.equal(extra.status, 400);
    assert.match((extra.body as ErrorJson).error.message, /remember/);
  });
});

Deno.test("auth: failures from other sources never lock the admin out; 5 per (user, source) do", async () => {
  await withApi(async ({ app, admin, clock }) => {
    const body = (password: string) => ({
      body: { username: "admin", password, code: codeAt(admin.totpSecret, clock) },
    });
    const login = (ip: string, password: string) =>
      new Client(app, null, ip).json("POST", "/api/v1/auth/login", body(password));
    for (let i = 0; i < 50; i++) {
      // An attacker spread over many addresses, guessing the admin's password.
      assert.equal((await login(`203.0.113.${i + 1}`, "wrong-password")).status, 401);
    }
    assert.equal((await login("192.0.2.50", admin.password)).status, 200, "the admin gets in");
    clock.advance(30_000); // a fresh code
    for (let i = 0; i < 5; i++) {
      assert.equal((await login("203.0.113.200", "wrong-password")).status, 401);
    }
    const locked = await login("203.0.113.200", admin.password);
    assert.equal(locked.status, 429);
    assert.equal((locked.body as ErrorJson).error.code, "too_many_attempts");
    assert.equal(locked.res.headers.get("retry-after"), "300");
    assert.equal((await login("192.0.2.50", admin.password)).status, 200, "another place works");
    clock.advance(301_000);
    assert.equal((await login("203.0.113.200", admin.password)).status, 200);
  });
});

Deno.test("auth: 20 failures from one source lock that source out for every user", async () => {
  await withApi(async ({ app, admin, clock }) => {
    const attacker = new Client(app, null, "203.0.113.66");
    for (let i = 0; i < 20; i++) {
      const r = await attacker.json("POST", "/api/v1/auth/login", {
        body: { username: `guess${i}`, password: "password1", code: "123456" },
      });
      assert.equal(r.status, 401);
    }
    const body = {
      body: { username: "admin", password: admin.password, code: codeAt(admin.totpSecret, clock) },
    };
    assert.equal((await attacker.json("POST", "/api/v1/auth/login", body)).status, 429);
    const other = new Client(app, null, "203.0.113.67");
    assert.equal((await other.json("POST", "/api/v1/auth/login", body)).status, 200);
  });
});

Deno.test("auth: a user name with control characters is logged escaped", async () => {
  await withApi(async ({ anon, logger }) => {
    const username = "admin\n2026-12-01 10:00:00 [Management] login success\u001b[31m\u0000";
    const r = await anon.json("POST", "/api/v1/auth/login", {
      body: { username, password: "x", code: "123456" },
    });
    assert.equal(r.status, 401);
    const e = logger.recent(1)[0];
    assert.equal(e.type, "management-login");
    const user = e.type === "management-login" ? e.user : "";
    assert.equal(user, "admin\\x0a2026-12-01 10:00:00 [Management] login success\\x1b[31m\\x00");
    assert.ok(!hasControl(formatLine(e)));
  });
});

Deno.test("auth: a sign-in code used once is refused by a new API over the same store (a restart)", async () => {
  await withApi(async (h) => {
    h.clock.advance(30_000);
    const body = {
      body: {
        username: "admin",
        password: h.admin.password,
        code: codeAt(h.admin.totpSecret, h.clock),
      },
    };
    assert.equal((await h.anon.json("POST", "/api/v1/auth/login", body)).status, 200);
    const restarted = createApp({
      store: h.store,
      datapath: h.datapath,
      logger: h.logger,
      clock: h.clock,
      config: h.config,
      clockHealth: () =>
        Promise.resolve({ synchronised: true, detail: "test", now: h.clock.now() }),
    });
    const again = await new Client(restarted, null).json("POST", "/api/v1/auth/login", body);
    assert.equal(again.status, 401);
    const e = h.logger.recent(1)[0];
    assert.equal(e.type === "management-login" && e.reason, "code-reused");
  });
});

Deno.test("auth: cookie sessions need the CSRF header on writes, tokens do not", async () => {
  await withApi(async (h) => {
    const session = await h.login("admin", h.admin.password, h.admin.totpSecret);
    const rule = {
      name: "web2",
      publicPorts: { start: 52301, end: 52301 },
      privateAddress: "192.0.2.12",
    };
    const missing = await session.json("POST", "/api/v1/rules/forwards", {
      body: rule,
      noCsrf: true,
    });
    assert.equal(missing.status, 403);
    assert.equal((missing.body as ErrorJson).error.code, "csrf_failed");
    const wrong = await session.json("POST", "/api/v1/rules/forwards", {
      body: rule,
      noCsrf: true,
      headers: { "x-csrf-token": "0".repeat(64) },
    });
    assert.equal(wrong.status, 403);
    assert.equal((await session.json("GET", "/api/v1/rules", { noCsrf: true })).status, 200);
    assert.equal(
      (await session.json("POST", "/api/v1/rules/forwards", { body: rule })).status,
      201,
    );
    const token = await h.adminClient();
    const byToken = await token.json("POST", "/api/v1/rules/forwards", {
      body: { ...rule, name: "web3", publicPorts: { start: 52302, end: 52302 } },
    });
    assert.equal(byToken.status, 201);
  });
});

Deno.test("auth: unauthenticated and malformed credentials are 401", async () => {
  await withApi(async ({ app, anon }) => {
    const r = await anon.json("GET", "/api/v1/auth/me");
    assert.equal(r.status, 401);
    assert.equal((r.body as ErrorJson).error.code, "unauthenticated");
    assert.match(r.res.headers.get("www-authenticate") ?? "", /Bearer/);
    const junk = new Client(app, { kind: "token", token: "not-a-token" });
    assert.equal((await junk.json("GET", "/api/v1/status")).status, 401);
    const unknown = new Client(app, { kind: "token", token: "a".repeat(64) });
    assert.equal((await unknown.json("GET", "/api/v1/status")).status, 401);
  });
});

Deno.test("auth: me, tokens (create, list, revoke) and logout", async () => {
  await withApi(async (h) => {
    const session = await h.login("admin", h.admin.password, h.admin.totpSecret);
    const me = await session.json("GET", "/api/v1/auth/me");
    assert.equal(me.status, 200);
    assert.equal(me.body.kind, "cookie");
    assert.match(me.body.csrfToken as string, /^[0-9a-f]{64}$/);

    const created = await session.json("POST", "/api/v1/auth/tokens", { body: { ttlDays: 7 } });
    assert.equal(created.status, 201);
    assert.equal(created.body.expiresAt, (created.body.createdAt as number) + 7 * 86400_000);
    const token = new Client(h.app, { kind: "token", token: created.body.token as string });
    const tokenMe = await token.json("GET", "/api/v1/auth/me");
    assert.equal(tokenMe.body.kind, "token");
    assert.equal(tokenMe.body.csrfToken, undefined);
    // A token cannot mint tokens.
    assert.equal((await token.json("POST", "/api/v1/auth/tokens", { body: {} })).status, 403);

    const list = await session.json("GET", "/api/v1/auth/tokens");
    assert.deepEqual((list.body.tokens as { id: string }[]).map((t) => t.id), [created.body.id]);
    const del = await session.request("DELETE", `/api/v1/auth/tokens/${created.body.id}`);
    assert.equal(del.status, 204);
    assert.equal((await token.json("GET", "/api/v1/auth/me")).status, 401);
    const again = await session.json("DELETE", `/api/v1/auth/tokens/${created.body.id}`);
    assert.equal(again.status, 404);

    const out = await session.request("POST", "/api/v1/auth/logout");
    assert.equal(out.status, 204);
    assert.match(out.headers.get("set-cookie") ?? "", /kg_session=;/);
    assert.equal((await session.json("GET", "/api/v1/auth/me")).status, 401);
  });
});

Deno.test("auth: role changes apply to existing sessions at once", async () => {
  await withApi(async (h) => {
    const op = await h.userClient("olga", "operator");
    assert.equal((await op.json("GET", "/api/v1/settings")).status, 200);
    await h.store.users.updateUser("olga", { role: "viewer" }, "test");
    assert.equal((await op.json("GET", "/api/v1/settings")).status, 403);
  });
});
