/**
 * Run by tun_test.ts inside a fresh network namespace (`ip netns exec`), so
 * the TUN is created there: opens a {@linkcode TunDevice}, drives traffic
 * through it with the namespace's own sockets and prints what it saw as one
 * JSON object. Usage: `tun_probe.ts <ifname> plain|offload|multiqueue`.
 */

import { createSocket, type Socket } from "node:dgram";
import {
  buildIcmpEcho,
  buildTcp,
  buildUdp,
  checksumFold,
  formatIpv4,
  Icmpv4Packet,
  Ipv4Packet,
  parseIpv4,
  PROTO_ICMP,
  PROTO_TCP,
  PROTO_UDP,
  pseudoHeaderSum,
  read16,
  TCP_ACK,
  TCP_SYN,
  TcpPacket,
  UdpPacket,
} from "../../packet/mod.ts";
import { TunDevice } from "../tun.ts";

const LOCAL = "198.51.100.1";
const PEER = "198.51.100.2";
const MTU = 1400;
const OFF = 16; // packet offset in each buffer, above the 10-byte headroom
const BATCH = 8;

const [ifname, mode] = Deno.args;
const offload = mode !== "plain";
const dev = TunDevice.open({
  name: ifname,
  mtu: MTU,
  offload,
  queues: mode === "multiqueue" ? 2 : 1,
});
const bufs = Array.from({ length: BATCH }, () => new Uint8Array(OFF + 65536));
const sizes = new Int32Array(BATCH);
const meta = { csumPartial: new Uint8Array(BATCH) };
const ip = new Ipv4Packet();
const tcp = new TcpPacket();
const udp = new UdpPacket();

/** A packet read from the TUN, copied out with its virtio-net header. */
interface Seen {
  pkt: Uint8Array;
  header: Uint8Array;
  csumPartial: number;
}

