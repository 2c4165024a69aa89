/**
 * The client half of the knock-latency measurement, run inside a lab client
 * namespace. Per sample: check the forwarded port is locked (a connect that
 * must time out), knock the `portknock/v1` sequence with UDP datagrams 20 ms
 * apart, then connect at once. The latency is the time from the moment the
 * last knock was handed to the kernel to the moment the TCP connect to the
 * forwarded port completed: it holds the verifier's unlock and the first
 * SYN's admission plus one SYN/SYN-ACK round trip through the appliance. A
 * SYN dropped as locked would show as >= 1 s (the kernel's SYN retransmit).
 * With `--no-knock` it only times connects (the baseline of an admitted source).
 *
 *   deno run -A scripts/bench/knock_latency.ts --host 198.51.100.1 --port 52201 \
 *       --first-port 41001[,41101...] --secret BASE32 --samples 5 --gap-ms 2200
 *
 * prints one JSON line: a `KnockLatencyResult`.
 */
import dgram from "node:dgram";
import net from "node:net";
import { parseArgs } from "node:util";
import { knockSequenceAt } from "../../src/knock/sequence.ts";

/** One sample. */
export interface KnockLatencySample {
  /** The pre-check connect timed out (the source was locked); null with `--no-knock`. */
  lockedBefore: boolean | null;
  /** Time spent sending the whole sequence, ms. */
  knockMs: number;
  /** Last knock sent to TCP connect completed, ms; null when the connect failed. */
  connectMs: number | null;
}

/** What the probe measured. */
export interface KnockLatencyResult {
  knocked: boolean;
  samples: KnockLatencySample[];
}

const KNOCK_GAP_MS = 20;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Resolves with the connect time in ms, or null after `timeoutMs`. */
function timedConnect(host: string, port: number, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const sock = net.connect({ host, port });
    const done = (v: number | null) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(null), timeoutMs);
    sock.once("connect", () => done(performance.now() - t0));
    sock.once("error", () => done(null));
  });
}

function send(sock: dgram.Socket, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    sock.send(new Uint8Array([0x6b]), port, host, (err) => err ? reject(err) : resolve());
  });
}

/** Knocks and connects `samples` times, `gapMs` apart (the unlock must lapse in between). */
export async function knockLatency(opts: {
  host: string;
  port: number;
  /** First ports of the users to knock as, one per sample in turn (a step is accepted once per user). */
  firstPorts: number[];
  secret: string;
  length: number;
  samples: number;
  gapMs: number;
  knock: boolean;
}): Promise<KnockLatencyResult> {
  const samples: KnockLatencySample[] = [];
  const sock = dgram.createSocket("udp4");
  try {
    // The first connect of the process pays for JIT and socket setup: keep it out.
    if (!opts.knock) await timedConnect(opts.host, opts.port, 3000);
    for (let i = 0; i < opts.samples; i++) {
      if (i > 0) await sleep(opts.gapMs);
      if (!opts.knock) {
        samples.push({
          lockedBefore: null,
          knockMs: 0,
          connectMs: await timedConnect(opts.host, opts.port, 3000),
        });
        continue;
      }
      const lockedBefore = (await timedConnect(opts.host, opts.port, 300)) === null;
      const seq = await knockSequenceAt(
        opts.secret,
        Math.floor(Date.now() / 1000),
        opts.firstPorts[i % opts.firstPorts.length],
        opts.length,
      );
      const k0 = performance.now();
      for (let j = 0; j < seq.length; j++) {
        if (j > 0) await sleep(KNOCK_GAP_MS);
        await send(sock, opts.host, seq[j]);
      }
      const sentAt = performance.now();
      const ok = await timedConnect(opts.host, opts.port, 3000);
      samples.push({
        lockedBefore,
        knockMs: sentAt - k0,
        connectMs: ok === null ? null : performance.now() - sentAt,
      });
    }
  } finally {
    sock.close();
  }
  return { knocked: opts.knock, samples };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      host: { type: "string", default: "198.51.100.1" },
      port: { type: "string", default: "52201" },
      "first-port": { type: "string", default: "41001" },
      secret: { type: "string", default: "" },
      length: { type: "string", default: "3" },
      samples: { type: "string", default: "5" },
      "gap-ms": { type: "string", default: "2200" },
      "no-knock": { type: "boolean", default: false },
    },
  });
  const result = await knockLatency({
    host: values.host,
    port: Number(values.port),
    firstPorts: values["first-port"].split(",").map(Number),
    secret: values.secret,
    length: Number(values.length),
    samples: Number(values.samples),
    gapMs: Number(values["gap-ms"]),
    knock: !values["no-knock"],
  });
  console.log(JSON.stringify(result));
}
