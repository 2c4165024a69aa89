/**
 * Drives the web knock tool in Chromium, from whatever network namespace it
 * runs in (the lab test starts it with `ip netns exec <client> deno run -A`):
 * opens ui/knock/index.html from file:// (or `--url`, e.g. over plain http),
 * runs its self-test, fills the form, clicks Knock, waits for the outcome and
 * prints it as one JSON line on stdout.
 *
 *   deno run -A tests/lab/_knock_page_driver.ts --server 198.51.100.1 \
 *     --first-port 41001 --secret GEZD... [--length 3] [--delay 100] [--then-port 52201] \
 *     [--rounds 1] [--url https://198.51.100.1:8443/knock/] [--spki BASE64]
 *
 * `--spki` trusts the one certificate whose key has that SHA-256 (base64 of the
 * SPKI's digest, Chromium's `--ignore-certificate-errors-spki-list`): a pin,
 * not a switch that ignores every certificate error.
 */
import { parseArgs } from "node:util";
import { fileUrl, gotoSettled, launchChromium } from "../browser/_browser.ts";

/** One knock as the page reports it. */
export interface RoundOutput {
  /** The result's data-state: sent, open, answered, closed, error, throttled or invalid. */
  state: string;
  /** The result's text. */
  result: string;
  /** The knock log's lines. */
  knocks: string[];
  /** The ports knocked, in order, as the page lists them. */
  ports: number[];
  /** What the page says of the address family (`#family`), and its data-family (4, 6, browser). */
  family: { text: string; data: string };
}

/** What the driver prints: the page's context, its self-test, every round (one click on Knock each). */
export interface DriverOutput {
  /** `isSecureContext` of the page. */
  secureContext: boolean;
  /** `typeof crypto.subtle` in the page ("undefined" outside secure contexts). */
  subtle: string;
  /** The page's self-test over its embedded vectors. */
  selfTest: { ok: boolean; engines: string[]; passed: number; failed: number };
  /** The self-test line the page shows after a click on "Run self-test". */
  selfTestText: string;
  rounds: RoundOutput[];
}

const FINAL = ["sent", "open", "answered", "closed", "error", "throttled", "invalid"];

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      server: { type: "string" },
      "first-port": { type: "string" },
      secret: { type: "string" },
      length: { type: "string", default: "3" },
      delay: { type: "string", default: "100" },
      "then-port": { type: "string", default: "" },
      "timeout-ms": { type: "string", default: "30000" },
      rounds: { type: "string", default: "1" },
      url: { type: "string" },
      spki: { type: "string" },
    },
  });
  const browser = await launchChromium({
    args: values.spki ? [`--ignore-certificate-errors-spki-list=${values.spki}`] : [],
  });
  try {
    const page = await browser.newPage();
    await gotoSettled(page, values.url ?? fileUrl("ui/knock/index.html"));
    await page.waitForFunction(() => "knockgate" in globalThis);
    const secureContext = await page.evaluate<boolean>("isSecureContext");
    const subtle = await page.evaluate<string>("typeof crypto.subtle");
    const selfTest = await page.evaluate<DriverOutput["selfTest"]>(
      "knockgate.selfTest().then((r) => " +
        "({ ok: r.ok, engines: r.engines, passed: r.passed, failed: r.failed }))",
    );
    await page.click("summary");
    await page.click("#selftest");
    await page.waitForSelector("#selftest-result[data-state]");
    const selfTestText = await page.textContent("#selftest-result") ?? "";
    const fields: Record<string, string> = {
      server: values.server ?? "",
      "first-port": values["first-port"] ?? "",
      secret: values.secret ?? "",
      length: values.length,
      "delay-ms": values.delay,
      "then-port": values["then-port"],
    };
    for (const [id, value] of Object.entries(fields)) await page.fill(`#${id}`, value);
    const selector = FINAL.map((s) => `#result[data-state="${s}"]`).join(", ");
    const rounds: RoundOutput[] = [];
    for (let i = 0; i < Number(values.rounds); i++) {
      // The previous round's outcome must not satisfy this round's wait.
      await page.evaluate(`document.getElementById("result").dataset.state = "idle"`);
      await page.click("#knock");
      await page.waitForSelector(selector, { timeout: Number(values["timeout-ms"]) });
      rounds.push({
        state: await page.getAttribute("#result", "data-state") ?? "",
        result: await page.textContent("#result") ?? "",
        knocks: await page.locator("#knock-log li").allTextContents(),
        ports: await page.locator("#knock-log li").evaluateAll(
          (items) => items.map((li) => Number(li.getAttribute("data-port"))),
        ),
        family: {
          text: await page.textContent("#family") ?? "",
          data: await page.getAttribute("#family", "data-family") ?? "",
        },
      });
    }
    console.log(
      JSON.stringify(
        { secureContext, subtle, selfTest, selfTestText, rounds } satisfies DriverOutput,
      ),
    );
  } finally {
    await browser.close();
  }
}

if (import.meta.main) await main();
