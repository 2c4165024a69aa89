/**
 * An HA pair fails over without losing a connection: appliances A and B
 * behind keepalived (scripts/lab/ha_pair.ts), A elected. A WAN client's
 * connection through a forward to a LAN echo server and the LAN server's
 * connection out through masquerade to an echo server on the client's side
 * each carry a counter stream (every byte checked in order). A's appliance is
 * killed (-9) with a round of counters in flight; A's keepalived sees its
 * health check fail and gives the addresses up, B takes them, and B picks
 * both connections up in mid stream (loose pickup: the forward's translation
 * follows from the rules, the masquerade keeps the LAN host's port). No byte
 * is lost, neither connection is reset. Then A returns and takes the
 * addresses back (preemption; its checkpoint restores the flows), fails the
 * same way again (B still holds the flows it picked up), returns, and powers
 * off whole (keepalived killed too, links down): B takes over once A's
 * adverts stop. The failover times are printed, never asserted.
 *
 * Until unlocks are shared between the nodes, the client is allow-listed: a
 * knock-unlocked source's flow would be refused by B, which never saw the
 * knock.
 */
import assert from "node:assert/strict";
import { HA, type HaNode, type HaPair, lastState, startHaPair } from "../../scripts/lab/ha_pair.ts";
import {
  type Background,
  echoed,
  labSupported,
  readLog,
  removeTestConfig,
  ROOT,
  spawnIn,
  status,
  statusSettled,
  statusWhen,
  until,
  writeTestConfig,
} from "./_helpers.ts";

const ECHO = `${ROOT}tests/lab/_echo_stream.ts`;
/** The client's echo server, reached from the LAN through masquerade. */
const CLIENT_ECHO_PORT = 7007;
/** The forward to the server's echo port (the "udp-echo" forward, made "both"). */
const FORWARD_PORT = 52203;
/** Counters each round sends (4 bytes each). */
const ROUND = 5000;

function keepalivedPresent(): boolean {
  try {
    return Deno.statSync("/usr/sbin/keepalived").isFile;
  } catch {
    return false;
  }
}

/**
 * Node `listen`'s configuration: config/appliance.jsonc (its WAN and LAN
 * addresses are the pair's virtual ones) with the management listener on the
 * node's own LAN address, the client allow-listed, and "udp-echo" on TCP too.
 */
async function nodeConfig(listen: string): Promise<string> {
  const file = await writeTestConfig({ allow: [`${HA.client}/32`] });
  const text = await Deno.readTextFile(file);
  const edited = text
    .replace(/("name": "udp-echo",\s*"enabled": true,\s*"protocol": )"udp"/, '$1"both"')
    .replace(/"listen": "192\.0\.2\.1"/, `"listen": "${listen}"`);
  assert.equal(edited.includes('"protocol": "both",\n      "publicPorts": "52203"'), true);
  assert.equal(edited.includes(`"listen": "${listen}"`), true);
  await Deno.writeTextFile(file, edited);
  return file;
}

/** The time of `node`'s first `state` report at or after `since` (ms), or null. */
async function stateAt(node: HaNode, state: string, since: number): Promise<number | null> {
  return (await node.states()).find((s) => s.state === state && s.at >= since)?.at ?? null;
}

