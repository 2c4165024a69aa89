import assert from "node:assert/strict";
import {
  buildIcmpv6,
  buildIpv6Tcp,
  buildIpv6Udp,
  checksumFold,
  ICMPV6_ECHO_REQUEST,
  Icmpv6Packet,
  Ipv6Packet,
  parseIpv6,
  PROTO_TCP,
  read16,
  TCP_ACK,
  TCP_CHECKSUM,
  TcpPacket,
  UdpPacket,
  write16,
} from "../packet/mod.ts";
import { IPV6_DST_AT, IPV6_SRC_AT, rewrite6 } from "./rewrite6.ts";

const A = "2001:db8:203::10", W = "2001:db8:198::1", S = "2001:db8:192::12";

function upper(pkt: Uint8Array) {
  const ip = new Ipv6Packet().bind(pkt);
  assert.equal(ip.check(), 0);
  return ip;
}

Deno.test("NAT66 rewrite keeps TCP, UDP and ICMPv6 checksums valid", () => {
  const tcp = buildIpv6Tcp({ src: A, dst: W, srcPort: 40000, dstPort: 52201, flags: TCP_ACK });
  let ip = upper(tcp);
  assert.ok(
    rewrite6(
      tcp,
      0,
      IPV6_DST_AT,
      parseIpv6(S)!,
      0,
      8080,
      6,
      ip.upperOffset(),
      ip.upperLen(),
      false,
    ),
  );
  ip = upper(tcp);
  const t = new TcpPacket().bind(tcp, ip.upperOffset(), ip.upperLen());
  assert.ok(t.verifyChecksum6(ip.pseudoHeaderSum()));
  assert.equal(t.dstPort(), 8080);

  const udp = buildIpv6Udp({
    src: S,
    dst: A,
    srcPort: 8080,
    dstPort: 40000,
    payload: new Uint8Array(33),
  });
  ip = upper(udp);
  assert.ok(
    rewrite6(
      udp,
      0,
      IPV6_SRC_AT,
      parseIpv6(W)!,
      0,
      52201,
      17,
      ip.upperOffset(),
      ip.upperLen(),
      false,
    ),
  );
  ip = upper(udp);
  const u = new UdpPacket().bind(udp, ip.upperOffset(), ip.upperLen());
  assert.ok(u.verifyChecksum6(ip.pseudoHeaderSum()));
  assert.equal(u.srcPort(), 52201);

  const echo = buildIcmpv6({ src: S, dst: A, type: ICMPV6_ECHO_REQUEST, rest: 0x12340001 });
  ip = upper(echo);
  assert.ok(
    rewrite6(
      echo,
      0,
      IPV6_SRC_AT,
      parseIpv6(W)!,
      0,
      0x4321,
      58,
      ip.upperOffset(),
      ip.upperLen(),
      false,
    ),
  );
  ip = upper(echo);
  const m = new Icmpv6Packet().bind(echo, ip.upperOffset(), ip.upperLen());
  assert.ok(m.verifyChecksum(ip.pseudoHeaderSum()));
  assert.equal(m.ident(), 0x4321);
});

Deno.test("a NEEDS_CSUM segment keeps the pseudo-header sum of its new addresses", () => {
  const pkt = buildIpv6Tcp({ src: A, dst: W, srcPort: 40000, dstPort: 52201, flags: TCP_ACK });
  let ip = upper(pkt);
  const at = ip.upperOffset() + TCP_CHECKSUM;
  // The kernel's partial checksum: the folded, not inverted, pseudo-header sum.
  write16(pkt, at, checksumFold(ip.pseudoHeaderSum()));
  assert.ok(
    rewrite6(
      pkt,
      0,
      IPV6_DST_AT,
      parseIpv6(S)!,
      0,
      8080,
      PROTO_TCP,
      ip.upperOffset(),
      ip.upperLen(),
      true,
    ),
  );
  ip = upper(pkt);
  assert.equal(read16(pkt, at), checksumFold(ip.pseudoHeaderSum()));
});

Deno.test("a header cut short is refused; a later fragment has only its addresses rewritten", () => {
  const pkt = buildIpv6Tcp({ src: A, dst: W, srcPort: 1, dstPort: 2, flags: TCP_ACK });
  assert.equal(rewrite6(pkt, 0, IPV6_DST_AT, parseIpv6(S)!, 0, 3, PROTO_TCP, 40, 10, false), false);
  const frag = pkt.slice();
  assert.ok(rewrite6(frag, 0, IPV6_DST_AT, parseIpv6(S)!, 0, 3, PROTO_TCP, 40, 0, false));
  assert.deepEqual(frag.subarray(40), pkt.subarray(40), "nothing past the header changed");
});
