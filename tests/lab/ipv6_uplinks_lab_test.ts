/**
 * Lab test of the uplinks' IPv6 next hops and probes (issue 13 item 5) in
 * the two-ISP lab with IPv6 (scripts/lab/two_uplinks.ts `twoUplinksIpv6Up`):
 * ISP A's IPv6 gateway is its router's link-local fe80::1, ISP B's a global
 * address on its link; a customer of ISP B is reachable only through ISP B
 * (the appliance's main table has no IPv6 default route). The client knocks
 * over IPv6 on WAN B, connects to a NAT66 forward on WAN B's IPv6 address,
 * and the replies leave by wan1 (they could not leave at all without the
 * uplink's IPv6 table and its rule by source). Both IPv6 probes are up;
 * ISP A's router then drops echo requests: isp-a's IPv6 goes down after
 * downAfter probes (the log line and the API say so, the IPv4 probe stays
 * up), the LAN's IPv6 egress moves to ISP B (the LAN server reaches client
 * B, which it could not through ISP A), and once echo is answered again it
 * comes back up after upAfter and the egress returns to ISP A. A kill -9
 * leaves the IPv6 rules and routes, the next start replaces them (each once)
 * and a clean stop removes them.
 */
import assert from "node:assert/strict";
import { type RunningLab, startTwoUplinkLab } from "../../scripts/lab/appliance.ts";
import {
  TWO_UPLINKS6 as T6,
  type TwoUplinkNames,
  twoUplinksIpv6Up,
} from "../../scripts/lab/two_uplinks.ts";
import { parseJsonc } from "../../src/config/parse_jsonc.ts";
import { api, signIn } from "./_api.ts";
import { capture } from "./_capture.ts";
import {
  ALICE,
  knock,
  labSupported,
  readLog,
  removeTestConfig,
  ROOT,
  scrapeMetrics,
  sh,
  shOk,
  spawnIn,
  until,
} from "./_helpers.ts";

type Lab = RunningLab<TwoUplinkNames>;

/** The NAT66 forward's public port on WAN B's IPv6 address (to the server's 8080). */
const PORT = 52206;

/** One entry of `GET /api/v1/uplinks`, the fields this test reads. */
interface UplinkView {
  name: string;
  gateway6: string | null;
  lanIpv6Egress: boolean;
  status: {
    up: boolean;
    ipv6?: { up: boolean; target: string; sent: number; received: number } | null;
  } | null;
}

/**
 * config/lab-two-uplinks.jsonc with IPv6: each uplink's IPv6 address and
 * gateway6, probed every 200 ms (down after 3 lost, up after 2 answered), the
 * LAN prefix, and a NAT66 forward bound to WAN B's IPv6 address.
 */
async function ipv6UplinksConfig(): Promise<string> {
  const text = await Deno.readTextFile(`${ROOT}config/lab-two-uplinks.jsonc`);
  // deno-lint-ignore no-explicit-any
  const c = parseJsonc(text).value as any;
  const probe6 = { intervalMs: 200, downAfter: 3, upAfter: 2 };
  assert.deepEqual(c.wan.map((u: { name: string }) => u.name), ["isp-a", "isp-b"]);
  Object.assign(c.wan[0], { addresses6: [`${T6.wanA}/64`], gateway6: T6.gatewayA, probe6 });
  Object.assign(c.wan[1], { addresses6: [`${T6.wanB}/64`], gateway6: T6.gatewayB, probe6 });
  c.ipv6 = { enabled: true, lan: { address: T6.lan, network: T6.lanNetwork } };
  c.forwards.push({
    name: "web6-b",
    protocol: "tcp",
    uplink: "isp-b",
    wanAddress: T6.wanB,
    publicPorts: String(PORT),
    privateAddress: T6.server,
    privatePorts: "8080",
    enforceKnock: true,
  });
  const dir = await Deno.makeTempDir({ prefix: "knockgate-labtest-" });
  c.store = { path: `${dir}/kg.kv` };
  const file = `${dir}/appliance.json`;
  await Deno.writeTextFile(file, JSON.stringify(c, null, 2));
  return file;
}

/** The uplinks as the API shows them, by name. */
async function uplinks(lab: Lab, token: string): Promise<Record<string, UplinkView>> {
  const r = await api<{ uplinks: UplinkView[] }, TwoUplinkNames>(lab, "GET", "/uplinks", {
    token,
  });
  assert.equal(r.status, 200, `GET /uplinks: ${r.status} ${JSON.stringify(r.body)}`);
  return Object.fromEntries(r.body.uplinks.map((u) => [u.name, u]));
}

