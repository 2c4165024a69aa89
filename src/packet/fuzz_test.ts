import assert from "node:assert/strict";
import fc from "fast-check";
import { fixture, FIXTURE_HEX } from "./_fixtures.ts";
import { Icmpv4Packet } from "./icmpv4.ts";
import { Ipv4Packet } from "./ipv4.ts";
import { PARSE_ERROR_COUNT, ParseError } from "./parse_error.ts";
import { TcpPacket } from "./tcp.ts";
import { UdpPacket } from "./udp.ts";

const ip = new Ipv4Packet();
const tcp = new TcpPacket();
const udp = new UdpPacket();
const icmp = new Icmpv4Packet();

/** Calls every getter; asserts that a valid view reads only inside itself. */
function exercise(b: Uint8Array, off: number, len: number): void {
  const e = ip.bind(b, off, len).check();
  assert.ok(e >= 0 && e < PARSE_ERROR_COUNT);
  ip.checkHeader();
  const fields = [
    ip.version(),
    ip.headerLen(),
    ip.dscpEcn(),
    ip.totalLen(),
    ip.ident(),
    ip.fragOffset(),
    ip.ttl(),
    ip.protocol(),
    ip.checksum(),
    ip.src(),
    ip.dst(),
    ip.payloadOffset(),
    ip.payloadLen(),
  ];
  for (const f of fields) assert.ok(Number.isInteger(f) && f >= 0, `${f}`);
  ip.dontFragment(), ip.moreFragments(), ip.isFragment(), ip.verifyChecksum();
  assert.equal(typeof ip.toString(), "string");
  if (e === ParseError.None || e === ParseError.Ipv4Options) {
    assert.ok(ip.payloadOffset() + ip.payloadLen() <= off + len);
  }
  const po = ip.payloadOffset();
  const pl = ip.payloadLen();
  for (const v of [tcp, udp, icmp]) {
    v.bind(b, po, pl);
    const le = v.check();
    assert.ok(le >= 0 && le < PARSE_ERROR_COUNT);
    assert.equal(typeof v.toString(), "string");
    if (le === ParseError.None) assert.ok(v.payloadOffset() + v.payloadLen() <= po + pl);
  }
  tcp.srcPort(), tcp.dstPort(), tcp.seq(), tcp.ack(), tcp.flags(), tcp.window(), tcp.checksum();
  tcp.verifyChecksum(ip.src(), ip.dst());
  udp.srcPort(), udp.dstPort(), udp.length(), udp.checksum(), udp.verifyChecksum(1, 2);
  icmp.type(), icmp.code(), icmp.ident(), icmp.seqNo(), icmp.isError(), icmp.embeddedOffset();
}

Deno.test("property: random bytes never throw in any view", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 120 }),
      fc.nat({ max: 8 }),
      fc.nat({ max: 200 }),
      (b, off, len) => {
        exercise(b, Math.min(off, b.length), len); // len may run past the buffer
      },
    ),
    { numRuns: 2000 },
  );
});

const names = Object.keys(FIXTURE_HEX) as (keyof typeof FIXTURE_HEX)[];

Deno.test("property: mutated captured packets never throw in any view", () => {
  const mutation = fc.array(fc.tuple(fc.nat({ max: 80 }), fc.nat({ max: 255 })), {
    minLength: 1,
    maxLength: 6,
  });
  fc.assert(
    fc.property(fc.constantFrom(...names), mutation, fc.nat({ max: 100 }), (name, muts, cut) => {
      const b = fixture(name);
      for (const [i, v] of muts) if (i < b.length) b[i] = v;
      exercise(b, 0, Math.min(cut, b.length));
      exercise(b, 0, b.length);
    }),
    { numRuns: 3000 },
  );
});
