/**
 * Lab test of `ipv6.pairFamilies` (issue 13: "an IPv4 knock does not open
 * IPv6, or does, if configured: test both") in the dual-stack lab, with a
 * pinhole to the LAN server's IPv6 address and the lab's IPv4 forward, both
 * enforcing knocks. The clients resolve a dual-stack name (their
 * /etc/netns hosts file) to the WAN's IPv4 and IPv6 addresses, and
 * `knock --family both` sends one step over IPv4, then over IPv6.
 * Unpaired (the default) the IPv4 half unlocks and the IPv6 half is a
 * replay: IPv6 stays locked. After a restart with the option on, another
 * client's `--family both` opens both families, and a third knock of that
 * step (another IPv4 source) is a replay.
 */
import assert from "node:assert/strict";
import { type RunningLab, startLab } from "../../scripts/lab/appliance.ts";
import { LAB, LAB6 } from "../../scripts/lab/topology.ts";
import {
  curl,
  knock,
  labSupported,
  readLog,
  removeTestConfig,
  ROOT,
  sh,
  spawnIn,
  until,
  writeTestConfig,
} from "./_helpers.ts";

const S6 = LAB6.server, W6 = LAB6.wan;
const DUAL = "dual.knockgate.test";

/** The lab configuration with IPv6 on and a pinhole to the server's IPv6 port 8080. */
async function dualConfig(): Promise<string> {
  const file = await writeTestConfig();
  let text = await Deno.readTextFile(file);
  const edit = (from: string, to: string) => {
    assert.ok(text.includes(from), `the default config changed: ${from}`);
    text = text.replace(from, to);
  };
  edit(
    `"addresses": ["198.51.100.1/24"] }]`,
    `"addresses": ["198.51.100.1/24"], "addresses6": ["${W6}/64"] }],
  "ipv6": { "enabled": true, "lan": { "address": "${LAB6.lan}", "network": "${LAB6.lanNetwork}" },
    "pairFamilies": false }`,
  );
  edit(
    `"openPorts": []`,
    `"openPorts": [{
    "name": "server6",
    "privateAddress": "${S6}",
    "enforceKnock": true,
    "ports": [{ "protocol": "tcp", "ports": "8080" }]
  }]`,
  );
  await Deno.writeTextFile(file, text);
  return file;
}

function re(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

function replayLine(ip: string, step: number, firstIp: string): RegExp {
  return new RegExp(
    `\\[Port Knock\\] replay user=alice ip=${re(ip)} step=${step} first-ip=${re(firstIp)}`,
  );
}

function logHas(lab: RunningLab, pattern: RegExp): Promise<boolean> {
  return until(async () => pattern.test(await readLog(lab)), 5000);
}

/** `knock --family both` of step `step` to the dual-stack name from `ns`. */
function knockBoth(lab: RunningLab, ns: "client" | "client2", step: number, family = "both") {
  return knock(lab, ns, ["--family", family, "--time", String(step * 30 + 15)], undefined, DUAL);
}

/** curl over IPv6 to the server's pinhole from `ns`: the exit code. */
async function curl6(lab: RunningLab, ns: "client" | "client2"): Promise<number> {
  const r = await sh(lab, ns, ["curl", "-sS", "-g", "-6", "-m", "3", `http://[${S6}]:8080/`], 8);
  return r.code;
}

Deno.test({
  name:
    "lab: knock --family both opens IPv6 only with ipv6.pairFamilies; a third source is a replay",
  ignore: !labSupported(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const config = await dualConfig();
    let lab: RunningLab | null = null;
    const hostDirs: string[] = [];
    try {
      lab = await startLab({ config, ipv6: true });
      const l = lab;
      for (const ns of [l.names.client, l.names.client2]) {
        const dir = `/etc/netns/${ns}`;
        await Deno.mkdir(dir, { recursive: true });
        hostDirs.push(dir);
        await Deno.writeTextFile(`${dir}/hosts`, `${LAB.wan} ${DUAL}\n${W6} ${DUAL}\n`);
      }
      const http = spawnIn(l, "server", [
        Deno.execPath(),
        "run",
        "-A",
        `${ROOT}scripts/lab/server.ts`,
        S6,
      ], 300);
      const up = async () =>
        (await sh(l, "server", ["ss", "-Hltn", "sport = :8080"], 5)).stdout.includes(`[${S6}]`);
      assert.ok(await until(up, 15000), "the IPv6 server did not start");
      // The current step (a boundary passing on the way is drift -1); the paired phase takes the
      // next one, unused whatever time the restart takes.
      const s1 = Math.floor(Date.now() / 30_000);

      await t.step("unpaired: --family both opens IPv4; its IPv6 half is a replay", async () => {
        const r = await knockBoth(l, "client", s1);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /sent \d+ knocks over IPv4[\s\S]*sent \d+ knocks over IPv6/);
        assert.match((await curl(l, "client", `http://${LAB.wan}:52201/`, 3)) ?? "", /hello from/);
        assert.notEqual(await curl6(l, "client"), 0, "IPv6 stayed locked");
        assert.ok(
          await logHas(l, replayLine("2001:db8:203::/64", s1, LAB.client)),
          await readLog(l),
        );
      });

      await t.step("paired (after a restart): both open, a third source is a replay", async () => {
        const text = await Deno.readTextFile(config);
        await Deno.writeTextFile(
          config,
          text.replace(`"pairFamilies": false`, `"pairFamilies": true`),
        );
        await l.restartAppliance();
        const s2 = Math.floor(Date.now() / 30_000) + 1; // after s1 whenever this runs: a fresh step
        assert.notEqual(await curl6(l, "client2"), 0, "locked before the knock");
        const r = await knockBoth(l, "client2", s2);
        assert.equal(r.code, 0, r.stderr);
        assert.match((await curl(l, "client2", `http://${LAB.wan}:52201/`, 3)) ?? "", /hello from/);
        assert.equal(await curl6(l, "client2"), 0, "the IPv6 half opened the pinhole");
        const third = await knockBoth(l, "client", s2, "4");
        assert.equal(third.code, 0, third.stderr);
        assert.ok(
          await logHas(l, replayLine(LAB.client, s2, LAB.client2)),
          await readLog(l),
        );
      });
      await http.stop();
    } finally {
      await lab?.down();
      for (const dir of hostDirs) await Deno.remove(dir, { recursive: true }).catch(() => {});
      await removeTestConfig(config);
    }
  },
});
