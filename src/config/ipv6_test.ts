import assert from "node:assert/strict";
import { DEFAULT_CONFIG_INPUT, defaultConfig } from "./defaults.ts";
import { ConfigError, type ConfigProblem, formatProblem, parseConfig } from "./load.ts";
import { reloadPlan } from "./reload.ts";
import { managementUrl } from "./uplinks.ts";

const FILE = "config/appliance.jsonc";
const DEFAULT_TEXT = Deno.readTextFileSync(
  new URL("../../config/appliance.jsonc", import.meta.url),
);

const WAN0 = `"wan": [{ "name": "wan", "interface": "wan0", "addresses": ["198.51.100.1/24"] }]`;
const LAN6 = `"lan": { "address": "2001:db8:192::1", "network": "2001:db8:192::/64" }`;

/**
 * The default file with `wan` replaced by `wan` (one line) and an `ipv6`
 * section (one line) after it; returns the text and both lines.
 */
function v6File(
  ipv6: string,
  wan = `"wan": [{ "name": "wan", "interface": "wan0", "addresses": ["198.51.100.1/24"],
    "addresses6": ["2001:db8:198::1/64"] }]`,
): { text: string; wanLine: number; ipv6Line: number } {
  const at = DEFAULT_TEXT.indexOf(WAN0);
  assert.ok(at >= 0, "the default wan line changed");
  const before = DEFAULT_TEXT.slice(0, at);
  const text = `${before}${wan},\n  "ipv6": ${ipv6}${DEFAULT_TEXT.slice(at + WAN0.length)}`;
  const wanLine = before.split("\n").length;
  return { text, wanLine, ipv6Line: wanLine + wan.split("\n").length };
}

/** The error lines `parseConfig` throws for `text`. */
function problems(text: string): string[] {
  try {
    parseConfig(text, FILE);
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.message.split("\n");
  }
  throw new Error("config parsed");
}

Deno.test("ipv6: off by default, nothing IPv6 in the configuration", () => {
  const c = defaultConfig();
  assert.deepEqual(c.ipv6, { enabled: false, lan: null, unlockPrefix: 64, pairFamilies: false });
  assert.deepEqual(c.wan.map((u) => u.addresses6), [[]]);
});

Deno.test("ipv6: enabled, the uplink's addresses and the LAN parsed and written canonically", () => {
  const f = v6File(
    `{ "enabled": true, "lan": { "address": "2001:DB8:192:0::1", "network": "2001:db8:192::/64" },
      "unlockPrefix": 128 }`,
    `"wan": [{ "name": "wan", "interface": "wan0", "addresses": ["198.51.100.1/24"],
      "addresses6": ["2001:db8:198:0:0:0:0:1/64", "2001:db8:198::2/64", "2001:db8:cafe::1/128"] }]`,
  );
  const c = parseConfig(f.text, FILE);
  assert.deepEqual(c.ipv6, {
    enabled: true,
    lan: {
      address: "2001:db8:192::1",
      addressWords: [0x20010db8, 0x01920000, 0, 1],
      network: "2001:db8:192::/64",
      networkWords: [0x20010db8, 0x01920000, 0, 0],
      prefixLength: 64,
    },
    unlockPrefix: 128,
    pairFamilies: false,
  });
  assert.deepEqual(c.wan[0].addresses6, [
    {
      address: "2001:db8:198::1",
      addressWords: [0x20010db8, 0x01980000, 0, 1],
      prefixLength: 64,
      network: "2001:db8:198::/64",
    },
    {
      address: "2001:db8:198::2",
      addressWords: [0x20010db8, 0x01980000, 0, 2],
      prefixLength: 64,
      network: "2001:db8:198::/64",
    },
    {
      address: "2001:db8:cafe::1",
      addressWords: [0x20010db8, 0xcafe0000, 0, 1],
      prefixLength: 128,
      network: "2001:db8:cafe::1/128",
    },
  ]);
  // The IPv4 side is as without IPv6.
  assert.deepEqual(c.wan[0].addresses, defaultConfig().wan[0].addresses);
});

