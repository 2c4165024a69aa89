/**
 * The client halves of the knock-at-A, admitted-at-B latency, run inside
 * lab client namespaces and driven line by line over stdin (one long-lived
 * process each, so no sample pays for a Deno start). Every namespace shares
 * the host's clock: the epoch times the two print compare directly.
 *
 *   deno run -A fleet_probe.ts knock --host 198.51.100.1 --secret BASE32
 *       stdin `FIRST_PORT` -> knocks that user's `portknock/v1` sequence (UDP,
 *       20 ms apart) -> prints `sent EPOCH_MS` (the last knock handed to the kernel)
 *   deno run -A fleet_probe.ts connect --host 198.51.100.1 --port 52201
 *       stdin `locked` -> one connect bounded by 300 ms -> prints `locked` or `open`
 *       stdin `probe MS` -> a new connect every 10 ms (each bounded by 150 ms) until one
 *       completes or MS pass -> prints `open EPOCH_MS` (when it completed) or `timeout`
 *
 * A connect to a locked forward meets a dropped SYN (the kernel would resend
 * it only after 1 s), hence a fresh connect every 10 ms: the first SYN after
 * the unlock reaches the node completes one round trip later.
 */
import dgram from "node:dgram";
import net from "node:net";
import { parseArgs } from "node:util";
import { knockSequenceAt } from "../../src/knock/sequence.ts";

const KNOCK_GAP_MS = 20;
const PROBE_EVERY_MS = 10;
const PROBE_TIMEOUT_MS = 150;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Resolves with the epoch ms the connect completed, or null after `timeoutMs`. */
function connectAt(host: string, port: number, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const done = (v: number | null) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(null), timeoutMs);
    sock.once("connect", () => done(Date.now()));
    sock.once("error", () => done(null));
  });
}

/** Connects every 10 ms until one completes or `ms` pass (at most ms / 10 attempts). */
async function probe(host: string, port: number, ms: number): Promise<number | null> {
  const deadline = Date.now() + ms;
  const attempts: Promise<number | null>[] = [];
  let opened: number | null = null;
  while (opened === null && Date.now() < deadline) {
    attempts.push(connectAt(host, port, PROBE_TIMEOUT_MS).then((t) => opened ??= t));
    await sleep(PROBE_EVERY_MS);
  }
  await Promise.all(attempts);
  return opened;
}

function send(sock: dgram.Socket, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    sock.send(new Uint8Array([0x6b]), port, host, (err) => err ? reject(err) : resolve());
  });
}

async function* lines(): AsyncGenerator<string> {
  let buf = "";
  for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
    }
  }
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      host: { type: "string", default: "198.51.100.1" },
      port: { type: "string", default: "52201" },
      secret: { type: "string", default: "" },
      length: { type: "string", default: "3" },
    },
  });
  const host = values.host, port = Number(values.port);
  const sock = dgram.createSocket("udp4");
  console.log("probe ready");
  for await (const line of lines()) {
    const [cmd, arg] = line.split(/\s+/);
    if (positionals[0] === "knock" && /^\d+$/.test(cmd)) {
      const seq = await knockSequenceAt(
        values.secret,
        Math.floor(Date.now() / 1000),
        Number(cmd),
        Number(values.length),
      );
      for (let j = 0; j < seq.length; j++) {
        if (j > 0) await sleep(KNOCK_GAP_MS);
        await send(sock, host, seq[j]);
      }
      console.log(`sent ${Date.now()}`);
    } else if (cmd === "locked") {
      console.log((await connectAt(host, port, 300)) === null ? "locked" : "open");
    } else if (cmd === "probe") {
      const at = await probe(host, port, Math.min(Number(arg) || 5000, 30_000));
      console.log(at === null ? "timeout" : `open ${at}`);
    } else if (cmd === "quit") {
      break;
    }
  }
  sock.close();
}
