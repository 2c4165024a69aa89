/**
 * The attack: reuse a finished connection's tuple to get past the gate. A
 * client knocks, connects through the "web" forward from a fixed source
 * port and closes; the appliance's flow sits in TIME_WAIT. While the client
 * is unlocked, a new connection from the same port reuses the tuple (the
 * control: the reuse path works in this lab). Then the unlock is revoked
 * through the API and the client connects once more from the same port,
 * within the TIME_WAIT period: it must time out, and the status counters
 * show the refused reopen.
 */
import assert from "node:assert/strict";
import { type RunningLab, startLab } from "../../scripts/lab/appliance.ts";
import { LAB } from "../../scripts/lab/topology.ts";
import { knock, labSupported, sh, until } from "./_helpers.ts";
import { api, signIn } from "./_api.ts";

/** The client's fixed source port. */
const PORT = 45123;

interface Flow {
  origSrc: string;
  origSrcPort: number;
  state: string;
  rule: string | null;
}

/** The appliance's flows from the client's fixed port. */
async function clientFlows(lab: RunningLab, token: string): Promise<Flow[]> {
  const r = await api(lab, "GET", "/status/flows?limit=1000", { token });
  return (r.body.flows as Flow[]).filter((f) => f.origSrc === LAB.client && f.origSrcPort === PORT);
}

/** Drop counters and conntrack stats from GET /status. */
async function counters(lab: RunningLab, token: string) {
  const r = await api(lab, "GET", "/status", { token });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const c = r.body.counters as { drops: Record<string, number> };
  const ct = r.body.conntrack as Record<string, number>;
  return { locked: c.drops.locked ?? 0, reopened: ct.reopened };
}

/**
 * One HTTP request from the client's fixed source port. `Connection: close`
 * makes the server close first, so the TIME_WAIT is the server's and the
 * client may bind the port again at once (curl and nc bind without
 * SO_REUSEADDR); nc reads until the server's FIN.
 */
function get(lab: RunningLab, waitSec: number) {
  const request = "GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n";
  return sh(lab, "client", [
    "sh",
    "-c",
    `printf '${request}' | nc -n -w ${waitSec} -p ${PORT} ${LAB.wan} 52201`,
  ], waitSec + 5);
}

/** Waits until the appliance holds the client's connection in TIME_WAIT. */
async function timeWait(lab: RunningLab, token: string): Promise<void> {
  let seen: Flow[] = [];
  const ok = await until(
    async () => {
      seen = await clientFlows(lab, token);
      return seen.length === 1 && seen[0].state === "TIME_WAIT";
    },
    10_000,
    200,
  );
  assert.ok(ok, `no TIME_WAIT flow from port ${PORT}: ${JSON.stringify(seen)}`);
  assert.equal(seen[0].rule, "web");
}

Deno.test({
  name: "a TIME_WAIT tuple reused after revoke stays locked",
  ignore: !labSupported(),
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const lab = await startLab();
  try {
    const token = await signIn(lab);
    const k = await knock(lab, "client");
    assert.equal(k.code, 0, k.stderr);
    const first = await get(lab, 5);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /hello from 192\.0\.2\.12:8080/);
    await timeWait(lab, token);

    const start = await counters(lab, token);
    const again = await get(lab, 5);
    assert.equal(again.code, 0, `reuse while unlocked: ${again.stderr}`);
    const reused = await counters(lab, token);
    assert.equal(reused.reopened - start.reopened, 1, "the control reused the tuple");
    assert.equal(reused.locked, start.locked);
    await timeWait(lab, token);

    const revoked = await api(lab, "DELETE", `/status/unlocks/${LAB.client}`, { token });
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    const before = await counters(lab, token);
    const late = await get(lab, 3);
    assert.notEqual(late.code, 0, `the reused tuple got through: ${late.stdout}`);
    assert.equal(late.stdout, "");
    assert.doesNotMatch(late.stderr, /in use/, "the client could not even bind its port");
    const after = await counters(lab, token);
    assert.equal(after.reopened - before.reopened, 1, "the SYN reached the TIME_WAIT flow");
    assert.ok(after.locked - before.locked >= 1, JSON.stringify({ before, after }));
    // The refused SYN killed the old flow: nothing from the port is left once it is swept.
    let left: Flow[] = [];
    assert.ok(
      await until(async () => (left = await clientFlows(lab, token)).length === 0, 5000, 200),
      JSON.stringify(left),
    );
  } finally {
    await lab.down();
  }
});
