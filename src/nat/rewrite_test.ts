import assert from "node:assert/strict";
import fc from "fast-check";
import {
  buildIcmpEcho,
  buildIcmpError,
  buildTcp,
  buildUdp,
  checksumAdd,
  checksumFold,
  fragment,
  ICMP_DEST_UNREACHABLE,
  ICMP_ECHO_REPLY,
  ICMP_ECHO_REQUEST,
  ICMP_TIME_EXCEEDED,
  Icmpv4Packet,
  Ipv4Packet,
  ParseError,
  parseIpv4,
  PROTO_ICMP,
  PROTO_TCP,
  PROTO_UDP,
  pseudoHeaderSum,
  TCP_SYN,
  TcpPacket,
  UdpPacket,
} from "../packet/mod.ts";
import { fixture } from "../packet/_fixtures.ts";
import {
  icmpErrorInnerOffset,
  rewriteDestination,
  rewriteIcmpErrorInner,
  rewriteIcmpErrorInnerDestination,
  rewriteIcmpErrorInnerSource,
  rewriteSource,
} from "./rewrite.ts";

const CLIENT = parseIpv4("203.0.113.5")!;
const WAN = parseIpv4("198.51.100.1")!;
const SERVER = parseIpv4("192.0.2.10")!;

const ip = new Ipv4Packet();
const tcp = new TcpPacket();
const udp = new UdpPacket();
const icmp = new Icmpv4Packet();

/**
 * Asserts by full recomputation that the IPv4 checksum and, for an
 * unfragmented packet, the L4 checksum verify.
 */
function assertChecksums(b: Uint8Array, off = 0): void {
  ip.bind(b, off, b.length - off);
  assert.equal(ip.check(), ParseError.None);
  assert.ok(ip.verifyChecksum(), "IPv4 header checksum");
  if (ip.isFragment()) return;
  const [po, pl] = [ip.payloadOffset(), ip.payloadLen()];
  switch (ip.protocol()) {
    case PROTO_TCP:
      assert.ok(tcp.bind(b, po, pl).verifyChecksum(ip.src(), ip.dst()), "TCP checksum");
      break;
    case PROTO_UDP:
      assert.ok(udp.bind(b, po, pl).verifyChecksum(ip.src(), ip.dst()), "UDP checksum");
      break;
    case PROTO_ICMP:
      assert.equal(icmp.bind(b, po, pl).check(), ParseError.None, "ICMP checksum");
  }
}

/** Reads the L4 source and destination ports (bytes 0..3 of the IPv4 payload). */
function ports(b: Uint8Array): [number, number] {
  const o = new Ipv4Packet().bind(b).payloadOffset();
  return [(b[o] << 8) | b[o + 1], (b[o + 2] << 8) | b[o + 3]];
}

Deno.test("DNAT then reverse gives the original TCP bytes back", () => {
  const orig = buildTcp({
    src: CLIENT,
    dst: WAN,
    srcPort: 40000,
    dstPort: 2222,
    flags: TCP_SYN,
    seq: 99,
    payload: new Uint8Array([1, 2, 3]),
  });
  const b = orig.slice();
  assert.ok(rewriteDestination(b, 0, SERVER, 22, false));
  assertChecksums(b);
  assert.equal(new Ipv4Packet().bind(b).dst(), SERVER);
  assert.deepEqual(ports(b), [40000, 22]);
  rewriteDestination(b, 0, WAN, 2222, false);
  assert.deepEqual(b, orig);
});

Deno.test("SNAT of the server's reply, at an offset inside a larger buffer", () => {
  const reply = buildUdp({
    src: SERVER,
    dst: CLIENT,
    srcPort: 53,
    dstPort: 40000,
    payload: new Uint8Array(9),
  });
  const b = new Uint8Array(reply.length + 16);
  b.set(reply, 10);
  rewriteSource(b, 10, WAN, 5353, false);
  assertChecksums(b.subarray(0, 10 + reply.length), 10);
  assert.equal(ip.src(), WAN);
  assert.deepEqual(ports(b.subarray(10)), [5353, 40000]);
  assert.deepEqual(b.subarray(0, 10), new Uint8Array(10));
});

