/**
 * Run by tun_test.ts inside a fresh network namespace (`ip netns exec`), so
 * the TUN is created there: opens a {@linkcode TunDevice}, drives traffic
 * through it with the namespace's own sockets and prints what it saw as one
 * JSON object. Usage: `tun_probe.ts <ifname> plain|offload|multiqueue|forward`.
 *
 * `forward` adds a peer namespace (`<ifname>p`, removed at the end) behind a
 * veth whose traffic this namespace forwards into the TUN, as the appliance
 * sees it: what the kernel's forward path tells a TUN read for UDP from a
 * socket, UDP from a raw socket (software checksum), a `UDP_SEGMENT` send and
 * a TCP SYN. The peer's sender is python3.
 */

import { createSocket, type Socket } from "node:dgram";
import {
  buildIcmpEcho,
  buildTcp,
  buildUdp,
  checksumAdd,
  checksumFold,
  formatIpv4,
  Icmpv4Packet,
  Ipv4Packet,
  parseIpv4,
  parseIpv6,
  PROTO_ICMP,
  PROTO_TCP,
  PROTO_UDP,
  pseudoHeaderSum,
  pseudoHeaderSum6,
  read16,
  TCP_ACK,
  TCP_SYN,
  TcpPacket,
  UdpPacket,
} from "../../packet/mod.ts";
import { CSUM_NONE, CSUM_PARTIAL, CSUM_VALID } from "../device.ts";
import { enableOffload, TunDevice } from "../tun.ts";
import {
  VIRTIO_NET_HDR_F_DATA_VALID,
  vnetCsumOffset,
  vnetCsumStart,
  vnetFlags,
  vnetGsoSize,
  vnetGsoType,
  vnetHdrLen,
} from "../virtio_net.ts";

const LOCAL = "198.51.100.1";
const PEER = "198.51.100.2";
/** The TUN's IPv6 peer (the TUN has 2001:db8::1/64). */
const PEER6 = "2001:db8::2";
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
const meta = { csum: new Uint8Array(BATCH) };
const ip = new Ipv4Packet();
const tcp = new TcpPacket();
const udp = new UdpPacket();

/** A packet read from the TUN, copied out with its virtio-net header. */
interface Seen {
  pkt: Uint8Array;
  header: Uint8Array;
  csum: number;
}

