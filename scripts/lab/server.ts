/**
 * The lab's LAN server: HTTP on 8080-8089 (answers with its address and port)
 * and a UDP echo on port 7, on the IPv4 or IPv6 address it is given. iperf3
 * runs beside it.
 */
import dgram from "node:dgram";

const host = Deno.args[0] ?? "192.0.2.12";
for (let port = 8080; port <= 8089; port++) {
  Deno.serve({ hostname: host, port, onListen: () => {} }, (req, info) => {
    const peer = (info.remoteAddr as Deno.NetAddr).hostname;
    const size = Number(new URL(req.url).searchParams.get("bytes") ?? 0);
    if (size > 0) return new Response(new Uint8Array(Math.min(size, 1 << 30)));
    return new Response(`hello from ${host}:${port} to ${peer}\n`);
  });
}
const echo = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
echo.on("message", (msg, rinfo) => echo.send(msg, rinfo.port, rinfo.address));
echo.bind(7, host);
console.log(`lab server up on ${host}: http 8080-8089, udp echo 7`);
