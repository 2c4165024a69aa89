/**
 * Serves ui/knock/index.html (at every path) over plain HTTP, or HTTPS with
 * `--cert`/`--key`, on `HOST:PORT`, until killed: the knock page as a web
 * server hands it out, from an address no browser treats as trustworthy.
 *
 *   deno run -A tests/lab/_static_page.ts 203.0.113.10 8000 [--cert C --key K]
 */
import { parseArgs } from "node:util";

const { values, positionals: [hostname, port] } = parseArgs({
  args: Deno.args,
  options: { cert: { type: "string" }, key: { type: "string" } },
  allowPositionals: true,
});
const page = await Deno.readFile(new URL("../../ui/knock/index.html", import.meta.url));
const tls = values.cert && values.key
  ? { cert: await Deno.readTextFile(values.cert), key: await Deno.readTextFile(values.key) }
  : {};
Deno.serve(
  { hostname, port: Number(port), ...tls, onListen: () => console.log("listening") },
  () => new Response(page, { headers: { "content-type": "text/html; charset=utf-8" } }),
);
