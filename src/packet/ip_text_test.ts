import assert from "node:assert/strict";
import fc from "fast-check";
import {
  canonicalIp,
  ipFamily,
  ipv6NotGlobal,
  isIpv6UniqueLocal,
  networkCovers,
  parseIp,
  parseIpNetwork,
  parseUnlockIp,
  unlockIpError,
  urlHost,
} from "./ip_text.ts";
import { formatIpv6, formatIpv6Prefix, ipv6WordMask, parseIpv6 } from "./ipv6_address.ts";

Deno.test("parseIp and canonicalIp: either family, RFC 5952 for IPv6, nothing else", () => {
  assert.equal(ipFamily("192.0.2.1"), 4);
  assert.equal(ipFamily("2001:DB8::1"), 6);
  assert.equal(canonicalIp("2001:0db8:0:0:0:0:0:1"), "2001:db8::1");
  assert.equal(canonicalIp("::ffff:192.0.2.1"), "::ffff:192.0.2.1");
  assert.equal(canonicalIp("192.0.2.1"), "192.0.2.1");
  for (const bad of ["192.0.2.01", "[2001:db8::1]", "2001:db8::1%eth0", "2001:db8::/64", "x", ""]) {
    assert.equal(parseIp(bad), null, bad);
  }
  assert.equal(parseIpNetwork("203.0.113.0/24")?.family, 4);
  assert.deepEqual(parseIpNetwork("2001:db8::1")?.net.prefix, 128);
  assert.equal(parseIpNetwork("2001:db8::/129"), null);
});

Deno.test("ipv6NotGlobal and isIpv6UniqueLocal name what is no routed host", () => {
  const w = (s: string) => parseIpv6(s)!;
  assert.equal(ipv6NotGlobal(w("2001:db8::1")), null);
  assert.equal(ipv6NotGlobal(w("fd00::1")), null);
  assert.match(ipv6NotGlobal(w("fe80::1"))!, /link-local/);
  assert.match(ipv6NotGlobal(w("ff02::1"))!, /multicast/);
  assert.match(ipv6NotGlobal(w("::"))!, /unspecified/);
  assert.match(ipv6NotGlobal(w("::1"))!, /loopback/);
  assert.match(ipv6NotGlobal(w("::ffff:192.0.2.1"))!, /IPv4-mapped/);
  assert.equal(isIpv6UniqueLocal(w("fc00::1")), true);
  assert.equal(isIpv6UniqueLocal(w("fdff:ffff::1")), true);
  assert.equal(isIpv6UniqueLocal(w("fe00::1")), false);
  assert.equal(isIpv6UniqueLocal(w("2001:db8::1")), false);
});

Deno.test("unlockIpError: the data plane's spellings only", () => {
  for (const ok of ["203.0.113.10", "2001:db8:1:2::/64", "2001:db8:1:2::99", "2001:db8::/48"]) {
    assert.equal(unlockIpError(ok), null, ok);
  }
  assert.equal(
    unlockIpError("2001:db8:1:2::99/64"),
    "is not in canonical form (2001:db8:1:2::/64)",
  );
  assert.equal(unlockIpError("2001:db8::1/128"), "is not in canonical form (2001:db8::1)");
  assert.equal(unlockIpError("2001:0DB8::/64"), "is not in canonical form (2001:db8::/64)");
  assert.equal(unlockIpError(42), "is not a string");
  assert.match(unlockIpError("203.0.113.0/24")!, /is not an IPv4 address, an IPv6 address/);
});

Deno.test("networkCovers: an unlock's network holds its addresses and longer prefixes, one family", () => {
  const net = parseUnlockIp("2001:db8:1:2::/64")!;
  assert.ok(networkCovers(net, parseIpNetwork("2001:db8:1:2:ffff::1")!));
  assert.ok(networkCovers(net, parseIpNetwork("2001:db8:1:2::/96")!));
  assert.ok(!networkCovers(net, parseIpNetwork("2001:db8:1::/48")!));
  assert.ok(!networkCovers(net, parseIpNetwork("2001:db8:1:3::1")!));
  assert.ok(!networkCovers(net, parseIpNetwork("192.0.2.1")!));
  const v4 = parseUnlockIp("203.0.113.10")!;
  assert.ok(networkCovers(v4, parseIpNetwork("203.0.113.10")!));
  assert.ok(!networkCovers(v4, parseIpNetwork("203.0.113.11")!));
});

Deno.test("property: every address inside an unlock's prefix finds it, no address outside does", () => {
  const word = fc.integer({ min: 0, max: 0xffffffff });
  fc.assert(
    fc.property(
      fc.tuple(word, word, word, word),
      fc.integer({ min: 48, max: 128 }),
      word,
      (a, p, noise) => {
        const addr = Uint32Array.from(a);
        const key = unlockKey(addr, p);
        assert.equal(unlockIpError(key), null, key);
        const net = parseUnlockIp(key)!;
        // An address sharing the first p bits (its last word's host bits replaced by noise) is inside.
        const inside = Uint32Array.from(addr);
        const m = ipv6WordMask(p, 3);
        inside[3] = ((addr[3] & m) | (noise & ~m)) >>> 0;
        assert.ok(networkCovers(net, parseIpNetwork(formatIpv6(inside))!));
        // Flipping bit p-1 (inside the prefix) takes an address outside.
        const outside = Uint32Array.from(addr);
        const bit = p - 1, i = bit >>> 5;
        outside[i] = (outside[i] ^ (1 << (31 - (bit & 31)))) >>> 0;
        assert.ok(!networkCovers(net, parseIpNetwork(formatIpv6(outside))!));
      },
    ),
  );
});

/** The unlock key the data plane writes for `addr` under `prefix` (the contract's text). */
function unlockKey(addr: Uint32Array, prefix: number): string {
  const net = parseIpNetwork(`${formatIpv6(addr)}/${prefix}`)!;
  if (net.family !== 6) throw new Error("not IPv6");
  return prefix === 128 ? formatIpv6(net.net.addr) : formatIpv6Prefix(net.net);
}

Deno.test("urlHost brackets an IPv6 literal only", () => {
  assert.equal(urlHost("2001:db8::1"), "[2001:db8::1]");
  assert.equal(urlHost("[2001:db8::1]"), "[2001:db8::1]");
  assert.equal(urlHost("192.0.2.1"), "192.0.2.1");
  assert.equal(urlHost("knock.example.net"), "knock.example.net");
});
