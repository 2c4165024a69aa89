/**
 * The management plane through real HTTP in the lab: sign in from the LAN,
 * enroll a user (QR, verify the code), create a forward that enforces
 * knocking for that user, knock from the client, see the unlock in the status
 * table, revoke it, and see the client locked again. Then users, rules and
 * unlocks survive a restart of the appliance.
 */
import assert from "node:assert/strict";
import { startLab } from "../../scripts/lab/appliance.ts";
import { LAB } from "../../scripts/lab/topology.ts";
import { totpCode } from "../../src/knock/totp.ts";
import { curl, knock, labSupported, ROOT, sh, sleep } from "./_helpers.ts";
import { api, signIn } from "./_api.ts";

const BOB = { firstPort: 42001 };

Deno.test({
  name: "management plane over HTTPS in the lab",
  ignore: !labSupported(),
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  const lab = await startLab();
  try {
    const token = await signIn(lab);
    let secret = "";
    await t.step("create a user, fetch the QR, verify the code", async () => {
      const created = await api(lab, "POST", "/users", {
        token,
        body: {
          name: "bob",
          password: "a long enough password",
          role: "viewer",
          knock: { enabled: true, firstPort: BOB.firstPort, length: 3, transport: "any" },
          allowedRules: ["*"],
        },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const enrollment = created.body.enrollment as Record<string, string>;
      assert.match(enrollment.qrSvg, /<svg/);
      assert.match(enrollment.otpauthUri, /^otpauth:\/\/totp\//);
      secret = enrollment.secret;
      const wrong = await api(lab, "POST", "/users/bob/mfa/verify", {
        token,
        body: { code: "000000" },
      });
      assert.ok(wrong.status >= 400 && wrong.status < 500);
      const code = totpCode(secret, Math.floor(Date.now() / 1000));
      const ok = await api(lab, "POST", "/users/bob/mfa/verify", { token, body: { code } });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
    });
    await t.step("a forward that enforces knocking for bob only", async () => {
      const r = await api(lab, "POST", "/rules/forwards", {
        token,
        body: {
          name: "api-web",
          protocol: "tcp",
          publicPorts: { start: 52230, end: 52230 },
          privateAddress: LAB.server,
          privatePorts: { start: 8081, end: 8081 },
          enforceKnock: true,
          users: ["bob"],
        },
      });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      const bad = await api(lab, "POST", "/rules/forwards", {
        token,
        body: {
          name: "bad",
          protocol: "tcp",
          publicPorts: { start: 70000, end: 70000 },
          privateAddress: LAB.server,
        },
      });
      assert.ok(bad.status >= 400 && bad.status < 500, JSON.stringify(bad.body));
      assert.equal(await curl(lab, "client", `http://${LAB.wan}:52230/`, 3), null);
    });
    await t.step("knock as bob: the forward opens and the status table shows it", async () => {
      // Under the full suite's load a knock was lost about once in four runs (never alone;
      // not yet explained, see the closing note of issue 8): a user retries, and so does this.
      let body: string | null = null;
      for (let attempt = 1; attempt <= 3 && body === null; attempt++) {
        const k = await knock(lab, "client", [], { secret, firstPort: BOB.firstPort });
        assert.equal(k.code, 0, k.stderr);
        body = await curl(lab, "client", `http://${LAB.wan}:52230/`);
        if (body !== null) break;
        console.log(`knock as bob: attempt ${attempt} did not open the forward`);
        await sleep(16_000); // past the sequence window, so the next F starts afresh
      }
      assert.match(body ?? "", /hello from 192\.0\.2\.12:8081/);
      const unlocks = await api(lab, "GET", "/status/unlocks", { token });
      assert.equal(unlocks.status, 200);
      const list = (Array.isArray(unlocks.body) ? unlocks.body : unlocks.body.unlocks) as {
        ip: string;
        user: string;
      }[];
      assert.ok(list.some((u) => u.ip === LAB.client && u.user === "bob"), JSON.stringify(list));
    });
    await t.step("revoke: the client is locked again", async () => {
      const r = await api(lab, "DELETE", `/status/unlocks/${LAB.client}`, { token });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(await curl(lab, "client", `http://${LAB.wan}:52230/`, 3), null);
      const again = await api(lab, "DELETE", `/status/unlocks/${LAB.client}`, { token });
      assert.equal(again.status, 404);
    });
    await t.step("replies to the appliance's own NTP queries reach it", async () => {
      // An NTP-like echo on the client answers from UDP port 123.
      const echo = `import d from "node:dgram"; const s = d.createSocket("udp4");
        s.on("message", (m, r) => s.send(m, r.port, r.address)); s.bind(123, "${LAB.client}");
        setTimeout(() => Deno.exit(0), 8000);`;
      const server = new Deno.Command("ip", {
        args: ["netns", "exec", lab.names.client, Deno.execPath(), "eval", echo],
        env: { DENO_NO_UPDATE_CHECK: "1" },
        stdout: "null",
        stderr: "null",
      }).spawn();
      try {
        let got = "";
        for (let i = 0; i < 10 && !got.includes('"received":16'); i++) {
          await new Promise((r) => setTimeout(r, 300));
          const r = await sh(lab, "appliance", [
            Deno.execPath(),
            "run",
            "-A",
            `${ROOT}tests/lab/_udp_echo.ts`,
            LAB.client,
            "123",
            "16",
            "1000",
          ], 8);
          got = r.stdout;
        }
        assert.match(got, /"received":16/);
      } finally {
        try {
          server.kill();
        } catch { /* exited */ }
        await server.status;
      }
    });
    await t.step("users, rules and unlocks survive a restart", async () => {
      // The step of the revoked unlock is spent: knock the next one (a drift of +1).
      const next = ["--time", String(Math.floor(Date.now() / 1000) + 30)];
      const k = await knock(lab, "client", next, { secret, firstPort: BOB.firstPort });
      assert.equal(k.code, 0, k.stderr);
      assert.match(await curl(lab, "client", `http://${LAB.wan}:52230/`) ?? "", /hello/);
      await lab.restartAppliance();
      const users = await api(lab, "GET", "/users", { token });
      assert.equal(users.status, 200, "the token survives too");
      assert.ok(JSON.stringify(users.body).includes('"bob"'));
      const rules = await api(lab, "GET", "/rules/forwards", { token });
      assert.ok(JSON.stringify(rules.body).includes('"api-web"'));
      // Still unlocked: a new connection opens without knocking again.
      assert.match(await curl(lab, "client", `http://${LAB.wan}:52230/`) ?? "", /hello/);
    });
  } finally {
    await lab.down();
  }
});
