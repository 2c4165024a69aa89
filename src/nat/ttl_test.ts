import assert from "node:assert/strict";
import fc from "fast-check";
import { buildTcp, buildUdp, Ipv4Packet, TcpPacket, UdpPacket } from "../packet/mod.ts";
import { incrementTtl } from "./ttl.ts";

const CLIENT = "203.0.113.5", SERVER = "192.0.2.10";

Deno.test("incrementTtl adds one hop and keeps the header and TCP checksums valid", () => {
  const p = buildTcp({ src: CLIENT, dst: SERVER, srcPort: 40000, dstPort: 8080, ttl: 63 });
  incrementTtl(p, 0);
  const ip = new Ipv4Packet().bind(p, 0, p.length);
  assert.equal(ip.ttl(), 64);
  assert.ok(ip.verifyChecksum());
  const t = new TcpPacket().bind(p, ip.payloadOffset(), ip.payloadLen());
  assert.ok(t.verifyChecksum(ip.src(), ip.dst()));
});

Deno.test("incrementTtl leaves a TTL of 255 alone", () => {
  const p = buildUdp({ src: CLIENT, dst: SERVER, srcPort: 1, dstPort: 2, ttl: 255 });
  const before = p.slice();
  incrementTtl(p, 0);
  assert.deepEqual(p, before);
});

Deno.test("incrementTtl works at an offset (headroom before the packet)", () => {
  const inner = buildUdp({ src: CLIENT, dst: SERVER, srcPort: 53, dstPort: 40000, ttl: 1 });
  const buf = new Uint8Array(inner.length + 12);
  buf.set(inner, 12);
  incrementTtl(buf, 12);
  const ip = new Ipv4Packet().bind(buf, 12, inner.length);
  assert.equal(ip.ttl(), 2);
  assert.ok(ip.verifyChecksum());
  const u = new UdpPacket().bind(buf, ip.payloadOffset(), ip.payloadLen());
  assert.ok(u.verifyChecksum(ip.src(), ip.dst()));
});

Deno.test("incrementTtl: any header stays valid (property)", () => {
  fc.assert(
    fc.property(
      fc.nat({ max: 254 }),
      fc.nat({ max: 0xffff }),
      fc.nat({ max: 0xff }),
      fc.uint8Array({ maxLength: 32 }),
      (ttl, ident, dscpEcn, payload) => {
        const p = buildUdp({
          src: CLIENT,
          dst: SERVER,
          srcPort: 7,
          dstPort: 7,
          ttl,
          ident,
          dscpEcn,
          payload,
        });
        incrementTtl(p, 0);
        const ip = new Ipv4Packet().bind(p, 0, p.length);
        return ip.ttl() === ttl + 1 && ip.verifyChecksum();
      },
    ),
  );
});
