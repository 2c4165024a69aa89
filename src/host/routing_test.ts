import assert from "node:assert/strict";
import {
  clearSteeringCommands,
  failClosedRuleset,
  localBypassCommands,
  NFT_APPLY,
  NFT_LIST_JSON,
  parseNftCounters,
  parsePortRange,
  parseResolvers,
  routingCommands,
  type RoutingPlan,
  unroutingCommands,
} from "./routing.ts";
import { run } from "./run.ts";

const PLAN: RoutingPlan = {
  tun: "kn0",
  uplinks: [{
    name: "wan",
    interface: "wan0",
    addresses: [{ address: "198.51.100.1", network: "198.51.100.1/32" }],
    gateway: null,
    table: 201,
  }],
  lanInterface: "lan0",
  lanAddress: "192.0.2.1",
  lanNetwork: "192.0.2.0/24",
  resolvers: ["198.51.100.53"],
  ephemeralPorts: [32768, 60999],
};

/** Two ISPs: isp-a with two addresses of one /26, isp-b with one of the next. */
const TWO: RoutingPlan = {
  ...PLAN,
  uplinks: [{
    name: "isp-a",
    interface: "wan0",
    addresses: [
      { address: "198.51.100.1", network: "198.51.100.0/26" },
      { address: "198.51.100.2", network: "198.51.100.0/26" },
    ],
    gateway: "198.51.100.62",
    table: 201,
  }, {
    name: "isp-b",
    interface: "wan1",
    addresses: [{ address: "198.51.100.65", network: "198.51.100.64/26" }],
    gateway: "198.51.100.126",
    table: 202,
  }],
};

/** The rules of chain `name` in `text`, one string each. */
function chain(text: string, name: string): string[] {
  const m = text.match(new RegExp(`chain ${name} \\{\\n([\\s\\S]*?)\\n  \\}`));
  assert.ok(m, `chain ${name} missing`);
  return m[1].split("\n").map((l) => l.trim()).filter(Boolean);
}

Deno.test("the fail-closed ruleset replaces the table in one transaction", () => {
  const text = failClosedRuleset(PLAN);
  const lines = text.split("\n");
  assert.deepEqual(lines.slice(0, 3), [
    "add table inet knockgate",
    "delete table inet knockgate",
    "table inet knockgate {",
  ]);
});

Deno.test("the fail-closed ruleset never uses connection tracking", () => {
  const text = failClosedRuleset(PLAN);
  assert.doesNotMatch(text, /\bct\b|\bnat\b|masquerade|notrack|\bflow\b/);
});

Deno.test("forward: policy drop, only packets into or out of the TUN pass", () => {
  assert.deepEqual(chain(failClosedRuleset(PLAN), "forward"), [
    "type filter hook forward priority filter; policy drop;",
    'iifname "kn0" accept',
    'oifname "kn0" accept',
    'counter comment "not-through-tun"',
  ]);
});

Deno.test("input: the WAN reaches the host only with DNS replies from resolvers and NTP replies", () => {
  const rules = chain(failClosedRuleset(PLAN), "input");
  assert.equal(rules[0], "type filter hook input priority filter; policy accept;");
  assert.equal(
    rules[1],
    'iifname "wan0" udp sport 53 ip saddr { 198.51.100.53 } udp dport 32768-60999 accept comment "dns-reply"',
  );
  assert.equal(
    rules[2],
    'iifname "wan0" udp sport 123 udp dport 32768-60999 accept comment "ntp-reply"',
  );
  assert.equal(rules[rules.length - 1], 'iifname "wan0" counter drop comment "wan-input"');
  // Unknown resolvers (a local one): replies from any source, still only to ephemeral ports.
  const any = chain(failClosedRuleset({ ...PLAN, resolvers: [] }), "input");
  assert.equal(
    any[1],
    'iifname "wan0" udp sport 53 udp dport 32768-60999 accept comment "dns-reply"',
  );
});

