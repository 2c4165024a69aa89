/**
 * Restarts lose nothing: long-lived TCP connections from two WAN clients (one
 * allow-listed, one knock-unlocked) through a forward to a LAN echo server,
 * and one from the LAN server out through masquerade to an echo server on
 * the client's side, each carry a
 * counter stream (every byte checked in order) across a SIGTERM and start, a
 * kill -9 and start (the last checkpoint), and a kill -9 with the snapshot
 * gone (loose pickup alone). Counters are sent while the appliance is down:
 * the fail-closed table keeps forwarding off, and TCP retransmits them once
 * the appliance is back.
 */
import assert from "node:assert/strict";
import { type RunningLab, startLab } from "../../scripts/lab/appliance.ts";
import { LAB } from "../../scripts/lab/topology.ts";
import {
  type Background,
  echoed,
  knock,
  labSupported,
  readLog,
  removeTestConfig,
  ROOT,
  spawnIn,
  status,
  until,
  writeTestConfig,
} from "./_helpers.ts";

const ECHO = `${ROOT}tests/lab/_echo_stream.ts`;
/** The client's echo server, reached from the LAN through masquerade. */
const CLIENT_ECHO_PORT = 7007;
/** Counters each round sends (4 bytes each). */
const ROUND = 5000;

/**
 * A config whose "udp-echo" forward (52203 -> server:7, knock enforced)
 * carries TCP too; the first client is allow-listed, the second knocks.
 */
async function restartConfig(): Promise<string> {
  const file = await writeTestConfig({ allow: [`${LAB.client}/32`] });
  const text = await Deno.readTextFile(file);
  const edited = text.replace(
    /("name": "udp-echo",\s*"enabled": true,\s*"protocol": )"udp"/,
    '$1"both"',
  );
  assert.notEqual(edited, text, "the udp-echo forward is in the default config");
  await Deno.writeTextFile(file, edited);
  return file;
}

Deno.test({
  name: "lab: connections through a forward and masquerade survive SIGTERM and kill -9 restarts",
  ignore: !labSupported(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const config = await restartConfig();
    let lab: RunningLab | null = null;
    const bg: Background[] = [];
    try {
      lab = await startLab({ config });
      const l = lab;
      const serve = (ns: "server" | "client", host: string, port: number) => {
        const s = spawnIn(
          l,
          ns,
          [Deno.execPath(), "run", "-A", ECHO, "serve", host, String(port)],
          300,
        );
        bg.push(s);
        return s;
      };
      const servers = [
        serve("server", LAB.server, 7),
        serve("client", LAB.client, CLIENT_ECHO_PORT),
      ];
      for (const s of servers) {
        assert.ok(await until(() => s.output().includes("listening"), 15000), s.errors());
      }
      const connect = (ns: "server" | "client" | "client2", host: string, port: number) => {
        const s = spawnIn(
          l,
          ns,
          [Deno.execPath(), "run", "-A", ECHO, "connect", host, String(port)],
          300,
          { stdin: true },
        );
        bg.push(s);
        return s;
      };
      const k = await knock(l, "client2");
      assert.equal(k.code, 0, k.stdout + k.stderr);
      const streams = {
        forward: connect("client", LAB.wan, 52203),
        knocked: connect("client2", LAB.wan, 52203),
        masquerade: connect("server", LAB.client, CLIENT_ECHO_PORT),
      };
      let total = 0;
      /** Sends a round on both connections, then (after `between`) waits for both echoes. */
      const round = async (between: () => Promise<void> = async () => {}) => {
        total += ROUND;
        for (const s of Object.values(streams)) await s.write(`${ROUND}\n`);
        await between();
        for (const [name, s] of Object.entries(streams)) await echoed(s, total, name);
      };

      await t.step("each connection carries a counter stream", async () => {
        for (const [name, s] of Object.entries(streams)) {
          assert.ok(await until(() => s.output().includes("connected"), 15000), name + s.errors());
        }
        await round();
      });

      await t.step("SIGTERM and start: the stop's snapshot restores every flow", async () => {
        await l.stopAppliance("SIGTERM");
        await round(() => l.startAppliance());
        assert.match(await readLog(l), /flow table restored: 3 flows .* a clean stop/);
        const file = await Deno.stat(`${l.stateDir}/knockgate.kv.flows`);
        assert.equal(file.mode! & 0o777, 0o600);
        await round();
      });

      await t.step("kill -9 and start: the last checkpoint restores every flow", async () => {
        // Past a checkpoint (every 5 s) of this run, with more data after it.
        const before = (await readLog(l)).split("flow table restored").length;
        await new Promise((r) => setTimeout(r, 6000));
        await round();
        await l.stopAppliance("SIGKILL");
        await round(() => l.startAppliance());
        const log = await readLog(l);
        assert.equal(log.split("flow table restored").length, before + 1);
        assert.match(
          log.slice(log.lastIndexOf("flow table restored")),
          /^flow table restored: 3 flows .* a checkpoint/,
        );
        await round();
      });

      await t.step(
        "kill -9 without a snapshot: loose pickup carries every connection",
        async () => {
          await l.stopAppliance("SIGKILL");
          await Deno.remove(`${l.stateDir}/knockgate.kv.flows`);
          await round(() => l.startAppliance());
          await round();
          const s = await status(l);
          assert.equal(s.stats.tcp_picked_up, 3, JSON.stringify(s.stats));
        },
      );
    } finally {
      for (const b of bg) await b.stop().catch(() => {});
      await lab?.down();
      await removeTestConfig(config);
    }
  },
});
