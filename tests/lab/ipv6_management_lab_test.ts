/**
 * Lab test of the management API on the WAN IPv6 address (issue 13 item 5)
 * in the dual-stack lab: the appliance listens on `[2001:db8:198::1]:8443`
 * and its generated certificate names that address. From the client over
 * IPv6, before a knock, curl times out and nmap sees the port filtered with
 * no answer at all (no RST, no SYN-ACK); an IPv4 knock opens IPv4
 * management only; after `knock --family 6` curl gets `/health` and the
 * certificate verifies (`--cacert`); an address of another /64 still gets
 * nothing; the LAN server reaches it without a knock; a start while the
 * address is tentative (duplicate address detection) binds it once usable;
 * with the process killed the fail-closed input chain drops the port's SYNs.
 * Through `--routing`: the WAN TCP goes to the TUN, and the packet
 * the TUN writes back reaches the local listener, as long as early demux is
 * off (`net.ipv4.ip_early_demux`, which the kernel's IPv6 input reads too:
 * with it on, the handshake of a new connection never completes).
 */
import assert from "node:assert/strict";
import { type RunningLab, startLab } from "../../scripts/lab/appliance.ts";
import { LAB, LAB6 } from "../../scripts/lab/topology.ts";
import { certInfo } from "../../src/host/tls.ts";
import {
  addOtherClientPrefix6,
  ALICE,
  CLIENT6_OTHER,
  dropDelta,
  knock,
  labCert,
  labSupported,
  readLog,
  removeTestConfig,
  sh,
  shOk,
  status,
  statusWhen,
  waitForLog,
  writeTestConfig,
} from "./_helpers.ts";
import { capture, nftCount } from "./_capture.ts";

const C6 = LAB6.client, W6 = LAB6.wan;
/** An address of the client outside its /64 (added by the test). */
const C6_OTHER = CLIENT6_OTHER;
const HEALTH = "/api/v1/health";

/** The lab configuration with IPv6 on: the management port also on the WAN IPv6 address. */
async function dualStackConfig(): Promise<string> {
  const file = await writeTestConfig();
  const text = await Deno.readTextFile(file);
  const wan = `"addresses": ["198.51.100.1/24"] }]`;
  assert.ok(text.includes(wan), "the default config changed");
  await Deno.writeTextFile(
    file,
    text.replace(
      wan,
      `"addresses": ["198.51.100.1/24"], "addresses6": ["${W6}/64"] }],
  "ipv6": { "enabled": true, "lan": { "address": "${LAB6.lan}", "network": "${LAB6.lanNetwork}" } }`,
    ),
  );
  return file;
}

/** curl of `/health` at `host` (bracketed for IPv6) with the generated certificate as the CA. */
function health(lab: RunningLab, host: string, args: string[] = []) {
  return sh(lab, "client", [
    "curl",
    "-sS",
    "-g",
    "-m",
    "3",
    "--cacert",
    labCert(lab),
    "-o",
    "/dev/null",
    "-w",
    "%{http_code}",
    ...args,
    `https://${host}:8443${HEALTH}`,
  ], 8);
}

/** nmap's verdict on the management port of the WAN IPv6 address, from the client. */
async function nmap6(lab: RunningLab): Promise<string> {
  const out = await shOk(lab, "client", [
    "nmap",
    "-6",
    "-Pn",
    "-n",
    "-sS",
    "--max-retries",
    "1",
    "--max-rtt-timeout",
    "500ms",
    "--host-timeout",
    "20s",
    "-p",
    "8443",
    "-oG",
    "-",
    W6,
  ], 30);
  return /(\d+)\/(open|filtered|closed)\/tcp/.exec(out)?.[2] ?? out;
}

