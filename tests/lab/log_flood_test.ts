/**
 * Lab test of the log under attack and of sign-in codes across restarts: a
 * flood of 200k spoofed knock packets (198.18.0.0/15, each source a first
 * knock port SYN and a wrong port) produces a bounded number of stdout lines
 * that name the counts, while a real knock's success stays in the event
 * history; a sign-in TOTP code used once is refused after a restart.
 */
import assert from "node:assert/strict";
import { type RunningLab, startLab } from "../../scripts/lab/appliance.ts";
import { LAB } from "../../scripts/lab/topology.ts";
import { totpCode } from "../../src/knock/totp.ts";
import {
  ALICE,
  dropDelta,
  knock,
  labSupported,
  readLog,
  removeTestConfig,
  shOk,
  sleep,
  spoofSyns,
  status,
  waitForLog,
  writeTestConfig,
} from "./_helpers.ts";
import { adminCredentials, api, type Reply } from "./_api.ts";

/** Packets of the flood: 100k spoofed sources, two packets each. */
const FLOOD_PACKETS = 200_000;
/** Paced so that the appliance (not the TUN queue) sees most of them. */
const FLOOD_PPS = 40_000;
/** A port of no knock sequence: derived sequence ports lie in 16384..32767 (docs/knock-protocol.md). */
const WRONG_PORT = 9;
/** The logger's defaults: 10 s intervals, the first 5 of a kind in full, then one summary. */
const INTERVAL_S = 10, BURST = 5;

type Admin = Awaited<ReturnType<typeof adminCredentials>>;

/** Signs in with `code`; returns the reply. */
function login(lab: RunningLab, admin: Admin, code: string): Promise<Reply> {
  return api(lab, "POST", "/auth/login", {
    body: { username: admin.username, password: admin.password, code },
  });
}

/** The appliance's stdout lines from character `from` of its log on. */
async function linesSince(lab: RunningLab, from: number): Promise<string[]> {
  return (await readLog(lab)).slice(from).split("\n").filter((l) => l !== "");
}

