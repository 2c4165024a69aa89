/**
 * Lab test of the web knock tool: Chromium running inside the lab's client
 * namespace opens ui/knock/index.html (file://), knocks alice's sequence on
 * the appliance, and the knock-protected forward 52201 -> 192.0.2.12:8080
 * opens. The wire shows one SYN per knock, in order, and nothing more (no
 * retransmitted knock arrives after the sequence); knocking four times in a
 * row from one page (Chromium's WebSocket throttle) loses no knock.
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { type RunningLab, startLab } from "../../scripts/lab/appliance.ts";
import { LAB, type LabNames } from "../../scripts/lab/topology.ts";
import { chromiumAvailable } from "../browser/_browser.ts";
import { knock, labCert } from "./_helpers.ts";
import type { DriverOutput } from "./_knock_page_driver.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const ALICE = { secret: "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", firstPort: 41001 };
const FORWARD = 52201;
const URL_52201 = `http://${LAB.wan}:${FORWARD}/`;

function labSupported(): boolean {
  try {
    return Deno.uid() === 0 && Deno.statSync("/dev/net/tun") !== null;
  } catch {
    return false;
  }
}

/** A second lab user: alice's sequence from another IP in the same step is a replay. */
const BOB = { name: "bob", secret: "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", firstPort: 42001 };
/** A third, whose unlock reaches the management port but not the forward "web". */
const CAROL = { name: "carol", secret: "MFRGGZDFMZTWQ2LKMFRGGZDFMZTWQ2LK", firstPort: 43001 };

/**
 * The default lab config with a private store in a fresh temp dir; `withBob`
 * adds bob and carol and keeps the forward "web" (the first `"users": []`) to
 * alice and bob.
 */
async function writeConfig(withBob = false): Promise<string> {
  let text = await Deno.readTextFile(`${ROOT}config/appliance.jsonc`);
  if (withBob) {
    const users = [BOB, CAROL].map((u) => JSON.stringify({ ...u, length: 3, transport: "any" }));
    const more = text.replace(/"users": \[/, `"users": [${users.join(",")},`)
      .replace(/"users": \[\]/, `"users": ["alice", "bob"]`);
    if (more === text) throw new Error("Cannot derive a test config: users not found");
    text = more;
  }
  const dir = await Deno.makeTempDir({ prefix: "knockgate-knockpage-" });
  const edited = text.replace(/"path":\s*"[^"]*"/, `"path": ${JSON.stringify(`${dir}/kg.kv`)}`);
  if (edited === text) throw new Error("Cannot derive a test config: store path not found");
  await Deno.writeTextFile(`${dir}/appliance.jsonc`, edited);
  return `${dir}/appliance.jsonc`;
}

interface Done {
  code: number;
  stdout: string;
  stderr: string;
}

/** Starts `argv` in namespace `ns`, killed after `timeoutSec` at the latest. */
function start(lab: RunningLab, ns: keyof LabNames, argv: string[], timeoutSec: number) {
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", lab.names[ns], "timeout", "-k", "2", String(timeoutSec), ...argv],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
  }).spawn();
  const dec = new TextDecoder();
  let out = "", err = "";
  const drain = async (s: ReadableStream<Uint8Array>, to: (t: string) => void) => {
    for await (const chunk of s) to(dec.decode(chunk, { stream: true }));
  };
  const done: Promise<Done> = Promise.all([
    drain(child.stdout, (t) => out += t),
    drain(child.stderr, (t) => err += t),
    child.status,
  ]).then(([, , st]) => ({ code: st.code, stdout: out, stderr: err }));
  return {
    output: () => out,
    errors: () => err,
    done,
    stop: async (): Promise<Done> => {
      try {
        child.kill("SIGINT");
      } catch { /* already gone */ }
      return await done;
    },
  };
}

