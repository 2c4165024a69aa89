import assert from "node:assert/strict";
import { taskArgs } from "./task_args.ts";

Deno.test("taskArgs drops the separator deno task passes through", () => {
  assert.deepEqual(taskArgs(["--", "--config", "f.jsonc"]), ["--config", "f.jsonc"]);
  assert.deepEqual(taskArgs(["--config", "f.jsonc"]), ["--config", "f.jsonc"]);
  assert.deepEqual(taskArgs([]), []);
});

Deno.test("taskArgs keeps a later separator (it ends the options of the program)", () => {
  assert.deepEqual(taskArgs(["--", "exec", "--", "x"]), ["exec", "--", "x"]);
  assert.deepEqual(taskArgs(["--", "--"]), ["--"]);
});
