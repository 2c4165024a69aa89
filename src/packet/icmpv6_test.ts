import assert from "node:assert/strict";
import { fixture6, fragmentedEcho } from "./_fixtures6.ts";
import {
  ICMPV6_CODE_PORT_UNREACHABLE,
  ICMPV6_DEST_UNREACHABLE,
  ICMPV6_ECHO_REPLY,
  ICMPV6_ECHO_REQUEST,
  ICMPV6_MLD2_REPORT,
  ICMPV6_NEIGHBOR_SOLICIT,
  ICMPV6_PACKET_TOO_BIG,
  ICMPV6_PARAM_PROBLEM,
  ICMPV6_TIME_EXCEEDED,
  Icmpv6Packet,
  isIcmpv6ErrorType,
  isMldType,
  isNdType,
  ND_HOP_LIMIT,
} from "./icmpv6.ts";
import { PROTO_UDP } from "./ipv4.ts";
import { Ipv6Packet, PROTO_ICMPV6 } from "./ipv6.ts";
import { buildIcmpv6, buildIcmpv6Error, buildIpv6Tcp } from "./ipv6_build.ts";
import { ParseError } from "./parse_error.ts";
import { UdpPacket } from "./udp.ts";

const ip = new Ipv6Packet();
const icmp = new Icmpv6Packet();

/** Binds `icmp` to the ICMPv6 message of `pkt` and checks it. */
function bindIcmp(pkt: Uint8Array): ParseError {
  assert.equal(ip.bind(pkt).check(), ParseError.None);
  assert.equal(ip.upperProtocol(), PROTO_ICMPV6);
  return icmp.bind(pkt, ip.upperOffset(), ip.upperLen()).check(ip.pseudoHeaderSum());
}

Deno.test("Icmpv6Packet reads the captured echo request", () => {
  const b = fixture6("icmpEcho");
  assert.equal(bindIcmp(b), ParseError.None);
  assert.equal(icmp.type(), ICMPV6_ECHO_REQUEST);
  assert.equal(icmp.code(), 0);
  assert.equal(icmp.checksum(), 0xfd48);
  assert.equal(icmp.ident(), 0x0e94);
  assert.equal(icmp.seqNo(), 1);
  assert.ok(icmp.isEcho() && !icmp.isError() && !icmp.isNeighbourDiscovery());
  assert.equal(icmp.payloadLen(), 16);
  assert.equal(icmp.toString(), "ICMPv6 type=128 code=0 echo id=3732 seq=1 len=16");
  icmp.fillChecksum(ip.pseudoHeaderSum());
  assert.equal(icmp.checksum(), 0xfd48);
  // Unlike ICMPv4 the checksum covers the addresses: another source fails it.
  b[23] ^= 2;
  assert.equal(icmp.check(ip.pseudoHeaderSum()), ParseError.BadL4Checksum);
  assert.equal(icmp.bind(b, 40, 7).check(0), ParseError.Truncated);
});

Deno.test("the port unreachable embeds the whole UDP datagram", () => {
  const b = fixture6("icmpPortUnreachable");
  assert.equal(bindIcmp(b), ParseError.None);
  assert.equal(icmp.type(), ICMPV6_DEST_UNREACHABLE);
  assert.equal(icmp.code(), ICMPV6_CODE_PORT_UNREACHABLE);
  assert.ok(icmp.isError());
  const inner = new Ipv6Packet().bind(b, icmp.embeddedOffset(), icmp.payloadLen());
  assert.equal(inner.check(), ParseError.None);
  assert.equal(inner.upperProtocol(), PROTO_UDP);
  const u = new UdpPacket().bind(b, inner.upperOffset(), inner.upperLen());
  assert.equal(u.srcPort(), 40001);
  assert.equal(u.dstPort(), 53);
  assert.ok(u.verifyChecksum6(inner.pseudoHeaderSum()));
  assert.equal(icmp.toString(), "ICMPv6 type=1 code=4 error len=65");
});

