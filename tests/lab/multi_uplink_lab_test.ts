/**
 * Lab test of several WAN uplinks (issue 10) in the two-ISP lab
 * (scripts/lab/two_uplinks.ts, config/lab-two-uplinks.jsonc): a forward bound
 * to ISP A is closed on ISP B; one public port forwards to two servers on two
 * WAN addresses; a knock on WAN A opens a knock-enforced forward on WAN B for
 * the same source (and one on WAN B opens WAN A), management answers on ISP
 * A's addresses only; replies to a flow that came in on WAN B leave by wan1
 * (each ISP drops a packet from the appliance with a source not its own, so
 * the wrong uplink would lose it); masquerade fails over to ISP B when ISP A's
 * gateway goes away, and comes back. Then a config in the old single-`wan`
 * form still loads, in the one-uplink lab.
 */
import assert from "node:assert/strict";
import {
  type Names,
  type RunningLab,
  startLab,
  startTwoUplinkLab,
} from "../../scripts/lab/appliance.ts";
import { LAB } from "../../scripts/lab/topology.ts";
import {
  bcp38Drops,
  TWO_UPLINKS as T,
  type TwoUplinkNames,
} from "../../scripts/lab/two_uplinks.ts";
import { parseJsonc } from "../../src/config/parse_jsonc.ts";
import { api, signIn } from "./_api.ts";
import { capture } from "./_capture.ts";
import {
  ALICE,
  curl,
  knock,
  labSupported,
  re,
  readLog,
  removeTestConfig,
  ROOT,
  sh,
  shOk,
  until,
  waitForLog,
} from "./_helpers.ts";

type Lab = RunningLab<TwoUplinkNames>;

/** The second lab user of config/lab-two-uplinks.jsonc. */
const BOB = { secret: "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", firstPort: 42001 } as const;

/** One entry of `GET /api/v1/uplinks` (the contract of issue 10). */
interface UplinkView {
  name: string;
  interface: string;
  addresses: string[];
  gateway: string | null;
  management: boolean;
  masqueradeOrder: number | null;
  status:
    | { up: boolean; probing: boolean; masquerade: boolean; sent: number; received: number }
    | null;
}

/** The uplinks as the API shows them, by name. */
async function uplinks<N extends Names<N> & { server: string }>(
  lab: RunningLab<N>,
  token: string,
): Promise<Record<string, UplinkView>> {
  const r = await api<{ uplinks: UplinkView[] }, N>(lab, "GET", "/uplinks", { token });
  assert.equal(r.status, 200, `GET /uplinks: ${r.status} ${JSON.stringify(r.body)}`);
  assert.ok(Array.isArray(r.body.uplinks), `GET /uplinks: no list: ${JSON.stringify(r.body)}`);
  return Object.fromEntries(r.body.uplinks.map((u) => [u.name, u]));
}

/** How `url` answers from `ns`: the body, or a note saying it did not answer. */
async function answer(lab: Lab, ns: keyof TwoUplinkNames, url: string, maxSec = 3) {
  return (await curl(lab, ns, url, maxSec)) ?? `(no answer from ${url} in ${maxSec} s)`;
}

/** What the LAN server's masqueraded request looks like to the remote server. */
function seenFrom(wan: string): string {
  return `hello from ${T.remote}:8080 to ${wan}\n`;
}

/** Asks the remote server from the LAN (a new flow each time) until it sees `wan`; the last answer. */
async function masqueradeUntil(lab: Lab, wan: string, timeoutMs: number): Promise<string> {
  let last = "";
  await until(
    async () => {
      last = await answer(lab, "server", `http://${T.remote}:8080/`, 2);
      return last === seenFrom(wan);
    },
    timeoutMs,
    200,
  );
  return last;
}

/** How many log lines match `re` so far. */
async function logCount(lab: Lab, re: RegExp): Promise<number> {
  return (await readLog(lab)).split("\n").filter((l) => re.test(l)).length;
}

/** Waits (at most `timeoutMs`) for one more line matching `re` than `before`; the last such line. */
async function nextLogLine(lab: Lab, re: RegExp, before: number, timeoutMs: number) {
  let lines: string[] = [];
  await until(
    async () => {
      lines = (await readLog(lab)).split("\n").filter((l) => re.test(l));
      return lines.length > before;
    },
    timeoutMs,
    100,
  );
  return lines.length > before ? lines[lines.length - 1] : null;
}

