/**
 * Binds UDP sockets on PORT... (all addresses), echoes every datagram back to
 * its sender and prints one line per datagram: `got PORT FROM_ADDR:FROM_PORT`.
 * Prints `listening` once every socket is bound; runs until interrupted.
 *
 *   deno run -A tests/lab/_udp_listen.ts PORT...
 */
import dgram from "node:dgram";

let bound = 0;
for (const arg of Deno.args) {
  const port = Number(arg);
  const sock = dgram.createSocket("udp4");
  sock.on("message", (msg: Uint8Array, r: { address: string; port: number }) => {
    console.log(`got ${port} ${r.address}:${r.port}`);
    sock.send(msg, r.port, r.address);
  });
  sock.bind(port, () => {
    if (++bound === Deno.args.length) console.log("listening");
  });
}