Deno.test({
  name: "lab: the management API on the WAN IPv6 address, gated by an IPv6 knock",
  ignore: !labSupported(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const config = await dualStackConfig();
    let lab: RunningLab | null = null;
    try {
      lab = await startLab({ config, ipv6: true });
      const l = lab;

      await addOtherClientPrefix6(l, "client", "appliance");

      await t.step("it listens on the WAN IPv6 address; the certificate names it", async () => {
        const ss = await shOk(l, "appliance", ["ss", "-Hltn", "sport = :8443"]);
        assert.ok(ss.includes(`[${W6}]:8443`), ss);
        const info = certInfo(await Deno.readTextFile(labCert(l)));
        assert.ok(typeof info !== "string", String(info));
        assert.ok(info.subjectAltNames.includes(`IP Address:${W6}`), info.subjectAltNames.join());
        const log = await readLog(l);
        assert.match(
          log,
          new RegExp(`appliance ready: .* WAN wan 198\\.51\\.100\\.1/24,${W6}/64 `),
        );
      });

      await t.step("before a knock: curl times out, nmap filtered, nothing answers", async () => {
        const before = await status(l);
        const answers = await capture(
          l,
          "client",
          // Any answer: a SYN-ACK or RST from the port, or an ICMPv6 error (types below 128).
          `ip6 and src host ${W6} and ((tcp and src port 8443) or (icmp6 and ip6[40] < 128))`,
          "eth0",
          false,
        );
        const r = await health(l, `[${W6}]`);
        assert.equal(r.code, 28, `curl: ${r.code} ${r.stdout} ${r.stderr}`);
        assert.equal(await nmap6(l), "filtered");
        assert.deepEqual(await answers.stop(), [], "the WAN IPv6 address answered");
        const after = await statusWhen(l, (s) => dropDelta(before, s, "locked") >= 3);
        assert.ok(dropDelta(before, after, "locked") >= 3, JSON.stringify(after.drops));
      });

      await t.step("an IPv4 knock opens IPv4 management only", async () => {
        // The previous step (drift -1): the IPv6 knock below uses the current one, which an
        // IPv4 knock of the same step would make a replay (one step unlocks one source).
        const now = Math.floor(Date.now() / 1000);
        if (now % 30 > 26) await new Promise((r) => setTimeout(r, (31 - (now % 30)) * 1000));
        const k = await knock(l, "client", ["--time", String(Math.floor(Date.now() / 1000) - 30)]);
        assert.equal(k.code, 0, k.stderr);
        const v4 = await health(l, LAB.wan);
        assert.equal(v4.code, 0, v4.stderr);
        assert.equal(v4.stdout, "200");
        const v6 = await health(l, `[${W6}]`);
        assert.equal(v6.code, 28, `IPv6 management opened: ${v6.stdout} ${v6.stderr}`);
      });

      await t.step("after a knock over IPv6 it answers, and the certificate verifies", async () => {
        const k = await knock(l, "client", ["--family", "6"], ALICE, W6);
        assert.equal(k.code, 0, k.stderr);
        assert.match(k.stdout + k.stderr, /IPv6/);
        // --cacert without -k: curl checks the chain and that the SANs name [W6].
        const r = await health(l, `[${W6}]`, ["-6"]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, "200");
        assert.equal(await nmap6(l), "open");
      });

      await t.step(
        "early demux off: a long answer arrives whole; on, the port breaks",
        async () => {
          // IPv6 input reads the IPv4 sysctl (ip6_rcv_finish_core): --routing's 0 covers both.
          const demux = (v: number) =>
            shOk(l, "appliance", ["sysctl", "-qw", `net.ipv4.ip_early_demux=${v}`]);
          const sysctl = await shOk(l, "appliance", ["sysctl", "-n", "net.ipv4.ip_early_demux"]);
          assert.equal(sysctl.trim(), "0");
          const spec = await sh(l, "client", [
            "curl",
            "-sS",
            "-g",
            "-6",
            "-m",
            "5",
            "--cacert",
            labCert(l),
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{size_download}",
            `https://[${W6}]:8443/api/v1/openapi.json`,
          ], 10);
          assert.equal(spec.code, 0, spec.stderr);
          const [code, size] = spec.stdout.split(" ");
          assert.equal(code, "200");
          assert.ok(Number(size) > 20_000, `${size} bytes: one segment proves nothing`);
          // Early demux ties the client's ACK to the half-open socket, and the forward path into
          // the TUN drops a packet with a socket: the handshake never completes.
          await demux(1);
          try {
            const r = await health(l, `[${W6}]`, ["-6", "-m", "2"]);
            assert.equal(r.code, 28, `with early demux: ${r.code} ${r.stdout}`);
          } finally {
            await demux(0);
          }
          const again = await health(l, `[${W6}]`, ["-6"]);
          assert.equal(again.code, 0, again.stderr);
        },
      );

      await t.step("an address of another /64 still gets nothing", async () => {
        const before = await status(l);
        const answers = await capture(
          l,
          "client",
          `ip6 and src host ${W6} and dst host ${C6_OTHER} and (tcp or (icmp6 and ip6[40] < 128))`,
          "eth0",
          false,
        );
        const r = await health(l, `[${W6}]`, ["--interface", C6_OTHER]);
        assert.equal(r.code, 28, `curl: ${r.code} ${r.stdout} ${r.stderr}`);
        assert.deepEqual(await answers.stop(), [], "another /64 got an answer");
        const after = await statusWhen(l, (s) => dropDelta(before, s, "locked") > 0);
        assert.ok(dropDelta(before, after, "locked") > 0, JSON.stringify(after.drops));
        // The unlocked /64 is still let in.
        const ok = await health(l, `[${W6}]`, ["--interface", C6]);
        assert.equal(ok.code, 0, ok.stderr);
      });

      await t.step(
        "from the LAN the WAN IPv6 address's management port needs no knock",
        async () => {
          const r = await sh(l, "server", [
            "curl",
            "-sS",
            "-g",
            "-6",
            "-m",
            "3",
            "--cacert",
            labCert(l),
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            `https://[${W6}]:8443${HEALTH}`,
          ], 8);
          assert.equal(r.code, 0, r.stderr);
          assert.equal(r.stdout, "200");
        },
      );

      await t.step("a start while the WAN IPv6 address is tentative waits for it", async () => {
        await l.stopAppliance();
        // Duplicate address detection for long enough that only the test ends it.
        const addr6 = (...args: string[]) =>
          shOk(l, "appliance", ["ip", "-6", "addr", ...args, `${W6}/64`, "dev", "wan0"]);
        await shOk(l, "appliance", ["sysctl", "-qw", "net.ipv6.conf.wan0.dad_transmits=100"]);
        await addr6("del");
        await addr6("add");
        const starting = l.startAppliance();
        try {
          const waiting = await waitForLog(l, /is not usable yet \(tentative\?\)/, 30_000);
          assert.ok(waiting, "the start did not wait for the tentative address");
        } finally {
          await addr6("del");
          await addr6("add", "nodad");
          await shOk(l, "appliance", ["sysctl", "-qw", "net.ipv6.conf.wan0.dad_transmits=1"]);
          await starting;
        }
        const ss = await shOk(l, "appliance", ["ss", "-Hltn", "sport = :8443"]);
        assert.ok(ss.includes(`[${W6}]:8443`), ss);
        assert.doesNotMatch(await readLog(l), /not listening on/);
        // The unlock was saved at the stop and restored at the start.
        const r = await health(l, `[${W6}]`, ["-6"]);
        assert.equal(r.code, 0, r.stderr);
      });

      await t.step(
        "after kill -9 the unlocked client gets no answer: the input chain drops it",
        async () => {
          await l.stopAppliance("SIGKILL");
          const dropped = await nftCount(l, "input", "wan-input");
          const answers = await capture(
            l,
            "client",
            `ip6 and src host ${W6} and ((tcp and src port 8443) or (icmp6 and ip6[40] < 128))`,
            "eth0",
            false,
          );
          const r = await health(l, `[${W6}]`, ["-6", "-m", "2"]);
          assert.equal(r.code, 28, `curl: ${r.code} ${r.stdout} ${r.stderr}`);
          assert.deepEqual(await answers.stop(), [], "the kernel answered for the dead listener");
          assert.ok((await nftCount(l, "input", "wan-input")) > dropped);
        },
      );
    } finally {
      await lab?.down();
      await removeTestConfig(config);
    }
  },
});
