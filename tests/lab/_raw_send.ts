/**
 * Sends IPv4 packets byte for byte, as given: an AF_PACKET datagram socket
 * hands them to the link layer with no IP-layer fix-ups (a raw IP socket
 * would recompute the header checksum and total length). Run inside a lab
 * namespace:
 *
 *   deno run -A tests/lab/_raw_send.ts IFACE DST_MAC HEX_PACKET...
 *
 * Prints the number of packets sent; exits 1 on any error.
 */

import { openLinkSender } from "./_link_sender.ts";

function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const [iface, mac, ...packets] = Deno.args;
if (!iface || !mac || packets.length === 0) {
  console.error("Usage: _raw_send.ts IFACE DST_MAC HEX_PACKET...");
  Deno.exit(2);
}
const link = openLinkSender(iface, mac);
let sent = 0;
for (const hex of packets) {
  const p = hexBytes(hex);
  if (!link.send(p)) throw new Error(`Cannot send packet ${sent + 1} (${p.length} bytes)`);
  sent++;
  // A short pause keeps the packets in order and out of one burst.
  await new Promise((r) => setTimeout(r, 5));
}
link.close();
console.log(sent);
