/**
 * Lab test of the two-ISP topology itself (scripts/lab/two_uplinks.ts), with
 * the appliance not started: every client reaches both WAN networks and the
 * remote server, the appliance namespace has no default route, each ISP drops
 * a packet from the appliance whose source is not its own (BCP 38), and
 * tcpdump on wan0 and wan1 tells the uplinks apart. The per-uplink routing is
 * put in by hand here, as `--routing` will (tables 201 and 202, rules by
 * source address); multi_uplink_lab_test.ts checks the appliance's own.
 */
import assert from "node:assert/strict";
import { type RunningLab, startTwoUplinkLab } from "../../scripts/lab/appliance.ts";
import {
  bcp38Drops,
  TWO_UPLINKS as T,
  type TwoUplinkNames,
} from "../../scripts/lab/two_uplinks.ts";
import { capture } from "./_capture.ts";
import { curl, labSupported, sh, shOk } from "./_helpers.ts";

type Lab = RunningLab<TwoUplinkNames>;

/** Three pings from `ns` to `dst`: true when all three are answered. */
async function pings(lab: Lab, ns: keyof TwoUplinkNames, dst: string, from?: string) {
  const argv = ["ping", "-n", "-c", "3", "-i", "0.2", "-W", "2"];
  if (from) argv.push("-I", from);
  const r = await sh(lab, ns, [...argv, dst], 15);
  return { ok: /3 packets transmitted, 3 received/.test(r.stdout), out: r.stdout + r.stderr };
}

/** Table 201 via ISP A for its two addresses, table 202 via ISP B for its one. */
async function perUplinkRouting(lab: Lab): Promise<void> {
  const ip = (args: string[]) => shOk(lab, "appliance", ["ip", ...args]);
  await ip(["route", "add", T.networkA, "dev", "wan0", "table", "201"]);
  await ip(["route", "add", "default", "via", T.gatewayA, "dev", "wan0", "table", "201"]);
  await ip(["route", "add", T.networkB, "dev", "wan1", "table", "202"]);
  await ip(["route", "add", "default", "via", T.gatewayB, "dev", "wan1", "table", "202"]);
  for (const a of [T.wanA, T.wanA2]) {
    await ip(["rule", "add", "pref", "1000", "from", a, "lookup", "201"]);
  }
  await ip(["rule", "add", "pref", "1000", "from", T.wanB, "lookup", "202"]);
}

Deno.test({
  name: "lab: two-ISP topology (routes, BCP 38 at each ISP, tcpdump per uplink; no appliance)",
  ignore: !labSupported(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    let lab: Lab | null = null;
    try {
      lab = await startTwoUplinkLab({ appliance: false });
      const l = lab;

      await t.step("the appliance namespace has no default route of its own", async () => {
        const main = await shOk(l, "appliance", ["ip", "route", "show", "table", "main"]);
        assert.doesNotMatch(main, /^default/m, main);
        const r = await sh(l, "appliance", ["ip", "route", "get", T.remote, "from", T.wanA]);
        assert.notEqual(r.code, 0, `a route to the Internet without uplink tables: ${r.stdout}`);
        assert.match(r.stderr, /unreachable/i);
      });

      await t.step("the LAN: both servers reach the appliance and each other", async () => {
        for (const ns of ["server", "server2"] as const) {
          const p = await pings(l, ns, T.lan);
          assert.ok(p.ok, `${ns} -> ${T.lan}: ${p.out}`);
        }
        assert.equal(
          await curl(l, "server2", `http://${T.server}:8080/`),
          `hello from ${T.server}:8080 to ${T.server2}\n`,
        );
      });

      await t.step(
        "through the core: each client reaches the other ISP and the remote",
        async () => {
          for (const ns of ["clienta", "clientb"] as const) {
            const p = await pings(l, ns, T.remote);
            assert.ok(p.ok, `${ns} -> remote ${T.remote}: ${p.out}`);
          }
          assert.equal(
            await curl(l, "clienta", `http://${T.remote}:8080/`),
            `hello from ${T.remote}:8080 to ${T.clientA}\n`,
          );
          assert.equal(
            await curl(l, "clientb", `http://${T.remote}:8080/`),
            `hello from ${T.remote}:8080 to ${T.clientB}\n`,
          );
        },
      );

      await perUplinkRouting(l);

      await t.step("with per-uplink tables every client reaches every WAN address", async () => {
        for (const ns of ["clienta", "clientb"] as const) {
          for (const dst of [T.wanA, T.wanA2, T.wanB]) {
            const p = await pings(l, ns, dst);
            assert.ok(p.ok, `${ns} -> ${dst}: ${p.out}`);
          }
        }
        for (const from of [T.wanA, T.wanB]) {
          const p = await pings(l, "appliance", T.remote, from);
          assert.ok(p.ok, `appliance from ${from} -> ${T.remote}: ${p.out}`);
        }
      });

      await t.step("client A to WAN B: request and reply on wan1, nothing on wan0", async () => {
        const filter = `icmp and host ${T.clientA}`;
        const wan0 = await capture(l, "appliance", filter, "wan0", false);
        const wan1 = await capture(l, "appliance", filter, "wan1", false);
        const p = await pings(l, "clienta", T.wanB);
        const [seen0, seen1] = [await wan0.stop(), await wan1.stop()];
        assert.ok(p.ok, p.out);
        const replies = seen1.filter((x) =>
          x.includes(`${T.wanB} > ${T.clientA}: ICMP echo reply`)
        );
        assert.equal(replies.length, 3, `wan1:\n${seen1.join("\n")}`);
        assert.deepEqual(seen0, [], "wan0 saw client A's traffic to WAN B");
      });

      await t.step("BCP 38: ISP B drops a packet from WAN A's address out of wan1", async () => {
        // The wrong uplink on purpose: WAN A's address routed out of ISP B.
        await shOk(l, "appliance", [
          "ip",
          "rule",
          "add",
          "pref",
          "900",
          "from",
          T.wanA,
          "lookup",
          "202",
        ]);
        try {
          const before = await bcp38Drops(l.names.ispb);
          const atRemote = await capture(l, "remote", "icmp", "eth0", false);
          const p = await pings(l, "appliance", T.remote, T.wanA);
          const seen = await atRemote.stop();
          assert.ok(!p.ok, `a wrong-source ping got through: ${p.out}`);
          assert.match(p.out, /3 packets transmitted, 0 received/);
          assert.equal((await bcp38Drops(l.names.ispb)) - before, 3, "ISP B's bcp38 counter");
          assert.deepEqual(seen, [], "the remote server saw the wrong-source packets");
        } finally {
          await shOk(l, "appliance", ["ip", "rule", "del", "pref", "900"]);
        }
        // ISP A takes the same address: nothing dropped there.
        const p = await pings(l, "appliance", T.remote, T.wanA);
        assert.ok(p.ok, p.out);
        assert.equal(await bcp38Drops(l.names.ispa), 0);
      });
    } finally {
      await lab?.down();
    }
    if (lab) {
      const left = (await new Deno.Command("ip", { args: ["netns", "list"] }).output()).stdout;
      const names = new TextDecoder().decode(left);
      assert.ok(!names.includes(lab.suffix), `namespaces left behind:\n${names}`);
    }
  },
});
