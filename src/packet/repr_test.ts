import assert from "node:assert/strict";
import { fixture } from "./_fixtures.ts";
import { Icmpv4Packet } from "./icmpv4.ts";
import { Ipv4Packet } from "./ipv4.ts";
import { ParseError } from "./parse_error.ts";
import {
  emitIcmpRepr,
  emitIpv4Repr,
  emitTcpRepr,
  emitUdpRepr,
  parseIcmpRepr,
  parseIpv4Repr,
  parseTcpRepr,
  parseUdpRepr,
  tcpReprLen,
  udpReprLen,
} from "./repr.ts";
import { TcpPacket } from "./tcp.ts";
import { UdpPacket } from "./udp.ts";

/** Parses `b` into reprs with `parse` and emits them again; must give `b` back. */
function roundTrip(
  b: Uint8Array,
  l4: (out: Uint8Array, ip: Ipv4Packet) => void,
): Uint8Array {
  const ip = new Ipv4Packet().bind(b);
  assert.equal(ip.check(), ParseError.None);
  const out = new Uint8Array(b.length);
  emitIpv4Repr(parseIpv4Repr(ip), out, 0);
  l4(out, ip);
  return out;
}

Deno.test("TcpRepr: parse then emit reproduces the captured SYN, options included", () => {
  const b = fixture("tcpSyn");
  const out = roundTrip(b, (out, ip) => {
    const r = parseTcpRepr(new TcpPacket().bind(b, 20, ip.payloadLen()));
    assert.equal(r.options.length, 20);
    assert.equal(tcpReprLen(r), 40);
    emitTcpRepr(r, out, 20, ip.src(), ip.dst());
  });
  assert.deepEqual(out, b);
});

Deno.test("UdpRepr: parse then emit reproduces the captured datagram", () => {
  const b = fixture("udp");
  const out = roundTrip(b, (out, ip) => {
    const r = parseUdpRepr(new UdpPacket().bind(b, 20, ip.payloadLen()));
    assert.equal(udpReprLen(r), 25);
    emitUdpRepr(r, out, 20, ip.src(), ip.dst());
  });
  assert.deepEqual(out, b);
});

Deno.test("UdpRepr: emit without checksum leaves 0", () => {
  const out = new Uint8Array(10);
  emitUdpRepr({ srcPort: 1, dstPort: 2, payload: new Uint8Array([7, 8]) }, out, 0, 1, 2, false);
  assert.deepEqual([...out], [0, 1, 0, 2, 0, 10, 0, 0, 7, 8]);
});

Deno.test("IcmpRepr: parse then emit reproduces echo and error", () => {
  for (const name of ["icmpEcho", "icmpPortUnreachable"] as const) {
    const b = fixture(name);
    const out = roundTrip(b, (out, ip) => {
      emitIcmpRepr(parseIcmpRepr(new Icmpv4Packet().bind(b, 20, ip.payloadLen())), out, 20);
    });
    // The error's outer header has DSCP 0xc0 and no DF: both are kept by the repr.
    assert.deepEqual(out, b, name);
  }
});
