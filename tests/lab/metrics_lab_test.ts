/**
 * `/metrics` of the running appliance in the lab, scraped with curl and a
 * bearer token from the LAN: a knock moves the success counter, traffic
 * through the forward moves its rule's packet and byte counters, a failed
 * sign-in is counted by reason, and promtool accepts the page as it is.
 */
import assert from "node:assert/strict";
import { startLab } from "../../scripts/lab/appliance.ts";
import { LAB } from "../../scripts/lab/topology.ts";
import { api, signIn } from "./_api.ts";
import { curl, knock, labSupported, scrapeMetrics, until } from "./_helpers.ts";

/** The page as a scraper gets it. */
const scrape = scrapeMetrics;

/** The value of the sample `series` (name and labels, as written), or NaN. */
function sample(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? NaN : Number(line.slice(series.length + 1));
}

function hasPromtool(): boolean {
  try {
    return Deno.statSync("/usr/bin/promtool").isFile;
  } catch {
    return false;
  }
}

Deno.test({
  name: "metrics in the lab: knocks, per-rule traffic and sign-in failures move their counters",
  ignore: !labSupported(),
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  const lab = await startLab();
  try {
    const token = await signIn(lab);
    const before = await scrape(lab, token);
    const successes = sample(before, "knockgate_knock_successes_total");
    const web = 'knockgate_rule_packets_total{rule="web"}';
    const webBytes = 'knockgate_rule_bytes_total{rule="web"}';
    assert.equal(sample(before, web), 0, "the lab's forward is listed before any traffic");

    await t.step("a knock moves the success counter", async () => {
      const k = await knock(lab, "client");
      assert.equal(k.code, 0, k.stderr);
      let text = "";
      const moved = await until(
        async () => {
          text = await scrape(lab, token);
          return sample(text, "knockgate_knock_successes_total") === successes + 1;
        },
        5000,
        200,
      );
      assert.ok(moved, `knock successes did not move:\n${text}`);
      assert.ok(sample(text, "knockgate_unlocked_ips") >= 1);
    });

    await t.step("traffic through the forward moves its rule's counters", async () => {
      assert.match(await curl(lab, "client", `http://${LAB.wan}:52201/`) ?? "", /hello/);
      const text = await scrape(lab, token);
      // A TCP handshake, a request, its answer and the close: both directions count.
      assert.ok(sample(text, web) >= 6, `${web} is ${sample(text, web)}`);
      assert.ok(sample(text, webBytes) >= 6 * 40, `${webBytes} is ${sample(text, webBytes)}`);
      assert.equal(sample(text, 'knockgate_rule_packets_total{rule="iperf"}'), 0);
    });

    await t.step("a failed sign-in is counted by reason", async () => {
      const bad = await api(lab, "POST", "/auth/login", {
        body: { username: "nobody", password: "not a password", code: "000000" },
      });
      assert.equal(bad.status, 401);
      const text = await scrape(lab, token);
      assert.equal(sample(text, 'knockgate_sign_in_failures_total{reason="bad-password"}'), 1);
    });

    await t.step({
      name: "promtool check metrics accepts the page",
      ignore: !hasPromtool(),
      fn: async () => {
        const text = await scrape(lab, token);
        assert.match(text, /^knockgate_build_info\{version="[^"]+",deno="[^"]+"\} 1$/m);
        assert.match(text, /^knockgate_host_filter_packets_total\{rule="wan-input"\} \d+$/m);
        const child = new Deno.Command("/usr/bin/promtool", {
          args: ["check", "metrics"],
          stdin: "piped",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        const w = child.stdin.getWriter();
        await w.write(new TextEncoder().encode(text));
        await w.close();
        const r = await child.output();
        const said = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
        assert.equal(r.code, 0, said);
        assert.equal(said.trim(), "", said);
      },
    });
  } finally {
    await lab.down();
  }
});