Deno.test({
  name:
    "lab: two uplinks (bound forwards, one port two servers, knock across uplinks, replies by their uplink, masquerade failover)",
  ignore: !labSupported(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    let lab: Lab | null = null;
    try {
      lab = await startTwoUplinkLab();
      const l = lab;
      const token = await signIn(l);

      await t.step("the API lists both uplinks as configured", async () => {
        const u = await uplinks(l, token);
        assert.deepEqual(Object.keys(u).sort(), ["isp-a", "isp-b"], JSON.stringify(u));
        assert.deepEqual(u["isp-a"].addresses, [`${T.wanA}/26`, `${T.wanA2}/26`]);
        assert.equal(u["isp-a"].gateway, T.gatewayA);
        assert.equal(u["isp-a"].management, true);
        assert.equal(u["isp-b"].management, false);
        assert.deepEqual([u["isp-a"].masqueradeOrder, u["isp-b"].masqueradeOrder], [0, 1]);
      });

      await t.step(
        "a forward bound to isp-a: open on both WAN A addresses, closed on WAN B",
        async () => {
          for (const wan of [T.wanA, T.wanA2]) {
            assert.equal(
              await answer(l, "clienta", `http://${wan}:52301/`),
              `hello from ${T.server}:8081 to ${T.clientA}\n`,
              `isp-a-only on ${wan}`,
            );
          }
          for (const ns of ["clienta", "clientb"] as const) {
            assert.equal(
              await curl(l, ns, `http://${T.wanB}:52301/`, 3),
              null,
              `isp-a-only answered on WAN B (${T.wanB}) to ${ns}`,
            );
          }
        },
      );

      await t.step("one public port, two servers: 52302 on WAN A2 and on WAN B", async () => {
        assert.equal(
          await answer(l, "clientb", `http://${T.wanA2}:52302/`),
          `hello from ${T.server}:8082 to ${T.clientB}\n`,
          `52302 on ${T.wanA2} must reach ${T.server}`,
        );
        assert.equal(
          await answer(l, "clientb", `http://${T.wanB}:52302/`),
          `hello from ${T.server2}:8082 to ${T.clientB}\n`,
          `52302 on ${T.wanB} must reach ${T.server2}`,
        );
        assert.equal(
          await curl(l, "clientb", `http://${T.wanA}:52302/`, 3),
          null,
          `52302 is bound to ${T.wanA2} and ${T.wanB}, not ${T.wanA}`,
        );
      });

      await t.step(
        "replies to a flow that came in on WAN B leave by wan1, none by wan0",
        async () => {
          // Client A is ISP A's customer: the way back through ISP A looks shorter, and is wrong.
          const synAck = "tcp[tcpflags] & (tcp-syn|tcp-ack) == (tcp-syn|tcp-ack)";
          const onWan1 = await capture(
            l,
            "appliance",
            `${synAck} and host ${T.clientA}`,
            "wan1",
            false,
          );
          const onWan0 = await capture(l, "appliance", `tcp and host ${T.clientA}`, "wan0", false);
          const dropsA = await bcp38Drops(l.names.ispa);
          const body = await answer(l, "clienta", `http://${T.wanB}:52302/`);
          const [wan1, wan0] = [await onWan1.stop(), await onWan0.stop()];
          assert.equal(
            body,
            `hello from ${T.server2}:8082 to ${T.clientA}\n`,
            `client A through ${T.wanB}:52302 (wan1 saw:\n${wan1.join("\n")}\nwan0 saw:\n${
              wan0.join("\n")
            })`,
          );
          const expected = `IP ${T.wanB}.52302 > ${T.clientA}.`;
          assert.ok(
            wan1.some((x) => x.includes(expected)),
            `no SYN-ACK ${expected} on wan1:\n${wan1.join("\n")}`,
          );
          assert.deepEqual(wan0, [], `client A's flow to WAN B showed on wan0`);
          assert.equal(
            await bcp38Drops(l.names.ispa),
            dropsA,
            "ISP A dropped wrong-source packets",
          );
        },
      );

      await t.step("a knock on WAN A opens the knock-enforced forward on WAN B", async () => {
        const url = `http://${T.wanB}:52303/`;
        assert.equal(await curl(l, "clienta", url, 2), null, "52303 open before any knock");
        const k = await knock(l, "clienta", [], ALICE, T.wanA);
        assert.equal(k.code, 0, `knock on ${T.wanA}: ${k.stdout}${k.stderr}`);
        assert.equal(
          await answer(l, "clienta", url),
          `hello from ${T.server2}:8083 to ${T.clientA}\n`,
          `client A knocked on ${T.wanA}; ${url} stayed closed`,
        );
        assert.equal(await curl(l, "clientb", url, 2), null, "client B never knocked");
        const line = await waitForLog(
          l,
          new RegExp(`\\[Port Knock\\] success user=alice ip=${re(T.clientA)} `),
        );
        assert.ok(line, `no knock-success line:\n${await readLog(l)}`);
        assert.match(line, new RegExp(` wan=${re(T.wanA)} `), "the line names the WAN address");
      });

      await t.step("a knock on WAN B opens the same forward on WAN A (bob, client B)", async () => {
        const url = `http://${T.wanA}:52303/`;
        assert.equal(
          await curl(l, "clientb", url, 2),
          null,
          "52303 open to client B before its knock",
        );
        const k = await knock(l, "clientb", [], BOB, T.wanB);
        assert.equal(k.code, 0, `knock on ${T.wanB}: ${k.stdout}${k.stderr}`);
        assert.equal(
          await answer(l, "clientb", url),
          `hello from ${T.server2}:8083 to ${T.clientB}\n`,
          `client B knocked on ${T.wanB}; ${url} stayed closed`,
        );
        const line = await waitForLog(
          l,
          new RegExp(`\\[Port Knock\\] success user=bob ip=${re(T.clientB)} `),
        );
        assert.ok(line, `no knock-success line for bob:\n${await readLog(l)}`);
        assert.match(line, new RegExp(` wan=${re(T.wanB)} `), "the line names the WAN address");
      });

      await t.step("management from the WAN only on isp-a (management.uplinks)", async () => {
        // Client A is unlocked; the certificate's names are not what this step is about (-k).
        const health = (wan: string) =>
          sh(l, "clienta", [
            "curl",
            "-k",
            "-sS",
            "-m",
            "3",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            `https://${wan}:8443/api/v1/health`,
          ], 10);
        const onA = await health(T.wanA);
        assert.equal(onA.stdout, "200", `management on ${T.wanA}: ${onA.stdout} ${onA.stderr}`);
        const onB = await health(T.wanB);
        assert.notEqual(onB.code, 0, `management answered on ${T.wanB}: ${onB.stdout}`);
      });

      await t.step("the unlock shows the WAN address the knock arrived on", async () => {
        const r = await api(l, "GET", "/status/unlocks", { token });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        const list = (Array.isArray(r.body) ? r.body : r.body.unlocks) as {
          ip: string;
          wanAddress?: string;
        }[];
        for (const [ip, wan] of [[T.clientA, T.wanA], [T.clientB, T.wanB]]) {
          const mine = list.find((u) => u.ip === ip);
          assert.ok(mine, `no unlock for ${ip}: ${JSON.stringify(list)}`);
          assert.equal(mine.wanAddress, wan, `${ip} knocked on ${wan}: ${JSON.stringify(mine)}`);
        }
      });

      await t.step("masquerade from the LAN leaves with ISP A's address", async () => {
        assert.equal(
          await masqueradeUntil(l, T.wanA, 5000),
          seenFrom(T.wanA),
          "the remote server must see ISP A's primary address",
        );
        const u = await uplinks(l, token);
        assert.equal(u["isp-a"].status?.up, true, JSON.stringify(u["isp-a"]));
        assert.equal(u["isp-a"].status?.masquerade, true, JSON.stringify(u["isp-a"]));
        assert.equal(u["isp-b"].status?.masquerade, false, JSON.stringify(u["isp-b"]));
      });

      const down = new RegExp(`\\[Uplink\\] down uplink=isp-a target=${re(T.gatewayA)} lost=\\d+`);
      const up = new RegExp(`\\[Uplink\\] up uplink=isp-a target=${re(T.gatewayA)} rtt-ms=`);

      await t.step("ISP A's gateway goes away: uplink-down, masquerade by ISP B", async () => {
        const before = await logCount(l, down);
        await shOk(l, "ispa", ["ip", "addr", "del", `${T.gatewayA}/26`, "dev", "app"]);
        const line = await nextLogLine(l, down, before, 15000);
        assert.ok(line, `no uplink-down for isp-a within 15 s:\n${await readLog(l)}`);
        assert.equal(
          await masqueradeUntil(l, T.wanB, 10000),
          seenFrom(T.wanB),
          "new masquerade flows did not move to ISP B within 10 s of isp-a going down",
        );
        const u = await uplinks(l, token);
        assert.equal(u["isp-a"].status?.up, false, JSON.stringify(u["isp-a"]));
        assert.equal(u["isp-a"].status?.masquerade, false, JSON.stringify(u["isp-a"]));
        assert.equal(u["isp-b"].status?.masquerade, true, JSON.stringify(u["isp-b"]));
      });

      await t.step("ISP A's gateway comes back: uplink-up, masquerade by ISP A again", async () => {
        const before = await logCount(l, up);
        await shOk(l, "ispa", ["ip", "addr", "add", `${T.gatewayA}/26`, "dev", "app"]);
        const line = await nextLogLine(l, up, before, 15000);
        assert.ok(line, `no uplink-up for isp-a within 15 s:\n${await readLog(l)}`);
        assert.equal(
          await masqueradeUntil(l, T.wanA, 10000),
          seenFrom(T.wanA),
          "new masquerade flows did not return to ISP A within 10 s of isp-a coming up",
        );
        const u = await uplinks(l, token);
        assert.equal(u["isp-a"].status?.up, true, JSON.stringify(u["isp-a"]));
        assert.equal(u["isp-a"].status?.masquerade, true, JSON.stringify(u["isp-a"]));
      });
    } finally {
      await lab?.down();
    }
  },
});

