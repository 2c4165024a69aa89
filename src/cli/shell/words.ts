/**
 * Splitting a command line into words, as a POSIX shell would for the
 * simple cases: blanks separate, single quotes keep everything, double
 * quotes keep blanks (a backslash escapes `"` and `\` inside), a backslash
 * outside quotes escapes the next character.
 */
import { UsageError } from "./io.ts";

/** A line split for completion: the finished words and the word being typed. */
export interface PartialLine {
  words: string[];
  /** The unfinished last word ("" when the line ends in a blank). */
  partial: string;
}

/** Splits `line`; `open` tells whether it ended inside a quote. */
function scan(line: string): { words: string[]; current: string | null; open: boolean } {
  const words: string[] = [];
  let current: string | null = null;
  let quote: "'" | '"' | null = null;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quote === "'") {
      if (ch === "'") quote = null;
      else current += ch;
    } else if (quote === '"') {
      if (ch === '"') quote = null;
      else if (ch === "\\" && (line[i + 1] === '"' || line[i + 1] === "\\")) current += line[++i];
      else current += ch;
    } else if (ch === " " || ch === "\t") {
      if (current !== null) words.push(current);
      current = null;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      current ??= "";
    } else if (ch === "\\" && i + 1 < line.length) {
      current = (current ?? "") + line[++i];
    } else {
      current = (current ?? "") + ch;
    }
  }
  return { words, current, open: quote !== null };
}

/** The words of `line`; throws a UsageError on an unterminated quote. */
export function splitWords(line: string): string[] {
  const { words, current, open } = scan(line);
  if (open) throw new UsageError("Cannot parse the line: a quote is not closed");
  return current === null ? words : [...words, current];
}

/** The words of `line` up to the cursor at its end, for completion. */
export function splitPartial(line: string): PartialLine {
  const { words, current } = scan(line);
  return { words, partial: current ?? "" };
}
