/**
 * The interactive shell in a real terminal (tmux) against a real API in this
 * process: the prompt, Tab completion of commands and of unlocked IPs,
 * `exec portknock` as a table, a bad command answered with usage and the
 * prompt again (no crash), history, and `exit`.
 */
import assert from "node:assert/strict";
import { startApi, UNLOCKED_IP } from "./_api.ts";
import { hasTmux, TmuxSession } from "./_tmux.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const PROMPT = "knockgate>";

/** The last non-empty line of `screen`. */
function lastLine(screen: string): string {
  return screen.split("\n").filter((l) => l !== "").at(-1) ?? "";
}

Deno.test({
  name: "shell (tmux): completion, exec portknock, a bad command, history, exit",
  ignore: !hasTmux(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const api = await startApi();
    const home = await Deno.makeTempDir({ prefix: "kgt-shell-tmux-" });
    const tmux = new TmuxSession("kgsh");
    try {
      const token = await api.adminToken();
      // The task's own permissions; --no-prompt so a missing one fails instead of asking.
      await tmux.start(
        [
          "env",
          `XDG_CONFIG_HOME=${home}`,
          "DENO_NO_UPDATE_CHECK=1 NO_COLOR=1",
          Deno.execPath(),
          "run --no-prompt --allow-net --allow-read --allow-write --allow-env",
          `${ROOT}src/cli/shell.ts --url ${api.url} --token ${token}`,
        ].join(" "),
        `${home}/status`,
      );
      await tmux.waitFor((s) => lastLine(s) === PROMPT, "the prompt", 30_000);

      await tmux.type("exe");
      await tmux.press("Tab");
      await tmux.waitFor((s) => lastLine(s) === `${PROMPT} exec`, "exe<Tab> to complete to exec");
      await tmux.type("portknock");
      await tmux.press("Enter");
      let screen = await tmux.waitFor(
        (s) => s.includes(UNLOCKED_IP) && lastLine(s) === PROMPT,
        "the unlock table and the prompt",
      );
      assert.match(
        screen,
        /│ IP +│ WAN address +│ User +│ Since +│ Last seen +│ Expires +│ Drift +│ Flows +│ Bytes/,
      );
      assert.match(
        screen,
        new RegExp(`│ ${UNLOCKED_IP.replaceAll(".", "\\.")} +│ 198\\.51\\.100\\.1 +│ alice +│`),
      );

      await tmux.type("bogus");
      await tmux.press("Enter");
      screen = await tmux.waitFor(
        (s) => s.includes("unknown command 'bogus'") && lastLine(s) === PROMPT,
        "the usage message and the prompt again",
      );
      assert.match(screen, /type "help" for the commands/);
      assert.equal(await tmux.exitStatus(), null, "the shell is still running");

      // Arguments complete from the appliance: the unlocked IP.
      await tmux.type("unlock revoke 2");
      await tmux.press("Tab");
      await tmux.waitFor(
        (s) => lastLine(s) === `${PROMPT} unlock revoke ${UNLOCKED_IP}`,
        "the unlocked IP completed",
      );
      await tmux.press("Enter");
      await tmux.waitFor((s) => s.includes(`Revoked the unlock of ${UNLOCKED_IP}`), "the revoke");
      assert.equal(api.datapath.unlockTable.size, 0);

      // Up recalls the last line.
      await tmux.press("Up");
      await tmux.waitFor(
        (s) => lastLine(s) === `${PROMPT} unlock revoke ${UNLOCKED_IP}`,
        "the history entry",
      );
      await tmux.press("C-u");
      await tmux.type("exit");
      await tmux.press("Enter");
      assert.equal(await tmux.waitExit(), 0);
      const history = await Deno.readTextFile(`${home}/knockgate/shell_history`);
      assert.equal(
        history,
        `exec portknock\nbogus\nunlock revoke ${UNLOCKED_IP}\nexit\n`,
      );
    } finally {
      await tmux.kill();
      await api.close();
      await Deno.remove(home, { recursive: true });
    }
  },
});

Deno.test({
  name: "shell (tmux): Ctrl-C ends log tail -f but not the shell; Ctrl-D leaves",
  ignore: !hasTmux(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const api = await startApi();
    const home = await Deno.makeTempDir({ prefix: "kgt-shell-tmux-" });
    const tmux = new TmuxSession("kgsc");
    try {
      const token = await api.adminToken();
      await tmux.start(
        `env XDG_CONFIG_HOME=${home} DENO_NO_UPDATE_CHECK=1 ${Deno.execPath()} run -A ` +
          `${ROOT}src/cli/shell.ts --url ${api.url} --token ${token}`,
        `${home}/status`,
      );
      await tmux.waitFor((s) => lastLine(s) === PROMPT, "the prompt", 30_000);
      await tmux.type("log tail -n 1 -f");
      await tmux.press("Enter");
      await tmux.waitFor((s) => s.includes("log tail -n 1 -f") && lastLine(s) !== PROMPT, "follow");
      // Events logged while following are shown (retried until the stream is connected).
      let screen = "";
      for (let i = 0; i < 50 && !screen.includes("reason=probe"); i++) {
        api.logger.record("knock-failure", { ip: "203.0.113.20", reason: "probe" });
        await new Promise((r) => setTimeout(r, 100));
        screen = await tmux.screen();
      }
      assert.match(screen, /knock-failure ip=203\.0\.113\.20 reason=probe/);
      await tmux.press("C-c");
      await tmux.waitFor((s) => lastLine(s) === PROMPT, "the prompt after Ctrl-C");
      assert.equal(await tmux.exitStatus(), null, "Ctrl-C did not end the shell");
      await tmux.press("C-d");
      assert.equal(await tmux.waitExit(), 0);
    } finally {
      await tmux.kill();
      await api.close();
      await Deno.remove(home, { recursive: true });
    }
  },
});
