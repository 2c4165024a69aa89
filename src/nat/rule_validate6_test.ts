import assert from "node:assert/strict";
import type { OpenPortsRule, PortForwardRule } from "./rule.ts";
import {
  type KnockClaim,
  type NetworkLayout,
  privateAddressError,
  validateConfig,
  validateRules,
} from "./rule_validate.ts";

function fwd(over: Partial<PortForwardRule> = {}): PortForwardRule {
  return {
    name: "web6",
    enabled: true,
    protocol: "tcp",
    publicPorts: { start: 443, end: 443 },
    privateAddress: "2001:db8:1::12",
    privatePorts: { start: 8443, end: 8443 },
    enforceKnock: true,
    users: [],
    ...over,
  };
}

function pinhole(over: Partial<OpenPortsRule> = {}): OpenPortsRule {
  return {
    name: "ssh6",
    enabled: true,
    privateAddress: "2001:db8:1::12",
    ports: [{ protocol: "tcp", ports: { start: 22, end: 22 } }],
    enforceKnock: true,
    users: [],
    ...over,
  };
}

const NETWORK: NetworkLayout = {
  wanAddress: "198.51.100.1",
  uplinks: [
    {
      name: "isp-a",
      addresses: ["198.51.100.1", "198.51.100.2"],
      addresses6: ["2001:db8:a::1", "2001:db8:a::2"],
      management: true,
    },
    { name: "isp-b", addresses: ["203.0.113.1"], addresses6: [], management: false },
  ],
  lanAddress: "192.0.2.1",
  lanNetwork: "192.0.2.0/24",
  managementPort: 8443,
  managementWanAccess: "knock",
  ipv6: { lanAddress: "2001:db8:1::1", lanNetwork: "2001:db8:1::/64" },
};

/** `field: message` of every problem not mirrored, for a candidate under `NETWORK`. */
function problems(
  forwards: PortForwardRule[],
  openPorts: OpenPortsRule[] = [],
  network: NetworkLayout = NETWORK,
  users?: KnockClaim[],
): string[] {
  return validateConfig({ forwards, openPorts, network, users }).filter((p) => !p.mirror)
    .map((p) => `${p.field}: ${p.message}`);
}

Deno.test("privateAddressError: IPv6 global unicast hosts pass, the others are named", () => {
  assert.equal(privateAddressError("2001:db8:1::12"), null);
  assert.equal(privateAddressError("fd00:1::12"), null);
  assert.equal(
    privateAddressError("::1"),
    "private address ::1 is the loopback address: a global unicast host is needed",
  );
  assert.equal(
    privateAddressError("ff02::1"),
    "private address ff02::1 is multicast (ff00::/8): a global unicast host is needed",
  );
  assert.equal(
    privateAddressError("::ffff:192.0.2.12"),
    "private address ::ffff:192.0.2.12 is IPv4-mapped (::ffff:0:0/96), never on the wire: " +
      "a global unicast host is needed",
  );
  assert.equal(
    privateAddressError("2001:db8::1%lan0"),
    'private address "2001:db8::1%lan0" is not an IPv4 or IPv6 address',
  );
  assert.equal(
    privateAddressError("2001:db8:1::12/64"),
    'private address "2001:db8:1::12/64" is not an IPv4 or IPv6 address',
  );
});

Deno.test("validateConfig: a pinhole and a NAT66 forward inside ipv6.lan pass", () => {
  assert.deepEqual(problems([fwd()], [pinhole()]), []);
  assert.deepEqual(problems([fwd({ uplink: "isp-a", wanAddress: "2001:DB8:A:0::2" })]), []);
  assert.deepEqual(problems([fwd({ uplink: "isp-a" })], [pinhole({ uplink: "all" })]), []);
});

