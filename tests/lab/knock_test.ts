/**
 * Lab test of the knock engine: a real kernel, a real TUN device, network
 * namespaces, the knock client and ordinary tools against the appliance
 * process. Two labs: the lab configuration (every forward enforces knocking,
 * no allow-list), and the same with a 10 s idle timeout and a syslog collector.
 */
import assert from "node:assert/strict";
import { type RunningLab, startLab } from "../../scripts/lab/appliance.ts";
import { LAB } from "../../scripts/lab/topology.ts";
import {
  ALICE,
  curl,
  dropDelta,
  hping,
  knock,
  labSupported,
  nmapStates,
  re,
  readLog,
  removeTestConfig,
  ROOT,
  sequenceAt,
  sh,
  shOk,
  spawnIn,
  status,
  statusSettled,
  until,
  waitForLog,
  writeTestConfig,
} from "./_helpers.ts";

const C = LAB.client, C2 = LAB.client2, W = LAB.wan;
const HELLO_C = `hello from ${LAB.server}:8080 to ${C}\n`;
/** A secret that is not alice's: knocking it on her first port is a wrong sequence. */
const WRONG_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

/** Netfilter's conntrack entries in the appliance's namespace (0 when conntrack is not loaded). */
async function kernelConntrackCount(lab: RunningLab): Promise<number> {
  const r = await sh(lab, "appliance", ["cat", "/proc/sys/net/netfilter/nf_conntrack_count"], 5);
  return r.code === 0 ? Number(r.stdout.trim()) : 0;
}

/** The TCP SYN destination ports, in order, in a pcap (repeats of one port collapsed). */
async function synPorts(lab: RunningLab, pcap: string): Promise<number[]> {
  const out = await shOk(lab, "inet", ["tcpdump", "-n", "-r", pcap], 10);
  const ports: number[] = [];
  for (const m of out.matchAll(/ > [\d.]+\.(\d+): Flags \[S\]/g)) {
    const p = Number(m[1]);
    if (ports[ports.length - 1] !== p) ports.push(p);
  }
  return ports;
}

