import assert from "node:assert/strict";
import { parseIpv4 } from "../packet/address.ts";
import { defaultConfig } from "./defaults.ts";
import {
  autoQueues,
  ConfigError,
  type ConfigProblem,
  formatProblem,
  loadConfig,
  parseConfig,
} from "./load.ts";

const FILE = "config/appliance.jsonc";
const DEFAULT_TEXT = Deno.readTextFileSync(
  new URL("../../config/appliance.jsonc", import.meta.url),
);

/** `DEFAULT_TEXT` with the first occurrence of `from` replaced; returns the text and its line. */
function edit(from: string, to: string, text = DEFAULT_TEXT): { text: string; line: number } {
  const at = text.indexOf(from);
  assert.ok(at >= 0, `${from} not in the file`);
  return { text: text.slice(0, at) + to + text.slice(at + from.length), line: lineAt(text, at) };
}

function lineAt(text: string, offset: number): number {
  return text.slice(0, offset).split("\n").length;
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

Deno.test("the default file parses and equals defaultConfig()", () => {
  const fromFile = loadConfig(new URL("../../config/appliance.jsonc", import.meta.url).pathname);
  assert.deepEqual(fromFile, defaultConfig());
  assert.deepEqual(parseConfig(DEFAULT_TEXT, FILE), fromFile);
});

Deno.test("the default config has the lab's values, typed and parsed", () => {
  const c = defaultConfig();
  assert.equal(c.wan[0].addresses[0].addressU32, parseIpv4("198.51.100.1"));
  assert.equal(c.lan.addressU32, parseIpv4("192.0.2.1"));
  assert.deepEqual(c.lan.networkCidr, { addr: parseIpv4("192.0.2.0"), prefix: 24 });
  assert.deepEqual(c.tun, { name: "kn0", mtu: 1500, offload: true, queues: autoQueues() });
  assert.equal(c.knock.windowSec, 15);
  assert.deepEqual(c.users.map((u) => [u.name, u.firstPort, u.length, u.transport]), [
    ["alice", 41001, 3, "any"],
  ]);
  assert.deepEqual(c.forwards.map((f) => f.name), ["web", "iperf", "range", "udp-echo"]);
  assert.deepEqual(c.forwards[2].publicPorts, { start: 52210, end: 52219 });
  assert.deepEqual(c.forwards[2].privatePorts, { start: 8080, end: 8089 });
  assert.deepEqual(c.forwards[3].privatePorts, { start: 7, end: 7 });
  assert.equal(c.management.listenU32, c.lan.addressU32);
  assert.equal(c.store.path, "data/knockgate.kv");
});

Deno.test("defaults fill a minimal file; ports accept numbers and trailing commas parse", () => {
  const c = parseConfig(`{
    "wan": { "interface": "wan0", "address": "198.51.100.1" },
    "lan": { "interface": "lan0", "address": "192.0.2.1", "network": "192.0.2.0/24" },
    "forwards": [{ "name": "w", "publicPorts": 52201, "privateAddress": "192.0.2.12",
                   "privatePorts": 80, },],
    "syslog": [{ "host": "192.0.2.5" }],
  }`);
  assert.deepEqual(c.knock, defaultConfig().knock);
  assert.deepEqual(c.tun, defaultConfig().tun);
  assert.deepEqual(c.forwards[0], {
    name: "w",
    uplink: "all",
    wanAddress: "all",
    enabled: true,
    protocol: "tcp",
    publicPorts: { start: 52201, end: 52201 },
    privateAddress: "192.0.2.12",
    privatePorts: { start: 80, end: 80 },
    enforceKnock: true,
    users: [],
  });
  assert.deepEqual(c.syslog, [{ host: "192.0.2.5", port: 514, format: "rfc5424", facility: 16 }]);
  assert.equal(c.management.listen, "192.0.2.1");
  assert.equal(c.management.port, 8443);
});

Deno.test("a port out of range names file, line and field", () => {
  const { text, line } = edit('"publicPorts": "52202"', '"publicPorts": 70000');
  assert.deepEqual(problems(text), [
    `${FILE}:${line}: forwards[1].publicPorts: port 70000 is out of range`,
  ]);
});

Deno.test("a syntax error names the line of the unexpected token", () => {
  const { text, line } = edit('"maxFlows": 262144', '"maxFlows": }');
  assert.deepEqual(problems(text), [`${FILE}:${line}: unexpected "}"`]);
});

Deno.test("unknown fields are refused at their own line", () => {
  const a = edit('"privatePorts": "5201"', '"privatePort": "5201"');
  const b = edit('"sequenceWindowSeconds"', '"windowsec"', a.text);
  const iperf = lineAt(a.text, a.text.indexOf('"name": "iperf"')) - 1;
  assert.deepEqual(problems(b.text), [
    `${FILE}:${b.line}: knock.windowsec: unknown field`,
    // The missing field points at the start of its object.
    `${FILE}:${iperf}: forwards[1].privatePorts: is required`,
    `${FILE}:${a.line}: forwards[1].privatePort: unknown field`,
  ]);
});

Deno.test("wrong types, enums, bounds, addresses and names are explained", () => {
  const cases: [string, string, string][] = [
    ['"mtu": 1500', '"mtu": "1500"', 'tun.mtu: expected number, got the string "1500"'],
    ['"mtu": 1500', '"mtu": 100', "tun.mtu: must be at least 576"],
    [
      '"queues": "auto"',
      '"queues": 1.5',
      'tun.queues: expected "auto" or an integer 1..64, got 1.5',
    ],
    [
      '"protocol": "both"',
      '"protocol": "sctp"',
      'forwards[1].protocol: must be one of "tcp", "udp", "both"',
    ],
    ['"offload": true', '"offload": null', "tun.offload: expected boolean, got null"],
    [
      '"addresses": ["198.51.100.1/24"]',
      '"addresses": ["198.51.100/24"]',
      'wan[0].addresses[0]: "198.51.100/24" is not an address with prefix length (a.b.c.d/n)',
    ],
    [
      '"allow": []',
      '"allow": ["203.0.113.0/33"]',
      'admission.allow[0]: "203.0.113.0/33" is not an IPv4 or IPv6 network (a.b.c.d/n, 2001:db8::/n)',
    ],
    ['"length": 3', '"length": 9', "users[0].length: must be at most 8"],
    [
      '"secret": "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"',
      '"secret": "gezd"',
      "users[0].secret: must be upper-case base32 of at least 32 characters (160 bits)",
    ],
    [
      '"name": "web"',
      '"name": "my web"',
      "forwards[0].name: must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
    ],
    [
      '"publicPorts": "52210-52219"',
      '"publicPorts": "52219-52210"',
      "forwards[2].publicPorts: port range 52219-52210 ends before it starts",
    ],
    [
      '"publicPorts": "52201"',
      '"publicPorts": true',
      'forwards[0].publicPorts: must be a port, "N" or "A-B"',
    ],
    [
      '"syslog": []',
      '"syslog": [{ "host": "192.0.2.5", "format": "json" }]',
      'syslog[0].format: must be one of "rfc5424", "rfc3164"',
    ],
  ];
  for (const [from, to, want] of cases) {
    const { text, line } = edit(from, to);
    assert.deepEqual(problems(text), [`${FILE}:${line}: ${want}`], `${from} -> ${to}`);
  }
});

Deno.test("rule problems across rules name the later rule's line", () => {
  const overlap = edit('"publicPorts": "52203"', '"publicPorts": "52202"');
  assert.deepEqual(problems(overlap.text), [
    `${FILE}:${overlap.line}: forwards[3].publicPorts: rule "udp-echo" overlaps rule "iperf" on udp port 52202`,
  ]);
  const dup = edit('"name": "udp-echo"', '"name": "web"');
  assert.deepEqual(problems(dup.text), [
    `${FILE}:${dup.line}: forwards[3].name: rule name "web" is used twice`,
  ]);
  const width = edit('"privatePorts": "8080-8089"', '"privatePorts": "8080-8085"');
  assert.deepEqual(problems(width.text), [
    `${FILE}:${width.line}: forwards[2].privatePorts: public ports 52210-52219 span 10 ports but ` +
    "private ports 8080-8085 span 6 (give the same width or one port)",
  ]);
  const outside = edit('"privateAddress": "192.0.2.12"', '"privateAddress": "10.0.0.12"');
  assert.deepEqual(problems(outside.text), [
    `${FILE}:${outside.line}: forwards[0].privateAddress: private address 10.0.0.12 is outside the LAN network 192.0.2.0/24`,
  ]);
  const notIp = edit('"privateAddress": "192.0.2.12"', '"privateAddress": "server"');
  assert.deepEqual(problems(notIp.text), [
    `${FILE}:${notIp.line}: forwards[0].privateAddress: private address "server" is not an IPv4 or IPv6 address`,
  ]);
});

Deno.test("checks across sections: LAN network, first ports, management port", () => {
  const hostBits = edit('"network": "192.0.2.0/24"', '"network": "192.0.2.1/24"');
  assert.deepEqual(problems(hostBits.text), [
    `${FILE}:${hostBits.line}: lan.network: 192.0.2.1/24 has host bits set (did you mean 192.0.2.0/24?)`,
  ]);
  const lanOut = edit('"address": "192.0.2.1"', '"address": "192.0.3.1"');
  assert.deepEqual(problems(lanOut.text), [
    `${FILE}:${lanOut.line}: lan.address: 192.0.3.1 is outside lan.network 192.0.2.0/24`,
  ]);
  const knockOnRule = edit('"firstPort": 41001', '"firstPort": 52203');
  assert.deepEqual(problems(knockOnRule.text), [
    `${FILE}:${knockOnRule.line}: users[0].firstPort: first knock port 52203 is a public udp port of rule "udp-echo"`,
  ]);
  const tcpOnly = edit('"transport": "any"', '"transport": "tcp"', knockOnRule.text);
  parseConfig(tcpOnly.text, FILE); // A TCP-only knock port may share a UDP-only rule's port.
  const mgmt = edit('"port": 8443', '"port": 52201');
  assert.deepEqual(problems(mgmt.text), [
    `${FILE}:${mgmt.line}: management.port: management port 52201 is a public tcp port of rule "web"`,
  ]);
  // The data plane takes every WAN TCP packet to the management port, reachable or not.
  assert.deepEqual(
    problems(edit('"wanAccess": "knock"', '"wanAccess": "never"', mgmt.text).text),
    [`${FILE}:${mgmt.line}: management.port: management port 52201 is a public tcp port of rule "web"`],
  );
  const twoUsers = edit(
    '"users": [',
    '"users": [{ "name": "alice", "secret": "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", "firstPort": 41001 },',
  );
  assert.deepEqual(problems(twoUsers.text), [
    `${FILE}:${twoUsers.line + 2}: users[1].name: user "alice" is defined twice`,
    `${FILE}:${
      twoUsers.line + 4
    }: users[1].firstPort: first knock port 41001 is also user "alice"'s`,
  ]);
});

Deno.test("every problem is reported at once, sorted by line", () => {
  const a = edit('"mtu": 1500', '"mtu": 1');
  const b = edit('"publicPorts": "52202"', '"publicPorts": 0', a.text);
  const lines = problems(b.text);
  assert.equal(lines.length, 2);
  assert.match(lines[0], /tun\.mtu: must be at least 576$/);
  assert.match(lines[1], /forwards\[1\]\.publicPorts: port 0 is out of range$/);
});

Deno.test("loadConfig names a missing file", () => {
  assert.throws(
    () => loadConfig("/nonexistent/knockgate.jsonc"),
    (e: unknown) =>
      e instanceof ConfigError &&
      e.message.startsWith("/nonexistent/knockgate.jsonc:0: cannot read"),
  );
});

Deno.test("every example in config/ parses", () => {
  const dir = new URL("../../config/", import.meta.url);
  let count = 0;
  for (const entry of Deno.readDirSync(dir)) {
    if (!entry.name.endsWith(".jsonc")) continue;
    const c = loadConfig(new URL(entry.name, dir).pathname);
    assert.ok(c.forwards.length > 0, entry.name);
    count++;
  }
  assert.ok(count >= 2);
});

Deno.test("the old knock names load unchanged, each with a warning naming the new name", () => {
  let text = DEFAULT_TEXT;
  const renames: [string, string][] = [
    ["idleTimeoutSeconds", "idleTimeoutSec"],
    ["lifetimeSeconds", "lifetimeSec"],
    ["sequenceWindowSeconds", "windowSec"],
    ["failureLimit", "maxFailures"],
    ["failureWindowSeconds", "failureWindowSec"],
    ["penaltySeconds", "penaltySec"],
  ];
  const lines: number[] = [];
  for (const [now, old] of renames) {
    const e = edit(`"${now}":`, `"${old}":`, text);
    text = e.text;
    lines.push(e.line);
  }
  const warnings: ConfigProblem[] = [];
  assert.deepEqual(parseConfig(text, FILE, warnings), defaultConfig());
  assert.deepEqual(
    warnings.map(formatProblem),
    renames.map(([now, old], i) =>
      `${FILE}:${lines[i]}: knock.${old}: is deprecated; rename it to knock.${now}`
    ),
  );
  const none: ConfigProblem[] = [];
  parseConfig(DEFAULT_TEXT, FILE, none);
  assert.deepEqual(none, []);
});

Deno.test("an old knock name beside its new one is an error; its value is still checked", () => {
  const both = edit('"failureLimit": 5,', '"failureLimit": 5, "maxFailures": 7,');
  assert.deepEqual(problems(both.text), [
    `${FILE}:${both.line}: knock.maxFailures: is the old name of knock.failureLimit, which is ` +
    "also set; drop it",
    `${FILE}:${both.line}: knock.maxFailures: unknown field`,
  ]);
  const bad = edit('"sequenceWindowSeconds": 15', '"windowSec": 0');
  assert.deepEqual(problems(bad.text), [
    `${FILE}:${bad.line}: knock.sequenceWindowSeconds: must be at least 1`,
  ]);
});

Deno.test("tls: absent by default; both file paths or none", () => {
  assert.equal(defaultConfig().tls, undefined);
  const own = edit(
    `"store": { "path": "data/knockgate.kv" }`,
    `"store": { "path": "data/knockgate.kv" }, "tls": { "cert": "/etc/kg/c.pem", "key": "/etc/kg/k.pem" }`,
  );
  assert.deepEqual(parseConfig(own.text, FILE).tls, {
    cert: "/etc/kg/c.pem",
    key: "/etc/kg/k.pem",
  });
  const half = edit(
    `"store": { "path": "data/knockgate.kv" }`,
    `"store": { "path": "data/knockgate.kv" }, "tls": { "cert": "/etc/kg/c.pem" }`,
  );
  assert.deepEqual(problems(half.text), [`${FILE}:${half.line}: tls.key: is required`]);
});

Deno.test("the single-object wan of earlier versions loads as one uplink named wan", () => {
  const c = parseConfig(`{
    "wan": { "interface": "eth0", "address": "198.51.100.7" },
    "lan": { "interface": "lan0", "address": "192.0.2.1", "network": "192.0.2.0/24" },
  }`);
  assert.deepEqual(c.wan, [{
    name: "wan",
    interface: "eth0",
    addresses: [{
      address: "198.51.100.7",
      addressU32: parseIpv4("198.51.100.7")!,
      prefixLength: 32,
      network: "198.51.100.7/32",
    }],
    addresses6: [],
    npt6: null,
    gateway: null,
    probe: null,
    gateway6: null,
    probe6: null,
    table: 201,
  }]);
  assert.deepEqual(c.masquerade, { uplinks: ["wan"] });
  assert.deepEqual(c.management.uplinks, ["wan"]);
  // Its problems are named as the file spells them.
  const bad = `{\n  "wan": { "interface": "eth0",\n    "address": "198.51.100" },\n` +
    `  "lan": { "interface": "lan0", "address": "192.0.2.1", "network": "192.0.2.0/24" } }`;
  assert.deepEqual(problems(bad), [
    `${FILE}:3: wan.address: "198.51.100/32" is not an address with prefix length (a.b.c.d/n)`,
  ]);
});

const TWO_UPLINKS = `{
  "wan": [
    { "name": "isp-a", "interface": "wan0", "addresses": ["198.51.100.1/26", "198.51.100.2/26"],
      "gateway": "198.51.100.62", "probe": { "intervalMs": 500 } },
    { "name": "isp-b", "interface": "wan1", "addresses": ["198.51.100.65/26"],
      "gateway": "198.51.100.126", "table": 220 }
  ],
  "masquerade": { "uplinks": ["isp-b", "isp-a"] },
  "lan": { "interface": "lan0", "address": "192.0.2.1", "network": "192.0.2.0/24" },
  "management": { "uplinks": ["isp-a"] },
  "forwards": [
    { "name": "a", "uplink": "isp-a", "wanAddress": "198.51.100.2", "publicPorts": 443,
      "privateAddress": "192.0.2.12", "privatePorts": 443 }
  ]
}`;

Deno.test("several uplinks: addresses, gateways, probes, tables, masquerade and management lists", () => {
  const c = parseConfig(TWO_UPLINKS, FILE);
  assert.deepEqual(c.wan.map((u) => [u.name, u.interface, u.gateway, u.table]), [
    ["isp-a", "wan0", "198.51.100.62", 201],
    ["isp-b", "wan1", "198.51.100.126", 220],
  ]);
  assert.deepEqual(c.wan[0].addresses.map((a) => `${a.address} ${a.network}`), [
    "198.51.100.1 198.51.100.0/26",
    "198.51.100.2 198.51.100.0/26",
  ]);
  assert.deepEqual(c.wan[0].probe, {
    target: "198.51.100.62",
    targetU32: parseIpv4("198.51.100.62")!,
    intervalMs: 500,
    downAfter: 3,
    upAfter: 2,
  });
  assert.equal(c.wan[1].probe?.intervalMs, 1000);
  assert.deepEqual(c.masquerade.uplinks, ["isp-b", "isp-a"]);
  assert.deepEqual(c.management.uplinks, ["isp-a"]);
  assert.deepEqual([c.forwards[0].uplink, c.forwards[0].wanAddress], ["isp-a", "198.51.100.2"]);
});

Deno.test("uplinks that clash or point nowhere are refused, each at its line", () => {
  const cases: [string, string, string][] = [
    ['"name": "isp-b"', '"name": "isp-a"', 'wan[1].name: uplink "isp-a" is defined twice'],
    [
      '"interface": "wan1"',
      '"interface": "wan0"',
      "wan[1].interface: interface wan0 is already wan[0]'s",
    ],
    [
      '"interface": "wan1"',
      '"interface": "lan0"',
      "wan[1].interface: interface lan0 is also the LAN interface",
    ],
    [
      '"addresses": ["198.51.100.65/26"]',
      '"addresses": ["198.51.100.65/26", "198.51.100.2/26"]',
      'wan[1].addresses[1]: 198.51.100.2 is already an address of uplink "isp-a"',
    ],
    [
      '"addresses": ["198.51.100.65/26"]',
      '"addresses": ["198.51.100.65/26", "192.0.2.9/24"]',
      "wan[1].addresses[1]: 192.0.2.9 is inside lan.network 192.0.2.0/24",
    ],
    [
      '"gateway": "198.51.100.126"',
      '"gateway": "198.51.100.200"',
      'wan[1].gateway: 198.51.100.200 is on no network of uplink "isp-b" (198.51.100.64/26)',
    ],
    ['"table": 220', '"table": 201', "wan[1].table: table 201 is already wan[0]'s"],
    [
      '"table": 220',
      '"table": 100',
      "wan[1].table: table 100 is the one steering packets into the TUN",
    ],
    [
      '"uplinks": ["isp-b", "isp-a"]',
      '"uplinks": ["isp-c"]',
      'masquerade.uplinks[0]: no uplink is named "isp-c" (uplinks: isp-a, isp-b)',
    ],
    [
      '"management": { "uplinks": ["isp-a"] }',
      '"management": { "uplinks": ["isp-a", "isp-a"] }',
      'management.uplinks[1]: uplink "isp-a" is listed twice',
    ],
  ];
  for (const [from, to, want] of cases) {
    const i = TWO_UPLINKS.indexOf(from);
    assert.ok(i >= 0, from);
    const text = TWO_UPLINKS.slice(0, i) + to + TWO_UPLINKS.slice(i + from.length);
    const line = text.slice(0, i).split("\n").length;
    // A second "isp-a" leaves the masquerade list's "isp-b" pointing nowhere too.
    const found = problems(text).filter((p) => !p.includes('named "isp-b"'));
    assert.deepEqual(found, [`${FILE}:${line}: ${want}`], `${from} -> ${to}`);
  }
});

Deno.test("more than 64 WAN addresses in all are refused at wan", () => {
  const addrs = (base: number) =>
    Array.from({ length: 40 }, (_, i) => `"198.51.100.${base + i}/24"`).join(", ");
  const text = `{
  "wan": [
    { "name": "a", "interface": "wan0", "addresses": [${addrs(1)}] },
    { "name": "b", "interface": "wan1", "addresses": [${addrs(101)}] }
  ],
  "lan": { "interface": "lan0", "address": "192.0.2.1", "network": "192.0.2.0/24" }
}`;
  assert.deepEqual(problems(text), [`${FILE}:2: wan: 80 WAN addresses in all; at most 64`]);
});

Deno.test("store: the KV file by default, exactly as before; etcd with its defaults", () => {
  const audit = { maxEntries: 100_000, maxAgeDays: 365 };
  assert.deepEqual(defaultConfig().store, { path: "data/knockgate.kv", audit });
  const STORE = `"store": { "path": "data/knockgate.kv" }`;
  const kv = edit(STORE, `"store": { "backend": "kv", "path": "/var/lib/kg/kg.kv" }`);
  assert.deepEqual(parseConfig(kv.text, FILE).store, {
    backend: "kv",
    path: "/var/lib/kg/kg.kv",
    audit,
  });
  const etcd = edit(
    STORE,
    `"store": { "backend": "etcd", "endpoints": ["https://10.0.0.1:2379", "https://10.0.0.2:2379"],
      "tls": { "ca": "/etc/kg/etcd-ca.pem", "cert": "/etc/kg/c.pem", "key": "/etc/kg/k.pem" },
      "username": "kg", "password": "pw" }`,
  );
  assert.deepEqual(parseConfig(etcd.text, FILE).store, {
    backend: "etcd",
    path: "data/knockgate.kv",
    endpoints: ["https://10.0.0.1:2379", "https://10.0.0.2:2379"],
    prefix: "/knockgate/",
    audit,
    tls: { ca: "/etc/kg/etcd-ca.pem", cert: "/etc/kg/c.pem", key: "/etc/kg/k.pem" },
    username: "kg",
    password: "pw",
  });
});

Deno.test("store: audit retention: a count and an age, each with a default and a range", () => {
  const STORE = `"store": { "path": "data/knockgate.kv" }`;
  const set = edit(STORE, `"store": { "path": "x.kv", "audit": { "maxAgeDays": 90 } }`);
  assert.deepEqual(parseConfig(set.text, FILE).store.audit, {
    maxEntries: 100_000,
    maxAgeDays: 90,
  });
  const bad = edit(STORE, `"store": { "path": "x.kv", "audit": { "maxEntries": 10 } }`);
  assert.equal(problems(bad.text).length, 1);
  assert.match(problems(bad.text)[0], /store\.audit\.maxEntries/);
});

Deno.test("store: etcd fields need backend etcd; endpoints, prefix, pairs are checked", () => {
  const STORE = `"store": { "path": "data/knockgate.kv" }`;
  const stray = edit(STORE, `"store": { "path": "x.kv", "endpoints": ["http://127.0.0.1:2379"] }`);
  assert.deepEqual(problems(stray.text), [
    `${FILE}:${stray.line}: store.endpoints: is only for backend "etcd"`,
  ]);
  const none = edit(STORE, `"store": { "backend": "etcd" }`);
  assert.deepEqual(problems(none.text), [
    `${FILE}:${none.line}: store.endpoints: is required with backend "etcd"`,
  ]);
  const bad = edit(
    STORE,
    `"store": { "backend": "etcd", "endpoints": ["10.0.0.1:2379"], "prefix": "kg", "username": "kg" }`,
  );
  assert.deepEqual(problems(bad.text), [
    `${FILE}:${bad.line}: store.endpoints[0]: "10.0.0.1:2379" is not a client URL (http(s)://host:port)`,
    `${FILE}:${bad.line}: store.prefix: must start and end with "/", printable ASCII without spaces (e.g. "/knockgate/")`,
  ]);
  const half = edit(
    STORE,
    `"store": { "backend": "etcd", "endpoints": ["http://a:2379"], "username": "kg",
      "tls": { "ca": "/ca.pem", "cert": "/c.pem" } }`,
  );
  assert.deepEqual(problems(half.text), [
    `${FILE}:${half.line}: store.password: username and password go together`,
    `${FILE}:${half.line + 1}: store.tls.key: cert and key go together`,
  ]);
  const backend = edit(STORE, `"store": { "backend": "zookeeper" }`);
  assert.deepEqual(problems(backend.text), [
    `${FILE}:${backend.line}: store.backend: must be one of "kv", "etcd"`,
  ]);
});
