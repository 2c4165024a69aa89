/**
 * Drives the web knock tool in Chromium, from whatever network namespace it
 * runs in (the lab test starts it with `ip netns exec <client> deno run -A`):
 * opens ui/knock/index.html from file://, fills the form, clicks Knock, waits
 * for the outcome and prints it as one JSON line on stdout.
 *
 *   deno run -A tests/lab/_knock_page_driver.ts --server 198.51.100.1 \
 *     --first-port 41001 --secret GEZD... [--length 3] [--delay 100] [--then-port 52201]
 */
import { parseArgs } from "node:util";
import { fileUrl, launchChromium } from "../browser/_browser.ts";

/** What the driver prints. */
export interface DriverOutput {
  /** The result's data-state: sent, open, answered, closed, error, throttled or invalid. */
  state: string;
  /** The result's text. */
  result: string;
  /** The knock log's lines. */
  knocks: string[];
  /** The ports knocked, in order, as the page lists them. */
  ports: number[];
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
    },
  });
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(fileUrl("ui/knock/index.html"));
    await page.waitForFunction(() => "knockgate" in globalThis);
    const fields: Record<string, string> = {
      server: values.server ?? "",
      "first-port": values["first-port"] ?? "",
      secret: values.secret ?? "",
      length: values.length,
      "delay-ms": values.delay,
      "then-port": values["then-port"],
    };
    for (const [id, value] of Object.entries(fields)) await page.fill(`#${id}`, value);
    await page.click("#knock");
    const selector = FINAL.map((s) => `#result[data-state="${s}"]`).join(", ");
    await page.waitForSelector(selector, { timeout: Number(values["timeout-ms"]) });
    const knocks = await page.locator("#knock-log li").allTextContents();
    const ports = await page.locator("#knock-log li").evaluateAll(
      (items) => items.map((li) => Number(li.getAttribute("data-port"))),
    );
    const out: DriverOutput = {
      state: await page.getAttribute("#result", "data-state") ?? "",
      result: await page.textContent("#result") ?? "",
      knocks,
      ports,
    };
    console.log(JSON.stringify(out));
  } finally {
    await browser.close();
  }
}

if (import.meta.main) await main();
