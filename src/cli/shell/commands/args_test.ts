import assert from "node:assert/strict";
import { InvalidArgumentError } from "@commander-js/extra-typings";
import { UsageError } from "../io.ts";
import { intArg, listArg, parsePortList, parsePorts, parseTarget } from "./args.ts";
import { parseCollectors, settingsPatch } from "./settings.ts";

Deno.test("args: ports and targets are parsed for syntax only (the API checks ranges)", () => {
  assert.deepEqual(parsePorts("52201", "p"), { start: 52201, end: 52201 });
  assert.deepEqual(parsePorts("70000", "p"), { start: 70000, end: 70000 });
  assert.deepEqual(parsePorts("52210-52219", "p"), { start: 52210, end: 52219 });
  assert.throws(() => parsePorts("ssh", "public ports"), /Cannot parse public ports "ssh"/);
  assert.throws(() => parsePorts("1-", "p"), UsageError);
  assert.deepEqual(parseTarget("192.0.2.12"), { address: "192.0.2.12" });
  assert.deepEqual(parseTarget("192.0.2.12:8080-8089"), {
    address: "192.0.2.12",
    ports: { start: 8080, end: 8089 },
  });
  assert.deepEqual(parseTarget("2001:db8:192::12"), { address: "2001:db8:192::12" });
  assert.deepEqual(parseTarget("[2001:db8:192::12]"), { address: "2001:db8:192::12" });
  assert.deepEqual(parseTarget("[2001:db8:192::12]:8443"), {
    address: "2001:db8:192::12",
    ports: { start: 8443, end: 8443 },
  });
  assert.throws(() => parseTarget("[2001:db8::12]:ssh"), /Cannot parse private ports "ssh"/);
  assert.deepEqual(parsePortList("udp:53, 22,both:60000-60010"), [
    { protocol: "udp", ports: { start: 53, end: 53 } },
    { protocol: "tcp", ports: { start: 22, end: 22 } },
    { protocol: "both", ports: { start: 60000, end: 60010 } },
  ]);
  assert.throws(() => parsePortList(","), UsageError);
  assert.deepEqual(listArg("a, b,,c"), ["a", "b", "c"]);
  assert.equal(intArg("n", 1, 9)("5"), 5);
  assert.throws(() => intArg("n", 1, 9)("10"), InvalidArgumentError);
  assert.throws(() => intArg("n", 1, 9)("5x"), InvalidArgumentError);
});

Deno.test("settings: keys become nested patches; collectors parse", () => {
  assert.deepEqual(settingsPatch("idleTimeoutSeconds", "600"), { idleTimeoutSeconds: 600 });
  assert.deepEqual(settingsPatch("knock.failureLimit", "3"), { knock: { failureLimit: 3 } });
  assert.deepEqual(settingsPatch("syslog.collectors", "none"), { syslog: { collectors: [] } });
  assert.throws(() => settingsPatch("network.wanAddress", "1"), /settable keys are/);
  assert.throws(() => settingsPatch("limits.maxUnlocks", "1e3"), /not an integer/);
  assert.deepEqual(parseCollectors("192.0.2.5, logs.example:1514/rfc3164"), [
    { host: "192.0.2.5", port: 514, format: "rfc5424" },
    { host: "logs.example", port: 1514, format: "rfc3164" },
  ]);
  assert.throws(() => parseCollectors("a:b:c"), /Cannot parse syslog collector "a:b:c"/);
});
