import assert from "node:assert/strict";
import fc from "fast-check";
import {
  formatIpv6,
  formatIpv6Prefix,
  ipv6Equal,
  ipv6EqualBytes,
  ipv6MaskInto,
  ipv6PrefixContains,
  ipv6PrefixContainsBytes,
  isIpv4Mapped,
  isIpv6LinkLocal,
  isIpv6Loopback,
  isIpv6Multicast,
  isIpv6Unspecified,
  mapIpv4,
  parseIpv6,
  parseIpv6Prefix,
  readIpv6,
  writeIpv6,
} from "./ipv6_address.ts";

const words = (s: string) => {
  const w = parseIpv6(s);
  assert.ok(w, s);
  return Array.from(w);
};

Deno.test("parseIpv6 reads the RFC 4291 §2.2 forms into four words", () => {
  assert.deepEqual(words("2001:db8::1"), [0x20010db8, 0, 0, 1]);
  assert.deepEqual(words("2001:DB8:0:0:8:800:200C:417A"), [0x20010db8, 0, 0x80800, 0x200c417a]);
  assert.deepEqual(words("::"), [0, 0, 0, 0]);
  assert.deepEqual(words("::1"), [0, 0, 0, 1]);
  assert.deepEqual(words("ff02::"), [0xff020000, 0, 0, 0]);
  assert.deepEqual(words("::ffff:192.0.2.1"), [0, 0, 0xffff, 0xc0000201]);
  assert.deepEqual(words("64:ff9b::198.51.100.7"), [0x0064ff9b, 0, 0, 0xc6336407]);
  assert.deepEqual(words("1:2:3:4:5:6:7:8"), [0x10002, 0x30004, 0x50006, 0x70008]);
  assert.deepEqual(words("1:2:3:4:5:6:192.0.2.1"), [0x10002, 0x30004, 0x50006, 0xc0000201]);
  assert.deepEqual(words("1::8"), [0x10000, 0, 0, 8]);
  assert.deepEqual(words("1:2:3:4:5:6:7::"), [0x10002, 0x30004, 0x50006, 0x70000]);
  assert.deepEqual(words("::2:3:4:5:6:7:8"), [2, 0x30004, 0x50006, 0x70008]);
  assert.deepEqual(words("2001:0db8:0000::0001"), [0x20010db8, 0, 0, 1]);
});

Deno.test("parseIpv6 refuses everything else", () => {
  for (
    const s of [
      "",
      ":",
      ":::",
      "1:2:3:4:5:6:7",
      "1:2:3:4:5:6:7:8:9",
      "1::2::3",
      ":1::2",
      "1::2:",
      "1:2:3:4:5:6:7:8::",
      "::1:2:3:4:5:6:7:8",
      "12345::",
      "g::1",
      "fe80::1%eth0",
      "[2001:db8::1]",
      "2001:db8::/32",
      " ::1",
      "::1 ",
      "::ffff:192.0.2",
      "::ffff:192.0.2.256",
      "::ffff:192.0.2.01",
      "::192.0.2.1:1",
      "192.0.2.1::",
      "1:2:3:4:5:6:7:192.0.2.1",
      "192.0.2.1",
    ]
  ) {
    assert.equal(parseIpv6(s), null, s);
  }
});

Deno.test("formatIpv6 writes RFC 5952 canonical text", () => {
  const cases: [string, string][] = [
    ["2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"], // §4.1, §4.2.1
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"], // §4.2.3: the first of equal runs
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"], // §4.2.2: one zero group stays
    ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"], // §4.2.3: the longest run
    ["2001:DB8::AAAA", "2001:db8::aaaa"], // §4.3
    ["0:0:0:0:0:0:0:0", "::"],
    ["0:0:0:0:0:0:0:1", "::1"],
    ["1:0:0:0:0:0:0:0", "1::"],
    ["ff02:0:0:0:0:1:ff00:2", "ff02::1:ff00:2"],
    ["0:0:0:0:0:ffff:c000:201", "::ffff:192.0.2.1"], // §5: IPv4-mapped in mixed notation
    ["::c000:201", "::c000:201"], // the deprecated compatible form is not mixed
    ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
  ];
  for (const [input, want] of cases) assert.equal(formatIpv6(words(input)), want, input);
  const col = new Uint32Array(12);
  col.set(words("2001:db8::7"), 4);
  assert.equal(formatIpv6(col, 4), "2001:db8::7");
});

Deno.test("property: format then parse is the identity, and format is a fixed point", () => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffffffff })), {
        minLength: 4,
        maxLength: 4,
      }),
      (w) => {
        const s = formatIpv6(w);
        const back = parseIpv6(s);
        assert.ok(back, s);
        assert.deepEqual(Array.from(back), w.map((x) => x >>> 0));
        assert.equal(formatIpv6(back), s);
        assert.equal(s, s.toLowerCase());
        assert.ok(!s.includes(":::") && s.split("::").length <= 2, s);
      },
    ),
    { numRuns: 3000 },
  );
});

