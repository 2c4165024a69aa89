/**
 * A UDP flow that never goes idle, for failover tests: from LOCAL_PORT it
 * sends a datagram carrying a sequence number to HOST:PORT every INTERVAL_MS
 * (an echo server answers it, e.g. _udp_listen.ts) and counts the echoes.
 * Prints `started` once bound; for each line `report` on stdin it prints
 * `report {"sent":N,"echoed":M,"gaps":[[FROM_MS,LOST,SPAN_MS],...]}`: every
 * run of datagrams whose echoes were missed, by when its first was sent (ms
 * since the start), how many, and the time from its first to the next
 * echoed one. Runs until interrupted (the caller's timeout bounds it).
 *
 *   deno run -A tests/lab/_udp_pinger.ts HOST PORT LOCAL_PORT INTERVAL_MS
 */
import dgram from "node:dgram";

const [host, port, localPort, intervalArg] = Deno.args;
const interval = Number(intervalArg);
const sock = dgram.createSocket("udp4");
/** Per sequence number: echoed (1) or not (0), and when it was sent (ms since the start). */
const echoed: number[] = [], sentAt: number[] = [];
let sent = 0;
const t0 = Date.now();

sock.on("message", (msg: Uint8Array) => {
  if (msg.length !== 4) return;
  const seq = new DataView(msg.buffer, msg.byteOffset, 4).getUint32(0);
  if (seq < sent) echoed[seq] = 1;
});
await new Promise<void>((r) => sock.bind(Number(localPort), r));
console.log("started");
const timer = setInterval(() => {
  const msg = new Uint8Array(4);
  new DataView(msg.buffer).setUint32(0, sent);
  sentAt[sent] = Date.now() - t0;
  echoed[sent++] = 0;
  sock.send(msg, Number(port), host);
}, interval);

/** Runs of missed echoes, leaving out the last second's datagrams (their echoes may be on the way). */
function gaps(): [number, number, number][] {
  const settled = Math.max(0, sent - Math.ceil(1000 / interval));
  const out: [number, number, number][] = [];
  for (let i = 0; i < settled; i++) {
    if (echoed[i] === 1) continue;
    let j = i;
    while (j < settled && echoed[j] === 0) j++;
    out.push([sentAt[i], j - i, sentAt[j] - sentAt[i]]);
    i = j;
  }
  return out;
}

const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
for await (const chunk of lines) {
  for (const line of chunk.split("\n")) {
    if (line.trim() !== "report") continue;
    const n = echoed.reduce((a, b) => a + b, 0);
    console.log(`report ${JSON.stringify({ sent, echoed: n, gaps: gaps(), ms: Date.now() - t0 })}`);
  }
}
clearInterval(timer);
sock.close();
