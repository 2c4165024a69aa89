/**
 * `GET /uplinks`: the WAN uplinks of the configuration file (read only) and
 * the data plane's health of each (gateway probe, masquerade in use); the
 * status is null while the data plane cannot tell.
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { ANY_ROLE, requireRole } from "../auth.ts";
import { errors, jsonResponse, newRouter, SIGNED_IN } from "../_router.ts";
import { UplinkSchema } from "../schemas.ts";
import type { ApiDeps, AppEnv } from "../types.ts";
import { uplinkStatuses, uplinkViews } from "../uplinks.ts";

const list = createRoute({
  operationId: "listUplinks",
  method: "get",
  path: "/uplinks",
  tags: ["status"],
  summary: "The WAN uplinks and their health",
  middleware: [requireRole(...ANY_ROLE)],
  security: SIGNED_IN,
  responses: {
    200: jsonResponse(z.object({ uplinks: z.array(UplinkSchema) }), "Uplinks"),
    ...errors(401),
  },
});

/** The uplinks router. */
export function uplinksRouter(deps: ApiDeps): OpenAPIHono<AppEnv> {
  const app = newRouter();
  app.openapi(list, async (c) => {
    const statuses = await uplinkStatuses(deps.datapath);
    return c.json({ uplinks: uplinkViews(deps.config, statuses) }, 200);
  });
  return app;
}
