import assert from "node:assert/strict";
import { UsageError } from "./io.ts";
import { splitPartial, splitWords } from "./words.ts";

Deno.test("splitWords: blanks, quotes and escapes", () => {
  assert.deepEqual(splitWords("  users   list  "), ["users", "list"]);
  assert.deepEqual(splitWords(`users add "bob smith" -p 'a b"c'`), [
    "users",
    "add",
    "bob smith",
    "-p",
    'a b"c',
  ]);
  assert.deepEqual(splitWords(String.raw`x "a\"b\\c" d\ e ''`), ["x", 'a"b\\c', "d e", ""]);
  assert.deepEqual(splitWords("\t"), []);
  assert.throws(() => splitWords(`login "admin`), UsageError);
});

Deno.test("splitPartial: the word at the cursor", () => {
  assert.deepEqual(splitPartial("exe"), { words: [], partial: "exe" });
  assert.deepEqual(splitPartial("unlock revoke "), { words: ["unlock", "revoke"], partial: "" });
  assert.deepEqual(splitPartial(`users show "al`), { words: ["users", "show"], partial: "al" });
});