Deno.test({
  name: "lab: knock engine (locked, TCP knock, replay, wrong sequence, SYN flood)",
  ignore: !labSupported(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    // The lab configuration as is, but for a private store path.
    const config = await writeTestConfig();
    const pcap = `${config.slice(0, config.lastIndexOf("/"))}/knocks.pcap`;
    let lab: RunningLab | null = null;
    try {
      lab = await startLab({ config });
      const l = lab;
      let captured: number[] = [];

      await t.step("before knocking the forward is filtered and closed", async () => {
        assert.deepEqual(await nmapStates(l, "client", [52201, 52215]), {
          52201: "filtered",
          52215: "filtered",
        });
        assert.equal(await curl(l, "client", `http://${W}:52201/`, 2), null);
        const s = await status(l);
        assert.ok((s.drops.locked ?? 0) > 0, JSON.stringify(s.drops));
        assert.equal(s.stats.flows_admitted_by_knock, 0);
      });

      await t.step("the knock client (TCP) unlocks the client", async () => {
        const dump = spawnIn(l, "inet", [
          "tcpdump",
          "-n",
          "-U",
          "--immediate-mode",
          "-c",
          "4", // the four knocks (F and three ports); it exits after them
          // The client's bridge port: frames bridged between ports do not show on br0 itself.
          "-i",
          `p${l.names.client.slice(2, 3)}`,
          "-w",
          pcap,
          `tcp and src host ${C} and dst host ${W}`,
        ], 60);
        assert.ok(await until(() => dump.errors().includes("listening on"), 5000), dump.errors());
        const r = await knock(l, "client", ["--transport", "tcp"]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        const line = await waitForLog(
          l,
          new RegExp(`\\[Port Knock\\] success user=alice ip=${re(C)} `),
        );
        assert.ok(line, await readLog(l));
        const dumped = await dump.finish(5000);
        captured = await synPorts(l, pcap);
        assert.ok(captured.length > 0, `tcpdump: ${dumped.stderr}`);
        // What went over the wire is alice's sequence for the step the appliance matched.
        const step = Number(/step=(\d+)/.exec(line!)![1]);
        assert.deepEqual(captured, await sequenceAt(step));
        assert.equal(await curl(l, "client", `http://${W}:52201/`), HELLO_C);
        assert.equal(
          await curl(l, "client", `http://${W}:52215/`),
          `hello from ${LAB.server}:8085 to ${C}\n`,
        );
        assert.deepEqual(await nmapStates(l, "client", [52201]), { 52201: "open" });
        assert.ok(
          await waitForLog(
            l,
            new RegExp(
              `\\[Port Unlock\\] P:6 ${re(C)}:\\d+->${re(W)}:52201 #${re(LAB.server)}:8080`,
            ),
          ),
        );
      });

      await t.step("client2 replaying the captured knocks stays locked", async () => {
        assert.equal(captured.length, 4, `captured ${captured}`);
        for (const port of captured) {
          assert.equal(await hping(l, "client2", ["-q", "-S", "-c", "1", "-p", String(port)]), 1);
        }
        const line = await waitForLog(
          l,
          new RegExp(`\\[Port Knock\\] replay user=alice ip=${re(C2)} step=\\d+ first-ip=${re(C)}`),
        );
        assert.ok(line, await readLog(l));
        assert.equal(await curl(l, "client2", `http://${W}:52201/`, 2), null);
        assert.doesNotMatch(await readLog(l), new RegExp(`success user=alice ip=${re(C2)}`));
        // The replay took nothing from the client that knocked.
        assert.equal(await curl(l, "client", `http://${W}:52201/`), HELLO_C);
      });

      await t.step(
        "a wrong sequence (another secret on alice's first port) does not unlock",
        async () => {
          const r = await knock(l, "client2", ["--transport", "tcp"], {
            secret: WRONG_SECRET,
            firstPort: ALICE.firstPort,
          });
          assert.equal(r.code, 0, r.stdout + r.stderr);
          // The wrong ports are strays a sequence tolerates (up to 8): it fails when its
          // 15 s window ends.
          const line = await waitForLog(
            l,
            new RegExp(`\\[Port Knock\\] failure ip=${re(C2)} user=alice`),
            25_000,
          );
          assert.ok(line, await readLog(l));
          assert.equal(await curl(l, "client2", `http://${W}:52201/`, 2), null);
          assert.doesNotMatch(await readLog(l), new RegExp(`success user=alice ip=${re(C2)}`));
        },
      );

      let kernelBefore = 0;
      await t.step("a SYN flood from the locked client2 creates no conntrack state", async () => {
        const before = await statusSettled(l);
        kernelBefore = await kernelConntrackCount(l);
        const sent = await hping(l, "client2", [
          "-q",
          "-S",
          "-p",
          "52201",
          "-i",
          "u100",
          "-c",
          "5000",
        ], 30);
        assert.equal(sent, 5000);
        const after = await statusSettled(l);
        assert.equal(after.conntrack.inserted, before.conntrack.inserted, "no flow was created");
        assert.ok(after.conntrack.size <= before.conntrack.size, JSON.stringify(after.conntrack));
        assert.equal(after.stats.flows_created, before.stats.flows_created);
        // Every SYN that reached the appliance was dropped as locked (the kernel may shed some).
        const locked = dropDelta(before, after, "locked");
        assert.ok(locked >= 1000 && locked <= 5000, `locked drops grew by ${locked}`);
        assert.equal(await curl(l, "client", `http://${W}:52201/`), HELLO_C);
      });

      await t.step("... nor any in the kernel of the appliance's namespace", async () => {
        // Netfilter conntrack in the appliance's namespace would hold an entry per flood SYN
        // (for 120 s); a fast flood then fills nf_conntrack_max and the kernel drops new flows.
        const grown = (await kernelConntrackCount(l)) - kernelBefore;
        assert.ok(grown < 100, `kernel conntrack entries grew by ${grown} during the flood`);
      });
    } finally {
      await lab?.down();
      await removeTestConfig(config);
    }
  },
});

Deno.test({
  name: "lab: knock engine (UDP knock, syslog, idle expiry keeps established flows)",
  ignore: !labSupported(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const config = await writeTestConfig({
      idleTimeoutSec: 10, // the schema's minimum
      syslog: [{ host: LAB.server, port: 5514, format: "rfc5424" }],
    });
    const collected = `${config.slice(0, config.lastIndexOf("/"))}/syslog.txt`;
    let lab: RunningLab | null = null;
    try {
      lab = await startLab({ config });
      const l = lab;
      const collector = spawnIn(l, "server", [
        Deno.execPath(),
        "run",
        "-A",
        `${ROOT}tests/lab/_syslog_collector.ts`,
        LAB.server,
        "5514",
        collected,
      ], 110);
      assert.ok(
        await until(() => collector.output().includes("listening"), 10000),
        collector.errors(),
      );
      const syslogText = () => Deno.readTextFile(collected).catch(() => "");

      await t.step("the knock client (UDP) unlocks the client", async () => {
        assert.equal(await curl(l, "client", `http://${W}:52201/`, 2), null);
        const r = await knock(l, "client", ["--transport", "udp"]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(r.stdout, /udp/);
        assert.ok(
          await waitForLog(l, new RegExp(`\\[Port Knock\\] success user=alice ip=${re(C)} `)),
          await readLog(l),
        );
        assert.equal(await curl(l, "client", `http://${W}:52201/`), HELLO_C);
      });

      await t.step(
        "the syslog collector receives the knock and the unlock (RFC 5424)",
        async () => {
          const success = new RegExp(`\\[Port Knock\\] success user=alice ip=${re(C)} `);
          const unlock = new RegExp(
            `\\[Port Unlock\\] P:6 ${re(C)}:\\d+->${re(W)}:52201 #${re(LAB.server)}:8080`,
          );
          assert.ok(
            await until(
              async () => success.test(await syslogText()) && unlock.test(await syslogText()),
              5000,
            ),
            await syslogText(),
          );
          for (
            const line of (await syslogText()).split("\n").filter((x) =>
              /Port (Knock|Unlock)/.test(x)
            )
          ) {
            // <PRI>1 TIMESTAMP HOSTNAME APP-NAME ...
            assert.match(
              line,
              /^<\d{1,3}>1 \d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d) \S+ knockgate /,
            );
          }
        },
      );

      await t.step("an established flow outlives the unlock; new flows are refused", async () => {
        const held = spawnIn(
          l,
          "client",
          [Deno.execPath(), "run", "-A", `${ROOT}tests/lab/_keepalive.ts`, W, "52201"],
          60,
          { stdin: true },
        );
        try {
          assert.ok(
            await until(() => held.output().includes("first "), 10000),
            held.output() + held.errors(),
          );
          assert.equal(held.output().trim(), `first ${HELLO_C.trim()}`);
          // The connection now stays idle past the 10 s idle timeout, and the unlock ends.
          const lock = await waitForLog(
            l,
            new RegExp(`\\[Port Lock\\] ip=${re(C)} user=alice reason=idle`),
            25000,
          );
          assert.ok(lock, await readLog(l));
          assert.equal(await curl(l, "client", `http://${W}:52201/`, 2), null);
          await held.write("go\n");
          const r = await held.finish(10000);
          assert.match(r.stdout, new RegExp(`second ${re(HELLO_C.trim())}`), r.stdout + r.stderr);
        } finally {
          await held.stop();
        }
        // Traffic on the old flow does not bring the unlock back.
        assert.equal(await curl(l, "client", `http://${W}:52201/`, 2), null);
      });

      await collector.stop();
    } finally {
      await lab?.down();
      await removeTestConfig(config);
    }
  },
});
