import assert from "node:assert/strict";
import { parseIpv4 } from "../packet/address.ts";
import type { OpenPortsRule, PortForwardRule } from "./rule.ts";
import { compileRules, NO_ENTRY, RuleIndex, RuleKind } from "./rule_index.ts";
import { RuleValidationError } from "./rule_validate.ts";

const SERVER = parseIpv4("192.0.2.12")!;

function fwd(over: Partial<PortForwardRule>): PortForwardRule {
  return {
    name: "web",
    enabled: true,
    protocol: "tcp",
    publicPorts: { start: 52201, end: 52201 },
    privateAddress: "192.0.2.12",
    privatePorts: { start: 8080, end: 8080 },
    enforceKnock: true,
    users: [],
    ...over,
  };
}

const LAB: PortForwardRule[] = [
  fwd({}),
  fwd({
    name: "iperf",
    protocol: "both",
    publicPorts: { start: 52202, end: 52202 },
    privatePorts: { start: 5201, end: 5201 },
    users: ["alice"],
  }),
  fwd({
    name: "range",
    publicPorts: { start: 52210, end: 52219 },
    privatePorts: { start: 8080, end: 8089 },
  }),
  fwd({
    name: "udp-echo",
    protocol: "udp",
    publicPorts: { start: 52203, end: 52203 },
    privatePorts: { start: 7, end: 7 },
  }),
  fwd({
    name: "funnel",
    protocol: "udp",
    publicPorts: { start: 52220, end: 52229 },
    privatePorts: { start: 9000, end: 9000 },
    enforceKnock: false,
  }),
  fwd({ name: "off", enabled: false, publicPorts: { start: 52230, end: 52230 } }),
];
const OPEN: OpenPortsRule[] = [{
  name: "mail",
  enabled: true,
  privateAddress: "192.0.2.25",
  ports: [
    { protocol: "tcp", ports: { start: 25, end: 25 } },
    { protocol: "both", ports: { start: 60000, end: 60002 } },
  ],
  enforceKnock: false,
  users: [],
}];

Deno.test("compileRules maps (proto, public port) to entries", () => {
  const idx = compileRules(LAB, OPEN);
  assert.equal(idx.size, 7); // 5 enabled forwards + 2 open-port entries.
  const web = idx.lookup(6, 0, 52201);
  assert.notEqual(web, NO_ENTRY);
  assert.equal(idx.ruleName(web), "web");
  assert.equal(idx.kind[web], RuleKind.Forward);
  assert.equal(idx.privateAddress(web), SERVER);
  assert.equal(idx.privatePort(web, 52201), 8080);
  assert.equal(idx.enforceKnock(web), true);
  assert.equal(idx.lookup(17, 0, 52201), NO_ENTRY);
  assert.equal(idx.lookup(1, 0, 52201), NO_ENTRY);
  // "both" owns the port on each transport with one entry.
  assert.equal(idx.lookup(6, 0, 52202), idx.lookup(17, 0, 52202));
  assert.equal(idx.ruleName(idx.lookup(17, 0, 52202)), "iperf");
  assert.equal(idx.lookup(6, 0, 52203), NO_ENTRY);
  assert.equal(idx.privatePort(idx.lookup(17, 0, 52203), 52203), 7);
  // Disabled rules are not compiled.
  assert.equal(idx.lookup(6, 0, 52230), NO_ENTRY);
  assert.ok(!idx.ruleNames.includes("off"));
});

Deno.test("compileRules: ranges map port for port, or all onto one private port", () => {
  const idx = compileRules(LAB, OPEN);
  for (let p = 52210; p <= 52219; p++) {
    const e = idx.lookup(6, 0, p);
    assert.equal(idx.ruleName(e), "range");
    assert.equal(idx.privatePort(e, p), 8080 + (p - 52210));
  }
  assert.equal(idx.lookup(6, 0, 52209), NO_ENTRY);
  assert.equal(idx.lookup(6, 0, 52220), NO_ENTRY);
  for (let p = 52220; p <= 52229; p++) {
    const e = idx.lookup(17, 0, p);
    assert.equal(idx.privatePort(e, p), 9000);
    assert.equal(idx.enforceKnock(e), false);
  }
});

