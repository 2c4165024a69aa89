/**
 * Lab test of `deno task lab` itself: started as a child exactly as a user
 * runs it, it takes its namespaces down when it gets SIGINT, SIGTERM or SIGHUP
 * (the terminal closed) and when the reader of its stdout goes away.
 */
import assert from "node:assert/strict";
import { labDown, labNames } from "../../scripts/lab/topology.ts";
import { run } from "../../src/host/run.ts";
import { labSupported, ROOT, until } from "./_helpers.ts";

/** How the lab is told to end. */
type Ending = Deno.Signal | "stdout closed";

/** The lab's namespaces still present. */
async function namespacesOf(suffix: string): Promise<string[]> {
  const r = await run(["ip", "netns", "list"]);
  return r.stdout.split("\n").map((l) => l.split(" ")[0]).filter((ns) => ns.endsWith(`-${suffix}`));
}

/** Reads the child's stdout until the lab says it is up; returns the run's suffix. */
async function waitUntilUp(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<string> {
  const dec = new TextDecoder();
  let text = "";
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const timer = new Promise<null>((r) => setTimeout(() => r(null), deadline - Date.now()));
    const chunk = await Promise.race([reader.read(), timer]);
    if (chunk === null || chunk.done) break;
    text += dec.decode(chunk.value, { stream: true });
    const m = /Namespaces: client kgc-(\w+)/.exec(text);
    if (m && text.includes("Ctrl-C takes the lab down")) return m[1];
  }
  throw new Error(`the lab did not come up within 60 s:\n${text}`);
}

async function endLab(ending: Ending): Promise<void> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["task", "lab"],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "null",
    env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
  }).spawn();
  const reader = child.stdout.getReader();
  let suffix = "";
  try {
    suffix = await waitUntilUp(reader);
    assert.equal((await namespacesOf(suffix)).length, 5, "the lab has five namespaces");
    if (ending === "stdout closed") await reader.cancel();
    else child.kill(ending);
    const gone = await until(async () => (await namespacesOf(suffix)).length === 0, 30_000, 200);
    assert.ok(gone, `after ${ending} the lab left ${await namespacesOf(suffix)}`);
    const exited = await until(() => exitedOf(child), 10_000);
    assert.ok(exited, `deno task lab still runs 10 s after ${ending}`);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await reader.cancel().catch(() => {});
    await child.status;
    if (suffix) await labDown(labNames(suffix));
  }
}

const done = new WeakSet<Deno.ChildProcess>();
function exitedOf(child: Deno.ChildProcess): boolean {
  child.status.then(() => done.add(child));
  return done.has(child);
}

for (const ending of ["SIGINT", "SIGTERM", "SIGHUP", "stdout closed"] as const) {
  Deno.test({
    name: `deno task lab takes its namespaces down on ${ending}`,
    ignore: !labSupported(),
    sanitizeOps: false,
    sanitizeResources: false,
    fn: () => endLab(ending),
  });
}
