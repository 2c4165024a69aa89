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

/** ethertype of IPv4 (host order; htons'd into sockaddr_ll). */
const ETH_P_IP = 0x0800;
const AF_PACKET = 17;
const SOCK_DGRAM = 2;

const libc = Deno.dlopen("libc.so.6", {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  if_nametoindex: { parameters: ["buffer"], result: "u32" },
  sendto: {
    parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"],
    result: "isize",
  },
  close: { parameters: ["i32"], result: "i32" },
});

function htons(v: number): number {
  return ((v & 0xff) << 8) | (v >> 8);
}

/** Parses "aa:bb:cc:dd:ee:ff" into six bytes. */
function parseMac(mac: string): Uint8Array {
  const parts = mac.split(":").map((p) => parseInt(p, 16));
  if (parts.length !== 6 || parts.some((p) => !(p >= 0 && p <= 255))) {
    throw new Error(`Cannot parse MAC address "${mac}"`);
  }
  return new Uint8Array(parts);
}

function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** struct sockaddr_ll for `ifindex`, addressed to `mac`. */
function sockaddrLl(ifindex: number, mac: Uint8Array): Uint8Array {
  const sa = new Uint8Array(20);
  const v = new DataView(sa.buffer);
  v.setUint16(0, AF_PACKET, true);
  v.setUint16(2, ETH_P_IP, false); // sll_protocol is in network order
  v.setInt32(4, ifindex, true);
  sa[11] = 6; // sll_halen
  sa.set(mac, 12);
  return sa;
}

const [iface, mac, ...packets] = Deno.args;
if (!iface || !mac || packets.length === 0) {
  console.error("Usage: _raw_send.ts IFACE DST_MAC HEX_PACKET...");
  Deno.exit(2);
}
const ifindex = libc.symbols.if_nametoindex(new TextEncoder().encode(iface + "\0"));
if (ifindex === 0) throw new Error(`Cannot find interface "${iface}"`);
const fd = libc.symbols.socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_IP));
if (fd < 0) throw new Error("Cannot open an AF_PACKET socket");
const sa = sockaddrLl(ifindex, parseMac(mac));
let sent = 0;
for (const hex of packets) {
  const p = hexBytes(hex);
  const n = libc.symbols.sendto(fd, p, BigInt(p.length), 0, sa, sa.length);
  if (Number(n) !== p.length) throw new Error(`sendto sent ${n} of ${p.length} bytes`);
  sent++;
  // A short pause keeps the packets in order and out of one burst.
  await new Promise((r) => setTimeout(r, 5));
}
libc.symbols.close(fd);
console.log(sent);
