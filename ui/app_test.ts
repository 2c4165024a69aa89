import assert from "node:assert/strict";
import { type Harness, withApi } from "../src/api/_test_util.ts";
import { createUi, safeNext } from "./mod.ts";

/** Runs `fn` with the UI mounted on the API app of a fresh harness. */
function withUi(fn: (h: Harness) => Promise<void>): Promise<void> {
  return withApi(async (h) => {
    const { store, datapath, logger, clock, config } = h;
    // Before any request: Hono builds its matcher on the first one.
    h.app.route("/", createUi({ store, datapath, logger, clock, config }, { api: h.app }));
    await fn(h);
  });
}

async function page(client: Awaited<ReturnType<Harness["login"]>>, path: string) {
  const res = await client.request("GET", path);
  return { status: res.status, html: await res.text(), res };
}

Deno.test("ui: pages redirect to the sign-in page without a session", async () => {
  await withUi(async (h) => {
    for (const path of ["/", "/users", "/rules?x=1", "/events", "/settings"]) {
      const res = await h.anon.request("GET", path);
      await res.body?.cancel();
      assert.equal(res.status, 303, path);
      assert.equal(res.headers.get("location"), `/login?next=${encodeURIComponent(path)}`);
    }
  });
});

Deno.test("ui: a bearer token does not open pages", async () => {
  await withUi(async (h) => {
    const token = await h.adminClient();
    const res = await token.request("GET", "/");
    await res.body?.cancel();
    assert.equal(res.status, 303);
  });
});

Deno.test("ui: the sign-in page labels every field and loads no inline script", async () => {
  await withUi(async (h) => {
    const res = await h.anon.request("GET", "/login?next=%2Frules");
    const html = await res.text();
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-security-policy") ?? "", /^default-src 'self'/);
    for (const id of ["login-username", "login-password", "login-code"]) {
      assert.match(html, new RegExp(`<label for="${id}">`));
      assert.match(html, new RegExp(`id="${id}"`));
    }
    assert.match(html, /<input type="hidden" name="next" value="\/rules">/);
    // The CSP forbids inline scripts and style attributes.
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/);
    assert.doesNotMatch(html, /\sstyle=/);
  });
});

Deno.test("ui: safeNext keeps only paths inside the UI", () => {
  assert.equal(safeNext("/rules?x=1"), "/rules?x=1");
  assert.equal(safeNext(undefined), "/");
  assert.equal(safeNext("//evil.example/"), "/");
  assert.equal(safeNext("/\\evil.example"), "/");
  assert.equal(safeNext("https://evil.example/"), "/");
  assert.equal(safeNext("/login?next=/"), "/");
  assert.equal(safeNext("/a b"), "/");
});

Deno.test("ui: an administrator sees every page with the session's CSRF token", async () => {
  await withUi(async (h) => {
    const admin = await h.login(h.admin.name, h.admin.password, h.admin.totpSecret);
    const csrf = admin.creds?.kind === "cookie" ? admin.creds.csrf : "";
    const pages: [string, string][] = [
      ["/", "Dashboard"],
      ["/users", "Users"],
      ["/users/new", "Add user"],
      ["/users/alice/edit", "Edit user alice"],
      ["/users/alice/mfa", "New TOTP secret for alice"],
      ["/rules", "Rules"],
      ["/rules/forwards/new", "Add port forward"],
      ["/rules/forwards/web/edit", "Edit port forward web"],
      ["/rules/open-ports/new", "Add open-ports rule"],
      ["/events", "Events"],
      ["/settings", "Settings"],
    ];
    for (const [path, title] of pages) {
      const r = await page(admin, path);
      assert.equal(r.status, 200, `${path}: ${r.html.slice(0, 300)}`);
      assert.match(r.html, new RegExp(`<h1>${title}</h1>`), path);
      assert.match(r.html, new RegExp(`<meta name="kg-csrf" content="${csrf}">`), path);
      assert.equal(r.res.headers.get("cache-control"), "no-store", path);
      assert.doesNotMatch(r.html, /<script(?![^>]*\bsrc=)[^>]*>/, path);
      assert.doesNotMatch(r.html, /\sstyle=/, path);
    }
    const signIn = await admin.request("GET", "/login?next=%2Frules");
    await signIn.body?.cancel();
    assert.equal(signIn.status, 303);
    assert.equal(signIn.headers.get("location"), "/rules");
  });
});

Deno.test("ui: the dashboard lists unlocks with Revoke for operators only", async () => {
  await withUi(async (h) => {
    h.datapath.unlock("203.0.113.10", "alice", h.clock.now());
    const admin = await h.login(h.admin.name, h.admin.password, h.admin.totpSecret);
    const a = await page(admin, "/");
    assert.match(a.html, /<tr data-ip="203.0.113.10"><th scope="row" data-label="IP"/);
    assert.match(a.html, /data-revoke="203.0.113.10"/);
    assert.match(a.html, /Clock synchronised/);
    await h.store.users.createUser(
      { name: "vera", password: "vera-password", role: "viewer" },
      "t",
    );
    await h.store.users.confirmMfaEnrollment("vera", "t");
    const { secret } = await h.store.users.getMfaSecrets("vera");
    const viewer = await h.login("vera", "vera-password", secret);
    const v = await page(viewer, "/");
    assert.match(v.html, /203\.0\.113\.10/);
    assert.doesNotMatch(v.html, /data-revoke=/);
    assert.doesNotMatch(v.html, /href="\/users"/);
    assert.equal((await page(viewer, "/users")).status, 403);
    assert.equal((await page(viewer, "/settings")).status, 403);
    assert.equal((await page(viewer, "/rules/forwards/new")).status, 403);
    assert.equal((await page(viewer, "/users/vera/mfa")).status, 200);
    assert.equal((await page(viewer, "/users/alice/mfa")).status, 403);
  });
});

