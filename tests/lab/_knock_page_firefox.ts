/**
 * Drives the web knock tool in Firefox (Debian's firefox-esr, headless) from
 * whatever network namespace it runs in: serves ui/knock/index.html and a
 * harness page on 127.0.0.1; the harness loads the tool in a same-origin
 * frame, fills the form, clicks Knock, waits for the outcome and reports it
 * by navigating to `/result?...`, which this script prints as one JSON line.
 * Playwright cannot drive stock Firefox, hence the harness. No proxy is set:
 * the knocks must leave; in a lab namespace nothing else is reachable.
 *
 *   deno run -A tests/lab/_knock_page_firefox.ts --server dual.knock.test \
 *     --first-port 41001 --secret GEZD... [--delay 100]
 */
import { parseArgs } from "node:util";

const ROOT = new URL("../../", import.meta.url).pathname;
export const FIREFOX = "/usr/bin/firefox-esr";

/** What the driver prints. */
export interface FirefoxOutput {
  state: string;
  result: string;
  /** The knock log's lines. */
  knocks: string[];
  /** The ports knocked, in order, as the page lists them. */
  ports: number[];
  /** data-family of `#family`. */
  family: string;
  ua: string;
}

/** True when firefox-esr is installed. */
export function firefoxAvailable(): boolean {
  try {
    return Deno.statSync(FIREFOX).isFile;
  } catch {
    return false;
  }
}

const USER_JS = [
  ["network.proxy.type", 0],
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

function harness(fields: Record<string, string>): string {
  return `<!doctype html><meta charset="utf-8"><iframe id="f" src="/index.html"></iframe>
<script>
const FINAL = ["sent", "open", "answered", "closed", "error", "throttled", "invalid"];
const report = (o) => { location.href = "/result?" + new URLSearchParams(o); };
document.getElementById("f").addEventListener("load", async (ev) => {
  try {
    const d = ev.target.contentDocument;
    for (const [id, v] of Object.entries(${JSON.stringify(fields)})) d.getElementById(id).value = v;
    d.getElementById("knock").click();
    const end = Date.now() + 30000;
    while (!FINAL.includes(d.getElementById("result").dataset.state) && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 50));
    }
    // Firefox's second attempt to a port starts 250 ms after the first: let the last one go.
    await new Promise((r) => setTimeout(r, 1000));
    const items = [...d.querySelectorAll("#knock-log li")];
    report({ out: JSON.stringify({
      state: d.getElementById("result").dataset.state,
      result: d.getElementById("result").textContent,
      knocks: items.map((li) => li.textContent),
      ports: items.map((li) => Number(li.dataset.port)),
      family: d.getElementById("family").dataset.family ?? "",
      ua: navigator.userAgent,
    }) });
  } catch (e) {
    report({ out: JSON.stringify({ state: "error", result: String(e) }) });
  }
});
</script>`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      server: { type: "string", default: "" },
      "first-port": { type: "string", default: "" },
      secret: { type: "string", default: "" },
      delay: { type: "string", default: "100" },
    },
  });
  const page = await Deno.readTextFile(`${ROOT}ui/knock/index.html`);
  const html = harness({
    server: values.server,
    "first-port": values["first-port"],
    secret: values.secret,
    "delay-ms": values.delay,
  });
  const { promise: reported, resolve } = Promise.withResolvers<string>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const path = new URL(req.url).pathname;
    const type = { "content-type": "text/html; charset=utf-8" };
    if (path === "/index.html") return new Response(page, { headers: type });
    if (path === "/result") {
      resolve(new URL(req.url).searchParams.get("out") ?? "{}");
      return new Response("ok");
    }
    return new Response(html, { headers: type });
  });
  const profile = await Deno.makeTempDir({ prefix: "knockgate-firefox-" });
  await Deno.writeTextFile(`${profile}/user.js`, USER_JS + "\n");
  const ff = new Deno.Command(FIREFOX, {
    args: [
      "--headless",
      "--no-remote",
      "--profile",
      profile,
      `http://127.0.0.1:${server.addr.port}/`,
    ],
    env: { HOME: profile },
    stdout: "null",
    stderr: "null",
  }).spawn();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const late = new Promise<string>((_, reject) => {
      timer = setTimeout(() => reject(new Error("Firefox reported nothing within 60 s")), 60_000);
    });
    console.log(await Promise.race([reported, late]));
  } finally {
    clearTimeout(timer);
    try {
      ff.kill("SIGKILL");
    } catch { /* gone */ }
    await ff.status;
    await server.shutdown();
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await main();
