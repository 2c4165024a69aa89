import assert from "node:assert/strict";
import { HEALTH_SCRIPT, keepalivedConfig, type VrrpNode } from "./keepalived.ts";
import { run, runOk } from "./run.ts";

const NODE: VrrpNode = {
  routerId: "knockgate-a",
  interface: "lan0",
  sourceAddress: "192.0.2.2",
  virtualRouterId: 51,
  priority: 150,
  auth: "kgpair",
  virtualAddresses: [
    { cidr: "192.0.2.1/24", interface: "lan0" },
    { cidr: "198.51.100.1/24", interface: "wan0" },
  ],
  health: {
    url: "https://192.0.2.2:8443/api/v1/health",
    caFile: "/var/lib/knockgate/tls-cert.pem",
  },
  notify: { any: "/usr/local/sbin/knockgate-notify" },
};

/** The lines of the generated file, trimmed. */
function lines(n: VrrpNode): string[] {
  return keepalivedConfig(n).split("\n").map((l) => l.trim());
}

Deno.test("keepalived.conf: one instance moves every virtual address, checked by curl on /health", () => {
  const l = lines(NODE);
  for (
    const want of [
      "router_id knockgate-a",
      "vrrp_version 2",
      `vrrp_script ${HEALTH_SCRIPT} {`,
      'script "/usr/bin/curl -sf -o /dev/null --max-time 1 --cacert ' +
      '/var/lib/knockgate/tls-cert.pem https://192.0.2.2:8443/api/v1/health"',
      "interval 1",
      "timeout 2",
      "fall 2",
      "rise 2",
      "vrrp_instance knockgate {",
      "state BACKUP",
      "interface lan0",
      "virtual_router_id 51",
      "priority 150",
      "advert_int 1",
      "mcast_src_ip 192.0.2.2",
      "auth_type PASS",
      "auth_pass kgpair",
      "192.0.2.1/24 dev lan0",
      "198.51.100.1/24 dev wan0",
      HEALTH_SCRIPT,
      'notify "/usr/local/sbin/knockgate-notify"',
    ]
  ) assert.ok(l.includes(want), `missing ${JSON.stringify(want)} in\n${l.join("\n")}`);
  assert.equal(l.filter((x) => x.startsWith("vrrp_instance")).length, 1);
  assert.ok(!l.includes("nopreempt") && !l.some((x) => x.startsWith("unicast")));
  // Braces balance: keepalived would read a stray one as the end of a block.
  const text = keepalivedConfig(NODE);
  assert.equal(text.split("{").length, text.split("}").length);
});

Deno.test("keepalived.conf: unicast peers, VRRPv3 with a sub-second advert, no preemption", () => {
  const l = lines({
    ...NODE,
    auth: undefined,
    unicastPeers: ["192.0.2.3"],
    advertIntervalSeconds: 0.2,
    noPreempt: true,
    health: undefined,
    notify: { master: "/a", backup: "/b", fault: "/c" },
  });
  for (
    const want of [
      "vrrp_version 3",
      "advert_int 0.2",
      "nopreempt",
      "unicast_src_ip 192.0.2.2",
      "192.0.2.3",
      'notify_master "/a"',
      'notify_backup "/b"',
      'notify_fault "/c"',
    ]
  ) assert.ok(l.includes(want), `missing ${want}`);
  assert.ok(!l.some((x) => x.startsWith("mcast_src_ip") || x.startsWith("auth")));
  assert.ok(!l.some((x) => x.startsWith("vrrp_script") || x.startsWith("track_script")));
});

Deno.test("keepalived.conf: every transition is posted to the appliance's socket with curl", () => {
  const sock = "/var/lib/knockgate/kg.kv.ha/notify.sock";
  const l = lines({ ...NODE, applianceSocket: sock });
  for (const state of ["master", "backup", "fault"]) {
    assert.ok(
      l.includes(
        `notify_${state} "/usr/bin/curl -sf -o /dev/null --max-time 5 -X POST ` +
          `--unix-socket ${sock} http://knockgate/vrrp/${state}"`,
      ),
      `notify_${state}: ${l.join("\n")}`,
    );
  }
  assert.ok(l.includes('notify "/usr/local/sbin/knockgate-notify"'), "the `any` hook stays");
});

