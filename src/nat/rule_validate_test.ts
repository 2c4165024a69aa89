import assert from "node:assert/strict";
import type { OpenPortsRule, PortForwardRule } from "./rule.ts";
import {
  assertValidRules,
  type ConfigCandidate,
  formatPortRange,
  type KnockClaim,
  type NetworkLayout,
  parsePortRange,
  RuleValidationError,
  subjectLabel,
  validateConfig,
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
    'Cannot parse rule "web": private address "192.0.2.300" is not an IPv4 or IPv6 address',
  ]);
  assert.deepEqual(messages([fwd({ privateAddress: "fe80::1" })]), [
    'Cannot parse rule "web": private address fe80::1 is link-local (fe80::/10), never ' +
    "forwarded: a global unicast host is needed",
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
      'Cannot parse rule "web": private address "x" is not an IPv4 or IPv6 address\n' +
        'Cannot parse rule "web": public port 70000 is out of range',
    );
    return true;
  });
});

const network: NetworkLayout = {
  wanAddress: "198.51.100.1",
  lanAddress: "192.0.2.1",
  lanNetwork: "192.0.2.0/24",
  managementPort: 8443,
  managementWanAccess: "knock",
};

function user(name: string, firstPort: number, over: Partial<KnockClaim> = {}): KnockClaim {
  return { name, enabled: true, firstPort, transport: "any", ...over };
}

/** The problems of a candidate set as `[subject, field, reason, clash, mirror]`. */
function configProblems(c: ConfigCandidate): [string, string, string, string, boolean][] {
  return validateConfig(c).map((p) => [
    subjectLabel(p.subject),
    p.field,
    p.reason,
    p.clash ?? "",
    p.mirror === true,
  ]);
}

Deno.test("validateConfig: a good set with users and network has no problem", () => {
  assert.deepEqual(
    validateConfig({
      forwards: [fwd({ users: ["alice"] })],
      openPorts: [open()],
      users: [user("alice", 41001), user("bob", 41002, { enabled: false, firstPort: 52201 })],
      network,
    }),
    [],
  );
});

Deno.test("validateConfig: first knock ports against rules, each other and the management port", () => {
  const forwards = [
    fwd(),
    fwd({ name: "dns", protocol: "udp", publicPorts: { start: 53, end: 53 } }),
  ];
  const users = [
    user("alice", 52201, { transport: "tcp" }),
    user("bob", 53, { transport: "any" }),
    user("carol", 8443),
    user("dave", 52201, { transport: "udp" }), // udp-only on a tcp forward: no clash with it
  ];
  assert.deepEqual(configProblems({ forwards, openPorts: [], users, network }), [
    [
      'user "alice"',
      "knock.firstPort",
      'first knock port 52201 is a public tcp port of rule "web"',
      'rule "web" publicPorts 52201',
      false,
    ],
    [
      'rule "web"',
      "publicPorts",
      'public tcp port 52201 is user "alice"\'s first knock port',
      'user "alice" knock.firstPort 52201',
      true,
    ],
    [
      'user "bob"',
      "knock.firstPort",
      'first knock port 53 is a public udp port of rule "dns"',
      'rule "dns" publicPorts 53',
      false,
    ],
    [
      'rule "dns"',
      "publicPorts",
      'public udp port 53 is user "bob"\'s first knock port',
      'user "bob" knock.firstPort 53',
      true,
    ],
    [
      'user "carol"',
      "knock.firstPort",
      "first knock port 8443 is the management port",
      "management port 8443",
      false,
    ],
    [
      "network",
      "managementPort",
      'management port 8443 is user "carol"\'s first knock port',
      'user "carol" knock.firstPort 8443',
      true,
    ],
    [
      'user "dave"',
      "knock.firstPort",
      'first knock port 52201 is also user "alice"\'s',
      'user "alice" knock.firstPort 52201',
      false,
    ],
    [
      'user "alice"',
      "knock.firstPort",
      'first knock port 52201 is also user "dave"\'s',
      'user "dave" knock.firstPort 52201',
      true,
    ],
  ]);
  // The other transport does not clash (the verifier ignores it on F); neither do disabled
  // knocks, disabled rules, nor a UDP-only knock or an unreachable management port.
  assert.deepEqual(
    validateConfig({
      forwards: [
        fwd(),
        fwd({ name: "off", enabled: false, publicPorts: { start: 41001, end: 41001 } }),
        fwd({ name: "dns", protocol: "udp", publicPorts: { start: 53, end: 53 } }),
      ],
      openPorts: [],
      users: [
        user("alice", 52201, { enabled: false }),
        user("bob", 41001),
        user("carol", 52201, { transport: "udp" }),
        user("dave", 53, { transport: "tcp" }),
        user("erin", 8443, { transport: "udp" }),
      ],
      network,
    }),
    [],
  );
  assert.deepEqual(
    validateConfig({
      forwards: [],
      openPorts: [],
      users: [user("carol", 8443)],
      network: { ...network, managementWanAccess: "never" },
    }),
    [],
  );
});

