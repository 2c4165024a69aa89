import assert from "node:assert/strict";
import { ApiClient, ApiRequestError, NetworkError, normalizeUrl } from "./api_client.ts";
import { UsageError } from "./io.ts";

Deno.test("normalizeUrl: https:// added, trailing slash dropped, only http(s)", () => {
  assert.equal(normalizeUrl("192.0.2.1:8443"), "https://192.0.2.1:8443");
  assert.equal(normalizeUrl("https://kg.example/"), "https://kg.example");
  assert.equal(normalizeUrl("http://192.0.2.1:8443/base/"), "http://192.0.2.1:8443/base");
  assert.throws(() => normalizeUrl("ftp://x"), UsageError);
  assert.throws(() => normalizeUrl("http://[bad"), UsageError);
});

Deno.test({
  name: "ApiClient: error JSON, non-JSON errors, bearer header, unreachable host",
  sanitizeResources: false,
  fn: async () => {
    const seen: Headers[] = [];
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
      seen.push(req.headers);
      const path = new URL(req.url).pathname;
      if (path === "/api/v1/ok") return Response.json({ fine: true });
      if (path === "/api/v1/gone") return new Response(null, { status: 204 });
      if (path === "/api/v1/proxy") return new Response("<html>bad gateway", { status: 502 });
      return Response.json(
        { error: { status: 400, code: "invalid_input", message: "Invalid x", field: "x" } },
        { status: 400 },
      );
    });
    try {
      const api = new ApiClient(`http://127.0.0.1:${server.addr.port}`, {
        kind: "token",
        token: "t0k",
      });
      assert.deepEqual(await api.get("/ok"), { fine: true });
      assert.equal(seen[0].get("authorization"), "Bearer t0k");
      assert.equal(await api.request("DELETE", "/gone"), undefined);
      await assert.rejects(api.post("/bad", { a: 1 }), (e) => {
        assert.ok(e instanceof ApiRequestError);
        assert.deepEqual(e.body(), {
          error: { status: 400, code: "invalid_input", message: "Invalid x", field: "x" },
        });
        return true;
      });
      assert.equal(seen[2].get("content-type"), "application/json");
      await assert.rejects(api.get("/proxy"), /HTTP 502/);
      await assert.rejects(new ApiClient("http://127.0.0.1:1").get("/ok"), NetworkError);
    } finally {
      await server.shutdown();
    }
  },
});

Deno.test({
  name: "ApiClient: the cancel signal (Ctrl-C) abandons a request the appliance never answers",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    // Requests are held until the end, so the server can shut down gracefully then.
    let release = () => {};
    const held = new Promise<void>((r) => release = r);
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      () => held.then(() => new Response("late")),
    );
    try {
      const cancel = new AbortController();
      const api = new ApiClient(
        `http://127.0.0.1:${server.addr.port}`,
        null,
        10_000,
        cancel.signal,
      );
      setTimeout(() => cancel.abort(), 100);
      const t0 = Date.now();
      await assert.rejects(
        api.get("/status"),
        (e) => e instanceof NetworkError && e.message === "Interrupted",
      );
      assert.ok(Date.now() - t0 < 5_000);
      const slow = new ApiClient(`http://127.0.0.1:${server.addr.port}`, null, 200);
      await assert.rejects(slow.get("/status"), /no answer within 0\.2 s/);
    } finally {
      release();
      await server.shutdown();
    }
  },
});
