/**
 * `GET /health`: no sign-in needed; says the API answers, whether the clock
 * is trusted and whether the store is reachable. It stays 200 while only the
 * store is degraded: the data plane keeps forwarding and admitting the
 * unlocks it knows, so an HA health check must not move the addresses away.
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
  responses: { 200: jsonResponse(HealthSchema, "Healthy"), ...errors(413) },
});

/** The store's health as the API shows it (no member URL: `/health` needs no sign-in). */
export function storeHealthView(store: Store) {
  const { backend, connected, lastContactMs, revision } = store.health();
  return { backend, connected, lastContactMs, revision };
}

/** The health router; `clock` reads the (cached) clock health. */
export function healthRouter(
  clock: () => Promise<ClockHealth>,
  store: Store,
): OpenAPIHono<AppEnv> {
  const app = newRouter();
  app.openapi(
    health,
    async (c) =>
      c.json({ status: "ok" as const, clock: await clock(), store: storeHealthView(store) }, 200),
  );
  return app;
}
