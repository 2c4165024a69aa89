/**
 * Text from the outside (a user name typed at the sign-in form) made safe
 * for a log line: nothing in it can end the line, forge another one, or
 * drive the terminal that shows it.
 */

/**
 * C0 controls, DEL, C1 controls (U+0080..U+009F, 0x9B is a one-byte CSI to
 * many terminals), the Unicode line and paragraph separators and the bidi
 * overrides and isolates (they reorder what a reader sees, "Trojan Source").
 */
// deno-lint-ignore no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
// deno-lint-ignore no-control-regex
const UNSAFE_OR_BACKSLASH = /[\\\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** `s` with every control character written as `\xNN` or `\uNNNN`, and `\` as `\\`. */
export function escapeControl(s: string): string {
  return s.replace(UNSAFE_OR_BACKSLASH, (ch) => {
    if (ch === "\\") return "\\\\";
    const code = ch.charCodeAt(0);
    return code <= 0xff
      ? `\\x${code.toString(16).padStart(2, "0")}`
      : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

/** Whether `s` holds a character `escapeControl` would rewrite (other than a backslash). */
export function hasControl(s: string): boolean {
  return UNSAFE.test(s);
}