Deno.test("ipv6: disabled, what is written is checked, noted and not applied", () => {
  const f = v6File(`{ ${LAN6} }`);
  const warnings: ConfigProblem[] = [];
  const c = parseConfig(f.text, FILE, warnings);
  assert.deepEqual(c.ipv6, { enabled: false, lan: null, unlockPrefix: 64, pairFamilies: false });
  assert.deepEqual(c.wan[0].addresses6, []);
  assert.deepEqual(warnings.map(formatProblem), [
    `${FILE}:${f.wanLine + 1}: wan[0].addresses6[0]: is not applied: ipv6.enabled is false`,
    `${FILE}:${f.ipv6Line}: ipv6.lan: is not applied: ipv6.enabled is false`,
  ]);
  const bad = v6File(
    `{ "lan": { "address": "2001:db8:192::1", "network": "2001:db8:192::1/64" } }`,
  );
  assert.deepEqual(problems(bad.text), [
    `${FILE}:${bad.ipv6Line}: ipv6.lan.network: 2001:db8:192::1/64 has host bits set (did you mean 2001:db8:192::/64?)`,
  ]);
});

Deno.test("ipv6: malformed addresses, prefixes and unlock prefixes are named at their line", () => {
  const f = v6File(
    `{ "enabled": true, "lan": { "address": "192.0.2.1", "network": "2001:db8:192::" },
      "unlockPrefix": 40 }`,
    `"wan": [{ "name": "wan", "interface": "wan0", "addresses": ["198.51.100.1/24"],
      "addresses6": ["2001:db8:198::1", "2001:db8::g/64", "2001:db8::1/129", "2001:db8::1%eth0/64"] }]`,
  );
  const at = `${FILE}:${f.wanLine + 1}: wan[0].addresses6`;
  assert.deepEqual(problems(f.text), [
    `${at}[0]: "2001:db8:198::1" is not an IPv6 address with prefix length (2001:db8::1/64)`,
    `${at}[1]: "2001:db8::g/64" is not an IPv6 address with prefix length (2001:db8::1/64)`,
    `${at}[2]: "2001:db8::1/129" is not an IPv6 address with prefix length (2001:db8::1/64)`,
    `${at}[3]: "2001:db8::1%eth0/64" is not an IPv6 address with prefix length (2001:db8::1/64)`,
    `${FILE}:${f.ipv6Line}: ipv6.lan.address: "192.0.2.1" is not an IPv6 address`,
    `${FILE}:${f.ipv6Line}: ipv6.lan.network: "2001:db8:192::" is not an IPv6 network (2001:db8:1::/64)`,
    `${FILE}:${f.ipv6Line + 1}: ipv6.unlockPrefix: must be at least 48`,
  ]);
  const big = v6File(`{ "enabled": true, ${LAN6}, "unlockPrefix": 129 }`);
  assert.deepEqual(problems(big.text), [
    `${FILE}:${big.ipv6Line}: ipv6.unlockPrefix: must be at most 128`,
  ]);
  const stray = v6File(`{ "enabled": true, ${LAN6}, "nat66": [] }`);
  assert.deepEqual(problems(stray.text), [`${FILE}:${stray.ipv6Line}: ipv6.nat66: unknown field`]);
});

Deno.test("ipv6: link-local, multicast and other non-global addresses are refused", () => {
  const f = v6File(
    `{ "enabled": true, "lan": { "address": "ff05::1", "network": "ff05::/64" } }`,
    `"wan": [{ "name": "wan", "interface": "wan0", "addresses": ["198.51.100.1/24"],
      "addresses6": ["fe80::1/64", "::1/128", "::ffff:198.51.100.1/128", "::/128"] }]`,
  );
  const at = `${FILE}:${f.wanLine + 1}: wan[0].addresses6`;
  assert.deepEqual(problems(f.text), [
    `${at}[0]: fe80::1 is link-local (fe80::/10; the kernel gives each interface its own): a global address is needed`,
    `${at}[1]: ::1 is the loopback address`,
    `${at}[2]: ::ffff:198.51.100.1 is IPv4-mapped (::ffff:0:0/96), never on the wire`,
    `${at}[3]: :: is the unspecified address`,
    `${FILE}:${f.ipv6Line}: ipv6.lan.network: ff05::/64 is multicast (ff00::/8)`,
    `${FILE}:${f.ipv6Line}: ipv6.lan.address: ff05::1 is multicast (ff00::/8)`,
  ]);
});

