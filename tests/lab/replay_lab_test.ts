/**
 * Lab test: a captured knock replayed is refused, whatever happened in
 * between. Policy (knock-protocol.md rule 6): a (user, step) that unlocked an
 * IP is refused from every other IP, and from the same IP once that unlock
 * was revoked or has expired; the replay memory is in the store, so neither
 * an appliance restart nor a knock-settings change forgets it.
 *
 * The knocks are the ports alice's client sends for a step (the knock client
 * prints them; knock_test.ts checks they are what tcpdump captures), replayed
 * as raw SYNs from the second client's namespace: with its own address, or
 * spoofed from 203.0.113.0/24. Alice's steps S (the client's clock), S + 1
 * and S + 2 are used so that every replay is still a live candidate step.
 */
import assert from "node:assert/strict";
import { type RunningLab, startLab } from "../../scripts/lab/appliance.ts";
import { LAB } from "../../scripts/lab/topology.ts";
import { api, signIn } from "./_api.ts";
import {
  curl,
  knock,
  labSupported,
  re,
  readLog,
  removeTestConfig,
  sequenceAt,
  sleep,
  spoofSyns,
  until,
  writeTestConfig,
} from "./_helpers.ts";

const C = LAB.client, C2 = LAB.client2, W = LAB.wan;
const SPOOFED = "203.0.113.99";
const STEP_MS = 30_000;

/** Sends `ports` as SYNs from `src` out of `ns`, 100 ms apart (the knock client's pace). */
async function sendKnocks(
  lab: RunningLab,
  ns: "client" | "client2",
  src: string,
  ports: number[],
): Promise<void> {
  await spoofSyns(lab, ns, { dst: W, sources: { first: src, count: 1 }, ports, pps: 10 }, 30);
}

/** Log lines matching `pattern` so far. */
async function count(lab: RunningLab, pattern: RegExp): Promise<number> {
  return (await readLog(lab)).split("\n").filter((l) => pattern.test(l)).length;
}

/** Waits (bounded) until more than `before` log lines match `pattern`. */
function grows(lab: RunningLab, pattern: RegExp, before: number, ms = 5000): Promise<boolean> {
  return until(async () => (await count(lab, pattern)) > before, ms);
}

function replayLine(ip: string, step: number, firstIp: string): RegExp {
  return new RegExp(
    `\\[Port Knock\\] replay user=alice ip=${re(ip)} step=${step} first-ip=${re(firstIp)}`,
  );
}

function successLine(ip: string, step: number): RegExp {
  return new RegExp(`\\[Port Knock\\] success user=alice ip=${re(ip)} .*step=${step}`);
}

Deno.test({
  name: "lab: captured knocks replayed after restart, settings change, revoke, expiry",
  ignore: !labSupported(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const config = await writeTestConfig();
    let lab: RunningLab | null = null;
    try {
      lab = await startLab({ config });
      const l = lab;
      const token = await signIn(l);
      const hello = (ip: string) => `hello from ${LAB.server}:8080 to ${ip}\n`;
      // Start early in a step, so that step S stays a live candidate for the next ~55 s.
      await until(() => Date.now() % STEP_MS < 2_000, STEP_MS + 1_000, 200);
      let step = 0;
      let seqS: number[] = [];

      await t.step("alice's client knocks (step S) and is unlocked", async () => {
        const r = await knock(l, "client", ["--transport", "tcp"]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.ok(
          await until(
            async () => /success user=alice ip=203\.0\.113\.10 /.test(await readLog(l)),
            5000,
          ),
          await readLog(l),
        );
        step = Number(
          /success user=alice ip=203\.0\.113\.10 .*step=(\d+)/.exec(await readLog(l))![1],
        );
        seqS = await sequenceAt(step);
        assert.equal(await curl(l, "client", `http://${W}:52201/`), hello(C));
      });

      await t.step("after a restart the replay from client2 is refused", async () => {
        await l.restartAppliance();
        // The unlock was persisted as it happened: the client is still unlocked.
        assert.equal(await curl(l, "client", `http://${W}:52201/`), hello(C));
        const before = await count(l, replayLine(C2, step, C));
        await sendKnocks(l, "client2", C2, seqS);
        assert.ok(await grows(l, replayLine(C2, step, C), before), await readLog(l));
        assert.equal(await curl(l, "client2", `http://${W}:52201/`, 2), null);
      });

      await t.step("after a knock-settings change through the API it is refused", async () => {
        const r = await api(l, "PATCH", "/settings", {
          token,
          body: { idleTimeoutSeconds: 10, knock: { sequenceWindowSeconds: 12 } },
        });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.ok(await until(async () => /\[Config\] changed/.test(await readLog(l)), 5000));
        const before = await count(l, replayLine(SPOOFED, step, C));
        await sendKnocks(l, "client2", SPOOFED, seqS); // spoofed from 203.0.113.0/24
        assert.ok(await grows(l, replayLine(SPOOFED, step, C), before), await readLog(l));
        assert.doesNotMatch(await readLog(l), new RegExp(`success user=alice ip=${re(SPOOFED)}`));
      });

      await t.step("after a revoke the same client's replay is refused", async () => {
        // A fresh step (S + 1, a drift of +1) from the client, then the operator revokes it.
        const seq1 = await sequenceAt(step + 1);
        const ok = await count(l, successLine(C, step + 1));
        await sendKnocks(l, "client", C, seq1);
        assert.ok(await grows(l, successLine(C, step + 1), ok), await readLog(l));
        const revoked = await api(l, "DELETE", `/status/unlocks/${C}`, { token });
        assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
        assert.equal(await curl(l, "client", `http://${W}:52201/`, 2), null);
        const before = await count(l, replayLine(C, step + 1, C));
        await sendKnocks(l, "client", C, seq1);
        assert.ok(await grows(l, replayLine(C, step + 1, C), before), await readLog(l));
        assert.equal(await curl(l, "client", `http://${W}:52201/`, 2), null);
      });

      await t.step("after expiry (10 s idle) the same client's replay is refused", async () => {
        // Step S + 2 becomes a candidate once the clock is in S + 1.
        await until(() => Math.floor(Date.now() / STEP_MS) > step, STEP_MS + 1_000, 200);
        const seq2 = await sequenceAt(step + 2);
        const ok = await count(l, successLine(C2, step + 2));
        await sendKnocks(l, "client2", C2, seq2);
        assert.ok(await grows(l, successLine(C2, step + 2), ok), await readLog(l));
        const idle = new RegExp(`\\[Port Lock\\] ip=${re(C2)} user=alice reason=idle`);
        assert.ok(await grows(l, idle, 0, 25_000), await readLog(l));
        await sleep(200);
        const before = await count(l, replayLine(C2, step + 2, C2));
        await sendKnocks(l, "client2", C2, seq2);
        assert.ok(await grows(l, replayLine(C2, step + 2, C2), before), await readLog(l));
        assert.equal(await curl(l, "client2", `http://${W}:52201/`, 2), null);
      });
    } finally {
      await lab?.down();
      await removeTestConfig(config);
    }
  },
});