Deno.test("neighbour discovery and MLD are recognised", () => {
  const ns = fixture6("neighborSolicit");
  assert.equal(bindIcmp(ns), ParseError.None);
  assert.equal(ip.hopLimit(), ND_HOP_LIMIT);
  assert.equal(icmp.type(), ICMPV6_NEIGHBOR_SOLICIT);
  assert.ok(icmp.isNeighbourDiscovery() && !icmp.isMulticastListener() && !icmp.isError());
  assert.match(icmp.toString(), / nd len=24$/);
  const mld = fixture6("mld2Report");
  assert.equal(bindIcmp(mld), ParseError.None);
  assert.equal(icmp.type(), ICMPV6_MLD2_REPORT);
  assert.ok(icmp.isMulticastListener() && !icmp.isNeighbourDiscovery());
  for (let t = 0; t < 256; t++) {
    assert.equal(isNdType(t), t >= 133 && t <= 137, `${t}`);
    assert.equal(isMldType(t), t === 130 || t === 131 || t === 132 || t === 143, `${t}`);
    assert.equal(isIcmpv6ErrorType(t), t < 128, `${t}`);
  }
});

Deno.test("errors carry the MTU or the pointer; the quote stops at 1280 bytes", () => {
  const [f1] = fragmentedEcho();
  const big = buildIcmpv6Error({
    src: "2001:db8::fe",
    dst: "2001:db8::1",
    type: ICMPV6_PACKET_TOO_BIG,
    code: 0,
    rest: 1280,
    original: f1,
  });
  assert.equal(big.length, 1280);
  assert.equal(bindIcmp(big), ParseError.None);
  assert.equal(icmp.mtu(), 1280);
  assert.equal(icmp.toString(), "ICMPv6 type=2 code=0 error mtu=1280 len=1232");
  const inner = new Ipv6Packet().bind(big, icmp.embeddedOffset(), icmp.payloadLen());
  assert.equal(inner.check(), ParseError.BadTotalLen);
  assert.equal(inner.checkHeader(), ParseError.None);
  assert.ok(inner.isFragment());
  const syn = buildIpv6Tcp({ src: "2001:db8::1", dst: "2001:db8::2", srcPort: 1, dstPort: 2 });
  const pp = buildIcmpv6Error({
    src: "2001:db8::2",
    dst: "2001:db8::1",
    type: ICMPV6_PARAM_PROBLEM,
    code: 0,
    rest: 6,
    original: syn,
  });
  assert.equal(bindIcmp(pp), ParseError.None);
  assert.equal(icmp.pointer(), 6);
  assert.match(icmp.toString(), /error pointer=6/);
  const te = buildIcmpv6({
    src: "2001:db8::2",
    dst: "2001:db8::1",
    type: ICMPV6_TIME_EXCEEDED,
    body: syn,
  });
  assert.equal(bindIcmp(te), ParseError.None);
  assert.ok(icmp.isError());
});

Deno.test("setters and an echo reply", () => {
  const b = buildIcmpv6({
    src: "2001:db8::1",
    dst: "2001:db8::2",
    rest: 0x00070009,
    body: new Uint8Array(4),
  });
  assert.equal(bindIcmp(b), ParseError.None);
  assert.equal(icmp.ident(), 7);
  assert.equal(icmp.seqNo(), 9);
  icmp.setType(ICMPV6_ECHO_REPLY);
  icmp.setCode(0);
  icmp.setIdent(0x1234);
  icmp.setSeqNo(2);
  icmp.fillChecksum(ip.pseudoHeaderSum());
  assert.equal(icmp.check(ip.pseudoHeaderSum()), ParseError.None);
  assert.equal(icmp.toString(), "ICMPv6 type=129 code=0 echo id=4660 seq=2 len=4");
  icmp.setRest(1500);
  assert.equal(icmp.mtu(), 1500);
});