Deno.test("ipv6: the LAN prefix overlapping a WAN one, the LAN address misplaced", () => {
  const inside = v6File(
    `{ "enabled": true, ${LAN6} }`,
    `"wan": [{ "name": "wan", "interface": "wan0", "addresses": ["198.51.100.1/24"],
      "addresses6": ["2001:db8::1/32"] }]`,
  );
  assert.deepEqual(problems(inside.text), [
    `${FILE}:${inside.ipv6Line}: ipv6.lan.network: 2001:db8:192::/64 is inside uplink "wan"'s 2001:db8::/32 (wan[0].addresses6[0])`,
  ]);
  const contains = v6File(
    `{ "enabled": true, "lan": { "address": "2001:db8:192::1", "network": "2001:db8::/32" } }`,
  );
  assert.deepEqual(problems(contains.text), [
    `${FILE}:${contains.ipv6Line}: ipv6.lan.network: 2001:db8::/32 contains uplink "wan"'s 2001:db8:198::/64 (wan[0].addresses6[0])`,
  ]);
  const outside = v6File(
    `{ "enabled": true, "lan": { "address": "2001:db8:193::1", "network": "2001:db8:192::/64" } }`,
  );
  assert.deepEqual(problems(outside.text), [
    `${FILE}:${outside.ipv6Line}: ipv6.lan.address: 2001:db8:193::1 is outside ipv6.lan.network 2001:db8:192::/64`,
  ]);
  const anycast = v6File(
    `{ "enabled": true, "lan": { "address": "2001:db8:192::", "network": "2001:db8:192::/64" } }`,
  );
  assert.deepEqual(problems(anycast.text), [
    `${FILE}:${anycast.ipv6Line}: ipv6.lan.address: 2001:db8:192:: is the subnet-router anycast address of 2001:db8:192::/64 (RFC 4291 §2.6.1): take another`,
  ]);
});

Deno.test("ipv6: uplinks may not share an address or overlap each other's prefixes", () => {
  const f = v6File(
    `{ "enabled": true, ${LAN6} }`,
    `"wan": [
    { "name": "a", "interface": "wan0", "addresses": ["198.51.100.1/26"],
      "addresses6": ["2001:db8:198::1/48", "2001:db8:198::2/64"] },
    { "name": "b", "interface": "wan1", "addresses": ["198.51.100.65/26"],
      "addresses6": ["2001:db8:198:5::1/64", "2001:db8:198::2/64", "2001:db8:199::1/64"] }]`,
  );
  const at = `${FILE}:${f.wanLine + 4}: wan[1].addresses6`;
  assert.deepEqual(problems(f.text), [
    `${at}[0]: 2001:db8:198:5::/64 overlaps uplink "a"'s 2001:db8:198::/48 (wan[0].addresses6[0])`,
    `${at}[1]: 2001:db8:198::2 is already an address of uplink "a" (wan[0].addresses6[1])`,
  ]);
});

Deno.test("ipv6: enabled needs the LAN and a WAN address", () => {
  const f = v6File(
    `{ "enabled": true }`,
    `"wan": [{ "name": "wan", "interface": "wan0", "addresses": ["198.51.100.1/24"] }]`,
  );
  assert.deepEqual(problems(f.text), [
    `${FILE}:${f.ipv6Line}: ipv6.lan: is required with ipv6.enabled`,
    `${FILE}:${f.ipv6Line}: ipv6.enabled: needs an IPv6 address on at least one uplink (wan[].addresses6), where knocks arrive`,
  ]);
});

