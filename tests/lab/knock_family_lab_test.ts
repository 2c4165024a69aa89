/**
 * Lab test of the knock client's address families (no appliance: it does not
 * watch IPv6 knocks yet, so the test checks what arrives on the wire). Two
 * namespaces joined by a veth pair, each dual-stack (203.0.113.0/24 and
 * 2001:db8:1::/64); the client's /etc/hosts (`ip netns exec` mounts
 * /etc/netns/NS/hosts over it) gives a dual-stack name and one name per
 * family. The listener side drops every TCP and UDP packet, as Knockgate
 * never answers a knock, and a capture there records what came: one SYN (or
 * datagram) per port, in sequence order, at least 20 ms apart, from one source
 * address per family; `both` knocks IPv4 first, then IPv6; `auto` follows the
 * resolver's first address (getaddrinfo, as `getent ahosts` shows it).
 */
import assert from "node:assert/strict";
import { labDown, nsRun, runSuffix } from "../../scripts/lab/topology.ts";
import { knockSequenceAt } from "../../src/knock/sequence.ts";
import { chromiumAvailable } from "../browser/_browser.ts";
import { ALICE, labSupported, ROOT, until } from "./_helpers.ts";
import type { DriverOutput } from "./_knock_page_driver.ts";
import { firefoxAvailable, type FirefoxOutput } from "./_knock_page_firefox.ts";

const C4 = "203.0.113.10", L4 = "203.0.113.1";
const C6 = "2001:db8:1::10", L6 = "2001:db8:1::1";
/** Knocks at a fixed time, so the expected sequence is known. */
const TIME = 1_764_028_800;
const DUAL = "dual.knock.test", V4 = "v4.knock.test", V6 = "v6.knock.test";

/** One knock as the capture saw it. */
interface Seen {
  /** Capture time, seconds. */
  at: number;
  family: 4 | 6;
  src: string;
  port: number;
  kind: "syn" | "udp" | "other";
}

/** Parses `tcpdump -n -tt -r` lines: `1764.1 IP6 2001:db8:1::10.4711 > 2001:db8:1::1.41001: Flags [S], ...`. */
function parseCapture(text: string): Seen[] {
  const seen: Seen[] = [];
  const line = /^(\d+\.\d+) (IP6?) (\S+)\.(\d+) > (\S+)\.(\d+): (Flags \[([^\]]*)\]|UDP)/;
  for (const l of text.split("\n")) {
    const m = line.exec(l);
    if (m === null) continue;
    const kind = m[7] === "UDP" ? "udp" : m[8] === "S" ? "syn" : "other";
    seen.push({
      at: Number(m[1]),
      family: m[2] === "IP6" ? 6 : 4,
      src: m[3],
      port: Number(m[6]),
      kind,
    });
  }
  return seen;
}

