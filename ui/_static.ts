/**
 * The UI's static files (`ui/static/*`: one style sheet, small ES modules)
 * and the stand-alone knock page (`ui/knock/index.html`), read from disk once
 * and served with an ETag. Only names listed in the folder are served.
 */
import type { Context } from "hono";

/** Where the static files live. */
export const STATIC_DIR = new URL("./static/", import.meta.url);
/** The generated knock page, served as is at `/knock/`. */
export const KNOCK_PAGE = new URL("./knock/index.html", import.meta.url);

const TYPES: Record<string, string> = {
  css: "text/css; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
};

/** A file in memory with its validator. */
interface Asset {
  body: Uint8Array<ArrayBuffer>;
  type: string;
  etag: string;
}

async function etagOf(body: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
  return `"${Array.from(digest.slice(0, 12), (b) => b.toString(16).padStart(2, "0")).join("")}"`;
}

/** Reads a file into an asset, or null when it does not exist. */
async function load(url: URL, type: string): Promise<Asset | null> {
  try {
    const body = await Deno.readFile(url);
    return { body, type, etag: await etagOf(body) };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** Answers with `asset`, or 304 when the client holds the same version. */
function send(c: Context, asset: Asset, headers: Record<string, string> = {}): Response {
  const common = { ETag: asset.etag, "Cache-Control": "no-cache", ...headers };
  if (c.req.header("if-none-match") === asset.etag) return c.body(null, 304, common);
  return c.body(asset.body, 200, { "Content-Type": asset.type, ...common });
}

/** Serves `/static/:file` from `dir`; `reload` re-reads files on every request (development). */
export function staticFiles(dir: URL = STATIC_DIR, reload = false) {
  const cache = new Map<string, Asset | null>();
  return async (c: Context, next: () => Promise<void>): Promise<Response | void> => {
    const file = c.req.param("file") ?? "";
    const ext = /^[a-z0-9][a-z0-9_-]*\.([a-z]+)$/.exec(file)?.[1];
    const type = ext === undefined ? undefined : TYPES[ext];
    if (type === undefined || file.endsWith("_test.js")) return await next();
    let asset = reload ? undefined : cache.get(file);
    if (asset === undefined) {
      asset = await load(new URL(file, dir), type);
      cache.set(file, asset);
    }
    if (asset === null) return await next();
    return send(c, asset);
  };
}

/** The CSP the knock page declares in its own `<meta>` tag (it carries an inline script). */
export function knockPageCsp(html: string): string | null {
  const m = /<meta\s+http-equiv="Content-Security-Policy"\s+content="([^"]+)"/i.exec(html);
  return m ? m[1] : null;
}

/**
 * Serves the knock page as is. The API's default CSP would block its inline
 * script, so the response carries the page's own policy (plus no framing).
 */
export function knockPage(page: URL = KNOCK_PAGE, reload = false) {
  let cached: Promise<Asset | null> | null = null;
  return async (c: Context, next: () => Promise<void>): Promise<Response | void> => {
    if (cached === null || reload) cached = load(page, "text/html; charset=utf-8");
    const asset = await cached;
    if (asset === null) return await next();
    const csp = knockPageCsp(new TextDecoder().decode(asset.body));
    const policy = csp === null
      ? "default-src 'none'; frame-ancestors 'none'"
      : `${csp}; frame-ancestors 'none'`;
    return send(c, asset, { "Content-Security-Policy": policy });
  };
}
