/**
 * The interactive shell's history: the last `HISTORY_LIMIT` lines in a
 * private file, oldest first. Lines carrying a password are never kept.
 */
import { writePrivate } from "./config.ts";

/** Lines kept in the history file. */
export const HISTORY_LIMIT = 500;

/** The saved history, oldest first; empty when there is none. */
export async function loadHistory(path: string): Promise<string[]> {
  try {
    const text = await Deno.readTextFile(path);
    return text.split("\n").filter((l) => l.trim() !== "").slice(-HISTORY_LIMIT);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
}

/** Saves the last `HISTORY_LIMIT` of `lines` (oldest first) to `path`. */
export async function saveHistory(path: string, lines: readonly string[]): Promise<void> {
  const kept = lines.slice(-HISTORY_LIMIT);
  await writePrivate(path, kept.length === 0 ? "" : kept.join("\n") + "\n");
}

/** Whether `line` belongs in the history: not blank, no password or token on it. */
export function worthKeeping(line: string): boolean {
  if (line.trim() === "") return false;
  return !/(^|\s)(--password|-p|--token)(\s|=|$)/.test(line);
}

/** Appends `line` to `history` (oldest first), skipping an immediate repeat; returns whether it did. */
export function remember(history: string[], line: string): boolean {
  const l = line.trim();
  if (!worthKeeping(l) || history[history.length - 1] === l) return false;
  history.push(l);
  if (history.length > HISTORY_LIMIT) history.splice(0, history.length - HISTORY_LIMIT);
  return true;
}
