import assert from "node:assert/strict";
import fc from "fast-check";
import { fixture6, FIXTURE6_HEX, fragmentedEcho } from "./_fixtures6.ts";
import { Icmpv6Packet } from "./icmpv6.ts";
import { PROTO_TCP, PROTO_UDP } from "./ipv4.ts";
import {
  IPV6_HEADER_LEN,
  IPV6_MAX_EXT_BYTES,
  Ipv6Packet,
  PROTO_ESP,
  PROTO_ICMPV6,
  PROTO_NONE,
} from "./ipv6.ts";
import {
  authHeader,
  buildIpv6,
  destOptionsHeader,
  fragmentHeader,
  hopByHopHeader,
  type Ipv6ExtHeader,
  routingHeader,
} from "./ipv6_build.ts";
import { PARSE_ERROR_COUNT, ParseError, parseErrorName } from "./parse_error.ts";
import { TcpPacket } from "./tcp.ts";
import { UdpPacket } from "./udp.ts";

const ip = new Ipv6Packet();
const tcp = new TcpPacket();
const udp = new UdpPacket();
const icmp = new Icmpv6Packet();

/** The invariants of a walk that returned `None`, for `check()` (`whole`) or `checkHeader()`. */
function assertConsistent(off: number, len: number, whole: boolean): void {
  const end = whole ? off + IPV6_HEADER_LEN + ip.payloadLen() : off + len;
  assert.ok(ip.upperOffset() >= off + IPV6_HEADER_LEN);
  assert.ok(ip.upperOffset() <= end || (!whole && ip.upperLen() === 0));
  assert.ok(ip.upperOffset() + ip.upperLen() <= off + len);
  if (whole) assert.equal(ip.upperOffset() + ip.upperLen(), end);
  assert.equal(ip.extHeaderLen(), ip.upperOffset() - off - IPV6_HEADER_LEN);
  assert.ok(ip.extHeaderLen() <= IPV6_MAX_EXT_BYTES);
  assert.ok(ip.extHeaderCount() <= 6);
  assert.equal(ip.extHeaderCount() === 0, ip.extFlags() === 0);
  if (!ip.hasFragmentHeader()) assert.ok(!ip.isFragment() && ip.fragOffset() === 0);
  if (ip.isFragment()) assert.ok(ip.fragOffset() > 0 || ip.moreFragments());
  assert.ok(![0, 43, 44, 51, 60].includes(ip.upperProtocol()) || ip.fragOffset() > 0);
}

/** Calls every getter; asserts a valid walk reads only inside the view. */
function exercise(b: Uint8Array, off: number, len: number): void {
  for (const whole of [true, false]) {
    ip.bind(b, off, len);
    const e = whole ? ip.check() : ip.checkHeader();
    assert.ok(e >= 0 && e < PARSE_ERROR_COUNT, `${e}`);
    const fields = [
      ip.version(),
      ip.trafficClass(),
      ip.flowLabel(),
      ip.payloadLen(),
      ip.nextHeader(),
      ip.hopLimit(),
      ip.srcWord(0),
      ip.dstWord(3),
      ip.upperProtocol(),
      ip.upperOffset(),
      ip.upperLen(),
      ip.extHeaderLen(),
      ip.extHeaderCount(),
      ip.extFlags(),
      ip.fragOffset(),
      ip.fragIdent(),
      ip.pseudoHeaderSum(),
    ];
    for (const f of fields) assert.ok(Number.isInteger(f) && f >= 0, `${f}`);
    assert.equal(typeof ip.toString(), "string");
    if (e !== ParseError.None) continue;
    ip.bind(b, off, len);
    whole ? ip.check() : ip.checkHeader(); // toString re-ran check(); walk again
    assertConsistent(off, len, whole);
    const uo = ip.upperOffset(), ul = ip.upperLen(), sum = ip.pseudoHeaderSum();
    for (const v of [tcp, udp]) {
      v.bind(b, uo, ul);
      const le = v.check();
      assert.ok(le >= 0 && le < PARSE_ERROR_COUNT);
      if (le === ParseError.None) assert.ok(v.payloadOffset() + v.payloadLen() <= uo + ul);
      v.verifyChecksum6(sum), v.srcPort(), v.dstPort(), v.toString();
    }
    const ue = udp.check6();
    assert.ok(ue >= 0 && ue < PARSE_ERROR_COUNT);
    icmp.bind(b, uo, ul);
    const ie = icmp.check(sum);
    assert.ok(
      ie === ParseError.None || ie === ParseError.Truncated || ie === ParseError.BadL4Checksum,
    );
    icmp.type(), icmp.mtu(), icmp.isError(), icmp.isNeighbourDiscovery(), icmp.toString();
  }
}

