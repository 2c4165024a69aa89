/**
 * Shared Playwright launcher for the browser tests: Debian's Chromium
 * (/usr/bin/chromium, installed by scripts/setup.sh), headless, with a fresh
 * profile directory removed on close, and a screenshot helper writing to
 * `artifacts/screenshots/<name>.png`.
 *
 * ```ts
 * Deno.test({ name: "page", ignore: !chromiumAvailable(), sanitizeOps: false,
 *   sanitizeResources: false, fn: async () => {
 *   const browser = await launchChromium();
 *   try {
 *     const page = await browser.newPage();
 *     await page.goto(fileUrl("ui/knock/index.html"));
 *     await saveScreenshot(page, "knock-desktop");
 *   } finally {
 *     await browser.close();
 *   }
 * } });
 * ```
 */
import { type BrowserContext, chromium, type Page } from "playwright-core";

/** Where Debian installs Chromium. */
export const CHROMIUM_PATH = "/usr/bin/chromium";
/** The repository root, as a file URL ending with a slash. */
export const ROOT_URL = new URL("../../", import.meta.url);

/** Flags for a quiet, offline-friendly headless Chromium (root needs --no-sandbox). */
export const CHROMIUM_ARGS: readonly string[] = [
  "--headless=new",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** True when Chromium is installed (tests use it to `ignore` themselves otherwise). */
export function chromiumAvailable(path = CHROMIUM_PATH): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** Options for `launchChromium`. */
export interface LaunchOptions {
  /** Chromium binary (default /usr/bin/chromium). */
  executablePath?: string;
  /** Flags added to `CHROMIUM_ARGS`. */
  args?: string[];
  /** Viewport of new pages (default 1280x800). */
  viewport?: { width: number; height: number };
  /** Emulate a touch phone (mobile meta viewport, touch events). */
  mobile?: boolean;
  /** Browser launch timeout in ms (default 30 s). */
  timeoutMs?: number;
}

/** A running Chromium with its own profile directory. */
export interface LaunchedChromium {
  /** The browser context (a persistent one: it owns the profile directory). */
  context: BrowserContext;
  /** The fresh profile directory, removed by `close`. */
  userDataDir: string;
  /** Opens a new page (tab). */
  newPage(): Promise<Page>;
  /** Closes the browser and removes its profile directory; safe to call twice. */
  close(): Promise<void>;
}

/**
 * Launches Chromium with a fresh user-data directory. Playwright refuses
 * `--user-data-dir` in `launch()`'s args, so this uses
 * `launchPersistentContext(dir)`, which passes the same flag.
 */
export async function launchChromium(opts: LaunchOptions = {}): Promise<LaunchedChromium> {
  const userDataDir = await Deno.makeTempDir({ prefix: "knockgate-chromium-" });
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: opts.executablePath ?? CHROMIUM_PATH,
      headless: true,
      args: [...CHROMIUM_ARGS, ...(opts.args ?? [])],
      viewport: opts.viewport ?? { width: 1280, height: 800 },
      isMobile: opts.mobile ?? false,
      hasTouch: opts.mobile ?? false,
      timeout: opts.timeoutMs ?? 30_000,
    });
  } catch (e) {
    await Deno.remove(userDataDir, { recursive: true }).catch(() => {});
    throw e;
  }
  let closed = false;
  return {
    context,
    userDataDir,
    newPage: () => context.newPage(),
    close: async () => {
      if (closed) return;
      closed = true;
      await context.close().catch(() => {});
      await Deno.remove(userDataDir, { recursive: true }).catch(() => {});
    },
  };
}

/** The file:// URL of a repository path such as `ui/knock/index.html`. */
export function fileUrl(repoPath: string): string {
  return new URL(repoPath, ROOT_URL).href;
}

/** Saves a full-page screenshot to `artifacts/screenshots/<name>.png`; returns its path. */
export async function saveScreenshot(page: Page, name: string): Promise<string> {
  if (!/^[a-z0-9][a-z0-9_.-]*$/i.test(name)) {
    throw new Error(`Cannot save screenshot "${name}": use letters, digits, "-", "_" and "."`);
  }
  const dir = new URL("artifacts/screenshots/", ROOT_URL).pathname;
  await Deno.mkdir(dir, { recursive: true });
  const path = `${dir}${name}.png`;
  await page.screenshot({ path, fullPage: true });
  return path;
}

/**
 * `page.goto`, again (up to three tries) when Chromium aborts it with ERR_NETWORK_CHANGED (it does
 * when interfaces come and go on the host, as other lab tests' namespaces do).
 */
export async function gotoSettled(page: Page, url: string): Promise<void> {
  for (let attempt = 1;; attempt++) {
    try {
      await page.goto(url);
      return;
    } catch (e) {
      if (attempt >= 3 || !String(e).includes("ERR_NETWORK_CHANGED")) throw e;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}
