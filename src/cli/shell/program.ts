/**
 * The command tree (commander): global options, every command group, and
 * `exit`. One tree is built per command line, so interactive lines never
 * share parser state.
 */
import { Command } from "@commander-js/extra-typings";
import { registerAuth } from "./commands/auth.ts";
import { registerLog } from "./commands/log.ts";
import { registerRules } from "./commands/rules.ts";
import { registerSettings } from "./commands/settings.ts";
import { registerStatus } from "./commands/status.ts";
import { registerUsers } from "./commands/users.ts";
import type { ShellContext } from "./context.ts";

/** The root command with the global options. */
export function newRoot(ctx: ShellContext) {
  return new Command("knockgate")
    .description("Knockgate admin shell: manage the appliance over its HTTP API.")
    .option(
      "--url <url>",
      "appliance API, e.g. https://192.0.2.1:8443 (else $KNOCKGATE_URL or saved)",
    )
    .option(
      "--fingerprint <sha256>",
      "pin the appliance's certificate by its SHA-256 fingerprint (printed at its start)",
    )
    .option("--ca <file>", "trust this PEM CA file (or certificate) for the appliance")
    .option("--token <token>", "bearer token (else $KNOCKGATE_TOKEN or the one saved by login)")
    .option("--json", "print JSON for scripts instead of tables")
    .exitOverride()
    .showHelpAfterError(true)
    .configureOutput({
      writeOut: (s) => ctx.io.out(s.trimEnd()),
      writeErr: (s) => ctx.io.err(s.trimEnd()),
    });
}

/** The root command's type, which every command group hangs under. */
export type Root = ReturnType<typeof newRoot>;

/** The whole command tree over `ctx`. */
export function buildProgram(ctx: ShellContext): Root {
  const root = newRoot(ctx);
  registerStatus(root, ctx);
  registerUsers(root, ctx);
  registerRules(root, ctx);
  registerSettings(root, ctx);
  registerLog(root, ctx);
  registerAuth(root, ctx);
  root.command("exit").alias("quit").description("leave the interactive shell (Ctrl-D works too)")
    .action(() => {
      ctx.quit = true;
    });
  // Subcommands show their own help after an error; a typo at the top gets a short hint
  // in the interactive shell rather than the whole list again.
  if (ctx.interactive) root.showHelpAfterError('(type "help" for the commands)');
  return root;
}