Deno.test("rewrite of the kernel-captured packets verifies", () => {
  for (const name of ["tcpSyn", "udp", "icmpEcho"] as const) {
    const b = fixture(name);
    rewriteSource(b, 0, WAN, 61000, false);
    rewriteDestination(b, 0, SERVER, 8080, false);
    assertChecksums(b);
  }
});

Deno.test("UDP checksum 0 (none) stays 0", () => {
  const b = buildUdp({ src: CLIENT, dst: WAN, srcPort: 1, dstPort: 2, checksum: false });
  rewriteDestination(b, 0, SERVER, 3, false);
  assertChecksums(b);
  assert.equal(udp.bind(b, 20, 8).checksum(), 0);
  assert.deepEqual(ports(b), [1, 3]);
});

Deno.test("UDP: an adjusted checksum that comes out 0 is sent as 0xFFFF", () => {
  // Search small payloads for one whose rewritten checksum computes to 0.
  for (let v = 0; v < 0x10000; v++) {
    const payload = new Uint8Array([v >>> 8, v & 0xff]);
    const b = buildUdp({ src: CLIENT, dst: WAN, srcPort: 1, dstPort: 2, payload });
    rewriteDestination(b, 0, SERVER, 3, false);
    const c = udp.bind(b, 20, 10).checksum();
    assert.notEqual(c, 0);
    if (c === 0xffff) {
      assertChecksums(b);
      return;
    }
  }
  assert.fail("no payload gave a 0 checksum");
});

Deno.test("ICMP echo: the identifier is the port; no pseudo header", () => {
  const b = buildIcmpEcho({
    src: SERVER,
    dst: CLIENT,
    ident: 0x1234,
    seq: 1,
    payload: new Uint8Array(5),
  });
  rewriteSource(b, 0, WAN, 0x4321, false);
  assertChecksums(b);
  assert.equal(icmp.ident(), 0x4321);
  rewriteDestination(b, 0, SERVER, 0x1234, false);
  assertChecksums(b);
  assert.equal(icmp.ident(), 0x1234);
});

Deno.test("fragments: non-first ones change only the IP header; the datagram still verifies", () => {
  const payload = new Uint8Array(1200).map((_, i) => i * 13);
  const whole = buildUdp({
    src: CLIENT,
    dst: WAN,
    srcPort: 4000,
    dstPort: 5000,
    payload,
    ident: 7,
  });
  const frags = fragment(whole, 400);
  assert.ok(frags.length > 2);
  for (const f of frags) {
    const before = f.slice(20);
    assert.ok(rewriteDestination(f, 0, SERVER, 6000, false));
    assertChecksums(f);
    if (new Ipv4Packet().bind(f).fragOffset() > 0) assert.deepEqual(f.subarray(20), before);
  }
  // Reassemble and check the UDP checksum over the whole datagram.
  const data = new Uint8Array(whole.length - 20);
  for (const f of frags) data.set(f.subarray(20), new Ipv4Packet().bind(f).fragOffset());
  const u = new UdpPacket().bind(data, 0, data.length);
  assert.equal(u.dstPort(), 6000);
  assert.ok(u.verifyChecksum(CLIENT, SERVER));
});

Deno.test("a tiny first fragment (L4 header cut) is reported", () => {
  const pkt = buildTcp({
    src: CLIENT,
    dst: WAN,
    srcPort: 1,
    dstPort: 2,
    payload: new Uint8Array(40),
  });
  const [first, second] = fragment(pkt, 28); // 8 bytes of TCP in the first fragment
  assert.ok(!rewriteDestination(first, 0, SERVER, 3, false));
  assert.equal(first.length, 28);
  assertChecksums(first);
  assert.ok(rewriteDestination(second, 0, SERVER, 3, false));
});

/** Completes a partial (NEEDS_CSUM) checksum the way the kernel does. */
function completePartial(b: Uint8Array, csumAt: number, udpZeroFix: boolean): void {
  const v = new Ipv4Packet().bind(b);
  const sum = checksumFold(checksumAdd(0, b, v.payloadOffset(), v.off + v.totalLen()));
  let c = ~sum & 0xffff;
  if (udpZeroFix && c === 0) c = 0xffff;
  b[csumAt] = c >>> 8;
  b[csumAt + 1] = c & 0xff;
}

