/**
 * A small-packet UDP sender: one connected socket, `sendmmsg(2)` in batches
 * through FFI to libc, for a fixed time. iperf3 `-u -l 64` tops out near
 * 85 kpps here (lab notes), so the benchmark floods with this instead.
 *
 *   deno run -A scripts/bench/udp_flood.ts --host 198.51.100.1 --port 52202 \
 *       --seconds 5 --size 64 --batch 64 [--pps 100000] [--start-at MS] [--gso 64]
 *
 * prints one JSON line: a `UdpFloodResult`. `--size` is the UDP payload in
 * bytes (64 gives a 92-byte IP packet, a 106-byte Ethernet frame). `--pps`
 * paces the sender to an offered rate (default: as fast as it can);
 * `--start-at` (ms since the epoch) holds the first send until then, so
 * several senders start together. `--gso N` sends N datagrams per message
 * with the `UDP_SEGMENT` socket option (Linux 4.18; the kernel or the
 * device cuts the buffer), as QUIC stacks do.
 */
import { parseArgs } from "node:util";

/** What one flood sent. */
export interface UdpFloodResult {
  /** UDP payload bytes per datagram. */
  payloadBytes: number;
  /** Messages per sendmmsg call. */
  batch: number;
  /** Datagrams per message (`UDP_SEGMENT`); 1 without. */
  segments: number;
  /** The offered rate it paced to, datagrams a second; 0: unpaced. */
  offeredPps: number;
  /** Datagrams the kernel accepted. */
  sent: number;
  /** sendmmsg calls that failed (ECONNREFUSED from an ICMP error, ENOBUFS). */
  errors: number;
  /** Time spent sending, in seconds. */
  seconds: number;
  /** `sent / seconds`. */
  pps: number;
  /** Wall-clock start and end of the sending, ms since the epoch. */
  startedAt: number;
  endedAt: number;
}

/** Options of `udpFlood`. */
export interface UdpFloodOptions {
  host: string;
  port: number;
  seconds: number;
  /** UDP payload bytes (default 64). */
  size?: number;
  /** Messages per sendmmsg call (default 64, 8 with `segments`). */
  batch?: number;
  /** Datagrams a second to offer (default 0: unpaced). */
  pps?: number;
  /** Wall time (ms since the epoch) of the first send (default: now). */
  startAt?: number;
  /** Datagrams per message with `UDP_SEGMENT` (default 1: plain datagrams). */
  segments?: number;
}

const AF_INET = 2, SOCK_DGRAM = 2, SOL_UDP = 17, UDP_SEGMENT = 103;
/** sizeof(struct msghdr) + msg_len, padded: struct mmsghdr on x86_64 / aarch64. */
const MMSGHDR = 64;
const IOVEC = 16;
/** The largest UDP payload of one message (65535 - 8 - 20). */
const MAX_MESSAGE = 65507;

function openLibc() {
  return Deno.dlopen("libc.so.6", {
    socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
    connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
    setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
    sendmmsg: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
    usleep: { parameters: ["u32"], result: "i32" },
    close: { parameters: ["i32"], result: "i32" },
  });
}

function sockaddrIn(host: string, port: number): Uint8Array<ArrayBuffer> {
  const parts = host.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !(p >= 0 && p <= 255))) {
    throw new Error(`Cannot flood "${host}": not a dotted quad`);
  }
  const sa = new Uint8Array(16);
  const dv = new DataView(sa.buffer);
  dv.setUint16(0, AF_INET, true);
  dv.setUint16(2, port, false); // sin_port is in network order
  sa.set(parts, 4);
  return sa;
}

function ptr(buf: Uint8Array<ArrayBuffer>): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));
}

