/**
 * Runs one command line through a fresh command tree and turns every
 * outcome into an exit code: 0 done, 1 the API refused or could not be
 * reached, 2 the command was used wrongly. Errors never escape, so the
 * interactive shell survives any line.
 */
import { CommanderError } from "@commander-js/extra-typings";
import { ApiRequestError, NetworkError } from "./api_client.ts";
import type { ShellContext } from "./context.ts";
import { ExitCode, messageOf, UsageError } from "./io.ts";
import { buildProgram } from "./program.ts";

/** The error as the API's JSON shape (usage and network errors get codes of their own). */
function errorJson(e: unknown): string {
  if (e instanceof ApiRequestError) return JSON.stringify(e.body());
  const code = e instanceof UsageError ? "usage" : e instanceof NetworkError ? "network" : "failed";
  const status = e instanceof UsageError ? 2 : 0;
  return JSON.stringify({ error: { status, code, message: messageOf(e) } });
}

/** The error as text, with a hint where one helps. */
function errorText(e: unknown): string {
  if (!(e instanceof ApiRequestError)) return `error: ${messageOf(e)}`;
  const field = e.field !== undefined && !e.message.includes(e.field) ? ` (field ${e.field})` : "";
  const hint = e.status === 401
    ? '\nhint: sign in with "login" (or pass --token / set KNOCKGATE_TOKEN)'
    : "";
  return `error: ${e.message}${field}${hint}`;
}

/** The exit code of a failure. */
function exitCodeOf(e: unknown): ExitCode {
  return e instanceof UsageError ? ExitCode.Usage : ExitCode.Failed;
}

/** Runs `words` (a command and its arguments) in `ctx`; resolves to the exit code. */
export async function runCommand(ctx: ShellContext, words: string[]): Promise<ExitCode> {
  const program = buildProgram(ctx);
  try {
    await program.parseAsync(words, { from: "user" });
    return ExitCode.Ok;
  } catch (e) {
    // Commander has printed its message (and help) already.
    if (e instanceof CommanderError) return e.exitCode === 0 ? ExitCode.Ok : ExitCode.Usage;
    const json = words.includes("--json");
    ctx.io.err(json ? errorJson(e) : errorText(e));
    return exitCodeOf(e);
  }
}
