/**
 * The systemd service: scripts/install.sh into a temp root (the DESTDIR
 * convention: files in DIR, paths inside them as on the real system), the
 * installed unit passing `systemd-analyze verify` with no complaint, the
 * installed appliance running from a read-only /opt, an upgrade keeping the
 * config, and uninstall (--purge) leaving nothing behind.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url).pathname;
const INSTALL = `${ROOT}scripts/install.sh`;

async function run(argv: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, text: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

function has(cmd: string): boolean {
  try {
    return new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`], stdout: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    out.push(e.name);
    if (e.isDirectory) out.push(...(await tree(`${dir}/${e.name}`)).map((p) => `${e.name}/${p}`));
  }
  return out.sort();
}

Deno.test({
  name:
    "install.sh into a temp root: the unit verifies, the appliance runs, uninstall leaves nothing",
  ignore: Deno.uid() !== 0 || !has("systemd-analyze") || !has("unshare"),
  fn: async () => {
    const root = await Deno.makeTempDir({ prefix: "knockgate-install-" });
    const cache = await Deno.makeTempDir({ prefix: "knockgate-install-cache-" });
    try {
      const first = await run([INSTALL, "--root", root]);
      assert.equal(first.code, 2, "a first install without --config is refused");
      assert.match(first.text, /first install needs --config FILE/);
      assert.deepEqual(await tree(root), []);

      const inst = await run([
        INSTALL,
        "--root",
        root,
        "--config",
        `${ROOT}config/appliance.jsonc`,
      ]);
      assert.equal(inst.code, 0, inst.text);
      const unit = `${root}/etc/systemd/system/knockgate.service`;
      const conf = `${root}/etc/knockgate/appliance.jsonc`;
      assert.equal((await Deno.stat(conf)).mode! & 0o777, 0o600);
      assert.equal((await Deno.stat(`${root}/var/lib/knockgate`)).mode! & 0o777, 0o700);
      assert.ok((await Deno.stat(`${root}/opt/knockgate/bin/deno`)).isFile);

      // verify checks that ExecStart's binary exists: point the unit's /opt paths at the root.
      const text = await Deno.readTextFile(unit);
      assert.match(text, /^ExecStart=\/opt\/knockgate\/bin\/deno run /m);
      const vdir = await Deno.makeTempDir({ prefix: "knockgate-verify-" });
      try {
        await Deno.writeTextFile(
          `${vdir}/knockgate.service`,
          text.replaceAll("/opt/knockgate", `${root}/opt/knockgate`),
        );
        const v = await run(["systemd-analyze", "verify", `${vdir}/knockgate.service`]);
        assert.equal(v.code, 0, v.text);
        assert.equal(v.text.trim(), "", "systemd-analyze verify complains");
      } finally {
        await Deno.remove(vdir, { recursive: true });
      }

      // The installed tree runs as the unit runs it, with /opt read-only (ProtectSystem=strict).
      const opt = `${root}/opt/knockgate`;
      const exec = text.match(/^ExecStart=(.*)$/m)![1].replaceAll("/opt/knockgate", opt)
        .replace(/ --config .*$/, " --help");
      const ro = await run(
        ["unshare", "-m", "sh", "-c", `mount --bind -o ro ${opt} ${opt} && cd ${opt} && ${exec}`],
        { DENO_DIR: cache, DENO_NO_UPDATE_CHECK: "1", PATH: Deno.env.get("PATH") ?? "" },
      );
      assert.equal(ro.code, 0, ro.text);
      assert.match(ro.text, /^Usage: deno task start/m);

      // An upgrade (install again, no --config) replaces /opt and keeps the config.
      await Deno.writeTextFile(conf, "// edited by the operator\n", { append: true });
      const again = await run([INSTALL, "--root", root]);
      assert.equal(again.code, 0, again.text);
      assert.match(await Deno.readTextFile(conf), /edited by the operator/);
      assert.deepEqual((await tree(`${root}/opt`)).filter((p) => !p.startsWith("knockgate")), []);

      const keep = await run([INSTALL, "--root", root, "--uninstall"]);
      assert.equal(keep.code, 0, keep.text);
      assert.deepEqual(await tree(root), [
        "etc",
        "etc/knockgate",
        "etc/knockgate/appliance.jsonc",
        "var",
        "var/lib",
        "var/lib/knockgate",
      ]);
      const purge = await run([INSTALL, "--root", root, "--uninstall", "--purge"]);
      assert.equal(purge.code, 0, purge.text);
      assert.deepEqual(await tree(root), []);
    } finally {
      await Deno.remove(root, { recursive: true }).catch(() => {});
      await Deno.remove(cache, { recursive: true }).catch(() => {});
    }
  },
});
