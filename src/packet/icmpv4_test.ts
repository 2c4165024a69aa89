import assert from "node:assert/strict";
import { fixture } from "./_fixtures.ts";
import {
  ICMP_CODE_PORT_UNREACHABLE,
  ICMP_DEST_UNREACHABLE,
  ICMP_ECHO_REPLY,
  ICMP_ECHO_REQUEST,
  ICMP_PARAM_PROBLEM,
  ICMP_REDIRECT,
  ICMP_SOURCE_QUENCH,
  ICMP_TIME_EXCEEDED,
  Icmpv4Packet,
  isIcmpErrorType,
} from "./icmpv4.ts";
import { Ipv4Packet, PROTO_UDP } from "./ipv4.ts";
import { ParseError } from "./parse_error.ts";
import { UdpPacket } from "./udp.ts";

/** A captured ICMP packet with IPv4 and ICMP views bound. */
function icmp(name: "icmpEcho" | "icmpPortUnreachable") {
  const b = fixture(name);
  const ip = new Ipv4Packet().bind(b);
  return { b, ip, icmp: new Icmpv4Packet().bind(b, ip.payloadOffset(), ip.payloadLen()) };
}

Deno.test("Icmpv4Packet reads the captured echo request", () => {
  const { ip, icmp: m } = icmp("icmpEcho");
  assert.equal(ip.check(), ParseError.None);
  assert.equal(m.check(), ParseError.None);
  assert.equal(m.type(), ICMP_ECHO_REQUEST);
  assert.equal(m.code(), 0);
  assert.equal(m.checksum(), 0x37a8);
  assert.equal(m.ident(), 0xd4aa);
  assert.equal(m.seqNo(), 1);
  assert.ok(m.isEcho() && !m.isError());
  assert.equal(m.payloadLen(), 14);
  assert.equal(m.toString(), "ICMP type=8 code=0 echo id=54442 seq=1 len=14");
});

Deno.test("Icmpv4Packet reads the captured port unreachable and its embedded packet", () => {
  const { b, ip, icmp: m } = icmp("icmpPortUnreachable");
  assert.equal(ip.check(), ParseError.None);
  assert.ok(ip.verifyChecksum());
  assert.equal(ip.dscpEcn(), 0xc0);
  assert.equal(m.check(), ParseError.None);
  assert.equal(m.type(), ICMP_DEST_UNREACHABLE);
  assert.equal(m.code(), ICMP_CODE_PORT_UNREACHABLE);
  assert.ok(m.isError() && !m.isEcho());
  assert.equal(m.embeddedOffset(), 28);
  assert.equal(m.toString(), "ICMP type=3 code=3 error len=33");
  const inner = new Ipv4Packet().bind(b, m.embeddedOffset(), m.payloadLen());
  assert.equal(inner.check(), ParseError.None);
  assert.ok(inner.verifyChecksum());
  assert.equal(inner.protocol(), PROTO_UDP);
  assert.equal(inner.src(), ip.dst());
  const u = new UdpPacket().bind(b, inner.payloadOffset(), inner.payloadLen());
  assert.equal(u.check(), ParseError.None);
  assert.equal(u.srcPort(), 50000);
  assert.equal(u.dstPort(), 33434);
  assert.ok(u.verifyChecksum(inner.src(), inner.dst()));
});

Deno.test("Icmpv4Packet.check: truncated and bad checksum", () => {
  const { b, icmp: m } = icmp("icmpEcho");
  assert.equal(new Icmpv4Packet().bind(b, 20, 7).check(), ParseError.Truncated);
  assert.equal(new Icmpv4Packet().bind(b, 20, 7).toString(), "ICMP [truncated] buflen=7");
  m.setIdent(7);
  assert.equal(m.check(), ParseError.BadL4Checksum);
  m.fillChecksum();
  assert.equal(m.check(), ParseError.None);
  m.setSeqNo(9);
  m.setChecksum(0);
  m.fillChecksum();
  assert.equal(m.ident(), 7);
  assert.equal(m.seqNo(), 9);
  assert.ok(m.verifyChecksum());
});

Deno.test("ICMP error types", () => {
  for (
    const t of [
      ICMP_DEST_UNREACHABLE,
      ICMP_SOURCE_QUENCH,
      ICMP_REDIRECT,
      ICMP_TIME_EXCEEDED,
      ICMP_PARAM_PROBLEM,
    ]
  ) assert.ok(isIcmpErrorType(t));
  for (const t of [ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, 13, 14, 255]) assert.ok(!isIcmpErrorType(t));
});