Deno.test("property: random bytes never throw in the IPv6 views", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 0, maxLength: 160 }),
      fc.nat({ max: 8 }),
      fc.nat({ max: 200 }),
      fc.boolean(),
      (b, off, len, v6) => {
        const o = Math.min(off, b.length);
        // Mostly an IPv6 version nibble, a payload length that fits and a known next header.
        if (v6 && b.length > o + 40) {
          b[o] = 0x60 | (b[o] & 15);
          b[o + 4] = 0;
          b[o + 5] = Math.min(b[o + 5], b.length - o - 40);
          b[o + 6] = [0, 43, 44, 51, 60, 6, 17, 58][b[o + 6] & 7];
        }
        exercise(b, o, Math.min(len, b.length - o));
        exercise(b, o, len); // len may run past the buffer
      },
    ),
    { numRuns: 3000, seed: 0x6b6e6f63 },
  );
});

const names = Object.keys(FIXTURE6_HEX) as (keyof typeof FIXTURE6_HEX)[];

Deno.test("property: mutated captured packets never throw in the IPv6 views", () => {
  const [f1, f2] = fragmentedEcho();
  const pool = [...names.map(fixture6), f1, f2];
  fc.assert(
    fc.property(
      fc.nat({ max: pool.length - 1 }),
      fc.array(fc.tuple(fc.nat({ max: 120 }), fc.nat({ max: 255 })), {
        minLength: 1,
        maxLength: 6,
      }),
      fc.nat({ max: 1300 }),
      (k, muts, cut) => {
        const b = pool[k].slice();
        for (const [i, v] of muts) if (i < b.length) b[i] = v;
        exercise(b, 0, Math.min(cut, b.length));
        exercise(b, 0, b.length);
      },
    ),
    { numRuns: 3000, seed: 0x67617465 },
  );
});

/** A generated extension header, as the oracle sees it. */
type Ext =
  | { kind: "hbh" | "dst"; options: { type: number; len: number }[] }
  | { kind: "rt"; type: number; segmentsLeft: number }
  | { kind: "frag"; offset: number; more: boolean }
  | { kind: "ah"; icv: number };

const option = fc.record({
  // Any type but Pad1/PadN (the builder pads); router alert, jumbo and skippable types more often.
  type: fc.oneof(
    fc.integer({ min: 2, max: 255 }),
    fc.integer({ min: 2, max: 0x3f }),
    fc.constantFrom(5, 0xc2),
  ),
  len: fc.oneof({ weight: 4, arbitrary: fc.nat({ max: 40 }) }, fc.integer({ min: 100, max: 250 })),
});
const ext: fc.Arbitrary<Ext> = fc.oneof(
  fc.record({
    kind: fc.constantFrom("hbh" as const, "dst" as const),
    options: fc.array(option, { maxLength: 10 }),
  }),
  fc.record({
    kind: fc.constant("rt" as const),
    type: fc.constantFrom(0, 2, 3, 4),
    segmentsLeft: fc.constantFrom(0, 0, 1),
  }),
  fc.record({
    kind: fc.constant("frag" as const),
    offset: fc.constantFrom(0, 0, 8, 1232, 65528),
    more: fc.boolean(),
  }),
  fc.record({ kind: fc.constant("ah" as const), icv: fc.constantFrom(4, 12, 16) }),
);

