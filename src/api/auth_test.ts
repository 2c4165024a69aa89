import assert from "node:assert/strict";
import { Hono } from "hono";
import { clientIp } from "./auth.ts";
import { type Client, withApi } from "./_test_util.ts";

type Role = "administrator" | "operator" | "viewer";
const ALL: Role[] = ["administrator", "operator", "viewer"];
const STAFF: Role[] = ["administrator", "operator"];
const ADMIN: Role[] = ["administrator"];

/** Every guarded route and the roles it admits (names that do not exist keep it harmless). */
const MATRIX: [string, string, Role[]][] = [
  ["GET", "/api/v1/auth/me", ALL],
  ["GET", "/api/v1/auth/tokens", ALL],
  ["POST", "/api/v1/auth/tokens", ALL],
  ["DELETE", `/api/v1/auth/tokens/${"0".repeat(64)}`, ALL],
  ["GET", "/api/v1/users", ADMIN],
  ["POST", "/api/v1/users", ADMIN],
  ["GET", "/api/v1/users/ghost", ADMIN],
  ["PATCH", "/api/v1/users/ghost", ADMIN],
  ["DELETE", "/api/v1/users/ghost", ADMIN],
  ["POST", "/api/v1/users/ghost/mfa/rotate", ADMIN],
  ["POST", "/api/v1/users/ghost/mfa/verify", ADMIN],
  ["GET", "/api/v1/rules", ALL],
  ["GET", "/api/v1/rules/forwards", ALL],
  ["GET", "/api/v1/rules/forwards/ghost", ALL],
  ["POST", "/api/v1/rules/forwards", STAFF],
  ["PUT", "/api/v1/rules/forwards/ghost", STAFF],
  ["DELETE", "/api/v1/rules/forwards/ghost", STAFF],
  ["GET", "/api/v1/rules/open-ports", ALL],
  ["GET", "/api/v1/rules/open-ports/ghost", ALL],
  ["POST", "/api/v1/rules/open-ports", STAFF],
  ["PUT", "/api/v1/rules/open-ports/ghost", STAFF],
  ["DELETE", "/api/v1/rules/open-ports/ghost", STAFF],
  ["GET", "/api/v1/settings", STAFF],
  ["PATCH", "/api/v1/settings", ADMIN],
  ["GET", "/api/v1/status", ALL],
  ["GET", "/api/v1/status/unlocks", ALL],
  ["DELETE", "/api/v1/status/unlocks/203.0.113.77", STAFF],
  ["GET", "/api/v1/status/flows", ALL],
  ["GET", "/api/v1/events", ALL],
  ["GET", "/api/v1/audit", ADMIN],
  ["GET", "/metrics", ALL],
];

Deno.test("roles: every guarded route admits exactly its roles; strangers get 401", async () => {
  await withApi(async (h) => {
    const clients: Record<Role, Client> = {
      administrator: await h.adminClient(),
      operator: await h.userClient("otto", "operator"),
      viewer: await h.userClient("vic", "viewer"),
    };
    for (const [method, path, allowed] of MATRIX) {
      const body = method === "GET" || method === "DELETE" ? undefined : {};
      const anon = await h.anon.request(method, path, { body });
      await anon.body?.cancel();
      assert.equal(anon.status, 401, `anonymous ${method} ${path}`);
      for (const role of ALL) {
        const res = await clients[role].request(method, path, { body });
        const text = await res.text();
        const forbidden = res.status === 403 && JSON.parse(text).error.code === "forbidden";
        assert.equal(forbidden, !allowed.includes(role), `${role} ${method} ${path}: ${text}`);
        assert.ok(res.status < 500, `${role} ${method} ${path}: ${text}`);
      }
    }
  });
});

Deno.test("roles: sign-in, health, OpenAPI and docs need no principal", async () => {
  await withApi(async ({ anon }) => {
    for (const path of ["/api/v1/health", "/api/v1/openapi.json", "/api/docs/"]) {
      const res = await anon.request("GET", path);
      await res.body?.cancel();
      assert.equal(res.status, 200, path);
    }
    const login = await anon.json("POST", "/api/v1/auth/login", {
      body: { username: "ghost", password: "password", code: "123456" },
    });
    assert.equal(login.status, 401);
    assert.equal((login.body.error as { code: string }).code, "invalid_credentials");
  });
});

Deno.test("clientIp: the connection's address, 'unknown' without one", async () => {
  const app = new Hono();
  app.get("/", (c) => c.text(clientIp(c)));
  const env = { remoteAddr: { hostname: "203.0.113.5", port: 1, transport: "tcp" } };
  assert.equal(await (await app.request("/", {}, env)).text(), "203.0.113.5");
  assert.equal(
    await (await app.request("/", { headers: { "x-forwarded-for": "1.2.3.4" } })).text(),
    "unknown",
  );
});
