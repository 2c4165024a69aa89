/** `GET /audit`: the store's audit log, newest first (administrators). */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { requireRole } from "../auth.ts";
import { errors, jsonResponse, newRouter, SIGNED_IN } from "../_router.ts";
import { AuditEntrySchema } from "../schemas.ts";
import type { ApiDeps, AppEnv } from "../types.ts";

const audit = createRoute({
  operationId: "listAudit",
  method: "get",
  path: "/audit",
  tags: ["audit"],
  summary: "Audit log, newest first; page back with `before`",
  middleware: [requireRole("administrator")],
  security: SIGNED_IN,
  request: {
    query: z.object({
      limit: z.coerce.number().int().min(1).max(1000).default(100),
      before: z.string().regex(/^[0-9A-HJKMNP-TV-Z]{26}$/, "must be an audit entry id").optional(),
    }),
  },
  responses: {
    200: jsonResponse(z.object({ entries: z.array(AuditEntrySchema) }), "Entries"),
    ...errors(400, 401, 403),
  },
});

/** The audit router. */
export function auditRouter(deps: ApiDeps): OpenAPIHono<AppEnv> {
  const app = newRouter();
  app.openapi(audit, async (c) => {
    const { limit, before } = c.req.valid("query");
    return c.json({ entries: await deps.store.audit.listAudit({ limit, before }) }, 200);
  });
  return app;
}
