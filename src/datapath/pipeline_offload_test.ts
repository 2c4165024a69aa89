/**
 * The pipeline with the device's checksum states and GSO super packets,
 * through the engine and a memory device that injects each state as a TUN
 * read reports it.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../clock.ts";
import { CSUM_NONE, CSUM_PARTIAL, CSUM_VALID, MemoryDevice } from "../device/mod.ts";
import {
  buildTcp,
  buildUdp,
  checksumFold,
  Ipv4Packet,
  parseIpv4,
  PROTO_UDP,
  pseudoHeaderSum,
  read16,
  TCP_SYN,
  TcpPacket,
  UdpPacket,
  write16,
} from "../packet/mod.ts";
import { Drop, newCounters, Stat } from "./counters.ts";
import { Engine } from "./engine.ts";
import { Pipeline } from "./pipeline.ts";
import { CLIENT, forward, SERVER, SETTINGS, T0, WAN } from "./_test_fixtures.ts";
import { ParseError } from "../packet/mod.ts";

const UDP_CSUM = 20 + 6;
const IP_CSUM = 10;

function setup(ipv4HeaderChecked = false) {
  const counters = newCounters(false);
  const p = new Pipeline({
    settings: { ...SETTINGS, allow: ["203.0.113.0/24"] },
    forwards: [forward("web", 52201, 8080, true)],
    openPorts: [],
    counters,
    emit: () => {},
    clock: new ManualClock(T0),
    ipv4HeaderChecked,
  });
  const dev = new MemoryDevice({ headroom: 10, maxPacketSize: 65535, ipv4HeaderChecked });
  return { p, counters, dev, engine: new Engine(dev, p, { batch: 8 }) };
}

/** A datagram from the client to the forward, with `payload` bytes of a counting pattern. */
function datagram(payload = 32, sport = 40000): Uint8Array {
  return buildUdp({
    src: CLIENT,
    dst: WAN,
    srcPort: sport,
    dstPort: 52201,
    payload: Uint8Array.from({ length: payload }, (_, i) => i % 251),
  });
}

/** `pkt` with its UDP checksum field turned into the pseudo-header sum (virtio NEEDS_CSUM). */
function partial(pkt: Uint8Array): Uint8Array {
  const ip = new Ipv4Packet().bind(pkt);
  const sum = checksumFold(pseudoHeaderSum(ip.src(), ip.dst(), PROTO_UDP, ip.payloadLen()));
  write16(pkt, UDP_CSUM, sum);
  return pkt;
}

/** A virtio-net header: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset (LE). */
function vnetHeader(flags: number, gsoType: number, hdrLen: number, gsoSize: number) {
  const h = new Uint8Array(10);
  const v = new DataView(h.buffer);
  h[0] = flags;
  h[1] = gsoType;
  v.setUint16(2, hdrLen, true);
  v.setUint16(4, gsoSize, true);
  v.setUint16(6, 20, true);
  v.setUint16(8, 6, true);
  return h;
}

function checksumValid(pkt: Uint8Array): boolean {
  const ip = new Ipv4Packet().bind(pkt);
  return new UdpPacket().bind(pkt, ip.payloadOffset(), ip.payloadLen()).verifyChecksum(
    ip.src(),
    ip.dst(),
  );
}

Deno.test("checksum state NONE: a corrupted UDP checksum is verified, dropped and counted", () => {
  const { counters, dev, engine } = setup(true);
  const bad = datagram();
  bad[UDP_CSUM] ^= 0x5a;
  dev.inject(bad, CSUM_NONE);
  dev.inject(datagram(32, 40001), CSUM_NONE);
  assert.equal(engine.pump(T0), 2);
  const out = dev.takeWritten();
  assert.equal(out.length, 1, "only the intact datagram passes");
  assert.equal(counters[ParseError.BadL4Checksum], 1);
  assert.equal(counters[Stat.Drops], 1);
  assert.equal(new Ipv4Packet().bind(out[0]).dst(), parseIpv4(SERVER));
  assert.equal(checksumValid(out[0]), true);
});

Deno.test("checksum state VALID: the kernel's verdict stands, the checksum is adjusted in full", () => {
  const { counters, dev, engine } = setup(true);
  const bad = datagram();
  bad[UDP_CSUM] ^= 0x5a; // a checksum the kernel said it verified is not summed again
  const header = vnetHeader(2, 0, 0, 0);
  dev.inject(bad, CSUM_VALID, header);
  dev.inject(datagram(32, 40001), CSUM_VALID, header);
  assert.equal(engine.pump(T0), 2);
  const out = dev.takeWritten();
  assert.equal(out.length, 2);
  assert.equal(counters[ParseError.BadL4Checksum], 0);
  assert.equal(checksumValid(out[1]), true, "an intact one stays valid after NAT");
  assert.equal(checksumValid(out[0]), false, "the corruption went through unverified");
});

