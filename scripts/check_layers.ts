/**
 * Fails when a lower layer imports a higher one. Each folder of `src/` (and
 * `ui/`) may import only the layers listed for it; `main.ts`, `scripts/` and
 * `tests/` may import anything.
 */

const ALLOWED: Record<string, string[]> = {
  "clock.ts": [],
  packet: [],
  log: ["clock.ts"],
  device: ["packet", "log"],
  conntrack: ["packet", "clock.ts"],
  nat: ["packet", "conntrack"],
  knock: ["packet", "clock.ts"],
  host: [],
  config: ["clock.ts", "packet", "nat", "knock", "log"],
  datapath: ["clock.ts", "packet", "log", "device", "conntrack", "nat", "knock", "config", "host"],
  store: ["clock.ts", "packet", "nat", "knock"],
  api: ["clock.ts", "packet", "log", "nat", "knock", "config", "datapath", "store", "host"],
  cli: ["clock.ts", "packet", "knock", "api"],
  ui: ["clock.ts", "packet", "knock", "api", "log", "nat"],
};

const root = new URL("..", import.meta.url).pathname;
const IMPORT = /(?:import|export)\s[^"']*?from\s*["']([^"']+)["']|import\s*\(\s*["']([^"']+)["']/g;

/** The layer of a repo-relative path, or null when unconstrained. */
function layerOf(rel: string): string | null {
  if (rel.startsWith("ui/")) return "ui";
  if (!rel.startsWith("src/")) return null;
  const part = rel.slice(4).split("/")[0];
  return part === "main.ts" || part === "mod.ts" ? null : part;
}

async function* walk(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory && e.name !== "node_modules") yield* walk(p);
    else if (e.isFile && /\.tsx?$/.test(e.name)) yield p;
  }
}

const errors: string[] = [];
for (const top of ["src", "ui"]) {
  for await (const file of walk(`${root}${top}`)) {
    const rel = file.slice(root.length);
    const layer = layerOf(rel);
    if (!layer) continue;
    const text = await Deno.readTextFile(file);
    for (const m of text.matchAll(IMPORT)) {
      const spec = m[1] ?? m[2];
      if (!spec.startsWith(".")) continue;
      const target = new URL(spec, `file://${file}`).pathname.slice(root.length);
      const tl = layerOf(target);
      if (!tl || tl === layer) continue;
      if (!ALLOWED[layer]?.includes(tl)) {
        errors.push(`${rel}: layer "${layer}" must not import "${target}" (layer "${tl}")`);
      }
    }
  }
}
if (errors.length) {
  console.error(errors.join("\n"));
  Deno.exit(1);
}
console.log("layers: every import points down");