Deno.test("ui: an operator reads settings without a Save button", async () => {
  await withUi(async (h) => {
    await h.store.users.createUser(
      { name: "otto", password: "otto-password", role: "operator" },
      "t",
    );
    await h.store.users.confirmMfaEnrollment("otto", "t");
    const { secret } = await h.store.users.getMfaSecrets("otto");
    const op = await h.login("otto", "otto-password", secret);
    const r = await page(op, "/settings");
    assert.equal(r.status, 200);
    assert.match(r.html, /Only administrators can change settings/);
    assert.doesNotMatch(r.html, /Save settings/);
    // Operators choose users for rules although they may not list users through the API.
    const form = await page(op, "/rules/forwards/new");
    assert.match(form.html, /value="alice"/);
  });
});

Deno.test("ui: unknown users and rules render a 404 page", async () => {
  await withUi(async (h) => {
    const admin = await h.login(h.admin.name, h.admin.password, h.admin.totpSecret);
    for (const path of ["/users/nobody/edit", "/rules/forwards/nope/edit"]) {
      const r = await page(admin, path);
      assert.equal(r.status, 404, path);
      assert.match(r.html, /<h1>Not found<\/h1>/);
    }
  });
});

Deno.test("ui: event details are escaped", async () => {
  await withUi(async (h) => {
    h.logger.record("config-changed", { source: "api", detail: '<img src=x onerror="alert(1)">' });
    const admin = await h.login(h.admin.name, h.admin.password, h.admin.totpSecret);
    const r = await page(admin, "/events?q=img");
    assert.match(r.html, /&lt;img src=x onerror=&quot;alert\(1\)&quot;&gt;/);
    assert.doesNotMatch(r.html, /<img src=x/);
    const filtered = await page(admin, "/events?type=management-login");
    assert.doesNotMatch(filtered.html, /onerror/);
    assert.match(filtered.html, /<option value="management-login" selected>/);
  });
});

Deno.test("ui: static files with ETag; unknown names fall through to the API's 404", async () => {
  await withUi(async (h) => {
    const css = await h.anon.request("GET", "/static/app.css");
    assert.equal(css.status, 200);
    assert.equal(css.headers.get("content-type"), "text/css; charset=utf-8");
    assert.ok((await css.text()).includes(":root"));
    const etag = css.headers.get("etag")!;
    const again = await h.anon.request("GET", "/static/app.css", {
      headers: { "if-none-match": etag },
    });
    await again.body?.cancel();
    assert.equal(again.status, 304);
    const js = await h.anon.request("GET", "/static/kg.js");
    await js.body?.cancel();
    assert.equal(js.headers.get("content-type"), "text/javascript; charset=utf-8");
    for (const path of ["/static/nope.js", "/static/format_test.ts", "/static/..%2Fapp.tsx"]) {
      const r = await h.anon.request("GET", path);
      await r.body?.cancel();
      assert.equal(r.status, 404, path);
    }
  });
});

Deno.test("ui: the knock page is served as is, under its own CSP", async () => {
  await withUi(async (h) => {
    const redirect = await h.anon.request("GET", "/knock");
    await redirect.body?.cancel();
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers.get("location"), "/knock/");
    const res = await h.anon.request("GET", "/knock/");
    const html = await res.text();
    assert.equal(res.status, 200);
    const onDisk = await Deno.readTextFile(new URL("./knock/index.html", import.meta.url));
    assert.equal(html, onDisk);
    const csp = res.headers.get("content-security-policy") ?? "";
    assert.match(csp, /script-src 'sha256-[A-Za-z0-9+/=]+'/);
    assert.match(csp, /frame-ancestors 'none'/);
  });
});

Deno.test("ui: mounting the UI leaves the API as it was", async () => {
  await withUi(async (h) => {
    const health = await h.anon.json("GET", "/api/v1/health");
    assert.equal(health.status, 200);
    const missing = await h.anon.json("GET", "/no-such-page");
    assert.equal(missing.status, 404);
    assert.equal((missing.body.error as { code: string }).code, "not_found");
  });
});

/** Posts a form the way kg.js does (urlencoded, CSRF header from the client). */
async function post(
  client: Awaited<ReturnType<Harness["login"]>>,
  path: string,
  fields: [string, string][] = [],
) {
  const res = await client.request("POST", path, {
    raw: new URLSearchParams(fields).toString(),
    headers: { "content-type": "application/x-www-form-urlencoded", "kg-request": "1" },
  });
  return { status: res.status, html: await res.text(), res };
}

Deno.test("ui: a refused user form names every bad field beside it", async () => {
  await withUi(async (h) => {
    const admin = await h.login(h.admin.name, h.admin.password, h.admin.totpSecret);
    const r = await post(admin, "/users/new", [
      ["name", "bob"],
      ["password", "bob-password-1"],
      ["role", "operator"],
      ["knock.enabled", "on"],
      ["knock.firstPort", "41001"],
      ["knock.length", "3"],
      ["knock.transport", "any"],
      ["allowedRules", "*"],
    ]);
    console.log(r.status, r.html);
  });
});
