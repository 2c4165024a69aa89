/**
 * Sends one UDP datagram of SIZE bytes (a repeating pattern) to HOST:PORT and
 * waits up to TIMEOUT_MS for one datagram back. Prints a JSON line
 * `{"sent":N,"received":M,"same":bool}`; `received` is -1 on timeout.
 *
 *   deno run -A tests/lab/_udp_echo.ts HOST PORT SIZE TIMEOUT_MS
 */
import dgram from "node:dgram";

const [host, portArg, sizeArg, timeoutArg] = Deno.args;
const size = Number(sizeArg ?? 64), timeoutMs = Number(timeoutArg ?? 3000);
const payload = new Uint8Array(size);
for (let i = 0; i < size; i++) payload[i] = (i * 7 + 3) & 0xff;

const sock = dgram.createSocket("udp4");
const result = await new Promise<{ sent: number; received: number; same: boolean }>((resolve) => {
  const timer = setTimeout(() => resolve({ sent: size, received: -1, same: false }), timeoutMs);
  sock.on("message", (msg: Uint8Array) => {
    clearTimeout(timer);
    const same = msg.length === size && msg.every((b, i) => b === payload[i]);
    resolve({ sent: size, received: msg.length, same });
  });
  sock.send(payload, Number(portArg), host);
});
sock.close();
console.log(JSON.stringify(result));
