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
import { formatIpv4, parseIpv4 } from "../../src/packet/address.ts";
import { ipv4, tcpSegment } from "./_helpers.ts";
import { openLinkSender } from "./_link_sender.ts";

interface Spec {
  dst: string;
  sources: { first: string; count: number };
  ports: number[];
  repeat?: number;
  pps?: number;
}

const MAX_PACKETS = 2_000_000;

const [iface, mac, specJson] = Deno.args;
if (!iface || !mac || !specJson) {
  console.error("Usage: _spoof_flood.ts IFACE DST_MAC SPEC_JSON");
  Deno.exit(2);
}
const spec = JSON.parse(specJson) as Spec;
const total = spec.sources.count * spec.ports.length * (spec.repeat ?? 1);
if (!(total > 0 && total <= MAX_PACKETS)) throw new Error(`Cannot send ${total} packets`);
const link = openLinkSender(iface, mac);

const pps = spec.pps ?? 20_000;
const first = parseIpv4(spec.sources.first)!;
const start = performance.now();
let sent = 0, errors = 0;
for (let r = 0; r < (spec.repeat ?? 1); r++) {
  for (let i = 0; i < spec.sources.count; i++) {
    const src = formatIpv4((first + i) >>> 0);
    for (const port of spec.ports) {
      const sport = 1024 + (sent % 60000);
      const p = ipv4({
        src,
        dst: spec.dst,
        proto: 6,
        payload: tcpSegment(src, sport, spec.dst, port),
      });
      if (link.send(p)) sent++;
      else errors++;
      // Pace to `pps`: sleep whenever ahead of schedule.
      const ahead = (sent * 1000) / pps - (performance.now() - start);
      if (ahead > 1) await new Promise((res) => setTimeout(res, ahead));
    }
  }
}
link.close();
const seconds = (performance.now() - start) / 1000;
console.log(JSON.stringify({ sent, errors, sources: spec.sources.count, seconds }));