function sh(...args: string[]): void {
  const out = new Deno.Command(args[0], { args: args.slice(1) }).outputSync();
  if (!out.success) throw new Error(`${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
}

/** True when the command exists and succeeds. */
function succeeds(cmd: string, args: string[]): boolean {
  try {
    return new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).outputSync().success;
  } catch {
    return false;
  }
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
        csum: meta.csum[i],
      };
      if (match(seen)) return seen;
    }
    await tick();
  }
  return null;
}

/** Writes one packet (its header taken from `header` when given) through the TUN. */
function writeOne(pkt: Uint8Array, csum = CSUM_NONE, header?: Uint8Array): number {
  bufs[0].set(pkt, OFF);
  if (header) bufs[0].set(header, OFF - header.length);
  sizes[0] = pkt.length;
  meta.csum[0] = csum;
  return dev.write(bufs, sizes, meta, OFF, 1);
}

/** True when the L4 checksum is complete, or (when partial) holds the pseudo-header sum. */
function checksumOk(s: Seen, field: number): boolean {
  ip.bind(s.pkt);
  const l4 = ip.payloadOffset();
  if (s.csum !== CSUM_PARTIAL) {
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
      csum: out.csum,
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

/** True for an IPv6 UDP datagram (no extension headers) to `dst`. */
function isUdp6To(s: Seen, dst: string): boolean {
  const to = parseIpv6(dst)!;
  if (s.pkt[0] >> 4 !== 6 || s.pkt[6] !== PROTO_UDP) return false;
  return to.every((w, i) => w === new DataView(s.pkt.buffer).getUint32(24 + 4 * i));
}

/** An IPv6 datagram routed into the TUN comes out of a read, counted, its checksum as stated. */
async function ipv6Read() {
  const before = dev.stats().ipv6Packets;
  const sock = await bound("udp6", "2001:db8::1");
  try {
    await send(sock, "six", 9, "2001:db8::2");
    const got = await readUntil((s) => isUdp6To(s, "2001:db8::2"));
    return {
      seen: got !== null,
      payload: got && new TextDecoder().decode(got.pkt.subarray(48)),
      csum: got?.csum,
      checksumOk: got !== null && udp6ChecksumOk(got),
      counted: dev.stats().ipv6Packets - before,
    };
  } finally {
    sock.close();
  }
}

/** `checksumOk` for an IPv6 UDP datagram without extension headers. */
function udp6ChecksumOk(s: Seen): boolean {
  const len = read16(s.pkt, 4);
  const pseudo = pseudoHeaderSum6(s.pkt, 0, PROTO_UDP, len);
  if (s.csum === CSUM_PARTIAL) return read16(s.pkt, 46) === checksumFold(pseudo);
  return checksumFold(checksumAdd(pseudo, s.pkt, 40, 40 + len)) === 0xffff;
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
    synCsum: syn.csum,
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
    result.dataCsumPartialAll &&= s.csum === CSUM_PARTIAL;
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
  return writeOne(pkt, CSUM_PARTIAL, s.header);
}

/**
 * What a write's checksum state asks of the kernel: a datagram with a broken
 * UDP checksum behind a zero header (`CSUM_NONE`) must be dropped by the
 * receiving socket; behind a `DATA_VALID` header (`CSUM_VALID`) the kernel
 * takes the checksum as verified and delivers it.
 */
async function corruptedWrites() {
  const sock = await bound("udp4", LOCAL);
  try {
    const port = sock.address().port;
    const corrupted = (text: string) => {
      const pkt = buildUdp({
        src: PEER,
        dst: LOCAL,
        srcPort: 9998,
        dstPort: port,
        payload: new TextEncoder().encode(text),
      });
      pkt[20 + 6] ^= 0x55; // the UDP checksum
      return pkt;
    };
    let pending = receive(sock, 500);
    const noneWritten = writeOne(corrupted("none"), CSUM_NONE);
    const none = await pending;
    pending = receive(sock, 2000);
    const valid = new Uint8Array(dev.headroom);
    valid[0] = VIRTIO_NET_HDR_F_DATA_VALID;
    const validWritten = writeOne(corrupted("valid"), CSUM_VALID, valid);
    const trusted = await pending;
    return {
      noneWritten,
      noneDelivered: none?.text ?? null,
      validWritten,
      validDelivered: trusted?.text ?? null,
    };
  } finally {
    sock.close();
  }
}

/** The virtio-net header of a read, field by field. */
function headerFields(s: Seen) {
  const h = s.header;
  return {
    flags: vnetFlags(h, 0),
    gsoType: vnetGsoType(h, 0),
    hdrLen: vnetHdrLen(h, 0),
    gsoSize: vnetGsoSize(h, 0),
    csumStart: vnetCsumStart(h, 0),
    csumOffset: vnetCsumOffset(h, 0),
  };
}

/** Sent from the peer namespace, each twice (the first may wait for ARP on the veth). */
const PEER_SENDER = `
import socket, struct, sys, time
DST = "${PEER}"
GRO_ONLY = sys.argv[1:] == ["gro"]
def csum(b):
    if len(b) % 2: b += b"\\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
def raw_udp(src, dst, sport, dport, payload):
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 17, len(udp))
    c = csum(pseudo + udp) or 0xffff
    udp = udp[:6] + struct.pack("!H", c) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    return ip + udp
r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
if GRO_ONLY:
    for _ in range(2):
        r.sendto(raw_udp("203.0.113.2", DST, 40004, 9004, b"raw-gro"), (DST, 0))
        time.sleep(0.3)
    raise SystemExit
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
g = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
g.setsockopt(socket.SOL_UDP, 103, 100)  # UDP_SEGMENT: 100-byte datagrams
t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
t.setblocking(False)
u6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
g6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
g6.setsockopt(socket.SOL_UDP, 103, 100)
for _ in range(2):
    u6.sendto(b"plain6", ("${PEER6}", 9005))
    g6.sendto(bytes(i % 251 for i in range(1000)), ("${PEER6}", 9006))
    u.sendto(b"plain", (DST, 9001))
    r.sendto(raw_udp("203.0.113.2", DST, 40002, 9002, b"raw"), (DST, 0))
    g.sendto(bytes(i % 251 for i in range(1000)), (DST, 9003))
    try:
        t.connect((DST, 8081))
    except BlockingIOError:
        pass
    time.sleep(0.3)
`;

function peerSender(peer: string, args: string[]): Deno.ChildProcess {
  return new Deno.Command("ip", {
    args: ["netns", "exec", peer, "python3", "-c", PEER_SENDER, ...args],
    stdout: "null",
    stderr: "piped",
    signal: AbortSignal.timeout(10_000),
  }).spawn();
}

/** What a TUN read says about packets this namespace forwards from a veth peer. */
async function forwarded() {
  const peer = `${ifname}p`, veth = `${ifname}v`;
  sh("ip", "netns", "add", peer);
  try {
    sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", peer);
    sh("ip", "addr", "add", "203.0.113.1/24", "dev", veth);
    sh("ip", "link", "set", veth, "up");
    sh("sysctl", "-qw", "net.ipv4.ip_forward=1");
    sh("ip", "-6", "addr", "add", "2001:db8:203::1/64", "dev", veth, "nodad");
    sh("sysctl", "-qw", "net.ipv6.conf.all.forwarding=1");
    sh("ip", "-n", peer, "link", "set", "lo", "up");
    sh("ip", "-n", peer, "addr", "add", "203.0.113.2/24", "dev", "eth0");
    sh("ip", "-n", peer, "link", "set", "eth0", "up");
    sh("ip", "-n", peer, "route", "add", "default", "via", "203.0.113.1");
    sh("ip", "-n", peer, "-6", "addr", "add", "2001:db8:203::2/64", "dev", "eth0", "nodad");
    sh("ip", "-n", peer, "-6", "route", "add", "default", "via", "2001:db8:203::1");
    const seen: Record<string, unknown> = {};
    const names: Record<number, string> = {
      9001: "udp",
      9002: "udpRaw",
      9003: "udpGso",
      9004: "udpRawGro",
      8081: "tcpSyn",
    };
    const names6: Record<number, string> = { 9005: "udp6", 9006: "udpGso6" };
    const record6 = (s: Seen) => {
      const name = names6[read16(s.pkt, 42)];
      if (!isUdp6To(s, PEER6) || name === undefined || name in seen) return false;
      seen[name] = {
        csum: s.csum,
        header: headerFields(s),
        size: s.pkt.length,
        checksumOk: udp6ChecksumOk(s),
        udpLength: read16(s.pkt, 44),
        l4Length: read16(s.pkt, 4),
      };
      return true;
    };
    const record = (s: Seen) => {
      if (s.pkt[0] >> 4 === 6) return record6(s);
      if (s.pkt[0] >> 4 !== 4 || ip.bind(s.pkt).dst() !== parseIpv4(PEER)) return false;
      const l4 = ip.payloadOffset(), name = names[read16(s.pkt, l4 + 2)];
      if (name === undefined || name in seen) return false;
      const proto = ip.protocol();
      seen[name] = {
        csum: s.csum,
        header: headerFields(s),
        size: s.pkt.length,
        checksumOk: checksumOk(s, proto === PROTO_TCP ? 16 : 6),
        ...(proto === PROTO_UDP
          ? { udpLength: read16(s.pkt, l4 + 4), l4Length: ip.payloadLen() }
          : {}),
      };
      return true;
    };
    const sender = peerSender(peer, []);
    await readUntil((s) => record(s) && Object.keys(seen).length === 6, 3000);
    const out = await sender.output();
    if (!out.success) seen.senderError = new TextDecoder().decode(out.stderr);
    // GRO on the ingress veth validates a CHECKSUM_NONE datagram in software (needs ethtool).
    const gro = ["-K", veth, "gro", "on", "rx-udp-gro-forwarding", "on"];
    if (succeeds("ethtool", gro)) {
      const sender = peerSender(peer, ["gro"]);
      await readUntil((s) => record(s) && "udpRawGro" in seen, 3000);
      await sender.output();
    }
    return seen;
  } finally {
    sh("ip", "netns", "del", peer);
  }
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
    offloads: dev.offloads,
    udp: await udpRoundTrip(),
    icmp: await icmpEcho(),
    ipv6: await ipv6Read(),
    truncation: await truncation(),
  };
  if (mode !== "multiqueue") report.tcp = await tcpBulk();
  if (offload) report.corruptedWrites = await corruptedWrites();
  if (mode === "forward") report.forwarded = await forwarded();
  // A bit no kernel knows is refused as USO is before 6.2: the rest must go on alone.
  if (mode === "offload") {
    const unknown = { bits: 0x40000000, names: ["unknown"] };
    report.fallback = enableOffload(dev.queue(0).fd, dev.name, unknown);
  }
  report.stats = dev.stats();
  console.log(JSON.stringify(report));
} finally {
  dev.close();
}
