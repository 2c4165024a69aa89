/**
 * The shell's entry: with a command it runs that one command (for scripts)
 * and exits with its code; with nothing but connection options it starts
 * the interactive shell.
 */
import { normalizeUrl } from "./api_client.ts";
import { connection, newContext } from "./context.ts";
import { denoIo, ExitCode, messageOf, type ShellIo, UsageError } from "./io.ts";
import { interactive } from "./interactive.ts";
import { runCommand } from "./run.ts";
import { taskArgs } from "../task_args.ts";

/** The connection options of a command line, and the rest of it. */
export interface ConnectionArgs {
  url?: string;
  token?: string;
  fingerprint?: string;
  ca?: string;
  rest: string[];
}

/** The connection options of a command line and whether anything else is on it. */
export function connectionOnly(
  args: readonly string[],
): ConnectionArgs {
  const out: ConnectionArgs = { rest: [] };
  for (let i = 0; i < args.length; i++) {
    const m = /^--(url|token|fingerprint|ca)(?:=(.*))?$/.exec(args[i]);
    if (m === null) {
      out.rest.push(args[i]);
      continue;
    }
    const value = m[2] ?? args[++i];
    if (value === undefined) throw new UsageError(`option '--${m[1]}' needs a value`);
    out[m[1] as "url" | "token" | "fingerprint" | "ca"] = value;
  }
  return out;
}

/** Runs the shell on `args` (without the program name); resolves to the exit code. */
export async function main(args: string[], io: ShellIo = denoIo()): Promise<ExitCode> {
  const argv = taskArgs(args);
  let pre: ReturnType<typeof connectionOnly>;
  try {
    pre = connectionOnly(argv);
    if (pre.rest.length > 0) return await runCommand(newContext(io), argv);
    const ctx = newContext(io, true);
    const url = pre.url === undefined ? undefined : normalizeUrl(pre.url);
    ctx.session = { url, token: pre.token };
    // A pin or CA given at start is checked now and kept for the session's commands.
    if (url !== undefined && (pre.fingerprint !== undefined || pre.ca !== undefined)) {
      ctx.session.caCert = (await connection(ctx, pre)).caCert;
    }
    return await interactive(ctx);
  } catch (e) {
    io.err(`error: ${messageOf(e)}`);
    return e instanceof UsageError ? ExitCode.Usage : ExitCode.Failed;
  }
}