Deno.test("prerouting drops spoofed sources on both sides; output drops ICMP errors to the WAN", () => {
  const text = failClosedRuleset(PLAN);
  assert.deepEqual(chain(text, "prerouting").slice(1), [
    'iifname "lan0" ip saddr != 192.0.2.0/24 counter drop comment "lan-spoofed"',
    'iifname "lan0" ip saddr 192.0.2.1 counter drop comment "lan-spoofed"',
    'iifname "wan0" ip saddr { 192.0.2.0/24, 198.51.100.1 } counter drop comment "wan-spoofed"',
  ]);
  const out = chain(text, "output").join("\n");
  assert.match(out, /oifname "wan0" icmp type \{ time-exceeded, parameter-problem \} counter drop/);
  assert.match(
    out,
    /oifname "wan0" icmp type destination-unreachable icmp code != frag-needed counter drop/,
  );
});

Deno.test("forwarding is switched on last, after every steering rule", () => {
  const cmds = routingCommands(PLAN).map((c) => c.join(" "));
  assert.equal(cmds[cmds.length - 1], "sysctl -qw net.ipv4.ip_forward=1");
  assert.equal(cmds.filter((c) => c.includes("ip_forward")).length, 1);
  assert.ok(cmds.includes("sysctl -qw net.ipv4.conf.lan0.rp_filter=1"));
  assert.ok(cmds.includes("ip rule add pref 23 iif wan0 ipproto udp lookup 100 protocol 75"));
});

Deno.test("the DNS/NTP bypass only takes replies to ephemeral ports", () => {
  assert.deepEqual(localBypassCommands(PLAN).map((c) => c.join(" ")), [
    "ip rule add pref 20 iif wan0 ipproto udp sport 53 dport 32768-60999 lookup local protocol 75",
    "ip rule add pref 21 iif wan0 ipproto udp sport 123 dport 32768-60999 lookup local protocol 75",
  ]);
});

Deno.test("stopping removes every rule and route of ours, never the table nor forwarding", () => {
  assert.deepEqual(unroutingCommands(PLAN).map((c) => c.join(" ")), [
    "ip rule add pref 0 lookup local protocol kernel",
    "ip rule flush protocol 75",
    "ip route flush table all proto 75",
    "ip -6 rule add pref 0 lookup local protocol kernel",
    "ip -6 rule flush protocol 75",
    "ip -6 route flush table all proto 75",
  ]);
  // Every rule and route added carries the protocol the flush removes.
  for (const c of [...routingCommands(TWO), ...localBypassCommands(TWO)]) {
    if (c[0] === "ip" && c[2] === "add") {
      assert.deepEqual(c.slice(-2), ["protocol", "75"], c.join(" "));
    }
    if (c[0] === "ip" && c[2] === "replace") {
      assert.deepEqual(c.slice(-2), ["proto", "75"], c.join(" "));
    }
  }
});

Deno.test("one uplink without a gateway: steering only, no table, no rules by source", () => {
  const cmds = routingCommands(PLAN).map((c) => c.join(" ")).filter((c) => c.startsWith("ip "));
  assert.deepEqual(cmds, [
    "ip route replace default dev kn0 table 100 proto 75",
    "ip rule add pref 100 lookup local protocol 75",
    "ip rule del pref 0 lookup local",
    "ip rule add pref 10 iif lan0 to 192.0.2.1 lookup local protocol 75",
    "ip rule add pref 15 iif lan0 lookup 100 protocol 75",
    "ip rule add pref 22 iif wan0 ipproto tcp lookup 100 protocol 75",
    "ip rule add pref 23 iif wan0 ipproto udp lookup 100 protocol 75",
    "ip rule add pref 24 iif wan0 ipproto icmp lookup 100 protocol 75",
  ]);
});

