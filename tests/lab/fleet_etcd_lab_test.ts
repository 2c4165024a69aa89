/**
 * Lab test of a fleet: two appliances, A and B, each in its own lab
 * (namespaces, TUN, client and server; the same addressing, so the same
 * client address knocks at A and connects through B), sharing one real
 * 3-member etcd cluster started by the test on the host's loopback. Each
 * appliance reaches the members through a relay: a loopback listener in its
 * namespace per member, joined over Unix sockets to the members
 * (`_unix_relay.ts`), so no link into the host's network is made.
 *
 * What it shows: a user created on A signs in on B; a knock at A opens the
 * forward through B (the time is measured and printed, not asserted); the
 * fleet shares replay memory and penalties: the sequence replayed from
 * another IP at B is refused, the same step knocked at A and at B at once
 * unlocks exactly one of them, a source penalised at A is penalised at B;
 * both nodes list each other up; one etcd member killed (the leader): writes and
 * their propagation go on; every member killed: B is degraded (health and
 * metrics say so, the dashboard shows the banner, writes and revocations
 * 503) and still forwards for the unlock it knows, while a new knock is
 * refused (its step cannot be claimed: fail closed); members back: B catches
 * up and writes again; a revocation on B ends the unlock at A; A stopped: B
 * shows it down. Skipped without root, /dev/net/tun or etcd-server.
 */
import assert from "node:assert/strict";
import { type RunningLab, startLab } from "../../scripts/lab/appliance.ts";
import { LAB } from "../../scripts/lab/topology.ts";
import type { KnockClaimStats } from "../../src/api/fleet.ts";
import { totpCode } from "../../src/knock/totp.ts";
import { etcdInstalled, withEtcdCluster } from "../../src/store/_etcd_cluster.ts";
import { api, signIn } from "./_api.ts";
import { etcdLabConfig, EtcdRelays } from "./_etcd_relay.ts";
import {
  curl,
  knock,
  labCert,
  labSupported,
  re,
  readLog,
  removeTestConfig,
  scrapeMetrics,
  sequenceAt,
  sh,
  sleep,
  spoofSyns,
  status,
  until,
} from "./_helpers.ts";

const W = LAB.wan, C = LAB.client, C2 = LAB.client2;
const STEP_MS = 30_000;
const HELLO = `hello from ${LAB.server}:8080 to ${C}\n`;
const FORWARD = `http://${W}:52201/`;

interface StoreState {
  backend: string;
  connected: boolean;
  lastContactMs: number;
  revision: number;
}

async function health(lab: RunningLab): Promise<StoreState | null> {
  const r = await api<{ store?: StoreState }>(lab, "GET", "/health").catch(() => null);
  return r?.status === 200 ? r.body.store ?? null : null;
}

async function unlockedIps(lab: RunningLab, token: string): Promise<string[]> {
  const r = await api<{ unlocks: { ip: string }[] }>(lab, "GET", "/status/unlocks", { token });
  return r.status === 200 ? r.body.unlocks.map((u) => u.ip) : [];
}

async function userNames(lab: RunningLab, token: string): Promise<string[]> {
  const r = await api<{ users: { name: string }[] }>(lab, "GET", "/users", { token });
  return r.status === 200 ? r.body.users.map((u) => u.name) : [];
}

/** The value of counter `knockgate_<name>` in `lab`'s /metrics, or -1. */
async function metric(lab: RunningLab, token: string, name: string): Promise<number> {
  const text = await scrapeMetrics(lab, token).catch(() => "");
  const m = new RegExp(`^knockgate_${name} (\\d+)`, "m").exec(text);
  return m ? Number(m[1]) : -1;
}

/** Sends `ports` as SYNs from `src` out of `ns` to the WAN address, 100 ms apart. */
async function sendKnocks(
  lab: RunningLab,
  ns: "client" | "client2",
  src: string,
  ports: number[],
): Promise<void> {
  await spoofSyns(lab, ns, { dst: W, sources: { first: src, count: 1 }, ports, pps: 10 }, 30);
}

/** `[Port Knock]` lines of `lab` for alice's `step`: who succeeded, who was refused as a replay. */
async function knockLines(lab: RunningLab, step: number) {
  const log = await readLog(lab);
  const ips = (kind: string) =>
    [...log.matchAll(
      new RegExp(`\\[Port Knock\\] ${kind} user=alice ip=(\\S+) .*step=${step}\\b`, "g"),
    )]
      .map((m) => m[1]);
  return { success: ips("success"), replay: ips("replay") };
}

