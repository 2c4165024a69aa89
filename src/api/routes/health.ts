/**
 * `GET /health`: no sign-in needed; says the API answers, whether the clock
 * is trusted and whether the store is reachable. It stays 200 while only the
 * store is degraded: the data plane keeps forwarding and admitting the
 * unlocks it knows, so an HA health check must not move the addresses away.
 * It is 503 while the node has never read its store (started while no etcd
 * member answered): it forwards nothing then, and must not be chosen.
 */
import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { ClockHealth } from "../../host/clock_health.ts";
import type { Store } from "../../store/mod.ts";
import { errors, jsonResponse, newRouter } from "../_router.ts";
import { HealthSchema } from "../schemas.ts";
import type { AppEnv } from "../types.ts";

const health = createRoute({
  operationId: "getHealth",
  method: "get",
  path: "/health",
  tags: ["health"],
  summary: "Liveness, clock and store health (no sign-in)",
  security: [],
  responses: {
    200: jsonResponse(HealthSchema, "Healthy"),
    503: jsonResponse(HealthSchema, "The store was never read: nothing is forwarded yet"),
    ...errors(413),
  },
});

/** The store's health as the API shows it (no member URL: `/health` needs no sign-in). */
export function storeHealthView(store: Store) {
  const { backend, connected, lastContactMs, revision, loaded } = store.health();
  return { backend, connected, lastContactMs, revision, loaded: loaded !== false };
}

/** The health router; `clock` reads the (cached) clock health. */
export function healthRouter(
  clock: () => Promise<ClockHealth>,
  store: Store,
): OpenAPIHono<AppEnv> {
  const app = newRouter();
  app.openapi(health, async (c) => {
    const view = storeHealthView(store);
    const body = { clock: await clock(), store: view };
    if (!view.loaded) {
      c.header("Retry-After", "5");
      return c.json({ status: "waiting-for-store" as const, ...body }, 503);
    }
    return c.json({ status: "ok" as const, ...body }, 200);
  });
  return app;
}
