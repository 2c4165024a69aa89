import assert from "node:assert/strict";
import { fixture6, fragmentedEcho } from "./_fixtures6.ts";
import { PROTO_TCP, PROTO_UDP } from "./ipv4.ts";
import {
  IPV6_EXT_AH,
  IPV6_EXT_DSTOPTS,
  IPV6_EXT_FRAGMENT,
  IPV6_EXT_HOPOPTS,
  IPV6_EXT_ROUTER_ALERT,
  IPV6_EXT_ROUTING,
  Ipv6Packet,
  PROTO_ESP,
  PROTO_FRAGMENT,
  PROTO_HOPOPTS,
  PROTO_ICMPV6,
  PROTO_NONE,
} from "./ipv6.ts";
import {
  authHeader,
  buildIpv6,
  buildIpv6Tcp,
  buildIpv6Udp,
  destOptionsHeader,
  fragment6,
  fragmentHeader,
  hopByHopHeader,
  type Ipv6ExtHeader,
  routingHeader,
} from "./ipv6_build.ts";
import { formatIpv6, parseIpv6 } from "./ipv6_address.ts";
import { ParseError, parseErrorName } from "./parse_error.ts";
import { TCP_SYN, TcpPacket } from "./tcp.ts";
import { UdpPacket } from "./udp.ts";

const A = "2001:db8::1", B = "2001:db8::2";
const ip = new Ipv6Packet();

/** Parses `pkt` and returns the error's name, for readable assertions. */
function verdict(pkt: Uint8Array): string {
  return parseErrorName(ip.bind(pkt).check());
}

function udpWith(ext: Ipv6ExtHeader[]): Uint8Array {
  return buildIpv6Udp({
    src: A,
    dst: B,
    srcPort: 5000,
    dstPort: 53,
    ext,
    payload: new Uint8Array(4),
  });
}

Deno.test("Ipv6Packet reads the captured SYN", () => {
  const b = fixture6("tcpSyn");
  assert.equal(ip.bind(b).check(), ParseError.None);
  assert.equal(ip.version(), 6);
  assert.equal(ip.trafficClass(), 0);
  assert.equal(ip.flowLabel(), 0x4e46f);
  assert.equal(ip.payloadLen(), 40);
  assert.equal(ip.nextHeader(), PROTO_TCP);
  assert.equal(ip.hopLimit(), 64);
  assert.equal(ip.srcWord(0), 0x20010db8);
  assert.equal(ip.srcWord(3), 1);
  assert.equal(ip.dstWord(3), 2);
  const w = new Uint32Array(4);
  ip.readDst(w);
  assert.equal(formatIpv6(w), B);
  assert.equal(ip.upperProtocol(), PROTO_TCP);
  assert.equal(ip.upperOffset(), 40);
  assert.equal(ip.upperLen(), 40);
  assert.equal(ip.extHeaderCount(), 0);
  assert.equal(ip.extHeaderLen(), 0);
  assert.ok(!ip.isFragment() && !ip.hasFragmentHeader());
  assert.equal(ip.toString(), "IPv6 2001:db8::1 > 2001:db8::2 next=6 len=40 hlim=64");
  const tcp = new TcpPacket().bind(b, ip.upperOffset(), ip.upperLen());
  assert.equal(tcp.check(), ParseError.None);
  assert.ok(tcp.verifyChecksum6(ip.pseudoHeaderSum()));
  assert.equal(tcp.flags(), TCP_SYN);
  assert.equal(tcp.srcPort(), 40000);
  b[b.length - 1] ^= 1;
  assert.ok(!tcp.verifyChecksum6(ip.pseudoHeaderSum()));
});

