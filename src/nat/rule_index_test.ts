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
  const web = idx.lookup(6, 52201);
  assert.notEqual(web, NO_ENTRY);
  assert.equal(idx.ruleName(web), "web");
  assert.equal(idx.kind[web], RuleKind.Forward);
  assert.equal(idx.privateAddress(web), SERVER);
  assert.equal(idx.privatePort(web, 52201), 8080);
  assert.equal(idx.enforceKnock(web), true);
  assert.equal(idx.lookup(17, 52201), NO_ENTRY);
  assert.equal(idx.lookup(1, 52201), NO_ENTRY);
  // "both" owns the port on each transport with one entry.
  assert.equal(idx.lookup(6, 52202), idx.lookup(17, 52202));
  assert.equal(idx.ruleName(idx.lookup(17, 52202)), "iperf");
  assert.equal(idx.lookup(6, 52203), NO_ENTRY);
  assert.equal(idx.privatePort(idx.lookup(17, 52203), 52203), 7);
  // Disabled rules are not compiled.
  assert.equal(idx.lookup(6, 52230), NO_ENTRY);
  assert.ok(!idx.ruleNames.includes("off"));
});

Deno.test("compileRules: ranges map port for port, or all onto one private port", () => {
  const idx = compileRules(LAB, OPEN);
  for (let p = 52210; p <= 52219; p++) {
    const e = idx.lookup(6, p);
    assert.equal(idx.ruleName(e), "range");
    assert.equal(idx.privatePort(e, p), 8080 + (p - 52210));
  }
  assert.equal(idx.lookup(6, 52209), NO_ENTRY);
  assert.equal(idx.lookup(6, 52220), NO_ENTRY);
  for (let p = 52220; p <= 52229; p++) {
    const e = idx.lookup(17, p);
    assert.equal(idx.privatePort(e, p), 9000);
    assert.equal(idx.enforceKnock(e), false);
  }
});

Deno.test("compileRules: open-ports entries keep the port and share the rule name", () => {
  const idx = compileRules(LAB, OPEN);
  const smtp = idx.lookup(6, 25);
  const high = idx.lookup(17, 60001);
  assert.notEqual(smtp, high);
  assert.equal(idx.entryRule[smtp], idx.entryRule[high]);
  assert.equal(idx.ruleName(high), "mail");
  assert.equal(idx.kind[high], RuleKind.OpenPorts);
  assert.equal(idx.privatePort(high, 60001), 60001);
  assert.equal(idx.privatePort(smtp, 25), 25);
  assert.equal(idx.privateAddress(smtp), parseIpv4("192.0.2.25"));
  assert.equal(idx.lookup(17, 25), NO_ENTRY);
});

Deno.test("RuleIndex.userAllowed: any user when none named, else only those", () => {
  const idx = compileRules(LAB, OPEN);
  assert.equal(idx.userAllowed(idx.lookup(6, 52201), "bob"), true);
  const iperf = idx.lookup(6, 52202);
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
    assert.equal(empty.lookup(6, port), NO_ENTRY);
    assert.equal(empty.lookup(17, port), NO_ENTRY);
  }
});

Deno.test("RuleIndex.lookup answers every port of both transports", () => {
  const idx = compileRules(LAB, OPEN);
  let hits = 0;
  for (let port = 0; port < 65536; port++) {
    if (idx.lookup(6, port) !== NO_ENTRY) hits++;
    if (idx.lookup(17, port) !== NO_ENTRY) hits++;
  }
  assert.ok(hits > 0);
  assert.equal(idx.lookup(1, 52201), NO_ENTRY);
});
