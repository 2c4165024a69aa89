/**
 * The web UI in a real Chromium against the API and UI served in-process
 * (Deno.serve on 127.0.0.1:0), a real KV store in a temp dir and a fake data
 * plane: sign in with password and TOTP, enrol a user end to end (secret read
 * from the page, code computed, verified), create a knock-enforcing forward
 * for that user, watch an unlock arrive live over the event stream and revoke
 * it, field errors beside their field, settings, secret rotation, deletion,
 * two bad fields of a rule form shown at once, API tokens created, used and
 * revoked, a phone-sized viewport without horizontal scrolling, and a
 * screenshot of every page in artifacts/screenshots/. Every page and row is
 * rendered by the server; the browser only swaps fragments (ui/static/kg.js).
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { systemClock } from "../../src/clock.ts";
import { defaultConfig } from "../../src/config/defaults.ts";
import { createApp } from "../../src/api/app.ts";
import { bootstrapStore } from "../../src/api/bootstrap.ts";
import { syncDatapath } from "../../src/api/sync.ts";
import type { ApiDeps } from "../../src/api/types.ts";
import { FakeDatapath } from "../../src/api/_test_util.ts";
import { TOTP_PERIOD_S, totpCode } from "../../src/knock/totp.ts";
import { Logger } from "../../src/log/logger.ts";
import { openStore } from "../../src/store/kv_store.ts";
import { createUi } from "../../ui/mod.ts";
import { chromiumAvailable, gotoSettled, launchChromium, saveScreenshot } from "./_browser.ts";

const CLIENT_IP = "203.0.113.10";
/** Live updates must come from the event stream, well before the dashboard's 10 s poll. */
const LIVE_TIMEOUT_MS = 5000;

/** The current TOTP code of `secret`. */
function codeNow(secret: string): string {
  return totpCode(secret, Math.floor(Date.now() / 1000));
}

/** A 6-digit code no step around now accepts for `secret`. */
function wrongCode(secret: string): string {
  const now = Math.floor(Date.now() / 1000);
  const valid = new Set([-2, -1, 0, 1, 2].map((d) => totpCode(secret, now + d * TOTP_PERIOD_S)));
  for (let i = 0;; i++) {
    const c = String(i * 7919 % 1_000_000).padStart(6, "0");
    if (!valid.has(c)) return c;
  }
}

/** Evaluates a browser expression (these tests have no DOM types). */
function js<T>(page: Page, expr: string): Promise<T> {
  return page.evaluate<T>(expr);
}

/** Form controls that no label names: they must not exist. */
function unlabelled(page: Page): Promise<string[]> {
  return js(
    page,
    `[...document.querySelectorAll("input:not([type=hidden]), select, textarea")]
      .filter((el) => !el.closest("template") && el.labels.length === 0 &&
        !el.getAttribute("aria-label") && !el.getAttribute("aria-labelledby"))
      .map((el) => el.id || el.name)`,
  );
}

/** Checks landmarks, one h1 and labels on the current page. */
async function checkStructure(page: Page, what: string): Promise<void> {
  assert.deepEqual(await unlabelled(page), [], `${what}: unlabelled controls`);
  assert.equal(await page.locator("main").count(), 1, `${what}: one <main>`);
  assert.equal(await page.locator("h1").count(), 1, `${what}: one <h1>`);
  assert.equal(await js(page, "document.documentElement.lang"), "en");
}

/** True when the page scrolls sideways. */
async function scrollsSideways(page: Page): Promise<boolean> {
  return await js<boolean>(
    page,
    "document.documentElement.scrollWidth > document.documentElement.clientWidth",
  );
}