Deno.test("ipv6: the single-object wan of earlier versions takes addresses6 too", () => {
  const f = v6File(
    `{ "enabled": true, ${LAN6} }`,
    `"wan": { "interface": "wan0", "address": "198.51.100.1", "addresses6": ["fe80::1/64"] }`,
  );
  assert.deepEqual(problems(f.text), [
    `${FILE}:${f.wanLine}: wan.addresses6[0]: fe80::1 is link-local (fe80::/10; the kernel gives each interface its own): a global address is needed`,
  ]);
});

Deno.test("ipv6: a changed section takes a restart (SIGHUP names it)", () => {
  const on = parseConfig(v6File(`{ "enabled": true, ${LAN6} }`).text, FILE);
  const other = parseConfig(
    v6File(`{ "enabled": true, ${LAN6}, "unlockPrefix": 56 }`).text,
    FILE,
  );
  assert.deepEqual(reloadPlan(on, other), { apply: [], restart: ["ipv6.unlockPrefix"] });
  const paired = parseConfig(
    v6File(`{ "enabled": true, ${LAN6}, "pairFamilies": true }`).text,
    FILE,
  );
  assert.deepEqual(reloadPlan(on, paired), { apply: [], restart: ["ipv6.pairFamilies"] });
  assert.deepEqual(reloadPlan(defaultConfig(), on).restart, ["wan", "ipv6.enabled", "ipv6.lan"]);
});

/** The default configuration with IPv6 on (`LAN6`, one WAN IPv6 address) and `over` on top. */
function v6Input(over: Record<string, unknown> = {}, enabled = true): string {
  return JSON.stringify({
    ...DEFAULT_CONFIG_INPUT,
    wan: [{
      name: "wan",
      interface: "wan0",
      addresses: ["198.51.100.1/24"],
      addresses6: ["2001:db8:198::1/64"],
    }],
    ipv6: { enabled, lan: { address: "2001:db8:192::1", network: "2001:db8:192::/64" } },
    ...over,
  });
}

/** `path: reason` of every problem `parseConfig` throws for `text`. */
function paths(text: string): string[] {
  try {
    parseConfig(text, FILE);
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.problems.map((p) => `${p.path}: ${p.reason}`);
  }
  throw new Error("config parsed");
}

const NAT66 = {
  name: "web6",
  publicPorts: "443",
  privateAddress: "2001:db8:192::12",
  privatePorts: "8443",
};
const PINHOLE = {
  name: "ssh6",
  privateAddress: "2001:db8:192::12",
  ports: [{ protocol: "tcp", ports: "22" }],
};

Deno.test("ipv6: a NAT66 forward and a pinhole load beside the IPv4 rules", () => {
  const c = parseConfig(
    v6Input({
      forwards: [...DEFAULT_CONFIG_INPUT.forwards!, {
        ...NAT66,
        uplink: "wan",
        wanAddress: "2001:db8:198::1",
      }],
      openPorts: [PINHOLE],
    }),
    FILE,
  );
  assert.equal(c.forwards.at(-1)!.privateAddress, "2001:db8:192::12");
  assert.equal(c.openPorts[0].name, "ssh6");
});

Deno.test("ipv6: rules to IPv6 hosts are refused at the field when IPv6 is off or they do not fit", () => {
  assert.deepEqual(paths(v6Input({ openPorts: [PINHOLE] }, false)), [
    "openPorts[0].privateAddress: private address 2001:db8:192::12 is IPv6, but IPv6 is off: " +
    "a pinhole needs ipv6.enabled",
  ]);
  assert.deepEqual(
    paths(v6Input({ forwards: [{ ...NAT66, privateAddress: "2001:db8:9::12" }] })),
    [
      "forwards[0].privateAddress: private address 2001:db8:9::12 is outside the LAN prefix " +
      "2001:db8:192::/64 (ipv6.lan.network)",
    ],
  );
  assert.deepEqual(
    paths(v6Input({ forwards: [{ ...NAT66, uplink: "wan", wanAddress: "198.51.100.1" }] })),
    [
      "forwards[0].wanAddress: WAN address 198.51.100.1 is IPv4 but private address " +
      "2001:db8:192::12 is IPv6: a forward stays in one family",
    ],
  );
  assert.deepEqual(
    paths(v6Input({ forwards: [{ ...NAT66, uplink: "wan", wanAddress: "2001:db8:198::7" }] })),
    [
      'forwards[0].wanAddress: 2001:db8:198::7 is not an IPv6 address of uplink "wan" ' +
      "(2001:db8:198::1)",
    ],
  );
});