/** A page of the web UI with the cookies of `jar`: its HTTP status and HTML. */
async function page(lab: RunningLab, path: string, jar: string) {
  const url = `https://${LAB.lan}:8443${path}`;
  const argv = ["curl", "--cacert", labCert(lab), "-sS", "-m", "10", "-b", jar];
  const r = await sh(lab, "server", [...argv, "-w", "\n%{http_code}", url], 15);
  const nl = r.stdout.lastIndexOf("\n");
  return { status: Number(r.stdout.slice(nl + 1)), html: r.stdout.slice(0, nl) };
}

/** Posts a UI form as the page's script does (cookies of `jar`, its CSRF token). */
async function postForm(
  lab: RunningLab,
  path: string,
  jar: string,
  csrf: string,
  fields: [string, string][],
) {
  const argv = ["curl", "--cacert", labCert(lab), "-sS", "-m", "10", "-b", jar];
  argv.push("-H", `X-CSRF-Token: ${csrf}`, "-H", "KG-Request: 1");
  for (const [k, v] of fields) argv.push("--data-urlencode", `${k}=${v}`);
  const url = `https://${LAB.lan}:8443${path}`;
  const r = await sh(lab, "server", [...argv, "-w", "\n%{http_code}", url], 15);
  const nl = r.stdout.lastIndexOf("\n");
  return { status: Number(r.stdout.slice(nl + 1)), html: r.stdout.slice(0, nl) };
}

/**
 * Polls `check` until true (bounded) and says when it turned true, from now:
 * after the start of the last poll that missed it and before the end of the
 * first that saw it (`120-480 ms`; one poll, a curl in a namespace, takes a
 * few hundred ms on the shared cores). Throws naming `what` after `ms`.
 */
async function timed(what: string, check: () => Promise<boolean>, ms: number): Promise<string> {
  const t0 = performance.now();
  let missed = 0;
  while (performance.now() - t0 < ms) {
    const start = performance.now() - t0;
    if (await check().catch(() => false)) {
      return `${Math.round(missed)}-${Math.round(performance.now() - t0)} ms`;
    }
    missed = start;
    await sleep(25);
  }
  throw new Error(`${what}: not within ${ms} ms`);
}

