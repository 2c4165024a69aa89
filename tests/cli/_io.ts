/** A ShellIo for tests: captured output, a given environment, Ctrl-C on demand. */
import type { Prompter, ShellIo } from "../../src/cli/shell/io.ts";
import { main } from "../../src/cli/shell/main.ts";

/** Captured output and a way to press Ctrl-C. */
export interface TestIo extends ShellIo {
  stdout: string[];
  stderr: string[];
  /** Calls the Ctrl-C listeners. */
  interrupt(): void;
}

/** An io over `env` (a temp XDG_CONFIG_HOME belongs in it), with answers for prompts. */
export function testIo(
  env: Record<string, string>,
  prompter: Prompter | null = null,
  now: () => number = Date.now,
): TestIo {
  const listeners = new Set<() => void>();
  const io: TestIo = {
    stdout: [],
    stderr: [],
    out: (t) => io.stdout.push(t),
    err: (t) => io.stderr.push(t),
    env: { get: (k) => env[k] },
    now,
    isTerminal: prompter !== null,
    prompter,
    onInterrupt: (fn) => {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    interrupt: () => listeners.forEach((fn) => fn()),
  };
  return io;
}

/** The outcome of one shell run. */
export interface Run {
  code: number;
  out: string;
  err: string;
}

/** Runs the shell with `args` on `io` (output cleared first). */
export async function shell(io: TestIo, ...args: string[]): Promise<Run> {
  io.stdout.length = 0;
  io.stderr.length = 0;
  const code = await main(args, io);
  return { code, out: io.stdout.join("\n"), err: io.stderr.join("\n") };
}

/** Runs the shell with `--json` and parses what it printed. */
export async function shellJson<T>(io: TestIo, ...args: string[]): Promise<T> {
  const r = await shell(io, ...args, "--json");
  if (r.code !== 0) throw new Error(`shell ${args.join(" ")} failed (${r.code}): ${r.err}`);
  return JSON.parse(r.out) as T;
}