/** Sends `size`-byte datagrams to host:port for `seconds`; synchronous, blocks the thread. */
export function udpFlood(opts: UdpFloodOptions): UdpFloodResult {
  const size = opts.size ?? 64, segments = opts.segments ?? 1;
  const batch = opts.batch ?? (segments > 1 ? 8 : 64);
  const offered = opts.pps ?? 0;
  if (size * segments > MAX_MESSAGE) {
    throw new Error(`Cannot flood: ${segments} x ${size} B exceeds one UDP message`);
  }
  const libc = openLibc();
  const fd = libc.symbols.socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) throw new Error("Cannot flood: socket() failed");
  try {
    if (libc.symbols.connect(fd, sockaddrIn(opts.host, opts.port), 16) !== 0) {
      throw new Error(`Cannot flood ${opts.host}:${opts.port}: connect() failed`);
    }
    if (segments > 1) {
      const gso = new Uint8Array(4);
      new DataView(gso.buffer).setInt32(0, size, true);
      if (libc.symbols.setsockopt(fd, SOL_UDP, UDP_SEGMENT, gso, 4) !== 0) {
        throw new Error("Cannot flood: setsockopt(UDP_SEGMENT) failed (kernel < 4.18?)");
      }
    }
    const message = size * segments;
    const payload = new Uint8Array(message).fill(0x6b);
    const iovs = new Uint8Array(IOVEC * batch);
    const msgs = new Uint8Array(MMSGHDR * batch);
    const iv = new DataView(iovs.buffer), mv = new DataView(msgs.buffer);
    const base = ptr(iovs);
    for (let i = 0; i < batch; i++) {
      iv.setBigUint64(i * IOVEC, ptr(payload), true);
      iv.setBigUint64(i * IOVEC + 8, BigInt(message), true);
      // msghdr: name NULL (connected), iov at +16, iovlen at +24; the rest stays zero.
      mv.setBigUint64(i * MMSGHDR + 16, base + BigInt(i * IOVEC), true);
      mv.setBigUint64(i * MMSGHDR + 24, 1n, true);
    }
    const wait = (opts.startAt ?? 0) - Date.now();
    if (wait > 0) libc.symbols.usleep(Math.round(Math.min(wait, 30_000) * 1000));
    let sent = 0, errors = 0;
    const startedAt = Date.now(), t0 = performance.now();
    const end = t0 + opts.seconds * 1000;
    const msPerDatagram = offered > 0 ? 1000 / offered : 0;
    let now = t0;
    while (now < end) {
      const n = libc.symbols.sendmmsg(fd, msgs, batch, 0);
      if (n > 0) sent += n * segments;
      else errors++;
      now = performance.now();
      if (msPerDatagram > 0) {
        // Paced: sleep while ahead of the offered rate's schedule.
        const ahead = t0 + sent * msPerDatagram - now;
        if (ahead > 0.05) {
          libc.symbols.usleep(Math.max(0, Math.round(Math.min(ahead, end - now) * 1000)));
          now = performance.now();
        }
      }
    }
    const seconds = (now - t0) / 1000;
    return {
      payloadBytes: size,
      batch,
      segments,
      offeredPps: offered,
      sent,
      errors,
      seconds,
      pps: Math.round(sent / seconds),
      startedAt,
      endedAt: Date.now(),
    };
  } finally {
    libc.symbols.close(fd);
    libc.close();
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      host: { type: "string", default: "198.51.100.1" },
      port: { type: "string", default: "52202" },
      seconds: { type: "string", default: "5" },
      size: { type: "string", default: "64" },
      batch: { type: "string" },
      pps: { type: "string", default: "0" },
      "start-at": { type: "string", default: "0" },
      gso: { type: "string", default: "1" },
    },
  });
  const result = udpFlood({
    host: values.host,
    port: Number(values.port),
    seconds: Number(values.seconds),
    size: Number(values.size),
    batch: values.batch === undefined ? undefined : Number(values.batch),
    pps: Number(values.pps),
    startAt: Number(values["start-at"]),
    segments: Number(values.gso),
  });
  console.log(JSON.stringify(result));
}