Deno.test("the kernel's RST and UDP verify with the IPv6 pseudo header", () => {
  for (const name of ["tcpRst", "udp"] as const) {
    const b = fixture6(name);
    assert.equal(ip.bind(b).check(), ParseError.None, name);
    const sum = ip.pseudoHeaderSum();
    if (name === "udp") {
      const u = new UdpPacket().bind(b, ip.upperOffset(), ip.upperLen());
      assert.equal(u.check(), ParseError.None);
      assert.ok(u.verifyChecksum6(sum));
      assert.equal(u.dstPort(), 53);
      u.fillChecksum6(sum);
      assert.equal(u.checksum(), 0x41a5); // as the kernel computed it
      assert.equal(u.check6(), ParseError.None);
      u.setChecksum(0); // fine over IPv4, never over IPv6 (RFC 8200 §8.1)
      assert.ok(u.verifyChecksum(1, 2));
      assert.ok(!u.verifyChecksum6(sum));
      assert.equal(u.check(), ParseError.None);
      assert.equal(u.check6(), ParseError.Ipv6UdpZeroChecksum);
    } else {
      const t = new TcpPacket().bind(b, ip.upperOffset(), ip.upperLen());
      assert.ok(t.verifyChecksum6(sum));
      t.fillChecksum6(sum);
      assert.equal(t.checksum(), 0xb76b);
    }
  }
});

Deno.test("Ipv6Packet walks the MLD report's hop-by-hop header with router alert", () => {
  const b = fixture6("mld2Report");
  assert.equal(ip.bind(b).check(), ParseError.None);
  assert.equal(ip.nextHeader(), PROTO_HOPOPTS);
  assert.equal(ip.hopLimit(), 1);
  assert.equal(ip.upperProtocol(), PROTO_ICMPV6);
  assert.equal(ip.upperOffset(), 48);
  assert.equal(ip.upperLen(), 48);
  assert.equal(ip.extHeaderCount(), 1);
  assert.equal(ip.extFlags(), IPV6_EXT_HOPOPTS | IPV6_EXT_ROUTER_ALERT);
  assert.match(
    ip.toString(),
    /^IPv6 fe80::ca2:c6ff:fed0:9edf > ff02::16 next=0 .* ext=hbh,ra upper=58$/,
  );
});

Deno.test("Ipv6Packet reads both captured fragments", () => {
  const [f1, f2] = fragmentedEcho();
  assert.equal(ip.bind(f1).check(), ParseError.None);
  assert.ok(ip.isFragment() && ip.hasFragmentHeader() && ip.moreFragments());
  assert.equal(ip.fragOffset(), 0);
  assert.equal(ip.fragIdent(), 0x9a32bc80);
  assert.equal(ip.upperProtocol(), PROTO_ICMPV6);
  assert.equal(ip.upperOffset(), 48);
  assert.equal(ip.upperLen(), 1232);
  assert.equal(ip.extFlags(), IPV6_EXT_FRAGMENT);
  assert.ok(ip.toString().endsWith("ext=frag upper=58 frag=0+ id=0x9a32bc80"));
  assert.equal(ip.bind(f2).check(), ParseError.None);
  assert.ok(ip.isFragment() && !ip.moreFragments());
  assert.equal(ip.fragOffset(), 1232);
  assert.equal(ip.fragIdent(), 0x9a32bc80);
  assert.equal(ip.upperProtocol(), PROTO_ICMPV6); // the fragment header's next header
  assert.equal(ip.upperOffset(), 48);
  assert.equal(ip.upperLen(), 176);
});

Deno.test("fragment6 cuts like the kernel did", () => {
  const [f1, f2] = fragmentedEcho();
  const whole = buildIpv6({
    src: A,
    dst: B,
    flowLabel: 0x7ecf2,
    proto: PROTO_ICMPV6,
    upper: new Uint8Array([...f1.subarray(48), ...f2.subarray(48)]),
  });
  const [g1, g2] = fragment6(whole, 1280, 0x9a32bc80);
  assert.deepEqual(g1, f1);
  assert.deepEqual(g2, f2);
});

Deno.test("Ipv6Packet works at an offset and ignores trailing bytes", () => {
  const pkt = fixture6("udp");
  const b = new Uint8Array(10 + pkt.length + 7);
  b.set(pkt, 10);
  assert.equal(ip.bind(b, 10, pkt.length + 7).check(), ParseError.None);
  assert.equal(ip.upperOffset(), 50);
  assert.equal(ip.upperLen(), 25);
  assert.equal(ip.srcOffset(), 18);
  assert.equal(ip.dstOffset(), 34);
});

