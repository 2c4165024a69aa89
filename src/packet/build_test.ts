import assert from "node:assert/strict";
import { fixture } from "./_fixtures.ts";
import { buildIcmpEcho, buildIcmpError, buildTcp, buildUdp, fragment, toAddr } from "./build.ts";
import { ICMP_ECHO_REPLY, ICMP_TIME_EXCEEDED, Icmpv4Packet } from "./icmpv4.ts";
import { Ipv4Packet } from "./ipv4.ts";
import { ParseError } from "./parse_error.ts";
import { TCP_ACK, TCP_PSH, TcpPacket } from "./tcp.ts";
import { UdpPacket } from "./udp.ts";

const ip = new Ipv4Packet();

/** Binds the shared IPv4 view to `b` and asserts it is valid. */
function checkIp(b: Uint8Array): Ipv4Packet {
  ip.bind(b);
  assert.equal(ip.check(), ParseError.None);
  assert.ok(ip.verifyChecksum());
  return ip;
}

Deno.test("buildTcp: every field and both checksums", () => {
  const b = buildTcp({
    src: "203.0.113.7",
    dst: 0xc6336401,
    srcPort: 50000,
    dstPort: 443,
    flags: TCP_PSH | TCP_ACK,
    seq: 0xfffffff0,
    ack: 5,
    window: 512,
    ttl: 9,
    ident: 77,
    df: true,
    options: new Uint8Array([1, 1, 1]),
    payload: new TextEncoder().encode("hello"),
  });
  const v = checkIp(b);
  assert.equal(v.toString(), "IPv4 203.0.113.7 > 198.51.100.1 proto=6 len=49 ttl=9 id=0x4d DF");
  const t = new TcpPacket().bind(b, 20, v.payloadLen());
  assert.equal(t.check(), ParseError.None);
  assert.ok(t.verifyChecksum(v.src(), v.dst()));
  assert.equal(t.headerLen(), 24);
  assert.equal(t.toString(), "TCP 50000 > 443 [PA] seq=4294967280 ack=5 win=512 len=5");
});

Deno.test("buildUdp with and without checksum", () => {
  const base = { src: "192.0.2.9", dst: "198.51.100.3", srcPort: 7, dstPort: 9 };
  for (const checksum of [true, false]) {
    const b = buildUdp({ ...base, checksum, payload: new Uint8Array(3) });
    const v = checkIp(b);
    const u = new UdpPacket().bind(b, 20, v.payloadLen());
    assert.equal(u.check(), ParseError.None);
    assert.equal(u.checksum() !== 0, checksum);
    assert.ok(u.verifyChecksum(v.src(), v.dst()));
  }
});

Deno.test("buildIcmpEcho", () => {
  const b = buildIcmpEcho({
    src: "192.0.2.9",
    dst: "198.51.100.3",
    type: ICMP_ECHO_REPLY,
    ident: 3,
    seq: 4,
  });
  checkIp(b);
  const m = new Icmpv4Packet().bind(b, 20, 8);
  assert.equal(m.check(), ParseError.None);
  assert.equal(m.toString(), "ICMP type=0 code=0 echo id=3 seq=4 len=0");
});

Deno.test("buildIcmpError keeps the header + 8 bytes by default, or `keep`", () => {
  const orig = fixture("tcpSyn");
  const b = buildIcmpError({
    src: "198.51.100.1",
    dst: "192.0.2.1",
    type: 11,
    code: 0,
    original: orig,
  });
  const v = checkIp(b);
  assert.equal(v.payloadLen(), 8 + 28);
  const m = new Icmpv4Packet().bind(b, 20, v.payloadLen());
  assert.equal(m.check(), ParseError.None);
  assert.equal(m.type(), ICMP_TIME_EXCEEDED);
  assert.deepEqual(b.subarray(28), orig.subarray(0, 28));
  const long = buildIcmpError({
    src: 1,
    dst: 2,
    type: 3,
    code: 4,
    original: orig,
    keep: 1000,
    rest: 1400,
  });
  assert.equal(long.length, 20 + 8 + orig.length);
  assert.equal(new Icmpv4Packet().bind(long, 20).seqNo(), 1400);
});

Deno.test("toAddr rejects a malformed address", () => {
  assert.throws(() => toAddr("300.1.1.1"), /Cannot parse address "300.1.1.1"/);
  assert.equal(toAddr(-1), 0xffffffff);
});

Deno.test("fragment splits on 8-byte boundaries and reassembles", () => {
  const payload = new Uint8Array(1000).map((_, i) => i * 7);
  const pkt = buildUdp({ src: 1, dst: 2, srcPort: 3, dstPort: 4, payload, ident: 42 });
  const frags = fragment(pkt, 300);
  assert.equal(frags.length, 4);
  const whole = new Uint8Array(pkt.length - 20);
  frags.forEach((f, i) => {
    const v = checkIp(f);
    assert.ok(f.length <= 300);
    assert.equal(v.ident(), 42);
    assert.equal(v.moreFragments(), i < frags.length - 1);
    assert.equal(v.fragOffset() % 8, 0);
    whole.set(f.subarray(20), v.fragOffset());
  });
  assert.deepEqual(whole, pkt.subarray(20));
  assert.deepEqual(fragment(pkt, 2000), [pkt]);
  // Re-fragmenting a middle fragment keeps its offset and MF.
  const sub = fragment(frags[1], 100);
  assert.equal(new Ipv4Packet().bind(sub[0]).fragOffset(), 280);
  assert.ok(new Ipv4Packet().bind(sub[sub.length - 1]).moreFragments());
  assert.throws(() => fragment(pkt, 24), /Cannot fragment/);
});