/** The parts of a configuration file the old-form rewrite touches. */
interface OldOrNewConfig {
  wan: { interface: string; address: string } | { interface: string; addresses: string[] }[];
  masquerade?: unknown;
  management?: { uplinks?: unknown };
  forwards?: { uplink?: unknown; wanAddress?: unknown }[];
  openPorts?: { uplink?: unknown; wanAddress?: unknown }[];
  admission?: unknown;
  store?: unknown;
}

/**
 * config/appliance.jsonc in the old form (`"wan": { "interface", "address" }`,
 * no masquerade list, no rule bound to an uplink), with the lab's clients
 * allow-listed; in a fresh temp dir (removeTestConfig).
 */
async function writeOldFormConfig(): Promise<string> {
  const text = await Deno.readTextFile(`${ROOT}config/appliance.jsonc`);
  const c = parseJsonc(text).value as OldOrNewConfig;
  if (Array.isArray(c.wan)) {
    const first = c.wan[0];
    c.wan = { interface: first.interface, address: first.addresses[0].split("/")[0] };
    delete c.masquerade;
    delete c.management?.uplinks;
    for (const rule of [...(c.forwards ?? []), ...(c.openPorts ?? [])]) {
      delete rule.uplink;
      delete rule.wanAddress;
    }
  }
  assert.deepEqual(c.wan, { interface: "wan0", address: LAB.wan }, "the old form of the lab's WAN");
  const dir = await Deno.makeTempDir({ prefix: "knockgate-labtest-" });
  c.admission = { allow: ["203.0.113.0/24"] };
  c.store = { path: `${dir}/kg.kv` };
  const file = `${dir}/appliance.json`;
  await Deno.writeTextFile(file, JSON.stringify(c, null, 2));
  return file;
}

