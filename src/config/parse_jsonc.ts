/**
 * JSONC (JSON plus `//` and `/* *\/` comments and trailing commas) through
 * Microsoft's `jsonc-parser`, the parser of VS Code's settings files: it gives
 * every node its offset, from which we record the source line of every value
 * path (`forwards[1].publicPorts`), so configuration errors can name the line.
 * Duplicate keys are refused (the library keeps the last): in a hand-edited
 * file they are always a mistake.
 */
import { type Node, type ParseError, parseTree, printParseErrorCode } from "jsonc-parser";

/** A path segment: an object key or an array index. */
export type PathSegment = string | number;

/** What `parseJsonc` returns. */
export interface JsoncDocument {
  value: unknown;
  /** Line (1-based) where each value path starts: the key's line for object members. */
  lines: Map<string, number>;
}

/** A syntax error at a 1-based line and column. */
export class JsoncSyntaxError extends Error {
  /** 1-based line. */
  readonly line: number;
  /** 1-based column. */
  readonly column: number;
  /** The reason without the position, e.g. `unexpected "}"`. */
  readonly reason: string;
  /** An error `line:column: reason`. */
  constructor(line: number, column: number, reason: string) {
    super(`${line}:${column}: ${reason}`);
    this.name = "JsoncSyntaxError";
    this.line = line;
    this.column = column;
    this.reason = reason;
  }
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** Joins path segments as `forwards[1].publicPorts` (odd keys as `["a b"]`); the root is `""`. */
export function joinPath(path: readonly PathSegment[]): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (IDENT.test(seg)) out += out === "" ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** Parses JSONC `text`; throws `JsoncSyntaxError` on malformed input. */
export function parseJsonc(text: string): JsoncDocument {
  // A leading byte order mark is not part of the document.
  const t = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const pos = new Positions(t);
  const errors: ParseError[] = [];
  const root = parseTree(t, errors, { allowTrailingComma: true, disallowComments: false });
  // The parser recovers and goes on; the first error is the one a person made.
  if (errors.length > 0) throw syntaxError(t, pos, errors[0]);
  if (!root) throw pos.error(0, "unexpected end of input");
  const lines = new Map<string, number>();
  const value = build(root, [], pos.line(root.offset), lines, pos);
  return { value, lines };
}

/** Turns offsets into 1-based lines and columns. */
class Positions {
  readonly #starts: number[] = [0];

  constructor(text: string) {
    for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) {
      this.#starts.push(i + 1);
    }
  }

  line(offset: number): number {
    let [lo, hi] = [0, this.#starts.length - 1];
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.#starts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  }

  error(offset: number, reason: string): JsoncSyntaxError {
    const line = this.line(offset);
    return new JsoncSyntaxError(line, offset - this.#starts[line - 1] + 1, reason);
  }
}

/** A value from the parse tree, recording `path` at `line`; objects refuse duplicate keys. */
function build(
  node: Node,
  path: PathSegment[],
  line: number,
  lines: Map<string, number>,
  pos: Positions,
): unknown {
  lines.set(joinPath(path), line);
  const kids = node.children ?? [];
  if (node.type === "array") {
    return kids.map((kid, i) => build(kid, [...path, i], pos.line(kid.offset), lines, pos));
  }
  if (node.type !== "object") return node.value;
  const out: Record<string, unknown> = {};
  for (const member of kids) {
    const [keyNode, valueNode] = member.children ?? [];
    const key = keyNode.value as string;
    if (Object.hasOwn(out, key)) throw pos.error(keyNode.offset, `duplicate field "${key}"`);
    const keyLine = pos.line(keyNode.offset);
    // defineProperty: a "__proto__" key is data, not the prototype.
    Object.defineProperty(out, key, {
      value: build(valueNode, [...path, key], keyLine, lines, pos),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

/** The library's error in our words, at the token it names. */
function syntaxError(text: string, pos: Positions, e: ParseError): JsoncSyntaxError {
  const token = text.slice(e.offset, e.offset + e.length);
  // The codes are a const enum, which isolated modules cannot read: switch on their names.
  switch (printParseErrorCode(e.error)) {
    case "UnexpectedEndOfString":
      return pos.error(e.offset, "unterminated string");
    case "UnexpectedEndOfComment":
      return pos.error(e.offset, "unterminated comment");
    case "InvalidNumberFormat":
    case "UnexpectedEndOfNumber":
      return pos.error(e.offset, "bad number");
    case "InvalidCharacter":
      return pos.error(e.offset, "control character in string");
    case "InvalidUnicode":
    case "InvalidEscapeCharacter": {
      // The error spans the whole string: point at the escape itself.
      const bad = /\\(?:u(?![0-9a-fA-F]{4})|[^"\\/bfnrtu])/.exec(token);
      const at = e.offset + (bad?.index ?? 0);
      return pos.error(
        at,
        bad?.[0] === "\\u" ? "bad \\u escape" : `bad escape "${bad?.[0] ?? token}"`,
      );
    }
    default:
      return unexpected(text, pos, e.offset);
  }
}

/** Names the token at `offset`: a whole word, or one character. */
function unexpected(text: string, pos: Positions, offset: number): JsoncSyntaxError {
  if (offset >= text.length) return pos.error(offset, "unexpected end of input");
  const word = /[A-Za-z0-9_$.+-]+/y;
  word.lastIndex = offset;
  const token = word.exec(text)?.[0] ?? text[offset];
  return pos.error(offset, `unexpected ${JSON.stringify(token)}`);
}