/** Replaces the L4 checksum by the non-inverted pseudo-header sum, as a NEEDS_CSUM packet has it. */
function makePartial(b: Uint8Array, proto: number, csumAt: number): void {
  const v = new Ipv4Packet().bind(b);
  const p = checksumFold(pseudoHeaderSum(v.src(), v.dst(), proto, v.payloadLen()));
  b[csumAt] = p >>> 8;
  b[csumAt + 1] = p & 0xff;
}

Deno.test("partial checksum (NEEDS_CSUM): address folded in, ports left to the kernel", () => {
  const cases = [
    {
      b: buildTcp({
        src: CLIENT,
        dst: WAN,
        srcPort: 40000,
        dstPort: 2222,
        payload: new Uint8Array(33),
      }),
      proto: PROTO_TCP,
      at: 36,
    },
    {
      b: buildUdp({
        src: CLIENT,
        dst: WAN,
        srcPort: 40000,
        dstPort: 2222,
        payload: new Uint8Array(7),
      }),
      proto: PROTO_UDP,
      at: 26,
    },
  ];
  for (const { b, proto, at } of cases) {
    makePartial(b, proto, at);
    rewriteDestination(b, 0, SERVER, 22, true);
    rewriteSource(b, 0, parseIpv4("203.0.113.99")!, 1024, true);
    // The field is still a pseudo-header sum: for the new addresses.
    const want = b.slice();
    makePartial(want, proto, at);
    assert.equal(((b[at] << 8) | b[at + 1]) % 0xffff, ((want[at] << 8) | want[at + 1]) % 0xffff);
    completePartial(b, at, proto === PROTO_UDP);
    assertChecksums(b);
    assert.deepEqual(ports(b), [1024, 22]);
  }
});

/** Builds a port unreachable from `SERVER` about `original`, quoting `keep` bytes. */
function errorAbout(original: Uint8Array, keep?: number, type = ICMP_DEST_UNREACHABLE): Uint8Array {
  return buildIcmpError({ src: SERVER, dst: CLIENT, type, code: 3, original, keep });
}

/** Checks all checksums of an ICMP error: outer IP, ICMP, inner IP header. */
function assertErrorChecksums(b: Uint8Array): void {
  assertChecksums(b);
  const inner = icmpErrorInnerOffset(b, 0);
  assert.ok(inner > 0);
  const v = new Ipv4Packet().bind(b, inner, b.length - inner);
  assert.equal(v.checkHeader(), ParseError.None);
  assert.ok(v.verifyChecksum(), "inner IPv4 checksum");
}

Deno.test("ICMP error (kernel-captured): inner UDP datagram fully verified after translation", () => {
  const b = fixture("icmpPortUnreachable");
  const orig = b.slice();
  // As if the probe had been DNATed: the client saw it sent to WAN:2222.
  rewriteSource(b, 0, WAN, 0, false);
  assert.ok(rewriteIcmpErrorInnerDestination(b, 0, WAN, 2222));
  assertErrorChecksums(b);
  const inner = icmpErrorInnerOffset(b, 0);
  const iv = new Ipv4Packet().bind(b, inner, b.length - inner);
  assert.equal(iv.check(), ParseError.None); // the kernel quoted the whole probe
  const u = new UdpPacket().bind(b, iv.payloadOffset(), iv.payloadLen());
  assert.equal(u.dstPort(), 2222);
  assert.ok(u.verifyChecksum(iv.src(), iv.dst()), "inner UDP checksum");
  // Undo.
  rewriteSource(b, 0, parseIpv4("192.0.2.1")!, 0, false);
  rewriteIcmpErrorInnerDestination(b, 0, parseIpv4("192.0.2.1")!, 33434);
  assert.deepEqual(b, orig);
});

