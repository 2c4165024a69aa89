import assert from "node:assert/strict";
import type { OpenPortsRule, PortForwardRule } from "./rule.ts";
import {
  assertValidRules,
  formatPortRange,
  parsePortRange,
  RuleValidationError,
  validateRules,
} from "./rule_validate.ts";

function fwd(over: Partial<PortForwardRule> = {}): PortForwardRule {
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

function open(over: Partial<OpenPortsRule> = {}): OpenPortsRule {
  return {
    name: "mail",
    enabled: true,
    privateAddress: "192.0.2.25",
    ports: [{ protocol: "tcp", ports: { start: 25, end: 25 } }],
    enforceKnock: false,
    users: [],
    ...over,
  };
}

function messages(f: PortForwardRule[], o: OpenPortsRule[] = []): string[] {
  return validateRules(f, o).map((p) => p.message);
}

Deno.test("parsePortRange accepts a number, N and A-B and explains refusals", () => {
  assert.deepEqual(parsePortRange(52201), { range: { start: 52201, end: 52201 } });
  assert.deepEqual(parsePortRange("52201"), { range: { start: 52201, end: 52201 } });
  assert.deepEqual(parsePortRange("52210-52219"), { range: { start: 52210, end: 52219 } });
  assert.deepEqual(parsePortRange(70000), { error: "port 70000 is out of range" });
  assert.deepEqual(parsePortRange("0"), { error: "port 0 is out of range" });
  assert.deepEqual(parsePortRange(1.5), { error: "port 1.5 is not an integer" });
  assert.deepEqual(parsePortRange("52219-52210"), {
    error: "port range 52219-52210 ends before it starts",
  });
  assert.deepEqual(parsePortRange("80,443"), {
    error: '"80,443" is not a port or a port range (N or A-B)',
  });
  assert.equal(formatPortRange({ start: 1, end: 1 }), "1");
  assert.equal(formatPortRange({ start: 1, end: 9 }), "1-9");
});

Deno.test("validateRules accepts a good rule set", () => {
  const rules = [
    fwd(),
    fwd({
      name: "range",
      publicPorts: { start: 52210, end: 52219 },
      privatePorts: { start: 8080, end: 8089 },
    }),
    fwd({ name: "many-to-one", protocol: "udp", publicPorts: { start: 52210, end: 52219 } }),
  ];
  assert.deepEqual(validateRules(rules, [open()]), []);
  assertValidRules(rules, [open()]);
});

Deno.test("validateRules: ports out of range, reversed, width mismatch", () => {
  assert.deepEqual(messages([fwd({ publicPorts: { start: 70000, end: 70000 } })]), [
    'Cannot parse rule "web": public port 70000 is out of range',
  ]);
  assert.deepEqual(messages([fwd({ privatePorts: { start: 9, end: 8 } })]), [
    'Cannot parse rule "web": private port range 9-8 ends before it starts',
  ]);
  const p = validateRules([
    fwd({ publicPorts: { start: 52210, end: 52219 }, privatePorts: { start: 8080, end: 8085 } }),
  ], []);
  assert.deepEqual(p, [{
    list: "forwards",
    index: 0,
    field: "privatePorts",
    message: 'Cannot parse rule "web": public ports 52210-52219 span 10 ports but private ports ' +
      "8080-8085 span 6 (give the same width or one port)",
    reason: "public ports 52210-52219 span 10 ports but private ports " +
      "8080-8085 span 6 (give the same width or one port)",
  }]);
});

Deno.test("validateRules: private address, names, users, empty open-ports rule", () => {
  assert.deepEqual(messages([fwd({ privateAddress: "192.0.2.300" })]), [
    'Cannot parse rule "web": private address "192.0.2.300" is not an IPv4 address',
  ]);
  assert.deepEqual(messages([fwd({ privateAddress: "fe80::1" })]), [
    'Cannot parse rule "web": private address "fe80::1" is not an IPv4 address',
  ]);
  assert.deepEqual(messages([fwd({ privateAddress: "224.0.0.1" })]), [
    'Cannot parse rule "web": private address "224.0.0.1" is not a unicast host address',
  ]);
  assert.deepEqual(messages([fwd({ name: "my web" })]), [
    `Cannot parse rule "my web": a rule name must be 1-64 letters, digits, '.', '_' or '-'`,
  ]);
  assert.deepEqual(
    validateRules([fwd({ users: ["alice", "", "alice"] })], []).map((p) => p.field),
    [
      "users[1]",
      "users[2]",
    ],
  );
  assert.deepEqual(messages([], [open({ ports: [] })]), [
    'Cannot parse rule "mail": an open-ports rule needs at least one port',
  ]);
  assert.deepEqual(
    validateRules([], [open({ ports: [{ protocol: "udp", ports: { start: 0, end: 5 } }] })]),
    [{
      list: "openPorts",
      index: 0,
      field: "ports[0].ports",
      message: 'Cannot parse rule "mail": port 0 is out of range',
      reason: "port 0 is out of range",
    }],
  );
});

Deno.test("validateRules: duplicate names across both lists", () => {
  const p = validateRules([fwd(), fwd({ publicPorts: { start: 1, end: 1 } })], [
    open({ name: "web" }),
  ]);
  assert.deepEqual(p.map((x) => [x.list, x.index, x.field, x.message]), [
    ["forwards", 1, "name", 'rule name "web" is used twice'],
    ["openPorts", 0, "name", 'rule name "web" is used twice'],
  ]);
});

Deno.test("validateRules: overlapping public ports on the same transport", () => {
  const ssh = fwd({ name: "ssh", publicPorts: { start: 52200, end: 52205 } });
  assert.deepEqual(validateRules([fwd(), ssh], []), [{
    list: "forwards",
    index: 1,
    field: "publicPorts",
    message: 'rule "ssh" overlaps rule "web" on tcp port 52201',
    reason: 'rule "ssh" overlaps rule "web" on tcp port 52201',
  }]);
  // Different transports do not overlap; "both" overlaps each.
  assert.deepEqual(messages([fwd(), fwd({ name: "u", protocol: "udp" })]), []);
  assert.deepEqual(messages([fwd({ protocol: "both" }), fwd({ name: "u", protocol: "udp" })]), [
    'rule "u" overlaps rule "web" on udp port 52201',
  ]);
  // Disabled rules do not claim ports.
  assert.deepEqual(messages([fwd({ enabled: false }), ssh]), []);
  // Open-ports entries overlapping forwards and each other.
  const o = open({
    ports: [
      { protocol: "tcp", ports: { start: 52201, end: 52201 } },
      { protocol: "both", ports: { start: 20, end: 30 } },
      { protocol: "tcp", ports: { start: 25, end: 25 } },
    ],
  });
  assert.deepEqual(validateRules([fwd()], [o]).map((p) => [p.field, p.message]), [
    ["ports[0].ports", 'rule "mail" overlaps rule "web" on tcp port 52201'],
    ["ports[2].ports", 'rule "mail" overlaps itself on tcp port 25'],
  ]);
});

Deno.test("assertValidRules throws every problem at once", () => {
  const bad = [fwd({ publicPorts: { start: 70000, end: 70000 }, privateAddress: "x" })];
  assert.throws(() => assertValidRules(bad, []), (e: unknown) => {
    assert.ok(e instanceof RuleValidationError);
    assert.equal(e.problems.length, 2);
    assert.equal(
      e.message,
      'Cannot parse rule "web": private address "x" is not an IPv4 address\n' +
        'Cannot parse rule "web": public port 70000 is out of range',
    );
    return true;
  });
});
