/**
 * `/metrics` in the Prometheus text exposition format (version 0.0.4):
 * data-plane counters, drops by reason, unlocked IPs, connection tracking.
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { DROP_COUNT, dropName, snapshotCounters } from "../datapath/counters.ts";
import { ANY_ROLE, requireRole } from "./auth.ts";
import { errors, newRouter, SIGNED_IN } from "./_router.ts";
import type { ApiDeps, AppEnv } from "./types.ts";

/** Content type of the text exposition format. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** What the metrics are made of. */
export interface MetricsInput {
  counters: Float64Array;
  unlocks: number;
  conntrack: Record<string, number>;
  uptimeSec: number;
}

/** Conntrack statistics that are levels, not running totals. */
const CONNTRACK_GAUGES = new Set(["size", "capacity", "fragments"]);

function escapeLabel(v: string): string {
  return v.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

function metricName(s: string): string {
  return s.replace(/[^a-zA-Z0-9_]/g, "_");
}

function family(
  out: string[],
  name: string,
  type: "counter" | "gauge",
  help: string,
  samples: [string, number][],
): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  for (const [labels, v] of samples) out.push(`${name}${labels} ${Number.isFinite(v) ? v : 0}`);
}

/** The metrics page. */
export function renderMetrics(m: MetricsInput): string {
  const out: string[] = [];
  const { stats } = snapshotCounters(m.counters);
  for (const [stat, v] of Object.entries(stats)) {
    family(out, `knockgate_${metricName(stat)}_total`, "counter", `Data plane: ${stat}`, [["", v]]);
  }
  const drops: [string, number][] = [];
  // Slot 0 means "no drop"; every reason is listed, zeros included, for stable series.
  for (let code = 1; code < DROP_COUNT; code++) {
    drops.push([`{reason="${escapeLabel(dropName(code))}"}`, m.counters[code]]);
  }
  family(out, "knockgate_packets_dropped_total", "counter", "Packets dropped, by reason", drops);
  family(out, "knockgate_unlocked_ips", "gauge", "Source IPs unlocked by a knock", [[
    "",
    m.unlocks,
  ]]);
  for (const [k, v] of Object.entries(m.conntrack)) {
    if (k === "size") {
      family(out, "knockgate_conntrack_flows", "gauge", "Tracked flows", [["", v]]);
    } else if (CONNTRACK_GAUGES.has(k)) {
      family(out, `knockgate_conntrack_${metricName(k)}`, "gauge", `Conntrack ${k}`, [["", v]]);
    } else {
      family(out, `knockgate_conntrack_${metricName(k)}_total`, "counter", `Conntrack ${k}`, [[
        "",
        v,
      ]]);
    }
  }
  family(out, "knockgate_uptime_seconds", "gauge", "Seconds since the appliance started", [[
    "",
    m.uptimeSec,
  ]]);
  return out.join("\n") + "\n";
}

const metrics = createRoute({
  operationId: "getMetrics",
  method: "get",
  path: "/metrics",
  tags: ["status"],
  summary: "Prometheus metrics (any signed-in role; bearer tokens suit scrapers)",
  middleware: [requireRole(...ANY_ROLE)],
  security: SIGNED_IN,
  responses: {
    200: { description: "Metrics", content: { "text/plain": { schema: z.string() } } },
    ...errors(401),
  },
});

/** The metrics router (mounted at the root: `/metrics`). */
export function metricsRouter(deps: ApiDeps, startedAt: number): OpenAPIHono<AppEnv> {
  const app = newRouter();
  app.openapi(metrics, async (c) => {
    const [unlocks, conntrack] = await Promise.all([
      deps.datapath.unlocks(),
      deps.datapath.conntrack(),
    ]);
    const body = renderMetrics({
      counters: deps.datapath.counters,
      unlocks: unlocks.length,
      conntrack,
      uptimeSec: Math.max(0, Math.floor((deps.clock.now() - startedAt) / 1000)),
    });
    return c.text(body, 200, { "Content-Type": METRICS_CONTENT_TYPE });
  });
  return app;
}
