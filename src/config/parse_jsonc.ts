/**
 * A small JSONC parser: JSON plus `//` and `/* *\/` comments and trailing
 * commas. Besides the value it records the source line of every value path
 * (`forwards[1].publicPorts`), so configuration errors can name the line.
 * Duplicate keys are refused: in a hand-edited file they are always a mistake.
 */

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
  const p = new Parser(text);
  const value = p.parseDocument();
  return { value, lines: p.lines };
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const ESCAPES: Record<string, string> = {
  '"': '"',
  "\\": "\\",
  "/": "/",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
};

class Parser {
  readonly lines = new Map<string, number>();
  #text: string;
  #i = 0;
  #line = 1;
  #lineStart = 0;

  constructor(text: string) {
    // A leading byte order mark is not part of the document.
    this.#text = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  }

  parseDocument(): unknown {
    this.#skip();
    const value = this.#value([], this.#line);
    this.#skip();
    if (this.#i < this.#text.length) this.#unexpected();
    return value;
  }

  #fail(reason: string, line = this.#line, column = this.#i - this.#lineStart + 1): never {
    throw new JsoncSyntaxError(line, column, reason);
  }

  /** Fails naming the token at the cursor: a whole word, or one character. */
  #unexpected(): never {
    if (this.#i >= this.#text.length) this.#fail("unexpected end of input");
    const word = /[A-Za-z0-9_$.+-]+/y;
    word.lastIndex = this.#i;
    const token = word.exec(this.#text)?.[0] ?? this.#text[this.#i];
    this.#fail(`unexpected ${JSON.stringify(token)}`);
  }

  /** Skips whitespace and comments, counting lines. */
  #skip(): void {
    const t = this.#text;
    while (this.#i < t.length) {
      const c = t[this.#i];
      if (c === "\n") this.#newline(this.#i + 1);
      else if (c === " " || c === "\t" || c === "\r") this.#i++;
      else if (c === "/" && t[this.#i + 1] === "/") {
        while (this.#i < t.length && t[this.#i] !== "\n") this.#i++;
      } else if (c === "/" && t[this.#i + 1] === "*") this.#blockComment();
      else return;
    }
  }

  #newline(next: number): void {
    this.#line++;
    this.#i = next;
    this.#lineStart = next;
  }

  #blockComment(): void {
    const [line, column] = [this.#line, this.#i - this.#lineStart + 1];
    this.#i += 2;
    while (this.#i < this.#text.length) {
      if (this.#text.startsWith("*/", this.#i)) {
        this.#i += 2;
        return;
      }
      if (this.#text[this.#i] === "\n") this.#newline(this.#i + 1);
      else this.#i++;
    }
    this.#fail("unterminated comment", line, column);
  }

  /** Parses the value at the cursor (whitespace already skipped), recording `path` at `line`. */
  #value(path: PathSegment[], line: number): unknown {
    this.lines.set(joinPath(path), line);
    const c = this.#text[this.#i];
    if (c === "{") return this.#object(path);
    if (c === "[") return this.#array(path);
    if (c === '"') return this.#string();
    if (c === "-" || (c >= "0" && c <= "9")) return this.#number();
    for (const [word, value] of [["true", true], ["false", false], ["null", null]] as const) {
      if (
        this.#text.startsWith(word, this.#i) &&
        !/[A-Za-z0-9_$]/.test(this.#text[this.#i + word.length] ?? "")
      ) {
        this.#i += word.length;
        return value;
      }
    }
    this.#unexpected();
  }

  #object(path: PathSegment[]): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    this.#i++;
    for (;;) {
      this.#skip();
      if (this.#text[this.#i] === "}") break;
      if (this.#text[this.#i] !== '"') this.#unexpected();
      const [keyLine, keyColumn] = [this.#line, this.#i - this.#lineStart + 1];
      const key = this.#string();
      if (Object.hasOwn(out, key)) this.#fail(`duplicate field "${key}"`, keyLine, keyColumn);
      this.#skip();
      if (this.#text[this.#i] !== ":") this.#unexpected();
      this.#i++;
      this.#skip();
      // defineProperty: a "__proto__" key is data, not the prototype.
      Object.defineProperty(out, key, {
        value: this.#value([...path, key], keyLine),
        enumerable: true,
        writable: true,
        configurable: true,
      });
      if (!this.#comma("}")) break;
    }
    this.#i++;
    return out;
  }

  #array(path: PathSegment[]): unknown[] {
    const out: unknown[] = [];
    this.#i++;
    for (;;) {
      this.#skip();
      if (this.#text[this.#i] === "]") break;
      out.push(this.#value([...path, out.length], this.#line));
      if (!this.#comma("]")) break;
    }
    this.#i++;
    return out;
  }

  /** After a member: true after a comma (a closer may follow: trailing commas are allowed), false before `close`. */
  #comma(close: string): boolean {
    this.#skip();
    const c = this.#text[this.#i];
    if (c === ",") {
      this.#i++;
      return true;
    }
    if (c !== close) this.#unexpected();
    return false;
  }

  #string(): string {
    const [line, column] = [this.#line, this.#i - this.#lineStart + 1];
    let out = "";
    this.#i++;
    for (;;) {
      const c = this.#text[this.#i];
      if (c === undefined || c === "\n") this.#fail("unterminated string", line, column);
      if (c === '"') break;
      if (c < " ") this.#fail("control character in string");
      if (c === "\\") out += this.#escape();
      else {
        out += c;
        this.#i++;
      }
    }
    this.#i++;
    return out;
  }

  #escape(): string {
    const e = this.#text[this.#i + 1];
    if (e === "u") {
      const hex = this.#text.slice(this.#i + 2, this.#i + 6);
      if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.#fail("bad \\u escape");
      this.#i += 6;
      return String.fromCharCode(parseInt(hex, 16));
    }
    if (e === undefined || !Object.hasOwn(ESCAPES, e)) this.#fail(`bad escape "\\${e ?? ""}"`);
    this.#i += 2;
    return ESCAPES[e];
  }

  #number(): number {
    NUMBER.lastIndex = this.#i;
    const m = NUMBER.exec(this.#text);
    if (!m) this.#unexpected();
    this.#i += m[0].length;
    // "01" or "1x": the number must end where a delimiter can follow.
    if (/[A-Za-z0-9_$.]/.test(this.#text[this.#i] ?? "")) this.#fail(`bad number`);
    return Number(m[0]);
  }
}