Deno.test("compileRules: open-ports entries keep the port and share the rule name", () => {
  const idx = compileRules(LAB, OPEN);
  const smtp = idx.lookup(6, 0, 25);
  const high = idx.lookup(17, 0, 60001);
  assert.notEqual(smtp, high);
  assert.equal(idx.entryRule[smtp], idx.entryRule[high]);
  assert.equal(idx.ruleName(high), "mail");
  assert.equal(idx.kind[high], RuleKind.OpenPorts);
  assert.equal(idx.privatePort(high, 60001), 60001);
  assert.equal(idx.privatePort(smtp, 25), 25);
  assert.equal(idx.privateAddress(smtp), parseIpv4("192.0.2.25"));
  assert.equal(idx.lookup(17, 0, 25), NO_ENTRY);
});

Deno.test("RuleIndex.userAllowed: any user when none named, else only those", () => {
  const idx = compileRules(LAB, OPEN);
  assert.equal(idx.userAllowed(idx.lookup(6, 0, 52201), "bob"), true);
  const iperf = idx.lookup(6, 0, 52202);
  assert.equal(idx.userAllowed(iperf, "alice"), true);
  assert.equal(idx.userAllowed(iperf, "bob"), false);
});

Deno.test("compileRules refuses an invalid set; empty index answers -1", () => {
  assert.throws(
    () => compileRules([fwd({}), fwd({ name: "ssh" })], []),
    (e: unknown) =>
      e instanceof RuleValidationError &&
      e.message === 'rule "ssh" overlaps rule "web" on tcp port 52201',
  );
  const empty = RuleIndex.empty();
  assert.equal(empty.size, 0);
  for (const port of [0, 1, 52201, 65535]) {
    assert.equal(empty.lookup(6, 0, port), NO_ENTRY);
    assert.equal(empty.lookup(17, 0, port), NO_ENTRY);
  }
});

Deno.test("RuleIndex.lookup answers every port of both transports", () => {
  const idx = compileRules(LAB, OPEN);
  let hits = 0;
  for (let port = 0; port < 65536; port++) {
    if (idx.lookup(6, 0, port) !== NO_ENTRY) hits++;
    if (idx.lookup(17, 0, port) !== NO_ENTRY) hits++;
  }
  assert.ok(hits > 0);
  assert.equal(idx.lookup(1, 0, 52201), NO_ENTRY);
});

/** Two uplinks: isp-a with slots 0 and 1, isp-b with slot 2. */
const WAN = [
  { name: "isp-a", addresses: ["198.51.100.1", "198.51.100.2"] },
  { name: "isp-b", addresses: ["198.51.100.65"] },
];

Deno.test("compileRules: the same port on two addresses forwards to two hosts", () => {
  const idx = compileRules(
    [
      fwd({ name: "web-a", uplink: "isp-a", wanAddress: "198.51.100.2" }),
      fwd({
        name: "web-b",
        uplink: "isp-b",
        wanAddress: "198.51.100.65",
        privateAddress: "192.0.2.13",
      }),
    ],
    [],
    WAN,
  );
  assert.equal(idx.lookup(6, 0, 52201), NO_ENTRY, "198.51.100.1 has no rule on it");
  const a = idx.lookup(6, 1, 52201), b = idx.lookup(6, 2, 52201);
  assert.equal(idx.ruleName(a), "web-a");
  assert.equal(idx.ruleName(b), "web-b");
  assert.equal(idx.privateAddress(a), SERVER);
  assert.equal(idx.privateAddress(b), parseIpv4("192.0.2.13"));
  assert.deepEqual([idx.soleSlot[a], idx.soleSlot[b]], [1, 2]);
  assert.equal(idx.lookup(6, 3, 52201), NO_ENTRY, "no such slot");
  assert.equal(idx.lookup(6, -1, 52201), NO_ENTRY);
  assert.equal(idx.lookup(6, 64, 52201), NO_ENTRY);
  assert.equal(idx.lookup(17, 2, 52201), NO_ENTRY);
});

