/** `GET /health`: no sign-in needed; says the API answers and whether the clock is trusted. */
import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { ClockHealth } from "../../host/clock_health.ts";
import { errors, jsonResponse, newRouter } from "../_router.ts";
import { HealthSchema } from "../schemas.ts";
import type { AppEnv } from "../types.ts";

const health = createRoute({
  operationId: "getHealth",
  method: "get",
  path: "/health",
  tags: ["health"],
  summary: "Liveness and clock health (no sign-in)",
  security: [],
  responses: { 200: jsonResponse(HealthSchema, "Healthy"), ...errors(413) },
});

/** The health router; `clock` reads the (cached) clock health. */
export function healthRouter(clock: () => Promise<ClockHealth>): OpenAPIHono<AppEnv> {
  const app = newRouter();
  app.openapi(health, async (c) => c.json({ status: "ok" as const, clock: await clock() }, 200));
  return app;
}