Deno.test("Ipv6Packet refuses a short buffer, another version and a payload past the end", () => {
  const b = fixture6("udp");
  assert.equal(ip.bind(b, 0, 39).check(), ParseError.Truncated);
  assert.equal(ip.bind(b, 0, b.length - 1).check(), ParseError.BadTotalLen);
  const v4 = fixture6("udp");
  v4[0] = 0x45;
  assert.equal(ip.bind(v4).check(), ParseError.BadVersion);
  assert.match(ip.toString(), /^IPv6 \[bad-version\]/);
});

Deno.test("the walk passes destination options, routing with no segments left, AH", () => {
  // Router alert's 2 bytes matter in hop-by-hop only; elsewhere 5 is an unknown skippable option.
  assert.equal(verdict(udpWith([destOptionsHeader(new Uint8Array([5, 4, 0, 0, 0, 0]))])), "none");
  assert.equal(ip.extFlags(), IPV6_EXT_DSTOPTS);
  const pkt = udpWith([
    hopByHopHeader(),
    destOptionsHeader(new Uint8Array([0x1e, 2, 0xab, 0xcd])), // an unknown skippable option
    routingHeader(2, 0, [B]),
    fragmentHeader(0, false, 7), // atomic: RFC 6946 says process it as a whole packet
    authHeader(0x1234, 1),
    destOptionsHeader(),
  ]);
  assert.equal(verdict(pkt), "none");
  assert.equal(ip.upperProtocol(), PROTO_UDP);
  assert.equal(ip.extHeaderCount(), 6);
  assert.equal(ip.extHeaderLen(), 8 + 8 + 24 + 8 + 24 + 8);
  assert.equal(ip.upperOffset(), 40 + ip.extHeaderLen());
  assert.equal(ip.upperLen(), 12);
  assert.equal(
    ip.extFlags(),
    IPV6_EXT_HOPOPTS | IPV6_EXT_DSTOPTS | IPV6_EXT_ROUTING | IPV6_EXT_FRAGMENT | IPV6_EXT_AH,
  );
  assert.ok(ip.hasFragmentHeader() && !ip.isFragment());
  const u = new UdpPacket().bind(pkt, ip.upperOffset(), ip.upperLen());
  assert.ok(u.verifyChecksum6(ip.pseudoHeaderSum()));
});

Deno.test("ESP and No Next Header end the walk", () => {
  const esp = buildIpv6({
    src: A,
    dst: B,
    ext: [destOptionsHeader()],
    proto: PROTO_ESP,
    upper: new Uint8Array(16),
  });
  assert.equal(verdict(esp), "none");
  assert.equal(ip.upperProtocol(), PROTO_ESP);
  assert.equal(ip.upperOffset(), 48);
  const none = buildIpv6({ src: A, dst: B, proto: PROTO_NONE, upper: new Uint8Array(0) });
  assert.equal(verdict(none), "none");
  assert.equal(ip.upperProtocol(), PROTO_NONE);
  assert.equal(ip.upperLen(), 0);
});

