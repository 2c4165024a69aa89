/** Running host commands (ip, sysctl, nft) for setting up the appliance's host. */

/** The outcome of one command. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `argv` (with `stdin` as its standard input when given) and returns its
 * exit code and output; never throws on a non-zero exit.
 */
export async function run(argv: string[], stdin?: string): Promise<CommandResult> {
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin)).catch(() => {});
    await w.close().catch(() => {});
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Runs `argv` and throws an Error naming the command and its stderr when it fails. */
export async function runOk(argv: string[], stdin?: string): Promise<string> {
  const r = await run(argv, stdin);
  if (r.code !== 0) {
    throw new Error(`Command failed (${r.code}): ${argv.join(" ")}: ${r.stderr.trim()}`);
  }
  return r.stdout;
}
