/**
 * The rule forms' WAN pickers in a real Chromium, against the API and UI
 * served in-process with two uplinks configured (isp-a: 198.51.100.1 and .2,
 * isp-b: 198.51.100.65), a real KV store and a fake data plane: the WAN IP
 * choices follow the WAN interface chosen (kg.js), a rule saves bound to one
 * address and shows it in the rules table, and the dashboard lists the
 * uplinks and the WAN address a knock arrived on.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { systemClock } from "../../src/clock.ts";
import { createApp } from "../../src/api/app.ts";
import { bootstrapStore } from "../../src/api/bootstrap.ts";
import { syncDatapath } from "../../src/api/sync.ts";
import type { ApiDeps } from "../../src/api/types.ts";
import { FakeDatapath, twoUplinkConfig, twoUplinkStatus } from "../../src/api/_test_util.ts";
import { totpCode } from "../../src/knock/totp.ts";
import { Logger } from "../../src/log/logger.ts";
import { openStore } from "../../src/store/kv_store.ts";
import { createUi } from "../../ui/mod.ts";
import { chromiumAvailable, gotoSettled, launchChromium, saveScreenshot } from "./_browser.ts";

/** The WAN IP choices the page offers (enabled, not hidden) and the one chosen. */
function wanIpChoices(page: Page): Promise<{ offered: string[]; chosen: string }> {
  return page.evaluate(`(() => {
    const sel = document.getElementById("rule-wan-address");
    const offered = [...sel.options].filter((o) => !o.disabled && !o.hidden).map((o) => o.value);
    return { offered, chosen: sel.value };
  })()`);
}

Deno.test({
  name: "web UI in Chromium: the WAN interface picker narrows the WAN IPs; a rule saves bound",
  ignore: !chromiumAvailable(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "kgt-ui-wan-" });
    const store = await openStore(`${dir}/store.kv`, { clock: systemClock });
    const config = twoUplinkConfig();
    const logger = new Logger({ clock: systemClock });
    const admin = (await bootstrapStore(store, config, logger))!;
    const datapath = new FakeDatapath();
    datapath.uplinkTable = twoUplinkStatus();
    await syncDatapath(store, datapath, config);
    datapath.unlock("203.0.113.10", "alice", Date.now(), "198.51.100.65");
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
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.fetch);
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

      await t.step("dashboard: the uplinks and the WAN address of the knock", async () => {
        const a = page.locator('#uplinks tr[data-uplink="isp-a"]');
        assert.match(await a.innerText(), /wan0.*198\.51\.100\.1\/26, 198\.51\.100\.2\/26.*Down/s);
        const b = page.locator('#uplinks tr[data-uplink="isp-b"]');
        assert.match(await b.innerText(), /wan1.*Up.*In use/s);
        const unlock = page.locator('#unlocks tr[data-ip="203.0.113.10"]');
        assert.match(await unlock.innerText(), /198\.51\.100\.65/);
        await saveScreenshot(page, "ui-dashboard-uplinks");
      });

      await t.step("the WAN IP choices follow the WAN interface", async () => {
        await gotoSettled(page, url("/rules/forwards/new"));
        const uplink = page.getByLabel("WAN interface");
        const options = await uplink.locator("option").allInnerTexts();
        assert.deepEqual(options, ["All", "isp-a (wan0)", "isp-b (wan1)"]);
        // "All" interfaces: only "All" addresses.
        assert.deepEqual(await wanIpChoices(page), { offered: ["all"], chosen: "all" });
        await uplink.selectOption("isp-a");
        assert.deepEqual(await wanIpChoices(page), {
          offered: ["all", "198.51.100.1", "198.51.100.2"],
          chosen: "all",
        });
        await page.getByLabel("WAN IP").selectOption("198.51.100.2");
        // Another uplink: its own addresses; the address chosen before is not one, so "All".
        await uplink.selectOption("isp-b");
        assert.deepEqual(await wanIpChoices(page), {
          offered: ["all", "198.51.100.65"],
          chosen: "all",
        });
        await uplink.selectOption("all");
        assert.deepEqual(await wanIpChoices(page), { offered: ["all"], chosen: "all" });
      });

      await t.step("a forward saves bound to one WAN address", async () => {
        await page.getByLabel("Name").fill("ssh-a");
        await page.getByLabel("WAN interface").selectOption("isp-a");
        await page.getByLabel("WAN IP").selectOption("198.51.100.2");
        await page.getByLabel("Public port or range").fill("52240");
        await page.getByLabel("Private IP").fill("192.0.2.12");
        await page.getByLabel("Private port or range").fill("22");
        await saveScreenshot(page, "ui-rule-wan");
        await page.getByRole("button", { name: "Apply" }).click();
        await page.waitForURL(url("/rules"));
        const row = page.locator('#forwards tr[data-rule="ssh-a"]');
        assert.match(await row.innerText(), /isp-a 198\.51\.100\.2/);
        const rule = await store.rules.getRule("ssh-a");
        assert.deepEqual([rule.rule.uplink, rule.rule.wanAddress], ["isp-a", "198.51.100.2"]);
        const pushed = datapath.rules!.forwards.find((r) => r.name === "ssh-a")!;
        assert.deepEqual([pushed.uplink, pushed.wanAddress], ["isp-a", "198.51.100.2"]);
      });

      await t.step("the edit form opens on the rule's uplink, its addresses offered", async () => {
        await gotoSettled(page, url("/rules/forwards/ssh-a/edit"));
        assert.equal(await page.getByLabel("WAN interface").inputValue(), "isp-a");
        assert.deepEqual(await wanIpChoices(page), {
          offered: ["all", "198.51.100.1", "198.51.100.2"],
          chosen: "198.51.100.2",
        });
      });
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
      await server.shutdown();
      store.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
