/**
 * The configuration lifecycle on a running appliance: SIGHUP re-reads the
 * file (an allow-list edit takes effect at once, a device edit is named as
 * needing a restart, the process lives on); `deno task config export`, the
 * store wiped with its key, `deno task config import --key` restores a
 * working appliance (the knock opens the forward, the administrator signs in
 * with the old credentials); and a rule edited in the file after the first
 * start is named at the next start as differing from the store.
 */
import assert from "node:assert/strict";
import { type RunningLab, startLab } from "../../scripts/lab/appliance.ts";
import { LAB } from "../../scripts/lab/topology.ts";
import { totpCode } from "../../src/knock/totp.ts";
import {
  appliancePid,
  curl,
  knock,
  labCert,
  labSupported,
  readLog,
  removeTestConfig,
  ROOT,
  sh,
  status,
  waitForLog,
  writeTestConfig,
} from "./_helpers.ts";

const W = LAB.wan;
const HELLO_C = `hello from ${LAB.server}:8080 to ${LAB.client}\n`;

/** `deno task config ARGS` on the host, as the README writes it. */
async function configTask(...args: string[]): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", "config", ...args],
    cwd: ROOT,
    env: { DENO_NO_UPDATE_CHECK: "1" },
  }).output();
  const dec = new TextDecoder();
  assert.equal(out.code, 0, `config ${args.join(" ")}: ${dec.decode(out.stderr)}`);
  return dec.decode(out.stdout);
}

/** Edits the config file in place; throws when `from` is not there. */
async function editFile(file: string, from: string | RegExp, to: string): Promise<void> {
  const text = await Deno.readTextFile(file);
  const next = text.replace(from, to);
  assert.notEqual(next, text, `${from} not in ${file}`);
  await Deno.writeTextFile(file, next);
}

/** Signs in from the LAN with the bootstrap administrator's credentials in the log. */
async function signInStatus(lab: RunningLab): Promise<number> {
  const m = (await readLog(lab)).match(/user=(\S+) password=(\S+) totp-secret=([A-Z2-7]+)/);
  assert.ok(m, "no initial administrator in the log");
  const code = totpCode(m[3], Math.floor(Date.now() / 1000));
  const r = await sh(lab, "server", [
    "curl",
    "--cacert",
    labCert(lab),
    "-sS",
    "-m",
    "10",
    "-o",
    "/dev/null",
    "-w",
    "%{http_code}",
    "-H",
    "Content-Type: application/json",
    "--data",
    JSON.stringify({ username: m[1], password: m[2], code }),
    `https://${LAB.lan}:8443/api/v1/auth/login`,
  ], 15);
  return Number(r.stdout);
}

Deno.test({
  name: "lab: config lifecycle (SIGHUP reload, export -> wipe -> import, start-time drift)",
  ignore: !labSupported(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const config = await writeTestConfig();
    const dir = config.slice(0, config.lastIndexOf("/"));
    let lab: RunningLab | null = null;
    try {
      lab = await startLab({ config });
      const l = lab;
      const kv = `${l.stateDir}/knockgate.kv`;

      await t.step(
        "SIGHUP applies the file's allow-list and names what needs a restart",
        async () => {
          assert.equal(await curl(l, "client", `http://${W}:52201/`, 2), null);
          await editFile(config, /"allow":\s*\[\]/, `"allow": ["${LAB.client}/32"]`);
          await editFile(config, /"mtu":\s*1500/, `"mtu": 1400`);
          const pid = await appliancePid(l);
          Deno.kill(pid, "SIGHUP");
          const done = await waitForLog(l, /^reload: .* read; applied admission\.allow/);
          assert.ok(done, `no reload line:\n${await readLog(l)}`);
          assert.ok(await waitForLog(l, /^reload: tun\.mtu needs a restart$/, 1000));
          assert.equal(await curl(l, "client", `http://${W}:52201/`), HELLO_C);
          assert.equal(await appliancePid(l), pid, "SIGHUP ended the appliance");
          await status(l); // still answering signals
          // A file that does not load changes nothing, and the process lives on.
          await editFile(config, `"mtu": 1400`, `"mtu": 100`);
          Deno.kill(pid, "SIGHUP");
          assert.ok(await waitForLog(l, /^reload: .* not applied, nothing changed/));
          assert.equal(await curl(l, "client", `http://${W}:52201/`), HELLO_C);
          await editFile(config, `"mtu": 100`, `"mtu": 1400`);
          await editFile(config, `"allow": ["${LAB.client}/32"]`, `"allow": []`);
          await editFile(config, `"mtu": 1400`, `"mtu": 1500`);
        },
      );

      await t.step("export, wipe the store and its key, import --key: it works again", async () => {
        await l.stopAppliance();
        await configTask(
          "export",
          "--",
          "--config",
          config,
          "--store",
          kv,
          "--out",
          `${dir}/b.json`,
        );
        const backup = JSON.parse(await Deno.readTextFile(`${dir}/b.json`));
        assert.deepEqual(backup.users.map((u: { name: string }) => u.name).sort(), [
          "admin",
          "alice",
        ]);
        await Deno.rename(`${kv}.key`, `${dir}/old.key`);
        for (const f of [kv, `${kv}-wal`, `${kv}-shm`]) await Deno.remove(f).catch(() => {});
        const out = await configTask(
          "import",
          `${dir}/b.json`,
          "--",
          "--config",
          config,
          "--store",
          kv,
          "--key",
          `${dir}/old.key`,
        );
        assert.match(out, /imported 2 user\(s\), 4 rule\(s\) and the settings .*re-sealed/);
        const admins = (await readLog(l)).split("Initial administrator").length - 1;
        await l.startAppliance();
        // The restored administrator stands: no new one is made.
        assert.equal((await readLog(l)).split("Initial administrator").length - 1, admins);
        assert.equal(await curl(l, "client", `http://${W}:52201/`, 2), null);
        const r = await knock(l, "client", ["--transport", "tcp"]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(await curl(l, "client", `http://${W}:52201/`), HELLO_C);
        assert.equal(await signInStatus(l), 200);
      });

      await t.step("a rule edited in the file is named at the next start", async () => {
        await l.stopAppliance();
        await editFile(config, `"publicPorts": "52201"`, `"publicPorts": "52204"`);
        await l.startAppliance();
        const line = await waitForLog(l, /^config: forward "web" in .* differs from the store/);
        assert.ok(line, `no drift warning:\n${await readLog(l)}`);
        assert.match(line, /\(publicPorts 52204 vs 52201\); the store's is in force/);
        // The store's rule is in force.
        assert.equal(await curl(l, "client", `http://${W}:52201/`), HELLO_C);
      });
    } finally {
      await lab?.down();
      await removeTestConfig(config);
    }
  },
});
