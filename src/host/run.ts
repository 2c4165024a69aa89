/** Running host commands (ip, sysctl) for setting up the appliance's host. */

/** The outcome of one command. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `argv` and returns its exit code and output; never throws on a non-zero exit. */
export async function run(argv: string[]): Promise<CommandResult> {
  const out = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Runs `argv` and throws an Error naming the command and its stderr when it fails. */
export async function runOk(argv: string[]): Promise<string> {
  const r = await run(argv);
  if (r.code !== 0) {
    throw new Error(`Command failed (${r.code}): ${argv.join(" ")}: ${r.stderr.trim()}`);
  }
  return r.stdout;
}