function toHeader(e: Ext): Ipv6ExtHeader {
  switch (e.kind) {
    case "hbh":
    case "dst": {
      const tlv = e.options.flatMap((o) => [o.type, o.len, ...new Array(o.len).fill(0xa5)]);
      return (e.kind === "hbh" ? hopByHopHeader : destOptionsHeader)(new Uint8Array(tlv));
    }
    case "rt":
      return routingHeader(e.type, e.segmentsLeft, ["2001:db8::9"]);
    case "frag":
      return fragmentHeader(e.offset, e.more, 0x1234);
    case "ah":
      return authHeader(1, 1, e.icv);
  }
}

/** What the walk must answer for a chain built whole from `exts`: the error name, or the upper protocol. */
function oracle(exts: Ext[], headers: Ipv6ExtHeader[], proto: number, upperLen: number): string {
  let bytes = 0, dst = 0;
  const seen = new Set<string>();
  let fragmented = false;
  for (let i = 0; i < exts.length; i++) {
    const e = exts[i], n = headers[i].bytes.length;
    bytes += n;
    if (bytes > IPV6_MAX_EXT_BYTES) return "ipv6-ext-chain-too-long";
    const rest = headers.slice(i + 1).reduce((s, h) => s + h.bytes.length, 0) + upperLen;
    switch (e.kind) {
      case "hbh":
      case "dst":
        if (e.kind === "hbh" && i !== 0) return "ipv6-hop-by-hop-not-first";
        if (e.kind === "dst" && ++dst > 2) return "ipv6-ext-repeated";
        for (let k = 0; k < e.options.length; k++) {
          const o = e.options[k];
          if (k === 8 || o.type >= 0x40 || (e.kind === "hbh" && o.type === 5 && o.len !== 2)) {
            return "ipv6-bad-option";
          }
        }
        break;
      case "rt":
        if (seen.has("rt")) return "ipv6-ext-repeated";
        if ([0, 1, 3, 4].includes(e.type)) return "ipv6-routing-type";
        if (e.segmentsLeft !== 0) return "ipv6-routing-segments-left";
        break;
      case "frag":
      case "ah":
        if (seen.has(e.kind)) return "ipv6-ext-repeated";
        if (e.kind === "frag" && (e.offset !== 0 || e.more)) {
          if ((e.more && rest % 8 !== 0) || e.offset + rest > 0xffff) return "ipv6-bad-fragment";
          if (e.offset !== 0) return `upper=${i + 1 < exts.length ? headers[i + 1].proto : proto}`;
          fragmented = true;
        }
        break;
    }
    seen.add(e.kind);
  }
  const min = proto === PROTO_TCP ? 20 : proto === PROTO_UDP || proto === PROTO_ICMPV6 ? 8 : 0;
  if (fragmented && upperLen < min) return "ipv6-bad-fragment";
  return `upper=${proto}`;
}

Deno.test("property: generated extension chains parse exactly as the rules say", () => {
  let passed = 0;
  fc.assert(
    fc.property(
      fc.array(ext, { maxLength: 8 }),
      fc.constantFrom(PROTO_TCP, PROTO_UDP, PROTO_ICMPV6, PROTO_ESP, PROTO_NONE, 253),
      fc.nat({ max: 48 }),
      (exts, proto, upperLen) => {
        const headers = exts.map(toHeader);
        const pkt = buildIpv6({
          src: "2001:db8::1",
          dst: "2001:db8::2",
          ext: headers,
          proto,
          upper: new Uint8Array(upperLen),
        });
        const e = ip.bind(pkt).check();
        const got = e === ParseError.None ? `upper=${ip.upperProtocol()}` : parseErrorName(e);
        assert.equal(got, oracle(exts, headers, proto, upperLen), JSON.stringify(exts));
        if (e === ParseError.None) {
          passed++;
          assertConsistent(0, pkt.length, true);
          // A cut copy (an ICMPv6 error's quote) never reads past the cut.
          const cut = new Ipv6Packet().bind(pkt, 0, Math.max(40, pkt.length - 13));
          const ce = cut.checkHeader();
          if (ce === ParseError.None) {
            assert.ok(cut.upperOffset() + cut.upperLen() <= pkt.length - 13 || pkt.length < 53);
          }
        }
      },
    ),
    { numRuns: 4000, seed: 0x6b6e6f6b },
  );
  assert.ok(passed > 400, `only ${passed} chains parsed`); // the generator must not only make refusals
});
