/**
 * An HA pair fails over and back without losing a connection: appliances A
 * and B behind keepalived (scripts/lab/ha_pair.ts), A elected. A WAN client's
 * connection through a forward to a LAN echo server and two of the LAN
 * server's connections out through masquerade to an echo server on the
 * client's side (one from an ephemeral port, kept; one from port 62000,
 * outside the masquerade range, so remapped to the keyed port) each carry a
 * counter stream (every byte checked in order).
 *
 * A's keepalived is stopped (maintenance): B takes the addresses and picks
 * the connections up in mid stream (loose pickup: the forward's translation
 * follows from the rules, a masquerade port from the LAN host's own port or
 * the port key both nodes derive from their one secret key), carries 20 MB
 * each way, and A's keepalived returns: A takes the connections back with
 * the entries it made from their SYNs, 20 MB behind, which its appliance
 * loosened when keepalived told it of the transition (nothing out of
 * window). Then A's appliance is killed (-9) with a round in flight: its
 * health check fails, B takes over again with the flows it holds. A returns
 * (preemption; its checkpoint restores the flows) and powers off whole
 * (keepalived killed too, links down): B takes over once A's adverts stop.
 * Throughout, no byte is lost, no connection is reset, and the client's echo
 * server sees each masqueraded connection from the public port it accepted it
 * from. A masqueraded UDP flow (a datagram every 20 ms from port 62001)
 * keeps its public port across every move too (each node makes it a new flow
 * with the keyed port); the datagrams lost in each move are printed. The
 * failover times are printed, never asserted.
 *
 * The client is allow-listed: with separate stores a knock-unlocked source's
 * flow would be refused by B, which never saw the knock (an etcd store
 * shares the unlocks; tests/lab/fleet_etcd_lab_test.ts).
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
const UDP_LISTEN = `${ROOT}tests/lab/_udp_listen.ts`;
const UDP_PINGER = `${ROOT}tests/lab/_udp_pinger.ts`;
/** The client's UDP echo port, and the LAN server's source port toward it (keyed: outside the range). */
const UDP_ECHO_PORT = 7008, UDP_LOCAL_PORT = 62001;
/** Milliseconds between the UDP flow's datagrams. */
const UDP_INTERVAL = 20;
/** Echoes that make a run of losses before them settled (the pinger reports runs older than 1 s). */
const UDP_SETTLED = 1500 / UDP_INTERVAL;
/** The client's echo server, reached from the LAN through masquerade. */
const CLIENT_ECHO_PORT = 7007;
/** The forward to the server's echo port (the "udp-echo" forward, made "both"). */
const FORWARD_PORT = 52203;
/** Counters each round sends (4 bytes each). */
const ROUND = 5000;
/** Counters of a round that moves every window far on: 20 MB each way. */
const BULK = 5_000_000;
/** The LAN server's fixed source port for the keyed masquerade stream (outside 32768-60999). */
const KEYED_LOCAL_PORT = 62000;

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

