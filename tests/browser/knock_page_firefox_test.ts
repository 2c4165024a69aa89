/**
 * The knock page in a Firefox engine (Debian's firefox-esr, installed by
 * scripts/setup.sh): a harness page on 127.0.0.1 loads `ui/knock/index.html`
 * in a same-origin frame, runs its self-test (every HMAC engine the page has:
 * WebCrypto and the bundled fallback) and derives a vector's sequence with the
 * fallback alone, then reports by navigating to `/result?...`. Playwright
 * cannot drive stock Firefox, so the page reports back over HTTP instead.
 * Every request of Firefox's own goes to a dead proxy (nothing leaves the box).
 */
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url).pathname;
const FIREFOX = "/usr/bin/firefox-esr";

function firefoxAvailable(): boolean {
  try {
    return Deno.statSync(FIREFOX).isFile;
  } catch {
    return false;
  }
}

/** Preferences that keep Firefox quiet and offline: its own traffic goes to port 9. */
const USER_JS = [
  ["network.proxy.type", 1],
  ["network.proxy.http", '"127.0.0.1"'],
  ["network.proxy.http_port", 9],
  ["network.proxy.ssl", '"127.0.0.1"'],
  ["network.proxy.ssl_port", 9],
  ["network.proxy.allow_hijacking_localhost", false],
  ["network.captive-portal-service.enabled", false],
  ["network.connectivity-service.enabled", false],
  ["app.update.enabled", false],
  ["app.normandy.enabled", false],
  ["browser.safebrowsing.malware.enabled", false],
  ["browser.safebrowsing.phishing.enabled", false],
  ["datareporting.policy.dataSubmissionEnabled", false],
  ["toolkit.telemetry.enabled", false],
  ["extensions.update.enabled", false],
  ["browser.shell.checkDefaultBrowser", false],
].map(([k, v]) => `user_pref("${k}", ${v});`).join("\n");

const VECTORS = JSON.parse(
  await Deno.readTextFile(`${ROOT}src/knock/testdata/knock_vectors.json`),
) as {
  cases: {
    secret: string;
    unixTime: number;
    firstPort: number;
    length: number;
    sequence: number[];
  }[];
};

/** The harness: same origin as the page, so it may call the page's `knockgate` API. */
function harness(): string {
  const v = VECTORS.cases[0];
  const args = JSON.stringify([v.secret, v.unixTime, v.firstPort, v.length, "noble"]);
  return `<!doctype html><meta charset="utf-8"><iframe id="f" src="/index.html"></iframe>
<script>
const report = (o) => { location.href = "/result?" + new URLSearchParams(o); };
document.getElementById("f").addEventListener("load", async (ev) => {
  try {
    const k = ev.target.contentWindow.knockgate;
    const r = await k.selfTest();
    const seq = await k.sequenceAt(...${args});
    report({ ok: r.ok, passed: r.passed, failed: r.failed, engines: r.engines.join(","),
      sequence: seq.join(","), ua: navigator.userAgent });
  } catch (e) {
    report({ error: String(e) });
  }
});
</script>`;
}

Deno.test({
  name: "knock page in Firefox: the self-test passes with WebCrypto and the bundled HMAC",
  ignore: !firefoxAvailable(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const page = await Deno.readTextFile(`${ROOT}ui/knock/index.html`);
    const { promise: result, resolve } = Promise.withResolvers<URLSearchParams>();
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
      const url = new URL(req.url);
      const html = (body: string) =>
        new Response(body, { headers: { "content-type": "text/html; charset=utf-8" } });
      if (url.pathname === "/harness.html") return html(harness());
      if (url.pathname === "/index.html") return html(page);
      if (url.pathname === "/result") {
        resolve(url.searchParams);
        return html("done");
      }
      return new Response("not found", { status: 404 });
    });
    const profile = await Deno.makeTempDir({ prefix: "kg-firefox-" });
    await Deno.writeTextFile(`${profile}/user.js`, USER_JS);
    const firefox = new Deno.Command(FIREFOX, {
      args: [
        "--headless",
        "--no-remote",
        "--profile",
        profile,
        `http://127.0.0.1:${server.addr.port}/harness.html`,
      ],
      stdout: "null",
      stderr: "null",
      env: { MOZ_HEADLESS: "1", HOME: profile },
    }).spawn();
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const timeout = new Promise<null>((r) => timer = setTimeout(() => r(null), 90_000));
      const got = await Promise.race([result, timeout]);
      assert.ok(got, "Firefox never reported the self-test (90 s)");
      assert.equal(got.get("error"), null, got.get("error") ?? "");
      assert.match(got.get("ua") ?? "", /Firefox\//);
      assert.equal(got.get("ok"), "true", got.toString());
      assert.equal(got.get("failed"), "0", got.toString());
      assert.deepEqual(got.get("engines")?.split(","), ["webcrypto", "noble"]);
      assert.equal(got.get("sequence"), VECTORS.cases[0].sequence.join(","));
    } finally {
      clearTimeout(timer);
      try {
        firefox.kill("SIGKILL");
      } catch { /* already gone */ }
      await firefox.status;
      await server.shutdown();
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    }
  },
});