Deno.test("the walk refuses what a border firewall should", () => {
  const cases: [string, Ipv6ExtHeader[]][] = [
    ["ipv6-routing-type", [routingHeader(0, 0, [B])]],
    ["ipv6-routing-type", [routingHeader(0, 1, [B])]],
    ["ipv6-routing-type", [routingHeader(1, 0, [B])]],
    ["ipv6-routing-type", [routingHeader(3, 0, [B])]],
    ["ipv6-routing-type", [routingHeader(4, 0, [B])]],
    ["ipv6-routing-segments-left", [routingHeader(200, 1, [B])]],
    ["ipv6-routing-type", [routingHeader(4, 1, [B])]],
    ["ipv6-routing-segments-left", [routingHeader(2, 1, [B])]],
    ["ipv6-hop-by-hop-not-first", [destOptionsHeader(), hopByHopHeader()]],
    ["ipv6-ext-repeated", [routingHeader(2, 0, [B]), routingHeader(2, 0, [B])]],
    ["ipv6-ext-repeated", [fragmentHeader(0, false, 1), fragmentHeader(0, false, 2)]],
    ["ipv6-ext-repeated", [authHeader(1, 1), authHeader(1, 2)]],
    ["ipv6-ext-repeated", [destOptionsHeader(), destOptionsHeader(), destOptionsHeader()]],
    ["ipv6-bad-option", [hopByHopHeader(new Uint8Array([0xc2, 4, 0, 1, 0, 0]))]], // jumbo
    ["ipv6-bad-option", [destOptionsHeader(new Uint8Array([0x5e, 0]))]], // 01: discard
    ["ipv6-bad-option", [destOptionsHeader(new Uint8Array([0x9e, 0]))]], // 10: discard, ICMP
    ["ipv6-bad-option", [hopByHopHeader(new Uint8Array([0xde, 0]))]], // 11: discard, ICMP
    ["ipv6-bad-option", [hopByHopHeader(new Uint8Array([5, 4, 0, 0, 0, 0]))]], // RA of 4 bytes
    ["ipv6-bad-option", [destOptionsHeader(new Uint8Array([1, 1, 7]))]], // PadN with data
    ["ipv6-bad-option", [destOptionsHeader(new Uint8Array([1, 8, 0, 0, 0, 0, 0, 0, 0, 0]))]],
    ["ipv6-bad-option", [destOptionsHeader(new Uint8Array(8).fill(0))]], // 8 x Pad1 + PadN
    ["ipv6-bad-option", [hopByHopHeader(new Uint8Array([0x1e, 9]))]], // runs past the header
    ["ipv6-bad-option", [destOptionsHeader(new Uint8Array(Array(9).fill([0x1e, 0]).flat()))]],
  ];
  for (const [want, ext] of cases) {
    assert.equal(verdict(udpWith(ext)), want, ext.map((h) => h.proto).join(","));
  }
  // Six headers is the longest chain the repeat rules allow; one more of any kind repeats.
  const six = [hopByHopHeader(), destOptionsHeader(), routingHeader(2, 0, [B])];
  six.push(fragmentHeader(0, false, 1), authHeader(1, 1), destOptionsHeader());
  assert.equal(verdict(udpWith(six)), "none");
  for (const extra of [destOptionsHeader(), routingHeader(2, 0), authHeader(2, 2)]) {
    assert.equal(verdict(udpWith([...six, extra])), "ipv6-ext-repeated");
  }
  // A 1024-byte destination options header (eight options) fits; after hop-by-hop it is past 1 KiB.
  const opts = new Uint8Array(1022);
  for (let i = 0; i < 8; i++) opts[128 * i] = 0x1e, opts[128 * i + 1] = i < 7 ? 126 : 124;
  assert.equal(verdict(udpWith([destOptionsHeader(opts)])), "none");
  assert.equal(
    verdict(udpWith([hopByHopHeader(), destOptionsHeader(opts)])),
    "ipv6-ext-chain-too-long",
  );
});

Deno.test("a header the walk does not know ends it as the upper layer", () => {
  const hdrs = new Uint8Array(7 * 8);
  const pkt = buildIpv6({ src: A, dst: B, proto: PROTO_NONE, upper: hdrs });
  pkt[6] = PROTO_HOPOPTS;
  // hbh > dst > routing (type 2, segments left 0) > dst > AH (length 0: 8 bytes) > atomic
  // fragment > 253 (experimental, RFC 3692), each header 8 bytes with no options.
  const kinds = [60, 43, 60, 51, 44, 253];
  for (let i = 0; i < kinds.length; i++) pkt[40 + 8 * i] = kinds[i];
  pkt[40 + 2 * 8 + 2] = 2;
  assert.equal(verdict(pkt), "none");
  assert.equal(ip.upperProtocol(), 253);
  assert.equal(ip.extHeaderCount(), 6);
  assert.equal(ip.upperOffset(), 88);
  assert.equal(ip.upperLen(), 8);
});

Deno.test("the walk refuses headers past the payload", () => {
  const pkt = udpWith([destOptionsHeader()]);
  pkt[41] = 5; // 48 bytes of options in a 60-byte payload
  assert.equal(verdict(pkt), "ipv6-ext-truncated");
  const bare = buildIpv6({ src: A, dst: B, proto: PROTO_HOPOPTS, upper: new Uint8Array(6) });
  assert.equal(verdict(bare), "ipv6-ext-truncated");
  // An AH length counts 4-byte units minus 2.
  const ah = udpWith([authHeader(1, 1)]);
  ah[41] = 20;
  assert.equal(verdict(ah), "ipv6-ext-truncated");
});

