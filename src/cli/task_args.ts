/**
 * The arguments a `deno task NAME -- ...` line hands its program. Deno passes
 * the `--` separator through as the first argument (the README's form, which
 * npm and other task runners also accept), so every entry point drops it here
 * before parsing.
 */
export function taskArgs(args: readonly string[]): string[] {
  return args[0] === "--" ? args.slice(1) : [...args];
}
