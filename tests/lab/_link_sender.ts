/**
 * An AF_PACKET datagram socket that hands IPv4 packets to the link layer
 * byte for byte (a raw IP socket would recompute the header checksum and
 * total length, and the kernel would refuse a forged source). For the lab's
 * packet senders, run inside a lab namespace.
 */

/** ethertype of IPv4 (host order; network order in sockaddr_ll). */
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

/** Sends whole IPv4 packets out of one interface to one MAC address. */
export interface LinkSender {
  /** True when the kernel took all of `packet`. */
  send(packet: Uint8Array): boolean;
  close(): void;
}

/** Parses "aa:bb:cc:dd:ee:ff" into six bytes. */
function parseMac(mac: string): Uint8Array {
  const parts = mac.split(":").map((p) => parseInt(p, 16));
  if (parts.length !== 6 || parts.some((p) => !(p >= 0 && p <= 255))) {
    throw new Error(`Cannot parse MAC address "${mac}"`);
  }
  return new Uint8Array(parts);
}

/** Opens a sender on `iface` toward `mac`; throws naming what is missing. */
export function openLinkSender(iface: string, mac: string): LinkSender {
  const ifindex = libc.symbols.if_nametoindex(new TextEncoder().encode(iface + "\0"));
  if (ifindex === 0) throw new Error(`Cannot find interface "${iface}"`);
  const fd = libc.symbols.socket(AF_PACKET, SOCK_DGRAM, ((ETH_P_IP & 0xff) << 8) | (ETH_P_IP >> 8));
  if (fd < 0) throw new Error("Cannot open an AF_PACKET socket");
  // struct sockaddr_ll
  const sa = new Uint8Array(20);
  const v = new DataView(sa.buffer);
  v.setUint16(0, AF_PACKET, true);
  v.setUint16(2, ETH_P_IP, false); // sll_protocol is in network order
  v.setInt32(4, ifindex, true);
  sa[11] = 6; // sll_halen
  sa.set(parseMac(mac), 12);
  return {
    send: (p) =>
      Number(libc.symbols.sendto(fd, p, BigInt(p.length), 0, sa, sa.length)) === p.length,
    close: () => void libc.symbols.close(fd),
  };
}