/** Runs `argv` in `ns` to completion (bounded by `timeoutSec`). */
function exec(lab: RunningLab, ns: keyof LabNames, argv: string[], timeoutSec = 20): Promise<Done> {
  return start(lab, ns, argv, timeoutSec).done;
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/** Destination ports of the client's TCP SYNs (no ACK) in tcpdump's text output. */
function synPorts(text: string): number[] {
  const re = new RegExp(`> ${LAB.wan.replaceAll(".", "\\.")}\\.(\\d+): Flags \\[S\\]`);
  return text.split("\n").flatMap((l) => {
    const m = l.match(re);
    return m ? [Number(m[1])] : [];
  });
}

/** Runs the page driver inside a client namespace with alice's profile and `args`. */
async function runDriver(
  lab: RunningLab,
  args: string[],
  ns: "client" | "client2" = "client",
  user: { secret: string; firstPort: number } = ALICE,
): Promise<DriverOutput> {
  const driver = await exec(lab, ns, [
    Deno.execPath(),
    "run",
    "-A",
    `${ROOT}tests/lab/_knock_page_driver.ts`,
    "--server",
    LAB.wan,
    "--first-port",
    String(user.firstPort),
    "--secret",
    user.secret,
    ...args,
  ], 120);
  assert.equal(driver.code, 0, `driver failed:\n${driver.stdout}\n${driver.stderr}`);
  return JSON.parse(driver.stdout.trim().split("\n").at(-1) ?? "") as DriverOutput;
}

function curl(lab: RunningLab, ns: "client" | "client2" = "client"): Promise<Done> {
  return exec(lab, ns, ["curl", "-sS", "--max-time", "2", URL_52201], 10);
}

Deno.test({
  name: "lab: the knock page in Chromium inside the client namespace opens the forward",
  ignore: !labSupported() || !chromiumAvailable(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const config = await writeConfig();
    let lab: RunningLab | null = null;
    try {
      lab = await startLab({ config });
      const filter = `src host ${LAB.client} and tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn`;
      const dump = start(lab, "appliance", ["tcpdump", "-l", "-n", "-i", "wan0", filter], 120);
      assert.ok(await until(() => dump.errors().includes("listening on"), 10_000), "tcpdump");

      const locked = await curl(lab);
      assert.notEqual(locked.code, 0, `locked forward answered: ${locked.stdout}`);
      const synsBefore = synPorts(dump.output()).length;

      const [out] = (await runDriver(lab, ["--then-port", String(FORWARD)])).rounds;
      assert.equal(out.state, "open", out.result);
      assert.match(
        out.result,
        /^Sent 4 knocks to 198\.51\.100\.1 in \d+ ms\. Port 52201 is open\./,
      );
      assert.equal(out.ports.length, 4);
      assert.equal(out.ports[0], ALICE.firstPort);

      const opened = await curl(lab);
      assert.equal(opened.code, 0, `forward still closed: ${opened.stderr}`);
      assert.equal(opened.stdout, `hello from ${LAB.server}:8080 to ${LAB.client}\n`);

      // Long enough for any SYN retransmission (1 s) of an attempt left running.
      await new Promise((r) => setTimeout(r, 2500));
      let syns = synPorts(dump.output()).slice(synsBefore);
      assert.deepEqual(syns.filter((p) => p !== FORWARD), out.ports, `SYNs on the wire: ${syns}`);

      // Knocking again and again from one page: Chromium delays each new attempt more
      // (its WebSocket throttle); the page holds each one long enough, so none is lost.
      const synsMid = synPorts(dump.output()).length;
      const again = (await runDriver(lab, ["--delay", "20", "--rounds", "4"])).rounds;
      assert.deepEqual(again.map((r) => r.state), ["sent", "sent", "sent", "sent"]);
      await new Promise((r) => setTimeout(r, 1500));
      syns = synPorts((await dump.stop()).stdout).slice(synsMid);
      // A kernel retransmission during a long hold repeats the port just knocked (ignored).
      const collapsed = syns.filter((p, i) => i === 0 || p !== syns[i - 1]);
      assert.deepEqual(collapsed, again.flatMap((r) => r.ports), `SYNs on the wire: ${syns}`);

      const log = await Deno.readTextFile(lab.logFile);
      assert.match(log, /\[Port Knock\] success user=alice ip=203\.0\.113\.10 /);
      assert.doesNotMatch(log, /\[Port Knock\] (failure|replay|penalty) ip=203\.0\.113\.10/);
    } finally {
      await lab?.down();
      await Deno.remove(config.slice(0, config.lastIndexOf("/")), { recursive: true })
        .catch(() => {});
    }
  },
});

/** Chromium's `--ignore-certificate-errors-spki-list` form of a certificate: base64 SHA-256 of its SPKI. */
async function spkiHash(pem: string): Promise<string> {
  const spki = new X509Certificate(pem).publicKey.export({ type: "spki", format: "der" });
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(spki)));
  return btoa(String.fromCharCode(...digest));
}