Deno.test({
  name: "lab: a config with the old single wan object still loads (one uplink named wan)",
  ignore: !labSupported(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const config = await writeOldFormConfig();
    let lab: RunningLab | null = null;
    try {
      lab = await startLab({ config });
      const l = lab;

      await t.step("it forwards and masquerades as before", async () => {
        assert.equal(
          await curl(l, "client", `http://${LAB.wan}:52201/`),
          `hello from ${LAB.server}:8080 to ${LAB.client}\n`,
          `the web forward (${LAB.wan}:52201) with the old-form config`,
        );
        const out = await shOk(l, "server", [
          "ping",
          "-c",
          "2",
          "-W",
          "2",
          "-i",
          "0.2",
          LAB.client,
        ]);
        assert.match(out, /2 packets transmitted, 2 received/);
      });

      await t.step("the API shows one uplink, wan, with the address as a /32", async () => {
        const token = await signIn(l);
        const r = await api<{ uplinks: UplinkView[] }>(l, "GET", "/uplinks", { token });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.equal(r.body.uplinks.length, 1, JSON.stringify(r.body));
        const u = r.body.uplinks[0];
        assert.deepEqual(
          { name: u.name, interface: u.interface, addresses: u.addresses, gateway: u.gateway },
          { name: "wan", interface: "wan0", addresses: [`${LAB.wan}/32`], gateway: null },
        );
      });
    } finally {
      await lab?.down();
      await removeTestConfig(config);
    }
  },
});
