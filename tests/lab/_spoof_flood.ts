/**
 * Sends TCP SYNs with chosen (spoofed) source addresses, fast: an AF_PACKET
 * datagram socket hands hand-built IPv4 packets to the link layer. Run inside
 * a lab namespace:
 *
 *   deno run -A tests/lab/_spoof_flood.ts IFACE DST_MAC SPEC_JSON
 *
 * SPEC: `{ dst, sources: { first, count }, ports, repeat?, pps? }`: for each
 * of `count` consecutive source addresses from `first` (`repeat` times over),
 * one SYN to each of `ports` in order; at most `pps` packets a second
 * (default 20,000). Bounded: at most 2,000,000 packets. Prints one JSON line:
 * `{"sent":N,"errors":N,"sources":N,"seconds":S}`.
 */
import { ipv4, tcpSegment } from "./_helpers.ts";

interface Spec {
  dst: string;
  sources: { first: string; count: number };
  ports: number[];
  repeat?: number;
  pps?: number;
}

const ETH_P_IP = 0x0800;
const AF_PACKET = 17;
const SOCK_DGRAM = 2;
const MAX_PACKETS = 2_000_000;

const libc = Deno.dlopen("libc.so.6", {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  if_nametoindex: { parameters: ["buffer"], result: "u32" },
  sendto: {
    parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"],
    result: "isize",
  },
  close: { parameters: ["i32"], result: "i32" },
});

function ipToInt(s: string): number {
  return s.split(".").reduce((a, o) => ((a << 8) | Number(o)) >>> 0, 0);
}

function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

const [iface, mac, specJson] = Deno.args;
if (!iface || !mac || !specJson) {
  console.error("Usage: _spoof_flood.ts IFACE DST_MAC SPEC_JSON");
  Deno.exit(2);
}
const spec = JSON.parse(specJson) as Spec;
const total = spec.sources.count * spec.ports.length * (spec.repeat ?? 1);
if (!(total > 0 && total <= MAX_PACKETS)) throw new Error(`Cannot send ${total} packets`);
const ifindex = libc.symbols.if_nametoindex(new TextEncoder().encode(iface + "\0"));
if (ifindex === 0) throw new Error(`Cannot find interface "${iface}"`);
const fd = libc.symbols.socket(AF_PACKET, SOCK_DGRAM, ((ETH_P_IP & 0xff) << 8) | (ETH_P_IP >> 8));
if (fd < 0) throw new Error("Cannot open an AF_PACKET socket");
const sa = new Uint8Array(20);
const sv = new DataView(sa.buffer);
sv.setUint16(0, AF_PACKET, true);
sv.setUint16(2, ETH_P_IP, false);
sv.setInt32(4, ifindex, true);
sa[11] = 6;
sa.set(mac.split(":").map((p) => parseInt(p, 16)), 12);

const pps = spec.pps ?? 20_000;
const first = ipToInt(spec.sources.first);
const start = performance.now();
let sent = 0, errors = 0;
for (let r = 0; r < (spec.repeat ?? 1); r++) {
  for (let i = 0; i < spec.sources.count; i++) {
    const src = intToIp((first + i) >>> 0);
    for (const port of spec.ports) {
      const sport = 1024 + (sent % 60000);
      const p = ipv4({
        src,
        dst: spec.dst,
        proto: 6,
        payload: tcpSegment(src, sport, spec.dst, port),
      });
      const n = libc.symbols.sendto(fd, p, BigInt(p.length), 0, sa, sa.length);
      if (Number(n) === p.length) sent++;
      else errors++;
      // Pace to `pps`: sleep whenever ahead of schedule.
      const ahead = (sent * 1000) / pps - (performance.now() - start);
      if (ahead > 1) await new Promise((res) => setTimeout(res, ahead));
    }
  }
}
libc.symbols.close(fd);
const seconds = (performance.now() - start) / 1000;
console.log(JSON.stringify({ sent, errors, sources: spec.sources.count, seconds }));
