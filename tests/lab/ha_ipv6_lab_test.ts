/**
 * An HA pair fails IPv6 over too: the dual-stack pair (scripts/lab/ha_pair.ts
 * with `ipv6`), both appliances with IPv6 on and their store on one real etcd
 * member (relayed into each namespace, as the fleet tests do), a pinhole to
 * the LAN server's IPv6 echo port that enforces knocks.
 *
 * The client knocks over IPv6 at the master, A, and opens a counter stream
 * through the pinhole (every byte checked in order). A's appliance is killed
 * (-9) with a round in flight: its health check fails, keepalived gives every
 * virtual address up, and B takes the IPv4 and the IPv6 ones, usable at once
 * (added without duplicate address detection, never tentative) and announced
 * by unsolicited neighbour advertisements, so the server's and the client's
 * neighbour entries name B's interfaces. The same connection carries on
 * through B (loose pickup of IPv6 TCP), and a new connection from the client
 * is admitted by B, which never saw the knock: the unlock of the client's /64
 * reached it through etcd. B's management listener on the WAN IPv6 address,
 * bound before the address arrived (`net.ipv6.ip_nonlocal_bind`), answers the
 * unlocked client. A's appliance returns: A preempts and picks both
 * connections up (IPv6 flows are not in the flow snapshot). A carries 8 MB
 * each way, then its keepalived is stopped: B takes the connections back with
 * the entries it kept, 8 MB behind, loosened when it became backup (nothing
 * out of window). The failover times are printed, never asserted.
 */
import assert from "node:assert/strict";
import {
  HA,
  HA6,
  type HaNode,
  type HaPair,
  lastState,
  startHaPair,
} from "../../scripts/lab/ha_pair.ts";
import { EtcdCluster, etcdInstalled } from "../../src/store/_etcd_cluster.ts";
import { etcdLabConfig, EtcdRelays } from "./_etcd_relay.ts";
import {
  ALICE,
  type Background,
  echoed,
  knock,
  labCert,
  labSupported,
  readLog,
  removeTestConfig,
  ROOT,
  sh,
  spawnIn,
  status,
  statusSettled,
  statusWhen,
  until,
} from "./_helpers.ts";

const ECHO = `${ROOT}tests/lab/_echo_stream.ts`;
/** The server's echo port, open through the pinhole to the knock-unlocked. */
const ECHO_PORT = 7;
/** Counters each round sends (4 bytes each). */
const ROUND = 5000;
/** Counters of a round that moves every window far on: 8 MB each way. */
const BULK = 2_000_000;

function keepalivedPresent(): boolean {
  try {
    return Deno.statSync("/usr/sbin/keepalived").isFile;
  } catch {
    return false;
  }
}

/**
 * Node `listen`'s configuration: the lab's on etcd (`prefix`), the management
 * listener on the node's own LAN address, IPv6 on with the pair's virtual
 * IPv6 addresses, and a pinhole to the server's echo port.
 */
async function nodeConfig(endpoints: string[], prefix: string, listen: string): Promise<string> {
  const file = await etcdLabConfig(endpoints, prefix);
  let text = await Deno.readTextFile(file);
  const edit = (from: string, to: string) => {
    assert.ok(text.includes(from), `the default config changed: ${from}`);
    text = text.replace(from, to);
  };
  edit(`"listen": "192.0.2.1"`, `"listen": "${listen}"`);
  edit(
    `"addresses": ["198.51.100.1/24"] }]`,
    `"addresses": ["198.51.100.1/24"], "addresses6": ["${HA6.wanVip}/64"] }],
  "ipv6": { "enabled": true, "lan": { "address": "${HA6.lanVip}", "network": "${HA6.lanNetwork}" } }`,
  );
  edit(
    `"openPorts": []`,
    `"openPorts": [{ "name": "echo6", "privateAddress": "${HA6.server}", "enforceKnock": true,
    "ports": [{ "protocol": "tcp", "ports": "${ECHO_PORT}" }] }]`,
  );
  await Deno.writeTextFile(file, text);
  return file;
}

/** `dev`'s MAC address in `node`'s namespace. */
async function mac(node: HaNode, dev: string): Promise<string> {
  const out = await node.exec(node.id, ["ip", "-o", "link", "show", dev]);
  return out.match(/link\/ether ([0-9a-f:]+)/)![1];
}

/** The link-layer address namespace `ns` holds for neighbour `ip`, or null. */
async function neighbour(
  node: HaNode,
  ns: "client" | "server",
  ip: string,
): Promise<string | null> {
  const out = await node.exec(ns, ["ip", "-6", "neigh", "show", ip]);
  return out.match(/lladdr ([0-9a-f:]+)/)?.[1] ?? null;
}