Deno.test("two uplinks: each its table and rules by source, steering and bypass on both", () => {
  const cmds = routingCommands(TWO).map((c) => c.join(" "));
  const ip = cmds.filter((c) => c.startsWith("ip ")).slice(5);
  assert.deepEqual(ip, [
    "ip rule add pref 22 iif wan0 ipproto tcp lookup 100 protocol 75",
    "ip rule add pref 23 iif wan0 ipproto udp lookup 100 protocol 75",
    "ip rule add pref 24 iif wan0 ipproto icmp lookup 100 protocol 75",
    "ip rule add pref 27 iif wan1 ipproto tcp lookup 100 protocol 75",
    "ip rule add pref 28 iif wan1 ipproto udp lookup 100 protocol 75",
    "ip rule add pref 29 iif wan1 ipproto icmp lookup 100 protocol 75",
    "ip rule add pref 200 to 192.0.2.0/24 lookup main protocol 75",
    // One connected route per network, though isp-a has two addresses in it.
    "ip route replace 198.51.100.0/26 dev wan0 src 198.51.100.1 table 201 proto 75",
    "ip route replace default via 198.51.100.62 dev wan0 table 201 proto 75",
    "ip rule add pref 1000 from 198.51.100.1 lookup 201 protocol 75",
    "ip rule add pref 1000 from 198.51.100.2 lookup 201 protocol 75",
    "ip route replace 198.51.100.64/26 dev wan1 src 198.51.100.65 table 202 proto 75",
    "ip route replace default via 198.51.100.126 dev wan1 table 202 proto 75",
    "ip rule add pref 1001 from 198.51.100.65 lookup 202 protocol 75",
  ]);
  assert.ok(cmds.includes("sysctl -qw net.ipv4.conf.wan0.rp_filter=1"));
  assert.ok(cmds.includes("sysctl -qw net.ipv4.conf.wan1.rp_filter=1"));
  assert.deepEqual(localBypassCommands(TWO).map((c) => c.slice(4, 7).join(" ")), [
    "20 iif wan0",
    "21 iif wan0",
    "25 iif wan1",
    "26 iif wan1",
  ]);
});

Deno.test("sixteen uplinks keep every steering rule below the local table's 100", () => {
  const many: RoutingPlan = {
    ...PLAN,
    uplinks: Array.from({ length: 16 }, (_, i) => ({ ...PLAN.uplinks[0], interface: `wan${i}` })),
  };
  const prefs = [...routingCommands(many), ...localBypassCommands(many)]
    .filter((c) => c[2] === "add" && c.includes("iif")).map((c) => Number(c[4]));
  assert.equal(prefs.length, 2 + 16 * 5);
  assert.equal(new Set(prefs).size, prefs.length);
  assert.ok(Math.max(...prefs) < 100, String(Math.max(...prefs)));
  assert.throws(
    () => routingCommands({ ...many, uplinks: [...many.uplinks, PLAN.uplinks[0]] }),
    RangeError,
  );
});

Deno.test("a gateway outside the uplink's networks is declared on-link", () => {
  const u = {
    ...TWO.uplinks[0],
    addresses: [{ address: "198.51.100.1", network: "198.51.100.1/32" }],
  };
  const cmds = routingCommands({ ...PLAN, uplinks: [u] }).map((c) => c.join(" "));
  assert.ok(
    cmds.includes("ip route replace default via 198.51.100.62 dev wan0 onlink table 201 proto 75"),
    cmds.join("\n"),
  );
});

Deno.test("the nft table covers every WAN interface and address", () => {
  const text = failClosedRuleset(TWO);
  assert.equal(
    chain(text, "prerouting")[3],
    'iifname { "wan0", "wan1" } ip saddr { 192.0.2.0/24, 198.51.100.1, 198.51.100.2, 198.51.100.65 } counter drop comment "wan-spoofed"',
  );
  const input = chain(text, "input");
  assert.ok(
    input.slice(1).every((r) => r.startsWith('iifname { "wan0", "wan1" } ')),
    input.join("\n"),
  );
  const output = chain(text, "output");
  assert.ok(
    output.slice(1).every((r) => r.startsWith('oifname { "wan0", "wan1" } ')),
    output.join("\n"),
  );
});

