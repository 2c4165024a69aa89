/**
 * The web UI of the real appliance in the lab: Chromium runs inside the LAN
 * server's namespace (`_ui_lab_driver.ts`) and browses to the management
 * address 192.0.2.1:8443; it signs in with the bootstrap administrator from
 * the appliance log, creates a knock-enforcing forward (tcp 52230 to
 * 192.0.2.12:8080) through the forms and watches the dashboard. The lab
 * client knocks with the CLI; the unlock must appear on the dashboard by the
 * event stream (well before its poll), the client must reach the server,
 * and after Revoke in the browser it must be locked out again. Between the
 * two, the rule-label case: after a rule is added and another deleted in the
 * UI, the dashboard's flows to the forward still name it.
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { startLab } from "../../scripts/lab/appliance.ts";
import { LAB } from "../../scripts/lab/topology.ts";
import {
  type Background,
  curl,
  knock,
  labCert,
  labSupported,
  ROOT,
  sh,
  spawnIn,
  until,
} from "../lab/_helpers.ts";
import { chromiumAvailable } from "./_browser.ts";
import { LAB_FORWARD } from "./_ui_lab_driver.ts";

/** The unlock must show up faster than the dashboard's 10 s poll: it came by the stream. */
const LIVE_MS = 5000;

/** One line the driver printed. */
interface DriverEvent {
  event: string;
  at: number;
  [field: string]: unknown;
}

function events(driver: Background): DriverEvent[] {
  return driver.output().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
}

/** Waits for the driver to print `name`; fails at once on its "error". */
async function waitEvent(driver: Background, name: string, timeoutMs: number) {
  let found: DriverEvent | undefined;
  await until(() => {
    const all = events(driver);
    const error = all.find((e) => e.event === "error");
    if (error) throw new Error(`UI driver failed: ${error.message}\n${driver.errors()}`);
    found = all.find((e) => e.event === name);
    return found !== undefined;
  }, timeoutMs);
  const error = events(driver).find((e) => e.event === "error");
  assert.equal(error, undefined, `UI driver failed: ${error?.message}\n${driver.errors()}`);
  assert.ok(
    found,
    `no "${name}" from the UI driver in ${timeoutMs} ms:\n${driver.output()}\n${driver.errors()}`,
  );
  return found;
}

/** Chromium's `--ignore-certificate-errors-spki-list` form: base64 SHA-256 of the SPKI. */
async function spkiHash(pem: string): Promise<string> {
  const spki = new X509Certificate(pem).publicKey.export({ type: "spki", format: "der" });
  return btoa(String.fromCharCode(...new Uint8Array(await crypto.subtle.digest("SHA-256", spki))));
}

Deno.test({
  name: "web UI in the lab: sign in, forward, live unlock after a real knock, revoke locks again",
  ignore: !labSupported() || !chromiumAvailable(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const lab = await startLab();
    let driver: Background | null = null;
    try {
      const log = await Deno.readTextFile(lab.logFile);
      const m =
        /Initial administrator \(shown once\): user=(\S+) password=(\S+) totp-secret=([A-Z2-7]+)/
          .exec(log);
      assert.ok(m, `no initial administrator in the appliance log:\n${log}`);
      const [, user, password, secret] = m;

      const page = await sh(lab, "server", [
        "curl",
        "--cacert",
        labCert(lab),
        "-sS",
        "-m",
        "5",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        `https://${LAB.lan}:8443/login`,
      ]);
      assert.equal(
        page.stdout,
        "200",
        `the appliance does not serve the web UI at /login (is createUi mounted in src/main.ts?)`,
      );

      driver = spawnIn(
        lab,
        "server",
        [
          Deno.execPath(),
          "run",
          "-A",
          `${ROOT}tests/browser/_ui_lab_driver.ts`,
          "--base",
          `https://${LAB.lan}:8443`,
          "--spki",
          await spkiHash(await Deno.readTextFile(labCert(lab))),
          "--user",
          user,
          // One word: a generated password may start with "-", which parseArgs takes for an option.
          `--password=${password}`,
          "--secret",
          secret,
          "--client",
          LAB.client,
        ],
        240,
        { stdin: true },
      );
      await waitEvent(driver, "ready", 120_000);

      const url = `http://${LAB.wan}:${LAB_FORWARD.publicPort}/`;
      assert.equal(await curl(lab, "client", url, 3), null, "the forward is locked before a knock");
      const k = await knock(lab, "client");
      assert.equal(k.code, 0, `knock failed: ${k.stdout}${k.stderr}`);
      const knocked = Date.now();
      const unlocked = await waitEvent(driver, "unlocked", 30_000);
      assert.match(String(unlocked.text), /alice/);
      console.log(
        `unlock on the dashboard ${unlocked.at - knocked} ms after the knock client ended`,
      );
      assert.ok(
        unlocked.at - knocked < LIVE_MS,
        `the unlock took ${unlocked.at - knocked} ms to appear: not live`,
      );
      assert.match(await curl(lab, "client", url) ?? "", /hello from 192\.0\.2\.12:8080/);
      assert.match(await curl(lab, "client", `http://${LAB.wan}:52201/`) ?? "", /hello/);

      await driver.write("relabel\n");
      const labels = await waitEvent(driver, "flow-rules", 60_000);
      const rules = labels.rules as string[];
      console.log(
        `flows to :${LAB_FORWARD.publicPort} after a rule added and one deleted: ${rules}`,
      );
      assert.ok(rules.length > 0, "the dashboard lists the forward's flow");
      assert.deepEqual(new Set(rules), new Set([LAB_FORWARD.name]), "flows name their rule");

      await driver.write("revoke\n");
      await waitEvent(driver, "revoked", 30_000);
      assert.equal(await curl(lab, "client", url, 3), null, "locked again after Revoke");
      assert.equal(await curl(lab, "client", `http://${LAB.wan}:52201/`, 3), null);
      const done = await driver.finish(30_000);
      driver = null;
      assert.equal(done.code, 0, `driver exit ${done.code}:\n${done.stdout}\n${done.stderr}`);
    } finally {
      await driver?.stop();
      await lab.down();
    }
  },
});
