/**
 * The README's commands, as written. Every `deno task` line of its `sh`
 * blocks and of its Tasks table runs here in a harmless form: the README's
 * arguments exactly, plus `--help` (or the knock client's `--print-sequence`)
 * where the real command needs the lab, root routing or minutes; none may
 * exit 2 or say "Unexpected argument" / "too many arguments". The lab block
 * (locked curl, knock, open curl) runs for real in a lab.
 */
import assert from "node:assert/strict";
import { type RunningLab, startLab } from "../scripts/lab/appliance.ts";
import { labSupported } from "./lab/_helpers.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const README = await Deno.readTextFile(`${ROOT}README.md`);

/** The command lines of the README's `sh` blocks: continuations joined, comments dropped. */
export function shellLines(markdown: string): string[] {
  const lines: string[] = [];
  for (const block of markdown.matchAll(/```sh\n([\s\S]*?)```/g)) {
    const joined = block[1].replace(/\\\n\s*/g, "");
    for (const raw of joined.split("\n")) {
      const line = raw.replace(/\s+#.*$/, "").replace(/^#.*$/, "").trim();
      if (line) lines.push(line);
    }
  }
  return lines;
}

/** The placeholders of the Tasks table and what stands for them here. */
const PLACEHOLDERS: [RegExp, string][] = [
  [/\[-- FILE\]/, "-- config/appliance.jsonc"],
  [/\[--routing\]/, "--routing"],
  [/\bFILE\b/, "config/appliance.jsonc"],
  [/ H\b/, " 198.51.100.1"],
  [/ F\b/, " 41001"],
  [/ S\b/, " GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"],
];

/** The `deno task ...` forms of the Tasks table, placeholders filled in. */
export function tableTasks(markdown: string): string[] {
  return [...markdown.matchAll(/^\| `(deno task [^`]+)`/gm)].map((m) => {
    let cmd = m[1];
    for (const [re, value] of PLACEHOLDERS) cmd = cmd.replace(re, value);
    assert.doesNotMatch(cmd, /\b[A-Z]{1,4}\b|\[/, `unfilled placeholder in "${m[1]}"`);
    return cmd;
  });
}

/** The `deno task` part of a README line (after `npm ci &&` or `ip netns exec NS`). */
function taskPart(line: string): string | null {
  const m = /((?:npx )?deno task .*)$/.exec(line);
  return m ? m[1] : null;
}

/** The install script's invocations (up to a following `&& systemctl ...`). */
function installPart(line: string): string | null {
  const m = /^(scripts\/install\.sh[^&]*?)\s*(?:&&.*)?$/.exec(line);
  return m ? m[1] : null;
}

/** How `cmd` runs here without the lab, root routing or minutes of work. */
function harmless(cmd: string): string {
  if (cmd.startsWith("scripts/install.sh")) return `${cmd} --help`;
  const task = /deno task (\w+)/.exec(cmd)![1];
  if (task === "knock") return `${cmd} --print-sequence`;
  // The bare interactive shell and the bare lab need a terminal and the lab: ask for help.
  if (/deno task (shell|lab|test|bench|start)$/.test(cmd)) return `${cmd} -- --help`;
  return `${cmd} --help`;
}

/** Tasks not run here, and why. */
const SKIP = new Map([
  ["check", "fmt, lint and type check of the whole tree: the CI's own step, minutes here"],
]);

async function sh(cmd: string): Promise<{ code: number; text: string }> {
  const out = await new Deno.Command("sh", {
    args: ["-c", cmd],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: {
      // The README's bare `deno` is the one npm ci installs.
      PATH: `${ROOT}node_modules/.bin:${Deno.env.get("PATH") ?? ""}`,
      NO_COLOR: "1",
      DENO_NO_UPDATE_CHECK: "1",
      KNOCKGATE_URL: "",
      KNOCKGATE_TOKEN: "",
    },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, text: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

const BAD_ARGS = /Unexpected argument|too many arguments|unknown option/i;

Deno.test("the README's deno task commands all parse as written", async () => {
  const commands = new Set<string>();
  for (const line of shellLines(README)) {
    const cmd = taskPart(line) ?? installPart(line);
    if (cmd) commands.add(cmd);
  }
  for (const cmd of tableTasks(README)) commands.add(cmd);
  const tasks = new Set([...commands].map((c) => /deno task (\w+)/.exec(c)?.[1]));
  for (const t of ["start", "lab", "test", "bench", "knock", "shell", "check"]) {
    assert.ok(tasks.has(t), `the README shows deno task ${t}`);
  }
  let ran = 0;
  for (const cmd of commands) {
    const task = /deno task (\w+)/.exec(cmd)?.[1] ?? "";
    if (SKIP.has(task)) continue;
    const form = harmless(cmd);
    const r = await sh(form);
    assert.doesNotMatch(r.text, BAD_ARGS, `${form}\n${r.text}`);
    assert.equal(r.code, 0, `${form} exited ${r.code}:\n${r.text}`);
    ran++;
  }
  assert.ok(ran >= 12, `ran ${ran} README commands`);
});

Deno.test({
  name: "lab: the README's lab block works as written (locked, knock, open)",
  ignore: !labSupported(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const lines = shellLines(README).filter((l) => l.startsWith("ip netns exec kgc-XXXX"));
    assert.equal(lines.length, 3, `the lab block: ${lines.join("\n")}`);
    let lab: RunningLab | null = null;
    try {
      lab = await startLab();
      const real = lines.map((l) => l.replace("kgc-XXXX", lab!.names.client));
      const locked = await sh(real[0]);
      assert.notEqual(locked.code, 0, `locked forward answered:\n${locked.text}`);
      const knock = await sh(real[1]);
      assert.doesNotMatch(knock.text, BAD_ARGS, knock.text);
      assert.equal(knock.code, 0, `${real[1]}\n${knock.text}`);
      assert.match(knock.text, /open/);
      const open = await sh(`timeout 10 ${real[2]}`);
      assert.equal(open.code, 0, `${real[2]}\n${open.text}`);
      assert.match(open.text, /hello from 192\.0\.2\.12:8080/);
    } finally {
      await lab?.down();
    }
  },
});
