/** The cluster benchmark's report: every figure lands in its section, errors are listed. */
import assert from "node:assert/strict";
import { type ClusterBenchResult, renderCluster } from "../scripts/bench/cluster_bench.ts";

Deno.test("cluster bench report: forwarding beside, knock latency, etcd writes", () => {
  const r: ClusterBenchResult = {
    forwarding: {
      seconds: 5,
      singleGbps: [10.1, 10.3, 9.9],
      clusterGbps: [10.0, 10.2, 10.4],
      singleMedian: 10.1,
      clusterMedian: 10.2,
    },
    knockAtoB: {
      samples: 30,
      failures: 1,
      rawMs: [120, null],
      medianMs: 240,
      p99Ms: 1100,
      minMs: 90,
      maxMs: 1100,
    },
    writes: {
      unlocks: 1000,
      unlocksAtA: 1000,
      windowSeconds: 120.4,
      floodPps: 400,
      puts: 2050,
      deletes: 3,
      revisions: 40,
      putsPerSecond: 17,
      revisionsPerSecond: 0.33,
      byArea: { unlocks: 2000, nodes: 50 },
      unlockWritesPerSecond: 16.6,
    },
    errors: ["etcd writes: something"],
  };
  const md = renderCluster(r, "Run X.");
  assert.match(md, /^## Cluster/);
  assert.match(md, /\| single box \(KV file\) \| 10\.10 \| 10\.10, 10\.30, 9\.90 \|/);
  assert.match(md, /\| node \/ single \| 1\.01 \|/);
  assert.match(md, /30 knocks: median 240 ms, p99 1100 ms, min 90 ms, max 1100 ms, 1 not admitted/);
  assert.match(
    md,
    /\*\*17\.0 puts\/s\*\*, 0\.33 txns\/s; unlock keys 16\.6\/s \(by area: unlocks 2000, nodes 50\)/,
  );
  assert.match(md, /- error: etcd writes: something/);
});