Deno.test({
  name:
    "lab: a spoofed knock-failure flood is logged in bounded lines; a used sign-in code stays used",
  ignore: !labSupported(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const config = await writeTestConfig();
    let lab: RunningLab | null = null;
    try {
      lab = await startLab({ config });
      const l = lab;
      const admin = await adminCredentials(l);
      // A code is accepted once and only if later than the last used: take a fresh step each time.
      let used = -1;
      const freshCode = async () => {
        while (Math.floor(Date.now() / 30_000) + 1 <= used) await sleep(1000);
        used = Math.floor(Date.now() / 30_000) + 1; // one step ahead: accepted as drift +1
        return totpCode(admin.secret, used * 30);
      };
      // A cookie session mints the bearer token for the rest.
      const jar = `${l.stateDir}/jar.txt`;
      const code2 = await freshCode();
      const cookie = await api(l, "POST", "/auth/login", {
        jar,
        body: { username: admin.username, password: admin.password, code: code2 },
      });
      assert.equal(cookie.status, 200, JSON.stringify(cookie.body));
      const csrf = String(cookie.body.csrfToken);
      const tok = await api(l, "POST", "/auth/tokens", { jar, csrf, body: {} });
      const token = String(tok.body.token);

      await t.step("a real knock before the flood succeeds", async () => {
        const r = await knock(l, "client");
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.ok(await waitForLog(l, /\[Port Knock\] success user=alice ip=203\.0\.113\.10 /));
      });

      await t.step(
        "200k spoofed knock packets: bounded stdout lines, the success kept",
        async () => {
          // The spoofed range lies on the Internet side, as a default route would have it
          // (the reverse-path check drops sources the appliance has no route back to).
          await shOk(l, "appliance", ["ip", "route", "add", "198.18.0.0/15", "dev", "wan0"]);
          const from = (await readLog(l)).length;
          const before = await status(l);
          const began = Date.now();
          const flood = await spoofSyns(l, "client", {
            dst: LAB.wan,
            sources: { first: "198.18.0.1", count: FLOOD_PACKETS / 2 },
            ports: [ALICE.firstPort, WRONG_PORT],
            pps: FLOOD_PPS,
          }, 120);
          assert.equal(flood.sent, FLOOD_PACKETS, JSON.stringify(flood));
          // Every interval the flood touched ends, and its summary is written.
          await waitForLog(l, /\[Port Knock\] \d+ failures from/, 2 * INTERVAL_S * 1000);
          await sleep((INTERVAL_S + 2) * 1000);
          const elapsedS = (Date.now() - began) / 1000;
          const after = await status(l);
          const lines = (await linesSince(l, from)).filter((x) => !x.startsWith("status "));
          const summaries = lines.filter((x) =>
            /\[Port Knock\] \d+ failures from \d+ sources/.test(x)
          );
          const failed = summaries.reduce((n, x) => n + Number(/ (\d+) failures/.exec(x)![1]), 0);
          const full = lines.filter((x) => x.includes("[Port Knock] failure ")).length;
          console.log(
            `appliance rx ${after.stats.rx_packets - before.stats.rx_packets}, ` +
              `knock drops ${dropDelta(before, after, "knock")}; ` +
              `flood: ${flood.sent} packets from ${flood.sources} sources in ${
                flood.seconds.toFixed(1)
              } s; ` +
              `${lines.length} stdout lines in ${
                elapsedS.toFixed(0)
              } s (${full} failures in full, ` +
              `${summaries.length} summaries counting ${failed}); e.g. ${summaries[0]}`,
          );
          // At most BURST lines in full and one summary per kind and interval touched.
          const intervals = Math.ceil(elapsedS / INTERVAL_S) + 1;
          const kinds = 3; // knock failures, refused replays, drop summaries
          assert.ok(lines.length <= (BURST + 1) * kinds * intervals + 10, lines.join("\n"));
          assert.ok(summaries.length >= 1, lines.join("\n"));
          assert.ok(full <= BURST * intervals, `${full} failure lines in full`);
          // The per-user budget (knock-protocol.md rule 7) lets only a few hundred of the 100k
          // starts be evaluated; the rest are refused as throttled ("penalised" drops). Together
          // they account for the flood (some packets may be lost in the TUN queue), and the
          // failures that were evaluated outnumber the lines that report them.
          const throttled = dropDelta(before, after, "penalised");
          assert.ok(
            failed + throttled >= FLOOD_PACKETS / 2 / 4,
            `the flood left ${failed} failures and ${throttled} throttled starts`,
          );
          assert.ok(
            failed > full + summaries.length,
            `${failed} failures in ${lines.length} lines`,
          );

          const access = await api(l, "GET", "/events?class=access", { token });
          assert.equal(access.status, 200, JSON.stringify(access.body));
          const kept = (access.body.events as { type: string; ip?: string }[])
            .filter((e) => e.type === "knock-success" && e.ip === LAB.client);
          assert.equal(kept.length, 1, JSON.stringify(access.body));
          const all = await api(l, "GET", "/events?limit=10000", { token });
          const events = all.body.events as { type: string; ip?: string }[];
          assert.ok(events.some((e) => e.type === "knock-success" && e.ip === LAB.client));
          assert.ok(events.some((e) => e.type === "knock-failure"));
          assert.ok(events.some((e) => e.type === "log-summary"));
        },
      );

      await t.step("a sign-in code used once is refused after a restart", async () => {
        const code = await freshCode();
        const first = await login(l, admin, code);
        assert.equal(first.status, 200, JSON.stringify(first.body));
        const from = (await readLog(l)).length;
        await l.restartAppliance();
        const again = await login(l, admin, code);
        assert.equal(again.status, 401, JSON.stringify(again.body));
        const lines = await linesSince(l, from);
        assert.ok(
          lines.some((x) =>
            /\[Management\] login failure user=\S+ ip=\S+ reason=code-reused/.test(x)
          ),
          lines.join("\n"),
        );
      });
    } finally {
      await lab?.down();
      await removeTestConfig(config);
    }
  },
});
