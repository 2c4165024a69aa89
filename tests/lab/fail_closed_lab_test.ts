/**
 * Lab test: the appliance fails closed. A WAN client that routes the LAN
 * network via the WAN address tries to reach the LAN server (TCP, ping, UDP)
 * and the WAN address itself, while the appliance runs, after SIGTERM and
 * after SIGKILL (its TUN gone, its steering rules left behind). Nothing
 * crosses and nothing answers; a fresh start works again.
 */
import assert from "node:assert/strict";
import { type RunningLab, startLab } from "../../scripts/lab/appliance.ts";
import { LAB } from "../../scripts/lab/topology.ts";
import {
  curl,
  knock,
  labSupported,
  removeTestConfig,
  ROOT,
  sh,
  shOk,
  writeTestConfig,
} from "./_helpers.ts";
import { capture, failClosedInstalled, kernelConntrack, nftCount } from "./_capture.ts";

const C = LAB.client, S = LAB.server, W = LAB.wan;
const HELLO_C = `hello from ${S}:8080 to ${C}\n`;

/**
 * The client tries the LAN server directly (TCP, ping, UDP echo) and the WAN
 * address (a forward, the management port, UDP, ping); asserts the server
 * sees nothing from the WAN and the client hears nothing back.
 */
async function probeNothingCrosses(lab: RunningLab): Promise<void> {
  const atServer = await capture(lab, "server", "ip and not src host " + S);
  const atClient = await capture(lab, "client", `ip and (src host ${W} or src net 192.0.2.0/24)`);
  assert.equal(await curl(lab, "client", `http://${S}:8080/`, 2), null, "TCP to the LAN server");
  await sh(lab, "client", ["ping", "-c", "2", "-i", "0.2", "-W", "1", S], 5);
  const udp = await shOk(lab, "client", [
    Deno.execPath(),
    "run",
    "-A",
    `${ROOT}tests/lab/_udp_echo.ts`,
    S,
    "7",
    "32",
    "1000",
  ], 15);
  assert.equal(JSON.parse(udp).received, -1, "UDP echo from the LAN server");
  assert.equal(await curl(lab, "client", `http://${W}:52201/`, 2), null, "the forward");
  assert.equal(await curl(lab, "client", `http://${W}:8443/`, 2), null, "the management port");
  await sh(lab, "client", ["hping3", "-2", "-p", "52203", "-c", "2", "-i", "u200000", W], 5);
  await sh(lab, "client", ["ping", "-c", "2", "-i", "0.2", "-W", "1", W], 5);
  const crossed = await atServer.stop();
  const heard = await atClient.stop();
  assert.deepEqual(crossed, [], "packets from the WAN reached the LAN server");
  assert.deepEqual(heard, [], "the appliance or the LAN answered the WAN client");
}

/** The client reaches the forward: its unlock survived, or a knock opens it. */
async function forwardWorks(lab: RunningLab): Promise<void> {
  if (await curl(lab, "client", `http://${W}:52201/`, 3) === HELLO_C) return;
  const r = await knock(lab, "client", ["--transport", "tcp"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(await curl(lab, "client", `http://${W}:52201/`), HELLO_C);
}

Deno.test({
  name: "lab: fail closed (route via the WAN address; running, after SIGTERM, after SIGKILL)",
  ignore: !labSupported(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const config = await writeTestConfig();
    let lab: RunningLab | null = null;
    try {
      lab = await startLab({ config });
      const l = lab;
      // The attacker's trick: the LAN network is "behind" the WAN address.
      await shOk(l, "client", ["ip", "route", "add", "192.0.2.0/24", "via", W]);

      await t.step(
        "running: the table is in place and nothing crosses outside the TUN",
        async () => {
          assert.ok(await failClosedInstalled(l));
          await probeNothingCrosses(l);
        },
      );

      await t.step("after SIGTERM the table stays and nothing crosses", async () => {
        const before = await nftCount(l, "forward", "not-through-tun");
        await l.stopAppliance("SIGTERM");
        assert.ok(await failClosedInstalled(l), "the table outlives a clean stop");
        const rules = await shOk(l, "appliance", ["ip", "rule"]);
        assert.doesNotMatch(rules, /lookup 100/, "a clean stop removes the steering");
        await probeNothingCrosses(l);
        assert.ok((await nftCount(l, "forward", "not-through-tun")) > before, "forward drops");
      });

      await t.step("a fresh start after SIGTERM works: a knock opens the forward", async () => {
        await l.startAppliance();
        await forwardWorks(l);
      });

      await t.step("after SIGKILL (TUN gone, steering left) nothing crosses", async () => {
        await l.stopAppliance("SIGKILL");
        const link = await sh(l, "appliance", ["ip", "link", "show", "kn0"], 5);
        assert.notEqual(link.code, 0, "the TUN device went with the process");
        const rules = await shOk(l, "appliance", ["ip", "rule"]);
        assert.match(rules, /lookup 100/, "a crash leaves the steering rules");
        assert.ok(await failClosedInstalled(l));
        await probeNothingCrosses(l);
      });

      await t.step("a fresh start after SIGKILL works, with no duplicated rule", async () => {
        await l.startAppliance();
        const rules = (await shOk(l, "appliance", ["ip", "rule"])).trim().split("\n");
        const prefs = rules.map((r) => r.split(":")[0]);
        assert.equal(new Set(prefs).size, prefs.length, rules.join("\n"));
        assert.ok(!prefs.includes("0"), "the local table stays behind the steering");
        await forwardWorks(l);
        const tables = await shOk(l, "appliance", ["nft", "list", "tables"]);
        assert.equal(tables.trim(), "table inet knockgate", "one table, replaced in place");
      });

      await t.step(
        "kernel connection tracking stayed off in the appliance's namespace",
        async () => {
          const n = await kernelConntrack(l);
          assert.ok(n === null || n === 0, `nf_conntrack_count is ${n}`);
        },
      );
    } finally {
      await lab?.down();
      await removeTestConfig(config);
    }
  },
});
