/**
 * The web knock tool: `index.html`, one self-contained page (inline CSS and
 * script, no external resource) that knocks `portknock/v1` from a browser and
 * shows the current TOTP code. Whoever serves it (at `/knock/`) reads
 * `KNOCK_PAGE`; its own `<meta>` CSP pins the inline script by hash, so a
 * `Content-Security-Policy` header sent with it must allow that script too
 * (`knockPageScriptHash`). The page's logic is exported for reuse and tests.
 *
 * Rebuild after editing `template.html`, `knock_entry.ts` or `src/knock`:
 * `deno run -A scripts/build_knock_page.ts`.
 */

export * from "./knock_core.ts";

/** The built page (committed; `build_test.ts` keeps it in step with its sources). */
export const KNOCK_PAGE: URL = new URL("./index.html", import.meta.url);

/** The CSP source (`'sha256-...'`) the page's `<meta>` policy allows its inline script by. */
export async function knockPageScriptHash(): Promise<string> {
  const page = await Deno.readTextFile(KNOCK_PAGE);
  const m = page.match(/script-src ('sha256-[A-Za-z0-9+/=]+')/);
  if (!m) throw new Error(`Cannot read the knock page's script hash from ${KNOCK_PAGE.pathname}`);
  return m[1];
}