/** Polls a browser expression until it is truthy (waitForFunction would eval, which the CSP forbids). */
async function waitUntil(page: Page, expr: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await js<boolean>(page, `Boolean(${expr})`))) {
    if (Date.now() > end) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${expr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The text of the polite live region (what a screen reader just heard). */
function announced(page: Page): Promise<string> {
  return js(page, `document.getElementById("announcer").textContent`);
}

/** The in-process appliance: store, fake data plane, logger, and the served API + UI. */
async function startAppliance() {
  const dir = await Deno.makeTempDir({ prefix: "kgt-ui-" });
  const store = await openStore(`${dir}/store.kv`, { clock: systemClock });
  const config = defaultConfig();
  const logger = new Logger({ clock: systemClock });
  const admin = (await bootstrapStore(store, config, logger))!;
  const datapath = new FakeDatapath();
  await syncDatapath(store, datapath, config);
  const deps: ApiDeps = {
    store,
    datapath,
    logger,
    clock: systemClock,
    config,
    clockHealth: () =>
      Promise.resolve({ synchronised: true, detail: "NTP (test)", now: Date.now() }),
    onChange: () => syncDatapath(store, datapath, config),
  };
  const app = createApp(deps);
  app.route("/", createUi(deps));
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.fetch);
  return {
    store,
    datapath,
    logger,
    admin,
    base: `http://127.0.0.1:${server.addr.port}`,
    async stop() {
      await server.shutdown();
      store.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

Deno.test({
  name: "web UI in Chromium: sign-in, enrolment, rules, live unlock and revoke, settings, phone",
  ignore: !chromiumAvailable(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const ap = await startAppliance();
    const browser = await launchChromium({
      viewport: { width: 1280, height: 860 },
      // Chromium's own calls home go to a dead proxy; loopback (the appliance) is never proxied.
      args: ["--proxy-server=http://127.0.0.1:9"],
    });
    const problems: string[] = [];
    try {
      const page = await browser.newPage();
      page.setDefaultTimeout(10_000);
      page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
      page.on("console", (m) => {
        // Refused API calls (the tests make some on purpose) are logged as resource errors.
        if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) {
          problems.push(`console: ${m.text()}`);
        }
      });
      const url = (path: string) => `${ap.base}${path}`;

      await t.step("sign-in: redirect, field errors, wrong password, success", async () => {
        await gotoSettled(page, url("/"));
        assert.equal(page.url(), url("/login?next=%2F"));
        await checkStructure(page, "login");
        await page.setViewportSize({ width: 390, height: 844 });
        assert.equal(await scrollsSideways(page), false, "login page scrolls on a phone");
        await saveScreenshot(page, "ui-phone-login");
        await page.setViewportSize({ width: 1280, height: 860 });
        await saveScreenshot(page, "ui-login");

        await page.getByLabel("User name").fill(ap.admin.name);
        await page.getByLabel("Password").fill(ap.admin.password);
        await page.getByLabel("Authenticator code").fill("12");
        await page.getByRole("button", { name: "Sign in" }).click();
        const codeError = page.locator("#login-code-error");
        await codeError.waitFor();
        assert.match(await codeError.innerText(), /6 digits/);
        assert.equal(
          await page.getByLabel("Authenticator code").getAttribute("aria-invalid"),
          "true",
        );
        assert.equal(await js(page, "document.activeElement.id"), "login-code");
        await saveScreenshot(page, "ui-login-error");

        await page.getByLabel("Password").fill("not the password");
        await page.getByLabel("Authenticator code").fill(codeNow(ap.admin.totpSecret));
        await page.getByRole("button", { name: "Sign in" }).click();
        await page.getByRole("alert").filter({ hasText: "Wrong user name, password or code" })
          .waitFor();
        assert.equal(await codeError.isHidden(), true, "the old field error is cleared");

        await page.getByLabel("Password").fill(ap.admin.password);
        await page.getByLabel("Authenticator code").fill(codeNow(ap.admin.totpSecret));
        await page.getByRole("button", { name: "Sign in" }).click();
        await page.waitForURL(url("/"));
      });

      await t.step("dashboard: clock, live stream, tables", async () => {
        await page.getByText("Clock synchronised").waitFor();
        await page.locator("#live-state", { hasText: "Live" }).waitFor();
        await checkStructure(page, "dashboard");
        assert.match(await page.locator("#unlocks").innerText(), /No IP is unlocked/);
        assert.equal(
          await page.getByRole("link", { name: "Dashboard" }).getAttribute("aria-current"),
          "page",
        );
        await saveScreenshot(page, "ui-dashboard");
      });

      let bobSecret = "";
      await t.step("users: add a user, QR code and secret, wrong then right code", async () => {
        await page.getByRole("link", { name: "Users", exact: true }).click();
        await page.waitForURL(url("/users"));
        await page.getByRole("link", { name: "Add user" }).click();
        await page.waitForURL(url("/users/new"));
        await checkStructure(page, "add user");
        await saveScreenshot(page, "ui-user-new");
        await page.getByLabel("User name").fill("bob");
        await page.getByLabel("Password").fill("bob-password-1");
        await page.getByLabel("Role").selectOption("operator");
        await page.getByLabel("Enable port knocking for this user").check();
        await page.getByLabel("First knock port").fill("41001");
        await page.getByLabel("Sequence length").selectOption("3");
        await page.getByLabel("Transport").selectOption("any");
        await page.getByRole("button", { name: "Apply" }).click();
        // alice (seeded) knocks from 41001: the API names the field, the page shows it there.
        const portError = page.locator("#knock-first-port-error");
        await portError.waitFor();
        assert.match(await portError.innerText(), /41001/);
        await saveScreenshot(page, "ui-user-new-error");
        await page.getByLabel("First knock port").fill("42001");
        await page.getByRole("button", { name: "Apply" }).click();

        await page.locator("#enroll").waitFor();
        assert.equal(await page.locator("#enroll-qr svg").count(), 1, "QR code shown");
        bobSecret = await page.getByLabel("TOTP secret", { exact: true }).inputValue();
        assert.match(bobSecret, /^[A-Z2-7]{32}$/);
        assert.match(await page.getByLabel("otpauth URI").inputValue(), /^otpauth:\/\/totp\//);
        assert.equal(await js(page, "document.activeElement.id"), "enroll-h");
        assert.equal((await ap.store.users.getUser("bob")).mfa.enrolled, false);
        await saveScreenshot(page, "ui-user-enroll");

        await page.getByLabel("Validation code").fill(wrongCode(bobSecret));
        await page.getByRole("button", { name: "Verify" }).click();
        const codeError = page.locator("#enroll-code-error");
        await codeError.waitFor();
        assert.match(await codeError.innerText(), /does not match/);
        assert.equal(await js(page, "document.activeElement.id"), "enroll-code");
        await saveScreenshot(page, "ui-user-enroll-error");

        await page.getByLabel("Validation code").fill(codeNow(bobSecret));
        await page.getByRole("button", { name: "Verify" }).click();
        await page.getByText("Verify successfully").waitFor();
        await saveScreenshot(page, "ui-user-verified");
        const bob = await ap.store.users.getUser("bob");
        assert.equal(bob.mfa.enrolled, true);
        assert.equal(bob.role, "operator");
        assert.deepEqual(bob.knock, {
          enabled: true,
          firstPort: 42001,
          length: 3,
          transport: "any",
        });
        assert.ok(ap.datapath.users?.some((u) => u.user === "bob" && u.firstPort === 42001));

        await page.getByRole("link", { name: "OK", exact: true }).click();
        await page.waitForURL(url("/users"));
        const row = page.locator('tr[data-user="bob"]');
        assert.match(await row.innerText(), /Active/);
        await checkStructure(page, "users");
        await saveScreenshot(page, "ui-users");
      });

      await t.step("rules: a knock-enforcing forward for bob; errors beside fields", async () => {
        await page.getByRole("link", { name: "Rules" }).click();
        await page.waitForURL(url("/rules"));
        await page.getByRole("link", { name: "Add port forward" }).click();
        await page.waitForURL(url("/rules/forwards/new"));
        await checkStructure(page, "add forward");
        await page.getByLabel("Name", { exact: true }).fill("rdp");
        await page.getByLabel("Protocol").selectOption("tcp");
        await page.getByLabel("Public port or range").fill("70000");
        await page.getByLabel("Private IP").fill("192.0.2.300");
        await page.getByLabel("Private port or range").fill("8080");
        assert.equal(await page.getByLabel("Enforce port knocking").isChecked(), true);
        await page.getByLabel("bob", { exact: true }).check();
        await page.getByRole("button", { name: "Apply" }).click();
        // Checked in the page before sending: the port range.
        const publicError = page.locator("#rule-public-error");
        await publicError.waitFor();
        assert.match(await publicError.innerText(), /70000 is out of range/);
        assert.equal(await js(page, "document.activeElement.id"), "rule-public");

        await page.getByLabel("Public port or range").fill("52230");
        await page.getByRole("button", { name: "Apply" }).click();
        // Checked by the API: the address, named as the field at fault.
        const addressError = page.locator("#rule-address-error");
        await addressError.waitFor();
        assert.match(await addressError.innerText(), /192\.0\.2\.300/);
        assert.equal(await publicError.isHidden(), true);
        assert.equal(await page.getByLabel("Private IP").getAttribute("aria-invalid"), "true");
        assert.equal(await js(page, "document.activeElement.id"), "rule-address");
        await saveScreenshot(page, "ui-rule-error");

        await page.getByLabel("Private IP").fill("192.0.2.12");
        await page.getByRole("button", { name: "Apply" }).click();
        await page.waitForURL(url("/rules"));
        await page.locator(".flash", { hasText: "Rule rdp saved." }).waitFor();
        assert.match(await page.locator('tr[data-rule="rdp"]').innerText(), /52230[\s\S]*bob/);
        const rdp = ap.datapath.rules?.forwards.find((r) => r.name === "rdp");
        assert.ok(rdp, "the data plane got the rule");
        assert.equal(rdp.enforceKnock, true);
        assert.deepEqual(rdp.users, ["bob"]);
        assert.deepEqual(rdp.publicPorts, { start: 52230, end: 52230 });
        assert.deepEqual(rdp.privatePorts, { start: 8080, end: 8080 });
        await checkStructure(page, "rules");
        await saveScreenshot(page, "ui-rules");

        await page.locator('tr[data-rule="rdp"]').getByRole("link", { name: "Edit" }).click();
        await page.waitForURL(url("/rules/forwards/rdp/edit"));
        assert.equal(await page.getByLabel("Public port or range").inputValue(), "52230");
        assert.equal(await page.getByLabel("bob", { exact: true }).isChecked(), true);
        await saveScreenshot(page, "ui-rule-edit");
      });

      await t.step("rules and users: an open-ports rule, then editing it and a user", async () => {
        await gotoSettled(page, url("/rules"));
        await page.getByRole("link", { name: "Add open ports" }).click();
        await page.waitForURL(url("/rules/open-ports/new"));
        await checkStructure(page, "add open ports");
        await page.getByLabel("Name", { exact: true }).fill("nas");
        await page.getByLabel("Private IP").fill("192.0.2.20");
        await page.getByLabel("Ports", { exact: true }).fill("tcp 5000-5001, udp 5002, tcp 52230");
        await page.getByRole("button", { name: "Apply" }).click();
        // 52230/tcp belongs to "rdp": the API's conflict names the ports field.
        const portsError = page.locator("#rule-ports-error");
        await portsError.waitFor();
        assert.match(await portsError.innerText(), /rdp/);
        await saveScreenshot(page, "ui-open-ports-error");
        await page.getByLabel("Ports", { exact: true }).fill("tcp 5000-5001, udp 5002");
        await page.getByRole("button", { name: "Apply" }).click();
        await page.waitForURL(url("/rules"));
        const nas = ap.datapath.rules?.openPorts.find((r) => r.name === "nas");
        assert.deepEqual(nas?.ports, [
          { protocol: "tcp", ports: { start: 5000, end: 5001 } },
          { protocol: "udp", ports: { start: 5002, end: 5002 } },
        ]);
        await page.locator('tr[data-rule="nas"]').getByRole("link", { name: "Edit" }).click();
        await page.waitForURL(url("/rules/open-ports/nas/edit"));
        await saveScreenshot(page, "ui-open-ports-edit");
        await page.getByLabel("Enabled", { exact: true }).uncheck();
        await page.getByRole("button", { name: "Save" }).click();
        await page.waitForURL(url("/rules"));
        assert.equal(ap.datapath.rules?.openPorts.find((r) => r.name === "nas")?.enabled, false);

        await gotoSettled(page, url("/users/bob/edit"));
        await checkStructure(page, "edit user");
        assert.equal(await page.getByLabel("First knock port").inputValue(), "42001");
        await page.getByLabel("Transport").selectOption("udp");
        await saveScreenshot(page, "ui-user-edit");
        await page.getByRole("button", { name: "Save" }).click();
        await page.waitForURL(url("/users"));
        await page.locator(".flash", { hasText: "User bob saved." }).waitFor();
        assert.equal((await ap.store.users.getUser("bob")).knock.transport, "udp");
      });

      await t.step("dashboard: an unlock appears live, then Revoke ends it", async () => {
        await gotoSettled(page, url("/"));
        await page.locator("#live-state", { hasText: "Live" }).waitFor();
        const now = Date.now();
        ap.datapath.unlock(CLIENT_IP, "bob", now);
        ap.datapath.flowTable = [{
          proto: 6,
          state: "established",
          origSrc: CLIENT_IP,
          origSrcPort: 42829,
          origDst: "198.51.100.1",
          origDstPort: 52230,
          replySrc: "192.0.2.12",
          replySrcPort: 8080,
          replyDst: CLIENT_IP,
          replyDstPort: 42829,
          packets: 12,
          bytes: 3456,
          expiresInSec: 431_999,
          rule: "rdp",
          assured: true,
        }];
        ap.logger.record("knock-success", {
          ip: CLIENT_IP,
          user: "bob",
          drift: 0,
          step: Math.floor(now / 30_000),
          wan: "198.51.100.1",
        });
        const row = page.locator(`#unlocks tr[data-ip="${CLIENT_IP}"]`);
        await row.waitFor({ timeout: LIVE_TIMEOUT_MS });
        assert.match(await row.innerText(), /bob/);
        await page.locator("#flows", { hasText: "192.0.2.12:8080" }).waitFor();
        await waitUntil(
          page,
          `document.getElementById("announcer").textContent.includes("unlocked by bob")`,
        );
        await saveScreenshot(page, "ui-dashboard-unlocked");

        await row.getByRole("button", { name: `Revoke ${CLIENT_IP}` }).click();
        await row.waitFor({ state: "detached" });
        assert.equal(ap.datapath.unlockTable.has(CLIENT_IP), false, "revoked in the data plane");
        assert.equal(ap.datapath.revokedBy.get(CLIENT_IP), ap.admin.name, "audited as the user");
        await waitUntil(
          page,
          `document.getElementById("announcer").textContent.includes("Revoked")`,
        );
        assert.match(await announced(page), /Revoked the unlock of 203\.0\.113\.10/);
        assert.match(await page.locator("#unlocks").innerText(), /No IP is unlocked/);
      });

      await t.step("events: live rows and filters", async () => {
        await page.getByRole("link", { name: "Events" }).click();
        await page.waitForURL(url("/events"));
        await page.locator("#live-state", { hasText: "Live" }).waitFor();
        await checkStructure(page, "events");
        ap.logger.record("flow-admitted", {
          proto: 6,
          src: CLIENT_IP,
          srcPort: 42830,
          dst: "198.51.100.1",
          dstPort: 52230,
          privateAddr: "192.0.2.12",
          privatePort: 8080,
          rule: "rdp",
          user: "bob",
        });
        const live = page.locator("#events tbody tr", { hasText: "[Port Unlock] P:6" });
        await live.waitFor({ timeout: LIVE_TIMEOUT_MS });
        await saveScreenshot(page, "ui-events");
        await page.getByLabel("Type").selectOption("knock-success");
        await page.waitForURL(/type=knock-success/);
        await waitUntil(
          page,
          `[...document.querySelectorAll("#events tbody tr")].every((r) =>
            r.dataset.type === "knock-success")`,
        );
        assert.equal(await live.count(), 0, "filtered out by type");
        await page.locator("#events tbody tr", { hasText: "unlocked by bob" }).waitFor();
        await page.getByLabel("Type").selectOption("");
        await page.getByLabel("Search").fill("management-login");
        await waitUntil(
          page,
          `[...document.querySelectorAll("#events tbody tr")].every((r) =>
            r.dataset.type === "management-login")`,
        );
        assert.ok(await page.locator("#events tbody tr").count() >= 2);
      });

      await t.step("settings: a range error beside its field, then saved", async () => {
        await page.getByRole("link", { name: "Settings" }).click();
        await page.waitForURL(url("/settings"));
        await checkStructure(page, "settings");
        await page.getByLabel("Idle timeout (seconds)").fill("5");
        await page.getByRole("button", { name: "Add collector" }).click();
        await page.getByLabel("Host").fill("192.0.2.5");
        await page.getByRole("button", { name: "Save settings" }).click();
        const idleError = page.locator("#set-idle-error");
        await idleError.waitFor();
        assert.match(await idleError.innerText(), /10\.\.604800/);
        await saveScreenshot(page, "ui-settings-error");
        await page.getByLabel("Idle timeout (seconds)").fill("1800");
        await page.getByRole("button", { name: "Save settings" }).click();
        await page.getByText("Settings saved.").waitFor();
        const s = await ap.store.settings.getSettings();
        assert.equal(s.idleTimeoutSeconds, 1800);
        assert.deepEqual(s.syslog.collectors, [{
          host: "192.0.2.5",
          port: 514,
          format: "rfc5424",
        }]);
        assert.equal(ap.datapath.settings?.knock.idleTimeoutSec, 1800);
        await saveScreenshot(page, "ui-settings");
      });

      await t.step("rules: two bad fields show both errors beside their fields", async () => {
        await gotoSettled(page, url("/rules/forwards/new"));
        await page.getByLabel("Name", { exact: true }).fill("two-bad");
        await page.getByLabel("Public port or range").fill("70000");
        await page.getByLabel("Private IP").fill("192.0.2.12");
        await page.getByLabel("Private port or range").fill("9-x");
        await page.getByRole("button", { name: "Apply" }).click();
        const publicError = page.locator("#rule-public-error");
        const privateError = page.locator("#rule-private-error");
        await publicError.waitFor();
        await privateError.waitFor();
        assert.match(await publicError.innerText(), /70000 is out of range/);
        assert.notEqual(await privateError.innerText(), "");
        assert.equal(
          await page.getByLabel("Public port or range").getAttribute("aria-invalid"),
          "true",
        );
        assert.equal(
          await page.getByLabel("Private port or range").getAttribute("aria-invalid"),
          "true",
        );
        assert.match(
          await page.locator("#rule-alert").innerText(),
          /Please correct the 2 fields marked below/,
        );
        assert.equal(await js(page, "document.activeElement.id"), "rule-public");
        // What was typed is kept.
        assert.equal(await page.getByLabel("Name", { exact: true }).inputValue(), "two-bad");
        await saveScreenshot(page, "ui-rule-two-errors");
        assert.equal(ap.datapath.rules?.forwards.some((r) => r.name === "two-bad"), false);
      });

      await t.step("API tokens: create (shown once), list, use, revoke", async () => {
        await page.getByRole("link", { name: "API tokens" }).click();
        await page.waitForURL(url("/tokens"));
        await checkStructure(page, "tokens");
        assert.match(await page.locator("#tokens").innerText(), /No tokens/);
        await page.getByLabel("Lifetime (days)").fill("7");
        await page.getByRole("button", { name: "Create token" }).click();
        const secretBox = page.getByLabel("New token");
        await secretBox.waitFor();
        const token = await secretBox.inputValue();
        assert.match(token, /^\S{20,}$/);
        const row = page.locator("#tokens tbody tr[data-token]");
        assert.equal(await row.count(), 1);
        await saveScreenshot(page, "ui-tokens-created");
        const me = await fetch(url("/api/v1/auth/me"), {
          headers: { authorization: `Bearer ${token}` },
        });
        assert.equal(me.status, 200, "the new token works");
        await me.body?.cancel();
        await page.reload();
        assert.equal(await page.getByLabel("New token").count(), 0, "shown only once");
        assert.equal(await row.count(), 1);
        page.once("dialog", (d) => d.accept());
        await row.getByRole("button", { name: /Revoke/ }).click();
        await row.waitFor({ state: "detached" });
        assert.match(await page.locator("#tokens").innerText(), /No tokens/);
        const after = await fetch(url("/api/v1/auth/me"), {
          headers: { authorization: `Bearer ${token}` },
        });
        assert.equal(after.status, 401, "a revoked token is refused");
        await after.body?.cancel();
      });

      await t.step("users: a new secret in the same two steps, then delete", async () => {
        await gotoSettled(page, url("/users"));
        await page.locator('tr[data-user="bob"]').getByRole("link", { name: "New secret" }).click();
        await page.waitForURL(url("/users/bob/mfa"));
        await page.getByRole("button", { name: "Generate new secret" }).click();
        await page.locator("#enroll").waitFor();
        const secret = await page.getByLabel("TOTP secret", { exact: true }).inputValue();
        assert.notEqual(secret, bobSecret);
        assert.equal(
          (await ap.store.users.getUser("bob")).mfa.enrolled,
          true,
          "old one still valid",
        );
        await saveScreenshot(page, "ui-user-rotate");
        await page.getByLabel("Validation code").fill(codeNow(secret));
        await page.getByRole("button", { name: "Verify" }).click();
        await page.getByText("Verify successfully").waitFor();
        assert.equal((await ap.store.users.getMfaSecrets("bob")).secret, secret);

        await gotoSettled(page, url("/users"));
        page.once("dialog", (d) => d.accept());
        await page.locator('tr[data-user="bob"]').getByRole("button", { name: "Delete" }).click();
        await page.locator('tr[data-user="bob"]').waitFor({ state: "detached" });
        assert.equal(await ap.store.users.findUser("bob"), null);
      });

      await t.step("phone: every page fits 390 px without sideways scrolling", async () => {
        await page.setViewportSize({ width: 390, height: 844 });
        ap.datapath.unlock(CLIENT_IP, "alice", Date.now());
        const pages: [string, string][] = [
          ["/", "dashboard"],
          ["/users", "users"],
          ["/users/new", "user-new"],
          ["/rules", "rules"],
          ["/rules/forwards/new", "rule-new"],
          ["/rules/open-ports/new", "open-ports-new"],
          ["/events", "events"],
          ["/settings", "settings"],
          ["/tokens", "tokens"],
        ];
        for (const [path, name] of pages) {
          await gotoSettled(page, url(path));
          assert.equal(await scrollsSideways(page), false, `${path} scrolls sideways on a phone`);
          await saveScreenshot(page, `ui-phone-${name}`);
        }
        await page.setViewportSize({ width: 1280, height: 860 });
      });

      await t.step("sign out", async () => {
        await gotoSettled(page, url("/"));
        await page.getByRole("button", { name: "Sign out" }).click();
        await page.waitForURL(url("/login"));
        await gotoSettled(page, url("/rules"));
        assert.equal(page.url(), url("/login?next=%2Frules"));
      });

      assert.deepEqual(problems, [], "no script errors or CSP violations");
    } finally {
      await browser.close();
      await ap.stop();
    }
  },
});
