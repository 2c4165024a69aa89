import assert from "node:assert/strict";
import { certInfo, generateSelfSigned } from "../../host/tls.ts";
import { withApi } from "../_test_util.ts";

type ErrorJson = { error: { status: number; code: string; field?: string; message: string } };

Deno.test("tls: GET shows the served certificate and its fingerprint without sign-in", async () => {
  await withApi(async (h) => {
    const r = await h.anon.json("GET", "/api/v1/tls");
    assert.equal(r.status, 200);
    const active = r.body.active as { fingerprint: string; subjectAltNames: string[] };
    assert.equal(active.fingerprint, h.tls.active.fingerprint);
    assert.match(active.fingerprint, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    assert.deepEqual(active.subjectAltNames, ["IP Address:192.0.2.1"]);
    assert.equal(r.body.pending, null);
    assert.equal(r.body.replaceable, true);
    assert.equal(r.res.headers.get("strict-transport-security"), "max-age=31536000");
  });
});

Deno.test("tls: PUT is for administrators, checks the pair (expiry: host/tls_test), writes it for the next start", async () => {
  await withApi(async (h) => {
    h.clock.advance(Date.now() - h.clock.now()); // certificates are valid from now on
    const own = await generateSelfSigned(["192.0.2.1", "192.0.2.250"]);
    const other = await generateSelfSigned(["192.0.2.1"]);
    const op = await h.userClient("otto", "operator");
    assert.equal((await op.json("PUT", "/api/v1/tls", { body: own })).status, 403);
    assert.equal((await h.anon.json("PUT", "/api/v1/tls", { body: own })).status, 401);
    const admin = await h.adminClient();
    const mismatch = await admin.json("PUT", "/api/v1/tls", {
      body: { cert: own.cert, key: other.key },
    });
    assert.equal(mismatch.status, 400);
    const e = mismatch.body as unknown as ErrorJson;
    assert.equal(e.error.field, "key");
    assert.match(e.error.message, /does not belong/);
    const junk = await admin.json("PUT", "/api/v1/tls", { body: { cert: "x", key: own.key } });
    assert.equal(junk.status, 400);
    assert.equal((junk.body as unknown as ErrorJson).error.field, "cert");
    const ok = await admin.json("PUT", "/api/v1/tls", { body: own });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const fp = (certInfo(own.cert) as { fingerprint: string }).fingerprint;
    assert.equal((ok.body.pending as { fingerprint: string }).fingerprint, fp);
    assert.equal((ok.body.active as { fingerprint: string }).fingerprint, h.tls.active.fingerprint);
    assert.equal(await Deno.readTextFile(h.tls.paths.cert), own.cert);
    assert.equal((await Deno.stat(h.tls.paths.key)).mode! & 0o777, 0o600);
    h.tls.source = "config";
    const fixed = await admin.json("PUT", "/api/v1/tls", { body: own });
    assert.equal(fixed.status, 409);
  });
});

Deno.test("tls: the session cookie is Secure, HttpOnly and SameSite=Strict", async () => {
  await withApi(async (h) => {
    h.clock.advance(30_000);
    const { totpCode } = await import("../../knock/totp.ts");
    const code = totpCode(h.admin.totpSecret, Math.floor(h.clock.now() / 1000));
    const r = await h.anon.json("POST", "/api/v1/auth/login", {
      body: { username: h.admin.name, password: h.admin.password, code },
    });
    assert.equal(r.status, 200);
    const cookie = r.res.headers.get("set-cookie") ?? "";
    assert.match(cookie, /; Secure/);
    assert.match(cookie, /; HttpOnly/);
    assert.match(cookie, /; SameSite=Strict/);
  });
});