Deno.test("parseResolvers keeps IPv4 and IPv6 name servers that are not loopback", () => {
  const conf = [
    "# generated",
    "nameserver 127.0.0.53",
    "nameserver 198.51.100.53 # upstream",
    "nameserver 2001:db8::53",
    "nameserver 198.51.100.53",
    "nameserver 300.1.1.1",
    "  nameserver 203.0.113.53",
    "nameserver ::1",
    "nameserver 2001:DB8:0::53",
    "nameserver fe80::53%eth0",
    "nameserver 2001:db8::g",
    "search example.org",
  ].join("\n");
  assert.deepEqual(parseResolvers(conf), [
    "198.51.100.53",
    "2001:db8::53",
    "203.0.113.53",
    "fe80::53",
  ]);
});

Deno.test("parsePortRange reads the sysctl and falls back to the kernel default", () => {
  assert.deepEqual(parsePortRange("32768\t60999\n"), [32768, 60999]);
  assert.deepEqual(parsePortRange("1024 65535"), [1024, 65535]);
  assert.deepEqual(parsePortRange("9 2"), [32768, 60999]);
  assert.deepEqual(parsePortRange(""), [32768, 60999]);
});

Deno.test({
  name: "nft accepts the ruleset, twice, in a fresh namespace, and conntrack stays off there",
  ignore: Deno.uid() !== 0 ||
    (await run(["sh", "-c", "command -v nft"]).catch(() => null))?.code !== 0,
  fn: async () => {
    const ns = `kgt-${Deno.pid.toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
    assert.equal((await run(["ip", "netns", "add", ns])).code, 0);
    try {
      const nft = ["ip", "netns", "exec", ns, ...NFT_APPLY];
      for (let i = 0; i < 2; i++) {
        const r = await run(nft, failClosedRuleset(TWO));
        assert.equal(r.code, 0, r.stderr);
      }
      const list = await run(["ip", "netns", "exec", ns, "nft", "list", "tables"]);
      assert.equal(list.stdout.trim(), "table inet knockgate");
      const json = await run(["ip", "netns", "exec", ns, ...NFT_LIST_JSON]);
      assert.deepEqual(parseNftCounters(json.stdout), {
        "lan-spoofed": 0,
        "wan-spoofed": 0,
        "wan-input": 0,
        "not-through-tun": 0,
        "stealth": 0,
      });
      const count = await run([
        "ip",
        "netns",
        "exec",
        ns,
        "cat",
        "/proc/sys/net/netfilter/nf_conntrack_count",
      ]);
      // Absent (module not loaded) or no entry and no hook in this namespace.
      if (count.code === 0) assert.equal(count.stdout.trim(), "0");
    } finally {
      await run(["ip", "netns", "del", ns]);
    }
  },
});

Deno.test("parseNftCounters sums counters by rule comment and ignores the rest", () => {
  const rule = (comment: string | undefined, packets: number) => ({
    rule: { comment, expr: [{ match: {} }, { counter: { packets, bytes: 60 * packets } }] },
  });
  const json = JSON.stringify({
    nftables: [
      { metainfo: { version: "1.0.6" } },
      { table: { family: "inet", name: "knockgate" } },
      rule("stealth", 2),
      rule("stealth", 3),
      rule("lan-spoofed", 7),
      rule(undefined, 9),
    ],
  });
  assert.deepEqual(parseNftCounters(json), { stealth: 5, "lan-spoofed": 7 });
  assert.deepEqual(parseNftCounters("not json"), {});
});

Deno.test({
  name:
    "two uplinks in a namespace: the commands apply twice, strict RPF passes replies, stop clears",
  ignore: Deno.uid() !== 0 ||
    (await run(["sh", "-c", "command -v ip"]).catch(() => null))?.code !== 0,
  fn: async () => {
    const ns = `kgr-${Deno.pid.toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
    const inNs = (argv: string[]) => run(["ip", "netns", "exec", ns, ...argv]);
    const sh = async (script: string) => {
      const r = await inNs(["sh", "-ec", script]);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout;
    };
    assert.equal((await run(["ip", "netns", "add", ns])).code, 0);
    try {
      await sh(`ip link set lo up
        for i in wan0 wan1 lan0; do
          ip link add $i type veth peer name \${i}p; ip link set $i up; ip link set \${i}p up
        done
        ip addr add 198.51.100.1/26 dev wan0; ip addr add 198.51.100.2/26 dev wan0
        ip addr add 198.51.100.65/26 dev wan1; ip addr add 192.0.2.1/24 dev lan0
        ip tuntap add dev kn0 mode tun; ip link set kn0 up
        ip route add default via 198.51.100.62`);
      const state = () => sh("ip rule; ip route show table all proto 75");
      const before = await state();
      let installed = "";
      for (let round = 0; round < 2; round++) {
        for (const c of clearSteeringCommands(TWO)) await inNs(c);
        for (const c of [...routingCommands(TWO), ...localBypassCommands(TWO)]) {
          const r = await inNs(c);
          assert.equal(r.code, 0, `round ${round}: ${c.join(" ")}: ${r.stderr}`);
        }
        if (round === 1) assert.equal(await state(), installed);
        installed = await state();
      }
      // A client's packet to each uplink's address is steered to the TUN through strict RPF on
      // its own interface (the rule by source routes the check through that uplink's table) and
      // refused on the other one; main's default (isp-a) would fail isp-b's.
      const get = (dst: string, iif: string) =>
        inNs(["ip", "route", "get", dst, "from", "203.0.113.10", "iif", iif, "ipproto", "tcp"]);
      for (
        const [dst, own, other] of [["198.51.100.1", "wan0", "wan1"], [
          "198.51.100.65",
          "wan1",
          "wan0",
        ]]
      ) {
        const r = await get(dst, own);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /dev kn0 table 100/);
        assert.notEqual((await get(dst, other)).code, 0, `${dst} accepted on ${other}`);
      }
      // What the process writes back leaves by the uplink of its source; to the LAN, to the LAN.
      const out = await sh(`ip route get 203.0.113.10 from 198.51.100.65 iif kn0
        ip route get 203.0.113.10 from 198.51.100.2 iif kn0
        ip route get 192.0.2.12 from 198.51.100.65 iif kn0`);
      assert.match(out, /via 198\.51\.100\.126 dev wan1 table 202/);
      assert.match(out, /via 198\.51\.100\.62 dev wan0 table 201/);
      assert.match(out, /192\.0\.2\.12 from 198\.51\.100\.65 dev lan0/);
      for (const c of unroutingCommands(TWO)) await inNs(c);
      assert.equal(await state(), before);
      for (const c of unroutingCommands(TWO)) await inNs(c);
      assert.equal(await state(), before);
    } finally {
      await run(["ip", "netns", "del", ns]);
    }
  },
});