async function ipNetnsExec(ns: string, argv: string[], timeoutSec = 30) {
  const out = await new Deno.Command("ip", {
    args: ["netns", "exec", ns, "timeout", "-k", "2", String(timeoutSec), ...argv],
    env: { DENO_NO_UPDATE_CHECK: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test({
  name: "lab: the knock client knocks over IPv6, over both families, and as the resolver orders",
  ignore: !labSupported(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const suffix = runSuffix();
    const ns = { client: `kgfc-${suffix}`, listener: `kgfl-${suffix}` };
    const etc = `/etc/netns/${ns.client}`;
    const pcapDir = await Deno.makeTempDir({ prefix: "knockgate-family-" });
    try {
      for (const n of Object.values(ns)) await run(["ip", "netns", "add", n]);
      await run([
        "ip",
        "-n",
        ns.client,
        "link",
        "add",
        "v0",
        "type",
        "veth",
        "peer",
        "name",
        "v1",
        "netns",
        ns.listener,
      ]);
      for (const [n, dev, a4, a6] of [[ns.client, "v0", C4, C6], [ns.listener, "v1", L4, L6]]) {
        await nsRun(n, ["ip", "addr", "add", `${a4}/24`, "dev", dev]);
        await nsRun(n, ["ip", "-6", "addr", "add", `${a6}/64`, "dev", dev, "nodad"]);
        await nsRun(n, ["ip", "link", "set", dev, "up"]);
        await nsRun(n, ["ip", "link", "set", "lo", "up"]);
      }
      // Silent like the appliance: no SYN-ACK, no RST, no ICMP port unreachable.
      await run(["ip", "netns", "exec", ns.listener, "nft", "add", "table", "inet", "k"]);
      await run([
        "ip",
        "netns",
        "exec",
        ns.listener,
        "nft",
        "add chain inet k in { type filter hook input priority 0; policy accept; }",
      ]);
      await run([
        "ip",
        "netns",
        "exec",
        ns.listener,
        "nft",
        "add rule inet k in meta l4proto { tcp, udp } drop",
      ]);
      await Deno.mkdir(etc, { recursive: true });
      await Deno.writeTextFile(
        `${etc}/hosts`,
        `127.0.0.1 localhost\n${L4} ${DUAL} ${V4}\n${L6} ${DUAL} ${V6}\n`,
      );
      assert.ok(
        await until(
          async () =>
            (await ipNetnsExec(ns.client, ["ping", "-6", "-n", "-c", "1", "-W", "1", L6], 5))
              .code === 0,
          10_000,
          200,
        ),
        `${L6} does not answer ping`,
      );

      const ports = await knockSequenceAt(ALICE.secret, TIME, ALICE.firstPort, 3);
      /** Runs the client in the client namespace with a capture on the listener's side. */
      /** Runs `argv` in the client namespace with a capture on the listener's side. */
      const captured = async (argv: string[], timeoutSec = 30) => {
        const pcap = `${pcapDir}/${crypto.randomUUID()}.pcap`;
        const dump = new Deno.Command("ip", {
          args: ["netns", "exec", ns.listener, "timeout", "150", "tcpdump", "-n", "-U"]
            .concat(["-i", "v1", "-w", pcap, "tcp or udp"]),
          stdout: "null",
          stderr: "piped",
        }).spawn();
        let heard = "";
        const drained = (async () => {
          for await (const t of dump.stderr.pipeThrough(new TextDecoderStream())) heard += t;
        })();
        assert.ok(await until(() => heard.includes("listening on"), 10_000, 50), heard);
        const k = await ipNetnsExec(ns.client, argv, timeoutSec);
        // Past the first SYN retransmission time (1 s): an attempt left running would show.
        await new Promise((r) => setTimeout(r, 1300));
        dump.kill("SIGINT");
        await dump.status;
        await drained;
        const read = await run(["tcpdump", "-n", "-tt", "-r", pcap]);
        return { ...k, seen: parseCapture(read.stdout) };
      };
      /** Runs the knock client at `TIME` with alice's secret and `args`, captured. */
      const knockCaptured = (args: string[]) =>
        captured([
          ...[Deno.execPath(), "run", "-A", `${ROOT}src/cli/knock.ts`],
          ...["--first-port", String(ALICE.firstPort), "--secret", ALICE.secret],
          ...["--time", String(TIME), ...args],
        ]);
      /** Runs the web knock page in Chromium (tests/lab/_knock_page_driver.ts) on `server`. */
      const pageCaptured = async (server: string) => {
        const r = await captured([
          ...[Deno.execPath(), "run", "-A", `${ROOT}tests/lab/_knock_page_driver.ts`],
          ...["--server", server, "--first-port", String(ALICE.firstPort)],
          ...["--secret", ALICE.secret],
        ], 120);
        assert.equal(r.code, 0, `driver failed:\n${r.stdout}\n${r.stderr}`);
        const out = JSON.parse(r.stdout.trim().split("\n").at(-1) ?? "") as DriverOutput;
        return { round: out.rounds[0], seen: r.seen };
      };
      const paced = (seen: Seen[]) => {
        for (let i = 1; i < seen.length; i++) {
          const gapMs = (seen[i].at - seen[i - 1].at) * 1000;
          assert.ok(gapMs >= 20, `knocks ${i} and ${i + 1} only ${gapMs.toFixed(1)} ms apart`);
        }
      };

      await t.step(
        "an IPv6 literal, bracketed: one SYN per port over IPv6, in order, paced",
        async () => {
          const r = await knockCaptured(["--host", `[${L6}]`]);
          assert.equal(r.code, 0, r.stderr);
          assert.deepEqual(
            r.seen.map((s) => [s.family, s.src, s.port, s.kind]),
            ports.map((p) => [6, C6, p, "syn"]),
            r.stdout,
          );
          paced(r.seen);
          assert.deepEqual(
            r.stdout.trim().split("\n"),
            ports.map((p, i) => `knock ${i + 1}/4 tcp [${L6}]:${p} IPv6`),
          );
        },
      );

      await t.step(
        "both over a dual-stack name: the sequence over IPv4, then over IPv6",
        async () => {
          for (const transport of ["tcp", "udp"]) {
            const r = await knockCaptured([
              "--host",
              DUAL,
              "--family",
              "both",
              "--transport",
              transport,
            ]);
            assert.equal(r.code, 0, r.stderr);
            const kind = transport === "tcp" ? "syn" : "udp";
            assert.deepEqual(
              r.seen.map((s) => [s.family, s.src, s.port, s.kind]),
              [...ports.map((p) => [4, C4, p, kind]), ...ports.map((p) => [6, C6, p, kind])],
              `${transport}: ${r.stdout}`,
            );
            paced(r.seen.slice(0, 4));
            paced(r.seen.slice(4));
            const lines = r.stdout.trim().split("\n");
            assert.equal(lines[0], `${DUAL}: knocking over IPv4 ${L4}, IPv6 ${L6}`);
            assert.equal(lines[5], "sent 4 knocks over IPv4");
            assert.equal(lines[6], `knock 1/4 ${transport} [${L6}]:${ports[0]} IPv6`);
            assert.equal(lines[10], "sent 4 knocks over IPv6");
          }
        },
      );

      await t.step(
        "auto follows the resolver's first address; 4 and 6 pick the family; a name defaults to 4",
        async () => {
          const ahosts = await ipNetnsExec(ns.client, ["getent", "ahosts", DUAL], 5);
          const first = ahosts.stdout.trim().split(/\s+/)[0];
          assert.ok(first === L4 || first === L6, ahosts.stdout);
          const auto = await knockCaptured([
            "--host",
            DUAL,
            "--family",
            "auto",
            "--transport",
            "udp",
          ]);
          assert.equal(auto.code, 0, auto.stderr);
          const fam = first === L6 ? 6 : 4;
          assert.deepEqual(auto.seen.map((s) => [s.family, s.port]), ports.map((p) => [fam, p]));
          assert.match(auto.stdout, new RegExp(`^${DUAL}: knocking over IPv${fam} ${first}\n`));
          console.log(`getaddrinfo orders ${DUAL} ${first} first: auto knocked over IPv${fam}`);
          // No --family: a name is knocked over IPv4 while the appliance watches IPv4 only.
          for (const [family, addr] of [["", L4], ["4", L4], ["6", L6]] as const) {
            const pick = family === "" ? [] : ["--family", family];
            const r = await knockCaptured(["--host", DUAL, ...pick, "--transport", "udp"]);
            assert.equal(r.code, 0, r.stderr);
            const want = Number(family || "4");
            assert.deepEqual(r.seen.map((s) => s.family), [4, 4, 4, 4].map(() => want));
            assert.match(
              r.stdout,
              new RegExp(`knock 4/4 udp \\[?${addr}\\]?:${ports[3]} IPv${want}`),
            );
          }
        },
      );

      await t.step(
        "a name without the family asked for: a clear error and nothing sent",
        async () => {
          const none = await knockCaptured(["--host", V4, "--family", "6"]);
          assert.equal(none.code, 1);
          assert.match(
            none.stderr,
            /Cannot knock on "v4\.knock\.test" over IPv6: it has no IPv6 address \(AAAA record\), only 203\.0\.113\.1/,
          );
          assert.deepEqual(none.seen, []);
          // No route: the SYN cannot leave, which the client says rather than count it sent.
          const off = "2001:db8:2::1";
          const unroutable = await knockCaptured(["--host", off]);
          assert.equal(unroutable.code, 1, unroutable.stdout);
          assert.match(
            unroutable.stderr,
            /Cannot knock on 2001:db8:2::1 over IPv6: Network is unreachable/,
          );
          assert.deepEqual(unroutable.seen, []);
          const one = await knockCaptured(["--host", V6, "--family", "both", "--transport", "udp"]);
          assert.equal(one.code, 0, one.stderr);
          assert.match(one.stderr, /v6\.knock\.test has no IPv4 address: knocking over IPv6 only/);
          assert.deepEqual(one.seen.map((s) => [s.family, s.port]), ports.map((p) => [6, p]));
        },
      );

      /** The SYNs of one family, a retransmission of the port just knocked collapsed. */
      const syns = (seen: Seen[], family: 4 | 6) =>
        seen.filter((x) => x.family === family && x.kind === "syn").map((x) => x.port)
          .filter((p, i, all) => i === 0 || p !== all[i - 1]);
      /** True when `sub` is `all` with some ports left out, order kept. */
      const subsequence = (sub: number[], all: number[]) => {
        let i = 0;
        for (const p of all) if (p === sub[i]) i++;
        return i === sub.length;
      };

      await t.step({
        name: "the web page in Chromium: an IPv6 literal knocks over IPv6 and says so",
        ignore: !chromiumAvailable(),
        fn: async () => {
          const { round, seen } = await pageCaptured(`[${L6}]`);
          assert.equal(round.state, "sent", round.result);
          assert.deepEqual(round.family, { text: `Over IPv6, to ${L6}.`, data: "6" });
          assert.match(
            round.knocks[0],
            new RegExp(`^Knock 1 of 4: port ${ALICE.firstPort} over IPv6 at`),
          );
          assert.deepEqual(syns(seen, 6), round.ports);
          assert.deepEqual(syns(seen, 4), []);
          assert.ok(seen.every((x) => x.family === 6 ? x.src === C6 : false), JSON.stringify(seen));
        },
      });

      await t.step({
        name: "the web page in Chromium on a dual-stack name: IPv4 alone without an IPv6 route",
        ignore: !chromiumAvailable(),
        fn: async () => {
          // Chromium asks for AAAA only when a UDP connect towards a global IPv6 address
          // finds a route; on-link 2001:db8:1::/64 is not one.
          const { round, seen } = await pageCaptured(DUAL);
          assert.equal(round.state, "sent", round.result);
          assert.equal(round.family.data, "browser");
          assert.deepEqual(syns(seen, 4), round.ports);
          assert.deepEqual(syns(seen, 6), []);
        },
      });

      await t.step({
        name:
          "the web page in Chromium on a dual-stack name with an IPv6 route: IPv6, IPv4 fallback",
        ignore: !chromiumAvailable(),
        fn: async () => {
          await nsRun(ns.client, ["ip", "-6", "route", "add", "default", "via", L6, "dev", "v0"]);
          const { round, seen } = await pageCaptured(DUAL);
          assert.equal(round.state, "sent", round.result);
          // IPv6 first, every knock; an attempt unanswered 300 ms is repeated over IPv4
          // (Chromium's fallback), which holds longer than that (the first, on a name) reach.
          const v4 = syns(seen, 4), v6 = syns(seen, 6);
          assert.deepEqual(v6, round.ports);
          assert.ok(subsequence(v4, round.ports), `IPv4 SYNs ${v4} of ${round.ports}`);
          console.log(`Chromium on ${DUAL}: IPv6 SYNs to ${v6}, IPv4 fallback SYNs to ${v4}`);
        },
      });

      await t.step({
        name: "the web page in Firefox on a dual-stack name: IPv6 first, IPv4 after 250 ms",
        ignore: !firefoxAvailable(),
        fn: async () => {
          const r = await captured([
            ...[Deno.execPath(), "run", "-A", `${ROOT}tests/lab/_knock_page_firefox.ts`],
            ...["--server", DUAL, "--first-port", String(ALICE.firstPort)],
            ...["--secret", ALICE.secret],
          ], 90);
          assert.equal(r.code, 0, `driver failed:\n${r.stdout}\n${r.stderr}`);
          const out = JSON.parse(r.stdout.trim().split("\n").at(-1) ?? "") as FirefoxOutput;
          assert.equal(out.state, "sent", out.result);
          assert.equal(out.family, "browser");
          // Firefox keeps abandoned attempts retransmitting: the first SYN of each port counts.
          const firsts = (family: 4 | 6) => [
            ...new Set(
              r.seen.filter((x) => x.family === family && x.kind === "syn").map((x) => x.port),
            ),
          ];
          assert.deepEqual(firsts(6), out.ports);
          assert.ok(subsequence(firsts(4), out.ports), `IPv4 SYNs ${firsts(4)} of ${out.ports}`);
          const count = (f: 4 | 6) => r.seen.filter((x) => x.family === f).length;
          console.log(
            `${out.ua.replace(/^.* /, "")} on ${DUAL}: first SYNs over IPv6 to ${firsts(6)}, ` +
              `over IPv4 to ${firsts(4)}; ${count(6)} IPv6 and ${count(4)} IPv4 SYNs in all`,
          );
        },
      });
    } finally {
      await labDown(ns);
      await Deno.remove(etc, { recursive: true }).catch(() => {});
      await Deno.remove(pcapDir, { recursive: true }).catch(() => {});
    }
  },
});

async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const dec = new TextDecoder();
  const r = { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  if (r.code !== 0 && argv[0] !== "tcpdump") {
    throw new Error(`Command failed (${r.code}): ${argv.join(" ")}: ${r.stderr}`);
  }
  return r;
}
