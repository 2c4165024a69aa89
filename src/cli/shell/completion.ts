/**
 * Tab completion of the interactive shell: command and subcommand names and
 * options from the command tree itself, and arguments from the appliance
 * (IPs for `unlock revoke`, user and rule names, setting keys).
 */
import type { CommandUnknownOpts } from "@commander-js/extra-typings";
import { SETTING_KEYS } from "./commands/settings.ts";
import { splitPartial } from "./words.ts";

/** A command as completion sees it. */
export interface CommandNode {
  name: string;
  aliases: string[];
  /** Long option flags, e.g. `--json`. */
  options: string[];
  /** Options that take a value (the next word is theirs). */
  valued: string[];
  children: CommandNode[];
}

/** Where argument candidates come from; each may fail (no candidates then). */
export interface CompletionSource {
  unlockIps(): Promise<string[]>;
  userNames(): Promise<string[]>;
  ruleNames(): Promise<string[]>;
}

/** The completion tree of a commander program; `help` is added at the top only. */
export function commandTree(cmd: CommandUnknownOpts, top = true): CommandNode {
  const flags = cmd.options.flatMap((o) => [o.long, o.short]).filter((f): f is string => !!f);
  const valued = cmd.options.filter((o) => o.required || o.optional)
    .flatMap((o) => [o.long, o.short]).filter((f): f is string => !!f);
  return {
    name: cmd.name(),
    aliases: cmd.aliases(),
    options: flags.filter((f) => f.startsWith("--")),
    valued,
    children: [
      ...cmd.commands.map((c) => commandTree(c, false)),
      // Commander adds its `help` command lazily, so it is not among `commands`.
      ...(top ? [{ name: "help", aliases: [], options: [], valued: [], children: [] }] : []),
    ],
  };
}

/** What the argument at `index` of the command at `path` completes from. */
function argumentSource(
  path: string,
  index: number,
  root: CommandNode,
  src: CompletionSource,
): Promise<string[]> {
  if (index !== 0) return Promise.resolve([]);
  if (path === "unlock revoke") return src.unlockIps();
  if (/^users (show|set|delete|verify|rotate)$/.test(path)) return src.userNames();
  if (/^rules (delete|enable|disable)$/.test(path)) return src.ruleNames();
  if (path === "settings set") return Promise.resolve([...SETTING_KEYS]);
  if (path === "help") return Promise.resolve(root.children.map((c) => c.name));
  return Promise.resolve([]);
}

function find(node: CommandNode, word: string): CommandNode | undefined {
  return node.children.find((c) => c.name === word || c.aliases.includes(word));
}

/**
 * Completions of `line` (the text before the cursor): the candidates and the
 * word they complete, as node:readline's completer returns them. A single
 * candidate gets a trailing blank so the next word can follow at once.
 */
export async function complete(
  root: CommandNode,
  line: string,
  src: CompletionSource,
): Promise<[string[], string]> {
  const { words, partial } = splitPartial(line);
  let node = root;
  const path: string[] = [];
  let args = 0;
  const globals = new Set(root.valued);
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    const child = args === 0 ? find(node, w) : undefined;
    if (w.startsWith("-")) {
      if ((node.valued.includes(w) || globals.has(w)) && !w.includes("=")) i++;
    } else if (child !== undefined) {
      node = child;
      path.push(child.name);
    } else {
      args++;
    }
  }
  let candidates: string[];
  if (partial.startsWith("-")) {
    candidates = [...new Set([...node.options, ...root.options])];
  } else if (node.children.length > 0 && args === 0) {
    candidates = node.children.map((c) => c.name);
  } else {
    candidates = await argumentSource(path.join(" "), args, root, src).catch(() => []);
  }
  const hits = [...new Set(candidates)].filter((c) => c.startsWith(partial)).sort();
  return [hits.length === 1 ? [`${hits[0]} `] : hits, partial];
}
