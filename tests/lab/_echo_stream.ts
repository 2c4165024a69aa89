/**
 * A TCP echo for restart tests, carrying a counter stream whose every byte is
 * checked in order.
 *
 *   deno run -A tests/lab/_echo_stream.ts serve HOST PORT
 *     echoes every connection; prints `listening`, then `accepted ADDR:PORT`
 *     (the peer as this server sees it) for each connection.
 *   deno run -A tests/lab/_echo_stream.ts connect HOST PORT [LOCAL_PORT]
 *     connects once (from LOCAL_PORT when given) and prints `connected
 *     LOCAL_PORT`; for each line N on stdin it sends
 *     the next N counters (32-bit big-endian words: 0, 1, 2, ...) without
 *     waiting, and prints `echoed TOTAL` each time every counter sent so far
 *     has come back in order, or `broken WHY` and exits. Each line waits at
 *     most 90 s for its echo (TCP retransmits across a restart's gap).
 */
import net from "node:net";
import { Duplex } from "node:stream";

const [mode, host, port, localPort] = Deno.args;

/** A connection's byte streams, from a fixed local port (node:net binds one; Deno.connect cannot). */
async function open(): Promise<
  { readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array>; local: number }
> {
  if (localPort === undefined) {
    const conn = await Deno.connect({ hostname: host, port: Number(port) });
    conn.setNoDelay(true);
    return { readable: conn.readable, writable: conn.writable, local: conn.localAddr.port };
  }
  const sock = net.connect({ host, port: Number(port), localPort: Number(localPort) });
  await new Promise<void>((resolve, reject) => {
    sock.once("connect", resolve);
    sock.once("error", reject);
  });
  sock.setNoDelay(true);
  const { readable, writable } = Duplex.toWeb(sock);
  return {
    readable: readable as ReadableStream<Uint8Array>,
    writable: writable as WritableStream<Uint8Array>,
    local: sock.localPort!,
  };
}

if (mode === "serve") {
  const listener = Deno.listen({ hostname: host, port: Number(port) });
  console.log("listening");
  for await (const conn of listener) {
    const peer = conn.remoteAddr as Deno.NetAddr;
    console.log(`accepted ${peer.hostname}:${peer.port}`);
    conn.readable.pipeTo(conn.writable).catch(() => {});
  }
} else {
  const conn = await open();
  const reader = conn.readable.getReader(), writer = conn.writable.getWriter();
  console.log(`connected ${conn.local}`);
  let sent = 0, received = 0, want = 0;
  const wake: { fn: (() => void) | null } = { fn: null };
  const fail = (why: string): never => {
    console.log(`broken ${why}`);
    Deno.exit(1);
  };
  // Reads and checks the echo, word by word, whatever the segment boundaries.
  (async () => {
    const word = new Uint8Array(4);
    let have = 0;
    while (true) {
      const r = await reader.read().catch((e) => fail((e as Error).message));
      if (r.done) fail(`closed after ${received} counters`);
      const buf = r.value!;
      for (let i = 0; i < buf.length; i++) {
        word[have++] = buf[i];
        if (have < 4) continue;
        have = 0;
        const v = new DataView(word.buffer).getUint32(0);
        if (v !== received) fail(`counter ${v} where ${received} was due`);
        received++;
      }
      if (received >= want) wake.fn?.();
    }
  })();
  const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
  let pending = "";
  for await (const chunk of lines) {
    pending += chunk;
    let nl;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const count = Number(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
      const out = new Uint8Array(4 * count);
      const v = new DataView(out.buffer);
      for (let i = 0; i < count; i++) v.setUint32(4 * i, sent + i);
      sent += count;
      want = sent;
      await writer.write(out).catch((e) => fail((e as Error).message));
      if (received < want) {
        const timer = setTimeout(() => fail(`${received} of ${want} echoed within 90 s`), 90_000);
        await new Promise<void>((r) => wake.fn = r);
        clearTimeout(timer);
        wake.fn = null;
      }
      console.log(`echoed ${received}`);
    }
  }
  await writer.close().catch(() => {});
}
