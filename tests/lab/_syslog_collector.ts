/**
 * A syslog collector for the lab: receives UDP datagrams on HOST:PORT and
 * appends each as one line to FILE (newlines inside a message become spaces).
 *
 *   deno run -A tests/lab/_syslog_collector.ts HOST PORT FILE
 */
import dgram from "node:dgram";

const [host, port, file] = Deno.args;
const sock = dgram.createSocket("udp4");
sock.on("message", (msg: Uint8Array) => {
  const line = new TextDecoder().decode(msg).replace(/[\r\n]+/g, " ");
  Deno.writeTextFileSync(file, line + "\n", { append: true });
});
sock.bind(Number(port), host, () => console.log(`listening ${host}:${port}`));