/** PLAN with IPv6: the uplink's 2001:db8:198::1/64, the LAN 2001:db8:192::/64. */
const PLAN6: RoutingPlan = {
  ...PLAN,
  uplinks: [{
    ...PLAN.uplinks[0],
    addresses6: [{ address: "2001:db8:198::1", network: "2001:db8:198::/64" }],
  }],
  ipv6: { enabled: true, lan: { address: "2001:db8:192::1", network: "2001:db8:192::/64" } },
};

Deno.test("IPv6 disabled: the steering and the table are exactly as without it", () => {
  const off: RoutingPlan = { ...PLAN6, ipv6: { ...PLAN6.ipv6!, enabled: false } };
  assert.deepEqual(routingCommands(off), routingCommands(PLAN));
  assert.deepEqual(localBypassCommands(off), localBypassCommands(PLAN));
  assert.equal(failClosedRuleset(off), failClosedRuleset(PLAN));
  const cmds = routingCommands(off).map((c) => c.join(" "));
  assert.ok(cmds.includes("sysctl -qw net.ipv6.conf.kn0.disable_ipv6=1"));
  assert.ok(!cmds.some((c) => c.startsWith("ip -6") || c.includes("ipv6.conf.all")), "no IPv6");
  assert.doesNotMatch(failClosedRuleset(off), /ip6 /);
});

