import assert from "node:assert/strict";
import { fixture } from "./_fixtures.ts";
import { Ipv4Packet } from "./ipv4.ts";
import { ParseError } from "./parse_error.ts";
import { UdpPacket } from "./udp.ts";

/** The captured datagram with IPv4 and UDP views bound. */
function udp(): { b: Uint8Array; ip: Ipv4Packet; udp: UdpPacket } {
  const b = fixture("udp");
  const ip = new Ipv4Packet().bind(b);
  return { b, ip, udp: new UdpPacket().bind(b, ip.payloadOffset(), ip.payloadLen()) };
}

Deno.test("UdpPacket reads the captured datagram", () => {
  const { b, ip, udp: u } = udp();
  assert.equal(ip.check(), ParseError.None);
  assert.equal(u.check(), ParseError.None);
  assert.equal(u.srcPort(), 40001);
  assert.equal(u.dstPort(), 53);
  assert.equal(u.length(), 25);
  assert.equal(u.checksum(), 0x1916);
  assert.equal(u.payloadOffset(), 28);
  assert.equal(u.payloadLen(), 17);
  const text = new TextDecoder().decode(b.subarray(u.payloadOffset(), 28 + u.payloadLen()));
  assert.equal(text, "knockgate-fixture");
  assert.ok(u.verifyChecksum(ip.src(), ip.dst()));
  assert.equal(u.toString(), "UDP 40001 > 53 len=17");
});

Deno.test("UdpPacket: checksum 0 means none; fill never stores 0", () => {
  const { ip, udp: u } = udp();
  u.setChecksum(0);
  assert.ok(u.verifyChecksum(ip.src(), ip.dst()));
  u.setSrcPort(9);
  u.fillChecksum(ip.src(), ip.dst());
  assert.ok(u.verifyChecksum(ip.src(), ip.dst()));
  assert.notEqual(u.checksum(), 0);
});

Deno.test("UdpPacket: a computed 0 is sent as 0xFFFF", () => {
  // Choose the data so that the sum is 0xFFFF: the checksum computes to 0.
  const { ip, udp: u } = udp();
  u.setChecksum(0);
  const b = u.buf;
  b[28] = b[29] = 0;
  u.fillChecksum(ip.src(), ip.dst());
  const c = u.checksum(); // ~sum; adding it to the data word makes the sum 0xFFFF
  b[28] = c >>> 8;
  b[29] = c & 0xff;
  u.fillChecksum(ip.src(), ip.dst());
  assert.equal(u.checksum(), 0xffff);
  assert.ok(u.verifyChecksum(ip.src(), ip.dst()));
});

Deno.test("UdpPacket.check errors and trailing bytes", () => {
  const { b } = udp();
  const u = new UdpPacket();
  assert.equal(u.bind(b, 20, 7).check(), ParseError.Truncated);
  assert.equal(u.bind(b, 20, 24).check(), ParseError.BadL4Len);
  b[25] = 7;
  assert.equal(u.bind(b, 20, 25).check(), ParseError.BadL4Len);
  assert.equal(u.toString(), "UDP [bad-l4-len] buflen=25");
  b[25] = 8; // shorter length field than the IP payload: fine, the rest is ignored
  assert.equal(u.check(), ParseError.None);
  assert.equal(u.payloadLen(), 0);
});
