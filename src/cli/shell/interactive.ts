/**
 * The interactive shell: a `knockgate> ` prompt (node:readline) with tab
 * completion and history, one command per line, until `exit`, `quit` or
 * Ctrl-D. On a terminal each line gets a fresh readline interface, so a
 * command may prompt (password, TOTP code) on the same terminal in between.
 */
import process from "node:process";
import * as readline from "node:readline";
import { httpClientFor } from "./trust.ts";
import { ApiClient } from "./api_client.ts";
import type { Forward, OpenPorts, Unlock, Uplink, User } from "./api_types.ts";
import { historyPath } from "./config.ts";
import { answer, commandTree, type CompletionSource, type Dynamic, wanted } from "./completion.ts";
import { CtrlCWatcher, watchedIo } from "./ctrl_c.ts";
import { connection, type ShellContext } from "./context.ts";
import { HISTORY_LIMIT, loadHistory, remember, saveHistory } from "./history.ts";
import { ExitCode, messageOf } from "./io.ts";
import { buildProgram } from "./program.ts";
import { runCommand } from "./run.ts";
import { splitWords } from "./words.ts";

/** The prompt. */
export const PROMPT = "knockgate> ";
/** How long completion waits for the appliance. */
const COMPLETION_TIMEOUT_MS = 2000;

/** Completion candidates fetched from the appliance with a short timeout. */
export function apiSource(ctx: ShellContext): CompletionSource {
  const api = async () => {
    const { url, token, caCert } = await connection(ctx, {});
    const creds = token === undefined ? null : { kind: "token" as const, token };
    return new ApiClient(url, creds, COMPLETION_TIMEOUT_MS, undefined, httpClientFor(caCert));
  };
  return {
    unlockIps: async () =>
      (await (await api()).get<{ unlocks: Unlock[] }>("/status/unlocks")).unlocks.map((u) => u.ip),
    userNames: async () =>
      (await (await api()).get<{ users: User[] }>("/users")).users.map((u) => u.name),
    ruleNames: async () => {
      const all = await (await api()).get<{ forwards: Forward[]; openPorts: OpenPorts[] }>(
        "/rules",
      );
      return [...all.forwards, ...all.openPorts].map((r) => r.name);
    },
    uplinkNames: async () =>
      (await (await api()).get<{ uplinks: Uplink[] }>("/uplinks")).uplinks.map((u) => u.name),
  };
}

type Completer = (line: string, cb: (err: null, result: [string[], string]) => void) => void;

/**
 * The appliance's lists for completion, kept in memory and refreshed in the
 * background, so a Tab is answered at once (readline handles a second Tab
 * typed during a slow answer as a literal tab).
 */
export class CompletionCache {
  readonly #lists = new Map<Dynamic, string[]>();

  /** A cache over `src`. */
  constructor(readonly src: CompletionSource) {}

  /** The list as last fetched, or undefined. */
  peek(d: Dynamic): string[] | undefined {
    return this.#lists.get(d);
  }

  /** Fetches list `d` again; on failure the old one stays. */
  async get(d: Dynamic): Promise<string[]> {
    try {
      this.#lists.set(d, await this.src[d]());
    } catch { /* not signed in, not allowed, or unreachable: no candidates */ }
    return this.#lists.get(d) ?? [];
  }

  /** Fetches every list again. */
  async refresh(): Promise<void> {
    await Promise.all(
      (["unlockIps", "userNames", "ruleNames", "uplinkNames"] as const).map((d) => this.get(d)),
    );
  }
}

function completer(ctx: ShellContext, cache: CompletionCache): Completer {
  const tree = commandTree(buildProgram(ctx));
  let busy = false;
  return (line, cb) => {
    const w = wanted(tree, line);
    if (w.dynamic === null) return cb(null, answer(w.names, w.partial));
    const cached = cache.peek(w.dynamic);
    if (cached !== undefined) {
      cb(null, answer([...w.names, ...cached], w.partial));
      void cache.get(w.dynamic);
      return;
    }
    // Nothing cached yet: ask now; a Tab arriving meanwhile is dropped.
    if (busy) return cb(null, [[], ""]);
    busy = true;
    void cache.get(w.dynamic).then((list) => {
      busy = false;
      cb(null, answer([...w.names, ...list], w.partial));
    });
  };
}

