/**
 * What the shell reads and writes, injectable for tests: output lines, the
 * environment, the clock, password and text prompts, and Ctrl-C. Also the
 * exit codes and the usage error every command may throw.
 */
import type { Env } from "../profiles.ts";

/** Exit codes of the shell. */
export const ExitCode = { Ok: 0, Failed: 1, Usage: 2 } as const;

/** One of `ExitCode`'s values. */
export type ExitCode = typeof ExitCode[keyof typeof ExitCode];

/** A command used wrongly (bad argument, missing option): exit code 2. */
export class UsageError extends Error {
  /** `message` says what is wrong and how to do it right. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Asks the person at the terminal for a value. */
export interface Prompter {
  /** Asks for visible text. */
  input(message: string): Promise<string>;
  /** Asks for a secret; the answer is not echoed. */
  password(message: string): Promise<string>;
}

/** The shell's view of the world. */
export interface ShellIo {
  /** Writes one or more lines to standard output. */
  out(text: string): void;
  /** Writes one or more lines to standard error. */
  err(text: string): void;
  env: Env;
  /** Milliseconds since the epoch (for "5m ago"). */
  now(): number;
  /** True when standard input is a terminal (prompts and the interactive editor work). */
  isTerminal: boolean;
  /** Prompts; null when nobody can answer (no terminal). */
  prompter: Prompter | null;
  /** Calls `fn` on Ctrl-C until the returned function is called. */
  onInterrupt(fn: () => void): () => void;
}

/** Prompts through @inquirer/prompts on the process's terminal. */
function inquirerPrompter(): Prompter {
  return {
    input: async (message) => {
      const { input } = await import("@inquirer/prompts");
      return await input({ message });
    },
    password: async (message) => {
      const { password } = await import("@inquirer/prompts");
      return await password({ message, mask: "*" });
    },
  };
}

/** The real process: Deno's stdout, stderr, environment and SIGINT. */
export function denoIo(): ShellIo {
  const isTerminal = Deno.stdin.isTerminal();
  return {
    out: (text) => console.log(text),
    err: (text) => console.error(text),
    env: Deno.env,
    now: () => Date.now(),
    isTerminal,
    prompter: isTerminal ? inquirerPrompter() : null,
    onInterrupt: (fn) => {
      Deno.addSignalListener("SIGINT", fn);
      return () => Deno.removeSignalListener("SIGINT", fn);
    },
  };
}

/** The message of any thrown value. */
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