/** Waits (at most `timeoutMs`) until the API's uplinks satisfy `ok`; the last view. */
async function uplinksWhen(
  lab: Lab,
  token: string,
  ok: (u: Record<string, UplinkView>) => boolean,
  timeoutMs: number,
): Promise<Record<string, UplinkView>> {
  let last: Record<string, UplinkView> = {};
  await until(async () => ok(last = await uplinks(lab, token)), timeoutMs, 200);
  return last;
}

/** curl over IPv6 from client B to the NAT66 forward. */
function curlForward(lab: Lab) {
  return sh(lab, "clientb", [
    "curl",
    "-sS",
    "-g",
    "-6",
    "-m",
    "3",
    `http://[${T6.wanB}]:${PORT}/`,
  ], 8);
}

/** One ping from the LAN server to client B over IPv6: whether it was answered. */
async function lanPingsClientB(lab: Lab): Promise<boolean> {
  const r = await sh(lab, "server", ["ping", "-6", "-n", "-c", "1", "-W", "1", T6.clientB], 5);
  return r.code === 0;
}

/** The rule ISP A's router drops echo requests with (its neighbour discovery still answers). */
const DROP_ECHO = `table inet kgtest {
  chain input {
    type filter hook input priority filter; policy accept;
    iifname "app" icmpv6 type echo-request counter drop
  }
}
`;

