/**
 * The web UI with IPv6 on, in a real Chromium, against the API and UI served
 * in-process (dual-stack configuration: LAN 2001:db8:192::/64, the uplink's
 * 2001:db8:198::1), a real KV store and a fake data plane: the dashboard
 * lists an IPv6 unlock (its /64), the uplink's IPv6 address and a bracketed
 * IPv6 flow; the open-ports form makes a pinhole and the forward form a
 * NAT66 forward (an IPv4 WAN IP for an IPv6 host refused beside the WAN IP
 * field); the settings show the IPv6 side; Revoke ends the /64 unlock, and a
 * dashboard refresh sent before it and answered after it does not bring it back.
 */
import assert from "node:assert/strict";
import { systemClock } from "../../src/clock.ts";
import { createApp } from "../../src/api/app.ts";
import { bootstrapStore } from "../../src/api/bootstrap.ts";
import { syncDatapath } from "../../src/api/sync.ts";
import type { ApiDeps } from "../../src/api/types.ts";
import { dualStackConfig, FakeDatapath } from "../../src/api/_test_util.ts";
import { totpCode } from "../../src/knock/totp.ts";
import { Logger } from "../../src/log/logger.ts";
import { openStore } from "../../src/store/kv_store.ts";
import { createUi } from "../../ui/mod.ts";
import { chromiumAvailable, gotoSettled, launchChromium, saveScreenshot } from "./_browser.ts";

const PREFIX = "2001:db8:1:2::/64";

