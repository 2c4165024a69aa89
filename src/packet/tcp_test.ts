import assert from "node:assert/strict";
import { fixture } from "./_fixtures.ts";
import { Ipv4Packet } from "./ipv4.ts";
import { ParseError } from "./parse_error.ts";
import { formatTcpFlags, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TcpPacket } from "./tcp.ts";

/** The captured SYN with IPv4 and TCP views bound. */
function syn(): { b: Uint8Array; ip: Ipv4Packet; tcp: TcpPacket } {
  const b = fixture("tcpSyn");
  const ip = new Ipv4Packet().bind(b);
  const tcp = new TcpPacket().bind(b, ip.payloadOffset(), ip.payloadLen());
  return { b, ip, tcp };
}

Deno.test("TcpPacket reads the captured SYN and verifies its checksum", () => {
  const { ip, tcp } = syn();
  assert.equal(tcp.check(), ParseError.None);
  assert.equal(tcp.srcPort(), 60342);
  assert.equal(tcp.dstPort(), 22);
  assert.equal(tcp.seq(), 0x58b2cfd8);
  assert.equal(tcp.ack(), 0);
  assert.equal(tcp.headerLen(), 40);
  assert.equal(tcp.flags(), TCP_SYN);
  assert.equal(tcp.window(), 64240);
  assert.equal(tcp.checksum(), 0x9526);
  assert.equal(tcp.payloadOffset(), 60);
  assert.equal(tcp.payloadLen(), 0);
  assert.ok(tcp.verifyChecksum(ip.src(), ip.dst()));
  assert.ok(!tcp.verifyChecksum(ip.src(), ip.dst() + 1));
  assert.equal(tcp.toString(), "TCP 60342 > 22 [S] seq=1488113624 ack=0 win=64240 len=0");
});

Deno.test("TcpPacket setters and fillChecksum", () => {
  const { ip, tcp } = syn();
  tcp.setSrcPort(1);
  tcp.setDstPort(65535);
  assert.ok(!tcp.verifyChecksum(ip.src(), ip.dst()));
  tcp.fillChecksum(ip.src(), ip.dst());
  assert.ok(tcp.verifyChecksum(ip.src(), ip.dst()));
  assert.equal(tcp.srcPort(), 1);
  assert.equal(tcp.dstPort(), 65535);
  tcp.setChecksum(0x1234);
  assert.equal(tcp.checksum(), 0x1234);
});

Deno.test("TcpPacket.check errors", () => {
  const { b } = syn();
  const tcp = new TcpPacket();
  assert.equal(tcp.bind(b, 20, 19).check(), ParseError.Truncated);
  assert.equal(tcp.bind(b, 20, 39).check(), ParseError.BadL4HeaderLen); // options cut
  b[32] = 0x40; // data offset 4
  assert.equal(tcp.bind(b, 20, 40).check(), ParseError.BadL4HeaderLen);
  assert.equal(tcp.toString(), "TCP [bad-l4-header-len] buflen=40");
  b[32] = 0x50;
  assert.equal(tcp.check(), ParseError.None);
  assert.equal(tcp.payloadLen(), 20);
});

Deno.test("formatTcpFlags", () => {
  assert.equal(formatTcpFlags(TCP_SYN | TCP_ACK), "SA");
  assert.equal(formatTcpFlags(TCP_FIN | TCP_PSH | TCP_ACK), "FPA");
  assert.equal(formatTcpFlags(TCP_RST), "R");
  assert.equal(formatTcpFlags(0), ".");
  assert.equal(formatTcpFlags(0xff), "FSRPAUEC");
});

Deno.test("TcpPacket options: window scale, SACK permitted, SACK right edge", () => {
  const { tcp } = syn(); // the captured SYN: MSS, SACK permitted, timestamps, NOP, window scale 10
  assert.equal(tcp.windowScale(), 10);
  assert.equal(tcp.sackPermitted(), true);
  assert.equal(tcp.sackRightEdge(5), 5, "no SACK blocks");
  // NOP NOP SACK with two blocks; the second right edge wraps past 2^32.
  const b = new Uint8Array(20 + 20);
  b[12] = 10 << 4;
  b.set([1, 1, 5, 18], 20);
  const v = new DataView(b.buffer);
  v.setUint32(24, 0xffffff40);
  v.setUint32(28, 0xffffff80);
  v.setUint32(32, 0xfffffff0);
  v.setUint32(36, 0x10);
  const t = new TcpPacket().bind(b);
  assert.equal(t.sackRightEdge(0xffffff00), 0x10);
  assert.equal(t.sackRightEdge(5), 0x10, "edges before the ack are passed over");
  assert.equal(t.windowScale(), -1);
  // A truncated option ends the walk.
  b.set([1, 1, 5, 40], 20);
  assert.equal(t.sackRightEdge(150), 150);
  // Window scale above 14 is taken as 14 (RFC 7323 §2.3).
  b.set([3, 3, 20, 0], 20);
  assert.equal(t.windowScale(), 14);
});
