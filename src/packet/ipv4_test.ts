import assert from "node:assert/strict";
import { fixture } from "./_fixtures.ts";
import { parseIpv4 } from "./address.ts";
import { Ipv4Packet, PROTO_ICMP, PROTO_TCP } from "./ipv4.ts";
import { PARSE_ERROR_COUNT, ParseError, parseErrorName } from "./parse_error.ts";

const A1 = parseIpv4("192.0.2.1")!;
const A2 = parseIpv4("192.0.2.2")!;

Deno.test("Ipv4Packet reads the captured SYN", () => {
  const b = fixture("tcpSyn");
  const ip = new Ipv4Packet().bind(b);
  assert.equal(ip.check(), ParseError.None);
  assert.ok(ip.verifyChecksum());
  assert.equal(ip.version(), 4);
  assert.equal(ip.headerLen(), 20);
  assert.equal(ip.dscpEcn(), 0);
  assert.equal(ip.totalLen(), 60);
  assert.equal(ip.ident(), 0xfca3);
  assert.ok(ip.dontFragment());
  assert.ok(!ip.moreFragments());
  assert.equal(ip.fragOffset(), 0);
  assert.ok(!ip.isFragment());
  assert.equal(ip.ttl(), 64);
  assert.equal(ip.protocol(), PROTO_TCP);
  assert.equal(ip.checksum(), 0xba14);
  assert.equal(ip.src(), A1);
  assert.equal(ip.dst(), A2);
  assert.equal(ip.payloadOffset(), 20);
  assert.equal(ip.payloadLen(), 40);
  assert.equal(ip.toString(), "IPv4 192.0.2.1 > 192.0.2.2 proto=6 len=60 ttl=64 id=0xfca3 DF");
});

Deno.test("Ipv4Packet works at an offset (headroom) and ignores trailing padding", () => {
  const pkt = fixture("icmpEcho");
  const b = new Uint8Array(10 + pkt.length + 6);
  b.set(pkt, 10);
  const ip = new Ipv4Packet().bind(b, 10, pkt.length + 6);
  assert.equal(ip.check(), ParseError.None);
  assert.ok(ip.verifyChecksum());
  assert.equal(ip.protocol(), PROTO_ICMP);
  assert.equal(ip.payloadOffset(), 30);
  assert.equal(ip.payloadLen(), pkt.length - 20);
});

Deno.test("Ipv4Packet setters and fillChecksum", () => {
  const b = fixture("udp");
  const ip = new Ipv4Packet().bind(b);
  ip.setSrc(0xcb007105);
  ip.setDst(0xc6336401);
  ip.setTtl(3);
  ip.setIdent(0xbeef);
  assert.ok(!ip.verifyChecksum());
  ip.fillChecksum();
  assert.ok(ip.verifyChecksum());
  assert.equal(ip.toString(), "IPv4 203.0.113.5 > 198.51.100.1 proto=17 len=45 ttl=3 id=0xbeef DF");
  ip.setChecksum(0);
  assert.equal(ip.checksum(), 0);
});

Deno.test("Ipv4Packet fragment fields", () => {
  const b = fixture("udp");
  const ip = new Ipv4Packet().bind(b);
  b[6] = 0x20; // MF, offset 0
  b[7] = 0;
  assert.ok(ip.isFragment() && ip.moreFragments() && ip.fragOffset() === 0);
  b[6] = 0x00; // offset 185 * 8
  b[7] = 185;
  assert.ok(ip.isFragment() && !ip.moreFragments() && !ip.dontFragment());
  assert.equal(ip.fragOffset(), 1480);
  ip.fillChecksum();
  assert.match(ip.toString(), / frag=1480$/);
});

/** The fixture SYN with `mutate` applied. */
function syn(mutate: (b: Uint8Array) => void, len?: number): Ipv4Packet {
  const b = fixture("tcpSyn");
  mutate(b);
  return new Ipv4Packet().bind(b, 0, len ?? b.length);
}

Deno.test("Ipv4Packet.check returns every IPv4 error code", () => {
  const none = () => {};
  assert.equal(syn(none, 19).check(), ParseError.Truncated);
  assert.equal(syn(none, 0).check(), ParseError.Truncated);
  assert.equal(syn((b) => (b[0] = 0x65)).check(), ParseError.BadVersion);
  assert.equal(syn((b) => (b[0] = 0x44)).check(), ParseError.BadHeaderLen);
  assert.equal(syn((b) => (b[0] = 0x4f)).check(), ParseError.Ipv4Options);
  assert.equal(syn((b) => (b[0] = 0x4f), 40).check(), ParseError.BadHeaderLen);
  assert.equal(syn((b) => (b[3] = 19)).check(), ParseError.BadTotalLen);
  assert.equal(syn((b) => (b[3] = 61)).check(), ParseError.BadTotalLen);
  assert.equal(syn(none, 59).check(), ParseError.BadTotalLen);
  const bad = syn((b) => (b[8] = 1));
  assert.equal(bad.check(), ParseError.None);
  assert.ok(!bad.verifyChecksum());
  assert.equal(bad.checkHeader(), ParseError.None);
  assert.equal(syn(none, 40).checkHeader(), ParseError.None);
});

Deno.test("Ipv4Packet with options: fields still readable", () => {
  const b = new Uint8Array(24 + 4);
  b.set(fixture("udp").subarray(0, 20));
  b[0] = 0x46;
  b[3] = 28;
  b[20] = 1; // NOP option x4
  b.fill(1, 20, 24);
  const ip = new Ipv4Packet().bind(b);
  ip.fillChecksum();
  assert.equal(ip.check(), ParseError.Ipv4Options);
  assert.ok(ip.verifyChecksum());
  assert.equal(ip.payloadOffset(), 24);
  assert.equal(ip.payloadLen(), 4);
  assert.match(ip.toString(), / options$/);
});

Deno.test("Ipv4Packet.toString names the error of a bad packet", () => {
  assert.equal(new Ipv4Packet().toString(), "IPv4 [truncated] buflen=0");
  assert.equal(syn((b) => (b[0] = 0x60)).toString(), "IPv4 [bad-version] buflen=60");
});

Deno.test("payloadLen of an embedded (truncated) header is clamped", () => {
  const b = fixture("tcpSyn");
  const ip = new Ipv4Packet().bind(b, 0, 28);
  assert.equal(ip.checkHeader(), ParseError.None);
  assert.equal(ip.check(), ParseError.BadTotalLen);
  assert.equal(ip.payloadLen(), 8);
});

Deno.test("parse error names are unique kebab-case", () => {
  const names = new Set<string>();
  for (let c = 0; c < PARSE_ERROR_COUNT; c++) {
    assert.match(parseErrorName(c), /^[a-z0-9]+(-[a-z0-9]+)*$/);
    names.add(parseErrorName(c));
  }
  assert.equal(names.size, PARSE_ERROR_COUNT);
  assert.equal(Object.keys(ParseError).length, PARSE_ERROR_COUNT);
  assert.equal(parseErrorName(ParseError.BadChecksum), "bad-checksum");
  assert.equal(parseErrorName(99), "unknown-99");
});
