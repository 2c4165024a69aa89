/**
 * A knock-failure flood from spoofed sources: for each source of
 * 198.18.0.0/15 in turn, a TCP SYN to the first knock port and then one to a
 * port of no sequence (a wrong knock), sent byte for byte through an
 * AF_PACKET socket so the kernel keeps the forged source. Run inside a lab
 * namespace:
 *
 *   deno run -A tests/lab/_spoof_flood.ts IFACE DST_MAC DST_IP FIRST_PORT WRONG_PORT PACKETS PPS
 *
 * Sends PACKETS packets (PACKETS / 2 sources) at about PPS packets a second
 * and prints one JSON line: `{"sent":N,"errors":N,"sources":N,"seconds":S}`.
 */

const ETH_P_IP = 0x0800;
const AF_PACKET = 17;
const SOCK_DGRAM = 2;
/** The benchmarking range (RFC 2544), 2^17 addresses from 198.18.0.0. */
const SPOOF_BASE = (198 << 24) | (18 << 16);
const SPOOF_SIZE = 1 << 17;

const libc = Deno.dlopen("libc.so.6", {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  if_nametoindex: { parameters: ["buffer"], result: "u32" },
  sendto: {
    parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"],
    result: "isize",
  },
  close: { parameters: ["i32"], result: "i32" },
});

function parseMac(mac: string): Uint8Array {
  const parts = mac.split(":").map((p) => parseInt(p, 16));
  if (parts.length !== 6 || parts.some((p) => !(p >= 0 && p <= 255))) {
    throw new Error(`Cannot parse MAC address "${mac}"`);
  }
  return new Uint8Array(parts);
}

function sockaddrLl(ifindex: number, mac: Uint8Array): Uint8Array {
  const sa = new Uint8Array(20);
  const v = new DataView(sa.buffer);
  v.setUint16(0, AF_PACKET, true);
  v.setUint16(2, ETH_P_IP, false);
  v.setInt32(4, ifindex, true);
  sa[11] = 6;
  sa.set(mac, 12);
  return sa;
}

/** Folds a 32-bit one's-complement sum to 16 bits and inverts it (RFC 1071). */
function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function sum16(b: Uint8Array, from: number, to: number, initial = 0): number {
  let s = initial;
  for (let i = from; i < to; i += 2) s += (b[i] << 8) | b[i + 1];
  return s;
}

/** Writes a 40-byte IPv4 + TCP SYN from `src` into `p`, checksums included. */
function writeSyn(
  p: Uint8Array,
  v: DataView,
  src: number,
  dst: number,
  sport: number,
  dport: number,
) {
  p.fill(0);
  p[0] = 0x45;
  v.setUint16(2, 40);
  v.setUint16(4, sport); // ident
  p[8] = 64;
  p[9] = 6;
  v.setUint32(12, src >>> 0);
  v.setUint32(16, dst >>> 0);
  v.setUint16(10, fold(sum16(p, 0, 20)));
  v.setUint16(20, sport);
  v.setUint16(22, dport);
  v.setUint32(24, (src ^ 0x5a5a5a5a) >>> 0);
  p[32] = 5 << 4;
  p[33] = 0x02; // SYN
  v.setUint16(34, 64240);
  const pseudo = sum16(p, 12, 20) + 6 + 20;
  v.setUint16(36, fold(sum16(p, 20, 40, pseudo)));
}

const [iface, mac, dstIp, first, wrong, packetsArg, ppsArg] = Deno.args;
if (!ppsArg) {
  console.error("Usage: _spoof_flood.ts IFACE DST_MAC DST_IP FIRST_PORT WRONG_PORT PACKETS PPS");
  Deno.exit(2);
}
const packets = Number(packetsArg), pps = Number(ppsArg);
const dst = dstIp.split(".").reduce((a, o) => (a << 8) | Number(o), 0);
const ifindex = libc.symbols.if_nametoindex(new TextEncoder().encode(iface + "\0"));
if (ifindex === 0) throw new Error(`Cannot find interface "${iface}"`);
const fd = libc.symbols.socket(AF_PACKET, SOCK_DGRAM, ((ETH_P_IP & 0xff) << 8) | (ETH_P_IP >> 8));
if (fd < 0) throw new Error("Cannot open an AF_PACKET socket");
const sa = sockaddrLl(ifindex, parseMac(mac));
const p = new Uint8Array(40);
const v = new DataView(p.buffer);
const start = performance.now();
let sent = 0, errors = 0;
const sources = Math.ceil(packets / 2);
for (let i = 0; i < packets; i++) {
  const src = SPOOF_BASE + ((i >> 1) % SPOOF_SIZE);
  const sport = 10000 + ((i >> 1) % 50000);
  writeSyn(p, v, src, dst, sport, i % 2 === 0 ? Number(first) : Number(wrong));
  const n = libc.symbols.sendto(fd, p, 40n, 0, sa, sa.length);
  if (Number(n) === 40) sent++;
  else errors++;
  // Paced in slices of 1000: ahead of schedule, wait.
  if (i % 1000 === 999) {
    const ahead = (i + 1) / pps * 1000 - (performance.now() - start);
    if (ahead > 0) await new Promise((r) => setTimeout(r, ahead));
  }
}
libc.symbols.close(fd);
const seconds = (performance.now() - start) / 1000;
console.log(JSON.stringify({ sent, errors, sources: Math.min(sources, SPOOF_SIZE), seconds }));