Deno.test("validateConfig: a public range containing a first knock port or the management port", () => {
  const range = fwd({
    name: "range",
    publicPorts: { start: 8000, end: 9000 },
    privatePorts: { start: 8080, end: 8080 },
  });
  const mail = open({ ports: [{ protocol: "both", ports: { start: 41000, end: 41010 } }] });
  assert.deepEqual(
    configProblems({ forwards: [range], openPorts: [mail], users: [user("alice", 41005)], network })
      .filter((p) => !p[4]),
    [
      [
        'rule "range"',
        "publicPorts",
        "public tcp port 8443 is the management port",
        "management port 8443",
        false,
      ],
      [
        'user "alice"',
        "knock.firstPort",
        'first knock port 41005 is a public tcp port of rule "mail"',
        'rule "mail" ports[0].ports 41000-41010',
        false,
      ],
    ],
  );
  // The management port is TCP only: a UDP forward on it does not clash.
  const udp = fwd({ protocol: "udp", publicPorts: { start: 8443, end: 8443 } });
  assert.deepEqual(validateConfig({ forwards: [udp], openPorts: [], network }), []);
});

Deno.test("validateConfig: private addresses against the addressing", () => {
  const at = (name: string, privateAddress: string) => fwd({ name, privateAddress });
  const forwards = [
    at("wan", "198.51.100.1"),
    at("lan", "192.0.2.1"),
    at("net", "192.0.2.0"),
    at("bcast", "192.0.2.255"),
    at("away", "10.0.0.5"),
    at("loop", "127.0.0.1"),
  ].map((r, i) => ({ ...r, publicPorts: { start: 100 + i, end: 100 + i } }));
  assert.deepEqual(
    validateConfig({ forwards, openPorts: [], network }).map((p) => [p.message, p.clash ?? ""]),
    [
      [
        'Cannot parse rule "loop": private address "127.0.0.1" is not a unicast host address',
        "",
      ],
      ['rule "wan": private address 198.51.100.1 is the WAN address', "WAN address 198.51.100.1"],
      [
        'rule "lan": private address 192.0.2.1 is the appliance\'s LAN address',
        "LAN address 192.0.2.1",
      ],
      [
        'rule "net": private address 192.0.2.0 is the LAN network address',
        "LAN network 192.0.2.0/24",
      ],
      [
        'rule "bcast": private address 192.0.2.255 is the LAN broadcast address',
        "LAN network 192.0.2.0/24",
      ],
      [
        'rule "away": private address 10.0.0.5 is outside the LAN network 192.0.2.0/24',
        "LAN network 192.0.2.0/24",
      ],
    ],
  );
  // A /31 has neither network nor broadcast address; both hosts may be forwarded to.
  const p2p = { ...network, lanAddress: "192.0.2.0", lanNetwork: "192.0.2.0/31" };
  assert.deepEqual(
    validateConfig({ forwards: [at("peer", "192.0.2.1")], openPorts: [], network: p2p }),
    [],
  );
  // The layout itself.
  assert.deepEqual(
    configProblems({
      forwards: [],
      openPorts: [],
      network: { ...network, wanAddress: "192.0.2.7", lanAddress: "192.0.3.1", managementPort: 0 },
    }).map((p) => [p[1], p[2]]),
    [
      ["managementPort", "management port 0 is out of range"],
      ["lanAddress", "192.0.3.1 is outside the LAN network 192.0.2.0/24"],
      ["wanAddress", "192.0.2.7 is inside the LAN network 192.0.2.0/24"],
    ],
  );
});

