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
  wanInterface: "wan0",
  lanInterface: "lan0",
  wanAddress: "198.51.100.1",
  lanAddress: "192.0.2.1",
  lanNetwork: "192.0.2.0/24",
  resolvers: ["198.51.100.53"],
  ephemeralPorts: [32768, 60999],
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
  assert.ok(cmds.includes("ip rule add pref 31 iif wan0 ipproto udp lookup 100"));
});

Deno.test("the DNS/NTP bypass only takes replies to ephemeral ports", () => {
  assert.deepEqual(localBypassCommands(PLAN).map((c) => c.join(" ")), [
    "ip rule add pref 25 iif wan0 ipproto udp sport 53 dport 32768-60999 lookup local",
    "ip rule add pref 26 iif wan0 ipproto udp sport 123 dport 32768-60999 lookup local",
  ]);
});

Deno.test("stopping removes the steering and the bypass, never the table nor forwarding", () => {
  const cmds = unroutingCommands(PLAN).map((c) => c.join(" "));
  for (const pref of [10, 20, 25, 26, 30, 31, 32]) {
    assert.ok(cmds.includes(`ip rule del pref ${pref}`));
  }
  assert.ok(cmds.includes("ip rule add pref 0 lookup local"));
  assert.ok(cmds.includes("ip route flush table 100"));
  assert.ok(cmds.every((c) => !c.startsWith("nft") && !c.includes("ip_forward")));
});

Deno.test("parseResolvers keeps IPv4 name servers that are not loopback", () => {
  const conf = [
    "# generated",
    "nameserver 127.0.0.53",
    "nameserver 198.51.100.53 # upstream",
    "nameserver 2001:db8::53",
    "nameserver 198.51.100.53",
    "nameserver 300.1.1.1",
    "  nameserver 203.0.113.53",
    "search example.org",
  ].join("\n");
  assert.deepEqual(parseResolvers(conf), ["198.51.100.53", "203.0.113.53"]);
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
        const r = await run(nft, failClosedRuleset(PLAN));
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

Deno.test("a start clears stale steering without touching the local table's rules", () => {
  const cmds = clearSteeringCommands(PLAN).map((c) => c.join(" "));
  assert.ok(cmds.every((c) => !c.includes("lookup local")), cmds.join("\n"));
  for (const pref of [10, 20, 25, 26, 30, 31, 32]) {
    assert.ok(cmds.includes(`ip rule del pref ${pref}`));
  }
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
