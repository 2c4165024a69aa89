import assert from "node:assert/strict";
import { withApi } from "./_test_util.ts";

Deno.test("app: unknown routes answer 404 in the error shape", async () => {
  await withApi(async ({ anon }) => {
    const r = await anon.json("GET", "/api/v1/nope");
    assert.equal(r.status, 404);
    assert.deepEqual(r.body, {
      error: { status: 404, code: "not_found", message: "No such endpoint: GET /api/v1/nope" },
    });
  });
});

Deno.test("app: security headers on API answers", async () => {
  await withApi(async ({ anon }) => {
    const res = await anon.request("GET", "/api/v1/health");
    await res.body?.cancel();
    assert.equal(res.status, 200);
    assert.equal(
      res.headers.get("content-security-policy")?.startsWith("default-src 'self'"),
      true,
    );
    assert.equal(res.headers.get("x-frame-options"), "DENY");
    assert.equal(res.headers.get("x-content-type-options"), "nosniff");
    assert.equal(res.headers.get("referrer-policy"), "no-referrer");
    assert.equal(res.headers.get("cache-control"), "no-store");
  });
});

Deno.test("app: malformed JSON, wrong media type and huge bodies are 4xx JSON errors", async () => {
  await withApi(async (h) => {
    const admin = await h.adminClient();
    const bad = await admin.json("POST", "/api/v1/rules/forwards", { raw: "{not json" });
    assert.equal(bad.status, 400);
    assert.equal((bad.body.error as { code: string }).code, "invalid_input");
    const media = await admin.json("POST", "/api/v1/rules/forwards", {
      raw: "name=web",
      headers: { "content-type": "text/plain" },
    });
    assert.equal(media.status, 415);
    assert.equal((media.body.error as { code: string }).code, "unsupported_media_type");
    const huge = await admin.json("POST", "/api/v1/rules/forwards", {
      raw: JSON.stringify({ name: "x".repeat(70_000) }),
    });
    assert.equal(huge.status, 413);
    assert.equal((huge.body.error as { code: string }).code, "payload_too_large");
  });
});

Deno.test("app: the OpenAPI description lists every resource", async () => {
  await withApi(async ({ anon }) => {
    const r = await anon.json("GET", "/api/v1/openapi.json");
    assert.equal(r.status, 200);
    const paths = Object.keys(r.body.paths as Record<string, unknown>);
    for (
      const p of [
        "/api/v1/auth/login",
        "/api/v1/auth/tokens",
        "/api/v1/users",
        "/api/v1/users/{name}/mfa/verify",
        "/api/v1/rules/forwards/{name}",
        "/api/v1/rules/open-ports",
        "/api/v1/settings",
        "/api/v1/status/unlocks/{ip}",
        "/api/v1/status/flows",
        "/api/v1/events/stream",
        "/api/v1/audit",
        "/api/v1/health",
        "/metrics",
      ]
    ) assert.ok(paths.includes(p), `${p} in ${paths.join(" ")}`);
    const schemes = (r.body.components as { securitySchemes: Record<string, unknown> })
      .securitySchemes;
    assert.deepEqual(Object.keys(schemes).sort(), ["bearer", "cookie"]);
  });
});

Deno.test("app: served by Deno.serve, the client IP comes from the connection", async () => {
  await withApi(async ({ app, logger }) => {
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.fetch);
    try {
      const url = `http://127.0.0.1:${server.addr.port}`;
      const res = await fetch(`${url}/api/v1/auth/login`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-forwarded-for": "203.0.113.1" },
        body: JSON.stringify({ username: "admin", password: "wrong-password", code: "000000" }),
      });
      assert.equal(res.status, 401);
      await res.body?.cancel();
      const e = logger.recent(1)[0];
      assert.equal(e.type === "management-login" && e.ip, "127.0.0.1");
      const health = await fetch(`${url}/api/v1/health`);
      assert.equal((await health.json()).status, "ok");
    } finally {
      await server.shutdown();
    }
  });
});