Deno.test("IPv6 enabled: steered as IPv4, link-scope and ND kept local, RAs kept, forwarding last", () => {
  const cmds = routingCommands(PLAN6).map((c) => c.join(" "));
  const six = cmds.filter((c) => c.startsWith("ip -6") || c.includes("ipv6"));
  assert.deepEqual(six, [
    "sysctl -qw net.ipv6.conf.kn0.disable_ipv6=0",
    "ip -6 route replace default dev kn0 table 100 proto 75",
    "ip -6 rule add pref 100 lookup local protocol 75",
    "ip -6 rule del pref 0 lookup local",
    "ip -6 rule add pref 4 iif wan0 fwmark 0x4b47 lookup 100 protocol 75",
    "ip -6 rule add pref 5 to fe80::/10 lookup local protocol 75",
    "ip -6 rule add pref 5 to ff00::/8 lookup local protocol 75",
    "ip -6 rule add pref 6 iif wan0 ipproto ipv6-icmp to 2001:db8:198::1 lookup local protocol 75",
    "ip -6 rule add pref 10 iif lan0 to 2001:db8:192::1 lookup local protocol 75",
    "ip -6 rule add pref 15 iif lan0 lookup 100 protocol 75",
    "ip -6 rule add pref 22 iif wan0 ipproto tcp lookup 100 protocol 75",
    "ip -6 rule add pref 23 iif wan0 ipproto udp lookup 100 protocol 75",
    "ip -6 rule add pref 24 iif wan0 ipproto ipv6-icmp lookup 100 protocol 75",
    "sysctl -qw net.ipv6.conf.wan0.accept_ra=2",
    "sysctl -qw net.ipv6.conf.all.forwarding=1",
  ]);
  // The TUN has IPv6 before its IPv6 route; IPv4 forwarding is still the very last.
  assert.ok(cmds.indexOf(six[0]) < cmds.indexOf(six[1]));
  assert.equal(cmds[cmds.length - 1], "sysctl -qw net.ipv4.ip_forward=1");
  // The IPv4 commands are the same as without IPv6 but for the TUN's disable_ipv6.
  const v4 = (list: string[]) => list.filter((c) => !c.startsWith("ip -6") && !c.includes("ipv6"));
  assert.deepEqual(v4(cmds), v4(routingCommands(PLAN).map((c) => c.join(" "))));
  assert.deepEqual(localBypassCommands(PLAN6).map((c) => c.join(" ")).slice(2), [
    "ip -6 rule add pref 20 iif wan0 ipproto udp sport 53 dport 32768-60999 lookup local protocol 75",
    "ip -6 rule add pref 21 iif wan0 ipproto udp sport 123 dport 32768-60999 lookup local protocol 75",
  ]);
});

Deno.test("IPv6 enabled: prerouting drops spoofed IPv6 sources, the link's own pass on the LAN", () => {
  const text = failClosedRuleset(PLAN6);
  assert.deepEqual(chain(text, "prerouting").slice(4), [
    'iifname "lan0" ip6 saddr != { 2001:db8:192::/64, fe80::/10, ::/128 } counter drop comment "lan-spoofed"',
    'iifname "lan0" ip6 saddr 2001:db8:192::1 counter drop comment "lan-spoofed"',
    'iifname "wan0" ip6 saddr { 2001:db8:192::/64, 2001:db8:198::1 } counter drop comment "wan-spoofed"',
    'iifname "wan0" ip6 daddr 2001:db8:198::1 icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem } meta mark set 0x4b47',
  ]);
  // Forward and output are family-agnostic already (inet): the same with and without.
  for (const name of ["forward", "output"]) {
    assert.deepEqual(chain(text, name), chain(failClosedRuleset(PLAN), name), name);
  }
  // Input lets multicast listener queries in beside ND, so MLD snooping keeps ND working.
  const input = chain(text, "input"), before = chain(failClosedRuleset(PLAN), "input");
  assert.deepEqual(
    input.filter((r) => !r.includes("icmpv6")),
    before.filter((r) => !r.includes("icmpv6")),
  );
  assert.ok(input.includes(
    'iifname "wan0" icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert, mld-listener-query } accept',
  ));
});

