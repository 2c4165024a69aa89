import assert from "node:assert/strict";
import { DATAPLANE_V8_FLAGS } from "./v8_flags.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

Deno.test("the start task and the systemd unit run the appliance with the data plane's V8 flags", async () => {
  const deno = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  assert.ok(
    (deno.tasks.start as string).includes(`--v8-flags=${DATAPLANE_V8_FLAGS}`),
    deno.tasks.start,
  );
  const unit = await Deno.readTextFile(`${ROOT}config/knockgate.service`);
  const exec = unit.split("\n").find((l) => l.startsWith("ExecStart="));
  assert.ok(exec?.includes(`--v8-flags=${DATAPLANE_V8_FLAGS}`), exec ?? "no ExecStart");
});