/** Reads one line at the terminal; null on Ctrl-D. `history` is oldest first. */
function readTerminalLine(history: string[], complete: Completer): Promise<string | null> {
  return new Promise((resolve) => {
    const rl = readline.createInterface({
      input: process.stdin,
      output: process.stdout,
      terminal: true,
      completer: complete,
      history: [...history].reverse(), // readline wants the newest first
      historySize: HISTORY_LIMIT,
      prompt: PROMPT,
    });
    let answered = false;
    const finish = (line: string | null) => {
      if (answered) return;
      answered = true;
      rl.close();
      resolve(line);
    };
    rl.on("line", (line) => finish(line));
    rl.on("close", () => finish(null));
    // Ctrl-C drops the line being typed, as a shell does.
    rl.on("SIGINT", () => {
      process.stdout.write("^C\n");
      finish("");
    });
    rl.prompt();
  });
}

/** The lines of a non-terminal standard input, one at a time. */
function pipedLines(): AsyncIterator<string> {
  const rl = readline.createInterface({ input: process.stdin, terminal: false });
  return rl[Symbol.asyncIterator]();
}

/** Runs one line; parse errors are reported like usage errors. */
async function runLine(ctx: ShellContext, line: string): Promise<void> {
  let words: string[];
  try {
    words = splitWords(line);
  } catch (e) {
    ctx.io.err(`error: ${messageOf(e)}`);
    return;
  }
  if (words.length === 0) return;
  // Ctrl-C abandons the command's requests; the shell goes on.
  const cancel = new AbortController();
  const unlisten = ctx.io.onInterrupt(() => cancel.abort());
  ctx.cancel = cancel.signal;
  try {
    await runCommand(ctx, words);
  } finally {
    unlisten();
    ctx.cancel = undefined;
  }
}

async function openHistory(ctx: ShellContext): Promise<{ lines: string[]; path: string | null }> {
  try {
    const path = historyPath(ctx.io.env);
    return { lines: await loadHistory(path), path };
  } catch (e) {
    ctx.io.err(`warning: history not loaded: ${messageOf(e)}`);
    return { lines: [], path: null };
  }
}

/** Runs the interactive shell on the process's terminal (or piped lines); resolves to 0. */
export async function interactive(ctx: ShellContext): Promise<ExitCode> {
  const watcher = new CtrlCWatcher();
  const io = ctx.io = ctx.io.isTerminal ? watchedIo(ctx.io, watcher) : ctx.io;
  // A SIGINT while a command runs must not end the shell (`log tail -f` stops on it).
  const unlisten = io.onInterrupt(() => {});
  const history = await openHistory(ctx);
  const cache = new CompletionCache(apiSource(ctx));
  void cache.refresh();
  const complete = completer(ctx, cache);
  const piped = io.isTerminal ? null : pipedLines();
  if (io.isTerminal) {
    const where = ctx.session.url ?? "no appliance yet (login --url URL)";
    io.out(`Knockgate admin shell: ${where}. Type "help" for commands, Ctrl-D to leave.`);
  }
  let savedOk = true;
  try {
    while (!ctx.quit) {
      const line = piped === null
        ? await readTerminalLine(history.lines, complete)
        : await piped.next().then((r) => r.done ? null : r.value);
      if (line === null) break;
      if (remember(history.lines, line) && history.path !== null && savedOk) {
        await saveHistory(history.path, history.lines).catch((e) => {
          savedOk = false;
          io.err(`warning: history not saved: ${messageOf(e)}`);
        });
      }
      watcher.start();
      try {
        await runLine(ctx, line);
      } finally {
        watcher.stop();
      }
      void cache.refresh();
    }
    if (io.isTerminal && !ctx.quit) io.out("");
  } finally {
    unlisten();
    await piped?.return?.();
  }
  return ExitCode.Ok;
}