Deno.test("bytes, words and equality", () => {
  const b = new Uint8Array(20);
  const w = words("2001:db8:1:2:3:4:5:6");
  writeIpv6(b, 2, w);
  assert.equal(b[2], 0x20);
  assert.equal(b[17], 0x06);
  const out = new Uint32Array(8);
  readIpv6(b, 2, out, 4);
  assert.deepEqual(Array.from(out.subarray(4)), w);
  assert.ok(ipv6Equal(out, 4, w, 0));
  assert.ok(ipv6EqualBytes(b, 2, w));
  out[7] ^= 1;
  assert.ok(!ipv6Equal(out, 4, w, 0));
  assert.ok(!ipv6EqualBytes(b, 2, out, 4));
});

Deno.test("parseIpv6Prefix clears host bits and refuses bad lengths", () => {
  const p = parseIpv6Prefix("2001:db8:abcd:12ff::1/52");
  assert.ok(p);
  assert.equal(formatIpv6Prefix(p), "2001:db8:abcd:1000::/52");
  assert.equal(formatIpv6Prefix(parseIpv6Prefix("2001:db8::1")!), "2001:db8::1/128");
  assert.equal(formatIpv6Prefix(parseIpv6Prefix("::/0")!), "::/0");
  assert.equal(formatIpv6Prefix(parseIpv6Prefix("2001:db8::ffff/127")!), "2001:db8::fffe/127");
  for (const s of ["2001:db8::/129", "2001:db8::/", "2001:db8::/032", "2001:db8::/-1", "x/8"]) {
    assert.equal(parseIpv6Prefix(s), null, s);
  }
});

Deno.test("prefix membership from words and from packet bytes", () => {
  const p = parseIpv6Prefix("2001:db8:1:2::/64")!;
  const inside = words("2001:db8:1:2:aaaa:bbbb:cccc:dddd");
  const outside = words("2001:db8:1:3::1");
  assert.ok(ipv6PrefixContains(p, inside));
  assert.ok(!ipv6PrefixContains(p, outside));
  const b = new Uint8Array(16);
  writeIpv6(b, 0, inside);
  assert.ok(ipv6PrefixContainsBytes(p, b, 0));
  writeIpv6(b, 0, outside);
  assert.ok(!ipv6PrefixContainsBytes(p, b, 0));
  assert.ok(ipv6PrefixContains(parseIpv6Prefix("::/0")!, outside));
  assert.ok(ipv6PrefixContains(parseIpv6Prefix("2001:db8::/32")!, outside));
  const host = parseIpv6Prefix("2001:db8:1:3::1/128")!;
  assert.ok(ipv6PrefixContains(host, outside));
  assert.ok(!ipv6PrefixContains(host, inside));
});

Deno.test("property: a /n prefix holds exactly the addresses that agree on n bits", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 4, maxLength: 4 }),
      fc.integer({ min: 0, max: 127 }),
      fc.integer({ min: 0, max: 128 }),
      (w, bit, len) => {
        const p = parseIpv6Prefix(`${formatIpv6(w)}/${len}`)!;
        assert.ok(ipv6PrefixContains(p, w));
        const flipped = Uint32Array.from(w);
        flipped[bit >>> 5] ^= 1 << (31 - (bit & 31));
        assert.equal(ipv6PrefixContains(p, flipped), bit >= len);
        const net = new Uint32Array(4);
        ipv6MaskInto(w, 0, len, net);
        assert.deepEqual(net, p.addr);
      },
    ),
    { numRuns: 2000 },
  );
});

Deno.test("IPv4-mapped addresses and the special ranges", () => {
  const m = new Uint32Array(4);
  mapIpv4(0xc6336401, m);
  assert.equal(formatIpv6(m), "::ffff:198.51.100.1");
  assert.ok(isIpv4Mapped(m));
  assert.ok(!isIpv4Mapped(words("::1")));
  assert.ok(!isIpv4Mapped(words("::fffe:c000:201")));
  assert.ok(isIpv6Unspecified(words("::")));
  assert.ok(!isIpv6Unspecified(words("::1")));
  assert.ok(isIpv6Loopback(words("::1")));
  assert.ok(!isIpv6Loopback(words("1::1")));
  assert.ok(isIpv6Multicast(words("ff02::16")));
  assert.ok(!isIpv6Multicast(words("fe80::1")));
  assert.ok(isIpv6LinkLocal(words("fe80::ca2:c6ff:fed0:9edf")));
  assert.ok(isIpv6LinkLocal(words("febf::1")));
  assert.ok(!isIpv6LinkLocal(words("fec0::1")));
  assert.ok(!isIpv6LinkLocal(words("2001:db8::1")));
});
