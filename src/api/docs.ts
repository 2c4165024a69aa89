/**
 * Swagger UI at `/api/docs/`, served from the `swagger-ui-dist` package on
 * disk (no CDN: it works offline), pointed at `/api/v1/openapi.json`.
 */
import { Hono } from "hono";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { AppEnv } from "./types.ts";

const ASSETS: Record<string, string> = {
  "swagger-ui.css": "text/css; charset=utf-8",
  "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
  "swagger-ui-standalone-preset.js": "text/javascript; charset=utf-8",
  "favicon-32x32.png": "image/png",
};

/** Swagger UI sets inline styles and data: images; scripts stay 'self' only. */
export const DOCS_CSP =
  "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'";

const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Knockgate API</title>
<link rel="stylesheet" href="swagger-ui.css">
<link rel="icon" type="image/png" href="favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="swagger-ui-bundle.js"></script>
<script src="swagger-ui-standalone-preset.js"></script>
<script src="init.js"></script>
</body>
</html>
`;

/** The page's script lives in a file of its own, since the CSP forbids inline scripts. */
const INIT_JS = `window.ui = SwaggerUIBundle({
  url: "/api/v1/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: "StandaloneLayout",
});
`;

function hasBundle(dir: string): boolean {
  try {
    return Deno.statSync(join(dir, "swagger-ui-bundle.js")).isFile;
  } catch {
    return false;
  }
}

function fromResolvers(): string[] {
  const out: string[] = [];
  try {
    out.push(dirname(fileURLToPath(import.meta.resolve("swagger-ui-dist/package.json"))));
  } catch { /* not resolvable this way */ }
  try {
    out.push(dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json")));
  } catch { /* not resolvable this way */ }
  return out;
}

/** `node_modules/swagger-ui-dist` and `node_modules/.deno/swagger-ui-dist@*` above `start`. */
function fromParents(start: string): string[] {
  const out: string[] = [];
  for (let dir = start; dir !== dirname(dir); dir = dirname(dir)) {
    const nm = join(dir, "node_modules");
    out.push(join(nm, "swagger-ui-dist"));
    try {
      for (const e of Deno.readDirSync(join(nm, ".deno"))) {
        if (e.name.startsWith("swagger-ui-dist@")) {
          out.push(join(nm, ".deno", e.name, "node_modules", "swagger-ui-dist"));
        }
      }
    } catch { /* no .deno folder here */ }
  }
  return out;
}

/** The directory of the installed `swagger-ui-dist` package, or null. */
export function findSwaggerUiDir(): string | null {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [...fromResolvers(), ...fromParents(here), ...fromParents(Deno.cwd())];
  return candidates.find(hasBundle) ?? null;
}

/** The Swagger UI router (mounted at the root: `/api/docs/...`). */
export function docsRouter(dir: string | null = findSwaggerUiDir()): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const cache = new Map<string, Uint8Array<ArrayBuffer>>();
  app.use("/api/docs/*", async (c, next) => {
    await next();
    c.header("Content-Security-Policy", DOCS_CSP);
    c.header("Cache-Control", "no-cache");
  });
  app.get("/api/docs", (c) => c.redirect("/api/docs/", 301));
  app.get("/api/docs/", (c) => c.html(INDEX_HTML));
  app.get(
    "/api/docs/init.js",
    (c) => c.body(INIT_JS, 200, { "Content-Type": ASSETS["swagger-ui-bundle.js"] }),
  );
  app.get("/api/docs/:file", async (c, next) => {
    const file = c.req.param("file");
    const type = ASSETS[file];
    if (type === undefined || dir === null) return await next();
    let bytes = cache.get(file);
    if (bytes === undefined) {
      bytes = await Deno.readFile(join(dir, file));
      cache.set(file, bytes);
    }
    return c.body(bytes, 200, { "Content-Type": type });
  });
  return app;
}