Deno.test("validateConfig: an IPv6 rule with IPv6 off is refused at privateAddress", () => {
  const off = { ...NETWORK, ipv6: null };
  assert.deepEqual(problems([fwd()], [pinhole()], off), [
    'privateAddress: rule "web6": private address 2001:db8:1::12 is IPv6, but IPv6 is off: ' +
    "an IPv6 forward (NAT66) needs ipv6.enabled",
    'privateAddress: rule "ssh6": private address 2001:db8:1::12 is IPv6, but IPv6 is off: ' +
    "a pinhole needs ipv6.enabled",
  ]);
  const { ipv6: _, ...older } = NETWORK;
  assert.equal(problems([fwd()], [], older).length, 1);
});

Deno.test("validateConfig: IPv6 hosts outside the LAN prefix or the appliance's own are refused", () => {
  assert.deepEqual(problems([fwd({ privateAddress: "2001:db8:2::12" })]), [
    'privateAddress: rule "web6": private address 2001:db8:2::12 is outside the LAN prefix ' +
    "2001:db8:1::/64 (ipv6.lan.network)",
  ]);
  assert.deepEqual(problems([], [pinhole({ privateAddress: "2001:DB8:1:0::1" })]), [
    `privateAddress: rule "ssh6": private address 2001:db8:1::1 is the appliance's LAN IPv6 address`,
  ]);
  assert.deepEqual(problems([fwd({ privateAddress: "2001:db8:1::" })]), [
    'privateAddress: rule "web6": private address 2001:db8:1:: is the subnet-router anycast ' +
    "address of 2001:db8:1::/64 (RFC 4291 §2.6.1), not a host",
  ]);
  assert.deepEqual(problems([fwd({ privateAddress: "fe80::12" })]), [
    'privateAddress: Cannot parse rule "web6": private address fe80::12 is link-local ' +
    "(fe80::/10), never forwarded: a global unicast host is needed",
  ]);
});

Deno.test("validateRules: a pinhole to a unique local address is refused; a NAT66 forward to it passes", () => {
  const ula = "fd00:1::12";
  assert.deepEqual(validateRules([], [pinhole({ privateAddress: ula })]).map((p) => p.reason), [
    "a pinhole to fd00:1::12 (unique local, fc00::/7) cannot be reached from the Internet: " +
    "forward to it with a port forward (NAT66) instead",
  ]);
  assert.deepEqual(validateRules([fwd({ privateAddress: ula })], []), []);
});

Deno.test("validateConfig: the families of privateAddress and wanAddress must match", () => {
  assert.deepEqual(problems([fwd({ uplink: "isp-a", wanAddress: "198.51.100.2" })]), [
    'wanAddress: Cannot parse rule "web6": WAN address 198.51.100.2 is IPv4 but private ' +
    "address 2001:db8:1::12 is IPv6: a forward stays in one family",
  ]);
  assert.deepEqual(
    problems([fwd({ privateAddress: "192.0.2.12", uplink: "isp-a", wanAddress: "2001:db8:a::1" })]),
    [
      'wanAddress: Cannot parse rule "web6": WAN address 2001:db8:a::1 is IPv6 but private ' +
      "address 192.0.2.12 is IPv4: a forward stays in one family",
    ],
  );
});

Deno.test("validateConfig: a pinhole's wanAddress must be all", () => {
  assert.deepEqual(problems([], [pinhole({ wanAddress: "2001:db8:a::1" })]), [
    'wanAddress: Cannot parse rule "ssh6": WAN address 2001:db8:a::1: an open-ports rule to an ' +
    'IPv6 host is a pinhole to 2001:db8:1::12 itself (no NAT), so wanAddress must be "all"',
  ]);
});