Deno.test("validateConfig: rule users must exist; overlaps are reported on both rules", () => {
  const ssh = fwd({ name: "ssh", publicPorts: { start: 52200, end: 52205 }, users: ["ghost"] });
  assert.deepEqual(configProblems({ forwards: [fwd(), ssh], openPorts: [], users: [] }), [
    ['rule "ssh"', "users[0]", 'user "ghost" does not exist', 'user "ghost"', false],
    [
      'rule "ssh"',
      "publicPorts",
      'rule "ssh" overlaps rule "web" on tcp port 52201',
      'rule "web" publicPorts 52201',
      false,
    ],
    [
      'rule "web"',
      "publicPorts",
      'overlaps rule "ssh" on tcp port 52201',
      'rule "ssh" publicPorts 52200-52205',
      true,
    ],
  ]);
});

Deno.test("validateConfig: several problems of one rule at once", () => {
  const bad = fwd({
    name: "bad",
    publicPorts: { start: 41001, end: 41001 },
    privatePorts: { start: 1, end: 2 },
    privateAddress: "198.51.100.1",
    users: ["alice", "ghost", "alice"],
  });
  const problems = validateConfig({
    forwards: [bad],
    openPorts: [],
    users: [user("alice", 41001)],
    network,
  }).filter((p) => p.subject.kind === "rule");
  assert.deepEqual(problems.map((p) => p.field), [
    "users[2]",
    "privatePorts",
    "privateAddress",
    "users[1]",
    "publicPorts",
  ]);
  const fixed = { ...bad, privatePorts: { start: 1, end: 1 }, users: ["alice", "ghost"] };
  assert.deepEqual(
    validateConfig({ forwards: [fixed], openPorts: [], users: [user("alice", 41001)], network })
      .filter((p) => p.subject.kind === "rule").map((p) => p.field),
    ["privateAddress", "users[1]", "publicPorts"],
  );
});

/** Two uplinks: isp-a (two addresses, management) and isp-b (one address). */
const twoUplinks: NetworkLayout = {
  ...network,
  uplinks: [
    { name: "isp-a", addresses: ["198.51.100.1", "198.51.100.2"], management: true },
    { name: "isp-b", addresses: ["198.51.100.65"], management: false },
  ],
};

