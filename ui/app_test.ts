import assert from "node:assert/strict";
import {
  dualStackTwoUplinkConfig,
  dualStackTwoUplinkStatus,
  type Harness,
  twoUplinkConfig,
  twoUplinkStatus,
  withApi,
} from "../src/api/_test_util.ts";
import { StoreBanner } from "./components.tsx";
import { createUi, safeNext } from "./mod.ts";

/** Runs `fn` with the UI mounted on the API app of a fresh harness. */
function withUi(
  fn: (h: Harness) => Promise<void>,
  config?: Parameters<typeof withApi>[2],
): Promise<void> {
  return withApi(
    async (h) => {
      const { store, datapath, logger, clock, config } = h;
      // Before any request: Hono builds its matcher on the first one.
      h.app.route("/", createUi({ store, datapath, logger, clock, config }, { api: h.app }));
      await fn(h);
    },
    {},
    config,
  );
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

Deno.test("ui: the dashboard lists the nodes of the fleet, up or down", async () => {
  await withUi(async (h) => {
    const admin = await h.login(h.admin.name, h.admin.password, h.admin.totpSecret);
    const record = (name: string, heartbeatAt: number) => ({
      name,
      url: "https://192.0.2.2:8443/",
      version: "0.9.0",
      startedAt: heartbeatAt,
      heartbeatAt,
      flows: 5,
      unlocks: 2,
    });
    await h.store.nodes.heartbeat(record("kg-a", h.clock.now()));
    await h.store.nodes.heartbeat(record("kg-b", h.clock.now() - 60_000));
    const a = await page(admin, "/");
    assert.match(a.html, /<tr data-node="kg-a"><th scope="row" data-label="Node">kg-a/);
    assert.match(a.html, /data-node="kg-a">.*?<span class="pill ok">Up<\/span>/s);
    assert.match(a.html, /data-node="kg-b">.*?<span class="pill error">Down<\/span>/s);
    assert.match(a.html, /Store: KV file/);
    assert.doesNotMatch(a.html, /Store unreachable/, "the KV file is always reachable");
  });
});

Deno.test("ui: the store banner says changes are refused while no etcd member answers", async () => {
  const now = Date.UTC(2026, 0, 1);
  const up = {
    backend: "etcd" as const,
    connected: true,
    lastContactMs: now,
    revision: 9,
    loaded: true,
  };
  assert.equal(await StoreBanner({ store: up, now }), null);
  const html = String(
    await StoreBanner({ store: { ...up, connected: false, lastContactMs: now - 42_000 }, now }),
  );
  assert.match(html, /^<div class="alert error" id="store-state" role="alert">/);
  assert.match(html, /<strong>Store unreachable: changes refused\.<\/strong>/);
  assert.match(html, /last answer 42 s ago/);
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

/** The text of the error slot of `field` in `html` ("" when hidden or absent). */
function slotText(html: string, field: string): string {
  const m = new RegExp(`<p [^>]*data-error-for="${field.replaceAll(".", "\\.")}"[^>]*>([^<]*)<`)
    .exec(html);
  return m && !/ hidden/.test(m[0].slice(0, m[0].indexOf(">"))) ? m[1] : "";
}

Deno.test("ui: a refused user form comes back with the problem beside its field", async () => {
  await withUi(async (h) => {
    const admin = await h.login(h.admin.name, h.admin.password, h.admin.totpSecret);
    const fields: [string, string][] = [
      ["name", "bob"],
      ["password", "bob-password-1"],
      ["role", "operator"],
      ["knock.enabled", "on"],
      ["knock.firstPort", "41001"],
      ["knock.length", "3"],
      ["knock.transport", "any"],
      ["allowedRules", "*"],
    ];
    const r = await post(admin, "/users/new", fields);
    assert.equal(r.status, 409);
    assert.match(r.html, /^<div id="user-new"><form id="user-form"/);
    assert.match(
      slotText(r.html, "knock.firstPort"),
      /knock port 41001 is also user &quot;alice&quot;/,
    );
    assert.match(r.html, /id="knock-first-port"[^>]*value="41001"/);
    assert.match(r.html, /aria-invalid="true"/);
    assert.doesNotMatch(r.html, /bob-password-1/, "a password is never sent back");
    assert.equal(await h.store.users.findUser("bob"), null);

    fields[4] = ["knock.firstPort", "42001"];
    const ok = await post(admin, "/users/new", fields);
    assert.equal(ok.status, 200);
    assert.match(ok.html, /<section class="card enroll" id="enroll"/);
    assert.match(ok.html, /<div class="qr" id="enroll-qr"[^>]*><svg aria-hidden="true"/);
    assert.match(ok.html, /id="enroll-secret" class="mono" readonly value="[A-Z2-7]{32}"/);
    assert.equal((await h.store.users.getUser("bob")).mfa.enrolled, false);
  });
});

Deno.test("ui: a rule form names every bad field at once, then saves", async () => {
  await withUi(async (h) => {
    const admin = await h.login(h.admin.name, h.admin.password, h.admin.totpSecret);
    const bad = await post(admin, "/rules/forwards/new", [
      ["name", ""],
      ["enabled", "on"],
      ["protocol", "tcp"],
      ["publicPorts", "70000"],
      ["privateAddress", "192.0.2.12"],
      ["privatePorts", "8080-"],
      ["enforceKnock", "on"],
    ]);
    assert.equal(bad.status, 400);
    assert.match(slotText(bad.html, "name"), /Enter a name/);
    assert.match(slotText(bad.html, "publicPorts"), /70000 is out of range/);
    assert.notEqual(slotText(bad.html, "privatePorts"), "");
    assert.match(bad.html, /Please correct the 3 fields marked below\./);

    const api = await post(admin, "/rules/forwards/new", [
      ["name", "rdp"],
      ["protocol", "tcp"],
      ["publicPorts", "52230"],
      ["privateAddress", "192.0.2.300"],
    ]);
    assert.equal(api.status, 400);
    assert.match(slotText(api.html, "privateAddress"), /192\.0\.2\.300/);

    const ok = await post(admin, "/rules/forwards/new", [
      ["name", "rdp"],
      ["enabled", "on"],
      ["protocol", "tcp"],
      ["publicPorts", "52230"],
      ["privateAddress", "192.0.2.12"],
      ["privatePorts", "8080"],
    ]);
    assert.equal(ok.status, 200);
    assert.equal(ok.res.headers.get("kg-location"), "%2Frules");
    assert.equal(decodeURIComponent(ok.res.headers.get("kg-flash")!), "Rule rdp saved.");
    assert.equal((await h.store.rules.getRule("rdp")).kind, "forward");

    const del = await post(admin, "/rules/forwards/rdp/delete");
    assert.match(del.html, /^<div id="rules-list">/);
    assert.doesNotMatch(del.html, /data-rule="rdp"/);
    assert.equal(decodeURIComponent(del.res.headers.get("kg-announce")!), "Rule rdp deleted");
  });
});

Deno.test("ui: fragments render alone; without a session they send the browser to sign in", async () => {
  await withUi(async (h) => {
    h.datapath.unlock("203.0.113.10", "alice", h.clock.now());
    const admin = await h.login(h.admin.name, h.admin.password, h.admin.totpSecret);
    const dash = await page(admin, "/fragments/dashboard");
    assert.equal(dash.status, 200);
    assert.match(dash.html, /^<div id="dashboard" data-kg-src="\/fragments\/dashboard"/);
    assert.doesNotMatch(dash.html, /<html/);
    assert.match(dash.html, /<tr data-ip="203.0.113.10">/);

    const ev = await page(admin, "/fragments/events?type=management-login&q=");
    assert.match(
      ev.html,
      /^<div id="events-region" data-kg-src="\/fragments\/events\?type=management-login&amp;q="/,
    );
    const types = [...ev.html.matchAll(/<tr data-type="([^"]+)"/g)].map((m) => m[1]);
    assert.ok(types.length > 0 && types.every((t) => t === "management-login"));

    for (const path of ["/fragments/dashboard", "/fragments/events"]) {
      const anon = await h.anon.request("GET", path);
      await anon.body?.cancel();
      assert.match(
        decodeURIComponent(anon.headers.get("kg-location") ?? ""),
        /^\/login\?expired=1/,
      );
    }
  });
});

Deno.test("ui: Revoke answers with the dashboard without the row; viewers may not", async () => {
  await withUi(async (h) => {
    h.datapath.unlock("203.0.113.10", "alice", h.clock.now());
    const admin = await h.login(h.admin.name, h.admin.password, h.admin.totpSecret);
    const r = await post(admin, "/unlocks/203.0.113.10/revoke");
    assert.equal(r.status, 200);
    assert.doesNotMatch(r.html, /data-ip="203.0.113.10"/);
    assert.match(r.html, /No IP is unlocked/);
    assert.match(r.html, /id="unlocks-h" tabindex="-1" data-kg-focus/);
    assert.equal(
      decodeURIComponent(r.res.headers.get("kg-announce")!),
      "Revoked the unlock of 203.0.113.10",
    );
    assert.equal(h.datapath.revokedBy.get("203.0.113.10"), h.admin.name);
    // A CSRF-less post is refused by the API, not by the UI.
    const forged = await admin.request("POST", "/unlocks/203.0.113.10/revoke", { noCsrf: true });
    assert.match(
      await forged.text(),
      /Cannot revoke 203\.0\.113\.10: Missing or wrong X-CSRF-Token/,
    );

    await h.store.users.createUser(
      { name: "vera", password: "vera-password", role: "viewer" },
      "t",
    );
    await h.store.users.confirmMfaEnrollment("vera", "t");
    const viewer = await h.login(
      "vera",
      "vera-password",
      (await h.store.users.getMfaSecrets("vera")).secret,
    );
    assert.equal((await post(viewer, "/unlocks/203.0.113.10/revoke")).status, 403);
  });
});

Deno.test("ui: API tokens are created (secret shown once), listed and revoked", async () => {
  await withUi(async (h) => {
    const admin = await h.login(h.admin.name, h.admin.password, h.admin.totpSecret);
    const empty = await page(admin, "/tokens");
    assert.match(empty.html, /<h1>API tokens<\/h1>/);
    assert.match(empty.html, /No tokens\./);
    const badDays = await post(admin, "/tokens", [["ttlDays", "9999"]]);
    assert.equal(badDays.status, 400);
    assert.notEqual(slotText(badDays.html, "ttlDays"), "");
    const made = await post(admin, "/tokens", [["ttlDays", "7"]]);
    const secret = /id="token-secret" class="mono" readonly value="([^"]+)"/.exec(made.html)?.[1];
    assert.ok(secret, made.html.slice(0, 400));
    const [info] = (await h.store.sessions.listSessions(h.admin.name)).filter((s) =>
      s.kind === "token"
    );
    assert.match(made.html, new RegExp(`data-token="${info.idHash}"`));
    // The token works as a bearer token; the list never shows it again.
    const res = await h.app.request("http://appliance.test/api/v1/auth/me", {
      headers: { authorization: `Bearer ${secret}` },
    });
    assert.equal(res.status, 200);
    await res.body?.cancel();
    const listed = await page(admin, "/tokens");
    assert.doesNotMatch(listed.html, new RegExp(secret));
    const gone = await post(admin, `/tokens/${info.idHash}/revoke`);
    assert.match(gone.html, /No tokens\./);
    assert.equal(decodeURIComponent(gone.res.headers.get("kg-announce")!), "Token revoked");
  });
});

Deno.test("ui: settings Add collector answers with the form, saving nothing", async () => {
  await withUi(async (h) => {
    const admin = await h.login(h.admin.name, h.admin.password, h.admin.totpSecret);
    const before = await h.store.settings.getSettings();
    const r = await post(admin, "/settings", [
      ["version", String(before.version)],
      ["idleTimeoutSeconds", "5"],
      ["op", "add"],
    ]);
    assert.equal(r.status, 200);
    assert.match(r.html, /name="syslog\.collectors\.0\.host"[^>]*data-kg-focus/);
    assert.match(r.html, /id="set-idle"[^>]*value="5"/);
    assert.equal((await h.store.settings.getSettings()).version, before.version);
  });
});

Deno.test("ui: sign-in through the form passes the API's session cookie on", async () => {
  await withUi(async (h) => {
    const wrong = await post(h.anon, "/login", [
      ["username", h.admin.name],
      ["password", "not it"],
      ["code", "000000"],
      ["next", "/rules"],
    ]);
    assert.equal(wrong.status, 401);
    assert.match(wrong.html, /Wrong user name, password or code\. Enter a fresh code\./);
    const { totpCode } = await import("../src/knock/totp.ts");
    const ok = await post(h.anon, "/login", [
      ["username", h.admin.name],
      ["password", h.admin.password],
      ["code", totpCode(h.admin.totpSecret, Math.floor(h.clock.now() / 1000))],
      ["next", "/rules"],
    ]);
    assert.equal(ok.res.headers.get("kg-location"), "%2Frules");
    assert.match(ok.res.headers.get("set-cookie") ?? "", /HttpOnly/i);
  });
});

/** A self-signed P-256 pair for 192.0.2.1 (openssl, as src/host/tls.ts makes them). */
async function selfSigned(): Promise<{ cert: string; key: string }> {
  const dir = await Deno.makeTempDir();
  try {
    const out = await new Deno.Command("openssl", {
      args: [
        ..."req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1".split(" "),
        ...["-keyout", `${dir}/k.pem`, "-out", `${dir}/c.pem`, "-subj", "/CN=knockgate"],
        ...["-addext", "subjectAltName=IP:192.0.2.1"],
      ],
      stderr: "null",
    }).output();
    assert.equal(out.code, 0);
    return {
      cert: await Deno.readTextFile(`${dir}/c.pem`),
      key: await Deno.readTextFile(`${dir}/k.pem`),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("ui: settings show the HTTPS fingerprint; an administrator installs a pair", async () => {
  await withUi(async (h) => {
    h.clock.advance(Date.now() - h.clock.now()); // the pairs below are valid from now on
    const admin = await h.login(h.admin.name, h.admin.password, h.admin.totpSecret);
    const r = await page(admin, "/settings");
    assert.equal(r.status, 200);
    assert.ok(r.html.includes(h.tls.active.fingerprint), "no fingerprint on the settings page");
    assert.match(r.html, /<label for="tls-cert">Certificate \(PEM\)<\/label>/);
    const a = await selfSigned();
    const b = await selfSigned();
    const bad = await post(admin, "/settings/tls", [["cert", a.cert], ["key", b.key]]);
    assert.equal(bad.status, 400);
    assert.match(slotText(bad.html, "key"), /does not belong/);
    assert.ok(!bad.html.includes("PRIVATE KEY"), "the key is echoed back");
    const ok = await post(admin, "/settings/tls", [["cert", a.cert], ["key", a.key]]);
    assert.equal(ok.status, 200);
    assert.match(ok.html, /served from the next start/);
    assert.equal(await Deno.readTextFile(h.tls.paths.cert), a.cert);
  });
});

Deno.test("ui: two uplinks: WAN pickers, the WAN column, uplinks and WAN addresses shown", async () => {
  await withUi(async (h) => {
    h.datapath.uplinkTable = twoUplinkStatus();
    h.datapath.unlock("203.0.113.10", "alice", h.clock.now(), "198.51.100.65");
    const admin = await h.login(h.admin.name, h.admin.password, h.admin.totpSecret);

    const form = await page(admin, "/rules/forwards/new");
    assert.match(
      form.html,
      /<select id="rule-uplink" name="uplink"[^>]*data-kg-narrows="#rule-wan-address"/,
    );
    assert.match(form.html, /<option value="isp-a"\s*>isp-a \(wan0\)<\/option>/);
    assert.match(form.html, /<option value="isp-b"\s*>isp-b \(wan1\)<\/option>/);
    assert.match(form.html, /<option value="198\.51\.100\.2"\s+data-kg-group="isp-a">/);
    assert.match(form.html, /<option value="198\.51\.100\.65"\s+data-kg-group="isp-b">/);
    assert.match(form.html, /<label for="rule-wan-address">WAN IP<\/label>/);

    const saved = await post(admin, "/rules/forwards/new", [
      ["name", "ssh-a"],
      ["enabled", "on"],
      ["uplink", "isp-a"],
      ["wanAddress", "198.51.100.2"],
      ["protocol", "tcp"],
      ["publicPorts", "52230"],
      ["privateAddress", "192.0.2.12"],
      ["privatePorts", "22"],
    ]);
    assert.equal(saved.status, 200, saved.html);
    const rule = await h.store.rules.getRule("ssh-a");
    assert.deepEqual([rule.rule.uplink, rule.rule.wanAddress], ["isp-a", "198.51.100.2"]);
    const edit = await page(admin, "/rules/forwards/ssh-a/edit");
    assert.match(edit.html, /<option value="isp-a" selected>/);
    assert.match(edit.html, /<option value="198\.51\.100\.2" selected data-kg-group="isp-a">/);

    const bad = await post(admin, "/rules/forwards/new", [
      ["name", "bad"],
      ["uplink", "isp-a"],
      ["wanAddress", "wan0"],
      ["protocol", "tcp"],
      ["publicPorts", "52231"],
      ["privateAddress", "192.0.2.12"],
    ]);
    assert.equal(bad.status, 400);
    assert.match(
      slotText(bad.html, "wanAddress"),
      /wan0&quot; is not an IPv4 or IPv6 address; choose/,
    );

    const list = await page(admin, "/rules");
    assert.match(list.html, /<td data-label="WAN" class="mono">isp-a 198\.51\.100\.2<\/td>/);
    assert.match(list.html, /<tr data-rule="web">.*?<td data-label="WAN" class="mono">all<\/td>/);

    const dash = await page(admin, "/");
    assert.match(dash.html, /<tr data-uplink="isp-a">.*?>Down<.*?Choice 2/);
    assert.match(dash.html, /<tr data-uplink="isp-b">.*?>Up<.*?In use/);
    assert.match(dash.html, /198\.51\.100\.1\/26, 198\.51\.100\.2\/26/);
    assert.match(dash.html, /<td data-label="WAN address" class="mono"[^>]*>198\.51\.100\.65</);
    assert.match(dash.html, /on every\s+uplink/);

    const settings = await page(admin, "/settings");
    assert.match(
      settings.html,
      /Uplink isp-b<\/dt><dd>wan1: 198\.51\.100\.65\/26 via 198\.51\.100\.126/,
    );
  }, twoUplinkConfig());
});

Deno.test("ui: the uplinks table shows each IPv6 gateway, its probe and the LAN's IPv6 egress", async () => {
  await withUi(async (h) => {
    h.datapath.uplinkTable = dualStackTwoUplinkStatus(true);
    const admin = await h.login(h.admin.name, h.admin.password, h.admin.totpSecret);
    let dash = await page(admin, "/");
    assert.match(dash.html, /<th[^>]*>IPv6 gateway<\/th>/);
    assert.match(
      dash.html,
      /<tr data-uplink="isp-a">.*?fe80::1<\/span> <span[^>]*>Up<\/span> LAN egress/s,
    );
    h.datapath.uplinkTable = dualStackTwoUplinkStatus(false);
    dash = await page(admin, "/");
    assert.match(
      dash.html,
      /<tr data-uplink="isp-a">.*?fe80::1<\/span> <span[^>]*>Down<\/span><\/td>/s,
    );
    assert.match(
      dash.html,
      /<tr data-uplink="isp-b">.*?2001:db8:b::fe<\/span> <span[^>]*>Up<\/span> LAN egress/s,
    );
    const settings = await page(admin, "/settings");
    assert.match(
      settings.html,
      /Uplink isp-a<\/dt><dd>wan0: 198\.51\.100\.1\/26, 2001:db8:a::1\/64 via 198\.51\.100\.62, IPv6 via fe80::1</,
    );
  }, dualStackTwoUplinkConfig());
});