/** `v6Input` with uplinks `wan` and `wan2` (2001:db8:197::1/64), the first with NPTv6 to `outside`. */
function nptInput(outside: string, over: Record<string, unknown> = {}, enabled = true): string {
  return v6Input({
    wan: [
      {
        name: "wan",
        interface: "wan0",
        addresses: ["198.51.100.1/24"],
        addresses6: ["2001:db8:198::1/64"],
        npt6: { outside },
      },
      {
        name: "wan2",
        interface: "wan1",
        addresses: ["198.51.100.65/26"],
        addresses6: ["2001:db8:197::1/64"],
        ...over,
      },
    ],
  }, enabled);
}

Deno.test("ipv6: wan[].npt6 takes an outside prefix as long as the LAN's", () => {
  const c = parseConfig(nptInput("2001:DB8:199:0::/64"), FILE);
  assert.deepEqual(c.wan.map((u) => u.npt6), [
    {
      outside: "2001:db8:199::/64",
      outsideWords: [0x20010db8, 0x01990000, 0, 0],
      prefixLength: 64,
    },
    null,
  ]);
  const warnings: ConfigProblem[] = [];
  const off = parseConfig(nptInput("2001:db8:199::/64", {}, false), FILE, warnings);
  assert.deepEqual(off.wan.map((u) => u.npt6), [null, null]);
  assert.ok(
    warnings.some((w) =>
      w.path === "wan[0].npt6" && w.reason === "is not applied: ipv6.enabled is false"
    ),
    JSON.stringify(warnings),
  );
});

Deno.test("ipv6: a bad NPTv6 outside prefix is refused at its field and line", () => {
  const at = "wan[0].npt6.outside: ";
  assert.deepEqual(paths(nptInput("2001:db8:199::1/64")), [
    `${at}2001:db8:199::1/64 has host bits set (did you mean 2001:db8:199::/64?)`,
  ]);
  assert.deepEqual(paths(nptInput("fd00:db8:199::/64")), [
    `${at}fd00:db8:199::/64 is unique local (fc00::/7): the outside prefix must be one the ISP routes here`,
  ]);
  assert.deepEqual(paths(nptInput("fe80::/64")), [
    `${at}fe80::/64 is link-local (fe80::/10; the kernel gives each interface its own): a global address is needed`,
  ]);
  assert.deepEqual(paths(nptInput("2001:db8:199::/48")), [
    `${at}2001:db8:199::/48 is not as long as the LAN prefix 2001:db8:192::/64 (ipv6.lan.network)`,
  ]);
  assert.deepEqual(paths(nptInput("2001:db8:192::/64")), [
    `${at}2001:db8:192::/64 overlaps the LAN prefix 2001:db8:192::/64 (ipv6.lan.network)`,
  ]);
  assert.deepEqual(paths(nptInput("2001:db8:197::/64")), [
    `${at}2001:db8:197::/64 overlaps uplink "wan2"'s 2001:db8:197::/64 (wan[1].addresses6[0])`,
  ]);
  assert.deepEqual(
    paths(nptInput("2001:db8:199::/64", { npt6: { outside: "2001:db8:199::/64" } })),
    [
      `wan[1].npt6.outside: 2001:db8:199::/64 overlaps uplink "wan"'s outside prefix (wan[0].npt6.outside)`,
    ],
  );
  const long = v6File(
    `{ "enabled": true, "lan": { "address": "2001:db8:192::1", "network": "2001:db8:192::/80" } }`,
    `"wan": [{ "name": "wan", "interface": "wan0", "addresses": ["198.51.100.1/24"],
      "addresses6": ["2001:db8:198::1/64"],
      "npt6": { "outside": "2001:db8:199::/80" } }]`,
  );
  assert.deepEqual(problems(long.text), [
    `${FILE}:${
      long.wanLine + 2
    }: wan[0].npt6.outside: 2001:db8:199::/80 is longer than /64: NPTv6 (RFC 6296) maps prefixes up to /64`,
  ]);
});