Deno.test("validateConfig: bindings name an uplink that exists and one of its addresses", () => {
  const forwards = [
    fwd({ name: "ghost", uplink: "isp-c" }),
    fwd({
      name: "stray",
      uplink: "isp-b",
      wanAddress: "198.51.100.2",
      publicPorts: { start: 1, end: 1 },
    }),
    fwd({ name: "loose", wanAddress: "198.51.100.2", publicPorts: { start: 2, end: 2 } }),
    fwd({ name: "bad", uplink: "isp-a", wanAddress: "x", publicPorts: { start: 3, end: 3 } }),
    fwd({
      name: "good",
      uplink: "isp-a",
      wanAddress: "198.51.100.2",
      publicPorts: { start: 4, end: 4 },
    }),
  ];
  assert.deepEqual(
    validateConfig({ forwards, openPorts: [], network: twoUplinks }).map((p) => [
      subjectLabel(p.subject),
      p.field,
      p.message,
      p.clash ?? "",
    ]),
    [
      [
        'rule "loose"',
        "wanAddress",
        'Cannot parse rule "loose": WAN address 198.51.100.2 needs its uplink named (uplink is "all")',
        "",
      ],
      [
        'rule "bad"',
        "wanAddress",
        'Cannot parse rule "bad": WAN address "x" is not "all" or an IPv4 or IPv6 address',
        "",
      ],
      [
        'rule "ghost"',
        "uplink",
        'rule "ghost": uplink "isp-c" does not exist (uplinks: isp-a, isp-b)',
        "uplinks isp-a, isp-b",
      ],
      [
        'rule "stray"',
        "wanAddress",
        'rule "stray": 198.51.100.2 is not an address of uplink "isp-b" (198.51.100.65)',
        'uplink "isp-b" addresses 198.51.100.65',
      ],
    ],
  );
  // Without `uplinks` the layout is one uplink "wan" holding the WAN address.
  assert.deepEqual(
    validateConfig({
      forwards: [fwd({ uplink: "wan", wanAddress: "198.51.100.1" })],
      openPorts: [open({ uplink: "wan" })],
      network,
    }),
    [],
  );
  // Open-ports rules are bound the same way.
  assert.deepEqual(
    validateConfig({ forwards: [], openPorts: [open({ uplink: "isp-c" })], network: twoUplinks })
      .map((p) => [p.field, p.reason]),
    [["uplink", 'uplink "isp-c" does not exist (uplinks: isp-a, isp-b)']],
  );
});

Deno.test("validateConfig: overlap is per address, and the message names the addresses", () => {
  const a = fwd({
    name: "a",
    uplink: "isp-a",
    wanAddress: "198.51.100.2",
    publicPorts: { start: 443, end: 443 },
  });
  const onB = fwd({ name: "on-b", uplink: "isp-b", publicPorts: { start: 443, end: 443 } });
  const on1 = fwd({
    name: "on-1",
    uplink: "isp-a",
    wanAddress: "198.51.100.1",
    publicPorts: { start: 443, end: 443 },
  });
  // The same port on three addresses: no clash.
  assert.deepEqual(
    validateConfig({ forwards: [a, onB, on1], openPorts: [], network: twoUplinks }),
    [],
  );
  const problems = (forwards: PortForwardRule[], openPorts: OpenPortsRule[] = []) =>
    validateConfig({ forwards, openPorts, network: twoUplinks }).map((p) => [
      p.field,
      p.message,
      p.mirror === true,
    ]);
  assert.deepEqual(problems([a, fwd({ name: "b", publicPorts: { start: 443, end: 443 } })]), [
    ["publicPorts", 'rule "b" overlaps rule "a" on tcp port 443 at 198.51.100.2', false],
    ["publicPorts", 'rule "a": overlaps rule "b" on tcp port 443 at 198.51.100.2', true],
  ]);
  assert.deepEqual(
    problems([fwd({ name: "all-a", uplink: "isp-a", publicPorts: { start: 440, end: 450 } }), a])
      .filter((p) => !p[2]),
    [["publicPorts", 'rule "a" overlaps rule "all-a" on tcp port 443 at 198.51.100.2', false]],
  );
  assert.deepEqual(
    problems([fwd({ name: "all-a", uplink: "isp-a", publicPorts: { start: 443, end: 443 } })], [
      open({ ports: [{ protocol: "both", ports: { start: 440, end: 445 } }] }),
    ]).filter((p) => !p[2]),
    [[
      "ports[0].ports",
      'rule "mail" overlaps rule "all-a" on tcp port 443 at 198.51.100.1, 198.51.100.2',
      false,
    ]],
  );
  // Two rules on every address name none.
  assert.deepEqual(problems([fwd(), fwd({ name: "b" })]).filter((p) => !p[2]), [
    ["publicPorts", 'rule "b" overlaps rule "web" on tcp port 52201', false],
  ]);
  // A rule bound to what does not exist claims nothing (its own problem says why).
  assert.deepEqual(
    problems([fwd(), fwd({ name: "b", uplink: "isp-c" })]).map((p) => p[0]),
    ["uplink"],
  );
  // Without the uplinks (rules alone) bindings are compared as written.
  assert.deepEqual(messages([fwd({ uplink: "isp-a" }), fwd({ name: "b", uplink: "isp-b" })]), []);
  assert.deepEqual(messages([fwd({ uplink: "isp-a" }), fwd({ name: "b" })]), [
    'rule "b" overlaps rule "web" on tcp port 52201 on uplink isp-a',
  ]);
  assert.deepEqual(
    messages([
      fwd({ uplink: "isp-a", wanAddress: "198.51.100.1" }),
      fwd({ name: "b", uplink: "isp-a", wanAddress: "198.51.100.2" }),
      fwd({ name: "c", uplink: "isp-a" }),
    ]),
    [
      'rule "c" overlaps rule "web" on tcp port 52201 at 198.51.100.1',
      'rule "c" overlaps rule "b" on tcp port 52201 at 198.51.100.2',
    ],
  );
});