Deno.test("ICMP error: reply-direction flow, outer dst and inner src translated", () => {
  // The appliance sent WAN:2222 > CLIENT:40000 (SNATed reply from SERVER:22); a
  // router answers time exceeded to WAN. Translate back to the server's view.
  const sent = buildTcp({ src: WAN, dst: CLIENT, srcPort: 2222, dstPort: 40000, seq: 5 });
  const b = buildIcmpError({
    src: "198.51.100.254",
    dst: WAN,
    type: ICMP_TIME_EXCEEDED,
    code: 0,
    original: sent,
  });
  assert.ok(rewriteDestination(b, 0, SERVER, 0, false));
  assert.ok(rewriteIcmpErrorInnerSource(b, 0, SERVER, 22));
  assertErrorChecksums(b);
  const inner = icmpErrorInnerOffset(b, 0);
  assert.equal(new Ipv4Packet().bind(b, inner, 28).src(), SERVER);
  assert.deepEqual([(b[inner + 20] << 8) | b[inner + 21], (b[inner + 22] << 8) | b[inner + 23]], [
    22,
    40000,
  ]);
});

Deno.test("ICMP error: inner TCP checksum adjusted only when quoted", () => {
  const orig = buildTcp({
    src: SERVER,
    dst: CLIENT,
    srcPort: 22,
    dstPort: 40000,
    payload: new Uint8Array(10),
  });
  const translated = orig.slice();
  rewriteSource(translated, 0, WAN, 2222, false);
  for (const keep of [28, 36, 37, 38, 40, orig.length]) {
    const b = errorAbout(orig, keep);
    assert.ok(rewriteIcmpErrorInnerSource(b, 0, WAN, 2222));
    assertErrorChecksums(b);
    const n = Math.min(keep, orig.length); // quoted bytes
    const quoted = b.subarray(28, 28 + n);
    if (keep >= 38) assert.deepEqual(quoted, translated.subarray(0, n));
    else {
      // The TCP checksum at 36..37 is not (fully) quoted: it is left alone.
      const m = Math.min(n, 36);
      assert.deepEqual(quoted.subarray(0, m), translated.subarray(0, m));
      assert.deepEqual(quoted.subarray(m), orig.subarray(m, n));
    }
  }
});

Deno.test("ICMP error about an echo: the inner identifier and ICMP checksum are translated", () => {
  const ping = buildIcmpEcho({
    src: SERVER,
    dst: CLIENT,
    ident: 77,
    seq: 3,
    payload: new Uint8Array(20),
  });
  const translated = ping.slice();
  rewriteSource(translated, 0, WAN, 1077, false);
  const b = errorAbout(ping, 1000, ICMP_TIME_EXCEEDED);
  assert.ok(rewriteIcmpErrorInner(b, 0, WAN, 1077, CLIENT, 1077));
  assertErrorChecksums(b);
  assert.deepEqual(b.subarray(28), translated);
});

Deno.test("not an ICMP error: inner rewrite changes nothing and says so", () => {
  for (
    const b of [
      buildIcmpEcho({ src: 1, dst: 2, type: ICMP_ECHO_REPLY, ident: 1, seq: 1 }),
      buildUdp({ src: 1, dst: 2, srcPort: 3, dstPort: 4 }),
      buildIcmpError({
        src: 1,
        dst: 2,
        type: 3,
        code: 3,
        original: new Uint8Array([0x45, 0, 0, 20]),
      }),
      buildIcmpError({
        src: 1,
        dst: 2,
        type: 3,
        code: 3,
        original: new Uint8Array(28).fill(0x4f, 0, 1),
      }),
    ]
  ) {
    const copy = b.slice();
    assert.equal(rewriteIcmpErrorInner(b, 0, 9, 9, 9, 9), false);
    assert.deepEqual(b, copy);
  }
});

// --- properties ------------------------------------------------------------

const u32 = fc.nat({ max: 0xffffffff });
const u16 = fc.nat({ max: 0xffff });

/** A random valid TCP, UDP (checksum or not) or ICMP echo packet. */
const packet = fc.record({
  kind: fc.constantFrom("tcp", "udp", "udp0", "echo"),
  src: u32,
  dst: u32,
  sp: u16,
  dp: u16,
  payload: fc.uint8Array({ maxLength: 64 }),
  ttl: fc.nat({ max: 255 }),
  echoType: fc.constantFrom(ICMP_ECHO_REQUEST, ICMP_ECHO_REPLY),
}).map((r) => {
  const base = { src: r.src, dst: r.dst, ttl: r.ttl, payload: r.payload };
  if (r.kind === "tcp") {
    return buildTcp({ ...base, srcPort: r.sp, dstPort: r.dp, seq: r.sp * r.dp });
  }
  if (r.kind === "echo") {
    return buildIcmpEcho({ ...base, type: r.echoType, ident: r.sp, seq: r.dp });
  }
  return buildUdp({ ...base, srcPort: r.sp, dstPort: r.dp, checksum: r.kind === "udp" });
});

