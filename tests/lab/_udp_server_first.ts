/**
 * A UDP flow whose server speaks first once it has heard its client, for
 * restart tests of a forward's UDP (the client only ever answers, so after
 * the appliance restarts the server's datagram is the first to cross).
 *
 *   deno run -A tests/lab/_udp_server_first.ts serve HOST PORT INTERVAL_MS
 *     binds HOST:PORT and prints `listening`; on the first datagram prints
 *     `client ADDR:PORT` and from then on sends that client a 4-byte
 *     sequence number every INTERVAL_MS, printing `echoed N` each time one
 *     of them comes back from that client (N echoes so far).
 *   deno run -A tests/lab/_udp_server_first.ts answer HOST PORT
 *     connects a socket to HOST:PORT (the kernel then takes datagrams from
 *     that address and port only), sends `hello` every 200 ms until the
 *     first datagram arrives (printing `heard`), and from then on sends
 *     every datagram back.
 *
 * Both run until interrupted (the caller's timeout bounds them).
 */
import dgram from "node:dgram";

const [mode, host, port, intervalArg] = Deno.args;
const sock = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
// ICMP errors (the peer not yet listening, the appliance down) reach a connected socket: ignore.
sock.on("error", () => {});

if (mode === "serve") {
  let client: { address: string; port: number } | null = null;
  let sent = 0, echoed = 0;
  sock.on("message", (msg: Uint8Array, from: dgram.RemoteInfo) => {
    if (client === null) {
      client = { address: from.address, port: from.port };
      console.log(`client ${from.address}:${from.port}`);
      setInterval(() => {
        const seq = new Uint8Array(4);
        new DataView(seq.buffer).setUint32(0, sent++);
        sock.send(seq, client!.port, client!.address);
      }, Number(intervalArg));
      return;
    }
    if (from.address !== client.address || from.port !== client.port || msg.length !== 4) return;
    console.log(`echoed ${++echoed}`);
  });
  await new Promise<void>((r) => sock.bind(Number(port), host, r));
  console.log("listening");
} else {
  let heard = false;
  sock.on("message", (msg: Uint8Array) => {
    if (!heard) console.log("heard");
    heard = true;
    sock.send(msg);
  });
  await new Promise<void>((r) => sock.connect(Number(port), host, r));
  const hello = new TextEncoder().encode("hello");
  const timer = setInterval(() => heard ? clearInterval(timer) : sock.send(hello), 200);
}