Deno.test({
  name: "web UI in Chromium: IPv6 unlocks and flows shown, a pinhole and a NAT66 forward saved",
  ignore: !chromiumAvailable(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "kgt-ui-v6-" });
    const store = await openStore(`${dir}/store.kv`, { clock: systemClock });
    const config = dualStackConfig();
    const logger = new Logger({ clock: systemClock });
    const admin = (await bootstrapStore(store, config, logger))!;
    const datapath = new FakeDatapath();
    await syncDatapath(store, datapath, config);
    datapath.unlock(PREFIX, "alice", Date.now(), "2001:db8:198::1");
    datapath.flowTable = [{
      proto: 6,
      state: "ESTABLISHED",
      origSrc: "2001:db8:1:2::99",
      origSrcPort: 40000,
      origDst: "2001:db8:198::1",
      origDstPort: 443,
      replySrc: "2001:db8:192::12",
      replySrcPort: 8443,
      replyDst: "2001:db8:1:2::99",
      replyDstPort: 40000,
      packets: 10,
      bytes: 1000,
      expiresInSec: 300,
      rule: "web6",
      assured: true,
    }];
    const deps: ApiDeps = {
      store,
      datapath,
      logger,
      clock: systemClock,
      config,
      clockHealth: () => Promise.resolve({ synchronised: true, detail: "test", now: Date.now() }),
      onChange: () => syncDatapath(store, datapath, config),
    };
    const app = createApp(deps);
    app.route("/", createUi(deps));
    // While set, the dashboard's refreshes arrive this late (a slow link): the revoke races one.
    let slowRefreshMs = 0;
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      async (req) => {
        const res = await app.fetch(req);
        // Made now, delivered late: the state of the moment it was asked for.
        if (slowRefreshMs > 0 && new URL(req.url).pathname === "/fragments/dashboard") {
          const body = await res.text();
          await new Promise((r) => setTimeout(r, slowRefreshMs));
          return new Response(body, res);
        }
        return res;
      },
    );
    const url = (path: string) => `http://127.0.0.1:${server.addr.port}${path}`;
    const browser = await launchChromium({ args: ["--proxy-server=http://127.0.0.1:9"] });
    const problems: string[] = [];
    try {
      const page = await browser.newPage();
      page.setDefaultTimeout(10_000);
      page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));

      await t.step("sign in", async () => {
        await gotoSettled(page, url("/login"));
        await page.getByLabel("User name").fill(admin.name);
        await page.getByLabel("Password").fill(admin.password);
        const code = totpCode(admin.totpSecret, Math.floor(Date.now() / 1000));
        await page.getByLabel("Authenticator code").fill(code);
        await page.getByRole("button", { name: "Sign in" }).click();
        await page.waitForURL(url("/"));
      });

      await t.step(
        "dashboard: the IPv6 unlock, the uplink's IPv6 address, an IPv6 flow",
        async () => {
          const unlock = page.locator(`#unlocks tr[data-ip="${PREFIX}"]`);
          assert.match(await unlock.innerText(), /2001:db8:1:2::\/64.*2001:db8:198::1.*alice/s);
          const uplink = page.locator('#uplinks tr[data-uplink="wan"]');
          assert.match(await uplink.innerText(), /198\.51\.100\.1\/24, 2001:db8:198::1\/64/);
          const flows = await page.locator("#flows").innerText();
          assert.match(flows, /\[2001:db8:1:2::99\]:40000/);
          assert.match(flows, /\[2001:db8:192::12\]:8443/);
          await saveScreenshot(page, "ui-dashboard-ipv6");
        },
      );

      await t.step("a pinhole: an open-ports rule to an IPv6 host", async () => {
        await gotoSettled(page, url("/rules/open-ports/new"));
        // A text keyboard: an IPv6 address has letters and colons.
        assert.equal(await page.getByLabel("Private IP").getAttribute("inputmode"), null);
        await page.getByLabel("Name").fill("ssh6");
        await page.getByLabel("Private IP").fill("2001:db8:192::12");
        await page.getByLabel("Ports", { exact: true }).fill("tcp 22");
        await page.getByRole("button", { name: "Apply" }).click();
        await page.waitForURL(url("/rules"));
        const row = page.locator('#open-ports tr[data-rule="ssh6"]');
        assert.match(await row.innerText(), /2001:db8:192::12\s*pinhole/);
        assert.equal(
          datapath.rules!.openPorts.find((r) => r.name === "ssh6")!.privateAddress,
          "2001:db8:192::12",
        );
      });

      await t.step(
        "a NAT66 forward: an IPv4 WAN IP refused beside the field, the IPv6 one saves",
        async () => {
          await gotoSettled(page, url("/rules/forwards/new"));
          await page.getByLabel("Name").fill("web6");
          await page.getByLabel("WAN interface").selectOption("wan");
          await page.getByLabel("WAN IP").selectOption("198.51.100.1");
          await page.getByLabel("Public port or range").fill("443");
          await page.getByLabel("Private IP").fill("2001:db8:192::12");
          await page.getByLabel("Private port or range").fill("8443");
          await page.getByRole("button", { name: "Apply" }).click();
          const error = page.locator("#rule-wan-address-error");
          await error.waitFor();
          assert.match(
            await error.innerText(),
            /is IPv4 but private address 2001:db8:192::12 is IPv6/,
          );
          await saveScreenshot(page, "ui-rule-nat66-error");
          await page.getByLabel("WAN IP").selectOption("2001:db8:198::1");
          await page.getByRole("button", { name: "Apply" }).click();
          await page.waitForURL(url("/rules"));
          const row = page.locator('#forwards tr[data-rule="web6"]');
          assert.match(await row.innerText(), /wan 2001:db8:198::1/);
          assert.match(await row.innerText(), /\[2001:db8:192::12\]:8443\s*NAT66/);
          await saveScreenshot(page, "ui-rules-ipv6");
        },
      );

      await t.step("settings: the IPv6 side of the network", async () => {
        await gotoSettled(page, url("/settings"));
        const facts = await page.locator("#network").innerText();
        assert.match(facts, /wan0: 198\.51\.100\.1\/24, 2001:db8:198::1\/64/);
        assert.match(facts, /IPv6 LAN prefix\s*2001:db8:192::\/64/);
        assert.match(facts, /An IPv6 knock unlocks\s*the source's \/64/);
        assert.match(facts, /One knock step unlocks\s*one source, IPv4 or IPv6/);
      });

      await t.step(
        "Revoke ends the /64 unlock; a refresh sent before it does not bring it back",
        async () => {
          slowRefreshMs = 1500;
          await gotoSettled(page, url("/"));
          // The live stream opens and refreshes the dashboard: that answer is on its way, late.
          const stale = page.waitForResponse((r) => r.url().endsWith("/fragments/dashboard"));
          await page.locator("#live-state", { hasText: "Live" }).waitFor();
          // Notes in the page whether the row comes back once the table said it was gone.
          await page.evaluate(`(() => {
            window.kgBack = false;
            let gone = false;
            new MutationObserver(() => {
              const t = document.getElementById("unlocks");
              if (t?.textContent.includes("No IP is unlocked")) gone = true;
              else if (gone && t?.querySelector('tr[data-ip="${PREFIX}"]')) window.kgBack = true;
            }).observe(document.body, { childList: true, subtree: true });
          })()`);
          const row = page.locator(`#unlocks tr[data-ip="${PREFIX}"]`);
          await row.getByRole("button", { name: `Revoke ${PREFIX}` }).click();
          await page.locator("#unlocks", { hasText: "No IP is unlocked" }).waitFor();
          await stale;
          // The late answer (the unlock still listed) is dropped and the dashboard fetched again.
          await page.waitForResponse((r) => r.url().endsWith("/fragments/dashboard"));
          slowRefreshMs = 0;
          assert.equal(await page.evaluate("window.kgBack"), false, "the revoked unlock came back");
          assert.equal(await row.count(), 0);
          assert.match(await page.locator("#unlocks").innerText(), /No IP is unlocked/);
          assert.equal(datapath.unlockTable.has(PREFIX), false, "revoked in the data plane");
          assert.equal(datapath.revokedBy.get(PREFIX), admin.name);
        },
      );
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
      await server.shutdown();
      store.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