Deno.test({
  name: "lab: IPv6 uplinks (replies by their uplink's IPv6 table, probe6 down and up, LAN egress)",
  ignore: !labSupported(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const config = await ipv6UplinksConfig();
    let lab: Lab | null = null;
    try {
      lab = await startTwoUplinkLab({ config, appliance: false });
      const l = lab;
      await twoUplinksIpv6Up(l.names);
      const http = spawnIn(l, "server", [
        Deno.execPath(),
        "run",
        "-A",
        `${ROOT}scripts/lab/server.ts`,
        T6.server,
      ], 120);
      const listening = async () =>
        (await sh(l, "server", ["ss", "-Hltn", "sport = :8080"], 5)).stdout.includes(
          `[${T6.server}]`,
        );
      assert.ok(await until(listening, 15000), "the IPv6 server did not start");
      await l.startAppliance();
      const token = await signIn(l);

      await t.step("the main table cannot reach client B: only isp-b's table can", async () => {
        const main = await sh(l, "appliance", ["ip", "-6", "route", "get", T6.clientB], 5);
        assert.notEqual(main.code, 0, `a route in the main table: ${main.stdout}`);
        const byB = await shOk(l, "appliance", [
          "ip",
          "-6",
          "route",
          "get",
          T6.clientB,
          "from",
          T6.wanB,
        ]);
        assert.match(byB, new RegExp(`via ${T6.gatewayB} dev wan1 table 202`));
      });

      await t.step("both IPv6 probes answer; the API shows the gateways", async () => {
        const u = await uplinksWhen(
          l,
          token,
          (u) => ["isp-a", "isp-b"].every((n) => (u[n]?.status?.ipv6?.received ?? 0) >= 2),
          10000,
        );
        assert.equal(u["isp-a"].gateway6, T6.gatewayA, JSON.stringify(u["isp-a"]));
        assert.equal(u["isp-b"].gateway6, T6.gatewayB, JSON.stringify(u["isp-b"]));
        for (const n of ["isp-a", "isp-b"]) {
          assert.equal(u[n].status?.ipv6?.up, true, JSON.stringify(u[n]));
        }
        assert.deepEqual([u["isp-a"].lanIpv6Egress, u["isp-b"].lanIpv6Egress], [true, false]);
        assert.equal(await lanPingsClientB(l), false, "LAN IPv6 left by ISP A, which has no route");
      });

      await t.step(
        "client B knocks over IPv6 on WAN B; the NAT66 forward's replies leave by wan1",
        async () => {
          assert.notEqual((await curlForward(l)).code, 0, "the forward answered before a knock");
          const k = await knock(l, "clientb", ["--family", "6"], ALICE, T6.wanB);
          assert.equal(k.code, 0, `knock on ${T6.wanB}: ${k.stdout}${k.stderr}`);
          const onWan1 = await capture(
            l,
            "appliance",
            `ip6 and src host ${T6.wanB}`,
            "wan1",
            false,
          );
          const onWan0 = await capture(l, "appliance", `ip6 and host ${T6.clientB}`, "wan0", false);
          const r = await curlForward(l);
          const [wan1, wan0] = [await onWan1.stop(), await onWan0.stop()];
          assert.equal(r.code, 0, `curl: ${r.stderr} (wan1 saw:\n${wan1.join("\n")})`);
          assert.equal(r.stdout, `hello from ${T6.server}:8080 to ${T6.clientB}\n`);
          assert.ok(
            wan1.some((x) => x.includes(`${T6.wanB}.${PORT} > ${T6.clientB}.`)),
            `no reply from ${T6.wanB}.${PORT} on wan1:\n${wan1.join("\n")}`,
          );
          assert.deepEqual(wan0, [], "client B's flow showed on wan0");
        },
      );

      const down = /\[Uplink\] down uplink=isp-a family=ipv6 target=fe80::1 lost=3/;
      const up = /\[Uplink\] up uplink=isp-a family=ipv6 target=fe80::1 rtt-ms=/;
      const toB = /routing: LAN IPv6 egress by uplink isp-b \(table 202/;
      const toA = /routing: LAN IPv6 egress by uplink isp-a \(table 201/;

      await t.step(
        "ISP A's router drops echo: isp-a's IPv6 down, LAN egress by ISP B",
        async () => {
          await shOk(l, "ispa", ["sh", "-c", `printf '%s' '${DROP_ECHO}' | nft -f -`]);
          assert.ok(
            await until(async () => toB.test(await readLog(l)), 10000),
            `no IPv6 down and egress move within 10 s:\n${await readLog(l)}`,
          );
          assert.match(await readLog(l), down);
          const u = await uplinksWhen(l, token, (u) => u["isp-b"]?.lanIpv6Egress === true, 5000);
          assert.equal(u["isp-a"].status?.ipv6?.up, false, JSON.stringify(u["isp-a"]));
          assert.equal(u["isp-a"].status?.up, true, "the IPv4 probe is not affected");
          assert.deepEqual([u["isp-a"].lanIpv6Egress, u["isp-b"].lanIpv6Egress], [false, true]);
          assert.ok(
            await until(() => lanPingsClientB(l), 5000),
            "the LAN server did not reach client B through ISP B",
          );
          const metrics = await scrapeMetrics(l, token);
          assert.match(metrics, /^knockgate_uplink_ipv6_up\{uplink="isp-a"\} 0$/m);
          assert.match(metrics, /^knockgate_uplink_ipv6_up\{uplink="isp-b"\} 1$/m);
          assert.match(metrics, /^knockgate_uplink_up\{uplink="isp-a"\} 1$/m);
        },
      );

      await t.step("echo answered again: isp-a's IPv6 up, LAN egress back to ISP A", async () => {
        await shOk(l, "ispa", ["nft", "delete", "table", "inet", "kgtest"]);
        assert.ok(
          await until(async () => toA.test(await readLog(l)), 10000),
          `no IPv6 up and egress move within 10 s:\n${await readLog(l)}`,
        );
        assert.match(await readLog(l), up);
        const u = await uplinks(l, token);
        assert.equal(u["isp-a"].status?.ipv6?.up, true, JSON.stringify(u["isp-a"]));
        assert.deepEqual([u["isp-a"].lanIpv6Egress, u["isp-b"].lanIpv6Egress], [true, false]);
        const rules = await shOk(l, "appliance", ["ip", "-6", "rule", "list", "pref", "1100"]);
        assert.match(rules.trim(), /^1100:\s+from 2001:db8:192::\/64 lookup 201 proto 75$/);
        const log = await readLog(l);
        assert.doesNotMatch(log, /^routing: ip /m, "a routing command failed");
        assert.doesNotMatch(log, /no IPv6 health probe/, "a probe socket did not open");
      });

      await t.step(
        "a crash leaves the IPv6 rules, a start replaces them once, a stop removes them",
        async () => {
          const ours = async () =>
            await shOk(l, "appliance", [
              "sh",
              "-c",
              "ip -6 rule; ip -6 route show table all proto 75",
            ]);
          await l.stopAppliance("SIGKILL");
          assert.match(
            await ours(),
            /^1100:\s+from 2001:db8:192::\/64 lookup 201/m,
            "kill -9 left them",
          );
          await l.startAppliance();
          const again = await ours();
          assert.equal(again.match(/^1100:/gm)?.length, 1, again);
          assert.equal(
            again.match(new RegExp(`^1001:\\s+from ${T6.wanB} lookup 202`, "gm"))?.length,
            1,
            again,
          );
          assert.equal(again.match(/default via fe80::1 dev wan0 table 201/g)?.length, 1, again);
          await l.stopAppliance("SIGTERM");
          const left = await ours();
          assert.doesNotMatch(left, /proto 75|lookup 20[12]|^1100:/m, left);
        },
      );
      await http.stop();
    } finally {
      await lab?.down();
      await removeTestConfig(config);
    }
  },
});