Deno.test("IPv6 with NPTv6: the outside prefix is a spoofed source from the WAN, steered as any", () => {
  const npt: RoutingPlan = {
    ...PLAN6,
    uplinks: [{ ...PLAN6.uplinks[0], npt6: { outside: "2001:db8:199::/64" } }],
  };
  assert.ok(
    chain(failClosedRuleset(npt), "prerouting").includes(
      'iifname "wan0" ip6 saddr { 2001:db8:192::/64, 2001:db8:198::1, 2001:db8:199::/64 } counter drop comment "wan-spoofed"',
    ),
  );
  assert.deepEqual(routingCommands(npt), routingCommands(PLAN6), "no rule of its own");
});

Deno.test("IPv6 errors to the WAN addresses: marked on every uplink, steered ahead of ND", () => {
  const two: RoutingPlan = {
    ...TWO,
    uplinks: [
      {
        ...TWO.uplinks[0],
        addresses6: [{ address: "2001:db8:198::1", network: "2001:db8:198::/64" }],
      },
      {
        ...TWO.uplinks[1],
        addresses6: [
          { address: "2001:db8:199::1", network: "2001:db8:199::/64" },
          { address: "2001:db8:199::2", network: "2001:db8:199::/64" },
        ],
      },
    ],
    ipv6: PLAN6.ipv6,
  };
  assert.equal(
    chain(failClosedRuleset(two), "prerouting").at(-1),
    'iifname { "wan0", "wan1" } ip6 daddr { 2001:db8:198::1, 2001:db8:199::1, 2001:db8:199::2 } icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem } meta mark set 0x4b47',
  );
  const rules = routingCommands(two).map((c) => c.join(" ")).filter((c) =>
    c.startsWith("ip -6 rule add")
  );
  const marked = rules.filter((c) => c.includes("fwmark"));
  assert.deepEqual(marked, [
    "ip -6 rule add pref 4 iif wan0 fwmark 0x4b47 lookup 100 protocol 75",
    "ip -6 rule add pref 4 iif wan1 fwmark 0x4b47 lookup 100 protocol 75",
  ]);
  // Echo and ND (not marked) still go to the kernel at pref 6; the mark's rule comes first.
  const pref = (c: string) => Number(c.split(" ")[5]);
  const nd = rules.filter((c) => c.includes("lookup local") && c.includes("ipv6-icmp"));
  assert.equal(nd.length, 3);
  assert.ok(marked.every((m) => nd.every((n) => pref(m) < pref(n))));
  // An uplink without IPv6 addresses gets no mark rule; without any, no mark at all.
  const one = { ...two, uplinks: [two.uplinks[0], TWO.uplinks[1]] };
  assert.equal(routingCommands(one).filter((c) => c.includes("fwmark")).length, 1);
  const none = { ...PLAN6, uplinks: PLAN.uplinks };
  assert.doesNotMatch(failClosedRuleset(none), /mark/);
  assert.ok(!routingCommands(none).some((c) => c.includes("fwmark")));
  assert.doesNotMatch(failClosedRuleset(PLAN), /mark/);
});

Deno.test("stopping and starting clear the IPv6 rules and routes of ours too, whatever the plan", () => {
  assert.deepEqual(clearSteeringCommands().map((c) => c.join(" ")).slice(3), [
    "ip -6 rule add pref 0 lookup local protocol kernel",
    "ip -6 rule flush protocol 75",
    "ip -6 route flush table all proto 75",
  ]);
  for (const c of [...routingCommands(PLAN6), ...localBypassCommands(PLAN6)]) {
    if (c[0] === "ip" && c[3] === "add") assert.deepEqual(c.slice(-2), ["protocol", "75"]);
    if (c[0] === "ip" && c[3] === "replace") assert.deepEqual(c.slice(-2), ["proto", "75"]);
  }
});

