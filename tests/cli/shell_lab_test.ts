/**
 * The shell against the real appliance in the lab: alice knocks from the
 * client namespace, then the shell, run one-shot in the LAN server's
 * namespace, signs in as the bootstrap administrator (password and TOTP
 * code from the appliance log) and `exec portknock` lists 203.0.113.10 for
 * alice; `unlock revoke` ends it. Needs root and /dev/net/tun.
 */
import assert from "node:assert/strict";
import { type RunningLab, startLab } from "../../scripts/lab/appliance.ts";
import { LAB } from "../../scripts/lab/topology.ts";
import { totpCode } from "../../src/knock/totp.ts";
import { knock, labSupported, ROOT, sh, until, waitForLog } from "../lab/_helpers.ts";

const URL = `https://${LAB.lan}:8443`;

/** Runs the shell one-shot in the server namespace with its config dir in `home`. */
function shell(lab: RunningLab, home: string, ...args: string[]) {
  return sh(lab, "server", [
    "env",
    `XDG_CONFIG_HOME=${home}`,
    Deno.execPath(),
    "run",
    "-A",
    `${ROOT}src/cli/shell.ts`,
    ...args,
  ], 30);
}

/** The management certificate's fingerprint as the appliance printed it at start. */
async function printedFingerprint(lab: RunningLab): Promise<string> {
  const line = await waitForLog(lab, /SHA-256 fingerprint /, 10_000);
  const m = /SHA-256 fingerprint ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})/.exec(line ?? "");
  assert.ok(m, `no fingerprint in the log: ${line}`);
  return m[1];
}

/** The bootstrap administrator from the appliance log. */
async function initialAdmin(lab: RunningLab) {
  const line = await waitForLog(lab, /Initial administrator \(shown once\):/, 10_000);
  const m = /user=(\S+) password=(\S+) totp-secret=([A-Z2-7]+)/.exec(line ?? "");
  assert.ok(m, `no initial administrator in the log: ${line}`);
  return { user: m[1], password: m[2], secret: m[3] };
}

Deno.test({
  name:
    "lab: the shell pins the printed fingerprint (a wrong pin and no pin are refused); exec portknock shows a real knock's unlock; unlock revoke ends it",
  ignore: !labSupported(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const home = await Deno.makeTempDir({ prefix: "kgt-shell-lab-" });
    let lab: RunningLab | null = null;
    try {
      lab = await startLab();
      const admin = await initialAdmin(lab);

      const k = await knock(lab, "client");
      assert.equal(k.code, 0, `knock failed: ${k.stdout}${k.stderr}`);

      const fingerprint = await printedFingerprint(lab);
      const wrong = fingerprint.replace(/^../, fingerprint.startsWith("00") ? "11" : "00");
      const creds = ["login", admin.user, "-p", admin.password, "-c", "000000"];
      const refused = await shell(lab, home, "--url", URL, "--fingerprint", wrong, ...creds);
      assert.equal(refused.code, 1, refused.stdout + refused.stderr);
      assert.match(
        refused.stderr,
        /Refusing https:\/\/192\.0\.2\.1:8443: its certificate's SHA-256/,
      );
      const unpinned = await shell(lab, home, "--url", URL, ...creds);
      assert.equal(unpinned.code, 1, unpinned.stdout + unpinned.stderr);
      assert.match(unpinned.stderr, /Cannot reach .*--fingerprint/);

      const code = totpCode(admin.secret, Math.floor(Date.now() / 1000));
      const login = await shell(
        lab,
        home,
        "--url",
        URL,
        "--fingerprint",
        fingerprint,
        "login",
        admin.user,
        "-p",
        admin.password,
        "-c",
        code,
      );
      assert.equal(login.code, 0, `login failed: ${login.stdout}${login.stderr}`);
      assert.match(
        login.stdout,
        /Signed in to https:\/\/192\.0\.2\.1:8443 as admin \(administrator\)/,
      );
      const file = `${home}/knockgate/shell.json`;
      assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600);
      assert.equal(JSON.parse(await Deno.readTextFile(file)).fingerprint, fingerprint);

      // The saved URL and token serve the next commands; the unlock may take a moment.
      let table = "";
      const listed = await until(
        async () => {
          const r = await shell(lab!, home, "exec", "portknock");
          table = r.stdout + r.stderr;
          return r.code === 0 && table.includes(LAB.client);
        },
        15_000,
        500,
      );
      assert.ok(listed, `exec portknock never listed ${LAB.client}:\n${table}`);
      const row = table.split("\n").find((l) => l.includes(LAB.client))!;
      // The WAN address the knock arrived on ("-" from a data plane that does not say).
      assert.match(row, /│ 203\.0\.113\.10 +│ (198\.51\.100\.1|-) +│ alice +│/);

      const json = await shell(lab, home, "exec", "portknock", "--json");
      assert.equal(json.code, 0, json.stderr);
      const unlocks = JSON.parse(json.stdout).unlocks as { ip: string; user: string }[];
      assert.deepEqual(unlocks.filter((u) => u.ip === LAB.client).map((u) => u.user), ["alice"]);

      const status = await shell(lab, home, "status", "--json");
      assert.equal(status.code, 0, status.stderr);
      assert.ok(JSON.parse(status.stdout).unlocks >= 1);

      const revoke = await shell(lab, home, "unlock", "revoke", LAB.client);
      assert.equal(revoke.code, 0, revoke.stderr);
      assert.match(revoke.stdout, /Revoked the unlock of 203\.0\.113\.10 \(user alice\)/);
      const after = await shell(lab, home, "exec", "portknock");
      assert.ok(!after.stdout.includes(LAB.client), after.stdout);
    } finally {
      await lab?.down();
      await Deno.remove(home, { recursive: true });
    }
  },
});
