import assert from "node:assert/strict";
import { joinPath, JsoncSyntaxError, parseJsonc } from "./parse_jsonc.ts";

Deno.test("parseJsonc reads JSON with comments and trailing commas", () => {
  const text = `// head
{
  /* block
     comment */ "a": 1, // tail
  "b": [true, false, null, "x\\n\\u0041\\"",],
  "c": { "d": -1.5e2, },
}
`;
  const { value } = parseJsonc(text);
  assert.deepEqual(value, { a: 1, b: [true, false, null, 'x\nA"'], c: { d: -150 } });
});

Deno.test("parseJsonc records the line of every value path", () => {
  const text = [
    "{", // 1
    '  "forwards": [', // 2
    "    {", // 3
    '      "name": "web",', // 4
    '      "ports": [1,', // 5
    "        2]", // 6
    "    },", // 7
    "  ],", // 8
    '  "odd key": 0', // 9
    "}", // 10
  ].join("\n");
  const { lines } = parseJsonc(text);
  assert.deepEqual(Object.fromEntries(lines), {
    "": 1,
    forwards: 2,
    "forwards[0]": 3,
    "forwards[0].name": 4,
    "forwards[0].ports": 5,
    "forwards[0].ports[0]": 5,
    "forwards[0].ports[1]": 6,
    '["odd key"]': 9,
  });
});

Deno.test("joinPath writes identifiers with dots, indexes and odd keys in brackets", () => {
  assert.equal(joinPath([]), "");
  assert.equal(joinPath(["forwards", 1, "publicPorts"]), "forwards[1].publicPorts");
  assert.equal(joinPath(["a", "b-c"]), 'a["b-c"]');
});

function syntaxError(text: string): [number, number, string] {
  try {
    parseJsonc(text);
  } catch (e) {
    assert.ok(e instanceof JsoncSyntaxError);
    return [e.line, e.column, e.reason];
  }
  throw new Error("parsed");
}

Deno.test("parseJsonc reports syntax errors with line, column and token", () => {
  assert.deepEqual(syntaxError('{\n  "a": 1,\n  "b": }\n'), [3, 8, 'unexpected "}"']);
  assert.deepEqual(syntaxError('{\n  "a": 1\n  "b": 2\n}'), [3, 3, 'unexpected "\\""']);
  assert.deepEqual(syntaxError("{\n  wan: 1\n}"), [2, 3, 'unexpected "wan"']);
  assert.deepEqual(syntaxError('{"a": tru}'), [1, 7, 'unexpected "tru"']);
  assert.deepEqual(syntaxError('{"a": 1'), [1, 8, "unexpected end of input"]);
  assert.deepEqual(syntaxError('{"a": [1,,2]}'), [1, 10, 'unexpected ","']);
  assert.deepEqual(syntaxError('{"a": 1} x'), [1, 10, 'unexpected "x"']);
  assert.deepEqual(syntaxError('{\n "a": "abc\n}'), [2, 7, "unterminated string"]);
  assert.deepEqual(syntaxError("{\n /* open\n\n"), [2, 2, "unterminated comment"]);
  // A leading zero ends the number: the next digit is a second token.
  assert.deepEqual(syntaxError('{"a": 01}'), [1, 8, 'unexpected "1"']);
  assert.deepEqual(syntaxError('{"a": 1.}'), [1, 7, "bad number"]);
  assert.deepEqual(syntaxError('{"a": "\\u00zz"}'), [1, 8, "bad \\u escape"]);
  assert.deepEqual(syntaxError('{"a": "\\q"}'), [1, 8, 'bad escape "\\q"']);
  assert.deepEqual(syntaxError(""), [1, 1, "unexpected end of input"]);
});

Deno.test("parseJsonc refuses duplicate keys and keeps __proto__ as data", () => {
  assert.deepEqual(syntaxError('{\n "a": 1,\n "a": 2\n}'), [3, 2, 'duplicate field "a"']);
  const { value } = parseJsonc('\ufeff{"__proto__": {"polluted": true}}');
  assert.equal(Object.getPrototypeOf(value), Object.prototype);
  assert.deepEqual(Object.keys(value as object), ["__proto__"]);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});