Deno.test({
  name: "lab: an HA pair fails over and back with no byte lost through a forward and masquerade",
  ignore: !labSupported() || !keepalivedPresent(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const configs = { a: await nodeConfig(HA.lanA), b: await nodeConfig(HA.lanB) };
    let pair: HaPair | null = null;
    const bg: Background[] = [];
    try {
      pair = await startHaPair({ configs });
      const { a, b } = pair;
      const spawn = (ns: "server" | "client", args: string[], stdin = false) => {
        const s = spawnIn(a, ns, [Deno.execPath(), "run", "-A", ECHO, ...args], 300, { stdin });
        bg.push(s);
        return s;
      };
      const servers = [
        spawn("server", ["serve", HA.server, "7"]),
        spawn("client", ["serve", HA.client, String(CLIENT_ECHO_PORT)]),
      ];
      for (const s of servers) {
        assert.ok(await until(() => s.output().includes("listening"), 15000), s.errors());
      }
      const streams = {
        forward: spawn("client", ["connect", HA.wanVip, String(FORWARD_PORT)], true),
        masquerade: spawn("server", ["connect", HA.client, String(CLIENT_ECHO_PORT)], true),
      };
      let total = 0;
      /** Sends a round on both connections, then (after `between`) waits for both echoes. */
      const round = async (between: () => Promise<void> = async () => {}) => {
        total += ROUND;
        for (const s of Object.values(streams)) await s.write(`${ROUND}\n`);
        await between();
        for (const [name, s] of Object.entries(streams)) await echoed(s, total, name);
      };

      await t.step("A is master and carries both connections", async () => {
        for (const [name, s] of Object.entries(streams)) {
          assert.ok(await until(() => s.output().includes("connected"), 15000), name + s.errors());
        }
        await round();
        assert.equal(await b.holdsVips(), false);
        const sa = await statusWhen(a, (x) => x.stats.flows_created >= 2), sb = await status(b);
        assert.ok(sa.stats.flows_created >= 2, JSON.stringify(sa.stats));
        assert.equal(sb.stats.flows_created ?? 0, 0, JSON.stringify(sb.stats));
      });

      await t.step("A's appliance killed: B takes the addresses and both connections", async () => {
        const t0 = Date.now();
        // The round is sent once A is dead: it waits in TCP's retransmissions for B.
        await a.stopAppliance("SIGKILL");
        await round();
        const echoedAt = Date.now();
        assert.ok(
          await until(async () => (await lastState(b)) === "MASTER" && await b.holdsVips(), 20000),
          `B did not become master: ${JSON.stringify(await b.states())}`,
        );
        assert.equal(await lastState(a), "FAULT");
        assert.equal(await a.holdsVips(), false);
        const fault = await stateAt(a, "FAULT", t0), master = await stateAt(b, "MASTER", t0);
        console.log(
          `failover: A FAULT after ${fault! - t0} ms, B MASTER after ${master! - t0} ms, ` +
            `both streams echoed after ${echoedAt - t0} ms (TCP retransmission backoff included)`,
        );
        // The data plane copies its counters out on a tick: poll until both pickups show.
        const s = await statusWhen(b, (x) => x.stats.tcp_picked_up >= 2);
        assert.equal(s.stats.tcp_picked_up, 2, JSON.stringify(s));
        await round();
      });

      await t.step(
        "A returns: it takes the addresses back and the connections with them",
        async () => {
          const t0 = Date.now();
          await a.startAppliance();
          assert.ok(
            await until(
              async () => (await lastState(a)) === "MASTER" && await a.holdsVips(),
              30000,
            ),
            `A did not become master again: ${JSON.stringify(await a.states())}`,
          );
          assert.equal(await lastState(b), "BACKUP");
          const master = await stateAt(a, "MASTER", t0);
          console.log(`failback: A MASTER ${master! - t0} ms after its appliance was started`);
          await round();
          // A's killed process left a checkpoint: it restores both flows (their windows loosened,
          // as stale), or would pick them up in mid stream without one.
          const s = await statusSettled(a);
          const log = await readLog(a);
          // The second run's lines follow the first run's "appliance ready".
          const second = log.slice(log.indexOf("appliance ready"));
          const restored = Number(second.match(/flow table restored: (\d+) flows/)?.[1] ?? 0);
          assert.ok(restored + s.stats.tcp_picked_up >= 2, `${JSON.stringify(s.stats)}\n${log}`);
        },
      );

      await t.step("A killed again: B's entries from the first failover are stale", async () => {
        const before = await statusSettled(b);
        const t0 = Date.now();
        await a.stopAppliance("SIGKILL");
        await round();
        console.log(`second failover: both streams echoed after ${Date.now() - t0} ms`);
        // B kept the flows it picked up (liberal for life): they carry on, no new pickup.
        const s = await statusSettled(b);
        assert.equal(s.stats.tcp_picked_up, before.stats.tcp_picked_up, JSON.stringify(s));
        assert.equal(s.conntrack.outOfWindow, 0, JSON.stringify(s.conntrack));
        await round();
      });

      await t.step("A returns, then powers off: B takes over when A's adverts stop", async () => {
        await a.startAppliance();
        assert.ok(
          await until(async () => (await lastState(a)) === "MASTER" && await a.holdsVips(), 30000),
          `A did not become master again: ${JSON.stringify(await a.states())}`,
        );
        assert.ok(await until(async () => (await lastState(b)) === "BACKUP", 10000));
        await round();
        const t0 = Date.now();
        // A node that dies whole: its links go first, the adverts' one first, so keepalived
        // (which goes to FAULT when a link it tracks goes down, and whose VRRP child a SIGKILL
        // of its parent stops with SIGTERM) cannot send its priority-0 advert.
        for (const dev of ["lan0", "wan0"]) await a.exec("a", ["ip", "link", "set", dev, "down"]);
        await a.stopKeepalived("SIGKILL");
        await a.stopAppliance("SIGKILL");
        await round();
        const echoedAt = Date.now();
        assert.equal(await lastState(b), "MASTER");
        assert.ok(await b.holdsVips());
        const master = await stateAt(b, "MASTER", t0);
        console.log(
          `power-off failover: B MASTER after ${master! - t0} ms (three adverts missed), ` +
            `both streams echoed after ${echoedAt - t0} ms`,
        );
        await round();
      });
    } finally {
      for (const s of bg) await s.stop().catch(() => {});
      await pair?.down();
      await removeTestConfig(configs.a);
      await removeTestConfig(configs.b);
    }
  },
});