Deno.test({
  name:
    "lab: the knock page over http:// (no crypto.subtle) and from the appliance's own https:// opens the forward",
  ignore: !labSupported() || !chromiumAvailable(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const config = await writeConfig(true);
    const dir = config.slice(0, config.lastIndexOf("/"));
    let lab: RunningLab | null = null;
    const servers: { stop(): Promise<Done> }[] = [];
    try {
      lab = await startLab({ config });
      const serve = async (ns: "client" | "client2", host: string, port: number, tls: string[]) => {
        const srv = start(lab!, ns, [
          Deno.execPath(),
          "run",
          "-A",
          `${ROOT}tests/lab/_static_page.ts`,
          host,
          String(port),
          ...tls,
        ], 120);
        servers.push(srv);
        assert.ok(await until(() => srv.output().includes("listening"), 15_000), srv.errors());
      };
      // Plain http from the client's own documentation address: not "potentially trustworthy"
      // (only https, file, localhost and 127/8 are), so the page has no crypto.subtle.
      await serve("client", LAB.client, 8000, []);
      // The appliance's own page over https from the WAN: carol's unlock (a knock client) lets
      // client2 reach the management port but not the forward "web"; the page knocks bob's.
      const k = await knock(lab, "client2", [], CAROL);
      assert.equal(k.code, 0, k.stdout + k.stderr);
      const page = `https://${LAB.wan}:8443/knock/`;
      const fetchPage = [
        "curl",
        "-sS",
        "-o",
        "/dev/null",
        "--cacert",
        labCert(lab),
        "-m",
        "3",
        page,
      ];
      assert.ok(
        await until(async () => (await exec(lab!, "client2", fetchPage, 10)).code === 0, 15_000),
        "the appliance's knock page is not reachable over https after carol's knock",
      );
      const spki = await spkiHash(await Deno.readTextFile(labCert(lab)));
      // The SPKI list is a pin: another key's hash leaves the certificate untrusted.
      const wrongSpki = btoa(String.fromCharCode(...new Uint8Array(32)));
      const untrusted = await exec(lab, "client2", [
        Deno.execPath(),
        "run",
        "-A",
        `${ROOT}tests/lab/_knock_page_driver.ts`,
        ...["--server", LAB.wan, "--first-port", "1", "--secret", BOB.secret],
        ...["--url", page, "--spki", wrongSpki, "--timeout-ms", "5000"],
      ], 60);
      assert.notEqual(untrusted.code, 0, `Chromium opened the page with a wrong pin`);
      assert.match(untrusted.stderr + untrusted.stdout, /ERR_CERT_AUTHORITY_INVALID/);

      for (
        const [ns, url, extra, secure, user] of [
          ["client", `http://${LAB.client}:8000/knock/`, [], false, ALICE],
          ["client2", page, ["--spki", spki], true, BOB],
        ] as const
      ) {
        const locked = await curl(lab, ns);
        assert.notEqual(locked.code, 0, `${ns}: locked forward answered: ${locked.stdout}`);
        const out = await runDriver(
          lab,
          ["--url", url, ...extra, "--then-port", String(FORWARD)],
          ns,
          user,
        );
        assert.equal(out.secureContext, secure, url);
        assert.equal(out.subtle, secure ? "object" : "undefined", url);
        assert.deepEqual(out.selfTest.engines, secure ? ["webcrypto", "noble"] : ["noble"], url);
        assert.ok(out.selfTest.ok && out.selfTest.failed === 0, `${url}: ${JSON.stringify(out)}`);
        assert.match(out.selfTestText, /^All \d+ protocol test vector checks reproduced/);
        const [round] = out.rounds;
        // From an https:// page the http:// probe of the forward is mixed content, which the
        // browser blocks: the page can only tell that the port answered. curl tells the rest.
        assert.equal(round.state, secure ? "answered" : "open", `${url}: ${round.result}`);
        const opened = await curl(lab, ns);
        assert.equal(opened.code, 0, `${ns}: forward still closed: ${opened.stderr}`);
      }
      const log = await Deno.readTextFile(lab.logFile);
      assert.match(log, /\[Port Knock\] success user=alice ip=203\.0\.113\.10 /);
      assert.match(log, /\[Port Knock\] success user=bob ip=203\.0\.113\.20 /);
    } finally {
      for (const srv of servers) await srv.stop();
      await lab?.down();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