Deno.test("checksum state VALID goes back out with its state and header", () => {
  const { dev, engine } = setup(true);
  const header = vnetHeader(2, 0, 0, 0);
  dev.inject(datagram(), CSUM_VALID, header);
  engine.pump(T0);
  assert.deepEqual(dev.writtenCsum, [CSUM_VALID]);
  assert.deepEqual(dev.writtenHeaders[0], header);
});

Deno.test("checksum state PARTIAL: the pseudo-header sum is rewritten incrementally", () => {
  const { counters, dev, engine } = setup(true);
  const header = vnetHeader(1, 0, 0, 0);
  dev.inject(partial(datagram()), CSUM_PARTIAL, header);
  assert.equal(engine.pump(T0), 1);
  const [out] = dev.takeWritten();
  assert.equal(counters[Stat.Drops], 0);
  const ip = new Ipv4Packet().bind(out);
  assert.equal(ip.dst(), parseIpv4(SERVER));
  assert.equal(read16(out, 20 + 2), 8080);
  assert.equal(ip.verifyChecksum(), true);
  const want = checksumFold(pseudoHeaderSum(ip.src(), ip.dst(), PROTO_UDP, ip.payloadLen()));
  assert.equal(
    read16(out, UDP_CSUM),
    want,
    "the sum of the new addresses, ports left to the kernel",
  );
});

Deno.test("the IPv4 header checksum is checked unless the device says the kernel did", () => {
  const bad = datagram();
  bad[IP_CSUM] ^= 0x5a;
  const unsure = setup(false);
  unsure.dev.inject(bad, CSUM_NONE);
  unsure.engine.pump(T0);
  assert.equal(unsure.dev.takeWritten().length, 0);
  assert.equal(unsure.counters[ParseError.BadChecksum], 1);
  // A TUN's packets passed ip_rcv_core (or were built by the kernel): no second sum.
  const tun = setup(true);
  tun.dev.inject(bad, CSUM_NONE);
  tun.engine.pump(T0);
  assert.equal(tun.dev.takeWritten().length, 1);
  assert.equal(tun.counters[ParseError.BadChecksum], 0);
});

Deno.test("a UDP_L4 GSO super packet passes NAT whole, its virtio-net header kept", () => {
  const { p, counters, dev, engine } = setup(true);
  // What a TUN read of a UDP_SEGMENT send of 10 x 100 bytes returns (see src/device/tun.ts).
  const pkt = partial(datagram(1000));
  assert.deepEqual([pkt.length, read16(pkt, 20 + 4)], [1028, 1008]);
  const header = vnetHeader(1, 5, 28, 100);
  dev.inject(pkt, CSUM_PARTIAL, header);
  assert.equal(engine.pump(T0), 1);
  const [out] = dev.written;
  assert.equal(counters[Stat.Drops], 0);
  assert.equal(out.length, 1028);
  assert.deepEqual(dev.writtenHeaders[0], header, "gso_type, gso_size and csum fields untouched");
  assert.deepEqual(dev.writtenCsum, [CSUM_PARTIAL]);
  const ip = new Ipv4Packet().bind(out);
  assert.equal(ip.dst(), parseIpv4(SERVER));
  assert.equal(ip.verifyChecksum(), true);
  assert.equal(read16(out, 20 + 2), 8080);
  assert.equal(read16(out, 20 + 4), 1008, "the UDP length still covers the whole super packet");
  // The pseudo-header sum over the whole UDP length, as __udp_gso_segment expects it.
  const want = checksumFold(pseudoHeaderSum(ip.src(), ip.dst(), PROTO_UDP, 1008));
  assert.equal(read16(out, UDP_CSUM), want);
  assert.deepEqual(out.subarray(28), pkt.subarray(28), "the payload of every datagram intact");
  // Conntrack counts the super packet once, with all its bytes.
  const [flow] = p.flows(10);
  assert.deepEqual([flow.packets, flow.bytes], [1, 1028]);
  assert.equal(counters[Drop.NoRule], 0);
});

Deno.test("TCP: a corrupted checksum is dropped in state NONE and passes unverified in VALID", () => {
  const syn = (sport: number) => {
    const pkt = buildTcp({ src: CLIENT, dst: WAN, srcPort: sport, dstPort: 52201, flags: TCP_SYN });
    pkt[20 + 16] ^= 0x5a; // the TCP checksum
    return pkt;
  };
  const { counters, dev, engine } = setup(true);
  dev.inject(syn(40000), CSUM_NONE);
  dev.inject(syn(40001), CSUM_VALID, vnetHeader(2, 0, 0, 0));
  assert.equal(engine.pump(T0), 2);
  const out = dev.takeWritten();
  assert.equal(out.length, 1);
  assert.equal(counters[ParseError.BadL4Checksum], 1);
  const ip = new Ipv4Packet().bind(out[0]);
  const tcp = new TcpPacket().bind(out[0], ip.payloadOffset(), ip.payloadLen());
  assert.deepEqual([tcp.srcPort(), tcp.dstPort()], [40001, 8080]);
});
