import assert from "node:assert/strict";
import { ConfigError, type ConfigProblem, formatProblem, parseConfig } from "./load.ts";

const FILE = "config/appliance.jsonc";
const TEXT = Deno.readTextFileSync(new URL("../../config/appliance.jsonc", import.meta.url));
const WAN0 = `"wan": [{ "name": "wan", "interface": "wan0", "addresses": ["198.51.100.1/24"] }]`;
const LAN6 = `{ "address": "2001:db8:192::1", "network": "2001:db8:192::/64" }`;

/**
 * The default file with one uplink whose extra fields are `fields` (on the
 * line after its first), and IPv6 `enabled`; the text and the fields' line.
 */
function file(fields: string, enabled = true): { text: string; line: number } {
  const at = TEXT.indexOf(WAN0);
  assert.ok(at >= 0, "the default wan line changed");
  const before = TEXT.slice(0, at);
  const wan = `"wan": [{ "name": "isp", "interface": "wan0", "addresses": ["198.51.100.1/24"],
    "addresses6": ["2001:db8:198::1/64"], ${fields} }],
  "ipv6": { "enabled": ${enabled}, "lan": ${LAN6} }`;
  return { text: before + wan + TEXT.slice(at + WAN0.length), line: before.split("\n").length + 1 };
}

function problems(text: string): string[] {
  try {
    parseConfig(text, FILE);
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.message.split("\n");
  }
  throw new Error("config parsed");
}

Deno.test("gateway6: a link-local next hop, probed by default at the same defaults as probe", () => {
  const c = parseConfig(file(`"gateway6": "FE80::1"`).text, FILE);
  assert.equal(c.wan[0].gateway6, "fe80::1");
  assert.deepEqual(c.wan[0].probe6, {
    target: "fe80::1",
    intervalMs: 1000,
    downAfter: 3,
    upAfter: 2,
  });
});

Deno.test("gateway6: a global next hop on the uplink's prefix; probe6 tuned or switched off", () => {
  const tuned = parseConfig(
    file(`"gateway6": "2001:db8:198::fe", "probe6": { "target": "2001:db8:5::1", "downAfter": 5 }`)
      .text,
    FILE,
  );
  assert.equal(tuned.wan[0].gateway6, "2001:db8:198::fe");
  assert.deepEqual(tuned.wan[0].probe6, {
    target: "2001:db8:5::1",
    intervalMs: 1000,
    downAfter: 5,
    upAfter: 2,
  });
  const off = parseConfig(file(`"gateway6": "fe80::1", "probe6": false`).text, FILE);
  assert.equal(off.wan[0].probe6, null);
  const none = parseConfig(file(`"gateway": "198.51.100.254"`).text, FILE);
  assert.deepEqual([none.wan[0].gateway6, none.wan[0].probe6], [null, null]);
});

Deno.test("gateway6: refused with the field named when it cannot be the uplink's next hop", () => {
  const cases: [string, string][] = [
    [
      `"gateway6": "2001:db8:199::1"`,
      `wan[0].gateway6: 2001:db8:199::1 is on no prefix of uplink "isp" (2001:db8:198::/64) and not link-local (fe80::/10)`,
    ],
    [
      `"gateway6": "2001:db8:198::1"`,
      `wan[0].gateway6: 2001:db8:198::1 is an address of uplink "isp" itself`,
    ],
    [`"gateway6": "ff02::2"`, `wan[0].gateway6: ff02::2 is multicast (ff00::/8)`],
    [`"gateway6": "::"`, `wan[0].gateway6: :: is the unspecified address`],
    [`"gateway6": "198.51.100.254"`, `wan[0].gateway6: "198.51.100.254" is not an IPv6 address`],
    [
      `"probe6": { "intervalMs": 500 }`,
      `wan[0].probe6: uplink "isp" has no gateway6: name the probe6's target`,
    ],
    [`"probe6": { "target": "ff02::1" }`, `wan[0].probe6.target: ff02::1 is multicast (ff00::/8)`],
    [
      `"gateway6": "fe80::1", "probe6": { "target": "192.0.2.9" }`,
      `wan[0].probe6.target: "192.0.2.9" is not an IPv6 address`,
    ],
  ];
  for (const [fields, reason] of cases) {
    const f = file(fields);
    assert.deepEqual(problems(f.text), [`${FILE}:${f.line}: ${reason}`], fields);
  }
});

Deno.test("gateway6: needs an IPv6 address of the uplink to route and probe from", () => {
  const at = TEXT.indexOf(WAN0);
  const before = TEXT.slice(0, at);
  const text = before +
    `"wan": [{ "name": "isp", "interface": "wan0", "addresses": ["198.51.100.1/24"],
      "addresses6": ["2001:db8:198::1/64"] },
    { "name": "isp2", "interface": "wan1", "addresses": ["198.51.100.65/26"],
      "gateway6": "fe80::1" }],
  "ipv6": { "enabled": true, "lan": ${LAN6} }` + TEXT.slice(at + WAN0.length);
  assert.deepEqual(problems(text), [
    `${FILE}:${
      before.split("\n").length + 3
    }: wan[1].gateway6: uplink "isp2" has no addresses6 to route from`,
  ]);
});

Deno.test("gateway6: with IPv6 off, checked, noted and not applied", () => {
  const f = file(`"gateway6": "fe80::1",\n    "probe6": { "intervalMs": 2000 }`, false);
  const warnings: ConfigProblem[] = [];
  const c = parseConfig(f.text, FILE, warnings);
  assert.deepEqual([c.wan[0].gateway6, c.wan[0].probe6], [null, null]);
  const mine = warnings.map(formatProblem).filter((w) => /gateway6|probe6/.test(w));
  assert.deepEqual(mine, [
    `${FILE}:${f.line}: wan[0].gateway6: is not applied: ipv6.enabled is false`,
    `${FILE}:${f.line + 1}: wan[0].probe6: is not applied: ipv6.enabled is false`,
  ]);
  const bad = file(`"gateway6": "2001:db8:7::1"`, false);
  assert.match(problems(bad.text)[0], /wan\[0\]\.gateway6: 2001:db8:7::1 is on no prefix/);
});