Deno.test({
  name: "IPv6 in a namespace: nft takes the table; WAN and LAN traffic steered, ND and RAs local",
  ignore: Deno.uid() !== 0 ||
    (await run(["sh", "-c", "command -v nft"]).catch(() => null))?.code !== 0,
  fn: async () => {
    const ns = `kg6-${Deno.pid.toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
    const inNs = (argv: string[]) => run(["ip", "netns", "exec", ns, ...argv]);
    const sh = async (script: string) => {
      const r = await inNs(["sh", "-ec", script]);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout;
    };
    assert.equal((await run(["ip", "netns", "add", ns])).code, 0);
    try {
      await sh(`ip link set lo up
        for i in wan0 lan0; do
          ip link add $i type veth peer name \${i}p; ip link set $i up; ip link set \${i}p up
        done
        ip addr add 198.51.100.1/32 dev wan0; ip addr add 192.0.2.1/24 dev lan0
        ip -6 addr add 2001:db8:198::1/64 dev wan0 nodad
        ip -6 addr add 2001:db8:192::1/64 dev lan0 nodad
        ip -6 route add 2001:db8:203::/64 dev wan0
        ip tuntap add dev kn0 mode tun; ip link set kn0 up`);
      const r = await run(["ip", "netns", "exec", ns, ...NFT_APPLY], failClosedRuleset(PLAN6));
      assert.equal(r.code, 0, r.stderr);
      for (const c of clearSteeringCommands(PLAN6)) await inNs(c);
      for (const c of [...routingCommands(PLAN6), ...localBypassCommands(PLAN6)]) {
        const out = await inNs(c);
        assert.equal(out.code, 0, `${c.join(" ")}: ${out.stderr}`);
      }
      const get = (args: string) => sh(`ip -6 route get ${args}`);
      const client = "2001:db8:203::10", server = "2001:db8:192::12";
      // A client's TCP and ICMPv6 to a LAN host, and the LAN host's replies: through the TUN.
      assert.match(await get(`${server} from ${client} iif wan0 ipproto tcp`), /dev kn0 table 100/);
      assert.match(
        await get(`${server} from ${client} iif wan0 ipproto ipv6-icmp`),
        /dev kn0 table 100/,
      );
      assert.match(await get(`${client} from ${server} iif lan0 ipproto tcp`), /dev kn0 table 100/);
      // ND to the WAN address and the LAN address, and link-scope destinations: the kernel's.
      assert.match(
        await get(`2001:db8:198::1 from ${client} iif wan0 ipproto ipv6-icmp`),
        /^local 2001:db8:198::1 .*table local/,
      );
      assert.match(await get(`2001:db8:192::1 from ${server} iif lan0`), /^local .*table local/);
      // An ICMPv6 error to the WAN address (marked by the prerouting chain): to the TUN.
      assert.match(
        await get(`2001:db8:198::1 from ${client} iif wan0 ipproto ipv6-icmp mark 0x4b47`),
        /dev kn0 table 100/,
      );
      // (`ip route get` cannot show a multicast input route: "Message too long".)
      assert.match(await sh("ip -6 rule"), /^5:\s+from all to fe80::\/10 lookup local/m);
      assert.equal(
        (await sh("sysctl -n net.ipv6.conf.wan0.accept_ra net.ipv6.conf.all.forwarding")).trim(),
        "2\n1",
      );
      // The process gone (its TUN with it, the rules left): the error falls through to the
      // kernel, where the input chain drops it.
      await sh("ip link del kn0");
      assert.match(
        await get(`2001:db8:198::1 from ${client} iif wan0 ipproto ipv6-icmp mark 0x4b47`),
        /^local 2001:db8:198::1 .*table local/,
      );
      // A stop clears every IPv6 rule and route of ours.
      for (const c of unroutingCommands(PLAN6)) await inNs(c);
      assert.doesNotMatch(
        await sh("ip -6 rule; ip -6 route show table all"),
        /proto 75|lookup 100/,
      );
      assert.match(await sh("ip -6 rule"), /^0:\s+from all lookup local/);
    } finally {
      await run(["ip", "netns", "del", ns]);
    }
  },
});
