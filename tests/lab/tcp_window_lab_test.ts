/**
 * Lab test of TCP window tracking: a blind attacker on the WAN who knows an
 * established connection's 4-tuple (client address and port, WAN address and
 * forward port) but not its sequence numbers sends RSTs and SYNs on it from
 * the client's namespace (raw AF_PACKET frames, so the client's own TCP stack
 * never sees them). The appliance drops them as tcp-out-of-window, its flow
 * stays ESTABLISHED (a RST that had closed it would have black-holed the
 * connection 10 s later), and the connection keeps carrying requests.
 */
import assert from "node:assert/strict";
import { type RunningLab, startLab } from "../../scripts/lab/appliance.ts";
import { LAB } from "../../scripts/lab/topology.ts";
import { buildTcp, TCP_ACK, TCP_RST, TCP_SYN } from "../../src/packet/mod.ts";
import {
  dropDelta,
  labSupported,
  rawSend,
  removeTestConfig,
  ROOT,
  shOk,
  sleep,
  spawnIn,
  status,
  statusWhen,
  until,
  writeTestConfig,
} from "./_helpers.ts";

const C = LAB.client, W = LAB.wan;
const HELLO = `hello from ${LAB.server}:8080 to ${C}`;

/** The client's source port of its one established connection to W:52201. */
async function clientPort(lab: RunningLab): Promise<number> {
  const out = await shOk(lab, "client", [
    "ss",
    "-Htn",
    "state",
    "established",
    "( dport = :52201 )",
  ]);
  const ports = [...out.matchAll(/203\.0\.113\.\d+:(\d+)\s+198\.51\.100\.\d+:52201/g)];
  assert.equal(ports.length, 1, out);
  return Number(ports[0][1]);
}

/** A random 32-bit sequence number. */
function randomSeq(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0];
}

Deno.test({
  name: "lab: blind RSTs and SYNs on an established forward are dropped; the flow lives on",
  ignore: !labSupported(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    // The client is allow-listed: the forward opens without a knock.
    const config = await writeTestConfig({ allow: ["203.0.113.0/24"] });
    let lab: RunningLab | null = null;
    try {
      lab = await startLab({ config });
      const l = lab;
      const held = spawnIn(
        l,
        "client",
        [Deno.execPath(), "run", "-A", `${ROOT}tests/lab/_keepalive.ts`, W, "52201"],
        90,
        { stdin: true },
      );
      try {
        await t.step("a keep-alive connection through 52201 gets its first answer", async () => {
          assert.ok(
            await until(() => held.output().includes("first "), 15000),
            held.output() + held.errors(),
          );
          assert.equal(held.output().trim(), `first ${HELLO}`);
        });

        const sport = await clientPort(l);
        const spoof = (flags: number, seq: number, ack = 0) =>
          buildTcp({ src: C, dst: W, srcPort: sport, dstPort: 52201, flags, seq, ack });
        const rsts = Array.from({ length: 20 }, () => spoof(TCP_RST, randomSeq()));
        const rstAcks = Array.from(
          { length: 10 },
          () => spoof(TCP_RST | TCP_ACK, randomSeq(), randomSeq()),
        );
        const syns = Array.from({ length: 5 }, () => spoof(TCP_SYN, randomSeq()));
        const sent = rsts.length + rstAcks.length + syns.length;

        await t.step(`${sent} spoofed RST, RST|ACK and SYN segments are dropped`, async () => {
          const before = await status(l);
          await rawSend(l, "client", [...rsts, ...rstAcks, ...syns]);
          const after = await statusWhen(
            l,
            (s) => dropDelta(before, s, "tcp-out-of-window") >= sent - 1,
          );
          // A random sequence number lands in the ~100 kB window with odds near 1 in 40,000;
          // such a RST is passed on (the server answers it with a challenge ACK), never closes.
          const dropped = dropDelta(before, after, "tcp-out-of-window");
          assert.ok(dropped >= sent - 1 && dropped <= sent, JSON.stringify(after.drops));
          const ct = (k: string) => (after.conntrack[k] ?? 0) - (before.conntrack[k] ?? 0);
          assert.equal(ct("outOfWindow") + ct("challenged"), sent, JSON.stringify(after.conntrack));
          assert.equal(dropDelta(before, after, "invalid-tcp"), 0);
        });

        await t.step(
          "past the 10 s a closed flow would live, the connection still works",
          async () => {
            await sleep(12_000);
            await held.write("go\n");
            const r = await held.finish(15000);
            assert.match(
              r.stdout,
              new RegExp(`second ${HELLO.replaceAll(".", "\\.")}`),
              r.stdout + r.stderr,
            );
          },
        );
      } finally {
        await held.stop();
      }
    } finally {
      await lab?.down();
      await removeTestConfig(config);
    }
  },
});
