import assert from "node:assert/strict";
import fc from "fast-check";
import {
  cidrContains,
  formatCidr,
  formatIpv4,
  parseCidr,
  parseIpv4,
  parsePort,
  parsePortSpan,
  prefixMask,
} from "./address.ts";

Deno.test("parseIpv4 accepts strict dotted quads as unsigned numbers", () => {
  assert.equal(parseIpv4("192.0.2.1"), 0xc0000201);
  assert.equal(parseIpv4("255.255.255.255"), 0xffffffff);
  assert.equal(parseIpv4("0.0.0.0"), 0);
});

Deno.test("parseIpv4 rejects everything else", () => {
  for (
    const s of [
      "",
      "1.2.3",
      "1.2.3.4.5",
      "256.0.0.1",
      "01.2.3.4",
      "1.2.3.-4",
      " 1.2.3.4",
      "1.2.3.4 ",
      "1..3.4",
      "0x1.2.3.4",
      "1.2.3.4/24",
      "1e2.0.0.1",
      "١.2.3.4",
    ]
  ) assert.equal(parseIpv4(s), null, s);
});

Deno.test("property: formatIpv4 and parseIpv4 round-trip", () => {
  fc.assert(fc.property(fc.nat({ max: 0xffffffff }), (n) => {
    assert.equal(parseIpv4(formatIpv4(n)), n);
  }));
});

Deno.test("parseCidr clears host bits, bare address is /32", () => {
  assert.deepEqual(parseCidr("192.0.2.77/24"), { addr: 0xc0000200, prefix: 24 });
  assert.deepEqual(parseCidr("192.0.2.77"), { addr: 0xc000024d, prefix: 32 });
  assert.deepEqual(parseCidr("10.1.2.3/0"), { addr: 0, prefix: 0 });
  for (const s of ["192.0.2.0/33", "192.0.2.0/", "192.0.2.0/024", "192.0.2.0/-1", "x/8"]) {
    assert.equal(parseCidr(s), null, s);
  }
  assert.equal(formatCidr(parseCidr("198.51.100.9/31")!), "198.51.100.8/31");
});

Deno.test("cidrContains and prefixMask at the edges", () => {
  assert.equal(prefixMask(0), 0);
  assert.equal(prefixMask(32), 0xffffffff);
  assert.equal(prefixMask(24), 0xffffff00);
  const net = parseCidr("203.0.113.0/24")!;
  assert.ok(cidrContains(net, parseIpv4("203.0.113.255")!));
  assert.ok(!cidrContains(net, parseIpv4("203.0.114.0")!));
  assert.ok(cidrContains(parseCidr("0.0.0.0/0")!, 0xffffffff));
  assert.ok(cidrContains(parseCidr("255.255.255.255/32")!, 0xffffffff));
  assert.ok(!cidrContains(parseCidr("255.255.255.255/32")!, 0xfffffffe));
});

Deno.test("parsePort and parsePortSpan are strict", () => {
  assert.equal(parsePort("22"), 22);
  assert.equal(parsePort("65535"), 65535);
  for (const s of ["0", "65536", "070", "+1", "", "1.0", "99999999"]) {
    assert.equal(parsePort(s), null, s);
  }
  assert.deepEqual(parsePortSpan("8000-8100"), { start: 8000, end: 8100 });
  assert.deepEqual(parsePortSpan("443"), { start: 443, end: 443 });
  assert.equal(parsePortSpan("9-8"), null);
  assert.equal(parsePortSpan("1-"), null);
});
