/**
 * The test command: installs the Debian packages the lab tests need (when
 * root), runs every unit, lab and browser test, and ends with one line
 * `N passed, N failed` (Deno's own summary has another shape).
 */

import { taskArgs } from "../src/cli/task_args.ts";

const root = new URL("..", import.meta.url).pathname;
if (Deno.uid() === 0) {
  const setup = await new Deno.Command("bash", { args: [`${root}scripts/setup.sh`] }).output();
  if (!setup.success) console.error("setup: could not install every package; lab tests may skip");
}
const given = taskArgs(Deno.args);
const args = ["test", "--allow-all", "--parallel", ...given];
if (!given.some((a) => !a.startsWith("-"))) args.push("src/", "ui/", "tests/");
const child = new Deno.Command(Deno.execPath(), {
  args,
  cwd: root,
  stdout: "piped",
  stderr: "inherit",
  env: { DENO_JOBS: "2", NO_COLOR: "1" },
}).spawn();

let passed = 0, failed = 0, tail = "";
const dec = new TextDecoder();
for await (const chunk of child.stdout) {
  const text = dec.decode(chunk, { stream: true });
  await Deno.stdout.write(chunk);
  tail = (tail + text).slice(-4096);
}
const status = await child.status;
// Deno's summary: "ok | 12 passed (3 steps) | 0 failed" or "FAILED | 10 passed | 2 failed".
const m = tail.match(/(\d+) passed[^|]*\| (\d+) failed/g)?.at(-1)?.match(
  /(\d+) passed[^|]*\| (\d+) failed/,
);
if (m) [passed, failed] = [Number(m[1]), Number(m[2])];
if (!status.success && failed === 0) failed = 1;
console.log(`${passed} passed, ${failed} failed`);
Deno.exit(status.success ? 0 : 1);