Deno.test({
  name: "lab: fleet of two appliances on a 3-member etcd cluster (sync, knock, degraded, recovery)",
  ignore: !labSupported() || !etcdInstalled(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    await withEtcdCluster(async (cluster) => {
      const endpoints = cluster.endpoints;
      const prefix = `/kgfleet-${crypto.randomUUID().slice(0, 8)}/`;
      const config = await etcdLabConfig(endpoints, prefix);
      let relays: EtcdRelays | null = null;
      const labs: RunningLab[] = [];
      const figures: string[] = [];
      try {
        relays = await EtcdRelays.start(cluster);
        for (const name of ["kg-a", "kg-b"]) {
          const lab = await startLab({ config, appliance: false, args: ["--node-name", name] });
          labs.push(lab);
          await relays.join(lab);
        }
        const [a, b] = labs;
        await a.startAppliance();
        // Enrolment: B gets A's key file before its first start (docs/cluster.md).
        await Deno.copyFile(`${a.stateDir}/knockgate.kv.key`, `${b.stateDir}/knockgate.kv.key`);
        await Deno.chmod(`${b.stateDir}/knockgate.kv.key`, 0o600);
        await b.startAppliance();
        // Sessions and tokens are shared: one token signs every request to either node.
        const token = await signIn(a);
        const carolJar = `${b.stateDir}/carol.jar`;
        let carolCsrf = "";
        /** The step of the client's first knock (S). */
        let step = 0;

        await t.step("a user created on A signs in on B", async () => {
          const password = "carol-password-1";
          const made = await api<{ enrollment: { secret: string } }>(a, "POST", "/users", {
            token,
            body: { name: "carol", password, role: "administrator" },
          });
          assert.equal(made.status, 201, JSON.stringify(made.body));
          const secret = made.body.enrollment.secret;
          const code = () => totpCode(secret, Math.floor(Date.now() / 1000));
          const v = await api(a, "POST", "/users/carol/mfa/verify", {
            token,
            body: { code: code() },
          });
          assert.equal(v.status, 200, JSON.stringify(v.body));
          const login = await api(b, "POST", "/auth/login", {
            jar: carolJar,
            body: { username: "carol", password, code: code() },
          });
          assert.equal(login.status, 200, JSON.stringify(login.body));
          carolCsrf = String(login.body.csrfToken);
        });

        await t.step("the same first knock port created at once on A and B: one wins", async () => {
          const body = (name: string) => ({
            name,
            password: `${name}-password-1`,
            role: "viewer",
            knock: { enabled: true, firstPort: 47311 },
          });
          const [onA, onB] = await Promise.all([
            api(a, "POST", "/users", { token, body: body("frank") }),
            api(b, "POST", "/users", { token, body: body("grace") }),
          ]);
          const codes = [onA.status, onB.status].sort();
          assert.deepEqual(codes, [201, 409], JSON.stringify([onA.body, onB.body]));
          const lost = onA.status === 409 ? onA.body : onB.body;
          assert.match(JSON.stringify(lost), /firstPort/);
          const winner = onA.status === 201 ? "frank" : "grace";
          const loser = winner === "frank" ? "grace" : "frank";
          for (const node of [a, b]) {
            const names = async () =>
              (await api<{ users: { name: string }[] }>(node, "GET", "/users", { token })).body
                .users
                .map((u) => u.name);
            // The node that did not write it learns it from its watch (within a second).
            assert.ok(await until(async () => (await names()).includes(winner), 5000), winner);
            assert.ok(!(await names()).includes(loser), `${loser} exists nowhere`);
          }
        });

        await t.step("a knock at A opens the forward through B", async () => {
          assert.equal(await curl(b, "client", FORWARD, 2), null, "B forwarded before a knock");
          const k = await knock(a, "client", ["--transport", "tcp"]);
          assert.equal(k.code, 0, k.stdout + k.stderr);
          // Both polled at once: A's own time to take the knock, and B's to learn it.
          const [atA, atB] = await Promise.all([
            timed("the unlock at A", async () => (await unlockedIps(a, token)).includes(C), 10_000),
            timed("the unlock at B", async () => (await unlockedIps(b, token)).includes(C), 10_000),
          ]);
          // The claim's part: the knock completing in A's data plane to the answer sent back to it.
          const claimed = (await status(a) as unknown as { claims: KnockClaimStats }).claims;
          assert.ok(claimed.granted >= 1, JSON.stringify(claimed));
          figures.push(
            `knock at A (client exited) to listed at A: ${atA}, at B: ${atB}; ` +
              `A's claim (completed to answered): ${claimed.lastMs} ms`,
          );
          assert.equal(await curl(b, "client", FORWARD), HELLO);
          const m = /success user=alice ip=203\.0\.113\.10 .*step=(\d+)/.exec(await readLog(a));
          assert.ok(m, await readLog(a));
          step = Number(m[1]);
        });

        await t.step(
          "the sequence captured at A, replayed from another IP at B: refused",
          async () => {
            const seq = await sequenceAt(step);
            await sendKnocks(b, "client2", C2, seq);
            assert.ok(
              await until(async () => (await knockLines(b, step)).replay.includes(C2), 5000),
              await readLog(b),
            );
            assert.match(
              await readLog(b),
              new RegExp(`replay user=alice ip=${re(C2)} step=${step} first-ip=${re(C)}`),
            );
            assert.deepEqual((await knockLines(b, step)).success, []);
            assert.equal(await curl(b, "client2", FORWARD, 2), null);
            assert.equal(await curl(a, "client2", FORWARD, 2), null);
          },
        );

        await t.step(
          "the same step knocked at A and at B at once: exactly one unlocks",
          async () => {
            // Step S + 1 (a drift of +1): a live candidate for the next ~45 s, used by nobody yet.
            const race = step + 1;
            const seq = await sequenceAt(race);
            await Promise.all([sendKnocks(a, "client", C, seq), sendKnocks(b, "client2", C2, seq)]);
            let atA = { success: [] as string[], replay: [] as string[] }, atB = atA;
            assert.ok(
              await until(async () => {
                [atA, atB] = await Promise.all([knockLines(a, race), knockLines(b, race)]);
                return atA.success.length + atA.replay.length > 0 &&
                  atB.success.length + atB.replay.length > 0;
              }, 5000),
              `${await readLog(a)}\n${await readLog(b)}`,
            );
            const winners = [...atA.success, ...atB.success];
            assert.equal(winners.length, 1, JSON.stringify({ atA, atB }));
            const [loser, loserIp] = winners[0] === C ? [b, C2] : [a, C];
            assert.deepEqual([...atA.replay, ...atB.replay], [loserIp]);
            figures.push(`step S+1 knocked at once at A (${C}) and B (${C2}): ${winners[0]} won`);
            if (loserIp === C2) assert.equal(await curl(loser, "client2", FORWARD, 2), null);
            else {assert.equal(
                await curl(b, "client2", FORWARD),
                `hello from ${LAB.server}:8080 to ${C2}\n`,
              );}
          },
        );

        await t.step("a source penalised at A is penalised at B", async () => {
          // 203.0.113.77 fails 6 times at A (F, then 9 strays: 8 are tolerated): past 5, a penalty.
          const bad = "203.0.113.77";
          const strays = Array.from({ length: 9 }, (_, i) => 2000 + i);
          const fail = [41001, ...strays];
          await sendKnocks(a, "client2", bad, Array.from({ length: 6 }, () => fail).flat());
          assert.ok(
            await until(
              async () => new RegExp(`penalty ip=${re(bad)}`).test(await readLog(a)),
              8000,
            ),
            await readLog(a),
          );
          const t0 = performance.now();
          // At B one failure, then a knock on F: a penalised source gets one start per 30 s.
          const before = await metric(b, token, "knock_penalised_total");
          await sendKnocks(b, "client2", bad, [...fail, 41001]);
          assert.ok(
            await until(
              async () => (await metric(b, token, "knock_penalised_total")) > before,
              5000,
            ),
            await readLog(b),
          );
          figures.push(
            `penalty at A, then F at B refused as penalised: ${
              Math.round(performance.now() - t0)
            } ms (10 knocks at 10/s included)`,
          );
        });

        await t.step("both nodes are registered and up", async () => {
          const r = await api<{ nodes: { name: string; up: boolean; self: boolean }[] }>(
            b,
            "GET",
            "/nodes",
            { token },
          );
          assert.equal(r.status, 200, JSON.stringify(r.body));
          assert.deepEqual(
            r.body.nodes.map((n) => [n.name, n.up, n.self]),
            [["kg-a", true, false], ["kg-b", true, true]],
          );
        });

        await t.step("one etcd member killed (the leader): nothing noticed", async () => {
          await cluster.kill(await cluster.leader());
          const made = await api(a, "POST", "/users", {
            token,
            body: { name: "dave", password: "dave-password-1", role: "viewer" },
          });
          assert.equal(made.status, 201, JSON.stringify(made.body));
          const ms = await timed(
            "dave at B",
            async () => (await userNames(b, token)).includes("dave"),
            10_000,
          );
          figures.push(`one member down: a user created on A listed at B after ${ms}`);
          assert.equal((await health(b))?.connected, true);
          assert.equal(await curl(b, "client", FORWARD), HELLO);
        });

        await t.step("every member killed: B degraded, still forwarding, writes 503", async () => {
          for (let i = 0; i < 3; i++) await cluster.kill(i);
          const ms = await timed(
            "B degraded",
            async () => (await health(b))?.connected === false,
            20_000,
          );
          figures.push(`every member killed: B reports degraded after ${ms}`);
          const h = await api<{ status: string; store: StoreState }>(b, "GET", "/health");
          assert.equal(h.status, 200);
          assert.equal(h.body.status, "ok");
          assert.equal(h.body.store.backend, "etcd");
          // The unlock B knows still admits new connections.
          assert.equal(await curl(b, "client", FORWARD), HELLO);
          // A new knock is refused: its step cannot be claimed (fail closed), logged once.
          const now = Math.floor(Date.now() / STEP_MS);
          const fresh = now + 1 > step + 1 ? now + 1 : step - 1;
          const unreachable = await metric(b, token, "knock_claims_unreachable_total");
          await sendKnocks(b, "client2", "203.0.113.30", await sequenceAt(fresh));
          assert.ok(
            await until(
              async () => (await metric(b, token, "knock_claims_unreachable_total")) > unreachable,
              8000,
            ),
            await readLog(b),
          );
          assert.match(await readLog(b), /knock claims refused: .*fail closed/);
          assert.deepEqual((await knockLines(b, fresh)).success, []);
          const write = await api<{ error: { code: string } }>(b, "POST", "/users", {
            token,
            body: { name: "erin", password: "erin-password-1", role: "viewer" },
          });
          assert.equal(write.status, 503, JSON.stringify(write.body));
          assert.equal(write.body.error.code, "store_unavailable");
          const revoke = await api(b, "DELETE", `/status/unlocks/${C}`, { token });
          assert.equal(revoke.status, 503, JSON.stringify(revoke.body));
          const metrics = await sh(b, "server", [
            "curl",
            "--cacert",
            labCert(b),
            "-sS",
            "-m",
            "10",
            "-H",
            `Authorization: Bearer ${token}`,
            `https://${LAB.lan}:8443/metrics`,
          ]);
          assert.match(metrics.stdout, /^knockgate_store_connected\{backend="etcd"\} 0$/m);
          assert.match(metrics.stdout, /^knockgate_store_last_contact_seconds\{backend="etcd"\} /m);
          const dash = await page(b, "/", carolJar);
          assert.equal(dash.status, 200, dash.html.slice(0, 500));
          assert.match(dash.html, /Store unreachable: changes refused\./);
          // A refused form comes back whole, with the store's message in its alert.
          const form = await postForm(b, "/users/new", carolJar, carolCsrf, [
            ["name", "erin"],
            ["password", "erin-password-1"],
            ["role", "viewer"],
            ["allowedRules", "*"],
          ]);
          assert.equal(form.status, 503, form.html.slice(0, 500));
          assert.match(form.html, /^<div id="user-new"><form id="user-form"/);
          assert.match(form.html, /degraded mode/);
        });

        await t.step("members back: B catches up and writes again", async () => {
          for (let i = 0; i < 3; i++) cluster.restart(i);
          await cluster.waitHealthy();
          const ms = await timed(
            "B connected",
            async () => (await health(b))?.connected === true,
            30_000,
          );
          figures.push(`members restarted (healthy) to B connected: ${ms}`);
          const made = await api(b, "POST", "/users", {
            token,
            body: { name: "erin", password: "erin-password-1", role: "viewer" },
          });
          assert.equal(made.status, 201, JSON.stringify(made.body));
          const erin = await timed(
            "erin at A",
            async () => (await userNames(a, token)).includes("erin"),
            10_000,
          );
          figures.push(`after recovery: a user created on B listed at A after ${erin}`);
          const dash = await page(b, "/", carolJar);
          assert.doesNotMatch(dash.html, /Store unreachable/);
        });

        await t.step("a revocation on B ends the unlock at A", async () => {
          assert.ok((await unlockedIps(a, token)).includes(C));
          const r = await api(b, "DELETE", `/status/unlocks/${C}`, { token });
          assert.equal(r.status, 200, JSON.stringify(r.body));
          const ms = await timed(
            "the unlock gone at A",
            async () => !(await unlockedIps(a, token)).includes(C),
            10_000,
          );
          figures.push(`revoked on B to gone at A: ${ms}`);
          assert.equal(await curl(a, "client", FORWARD, 2), null);
          assert.equal(await curl(b, "client", FORWARD, 2), null);
        });

        await t.step("A stopped: B shows it down after three heartbeats", async () => {
          await a.stopAppliance();
          const ms = await timed("A shown down", async () => {
            const r = await api<{ nodes: { name: string; up: boolean }[] }>(b, "GET", "/nodes", {
              token,
            });
            return r.body.nodes?.find((n) => n.name === "kg-a")?.up === false;
          }, 30_000);
          figures.push(`A stopped to shown down at B: ${ms} (3 heartbeats of 5 s)`);
        });
        console.log(`fleet figures:\n  ${figures.join("\n  ")}`);
      } catch (err) {
        for (const lab of labs) {
          console.error(
            `--- ${lab.names.appliance} log ---\n${
              (await Deno.readTextFile(lab.logFile).catch(() => "")).slice(-4000)
            }`,
          );
        }
        throw err;
      } finally {
        for (const lab of labs) await lab.down();
        await relays?.close();
        await removeTestConfig(config);
      }
    });
  },
});