Deno.test("the walk checks fragment lengths and the first fragment's chain", () => {
  const payload = new Uint8Array(100);
  // M set and 13 bytes of data: not a multiple of 8.
  const odd = buildIpv6({
    src: A,
    dst: B,
    ext: [fragmentHeader(8, true, 1)],
    proto: PROTO_UDP,
    upper: payload.subarray(0, 13),
  });
  assert.equal(verdict(odd), "ipv6-bad-fragment");
  const last = buildIpv6({
    src: A,
    dst: B,
    ext: [fragmentHeader(8, false, 1)],
    proto: PROTO_UDP,
    upper: payload.subarray(0, 13),
  });
  assert.equal(verdict(last), "none");
  assert.equal(ip.fragOffset(), 8);
  const past = buildIpv6({
    src: A,
    dst: B,
    ext: [fragmentHeader(65528, false, 1)],
    proto: PROTO_UDP,
    upper: payload.subarray(0, 16),
  });
  assert.equal(verdict(past), "ipv6-bad-fragment");
  // A first fragment that stops inside the TCP header (RFC 7112).
  const tiny = buildIpv6({
    src: A,
    dst: B,
    ext: [fragmentHeader(0, true, 1)],
    proto: PROTO_TCP,
    upper: payload.subarray(0, 16),
  });
  assert.equal(verdict(tiny), "ipv6-bad-fragment");
  // ... or before the end of the chain, with a destination options header cut off.
  const cut = buildIpv6({
    src: A,
    dst: B,
    ext: [fragmentHeader(0, true, 1)],
    proto: 60,
    upper: payload.subarray(0, 8),
  });
  cut[49] = 3;
  assert.equal(verdict(cut), "ipv6-ext-truncated");
  // A later fragment is not walked past its fragment header: its data is no header.
  const later = buildIpv6({
    src: A,
    dst: B,
    ext: [fragmentHeader(1232, false, 9)],
    proto: 60,
    upper: new Uint8Array([PROTO_FRAGMENT, 255, 0, 0]),
  });
  assert.equal(verdict(later), "none");
  assert.equal(ip.upperProtocol(), 60);
});

Deno.test("checkHeader walks a quoted packet within the bytes present", () => {
  const b = fixture6("icmpPortUnreachable");
  assert.equal(ip.bind(b).check(), ParseError.None);
  const inner = new Ipv6Packet().bind(b, ip.upperOffset() + 8, ip.upperLen() - 8);
  assert.equal(inner.check(), ParseError.None);
  assert.equal(inner.upperProtocol(), PROTO_UDP);
  // Quoted only as far as 4 bytes into UDP: check() refuses, checkHeader() reads on.
  inner.bind(b, ip.upperOffset() + 8, 44);
  assert.equal(inner.check(), ParseError.BadTotalLen);
  assert.equal(inner.checkHeader(), ParseError.None);
  assert.equal(inner.upperOffset(), ip.upperOffset() + 8 + 40);
  assert.equal(inner.upperLen(), 4);
  // A quoted first fragment cut short is no fragment error.
  const [f1] = fragmentedEcho();
  assert.equal(inner.bind(f1, 0, 100).checkHeader(), ParseError.None);
  assert.ok(inner.isFragment());
  assert.equal(inner.upperLen(), 52);
});

Deno.test("setters write the header fields", () => {
  const b = buildIpv6Tcp({ src: A, dst: B, srcPort: 1, dstPort: 2 });
  ip.bind(b);
  ip.setSrc(parseIpv6("2001:db8:ffff::7")!);
  ip.setDst(parseIpv6("::ffff:192.0.2.1")!);
  ip.setHopLimit(3);
  assert.equal(ip.check(), ParseError.None);
  assert.equal(ip.toString(), "IPv6 2001:db8:ffff::7 > ::ffff:192.0.2.1 next=6 len=20 hlim=3");
  ip.setPayloadLen(21);
  assert.equal(ip.check(), ParseError.BadTotalLen);
});