/** NODE with the WAN and LAN IPv6 addresses moving too. */
const DUAL: VrrpNode = {
  ...NODE,
  virtualAddresses: [
    ...NODE.virtualAddresses,
    { cidr: "2001:db8:192::1/64", interface: "lan0" },
    { cidr: "2001:db8:198::1/64", interface: "wan0" },
  ],
};

Deno.test("keepalived.conf: IPv6 virtual addresses move in the IPv4 instance, as excluded ones", () => {
  const text = keepalivedConfig(DUAL);
  const block = (name: string) => {
    const m = new RegExp(`\n  ${name} \{\n([^}]*)\n  \}`).exec(text);
    assert.ok(m, `no ${name} block in\n${text}`);
    return m[1].split("\n").map((l) => l.trim());
  };
  // keepalived refuses another family than the instance's in virtual_ipaddress.
  assert.deepEqual(block("virtual_ipaddress"), [
    "192.0.2.1/24 dev lan0",
    "198.51.100.1/24 dev wan0",
  ]);
  assert.deepEqual(block("virtual_ipaddress_excluded"), [
    "2001:db8:192::1/64 dev lan0",
    "2001:db8:198::1/64 dev wan0",
  ]);
  // Without IPv6 addresses there is no excluded block.
  assert.ok(!keepalivedConfig(NODE).includes("virtual_ipaddress_excluded"));
  // A health check on the node's own IPv6 address is fine; on a virtual one (any spelling) not.
  const own6 = { url: "https://[2001:db8:192::2]:8443/api/v1/health", caFile: "/c" };
  assert.ok(
    keepalivedConfig({ ...DUAL, health: own6 }).includes("https://[2001:db8:192::2]:8443/"),
  );
  assert.throws(
    () =>
      keepalivedConfig({
        ...DUAL,
        health: { url: "https://[2001:DB8:192:0::0:1]:8443/api/v1/health", caFile: "/c" },
      }),
    /health URL .* names a virtual address/,
  );
});