Deno.test("validateConfig: the management port clashes only on management uplinks' addresses", () => {
  const at8443 = { publicPorts: { start: 8443, end: 8443 } };
  const problems = (forwards: PortForwardRule[]) =>
    validateConfig({ forwards, openPorts: [], network: twoUplinks })
      .filter((p) => !p.mirror).map((p) => `${subjectLabel(p.subject)} ${p.field}: ${p.reason}`);
  assert.deepEqual(problems([fwd({ ...at8443, uplink: "isp-b" })]), []);
  assert.deepEqual(problems([fwd({ ...at8443, uplink: "isp-a", wanAddress: "198.51.100.2" })]), [
    'rule "web" publicPorts: public tcp port 8443 is the management port',
  ]);
  assert.deepEqual(problems([fwd(at8443)]), [
    'rule "web" publicPorts: public tcp port 8443 is the management port',
  ]);
  const noMgmt: NetworkLayout = {
    ...twoUplinks,
    uplinks: twoUplinks.uplinks!.map((u) => ({ ...u, management: false })),
  };
  assert.deepEqual(validateConfig({ forwards: [fwd(at8443)], openPorts: [], network: noMgmt }), []);
});

Deno.test("validateConfig: first knock ports clash with rules on any address", () => {
  const onB = fwd({ name: "on-b", uplink: "isp-b", publicPorts: { start: 41001, end: 41001 } });
  const onA = fwd({
    name: "on-a",
    uplink: "isp-a",
    wanAddress: "198.51.100.2",
    publicPorts: { start: 41001, end: 41001 },
  });
  assert.deepEqual(
    validateConfig({
      forwards: [onB, onA],
      openPorts: [],
      users: [user("alice", 41001)],
      network: twoUplinks,
    })
      .filter((p) => !p.mirror).map((p) => p.reason),
    [
      'first knock port 41001 is a public tcp port of rule "on-b"',
      'first knock port 41001 is a public tcp port of rule "on-a"',
    ],
  );
});

Deno.test("validateConfig: a private address may be no WAN address of any uplink", () => {
  const forwards = [
    fwd({ name: "p", privateAddress: "198.51.100.1" }),
    fwd({ name: "q", privateAddress: "198.51.100.65", publicPorts: { start: 1, end: 1 } }),
  ];
  assert.deepEqual(
    validateConfig({ forwards, openPorts: [], network: twoUplinks }).map((
      p,
    ) => [p.message, p.clash]),
    [
      [
        'rule "p": private address 198.51.100.1 is a WAN address of uplink "isp-a"',
        "WAN address 198.51.100.1",
      ],
      [
        'rule "q": private address 198.51.100.65 is a WAN address of uplink "isp-b"',
        "WAN address 198.51.100.65",
      ],
    ],
  );
  const many: NetworkLayout = {
    ...network,
    uplinks: [{
      name: "block",
      addresses: Array.from({ length: 65 }, (_, i) => `198.51.100.${i + 1}`),
      management: true,
    }],
  };
  assert.deepEqual(
    validateConfig({ forwards: [], openPorts: [], network: many }).map((p) => [p.field, p.reason]),
    [["uplinks", "65 WAN addresses: at most 64 in all"]],
  );
});
