/**
 * A paced SYN flood from spoofed sources, for the RTT-under-flood benchmark:
 * an AF_PACKET datagram socket (the kernel takes forged sources from it and
 * leaves every byte alone) and `sendmmsg(2)` over a pool of prebuilt SYNs,
 * one source address each, counted up from `--first-source`.
 *
 *   deno run -A scripts/bench/syn_flood.ts --iface eth0 --mac AA:BB:.. \
 *       --dst 198.51.100.1 --port 52201 --pps 200000 --seconds 5 \
 *       [--first-source 198.18.0.0] [--sources 16384] [--start-at MS]
 *
 * prints one JSON line: a `SynFloodResult`. Bounded in time (at most 60 s).
 */
import { parseArgs } from "node:util";
import { buildTcp } from "../../src/packet/build.ts";
import { formatIpv4, parseIpv4 } from "../../src/packet/address.ts";
import { TCP_SYN } from "../../src/packet/tcp.ts";

/** What one flood sent. */
export interface SynFloodResult {
  offeredPps: number;
  sent: number;
  errors: number;
  sources: number;
  seconds: number;
  /** `sent / seconds`: the achieved rate. */
  pps: number;
  startedAt: number;
  endedAt: number;
}

/** Options of `synFlood`. */
export interface SynFloodOptions {
  iface: string;
  /** The next hop's MAC address (the appliance's WAN port). */
  mac: string;
  dst: string;
  port: number;
  pps: number;
  seconds: number;
  /** First spoofed source (default 198.18.0.0, the benchmarking range). */
  firstSource?: string;
  /** Distinct sources, one packet each in the pool (default 16384, a multiple of 64). */
  sources?: number;
  /** Wall time (ms since the epoch) of the first send. */
  startAt?: number;
}

const AF_PACKET = 17, SOCK_DGRAM = 2, ETH_P_IP = 0x0800;
const MMSGHDR = 64, IOVEC = 16, SOCKADDR_LL = 20, BATCH = 64, MAX_SECONDS = 60;

function openLibc() {
  return Deno.dlopen("libc.so.6", {
    socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
    if_nametoindex: { parameters: ["buffer"], result: "u32" },
    sendmmsg: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
    usleep: { parameters: ["u32"], result: "i32" },
    close: { parameters: ["i32"], result: "i32" },
  });
}

function ptr(buf: Uint8Array<ArrayBuffer>): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));
}

function parseMac(mac: string): number[] {
  const parts = mac.split(":").map((p) => parseInt(p, 16));
  if (parts.length !== 6 || parts.some((p) => !(p >= 0 && p <= 255))) {
    throw new Error(`Cannot parse MAC address "${mac}"`);
  }
  return parts;
}