Deno.test("ipv6: a pinhole to a unique local LAN host is taken once an uplink has NPTv6", () => {
  const ula = {
    ipv6: { enabled: true, lan: { address: "fd00:db8:192::1", network: "fd00:db8:192::/64" } },
    openPorts: [{ ...PINHOLE, privateAddress: "fd00:db8:192::12" }],
  };
  const refused = paths(v6Input(ula));
  assert.equal(refused.length, 1, refused.join("\n"));
  assert.match(refused[0], /^openPorts\[0\]\.privateAddress: .*unique local, fc00::\/7/);
  const wan = JSON.parse(nptInput("2001:db8:199::/64")).wan;
  const c = parseConfig(v6Input({ ...ula, wan }), FILE);
  assert.equal(c.openPorts[0].privateAddress, "fd00:db8:192::12");
});

Deno.test("ipv6: admission.allow takes IPv6 networks, applied only with IPv6 on", () => {
  const allow = ["203.0.113.0/24", "2001:DB8:5::/48", "2001:db8:6::1"];
  const on = parseConfig(v6Input({ admission: { allow } }), FILE);
  assert.deepEqual(on.admission.allow, ["203.0.113.0/24"]);
  assert.deepEqual(on.admission.allow6, ["2001:db8:5::/48", "2001:db8:6::1/128"]);
  assert.equal(on.admission.allowPrefixes6[0].prefix, 48);
  const warnings: ConfigProblem[] = [];
  const off = parseConfig(v6Input({ admission: { allow } }, false), FILE, warnings);
  assert.deepEqual(off.admission.allow6, []);
  assert.ok(
    warnings.some((w) =>
      w.path === "admission.allow[1]" && w.reason === "is not applied: ipv6.enabled is false"
    ),
  );
  assert.deepEqual(paths(v6Input({ admission: { allow: ["2001:db8::/129"] } })), [
    'admission.allow[0]: "2001:db8::/129" is not an IPv4 or IPv6 network (a.b.c.d/n, 2001:db8::/n)',
  ]);
});

Deno.test("ipv6: management.listen takes an IPv6 address, bracketed in the URL", () => {
  const management = { port: 8443, wanAccess: "knock", listen: "2001:DB8:192:0::1" };
  const c = parseConfig(v6Input({ management }), FILE);
  assert.equal(c.management.listen, "2001:db8:192::1");
  assert.equal(c.management.listenU32, null);
  assert.equal(managementUrl(c), "https://[2001:db8:192::1]:8443/");
  assert.equal(managementUrl(defaultConfig()), "https://192.0.2.1:8443/");
  assert.deepEqual(paths(v6Input({ management: { ...management, listen: "[2001:db8::1]" } })), [
    'management.listen: "[2001:db8::1]" is not an IPv4 or IPv6 address',
  ]);
});

Deno.test("ipv6: pairFamilies is off by default, a boolean when given", () => {
  assert.equal(
    parseConfig(v6File(`{ "enabled": true, ${LAN6} }`).text, FILE).ipv6.pairFamilies,
    false,
  );
  const on = parseConfig(v6File(`{ "enabled": true, ${LAN6}, "pairFamilies": true }`).text, FILE);
  assert.equal(on.ipv6.pairFamilies, true);
  const f = v6File(`{ "enabled": true, ${LAN6}, "pairFamilies": "yes" }`);
  const lines = problems(f.text);
  assert.equal(lines.length, 1);
  assert.match(lines[0], /ipv6\.pairFamilies: /);
});