function sh(...args: string[]): void {
  const out = new Deno.Command(args[0], { args: args.slice(1) }).outputSync();
  if (!out.success) throw new Error(`${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

/** Reads until `match` accepts a packet or `ms` pass, yielding to the event loop between polls. */
async function readUntil(match: (s: Seen) => boolean, ms = 2000): Promise<Seen | null> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    dev.wait(5);
    const n = dev.read(bufs, sizes, meta, OFF);
    for (let i = 0; i < n; i++) {
      const seen = {
        pkt: bufs[i].slice(OFF, OFF + sizes[i]),
        header: bufs[i].slice(OFF - dev.headroom, OFF),
        csumPartial: meta.csumPartial[i],
      };
      if (match(seen)) return seen;
    }
    await tick();
  }
  return null;
}

/** Writes one packet (its header taken from `header` when given) through the TUN. */
function writeOne(pkt: Uint8Array, csumPartial = 0, header?: Uint8Array): number {
  bufs[0].set(pkt, OFF);
  if (header) bufs[0].set(header, OFF - header.length);
  sizes[0] = pkt.length;
  meta.csumPartial[0] = csumPartial;
  return dev.write(bufs, sizes, meta, OFF, 1);
}

/** True when the L4 checksum is complete, or (when partial) holds the pseudo-header sum. */
function checksumOk(s: Seen, field: number): boolean {
  ip.bind(s.pkt);
  const l4 = ip.payloadOffset();
  if (!s.csumPartial) {
    const view = ip.protocol() === PROTO_TCP ? tcp.bind(s.pkt, l4) : udp.bind(s.pkt, l4);
    return view.verifyChecksum(ip.src(), ip.dst());
  }
  const sum = checksumFold(pseudoHeaderSum(ip.src(), ip.dst(), ip.protocol(), ip.payloadLen()));
  return read16(s.pkt, l4 + field) === sum;
}

const isTo = (s: Seen, proto: number, dst: string) => {
  if (s.pkt[0] >> 4 !== 4) return false;
  ip.bind(s.pkt);
  return ip.protocol() === proto && ip.dst() === parseIpv4(dst);
};

function send(sock: Socket, text: string, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) =>
    sock.send(text, port, host, (err) => err ? reject(err) : resolve())
  );
}

function receive(sock: Socket, ms: number): Promise<{ text: string; from: string } | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), ms);
    sock.once("message", (msg, rinfo) => {
      clearTimeout(timer);
      resolve({ text: new TextDecoder().decode(msg), from: `${rinfo.address}:${rinfo.port}` });
    });
  });
}

function bound(type: "udp4" | "udp6", address: string): Promise<Socket> {
  const sock = createSocket(type);
  return new Promise((resolve) => sock.bind(0, address, () => resolve(sock)));
}

/** UDP out through the TUN, then a crafted reply back in to the socket. */
async function udpRoundTrip() {
  const sock = await bound("udp4", LOCAL);
  try {
    await send(sock, "knock-out", 9999, PEER);
    const out = await readUntil((s) => isTo(s, PROTO_UDP, PEER));
    if (out === null) return { seen: false };
    udp.bind(out.pkt, ip.bind(out.pkt).payloadOffset());
    const payload = new TextDecoder().decode(out.pkt.subarray(udp.payloadOffset()));
    const srcPort = udp.srcPort();
    const reply = buildUdp({
      src: PEER,
      dst: LOCAL,
      srcPort: 9999,
      dstPort: srcPort,
      payload: new TextEncoder().encode("knock-back"),
    });
    const pending = receive(sock, 2000);
    const written = writeOne(reply);
    return {
      seen: true,
      payload,
      size: out.pkt.length,
      csumPartial: out.csumPartial,
      checksumOk: checksumOk(out, 6),
      written,
      reply: await pending,
    };
  } finally {
    sock.close();
  }
}

/** An echo request written in; the kernel's echo reply read back out. */
async function icmpEcho() {
  const req = buildIcmpEcho({ src: PEER, dst: LOCAL, ident: 0x4b47, seq: 7 });
  const written = writeOne(req);
  const reply = await readUntil((s) => isTo(s, PROTO_ICMP, PEER));
  if (reply === null) return { written, seen: false };
  const icmp = new Icmpv4Packet().bind(reply.pkt, ip.bind(reply.pkt).payloadOffset());
  return { written, seen: true, type: icmp.type(), from: formatIpv4(ip.src()) };
}

/** An IPv6 datagram routed into the TUN must be dropped and counted. */
async function ipv6Dropped(): Promise<number> {
  const before = dev.stats().nonIpv4Dropped;
  const sock = await bound("udp6", "2001:db8::1");
  try {
    await send(sock, "six", 9, "2001:db8::2");
    await readUntil(() => false, 300);
  } finally {
    sock.close();
  }
  return dev.stats().nonIpv4Dropped - before;
}

/** An echo reply longer than the buffer handed to read must be dropped and counted, not cut. */
async function truncation() {
  const before = dev.stats().truncated;
  writeOne(
    buildIcmpEcho({ src: PEER, dst: LOCAL, ident: 1, seq: 2, payload: new Uint8Array(500) }),
  );
  const small = [new Uint8Array(OFF + 100)];
  let read = 0;
  for (let i = 0; i < 100 && dev.stats().truncated === before; i++) {
    dev.wait(20);
    read += dev.read(small, sizes, meta, OFF);
    await tick();
  }
  return { read, truncated: dev.stats().truncated - before };
}

/** A TCP connection answered by hand: SYN checksum state, then bulk data (GSO with offload). */
async function tcpBulk() {
  const connecting = Deno.connect({ hostname: PEER, port: 8080 });
  connecting.catch(() => {});
  const syn = await readUntil((s) => isTo(s, PROTO_TCP, PEER));
  if (syn === null) return { synSeen: false };
  tcp.bind(syn.pkt, ip.bind(syn.pkt).payloadOffset());
  const mss = MTU - 40;
  const synAck = buildTcp({
    src: PEER,
    dst: LOCAL,
    srcPort: 8080,
    dstPort: tcp.srcPort(),
    seq: 1000,
    ack: (tcp.seq() + 1) >>> 0,
    flags: TCP_SYN | TCP_ACK,
    options: new Uint8Array([2, 4, mss >> 8, mss & 0xff]),
  });
  const result = {
    synSeen: true,
    synCsumPartial: syn.csumPartial,
    synChecksumOk: checksumOk(syn, 16),
    connected: false,
    dataPackets: 0,
    largest: 0,
    dataCsumPartialAll: true,
    dataChecksumOkAll: true,
    gsoWriteBack: -1,
  };
  writeOne(synAck);
  const conn = await Promise.race([
    connecting,
    new Promise<null>((r) => setTimeout(r, 2000, null)),
  ]);
  if (conn === null) return result;
  result.connected = true;
  conn.write(new Uint8Array(200_000)).catch(() => {});
  let gso: Seen | null = null;
  await readUntil((s) => {
    if (!isTo(s, PROTO_TCP, PEER) || tcp.bind(s.pkt, ip.payloadOffset()).payloadLen() === 0) {
      return false;
    }
    result.dataPackets++;
    result.largest = Math.max(result.largest, s.pkt.length);
    result.dataCsumPartialAll &&= s.csumPartial === 1;
    result.dataChecksumOkAll &&= checksumOk(s, 16);
    if (s.pkt.length > MTU) gso ??= s;
    return gso !== null || result.dataPackets >= 20;
  }, 1500);
  if (gso !== null) result.gsoWriteBack = writeBackSwapped(gso);
  conn.close();
  return result;
}

/**
 * Writes a GSO super packet back in with its own virtio-net header, addresses
 * and ports swapped (the pseudo-header sum is unchanged by a swap), as NAT would.
 */
function writeBackSwapped(s: Seen): number {
  const pkt = s.pkt.slice();
  const sw = (a: number, b: number, n: number) => {
    const t = pkt.slice(a, a + n);
    pkt.copyWithin(a, b, b + n);
    pkt.set(t, b);
  };
  sw(12, 16, 4);
  const l4 = (pkt[0] & 0x0f) << 2;
  sw(l4, l4 + 2, 2);
  return writeOne(pkt, 1, s.header);
}

try {
  sh("ip", "link", "set", "lo", "up");
  sh("ip", "addr", "add", `${LOCAL}/24`, "dev", dev.name);
  sh("ip", "-6", "addr", "add", "2001:db8::1/64", "dev", dev.name, "nodad");
  const report: Record<string, unknown> = {
    name: dev.name,
    headroom: dev.headroom,
    maxPacketSize: dev.maxPacketSize,
    queues: dev.queueCount,
    udp: await udpRoundTrip(),
    icmp: await icmpEcho(),
    ipv6Dropped: await ipv6Dropped(),
    truncation: await truncation(),
  };
  if (mode !== "multiqueue") report.tcp = await tcpBulk();
  report.stats = dev.stats();
  console.log(JSON.stringify(report));
} finally {
  dev.close();
}