/** Floods SYNs per `o`; synchronous, blocks the thread. */
export function synFlood(o: SynFloodOptions): SynFloodResult {
  const sources = Math.ceil((o.sources ?? 16384) / BATCH) * BATCH;
  const first = parseIpv4(o.firstSource ?? "198.18.0.0");
  if (first === null) throw new Error(`Cannot flood from "${o.firstSource}"`);
  const seconds = Math.min(o.seconds, MAX_SECONDS);
  const libc = openLibc();
  const ifindex = libc.symbols.if_nametoindex(new TextEncoder().encode(o.iface + "\0"));
  if (ifindex === 0) throw new Error(`Cannot find interface "${o.iface}"`);
  const fd = libc.symbols.socket(AF_PACKET, SOCK_DGRAM, ((ETH_P_IP & 0xff) << 8) | (ETH_P_IP >> 8));
  if (fd < 0) throw new Error("Cannot open an AF_PACKET socket");
  try {
    const sa = new Uint8Array(SOCKADDR_LL);
    const sv = new DataView(sa.buffer);
    sv.setUint16(0, AF_PACKET, true);
    sv.setUint16(2, ETH_P_IP, false); // sll_protocol is in network order
    sv.setInt32(4, ifindex, true);
    sa[11] = 6; // sll_halen
    sa.set(parseMac(o.mac), 12);
    // The pool: every SYN, its iovec and its msghdr, built once.
    const packets = Array.from({ length: sources }, (_, i) =>
      buildTcp({
        src: formatIpv4((first + i) >>> 0),
        dst: o.dst,
        srcPort: 1024 + (i * 7919) % 60000,
        dstPort: o.port,
        flags: TCP_SYN,
        seq: (i * 2654435761) >>> 0,
        ident: i & 0xffff,
      }) as Uint8Array<ArrayBuffer>);
    const iovs = new Uint8Array(IOVEC * sources);
    const msgs = new Uint8Array(MMSGHDR * sources);
    const iv = new DataView(iovs.buffer), mv = new DataView(msgs.buffer);
    const iovBase = ptr(iovs), saPtr = ptr(sa);
    for (let i = 0; i < sources; i++) {
      iv.setBigUint64(i * IOVEC, ptr(packets[i]), true);
      iv.setBigUint64(i * IOVEC + 8, BigInt(packets[i].length), true);
      // msghdr: name at +0, namelen at +8, iov at +16, iovlen at +24.
      mv.setBigUint64(i * MMSGHDR, saPtr, true);
      mv.setUint32(i * MMSGHDR + 8, SOCKADDR_LL, true);
      mv.setBigUint64(i * MMSGHDR + 16, iovBase + BigInt(i * IOVEC), true);
      mv.setBigUint64(i * MMSGHDR + 24, 1n, true);
    }
    const batches = Array.from(
      { length: sources / BATCH },
      (_, b) => msgs.subarray(b * BATCH * MMSGHDR, (b + 1) * BATCH * MMSGHDR),
    );
    const wait = (o.startAt ?? 0) - Date.now();
    if (wait > 0) libc.symbols.usleep(Math.round(Math.min(wait, 30_000) * 1000));
    let sent = 0, errors = 0, b = 0;
    const startedAt = Date.now(), t0 = performance.now();
    const end = t0 + seconds * 1000, msPerPacket = 1000 / o.pps;
    let now = t0;
    while (now < end) {
      const n = libc.symbols.sendmmsg(fd, batches[b], BATCH, 0);
      if (n > 0) sent += n;
      else errors++;
      b = b + 1 === batches.length ? 0 : b + 1;
      now = performance.now();
      const ahead = t0 + sent * msPerPacket - now;
      if (ahead > 0.05) {
        libc.symbols.usleep(Math.max(0, Math.round(Math.min(ahead, end - now) * 1000)));
        now = performance.now();
      }
    }
    const s = (now - t0) / 1000;
    return {
      offeredPps: o.pps,
      sent,
      errors,
      sources,
      seconds: s,
      pps: Math.round(sent / s),
      startedAt,
      endedAt: Date.now(),
    };
  } finally {
    libc.symbols.close(fd);
    libc.close();
  }
}

if (import.meta.main) {
  const { values: v } = parseArgs({
    args: Deno.args,
    options: {
      iface: { type: "string", default: "eth0" },
      mac: { type: "string" },
      dst: { type: "string", default: "198.51.100.1" },
      port: { type: "string", default: "52201" },
      pps: { type: "string", default: "200000" },
      seconds: { type: "string", default: "5" },
      "first-source": { type: "string", default: "198.18.0.0" },
      sources: { type: "string", default: "16384" },
      "start-at": { type: "string", default: "0" },
    },
  });
  if (!v.mac) throw new Error("Cannot flood: --mac of the next hop is required");
  console.log(JSON.stringify(synFlood({
    iface: v.iface,
    mac: v.mac,
    dst: v.dst,
    port: Number(v.port),
    pps: Number(v.pps),
    seconds: Number(v.seconds),
    firstSource: v["first-source"],
    sources: Number(v.sources),
    startAt: Number(v["start-at"]),
  })));
}
