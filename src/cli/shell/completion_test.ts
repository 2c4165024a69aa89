import assert from "node:assert/strict";
import { answer, commandTree, complete, type CompletionSource, wanted } from "./completion.ts";
import { newContext } from "./context.ts";
import type { ShellIo } from "./io.ts";
import { buildProgram } from "./program.ts";

const io: ShellIo = {
  out: () => {},
  err: () => {},
  env: { get: () => undefined },
  now: () => 0,
  isTerminal: false,
  prompter: null,
  onInterrupt: () => () => {},
};
const tree = commandTree(buildProgram(newContext(io, true)));
const src: CompletionSource = {
  unlockIps: () => Promise.resolve(["203.0.113.10", "203.0.113.20"]),
  userNames: () => Promise.resolve(["admin", "alice"]),
  ruleNames: () => Promise.reject(new Error("offline")),
  uplinkNames: () => Promise.resolve(["isp-a", "isp-b"]),
};

Deno.test("completion: commands and subcommands from the command tree", async () => {
  assert.deepEqual(await complete(tree, "exe", src), [["exec "], "exe"]);
  assert.deepEqual(await complete(tree, "exec ", src), [["portknock "], ""]);
  assert.deepEqual(await complete(tree, "u", src), [["unlock", "uplinks", "users"], "u"]);
  assert.deepEqual(await complete(tree, "users ", src), [
    ["add", "delete", "list", "rotate", "set", "show", "verify"],
    "",
  ]);
  assert.deepEqual(await complete(tree, "qu", src), [["quit "], "qu"]);
  assert.deepEqual(await complete(tree, "hel", src), [["help "], "hel"]);
  assert.deepEqual(await complete(tree, "help us", src), [["users "], "us"]);
  assert.deepEqual(await complete(tree, "nothing", src), [[], "nothing"]);
});

Deno.test("completion: arguments from the appliance, setting keys, options", async () => {
  assert.deepEqual(await complete(tree, "unlock revoke ", src), [
    ["203.0.113.10", "203.0.113.20"],
    "",
  ]);
  assert.deepEqual(await complete(tree, "unlock revoke 203.0.113.2", src), [
    ["203.0.113.20 "],
    "203.0.113.2",
  ]);
  // Only the first argument completes from the list.
  assert.deepEqual(await complete(tree, "unlock revoke 203.0.113.10 2", src), [[], "2"]);
  assert.deepEqual(await complete(tree, "users verify al", src), [["alice "], "al"]);
  assert.deepEqual(await complete(tree, "rules delete w", src), [[], "w"]);
  // `rules bind NAME UPLINK`: the rule, then "all" or an uplink's name.
  assert.equal(wanted(tree, "rules bind ").dynamic, "ruleNames");
  assert.deepEqual(await complete(tree, "rules bind web ", src), [["all", "isp-a", "isp-b"], ""]);
  assert.deepEqual(await complete(tree, "rules bind web isp-", src), [["isp-a", "isp-b"], "isp-"]);
  assert.deepEqual(await complete(tree, "upl", src), [["uplinks "], "upl"]);
  assert.deepEqual(await complete(tree, "settings set knock.pen", src), [
    ["knock.penaltySeconds "],
    "knock.pen",
  ]);
  assert.deepEqual(await complete(tree, "log tail --fo", src), [["--follow "], "--fo"]);
  assert.deepEqual(await complete(tree, "--url http://x status --js", src), [["--json "], "--js"]);
  // A valued global option's value is not taken for a command name.
  assert.equal(wanted(tree, "--url users ").dynamic, null);
  assert.deepEqual(wanted(tree, "--url x unlock revoke ").dynamic, "unlockIps");
});

Deno.test("completion: answer keeps readline's contract", () => {
  assert.deepEqual(answer(["b", "a", "a"], ""), [["a", "b"], ""]);
  assert.deepEqual(answer(["alice"], "al"), [["alice "], "al"]);
});
