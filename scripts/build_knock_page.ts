/**
 * Builds `ui/knock/index.html`, the self-contained web knock tool: bundles
 * `ui/knock/knock_entry.ts` (which imports `src/knock/sequence.ts`, the one
 * copy of the sequence math) for browsers, inlines it into
 * `ui/knock/template.html` at the `<!-- knockgate:bundle -->` marker, formats
 * the page as `deno fmt` would and pins the script's hash in the page's CSP.
 *
 *   deno run -A scripts/build_knock_page.ts          # writes index.html
 *   deno run -A scripts/build_knock_page.ts --check  # exit 1 when index.html is stale
 */

const ROOT = new URL("../", import.meta.url);
/** The template the page is built from. */
export const TEMPLATE = new URL("ui/knock/template.html", ROOT);
/** The bundled entry module. */
export const ENTRY = new URL("ui/knock/knock_entry.ts", ROOT);
/** The generated page (committed). */
export const PAGE = new URL("ui/knock/index.html", ROOT);

const MARKER = "<!-- knockgate:bundle -->";
const HASH_SLOT = "'sha256-KNOCKGATE_SCRIPT_HASH'";
const SCRIPT = /<script type="module">([\s\S]*?)<\/script>/;

async function deno(args: string[], stdin?: string): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT.pathname,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  const text = new TextDecoder();
  if (!out.success) {
    throw new Error(
      `Cannot build the knock page: deno ${args[0]} failed:\n${text.decode(out.stderr)}`,
    );
  }
  return text.decode(out.stdout);
}

/** Bundles the entry module for browsers; paths in its comments are relative to the repo. */
export async function bundleEntry(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "knockgate-knock-page-" });
  try {
    const out = `${dir}/knock.js`;
    // --check type-checks the page script against the DOM types it references.
    await deno([
      "bundle",
      "--check",
      "--quiet",
      "--platform",
      "browser",
      "-o",
      out,
      ENTRY.pathname,
    ]);
    return await Deno.readTextFile(out);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The CSP source of an inline script: `'sha256-<base64>'` of its exact text. */
export async function scriptHash(script: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(script));
  return `'sha256-${btoa(String.fromCharCode(...new Uint8Array(digest)))}'`;
}

function inlineScript(page: string): string {
  const m = page.match(SCRIPT);
  if (!m) throw new Error("Cannot build the knock page: the inline script is missing");
  return m[1];
}

/** Builds the page from the current sources; returns its text. */
export async function buildKnockPage(): Promise<string> {
  const template = await Deno.readTextFile(TEMPLATE);
  if (!template.includes(MARKER) || !template.includes(HASH_SLOT)) {
    throw new Error(`Cannot build the knock page: ${MARKER} or ${HASH_SLOT} missing in template`);
  }
  // "</script" inside the bundle would end the inline element early.
  const js = (await bundleEntry()).replaceAll("</script", "<\\/script");
  const raw = template.replace(MARKER, () => `<script type="module">\n${js}</script>`);
  const formatted = await deno(["fmt", "--quiet", "--ext", "html", "-"], raw);
  const page = formatted.replace(HASH_SLOT, await scriptHash(inlineScript(formatted)));
  // The hash is taken after formatting; formatting again must leave the script alone.
  const again = await deno(["fmt", "--quiet", "--ext", "html", "-"], page);
  if (again !== page) throw new Error("Cannot build the knock page: deno fmt is not stable on it");
  return page;
}

if (import.meta.main) {
  const page = await buildKnockPage();
  const hash = await scriptHash(inlineScript(page));
  if (Deno.args.includes("--check")) {
    const current = await Deno.readTextFile(PAGE).catch(() => "");
    if (current !== page) {
      console.error("ui/knock/index.html is stale: run deno run -A scripts/build_knock_page.ts");
      Deno.exit(1);
    }
    console.log("ui/knock/index.html is up to date");
  } else {
    await Deno.writeTextFile(PAGE, page);
    console.log(`wrote ui/knock/index.html (${page.length} bytes, script ${hash})`);
  }
}
