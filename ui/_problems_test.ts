import assert from "node:assert/strict";
import { placeProblems, plainWords, problemsOf, slotFor, slotsOf } from "./_problems.ts";

const SLOTS = new Map([
  ["idleTimeoutSeconds", "Idle timeout (seconds)"],
  ["syslog.collectors.1.host", "Collector 2 host"],
  ["ports", "Ports"],
  ["name", "Name"],
]);

Deno.test("problems: every shape the API answers with", () => {
  // The validator's list (issue 8), with the clash named.
  assert.deepEqual(
    problemsOf({
      error: { message: "x" },
      problems: [{ field: "ports", message: "tcp 443 is taken", clash: "rule web" }],
    }),
    [{ field: "ports", message: "tcp 443 is taken (clashes with rule web)" }],
  );
  assert.deepEqual(
    problemsOf({ error: { message: "x", problems: [{ field: "name", message: "taken" }] } }),
    [{ field: "name", message: "taken" }],
  );
  // zod's issues, every one.
  assert.deepEqual(
    problemsOf({
      error: {
        message: "Invalid request body: a: bad",
        issues: [{ field: "a", reason: "bad" }, { field: "b", reason: "worse" }],
      },
    }),
    [{ field: "a", message: "bad" }, { field: "b", message: "worse" }],
  );
  // One message, with or without a field.
  assert.deepEqual(problemsOf({ error: { message: "gone", field: "ip" } }), [
    { field: "ip", message: "gone" },
  ]);
  assert.deepEqual(problemsOf(null), [{ field: "", message: "The request failed." }]);
});

Deno.test("problems: plain words instead of zod's and internal paths", () => {
  assert.equal(
    plainWords("Too small: expected number to be >=10", SLOTS),
    "Use 10 or more",
  );
  assert.equal(
    plainWords("Invalid input: expected number, received string", SLOTS),
    "Enter a whole number",
  );
  assert.equal(
    plainWords('Invalid option: expected one of "rfc5424"|"rfc3164"', SLOTS),
    "Choose one of rfc5424, rfc3164",
  );
  assert.equal(
    plainWords("Cannot save settings: syslog.collectors.1.host must not be empty", SLOTS),
    '"Collector 2 host" must not be empty',
  );
});

Deno.test("problems: placed on the nearest field, the rest in the alert", () => {
  assert.equal(slotFor("syslog.collectors.1.host", SLOTS), "syslog.collectors.1.host");
  assert.equal(slotFor("ports.0.ports.start", SLOTS), "ports");
  assert.equal(slotFor("syslog.collectors[1].host", SLOTS), "syslog.collectors.1.host");
  assert.equal(slotFor("limits.maxUnlocks", SLOTS), null);
  const s = placeProblems([
    { field: "ports.0.ports.start", message: "Too big: expected number to be <=65535" },
    { field: "name", message: "taken" },
    { field: "name", message: "taken" },
    { field: "", message: "Version mismatch" },
  ], SLOTS);
  assert.deepEqual([...s.errors], [["ports", ["Use 65535 or less"]], ["name", ["Taken"]]]);
  assert.equal(s.alert, "Version mismatch Please correct the 2 fields marked below.");
});

Deno.test("problems: error slots are read from rendered HTML", () => {
  const html = '<p class="field-error" id="a-error" data-error-for="knock.firstPort" ' +
    'data-label="First knock port" hidden=""></p><p data-error-for="x&amp;y"></p>';
  assert.deepEqual([...slotsOf(html)], [["knock.firstPort", "First knock port"], ["x&y", "x&y"]]);
});

Deno.test("problems: the WAN binding's problems land on the WAN pickers", () => {
  const slots = new Map([["uplink", "WAN interface"], ["wanAddress", "WAN IP"], ["name", "Name"]]);
  assert.equal(slotFor("uplink", slots), "uplink");
  // In the configuration's terms, as validateConfig names them.
  assert.equal(slotFor("forwards[0].uplink", slots), "uplink");
  assert.equal(slotFor("openPorts[3].wanAddress", slots), "wanAddress");
  const state = placeProblems([
    {
      field: "wanAddress",
      message: 'Invalid request body: WAN address "x" is not "all" or an IPv4 or IPv6 address',
    },
    {
      field: "forwards[0].uplink",
      message: 'Cannot save rule "ssh": uplink "isp-c" is not configured',
    },
  ], slots);
  assert.deepEqual(state.errors.get("wanAddress"), [
    '"x" is not an IPv4 or IPv6 address; choose one of the uplink\'s addresses or All',
  ]);
  assert.deepEqual(state.errors.get("uplink"), ['Uplink "isp-c" is not configured']);
  assert.equal(state.alert, "Please correct the 2 fields marked below.");
});
