/**
 * Ctrl-C while an interactive command runs. The terminal is put in raw mode
 * for the command, so Ctrl-C arrives as a byte instead of a SIGINT to the
 * whole process group: `deno task shell` would otherwise end with the
 * command (the task runner exits on SIGINT).
 */
import process from "node:process";
import type { Prompter, ShellIo } from "./io.ts";

const CTRL_C = 0x03;

/** Watches standard input for Ctrl-C between `start` and `stop`. */
export class CtrlCWatcher {
  readonly #listeners = new Set<() => void>();
  #active = false;
  #onData = (chunk: Uint8Array | string) => {
    const hit = typeof chunk === "string" ? chunk.includes("\x03") : chunk.includes(CTRL_C);
    if (hit) { for (const fn of [...this.#listeners]) fn(); }
  };

  /** Starts watching (raw mode); keys typed meanwhile are dropped. */
  start(): void {
    if (this.#active || !process.stdin.isTTY) return;
    this.#active = true;
    process.stdin.setRawMode(true);
    process.stdin.on("data", this.#onData);
    process.stdin.resume();
  }

  /** Stops watching and gives the terminal back in its normal mode. */
  stop(): void {
    if (!this.#active) return;
    this.#active = false;
    process.stdin.off("data", this.#onData);
    process.stdin.setRawMode(false);
    process.stdin.pause();
  }

  /** Calls `fn` on Ctrl-C until the returned function is called. */
  add(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Runs `ask` with the watcher stopped (a prompt reads the terminal itself). */
  async pausedFor<T>(ask: () => Promise<T>): Promise<T> {
    const was = this.#active;
    this.stop();
    try {
      return await ask();
    } finally {
      if (was) this.start();
    }
  }
}

/** `io` with Ctrl-C also taken from `watcher`, and prompts that pause it. */
export function watchedIo(io: ShellIo, watcher: CtrlCWatcher): ShellIo {
  const p = io.prompter;
  const prompter: Prompter | null = p === null ? null : {
    input: (m) => watcher.pausedFor(() => p.input(m)),
    password: (m) => watcher.pausedFor(() => p.password(m)),
  };
  return {
    ...io,
    prompter,
    onInterrupt: (fn) => {
      const a = io.onInterrupt(fn);
      const b = watcher.add(fn);
      return () => {
        a();
        b();
      };
    },
  };
}
