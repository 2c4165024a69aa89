/**
 * Drives the web UI of a lab appliance in Chromium, run inside a lab
 * namespace by `ui_lab_test.ts`. It prints one JSON object per line
 * (`{"event": ...}`) as it goes and reads commands from standard input:
 *
 *   signed-in -> forward-created -> ready (dashboard live) -> unlocked
 *   (the client IP appeared in the table) -> on "relabel": adds the rule
 *   `aaa-label`, deletes `web` and prints flow-rules (the Rule column of
 *   every tracked flow to the forward's port) -> on "revoke": revoked (the
 *   row is gone) -> exits 0; on any failure {"event":"error"} and exit 1.
 *
 *   deno run -A tests/browser/_ui_lab_driver.ts --base https://192.0.2.1:8443 \
 *     --user admin --password ... --secret ... --client 203.0.113.10
 */
import { parseArgs } from "node:util";
import type { Page } from "playwright-core";
import { totpCode } from "../../src/knock/totp.ts";
import { gotoSettled, launchChromium, saveScreenshot } from "./_browser.ts";

/** The forward the driver creates (the lab server answers HTTP on 8080). */
export const LAB_FORWARD = {
  name: "ui-lab",
  publicPort: "52230",
  address: "192.0.2.12",
  privatePort: "8080",
  user: "alice",
} as const;

/** Command-line options of the driver. */
interface DriverArgs {
  base: string;
  user: string;
  password: string;
  secret: string;
  client: string;
  unlockTimeoutMs: number;
  /** Base64 SHA-256 of the appliance certificate's SPKI: Chromium trusts that key only. */
  spki?: string;
}

function parse(argv: string[]): DriverArgs {
  const v = parseArgs({
    args: argv,
    options: {
      base: { type: "string", default: "https://192.0.2.1:8443" },
      user: { type: "string", default: "admin" },
      password: { type: "string", default: "" },
      secret: { type: "string", default: "" },
      client: { type: "string", default: "203.0.113.10" },
      "unlock-timeout": { type: "string", default: "60000" },
      spki: { type: "string" },
    },
  }).values;
  return {
    base: v.base,
    user: v.user,
    password: v.password,
    secret: v.secret,
    client: v.client,
    unlockTimeoutMs: Number(v["unlock-timeout"]),
    spki: v.spki,
  };
}

function emit(event: string, fields: Record<string, unknown> = {}): void {
  console.log(JSON.stringify({ event, at: Date.now(), ...fields }));
}

/** The lines of standard input, one at a time. */
async function* stdinLines(): AsyncGenerator<string> {
  let buf = "";
  for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
    }
  }
}

async function signIn(page: Page, a: DriverArgs): Promise<void> {
  const base = a.base;
  await gotoSettled(page, `${base}/`);
  await page.waitForURL(`${base}/login?next=%2F`);
  await page.getByLabel("User name").fill(a.user);
  await page.getByLabel("Password").fill(a.password);
  await page.getByLabel("Authenticator code").fill(
    totpCode(a.secret, Math.floor(Date.now() / 1000)),
  );
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}/`);
}

async function createForward(page: Page, base: string): Promise<void> {
  const f = LAB_FORWARD;
  await gotoSettled(page, `${base}/rules`);
  await page.getByRole("link", { name: "Add port forward" }).click();
  await page.waitForURL(`${base}/rules/forwards/new`);
  await page.getByLabel("Name", { exact: true }).fill(f.name);
  await page.getByLabel("Protocol").selectOption("tcp");
  await page.getByLabel("Public port or range").fill(f.publicPort);
  await page.getByLabel("Private IP").fill(f.address);
  await page.getByLabel("Private port or range").fill(f.privatePort);
  await page.getByLabel("Enforce port knocking").check();
  await page.getByLabel(f.user, { exact: true }).check();
  await page.getByRole("button", { name: "Apply" }).click();
  await page.waitForURL(`${base}/rules`);
  await page.locator(`tr[data-rule="${f.name}"]`).waitFor();
  await saveScreenshot(page, "ui-lab-rules");
}

/**
 * Adds a rule named to sort first (every rule moves one place down) and
 * deletes `web` (after the lab forward) through the forms; then reads the
 * Rule column of the flows to the lab forward's public port from the
 * dashboard.
 */
async function relabel(page: Page, base: string): Promise<string[]> {
  await gotoSettled(page, `${base}/rules/forwards/new`);
  await page.getByLabel("Name", { exact: true }).fill("aaa-label");
  await page.getByLabel("Public port or range").fill("52241");
  await page.getByLabel("Private IP").fill(LAB_FORWARD.address);
  await page.getByLabel("Private port or range").fill("8081");
  await page.getByRole("button", { name: "Apply" }).click();
  await page.waitForURL(`${base}/rules`);
  page.once("dialog", (d) => d.accept());
  await page.locator('tr[data-rule="web"]').getByRole("button", { name: "Delete" }).click();
  await page.locator('tr[data-rule="web"]').waitFor({ state: "detached" });
  await gotoSettled(page, `${base}/`);
  await page.locator("#live-state", { hasText: "Live" }).waitFor();
  const rows = page.locator("#flows tbody tr").filter({
    has: page.locator('td[data-label="To"]', { hasText: `:${LAB_FORWARD.publicPort}` }),
  });
  await rows.first().waitFor();
  await saveScreenshot(page, "ui-lab-dashboard-relabel");
  return await rows.locator('td[data-label="Rule"]').allInnerTexts();
}

async function main(a: DriverArgs): Promise<number> {
  const { base, client } = a;
  const lines = stdinLines();
  const host = new URL(base).hostname;
  const browser = await launchChromium({
    viewport: { width: 1280, height: 860 },
    // Chromium's own calls home (updates, accounts, autofill) go to a dead proxy, not to DNS.
    args: [
      "--proxy-server=http://127.0.0.1:9",
      `--proxy-bypass-list=${host}`,
      ...(a.spki ? [`--ignore-certificate-errors-spki-list=${a.spki}`] : []),
    ],
  });
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(20_000);
    page.on("pageerror", (e) => emit("page-error", { message: e.message }));
    await signIn(page, a);
    emit("signed-in");
    await createForward(page, base);
    emit("forward-created");
    await gotoSettled(page, `${base}/`);
    await page.locator("#live-state", { hasText: "Live" }).waitFor();
    await saveScreenshot(page, "ui-lab-dashboard");
    emit("ready");
    const row = page.locator(`#unlocks tr[data-ip="${client}"]`);
    await row.waitFor({ timeout: a.unlockTimeoutMs });
    emit("unlocked", { text: await row.innerText() });
    await saveScreenshot(page, "ui-lab-dashboard-unlocked");
    for await (const line of lines) {
      if (line === "relabel") {
        emit("flow-rules", { rules: await relabel(page, base) });
        continue;
      }
      if (line !== "revoke") continue;
      await gotoSettled(page, `${base}/`);
      await row.getByRole("button", { name: `Revoke ${client}` }).click();
      await row.waitFor({ state: "detached" });
      emit("revoked");
      await saveScreenshot(page, "ui-lab-dashboard-revoked");
      break;
    }
    return 0;
  } catch (e) {
    emit("error", { message: e instanceof Error ? e.message : String(e) });
    return 1;
  } finally {
    await browser.close();
  }
}

if (import.meta.main) Deno.exit(await main(parse(Deno.args)));