Deno.test("property: random packets, random new address/port: checksums verify, reverse restores", () => {
  fc.assert(
    fc.property(packet, fc.boolean(), u32, u16, (orig, src, addr, port) => {
      const b = orig.slice();
      const v = new Ipv4Packet().bind(orig);
      const [oldAddr, oldPort] = src ? [v.src(), ports(orig)[0]] : [v.dst(), ports(orig)[1]];
      const rewrite = src ? rewriteSource : rewriteDestination;
      const isEcho = v.protocol() === PROTO_ICMP;
      assert.ok(rewrite(b, 0, addr, port, false));
      assertChecksums(b);
      // For an echo the "port" is the identifier at bytes 4..5.
      rewrite(b, 0, oldAddr, isEcho ? (orig[24] << 8) | orig[25] : oldPort, false);
      assert.deepEqual(b, orig);
    }),
    { numRuns: 1000 },
  );
});

Deno.test("property: ICMP error inner translation equals translating the quoted packet", () => {
  fc.assert(
    fc.property(
      packet,
      fc.nat({ max: 120 }),
      u32,
      u16,
      u32,
      u16,
      (orig, keepExtra, a1, p1, a2, p2) => {
        const isEcho = orig[9] === PROTO_ICMP;
        const keep = 28 + keepExtra;
        const translated = orig.slice();
        rewriteSource(translated, 0, a1, p1, false);
        rewriteDestination(translated, 0, a2, isEcho ? p1 : p2, false);
        const b = errorAbout(orig, keep);
        assert.ok(rewriteIcmpErrorInner(b, 0, a1, p1, a2, isEcho ? p1 : p2));
        assertErrorChecksums(b);
        const n = Math.min(keep, orig.length);
        const csumAt = orig[9] === PROTO_TCP ? 36 : orig[9] === PROTO_UDP ? 26 : 22;
        if (n >= csumAt + 2) assert.deepEqual(b.subarray(28), translated.subarray(0, n));
        else assert.deepEqual(b.subarray(28, 28 + 24), translated.subarray(0, 24));
      },
    ),
    { numRuns: 1000 },
  );
});

Deno.test("property: partial checksums completed by the kernel verify after any rewrite", () => {
  const l4 = fc.record({
    tcp: fc.boolean(),
    src: u32,
    dst: u32,
    sp: u16,
    dp: u16,
    payload: fc.uint8Array({ maxLength: 64 }),
  });
  fc.assert(
    fc.property(l4, fc.boolean(), u32, u16, (r, src, addr, port) => {
      const spec = { src: r.src, dst: r.dst, srcPort: r.sp, dstPort: r.dp, payload: r.payload };
      const b = r.tcp ? buildTcp(spec) : buildUdp(spec);
      const [proto, at] = r.tcp ? [PROTO_TCP, 36] : [PROTO_UDP, 26];
      makePartial(b, proto, at);
      (src ? rewriteSource : rewriteDestination)(b, 0, addr, port, true);
      completePartial(b, at, !r.tcp);
      assertChecksums(b);
    }),
    { numRuns: 1000 },
  );
});

Deno.test("an all-zero echo keeps checksum 0xFFFF through an identifier rewrite (RFC 1624 +0/-0)", () => {
  const pkt = buildIcmpEcho({ src: 0, dst: 0, type: 0, ident: 0, seq: 0 });
  assert.equal((pkt[22] << 8) | pkt[23], 0xffff);
  const b = pkt.slice();
  assert.ok(rewriteDestination(b, 0, 0, 0, false));
  assertChecksums(b);
  assert.deepEqual(b, pkt);
  assert.ok(rewriteSource(b, 0, 0, 0x1234, false));
  assert.ok(rewriteSource(b, 0, 0, 0, false));
  assert.deepEqual(b, pkt);
});
