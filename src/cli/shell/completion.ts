/**
 * Tab completion of the interactive shell: command and subcommand names and
 * options from the command tree itself, and arguments from the appliance
 * (IPs for `unlock revoke`, user, rule and uplink names, setting keys).
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

/** Appliance lists that arguments complete from. */
export type Dynamic = "unlockIps" | "userNames" | "ruleNames" | "uplinkNames";

/** Where argument candidates come from; each may fail (no candidates then). */
export type CompletionSource = Record<Dynamic, () => Promise<string[]>>;

/** What the word at the cursor completes from: fixed names or an appliance list. */
export interface Wanted {
  /** The word being typed. */
  partial: string;
  /** Fixed candidates (commands, options, setting keys). */
  names: string[];
  /** The appliance list to ask, when the word is such an argument. */
  dynamic: Dynamic | null;
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
function argumentWanted(
  path: string,
  index: number,
  root: CommandNode,
): Pick<Wanted, "names" | "dynamic"> {
  const none = { names: [], dynamic: null };
  if (path === "rules bind" && index === 1) return { names: ["all"], dynamic: "uplinkNames" };
  if (index !== 0) return none;
  if (path === "unlock revoke") return { names: [], dynamic: "unlockIps" };
  if (/^users (show|set|delete|verify|rotate)$/.test(path)) {
    return { names: [], dynamic: "userNames" };
  }
  if (/^rules (bind|delete|enable|disable)$/.test(path)) {
    return { names: [], dynamic: "ruleNames" };
  }
  if (path === "settings set") return { names: [...SETTING_KEYS], dynamic: null };
  if (path === "help") return { names: root.children.map((c) => c.name), dynamic: null };
  return none;
}

function find(node: CommandNode, word: string): CommandNode | undefined {
  return node.children.find((c) => c.name === word || c.aliases.includes(word));
}

/** What the word at the end of `line` (the text before the cursor) completes from. */
export function wanted(root: CommandNode, line: string): Wanted {
  const { words, partial } = splitPartial(line);
  let node = root;
  const path: string[] = [];
  let args = 0;
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    const child = args === 0 ? find(node, w) : undefined;
    if (w.startsWith("-")) {
      // An option that takes a value owns the next word.
      if ((node.valued.includes(w) || root.valued.includes(w)) && !w.includes("=")) i++;
    } else if (child !== undefined) {
      node = child;
      path.push(child.name);
    } else {
      args++;
    }
  }
  if (partial.startsWith("-")) {
    return { partial, names: [...new Set([...node.options, ...root.options])], dynamic: null };
  }
  if (node.children.length > 0 && args === 0) {
    const names = node.children.flatMap((c) => [c.name, ...c.aliases]);
    return { partial, names, dynamic: null };
  }
  return { partial, ...argumentWanted(path.join(" "), args, root) };
}

/**
 * The completer's answer for `partial` among `candidates`: the matches and the
 * word they complete, as node:readline wants them. A single match gets a
 * trailing blank so the next word can follow at once.
 */
export function answer(candidates: readonly string[], partial: string): [string[], string] {
  const hits = [...new Set(candidates)].filter((c) => c.startsWith(partial)).sort();
  return [hits.length === 1 ? [`${hits[0]} `] : hits, partial];
}

/** Completions of `line`, asking `src` for appliance lists. */
export async function complete(
  root: CommandNode,
  line: string,
  src: CompletionSource,
): Promise<[string[], string]> {
  const w = wanted(root, line);
  const fetched = w.dynamic === null ? [] : await src[w.dynamic]().catch(() => []);
  const names = [...w.names, ...fetched];
  return answer(names, w.partial);
}