Deno.test("keepalived.conf: what keepalived would refuse or misread is refused, named", () => {
  const bad: [Partial<VrrpNode>, RegExp][] = [
    [{ priority: 255 }, /priority 255 is out of range \(1-254\)/],
    [{ virtualRouterId: 0 }, /virtual router id 0/],
    [{ version: 3 }, /authentication exists in VRRPv2 only/],
    [{ auth: "much-too-long" }, /longer than 8/],
    [{ advertIntervalSeconds: 0.5 }, /advert interval 0.5 s does not fit VRRPv2/],
    [{ auth: undefined, advertIntervalSeconds: 0.005 }, /does not fit VRRPv3/],
    [{ interface: 'lan0" x' }, /interface .* must be one word/],
    [{ sourceAddress: "192.0.2.256" }, /source address "192.0.2.256" is not an IPv4 address/],
    [{ unicastPeers: ["peer"] }, /unicast peer "peer"/],
    [{ virtualAddresses: [] }, /no virtual addresses/],
    [{ virtualAddresses: [{ cidr: "192.0.2.1", interface: "lan0" }] }, /is not a.b.c.d\/n/],
    [{ virtualAddresses: [{ cidr: "192.0.2.1/33", interface: "lan0" }] }, /is not a.b.c.d\/n/],
    [{ virtualAddresses: [...DUAL.virtualAddresses, v6("2001:db8::1/129")] }, /IPv6 address\/n/],
    [{ virtualAddresses: [...DUAL.virtualAddresses, v6("2001:db8::g/64")] }, /IPv6 address\/n/],
    [{ virtualAddresses: [...DUAL.virtualAddresses, v6("2001:db8::1")] }, /IPv6 address\/n/],
    [{ virtualAddresses: [...DUAL.virtualAddresses, v6("fe80::1%lan0/64")] }, /IPv6 address\/n/],
    [{ virtualAddresses: [...DUAL.virtualAddresses, v6("::ffff:192.0.2.9/128")] }, /IPv6/],
    [
      { virtualAddresses: [...NODE.virtualAddresses, v6("fe80::1/64")] },
      /virtual address "fe80::1\/64" is link-local \(each node has its own\)/,
    ],
    [{ virtualAddresses: [...NODE.virtualAddresses, v6("febf::1/64")] }, /link-local/],
    [{ virtualAddresses: [...NODE.virtualAddresses, v6("ff02::1/64")] }, /is multicast/],
    [{ virtualAddresses: [...NODE.virtualAddresses, v6("::1/128")] }, /not a global unicast/],
    [{ virtualAddresses: [v6("2001:db8:198::1/64")] }, /no IPv4 virtual address/],
    [
      { virtualAddresses: [...DUAL.virtualAddresses, v6("2001:db8:198:0::1/64")] },
      /listed twice/,
    ],
    [{ health: { url: "http://192.0.2.2:8443/api/v1/health", caFile: "/c" } }, /not https/],
    [{ health: { url: "https://192.0.2.1:8443/api/v1/health", caFile: "/c" } }, /virtual address/],
    [{ sourceAddress: "192.0.2.1" }, /source address 192.0.2.1 is a virtual address/],
    [{ health: { url: "https://192.0.2.2/", caFile: "/my certs/c.pem" } }, /script argument/],
    [{ notify: { any: "/bin/sh -c reboot" } }, /script argument/],
    [{ applianceSocket: "kg.ha/notify.sock" }, /absolute path/],
    [{ applianceSocket: "/my dir/notify.sock" }, /appliance socket .* one word/],
    [{ applianceSocket: "/s", notify: { backup: "/b" } }, /notify.backup and applianceSocket/],
  ];
  for (const [edit, why] of bad) {
    assert.throws(() => keepalivedConfig({ ...NODE, ...edit }), why, JSON.stringify(edit));
  }
});

function v6(cidr: string) {
  return { cidr, interface: "wan0" };
}

function rootWithKeepalived(): boolean {
  try {
    return Deno.uid() === 0 && Deno.statSync("/usr/sbin/keepalived").isFile;
  } catch {
    return false;
  }
}

Deno.test({
  name:
    "keepalived.conf: keepalived's own --config-test accepts the file (a netns with the interfaces)",
  ignore: !rootWithKeepalived(),
  fn: async () => {
    const ns = `kgk-${Deno.pid.toString(36)}${Math.floor(Math.random() * 36 ** 3).toString(36)}`;
    const dir = await Deno.makeTempDir({ prefix: "knockgate-keepalived-" });
    try {
      await runOk(["ip", "netns", "add", ns]);
      // A veth pair names both interfaces (the kernel here may have no dummy driver).
      await runOk(["ip", "-n", ns, "link", "add", "lan0", "type", "veth", "peer", "name", "wan0"]);
      for (
        const node of [
          NODE,
          { ...NODE, auth: undefined, unicastPeers: ["192.0.2.3"], advertIntervalSeconds: 0.2 },
          { ...NODE, applianceSocket: `${dir}/kg.kv.ha/notify.sock` },
          DUAL,
        ]
      ) {
        await Deno.writeTextFile(`${dir}/keepalived.conf`, keepalivedConfig(node));
        const r = await run([
          "ip",
          "netns",
          "exec",
          ns,
          "keepalived",
          "--config-test",
          "--use-file",
          `${dir}/keepalived.conf`,
        ]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
      }
    } finally {
      await run(["ip", "netns", "del", ns]);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