Deno.test('compileRules: "all" holds every address, an uplink its own, one address itself', () => {
  const idx = compileRules(
    [
      fwd({ name: "everywhere" }),
      fwd({ name: "on-a", uplink: "isp-a", publicPorts: { start: 443, end: 443 } }),
      fwd({ name: "on-b", uplink: "isp-b", publicPorts: { start: 443, end: 443 } }),
      fwd({
        name: "one",
        uplink: "isp-a",
        wanAddress: "198.51.100.1",
        publicPorts: { start: 22, end: 22 },
      }),
    ],
    [],
    WAN,
  );
  const all = [0, 1, 2].map((s) => idx.ruleName(idx.lookup(6, s, 52201)));
  assert.deepEqual(all, ["everywhere", "everywhere", "everywhere"]);
  assert.deepEqual([0, 1, 2].map((s) => idx.ruleName(idx.lookup(6, s, 443))), [
    "on-a",
    "on-a",
    "on-b",
  ]);
  assert.deepEqual([0, 1, 2].map((s) => idx.lookup(6, s, 22) !== NO_ENTRY), [true, false, false]);
  const e = idx.lookup(6, 0, 52201);
  assert.equal(idx.soleSlot[e], -1, "three addresses");
  assert.equal(idx.firstSlot[e], 0);
  assert.ok(idx.hasSlot(e, 2) && !idx.hasSlot(e, 3));
  assert.equal(idx.soleSlot[idx.lookup(6, 0, 22)], 0);
  // One uplink of one address: "all" is that one slot.
  const single = compileRules([fwd({})], [], [{ name: "wan", addresses: ["198.51.100.1"] }]);
  assert.equal(single.soleSlot[single.lookup(6, 0, 52201)], 0);
  assert.equal(single.lookup(6, 1, 52201), NO_ENTRY);
});

Deno.test("compileRules: ranges on different addresses overlapping in part chain per port", () => {
  const idx = compileRules([
    fwd({
      name: "wide",
      uplink: "isp-a",
      publicPorts: { start: 80, end: 90 },
      privatePorts: { start: 80, end: 80 },
    }),
    fwd({ name: "one", uplink: "isp-b", publicPorts: { start: 85, end: 85 } }),
    fwd({
      name: "tail",
      uplink: "isp-b",
      publicPorts: { start: 88, end: 95 },
      privatePorts: { start: 88, end: 95 },
    }),
  ], [{
    ...OPEN[0],
    uplink: "isp-b",
    ports: [{ protocol: "both", ports: { start: 86, end: 87 } }],
  }], WAN);
  const at = (slot: number, port: number) => {
    const e = idx.lookup(6, slot, port);
    return e === NO_ENTRY ? "-" : idx.ruleName(e);
  };
  const ports = [79, 80, 84, 85, 86, 87, 88, 90, 91, 95, 96];
  assert.deepEqual(ports.map((p) => at(0, p)), [
    "-",
    "wide",
    "wide",
    "wide",
    "wide",
    "wide",
    "wide",
    "wide",
    "-",
    "-",
    "-",
  ]);
  assert.deepEqual(ports.map((p) => at(2, p)), [
    "-",
    "-",
    "-",
    "one",
    "mail",
    "mail",
    "tail",
    "tail",
    "tail",
    "tail",
    "-",
  ]);
  assert.equal(idx.ruleName(idx.lookup(17, 2, 86)), "mail");
  assert.equal(idx.lookup(17, 0, 86), NO_ENTRY);
  assert.equal(idx.privatePort(idx.lookup(6, 2, 90), 90), 90);
});

Deno.test("compileRules refuses bindings the uplinks do not have, and clashes per address", () => {
  assert.throws(
    () => compileRules([fwd({ uplink: "isp-c" })], [], WAN),
    (e: unknown) =>
      e instanceof RuleValidationError &&
      e.message === 'rule "web": uplink "isp-c" does not exist (uplinks: isp-a, isp-b)',
  );
  assert.throws(
    () => compileRules([fwd({ uplink: "isp-b", wanAddress: "198.51.100.2" })], [], WAN),
    /198\.51\.100\.2 is not an address of uplink "isp-b" \(198\.51\.100\.65\)/,
  );
  assert.throws(
    () =>
      compileRules(
        [fwd({}), fwd({ name: "b", uplink: "isp-a", wanAddress: "198.51.100.2" })],
        [],
        WAN,
      ),
    (e: unknown) =>
      e instanceof RuleValidationError &&
      e.message === 'rule "b" overlaps rule "web" on tcp port 52201 at 198.51.100.2',
  );
});