Deno.test("validateConfig: an IPv6 forward's WAN address must be one of the uplink's addresses6", () => {
  assert.deepEqual(problems([fwd({ uplink: "isp-a", wanAddress: "2001:db8:a::9" })]), [
    'wanAddress: rule "web6": 2001:db8:a::9 is not an IPv6 address of uplink "isp-a" ' +
    "(2001:db8:a::1, 2001:db8:a::2)",
  ]);
  assert.deepEqual(problems([fwd({ uplink: "isp-b" })]), [
    'uplink: rule "web6": uplink "isp-b" has no IPv6 address (wan[].addresses6) for an IPv6 ' +
    "forward",
  ]);
  // A caller that does not know the IPv6 addresses (the data plane's uplinks) does not check them.
  const v4Only = [{ name: "isp-a", addresses: ["198.51.100.1"] }];
  assert.deepEqual(
    validateRules([fwd({ uplink: "isp-a", wanAddress: "2001:db8:a::9" })], [], v4Only),
    [],
  );
});

Deno.test("validateConfig: public ports are unique per WAN address within a family", () => {
  const v4 = fwd({ name: "web4", privateAddress: "192.0.2.12" });
  assert.deepEqual(problems([v4, fwd()]), []);
  assert.deepEqual(
    problems([fwd({ name: "a" }), fwd({ name: "b", privateAddress: "2001:db8:1::13" })]),
    [
      'publicPorts: rule "b" overlaps rule "a" on tcp port 443 at every WAN IPv6 address',
    ],
  );
  assert.deepEqual(
    problems([
      fwd({ name: "a", uplink: "isp-a", wanAddress: "2001:db8:a::1" }),
      fwd({ name: "b", uplink: "isp-a", wanAddress: "2001:db8:a::2" }),
      fwd({ name: "c", uplink: "isp-a" }),
    ]),
    [
      'publicPorts: rule "c" overlaps rule "a" on tcp port 443 at 2001:db8:a::1',
      'publicPorts: rule "c" overlaps rule "b" on tcp port 443 at 2001:db8:a::2',
    ],
  );
});

Deno.test("validateConfig: a pinhole's uplink must be all: the TUN does not say which one a packet came in by", () => {
  assert.deepEqual(problems([], [pinhole({ uplink: "isp-b" })]), [
    'uplink: Cannot parse rule "ssh6": uplink isp-b: an open-ports rule to an IPv6 host is a ' +
    "pinhole to 2001:db8:1::12 itself, reached by whichever uplink routes the LAN prefix, and the " +
    'data plane cannot tell which one a packet came in by, so uplink must be "all"',
  ]);
});

Deno.test("validateConfig: pinholes clash only at the same host, never with WAN-address rules", () => {
  const other = pinhole({ name: "ssh6-b", privateAddress: "2001:db8:1::13" });
  const nat66 = fwd({ publicPorts: { start: 22, end: 22 }, privatePorts: { start: 22, end: 22 } });
  assert.deepEqual(problems([nat66], [pinhole(), other]), []);
  assert.deepEqual(problems([], [pinhole(), pinhole({ name: "again" })]), [
    'ports[0].ports: rule "again" overlaps rule "ssh6" on tcp port 22 to 2001:db8:1::12',
  ]);
});

Deno.test("validateConfig: first knock ports and the management port clash with NAT66 forwards, not pinholes", () => {
  const alice: KnockClaim = { name: "alice", enabled: true, firstPort: 22, transport: "any" };
  assert.deepEqual(problems([], [pinhole()], NETWORK, [alice]), []);
  const nat66 = fwd({ publicPorts: { start: 22, end: 22 }, privatePorts: { start: 22, end: 22 } });
  assert.deepEqual(problems([nat66], [], NETWORK, [alice]), [
    'knock.firstPort: user "alice": first knock port 22 is a public tcp port of rule "web6"',
  ]);
  const mgmt = fwd({ publicPorts: { start: 8443, end: 8443 } });
  assert.deepEqual(problems([mgmt]), [
    'publicPorts: rule "web6": public tcp port 8443 is the management port',
  ]);
  const mgmtPinhole = pinhole({ ports: [{ protocol: "tcp", ports: { start: 8443, end: 8443 } }] });
  assert.deepEqual(problems([], [mgmtPinhole]), []);
});