/** The time of `node`'s first `state` report at or after `since` (ms), or null. */
async function stateAt(node: HaNode, state: string, since: number): Promise<number | null> {
  return (await node.states()).find((s) => s.state === state && s.at >= since)?.at ?? null;
}

Deno.test({
  name: "lab: an HA pair moves its IPv6 addresses; a knocked IPv6 connection survives a failover",
  ignore: !labSupported() || !keepalivedPresent() || !etcdInstalled(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const cluster = await EtcdCluster.start(1);
    let relays: EtcdRelays | null = null;
    let pair: HaPair | null = null;
    const configs: string[] = [];
    const bg: Background[] = [];
    try {
      relays = await EtcdRelays.start(cluster);
      const prefix = `/kgha6-${crypto.randomUUID().slice(0, 8)}/`;
      configs.push(await nodeConfig(cluster.endpoints, prefix, HA.lanA));
      configs.push(await nodeConfig(cluster.endpoints, prefix, HA.lanB));
      pair = await startHaPair({
        configs: { a: configs[0], b: configs[1] },
        ipv6: true,
        etcd: relays,
      });
      const { a, b } = pair;
      const spawn = (ns: "server" | "client", args: string[], stdin = false) => {
        const s = spawnIn(a, ns, [Deno.execPath(), "run", "-A", ECHO, ...args], 300, { stdin });
        bg.push(s);
        return s;
      };
      const server = spawn("server", ["serve", HA6.server, String(ECHO_PORT)]);
      assert.ok(await until(() => server.output().includes("listening"), 15000), server.errors());
      /** The client's connections through the pinhole and the counters each has sent. */
      const streams: { name: string; s: Background; total: number }[] = [];
      /** Connects one more stream from the client. */
      const connect = async (name: string) => {
        const s = spawn("client", ["connect", HA6.server, String(ECHO_PORT)], true);
        assert.ok(await until(() => s.output().includes("connected"), 15000), name + s.errors());
        streams.push({ name, s, total: 0 });
      };
      /** Sends `n` counters on every stream, then (after `between`) waits for every echo. */
      const round = async (between: () => Promise<void> = async () => {}, n = ROUND) => {
        for (const x of streams) {
          x.total += n;
          await x.s.write(`${n}\n`);
        }
        await between();
        for (const x of streams) await echoed(x.s, x.total, x.name);
      };
      /** Waits until `node` is master holding every address and the other node is backup. */
      const masterIs = async (node: HaNode, other: HaNode) =>
        assert.ok(
          await until(
            async () =>
              (await lastState(node)) === "MASTER" && await node.holdsVips() &&
              (await lastState(other)) === "BACKUP",
            30000,
          ),
          `${node.id} did not become master: ${JSON.stringify(await node.states())}`,
        );

      await t.step("A holds the IPv6 addresses; a knock over IPv6 opens the pinhole", async () => {
        assert.ok(await a.holdsVips());
        assert.equal(await b.holdsVips(), false);
        const r = await knock(a, "client", ["--family", "6"], ALICE, HA6.wanVip);
        assert.equal(r.code, 0, r.stderr);
        await connect("the first IPv6 stream");
        await round();
        const s = await statusWhen(a, (x) => x.stats.flows_created >= 1);
        assert.ok(s.stats.flows_created >= 1, JSON.stringify(s.stats));
        assert.equal((await status(b)).stats.flows_created ?? 0, 0);
      });

      await t.step(
        "A's appliance killed: B takes the IPv6 addresses and the connection",
        async () => {
          const t0 = Date.now();
          // The round is sent once A is dead: it waits in TCP's retransmissions for B.
          await a.stopAppliance("SIGKILL");
          await round();
          const echoedAt = Date.now();
          assert.ok(
            await until(
              async () => (await lastState(b)) === "MASTER" && await b.holdsVips(),
              20000,
            ),
            `B did not become master: ${JSON.stringify(await b.states())}`,
          );
          assert.equal(await lastState(a), "FAULT");
          assert.equal(await a.holdsVips(), false);
          const master = await stateAt(b, "MASTER", t0);
          console.log(
            `IPv6 failover: B MASTER after ${master! - t0} ms, ` +
              `the stream echoed after ${echoedAt - t0} ms (TCP retransmission backoff included)`,
          );
          // Usable at once: keepalived adds them nodad, so they never sit tentative.
          const v6 = await b.exec("b", ["ip", "-6", "-o", "addr", "show", "scope", "global"]);
          for (const vip of [HA6.wanVip, HA6.lanVip]) {
            const line = v6.split("\n").find((l) => l.includes(` ${vip}/64 `)) ?? "";
            assert.match(line, /nodad/, v6);
            assert.doesNotMatch(line, /tentative|dadfailed/, v6);
          }
          // The unsolicited neighbour advertisements moved both neighbours to B.
          assert.equal(await neighbour(b, "server", HA6.lanVip), await mac(b, "lan0"));
          assert.equal(await neighbour(b, "client", HA6.wanVip), await mac(b, "wan0"));
          const s = await statusWhen(b, (x) => x.stats.tcp_picked_up >= 1);
          assert.ok(s.stats.tcp_picked_up >= 1, JSON.stringify(s.stats));
          await round();
        },
      );

      await t.step(
        "a new connection from the client is admitted by B (the unlock crossed)",
        async () => {
          const before = await status(b);
          await connect("the second IPv6 stream");
          await round();
          const after = await statusWhen(
            b,
            (x) => x.stats.flows_created > before.stats.flows_created,
          );
          assert.ok(after.stats.flows_created > before.stats.flows_created, JSON.stringify(after));
          assert.equal(server.output().split("accepted ").length - 1, 2);
        },
      );

      await t.step("B's management port on the WAN IPv6 address answers the client", async () => {
        // Bound at B's start, before keepalived gave it the address: no tentative wait, no skip.
        // (Without net.ipv6.ip_nonlocal_bind: "is not usable yet", 10 s, then "not listening on".)
        const waits = (await readLog(b)).split("\n").filter((l) => l.startsWith("management: "));
        assert.deepEqual(waits, []);
        const r = await sh(b, "client", [
          "curl",
          "-sS",
          "-g",
          "-m",
          "5",
          "--cacert",
          labCert(b),
          "-o",
          "/dev/null",
          "-w",
          "%{http_code}",
          `https://[${HA6.wanVip}]:${HA.mgmtPort}/api/v1/health`,
        ], 10);
        assert.equal(r.stdout, "200", r.stderr);
      });

      await t.step(
        "A returns: it takes the addresses back and picks both connections up",
        async () => {
          const t0 = Date.now();
          await a.startAppliance();
          await round(() => masterIs(a, b));
          const master = await stateAt(a, "MASTER", t0);
          console.log(`IPv6 failback: A MASTER ${master! - t0} ms after its appliance was started`);
          // That round went through B; this one through A (the neighbour advertisements moved
          // the client and the server to A's interfaces).
          await round();
          assert.equal(await neighbour(a, "server", HA6.lanVip), await mac(a, "lan0"));
          assert.equal(await neighbour(a, "client", HA6.wanVip), await mac(a, "wan0"));
          // IPv6 flows are not in the flow snapshot: the new process picks them up again.
          const s = await statusWhen(a, (x) => x.stats.tcp_picked_up >= 2);
          assert.equal(s.stats.tcp_picked_up, 2, JSON.stringify(s.stats));
          // B left the master role through keepalived: its IPv6 entries were loosened then.
          assert.match(await readLog(b), /ha: keepalived reports BACKUP: 2 TCP flows loosened/);
        },
      );

      await t.step(
        "A carries 8 MB each way, then B takes its stale IPv6 entries back",
        async () => {
          await round(async () => {}, BULK);
          const before = await statusSettled(b);
          // Maintenance: A's keepalived gives the addresses up, its appliance runs on.
          await a.stopKeepalived("SIGTERM");
          await round(async () => {
            assert.ok(
              await until(
                async () => (await lastState(b)) === "MASTER" && await b.holdsVips(),
                10000,
              ),
              `B did not become master: ${JSON.stringify(await b.states())}`,
            );
          });
          await round();
          // B carried on with the entries it made, 8 MB behind: loose, nothing out of window,
          // nothing picked up anew.
          const s = await statusSettled(b);
          assert.equal(s.conntrack.outOfWindow, before.conntrack.outOfWindow, JSON.stringify(s));
          assert.equal(s.stats.tcp_picked_up, before.stats.tcp_picked_up, JSON.stringify(s.stats));
          assert.ok(s.stats.rx_packets > before.stats.rx_packets, "the rounds went through B");
          assert.match(await readLog(b), /ha: keepalived reports MASTER: 2 TCP flows loosened/);
        },
      );
    } finally {
      for (const s of bg) await s.stop().catch(() => {});
      await pair?.down();
      await relays?.close();
      await cluster.stop();
      for (const c of configs) await removeTestConfig(c);
    }
  },
});
