/**
 * A small-packet UDP sender: one connected socket, `sendmmsg(2)` in batches
 * through FFI to libc, for a fixed time. iperf3 `-u -l 64` tops out near
 * 85 kpps here (lab notes), so the benchmark floods with this instead.
 *
 *   deno run -A scripts/bench/udp_flood.ts --host 198.51.100.1 --port 52202 \
 *       --seconds 5 --size 64 --batch 64
 *
 * prints one JSON line: a `UdpFloodResult`. `--size` is the UDP payload in
 * bytes (64 gives a 92-byte IP packet, a 106-byte Ethernet frame).
 */
import { parseArgs } from "node:util";

/** What one flood sent. */
export interface UdpFloodResult {
  /** UDP payload bytes per datagram. */
  payloadBytes: number;
  batch: number;
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
  /** Datagrams per sendmmsg call (default 64). */
  batch?: number;
}

const AF_INET = 2, SOCK_DGRAM = 2;
/** sizeof(struct msghdr) + msg_len, padded: struct mmsghdr on x86_64 / aarch64. */
const MMSGHDR = 64;
const IOVEC = 16;

function openLibc() {
  return Deno.dlopen("libc.so.6", {
    socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
    connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
    sendmmsg: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
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
  const size = opts.size ?? 64, batch = opts.batch ?? 64;
  const libc = openLibc();
  const fd = libc.symbols.socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) throw new Error("Cannot flood: socket() failed");
  try {
    if (libc.symbols.connect(fd, sockaddrIn(opts.host, opts.port), 16) !== 0) {
      throw new Error(`Cannot flood ${opts.host}:${opts.port}: connect() failed`);
    }
    const payload = new Uint8Array(size).fill(0x6b);
    const iovs = new Uint8Array(IOVEC * batch);
    const msgs = new Uint8Array(MMSGHDR * batch);
    const iv = new DataView(iovs.buffer), mv = new DataView(msgs.buffer);
    const base = ptr(iovs);
    for (let i = 0; i < batch; i++) {
      iv.setBigUint64(i * IOVEC, ptr(payload), true);
      iv.setBigUint64(i * IOVEC + 8, BigInt(size), true);
      // msghdr: name NULL (connected), iov at +16, iovlen at +24; the rest stays zero.
      mv.setBigUint64(i * MMSGHDR + 16, base + BigInt(i * IOVEC), true);
      mv.setBigUint64(i * MMSGHDR + 24, 1n, true);
    }
    let sent = 0, errors = 0;
    const startedAt = Date.now(), t0 = performance.now();
    const end = t0 + opts.seconds * 1000;
    let now = t0;
    while (now < end) {
      const n = libc.symbols.sendmmsg(fd, msgs, batch, 0);
      if (n > 0) sent += n;
      else errors++;
      now = performance.now();
    }
    const seconds = (now - t0) / 1000;
    return {
      payloadBytes: size,
      batch,
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
      batch: { type: "string", default: "64" },
    },
  });
  const result = udpFlood({
    host: values.host,
    port: Number(values.port),
    seconds: Number(values.seconds),
    size: Number(values.size),
    batch: Number(values.batch),
  });
  console.log(JSON.stringify(result));
}