/** The WAN side's peer ports of the connections established to the client's echo server. */
async function peerPorts(node: HaNode): Promise<number[]> {
  const out = await node.exec("client", ["ss", "-Htn", "state", "established"]);
  return out.split("\n")
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 4 && f[2] === `${HA.client}:${CLIENT_ECHO_PORT}`)
    .map((f) => Number(f[3].split(":")[1]))
    .sort((x, y) => x - y);
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
      const spawn = (ns: "server" | "client", args: string[], stdin = false, tool = ECHO) => {
        const s = spawnIn(a, ns, [Deno.execPath(), "run", "-A", tool, ...args], 400, { stdin });
        bg.push(s);
        return s;
      };
      const udpEcho = spawn("client", [String(UDP_ECHO_PORT)], false, UDP_LISTEN);
      const servers = {
        forward: spawn("server", ["serve", HA.server, "7"]),
        masquerade: spawn("client", ["serve", HA.client, String(CLIENT_ECHO_PORT)]),
      };
      for (const s of [...Object.values(servers), udpEcho]) {
        assert.ok(await until(() => s.output().includes("listening"), 15000), s.errors());
      }
      const udp = spawn(
        "server",
        [HA.client, String(UDP_ECHO_PORT), String(UDP_LOCAL_PORT), String(UDP_INTERVAL)],
        true,
        UDP_PINGER,
      );
      assert.ok(await until(() => udp.output().includes("started"), 15000), udp.errors());
      let udpEchoed = 0, udpGaps = 0;
      /** The UDP flow's counts so far. */
      const udpReport = async () => {
        const before = udp.output().split("report ").length;
        await udp.write("report\n");
        assert.ok(await until(() => udp.output().split("report ").length > before, 5000));
        const last = udp.output().split("report ").at(-1)!.split("\n")[0];
        return JSON.parse(last) as {
          sent: number;
          echoed: number;
          gaps: [number, number, number][];
        };
      };
      const masq = ["connect", HA.client, String(CLIENT_ECHO_PORT)];
      const streams = {
        forward: spawn("client", ["connect", HA.wanVip, String(FORWARD_PORT)], true),
        masquerade: spawn("server", masq, true),
        keyed: spawn("server", [...masq, String(KEYED_LOCAL_PORT)], true),
      };
      let total = 0;
      /** Sends `n` counters on every connection, then (after `between`) waits for every echo. */
      const round = async (between: () => Promise<void> = async () => {}, n = ROUND) => {
        total += n;
        for (const s of Object.values(streams)) await s.write(`${n}\n`);
        await between();
        for (const [name, s] of Object.entries(streams)) await echoed(s, total, name);
      };
      /** The public ports the client's echo server accepted the masquerade connections from. */
      let accepted: number[] = [];
      /** Both masqueraded connections are still the ones accepted, from the same public ports. */
      const samePorts = async (when: string) => {
        assert.deepEqual(await peerPorts(a), accepted, when);
        assert.equal(servers.masquerade.output().split("accepted ").length - 1, 2, when);
        // The UDP flow is echoed again, and has only ever come from one public port.
        const before = udpEchoed;
        let r = await udpReport();
        assert.ok(
          await until(
            async () => (udpEchoed = (r = await udpReport()).echoed) > before + UDP_SETTLED,
            10000,
          ),
          `${when}: UDP not echoed again (${udpEchoed})`,
        );
        const lost = r.gaps.slice(udpGaps);
        udpGaps = r.gaps.length;
        if (lost.length > 0) {
          console.log(
            `${when}: UDP lost ${lost.map(([, n, ms]) => `${n} datagrams (${ms} ms)`).join(", ")}`,
          );
        }
        const ports = new Set(
          [...udpEcho.output().matchAll(/got \d+ ([\d.]+:\d+)/g)].map((m) => m[1]),
        );
        assert.equal(ports.size, 1, `${when}: UDP from ${[...ports]}`);
        assert.ok(![...ports][0].endsWith(`:${UDP_LOCAL_PORT}`), "62001 is outside the range");
      };

      await t.step("A is master and carries the three connections", async () => {
        for (const [name, s] of Object.entries(streams)) {
          assert.ok(await until(() => s.output().includes("connected"), 15000), name + s.errors());
        }
        await round();
        assert.equal(await b.holdsVips(), false);
        const sa = await statusWhen(a, (x) => x.stats.flows_created >= 3), sb = await status(b);
        assert.ok(sa.stats.flows_created >= 3, JSON.stringify(sa.stats));
        assert.equal(sb.stats.flows_created ?? 0, 0, JSON.stringify(sb.stats));
        accepted = [...servers.masquerade.output().matchAll(/accepted [\d.]+:(\d+)/g)]
          .map((m) => Number(m[1])).sort((x, y) => x - y);
        const own = Number(streams.masquerade.output().match(/connected (\d+)/)![1]);
        // The ephemeral port is kept; 62000 is outside the range, so it left by the keyed port.
        assert.ok(accepted.includes(own), `${own} kept: ${accepted}`);
        assert.ok(!accepted.includes(KEYED_LOCAL_PORT), `62000 remapped: ${accepted}`);
        assert.equal(accepted.length, 2);
        await samePorts("on A");
      });

      await t.step(
        "A's keepalived stopped, B carries 20 MB each way, A takes its stale flows back",
        async () => {
          const before = await statusSettled(a);
          let t0 = Date.now();
          // Maintenance: keepalived gives the addresses up (a priority-0 advert), the appliance runs.
          await a.stopKeepalived("SIGTERM");
          await round();
          assert.ok(await until(async () => (await lastState(b)) === "MASTER", 10000));
          console.log(`A's keepalived stopped: all streams echoed after ${Date.now() - t0} ms`);
          // B picks the connections up in mid stream (loose pickup), keyed port included.
          const picked = await statusWhen(b, (x) => x.stats.tcp_picked_up >= 3);
          assert.equal(picked.stats.tcp_picked_up, 3, JSON.stringify(picked.stats));
          await samePorts("through B");
          await round(async () => {}, BULK);
          const sb = await statusSettled(b);
          t0 = Date.now();
          await a.startKeepalived();
          // A's windows are 20 MB behind; keepalived tells its appliance each transition.
          await round(async () => {
            assert.ok(
              await until(
                async () => (await lastState(a)) === "MASTER" && await a.holdsVips(),
                30000,
              ),
              `A did not become master again: ${JSON.stringify(await a.states())}`,
            );
          });
          const master = await stateAt(a, "MASTER", t0);
          console.log(
            `failback with stale entries: A MASTER after ${master! - t0} ms, ` +
              `all streams echoed after ${Date.now() - t0} ms`,
          );
          await round();
          const s = await statusSettled(a);
          const log = await readLog(a);
          assert.match(log, /ha: keepalived reports MASTER: [1-9]\d* TCP flows loosened/);
          const ha = log.split("\n").filter((l) => l.startsWith("ha: "));
          console.log(`A's appliance: ${ha.join("; ")}`);
          // A carried on with the entries it made from the SYNs, 20 MB behind: loosened by
          // keepalived's notification, nothing out of window, nothing picked up anew.
          assert.equal(s.conntrack.outOfWindow, before.conntrack.outOfWindow, JSON.stringify(s));
          assert.equal(s.stats.tcp_picked_up, before.stats.tcp_picked_up, JSON.stringify(s));
          assert.equal(sb.conntrack.outOfWindow, 0, JSON.stringify(sb.conntrack));
          await samePorts("back on A after B's 20 MB");
        },
      );

      await t.step("A's appliance killed: B takes the addresses and the connections", async () => {
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
            `all streams echoed after ${echoedAt - t0} ms (TCP retransmission backoff included)`,
        );
        // B still holds the flows it picked up before (liberal for life, and loosened again by
        // keepalived's notification): they carry on, nothing picked up anew, nothing out of window.
        const s = await statusSettled(b);
        assert.equal(s.stats.tcp_picked_up, 3, JSON.stringify(s.stats));
        assert.equal(s.conntrack.outOfWindow, 0, JSON.stringify(s.conntrack));
        await round();
        await samePorts("through B again");
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
          // A's killed process left a checkpoint: it restores the flows (their windows loosened,
          // as stale), or would pick them up in mid stream without one.
          const s = await statusSettled(a);
          const log = await readLog(a);
          // The second run's lines follow the first run's "appliance ready".
          const second = log.slice(log.indexOf("appliance ready"));
          const restored = Number(second.match(/flow table restored: (\d+) flows/)?.[1] ?? 0);
          assert.ok(restored + s.stats.tcp_picked_up >= 3, `${JSON.stringify(s.stats)}\n${log}`);
          await samePorts("back on A");
        },
      );

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
            `all streams echoed after ${echoedAt - t0} ms`,
        );
        await round();
        await samePorts("through B at the end");
        const r = await udpReport();
        console.log(`UDP, a datagram every ${UDP_INTERVAL} ms: ${r.sent} sent, ${r.echoed} echoed`);
      });
    } finally {
      for (const s of bg) await s.stop().catch(() => {});
      await pair?.down();
      await removeTestConfig(configs.a);
      await removeTestConfig(configs.b);
    }
  },
});
