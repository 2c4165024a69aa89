import assert from "node:assert/strict";
import fc from "fast-check";
import { checksumAdd, checksumFold } from "./checksum.ts";
import { Ipv6Packet } from "./ipv6.ts";
import {
  formatIpv6,
  ipv6PrefixContainsBytes,
  ipv6WordMask,
  parseIpv6,
  parseIpv6Prefix,
  readIpv6,
  writeIpv6,
} from "./ipv6_address.ts";
import { buildIpv6Tcp } from "./ipv6_build.ts";
import { nptv6Map, nptv6Translate, nptv6TranslateText } from "./nptv6.ts";
import { ParseError } from "./parse_error.ts";
import { TcpPacket } from "./tcp.ts";

function translated(from: string, to: string, addr: string): string | null {
  const m = nptv6Map(parseIpv6Prefix(from)!, parseIpv6Prefix(to)!);
  const b = new Uint8Array(16);
  writeIpv6(b, 0, parseIpv6(addr)!);
  if (!nptv6Translate(m, b, 0)) return null;
  const w = new Uint32Array(4);
  readIpv6(b, 0, w);
  return formatIpv6(w);
}

Deno.test("RFC 6296: its /48 example maps fd01:203:405:1::1234 to 2001:db8:1:d550::1234", () => {
  assert.equal(
    translated("fd01:203:405::/48", "2001:db8:1::/48", "fd01:203:405:1::1234"),
    "2001:db8:1:d550::1234",
  );
  assert.equal(
    translated("2001:db8:1::/48", "fd01:203:405::/48", "2001:db8:1:d550::1234"),
    "fd01:203:405:1::1234",
  );
});

Deno.test("unmappable addresses are refused and left alone", () => {
  assert.equal(translated("fd01:203:405::/48", "2001:db8:1::/48", "fd01:203:405:ffff::1"), null);
  assert.equal(
    translated("fd01:203:405:6::/64", "2001:db8:1:2::/64", "fd01:203:405:6:ffff:ffff:ffff:ffff"),
    null,
  );
  // A /64 adjusts the first interface-identifier word that is not 0xFFFF.
  const out = translated("fd01:203:405:6::/64", "2001:db8:1:2::/64", "fd01:203:405:6:ffff::1")!;
  assert.match(out, /^2001:db8:1:2:ffff:/);
  assert.throws(
    () => nptv6Map(parseIpv6Prefix("fd00::/48")!, parseIpv6Prefix("2001:db8::/56")!),
    /equal lengths/,
  );
  assert.throws(
    () => nptv6Map(parseIpv6Prefix("fd00::/80")!, parseIpv6Prefix("2001:db8::/80")!),
    /64/,
  );
});

const sum16 = (b: Uint8Array, off: number) =>
  checksumFold(checksumAdd(0, b, off, off + 16)) % 0xffff;

Deno.test("property: the mapping is checksum-neutral, lands in the new prefix and goes back", () => {
  const word = fc.integer({ min: 0, max: 0xffffffff });
  fc.assert(
    fc.property(
      fc.array(word, { minLength: 4, maxLength: 4 }),
      fc.array(word, { minLength: 4, maxLength: 4 }),
      fc.array(word, { minLength: 4, maxLength: 4 }),
      fc.integer({ min: 1, max: 64 }),
      (a, b, host, len) => {
        const from = parseIpv6Prefix(`${formatIpv6(a)}/${len}`)!;
        const to = parseIpv6Prefix(`${formatIpv6(b)}/${len}`)!;
        // An address in `from` with random host bits.
        const src = host.map((h, i) => ((h & ~ipv6WordMask(len, i)) | from.addr[i]) >>> 0);
        const pkt = buildIpv6Tcp({
          src,
          dst: "2001:db8::80",
          srcPort: 40000,
          dstPort: 443,
          payload: new Uint8Array([1, 2, 3]),
        });
        const ip = new Ipv6Packet().bind(pkt);
        assert.equal(ip.check(), ParseError.None);
        const before = pkt.slice();
        const ok = nptv6Translate(nptv6Map(from, to), pkt, ip.srcOffset());
        if (!ok) {
          assert.deepEqual(pkt, before);
          return;
        }
        assert.ok(ipv6PrefixContainsBytes(to, pkt, ip.srcOffset()));
        assert.equal(sum16(pkt, ip.srcOffset()), sum16(before, ip.srcOffset()));
        const tcp = new TcpPacket().bind(pkt, ip.upperOffset(), ip.upperLen());
        assert.ok(tcp.verifyChecksum6(ip.pseudoHeaderSum()), "the TCP checksum still verifies");
        assert.ok(nptv6Translate(nptv6Map(to, from), pkt, ip.srcOffset()));
        assert.deepEqual(pkt, before);
      },
    ),
    { numRuns: 2000, seed: 0x6e707436 },
  );
});

Deno.test("nptv6TranslateText: a LAN host's outside address, as the README's example says", () => {
  const m = nptv6Map(parseIpv6Prefix("2001:db8:192::/64")!, parseIpv6Prefix("2001:db8:199::/64")!);
  assert.equal(nptv6TranslateText(m, "2001:db8:192::12"), "2001:db8:199:0:fff8::12");
  assert.equal(nptv6TranslateText(m, "2001:db8:193::12"), null, "outside the inside prefix");
  assert.equal(nptv6TranslateText(m, "2001:db8:192::ffff:ffff:ffff:ffff"), null, "unmappable");
  assert.equal(nptv6TranslateText(m, "192.0.2.12"), null);
});
