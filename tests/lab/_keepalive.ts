/**
 * Holds one HTTP/1.1 keep-alive connection open: connects to HOST:PORT, sends
 * a GET and prints `first <body>`, then waits for a line on stdin (the test's
 * "go", after as long an idle pause as it wants) and sends a second GET on
 * the same connection, printing `second <body>` or `second-failed <why>`.
 *
 *   deno run -A tests/lab/_keepalive.ts HOST PORT
 */

const [host, port] = Deno.args;
const enc = new TextEncoder(), dec = new TextDecoder();

/** Sends one GET and reads its response (a short body with Content-Length) within 5 s. */
async function get(conn: Deno.Conn): Promise<string> {
  await conn.write(enc.encode(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`));
  let text = "";
  const buf = new Uint8Array(4096);
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    const n = await Promise.race([
      conn.read(buf),
      new Promise<"timeout">((r) => setTimeout(() => r("timeout"), deadline - Date.now())),
    ]);
    if (n === "timeout") throw new Error("no response within 5 s");
    if (n === null) throw new Error("the connection was closed");
    text += dec.decode(buf.subarray(0, n));
    const head = text.indexOf("\r\n\r\n");
    const len = Number(/content-length:\s*(\d+)/i.exec(text)?.[1] ?? -1);
    if (head >= 0 && len >= 0 && text.length >= head + 4 + len) {
      return text.slice(head + 4, head + 4 + len).trim();
    }
  }
  throw new Error("no complete response within 5 s");
}

const conn = await Deno.connect({ hostname: host, port: Number(port) });
console.log(`first ${await get(conn)}`);
// Wait for the go line (or stdin closing).
const reader = Deno.stdin.readable.getReader();
await reader.read();
try {
  console.log(`second ${await get(conn)}`);
} catch (e) {
  console.log(`second-failed ${(e as Error).message}`);
}
conn.close();
