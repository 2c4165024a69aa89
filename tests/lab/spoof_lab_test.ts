/**
 * Lab test: spoofed floods against the knock throttles (README "Knock
 * throttling and spoofed sources"; the policy is the verifier's module comment):
 *
 * - Evasion: 131,072 spoofed sources from 198.18.0.0/15, each knocking
 *   alice's first port once, more sources than the failure table holds. The
 *   per-user budget across all sources (64 attempts per 30 s step, then
 *   admission with probability budget / requests) lets at most about
 *   64 · (1 + ln(requests / 64)) attempts per step be evaluated; the rest are
 *   dropped as penalised. Alice's real client still unlocks afterwards.
 * - Victim lockout: 12 spoofed failures in the client's name (its address,
 *   alice's first port, then strays), then spoofed SYNs on alice's first port
 *   from its address at 20/s. A penalty rate-limits the address to one new
 *   attempt per 30 s instead of ignoring it, and `F` never ends an attempt, so
 *   the real client's knock gets through within that interval.
 */
import assert from "node:assert/strict";
import { type RunningLab, startLab } from "../../scripts/lab/appliance.ts";
import { LAB } from "../../scripts/lab/topology.ts";
import {
  ALICE,
  curl,
  dropDelta,
  knock,
  labSupported,
  readLog,
  removeTestConfig,
  sleep,
  spawnIn,
  type SpoofSpec,
  spoofSyns,
  status,
  statusSettled,
  until,
  waitForLog,
  writeTestConfig,
} from "./_helpers.ts";

const C = LAB.client, V = LAB.client2, W = LAB.wan;
const SOURCES = 131_072;

/** Sends SYNs per `spec` to the WAN address out of `ns`; how many were sent. */
async function flood(
  lab: RunningLab,
  ns: "client" | "client2",
  spec: Omit<SpoofSpec, "dst">,
): Promise<number> {
  return (await spoofSyns(lab, ns, { dst: W, ...spec })).sent;
}

Deno.test({
  name: "lab: spoofed floods neither evade the knock throttles nor lock out a victim",
  ignore: !labSupported(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const config = await writeTestConfig();
    let lab: RunningLab | null = null;
    try {
      lab = await startLab({ config });
      const l = lab;
      // A route back to the spoofed range, so that no reverse-path filter drops it first.
      await l.exec("appliance", ["ip", "route", "add", "198.18.0.0/15", "dev", "wan0"]);
      const hello = (ip: string) => `hello from ${LAB.server}:8080 to ${ip}\n`;

      await t.step("131,072 spoofed sources get few attempts evaluated", async () => {
        const before = await statusSettled(l);
        const sent = await flood(l, "client2", {
          sources: { first: "198.18.0.0", count: SOURCES },
          ports: [ALICE.firstPort],
          pps: 20_000,
        });
        assert.equal(sent, SOURCES);
        const after = await statusSettled(l);
        const evaluated = dropDelta(before, after, "knock");
        const throttled = dropDelta(before, after, "penalised");
        // The flood spans at most a few steps (6.6 s at 20 kpps): bound per step, 3 steps.
        const bound = 3 * 64 * (1 + Math.log(SOURCES / 64));
        assert.ok(evaluated <= bound, `evaluated ${evaluated} of ${sent} (bound ${bound})`);
        assert.ok(throttled >= (evaluated + throttled) * 0.9, `throttled ${throttled}`);
        assert.ok(evaluated + throttled >= SOURCES / 2, `${evaluated + throttled} arrived`);
      });

      await t.step("after the flood alice's real client unlocks", async () => {
        await sleep(1_000); // the budget refills at 64 per 30 s
        const r = await knock(l, "client", ["--transport", "tcp"]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.ok(
          await waitForLog(l, /\[Port Knock\] success user=alice ip=203\.0\.113\.10 /),
          await readLog(l),
        );
        assert.equal(await curl(l, "client", `http://${W}:52201/`), hello(C));
      });

      await t.step(
        "12 spoofed failures and 20/s spoofed SYNs do not lock client2 out",
        async () => {
          // The victim is client2 (never knocked yet); the spoofer sends from client's namespace.
          const penalty = `[Port Knock] penalty ip=${V}`;
          // The evasion flood spent alice's budget for its step: start in a fresh step, with
          // tokens refilled (64 per 30 s), so that the spoofed failures are evaluated at all.
          const floodStep = Math.floor(Date.now() / 30_000);
          await until(() => Math.floor(Date.now() / 30_000) > floodStep, 31_000, 200);
          await sleep(6_000);
          // Each failure: F, then 9 strays (one more than a sequence tolerates).
          await flood(l, "client", {
            sources: { first: V, count: 1 },
            ports: [ALICE.firstPort, 1, 2, 3, 4, 5, 6, 7, 8, 9],
            repeat: 12,
            pps: 500,
          });
          assert.ok(
            await until(async () => (await readLog(l)).includes(penalty), 5_000),
            await readLog(l),
          );
          const syns = spawnIn(l, "client", [
            "hping3",
            "-q",
            "-a",
            V,
            "-S",
            "-p",
            String(ALICE.firstPort),
            "-i",
            "u50000", // 20/s
            "-c",
            "1600",
            W,
          ], 90);
          try {
            // The penalised address gets one new attempt per 30 s: retry (bounded) until it
            // unlocks; the SYNs on F keep that attempt open for the real knock.
            let unlocked = false;
            for (let i = 0; i < 8 && !unlocked; i++) {
              const r = await knock(l, "client2", ["--transport", "tcp"]);
              assert.equal(r.code, 0, r.stdout + r.stderr);
              unlocked = (await curl(l, "client2", `http://${W}:52201/`, 2)) === hello(V);
              if (!unlocked) await sleep(5_000);
            }
            assert.ok(unlocked, await readLog(l));
            const s = await status(l);
            assert.ok((s.drops.penalised ?? 0) > 0, JSON.stringify(s.drops));
          } finally {
            await syns.stop();
          }
        },
      );
    } finally {
      await lab?.down();
      await removeTestConfig(config);
    }
  },
});
